"""TLS listeners: stock clients over SSL against a broker the test starts, mutual TLS with the
principal from the client certificate, keystores in every form Kafka takes, and bad input on
the TLS port that costs only its own connection."""

from __future__ import annotations

import logging
import socket
import ssl
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from kafka_wire import RawClient, make
from kafka.protocol.metadata.metadata import MetadataRequest, MetadataResponse
from ottla.server.security.certs import KEYSTORE_PASSWORD, DevelopmentCertificates, write
from ottla.server.security.listeners import ListenerError
from ottla.server.security.tls import NoMatchingRule, PrincipalMapper, TlsConfigError, openssl_cipher_name
from ottla.testing import running_broker

LISTENERS = {"listeners": "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0", "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SSL:SSL"}


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> DevelopmentCertificates:
    return write(tmp_path_factory.mktemp("certs"))


def _pem_settings(certs: DevelopmentCertificates, **more: str) -> dict[str, str]:
    return {**LISTENERS, "ssl.keystore.type": "PEM", "ssl.keystore.location": str(certs.broker_keystore), "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(certs.ca), **more}


def _ssl_bootstrap(handle) -> str:
    return f"127.0.0.1:{handle.broker.bound_ports['SSL']}"


def _tls_peer_subject(bootstrap: str, certs: DevelopmentCertificates) -> str:
    """The common name of the certificate a TLS client verifies against the development CA."""
    host, port = bootstrap.rsplit(":", 1)
    context = ssl.create_default_context(cafile=str(certs.ca))
    with socket.create_connection((host, int(port)), timeout=10) as raw, context.wrap_socket(raw, server_hostname="localhost") as tls:
        return dict(item[0] for item in tls.getpeercert()["subject"])["commonName"]


def test_kafka_python_produces_and_consumes_over_tls_beside_plaintext(certs):
    value = bytes(range(256)) * 3600  # 900 KiB records: one fetch answer crosses the 1 MiB copy chunks
    with running_broker(data_dir=None, **_pem_settings(certs)) as handle:
        bootstrap = _ssl_bootstrap(handle)
        tls = dict(security_protocol="SSL", ssl_cafile=str(certs.ca), ssl_check_hostname=True)
        producer = KafkaProducer(bootstrap_servers=bootstrap, max_request_size=8 << 20, **tls)
        for index in range(3):
            producer.send("secured", value=value, key=str(index).encode())
        producer.flush()
        producer.close()
        consumer = KafkaConsumer("secured", bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=10000,
                                 max_partition_fetch_bytes=8 << 20, fetch_max_bytes=16 << 20, **tls)
        received = [(record.key, record.value) for record in consumer]
        consumer.close()
        assert received == [(str(index).encode(), value) for index in range(3)]
        # Through each listener, Metadata names that listener's endpoint.
        plaintext = handle.broker.bound_ports["PLAINTEXT"]
        with RawClient(f"127.0.0.1:{plaintext}") as raw:
            response = raw.call(make(MetadataRequest, dict(topics=[], allow_auto_topic_creation=False)), 1, MetadataResponse)
        assert [(b.host, b.port) for b in response.brokers] == [("127.0.0.1", plaintext)]
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, **tls)
        try:
            assert [(b["host"], b["port"]) for b in admin.describe_cluster()["brokers"]] == [("127.0.0.1", handle.broker.bound_ports["SSL"])]
        finally:
            admin.close()


def test_confluent_kafka_over_tls_and_describe_cluster_names_the_tls_endpoint(certs):
    with running_broker(data_dir=None, **_pem_settings(certs)) as handle:
        settings = {"bootstrap.servers": _ssl_bootstrap(handle), "security.protocol": "SSL", "ssl.ca.location": str(certs.ca)}
        producer = Producer(settings)
        producer.produce("secured", b"over tls")
        assert producer.flush(10) == 0
        del producer
        consumer = Consumer({**settings, "group.id": "tls", "auto.offset.reset": "earliest"})
        consumer.subscribe(["secured"])
        message = None
        for _ in range(30):
            message = consumer.poll(1)
            if message is not None and message.error() is None:
                break
        consumer.close()
        assert message is not None and message.value() == b"over tls"
        admin = AdminClient(settings)
        cluster = admin.describe_cluster(request_timeout=10).result()
        del admin
        assert [(node.host, node.port) for node in cluster.nodes] == [("127.0.0.1", handle.broker.bound_ports["SSL"])]


def test_mutual_tls_names_the_principal_from_the_client_certificate(certs, caplog):
    settings = _pem_settings(certs, **{"ssl.client.auth": "required", "ssl.principal.mapping.rules": "RULE:^CN=([^,]*),O=.*$/$1/U,DEFAULT"})
    with caplog.at_level(logging.INFO, logger="ottla"), running_broker(data_dir=None, **settings) as handle:
        bootstrap = _ssl_bootstrap(handle)
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, security_protocol="SSL", ssl_cafile=str(certs.ca),
                                 ssl_certfile=str(certs.client_certificate), ssl_keyfile=str(certs.client_key))
        admin.list_topics()
        admin.close()
        # Without a client certificate the handshake fails, and the broker says so once.
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            host, port = bootstrap.rsplit(":", 1)
            context = ssl.create_default_context(cafile=str(certs.ca))
            with socket.create_connection((host, int(port)), timeout=10) as raw, context.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"\0\0\0\0")
                assert tls.recv(1) == b""  # TLS 1.3: the refusal comes after the client's handshake
                raise ConnectionError("closed")
        _wait_for(lambda: any("TLS handshake" in r.getMessage() for r in caplog.records))
    opened = [r.getMessage() for r in caplog.records if r.getMessage().startswith("connection opened")]
    assert opened and all(message.endswith("on listener SSL as User:CLIENT") for message in opened), opened


def _wait_for(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.05)


def test_garbage_and_a_stalled_handshake_cost_only_their_own_connections(certs, caplog):
    settings = _pem_settings(certs, **{"connections.max.idle.ms": "500"})
    with caplog.at_level(logging.WARNING, logger="ottla.tls"), running_broker(data_dir=None, **settings) as handle:
        host, port = _ssl_bootstrap(handle).rsplit(":", 1)
        garbage = socket.create_connection((host, int(port)), timeout=10)
        garbage.sendall(b"GET / HTTP/1.1\r\n\r\n" * 100)
        stalled = socket.create_connection((host, int(port)), timeout=10)
        stalled.sendall(bytes.fromhex("16030100c8010000c40303"))  # the start of a ClientHello, then silence
        # Others are served meanwhile.
        assert _tls_peer_subject(_ssl_bootstrap(handle), certs) == "localhost"
        # Each bad connection is closed by the broker: garbage at once, the stalled one at its deadline.
        for sock in (garbage, stalled):
            try:
                while sock.recv(4096):
                    pass
            except ConnectionResetError:
                pass
            sock.close()
        _wait_for(lambda: len([r for r in caplog.records if "TLS handshake" in r.getMessage()]) >= 2)
    failures = [r.getMessage() for r in caplog.records if "TLS handshake" in r.getMessage()]
    assert len(failures) == 2, failures
    assert any("taking longer than" in message for message in failures), failures


@pytest.mark.parametrize("form", ["inline PEM", "PKCS12", "per-listener PEM"])
def test_keystores_in_the_forms_kafka_takes(certs, form):
    if form == "inline PEM":
        text = certs.broker_keystore.read_text()
        key, chain = text.split("-----END PRIVATE KEY-----\n")
        # As a server.properties gives it: one line, the PEM's line breaks folded away.
        settings = {**LISTENERS, "ssl.keystore.type": "PEM", "ssl.keystore.key": " ".join((key + "-----END PRIVATE KEY-----").split("\n")),
                    "ssl.keystore.certificate.chain": " ".join(chain.split("\n"))}
    elif form == "PKCS12":
        settings = {**LISTENERS, "ssl.keystore.type": "PKCS12", "ssl.keystore.location": str(certs.broker_p12), "ssl.keystore.password": KEYSTORE_PASSWORD}
    else:
        settings = {**LISTENERS, "listener.name.ssl.ssl.keystore.type": "PEM", "listener.name.ssl.ssl.keystore.location": str(certs.broker_keystore)}
    with running_broker(data_dir=None, **settings) as handle:
        assert _tls_peer_subject(_ssl_bootstrap(handle), certs) == "localhost"


@pytest.mark.parametrize(
    "settings, message",
    [
        ({}, "has no keystore"),
        ({"ssl.keystore.location": "/nonexistent/keystore.jks"}, "JKS"),
        ({"ssl.keystore.type": "PKCS12", "ssl.keystore.location": "@p12", "ssl.keystore.password": "wrong"}, "ssl.keystore.password"),
        ({"ssl.keystore.type": "PEM", "ssl.keystore.location": "@pem", "ssl.enabled.protocols": "SSLv3"}, "ssl.enabled.protocols"),
        ({"ssl.keystore.type": "PEM", "ssl.keystore.location": "@pem", "ssl.cipher.suites": "TLS_NO_SUCH_SUITE"}, "TLS_NO_SUCH_SUITE"),
        ({"ssl.keystore.type": "PEM", "ssl.keystore.location": "@pem", "ssl.client.auth": "sometimes"}, "ssl.client.auth"),
        ({"ssl.keystore.type": "PEM", "ssl.keystore.location": "@pem", "ssl.principal.mapping.rules": "RULE:x"}, "ssl.principal.mapping.rules"),
    ],
)
def test_tls_settings_that_cannot_be_served_stop_start_up_with_a_clear_message(certs, settings, message):
    paths = {"@p12": str(certs.broker_p12), "@pem": str(certs.broker_keystore)}
    settings = {name: paths.get(value, value) for name, value in settings.items()}
    with pytest.raises(ListenerError, match=message):
        with running_broker(data_dir=None, **LISTENERS, **settings):
            pass


def test_ciphers_and_protocols_take_kafkas_names(certs):
    assert openssl_cipher_name("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384") == "ECDHE-RSA-AES256-GCM-SHA384"
    assert openssl_cipher_name("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256") == "ECDHE-ECDSA-AES128-SHA256"
    assert openssl_cipher_name("TLS_RSA_WITH_AES_128_GCM_SHA256") == "AES128-GCM-SHA256"
    assert openssl_cipher_name("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256") == "ECDHE-ECDSA-CHACHA20-POLY1305"
    settings = _pem_settings(certs, **{"ssl.enabled.protocols": "TLSv1.2", "ssl.cipher.suites": "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"})
    with running_broker(data_dir=None, **settings) as handle:
        host, port = _ssl_bootstrap(handle).rsplit(":", 1)
        context = ssl.create_default_context(cafile=str(certs.ca))
        with socket.create_connection((host, int(port)), timeout=10) as raw, context.wrap_socket(raw, server_hostname="localhost") as tls:
            assert (tls.version(), tls.cipher()[0]) == ("TLSv1.2", "ECDHE-ECDSA-AES256-GCM-SHA384")


def test_principal_mapping_rules_as_kafkas_ssl_principal_mapper():
    dn = "CN=Duke,OU=JavaSoft,O=Sun Microsystems,C=US"
    assert PrincipalMapper.parse("DEFAULT").name(dn) == dn
    assert PrincipalMapper.parse("RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,RULE:^CN=(.*?),OU=(.*?),O=(.*?),C=(.*?)$/$1/L,DEFAULT").name(dn) == "duke"
    assert PrincipalMapper.parse("RULE:^CN=(.*?),OU=([^,]*).*$/$1 at $2/U").name(dn) == "DUKE AT JAVASOFT"
    # A literal `$5` past the last group, and escaped slashes, as Kafka's tests have them.
    assert PrincipalMapper.parse("RULE:^CN=(.*?),.*$/$1\\/$5/").name(dn) == "Duke/$5"
    with pytest.raises(NoMatchingRule):
        PrincipalMapper.parse("RULE:^CN=(.*?),OU=Other.*$/$1/").name(dn)
    for bad in ("RULE:x", "DEFAULT,garbage", "RULE:^(.*$/$1/"):
        with pytest.raises(TlsConfigError):
            PrincipalMapper.parse(bad)


def test_ottla_certs_writes_what_a_tls_listener_and_its_clients_need(tmp_path, capsys):
    from ottla.server.cli import main

    assert main(["certs", str(tmp_path / "dev")]) == 0
    printed = capsys.readouterr().out
    assert f"ssl.keystore.location={tmp_path / 'dev' / 'broker-keystore.pem'}" in printed
    assert f"ssl.ca.location={tmp_path / 'dev' / 'ca.pem'}" in printed
    assert oct((tmp_path / "dev" / "ca-key.pem").stat().st_mode & 0o777) == "0o600"
    assert Path(tmp_path / "dev" / "client.p12").stat().st_size > 0


def test_sasl_ssl_authenticates_over_tls(certs):
    settings = {"listeners": "SASL_SSL://127.0.0.1:0", "ssl.keystore.type": "PEM", "ssl.keystore.location": str(certs.broker_keystore),
                "sasl.enabled.mechanisms": "PLAIN",
                "listener.name.sasl_ssl.plain.sasl.jaas.config": 'org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="secret";'}
    with running_broker(data_dir=None, **settings) as handle:
        admin = KafkaAdminClient(bootstrap_servers=handle.bootstrap_servers, security_protocol="SASL_SSL", ssl_cafile=str(certs.ca),
                                 sasl_mechanism="PLAIN", sasl_plain_username="alice", sasl_plain_password="secret")
        try:
            assert [(b["host"], b["port"]) for b in admin.describe_cluster()["brokers"]] == [("127.0.0.1", handle.broker.port)]
        finally:
            admin.close()


def test_a_broker_that_requires_client_certificates_has_its_console_ask_for_a_login(certs, tmp_path):
    """With ssl.client.auth=required and no SASL or authorizer, the console must not act as
    ANONYMOUS for whoever reaches it: it asks for a login, which SCRAM credentials give."""
    import json
    import urllib.error
    import urllib.request

    settings = _pem_settings(certs, **{"ssl.client.auth": "required"})
    with running_broker(data_dir=None, http_port=0, add_scram=["SCRAM-SHA-512=[name=alice,password=alice-secret]"], **settings) as handle:
        url = handle.broker.http.url

        def status(path: str) -> int:
            try:
                with urllib.request.urlopen(url + path, timeout=30) as answer:
                    return answer.status
            except urllib.error.HTTPError as error:
                return error.code

        with urllib.request.urlopen(url + "/api/session", timeout=30) as answer:
            assert json.load(answer) == {"login_required": True, "principal": None}
        assert status("/api/topics") == 401
