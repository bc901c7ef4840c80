"""`ottla certs DIR`: a development CA, a broker certificate and a client certificate, so that
trying TLS (and mutual TLS) takes one command. Never for production: the CA key sits beside
the certificates it signs, unencrypted."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

# Files written, by role.
CA, BROKER, CLIENT = "ca.pem", "broker.pem", "client.pem"
KEYSTORE_PASSWORD = "ottla-dev"


@dataclass(slots=True, frozen=True)
class DevelopmentCertificates:
    """Paths of what `write` made."""

    directory: Path
    ca: Path  # the CA certificate: every truststore
    broker_keystore: Path  # the broker's key and certificate chain, PEM (ssl.keystore.type=PEM)
    broker_p12: Path  # the same as PKCS12, password KEYSTORE_PASSWORD
    client_certificate: Path
    client_key: Path
    client_keystore: Path  # the client's key and certificate, PEM (a Java client's keystore)
    client_p12: Path

    def server_properties(self, port: int = 9093) -> str:
        return "\n".join(
            [
                f"listeners=PLAINTEXT://127.0.0.1:9092,SSL://127.0.0.1:{port}",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL",
                "ssl.keystore.type=PEM",
                f"ssl.keystore.location={self.broker_keystore}",
                "ssl.truststore.type=PEM",
                f"ssl.truststore.location={self.ca}",
                "# requested: a client certificate, when given, names the principal (User:CN=client)",
                "ssl.client.auth=requested",
            ]
        )

    def client_settings(self, port: int = 9093) -> str:
        return "\n".join(
            [
                f"# librdkafka, confluent-kafka, kcat: -X security.protocol=SSL -X ssl.ca.location={self.ca}",
                f"#   mutual TLS adds: -X ssl.certificate.location={self.client_certificate} -X ssl.key.location={self.client_key}",
                f"# kafka-python, aiokafka: security_protocol='SSL', ssl_cafile='{self.ca}'",
                f"#   mutual TLS adds: ssl_certfile='{self.client_certificate}', ssl_keyfile='{self.client_key}'",
                "# Java (client.properties):",
                f"bootstrap.servers=127.0.0.1:{port}",
                "security.protocol=SSL",
                "ssl.truststore.type=PEM",
                f"ssl.truststore.location={self.ca}",
                "ssl.keystore.type=PEM",
                f"ssl.keystore.location={self.client_keystore}",
            ]
        )


def write(directory: Path, days: int = 365) -> DevelopmentCertificates:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ottla development"), x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    def certificate(subject: x509.Name, key: ec.EllipticCurvePrivateKey, issuer: x509.Name, signer: ec.EllipticCurvePrivateKey, **extensions: tuple[x509.ExtensionType, bool]) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
        )
        for extension, critical in extensions.values():
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(signer, hashes.SHA256())

    def pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

    def pem(cert: x509.Certificate) -> bytes:
        return cert.public_bytes(serialization.Encoding.PEM)

    def private(path: Path, data: bytes) -> Path:
        path.touch(mode=0o600)
        path.write_bytes(data)
        return path

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = name("Ottla development CA")
    ca = certificate(
        ca_name, ca_key, ca_name, ca_key,
        basic=(x509.BasicConstraints(ca=True, path_length=0), True),
        usage=(x509.KeyUsage(False, False, False, False, False, True, True, False, False), True),
    )
    broker_key = ec.generate_private_key(ec.SECP256R1())
    broker = certificate(
        name("localhost"), broker_key, ca_name, ca_key,
        san=(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False),
        usage=(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
    )
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = certificate(name("client"), client_key, ca_name, ca_key, usage=(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False))

    password = serialization.BestAvailableEncryption(KEYSTORE_PASSWORD.encode())
    (directory / CA).write_bytes(pem(ca))
    private(directory / "ca-key.pem", pem_key(ca_key))
    (directory / BROKER).write_bytes(pem(broker) + pem(ca))
    (directory / CLIENT).write_bytes(pem(client))
    return DevelopmentCertificates(
        directory=directory,
        ca=directory / CA,
        broker_keystore=private(directory / "broker-keystore.pem", pem_key(broker_key) + pem(broker) + pem(ca)),
        broker_p12=private(directory / "broker.p12", pkcs12.serialize_key_and_certificates(b"broker", broker_key, broker, [ca], password)),
        client_certificate=directory / CLIENT,
        client_key=private(directory / "client-key.pem", pem_key(client_key)),
        client_keystore=private(directory / "client-keystore.pem", pem_key(client_key) + pem(client)),
        client_p12=private(directory / "client.p12", pkcs12.serialize_key_and_certificates(b"client", client_key, client, [ca], password)),
    )
