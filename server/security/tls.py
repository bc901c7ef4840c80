"""TLS on SSL and SASL_SSL listeners: Kafka's ssl.* settings made into Python `ssl` contexts,
the handshake of each connection under a deadline, and the principal of a client certificate.

Kafka's semantics kept (DefaultSslEngineFactory, SslFactory, SslPrincipalMapper):

- keystores: `ssl.keystore.type=PEM` with `ssl.keystore.certificate.chain` + `ssl.keystore.key`
  inline, or a PEM or PKCS12 file at `ssl.keystore.location`; `ssl.key.password` decrypts the
  key (`ssl.keystore.password` a PKCS12 file). JKS, Kafka's default type, is refused with a
  clear message: Python has no reader for it, and `keytool` converts it to PKCS12.
- truststores alike (`ssl.truststore.certificates` inline PEM); none given means the system's
  trusted CAs, as Kafka falls back to the JVM's.
- `ssl.client.auth=none|requested|required`; on SASL_SSL listeners only its listener-prefixed
  form counts (KIP-684): there SASL says who the client is.
- `ssl.enabled.protocols` bounds the TLS versions, capped by `ssl.protocol` when that names a
  version; `ssl.cipher.suites` takes Kafka's (IANA) names or OpenSSL's for TLS 1.2 and older.
  Python cannot restrict TLS 1.3 suites, so TLS 1.3 names are accepted and all stay enabled.
- the principal of an SSL connection is `User:` and the client certificate's subject in RFC
  2253 form (X500Principal.getName()), rewritten by `ssl.principal.mapping.rules`; without a
  certificate it is ANONYMOUS.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

from ottla.server.handover import feed_received
from ottla.server.security.listeners import TLS_KEYS, Listener, ListenerError, SecurityProtocol

if TYPE_CHECKING:
    from ottla.server.security.quotas import Refusal


__all__ = ["TLS_KEYS", "TlsAcceptor", "server_context", "tls_acceptance"]

log = logging.getLogger("ottla.tls")

# A handshake takes milliseconds; Kafka bounds an unfinished one only by connections.max.idle.ms
# (ten minutes by default), long enough for a flood of silent sockets to pile up. Ottla closes
# it after this many seconds, or after connections.max.idle.ms when that is shorter.
HANDSHAKE_TIMEOUT_S = 10.0

_VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
# ssl.protocol names the SSLContext Java creates; a version caps what it may negotiate.
_PROTOCOL_CAPS = {"TLS": None, "SSL": None, "TLSv1": "TLSv1", "TLSv1.1": "TLSv1.1", "TLSv1.2": "TLSv1.2", "TLSv1.3": "TLSv1.3"}
_CLIENT_AUTH = {"none": ssl.CERT_NONE, "requested": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}
_TLS13_SUITES = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_8_SHA256"}
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.S)


class TlsConfigError(ListenerError):
    """ssl.* settings a TLS listener cannot be served with; the message names the setting."""


def server_context(config: Any, listener: Listener) -> ssl.SSLContext:
    """The SSLContext of a TLS listener, its settings as `listener` sees them (per-listener
    overrides first). `config` is a BrokerConfig."""

    def get(name: str) -> Any:
        return config.listener_value(listener.name, name)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    where = f"listener {listener.name}"
    _set_versions(context, get("ssl.enabled.protocols"), get("ssl.protocol"), where)
    _set_ciphers(context, get("ssl.cipher.suites"), where)
    _load_keystore(context, get, listener)
    client_auth = get("ssl.client.auth")
    if listener.protocol == SecurityProtocol.SASL_SSL and f"listener.name.{listener.name.lower()}.ssl.client.auth" not in dict(config.listener_settings):
        client_auth = "none"
    if client_auth not in _CLIENT_AUTH:
        raise TlsConfigError(f"invalid value {client_auth} for ssl.client.auth on {where}: none, requested or required")
    context.verify_mode = _CLIENT_AUTH[client_auth]
    _load_truststore(context, get, where)
    PrincipalMapper.parse(get("ssl.principal.mapping.rules") or "DEFAULT")  # refused at start-up, not at the first client
    return context


def client_context(config: Any, listener: Listener) -> ssl.SSLContext:
    """The SSLContext a broker connects to another broker's TLS `listener` with, from that
    listener's own settings as Kafka's inter-broker client takes them: the truststore verifies
    the peer (the system's CAs when none is given), the keystore is this broker's certificate
    (its principal on an SSL listener), and `ssl.endpoint.identification.algorithm=https`
    (Kafka's default; empty turns it off) checks the peer's host name."""

    def get(name: str) -> Any:
        return config.listener_value(listener.name, name)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    where = f"listener {listener.name}"
    _set_versions(context, get("ssl.enabled.protocols"), get("ssl.protocol"), where)
    _set_ciphers(context, get("ssl.cipher.suites"), where)
    _load_keystore(context, get, listener)
    context.check_hostname = str(get("ssl.endpoint.identification.algorithm") or "").lower() == "https"
    _load_truststore(context, get, where)
    return context


def tls_acceptance(config: Any, listener: Listener) -> tuple[ssl.SSLContext, PrincipalMapper | None]:
    """What a TLS listener accepts connections with: its context, and on an SSL listener the
    mapper of certificate subjects to principals (SASL names the principal on SASL_SSL)."""
    context = server_context(config, listener)
    if listener.protocol != SecurityProtocol.SSL:
        return context, None
    return context, PrincipalMapper.parse(config.listener_value(listener.name, "ssl.principal.mapping.rules") or "DEFAULT")


def _set_versions(context: ssl.SSLContext, enabled: tuple[str, ...], protocol: str, where: str) -> None:
    unknown = [name for name in enabled if name not in _VERSIONS]
    if unknown or not enabled:
        raise TlsConfigError(f"invalid value {','.join(enabled)} for ssl.enabled.protocols on {where}: one or more of {', '.join(_VERSIONS)}")
    if protocol not in _PROTOCOL_CAPS:
        raise TlsConfigError(f"invalid value {protocol} for ssl.protocol on {where}: one of {', '.join(_PROTOCOL_CAPS)}")
    versions = sorted(_VERSIONS[name] for name in enabled)
    cap = _PROTOCOL_CAPS[protocol]
    if cap is not None:
        versions = [version for version in versions if version <= _VERSIONS[cap]]
    if not versions:
        raise TlsConfigError(f"ssl.protocol {protocol} leaves none of ssl.enabled.protocols ({','.join(enabled)}) on {where}")
    context.minimum_version, context.maximum_version = versions[0], versions[-1]


def openssl_cipher_name(name: str) -> str:
    """Kafka's (Java's, IANA's) name of a TLS 1.2 suite as OpenSSL spells it:
    TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 -> ECDHE-RSA-AES256-GCM-SHA384. OpenSSL names pass."""
    match = re.fullmatch(r"TLS_(\w+?)_WITH_(\w+)", name)
    if match is None:
        return name
    exchange, cipher = match.groups()
    cipher = cipher.replace("AES_128", "AES128").replace("AES_256", "AES256").replace("_CBC", "").replace("CHACHA20_POLY1305_SHA256", "CHACHA20_POLY1305")
    parts = ([] if exchange == "RSA" else [exchange]) + [cipher]
    return "-".join(parts).replace("_", "-")


def _set_ciphers(context: ssl.SSLContext, suites: tuple[str, ...], where: str) -> None:
    names = [openssl_cipher_name(suite) for suite in suites if suite not in _TLS13_SUITES]
    for suite, name in zip([s for s in suites if s not in _TLS13_SUITES], names):
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).set_ciphers(name)
        except ssl.SSLError:
            raise TlsConfigError(f"unknown cipher suite {suite} in ssl.cipher.suites on {where}") from None
    if names:
        context.set_ciphers(":".join(names))


def _pem_blocks(text: str, what: str, where: str) -> list[tuple[str, str]]:
    """(label, PEM text re-wrapped) of every PEM block in `text`: inline values may come with
    their line breaks folded away by a properties file, as Kafka's PEM reader allows."""
    blocks = []
    for label, body in _PEM_BLOCK.findall(text):
        data = "".join(body.split())
        wrapped = "\n".join(data[i : i + 64] for i in range(0, len(data), 64))
        blocks.append((label, f"-----BEGIN {label}-----\n{wrapped}\n-----END {label}-----\n"))
    if not blocks:
        raise TlsConfigError(f"{what} on {where} holds no PEM block")
    return blocks


def _load_keystore(context: ssl.SSLContext, get: Callable[[str], Any], listener: Listener) -> None:
    where = f"listener {listener.name}"
    kind = (get("ssl.keystore.type") or "JKS").upper()
    chain, key, location = get("ssl.keystore.certificate.chain"), get("ssl.keystore.key"), get("ssl.keystore.location")
    password = get("ssl.key.password")
    if chain or key:
        if kind != "PEM":
            raise TlsConfigError(f"ssl.keystore.certificate.chain and ssl.keystore.key need ssl.keystore.type=PEM, not {kind}, on {where}")
        if not (chain and key) or location:
            raise TlsConfigError(f"on {where}, give ssl.keystore.certificate.chain and ssl.keystore.key together, without ssl.keystore.location")
        certificates, keys = _pem_blocks(chain, "ssl.keystore.certificate.chain", where), _pem_blocks(key, "ssl.keystore.key", where)
    elif location:
        path = Path(location)
        if kind == "JKS":
            raise TlsConfigError(
                f"ssl.keystore.type is JKS (Kafka's default) on {where}: Ottla reads PEM and PKCS12 keystores; set ssl.keystore.type=PEM "
                "or convert with `keytool -importkeystore -srckeystore KS.jks -destkeystore KS.p12 -deststoretype PKCS12` and set PKCS12"
            )
        if kind == "PKCS12":
            key_pem, chain_pem, password = _pkcs12_keystore(_read(path, "ssl.keystore.location", where), get("ssl.keystore.password") or password, where)
            _load_chain(context, chain_pem, key_pem, password, where)
            return
        if kind != "PEM":
            raise TlsConfigError(f"unknown ssl.keystore.type {kind} on {where}: PEM or PKCS12")
        blocks = _pem_blocks(_read(path, "ssl.keystore.location", where).decode("ascii", "replace"), "ssl.keystore.location", where)
        certificates = [block for block in blocks if block[0] == "CERTIFICATE"]
        keys = [block for block in blocks if block[0].endswith("PRIVATE KEY")]
    else:
        prefix = f"listener.name.{listener.name.lower()}."
        raise TlsConfigError(
            f"{where} speaks {listener.protocol.value} and has no keystore: set ssl.keystore.location, or ssl.keystore.type=PEM with "
            f"ssl.keystore.certificate.chain and ssl.keystore.key (each also as {prefix}ssl.… for this listener only)"
        )
    if not certificates or len(keys) != 1:
        raise TlsConfigError(f"the keystore of {where} needs certificates and exactly one private key")
    _load_chain(context, "".join(pem for _, pem in certificates), keys[0][1], password, where)


def _read(path: Path, setting: str, where: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TlsConfigError(f"cannot read {setting} {path} on {where}: {exc.strerror or exc}") from None


def _load_chain(context: ssl.SSLContext, chain_pem: str, key_pem: str, password: str | None, where: str) -> None:
    """`ssl` loads certificates and keys only from files: write them to a private directory
    for the time of the call."""
    with tempfile.TemporaryDirectory(prefix="ottla-tls-") as directory:
        chain_file, key_file = Path(directory, "chain.pem"), Path(directory, "key.pem")
        chain_file.write_text(chain_pem)
        key_file.touch(mode=0o600)
        key_file.write_text(key_pem)
        try:
            context.load_cert_chain(chain_file, key_file, password=password or None)
        except (ssl.SSLError, TypeError) as exc:
            raise TlsConfigError(f"the keystore of {where} does not load (a wrong ssl.key.password, or a key not of the certificate?): {exc}") from None


def _pkcs12_keystore(data: bytes, password: str | None, where: str) -> tuple[str, str, str]:
    """(key PEM encrypted with a one-time password, certificate chain PEM, that password)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    try:
        key, certificate, extra = pkcs12.load_key_and_certificates(data, password.encode() if password else None)
    except ValueError as exc:
        raise TlsConfigError(f"the PKCS12 keystore of {where} does not load (a wrong ssl.keystore.password?): {exc}") from None
    if key is None or certificate is None:
        raise TlsConfigError(f"the PKCS12 keystore of {where} holds no private key with its certificate")
    one_time = secrets.token_urlsafe(24)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(one_time.encode()))
    chain = [certificate, *extra]
    return key_pem.decode(), "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in chain), one_time


def _load_truststore(context: ssl.SSLContext, get: Callable[[str], Any], where: str) -> None:
    kind = (get("ssl.truststore.type") or "JKS").upper()
    inline, location = get("ssl.truststore.certificates"), get("ssl.truststore.location")
    if inline:
        if kind != "PEM":
            raise TlsConfigError(f"ssl.truststore.certificates needs ssl.truststore.type=PEM, not {kind}, on {where}")
        pem = "".join(block for label, block in _pem_blocks(inline, "ssl.truststore.certificates", where) if label == "CERTIFICATE")
    elif location:
        data = _read(Path(location), "ssl.truststore.location", where)
        if kind == "JKS":
            raise TlsConfigError(f"ssl.truststore.type is JKS (Kafka's default) on {where}: Ottla reads PEM and PKCS12 truststores")
        if kind == "PKCS12":
            pem = _pkcs12_certificates(data, get("ssl.truststore.password"), where)
        elif kind == "PEM":
            pem = "".join(block for label, block in _pem_blocks(data.decode("ascii", "replace"), "ssl.truststore.location", where) if label == "CERTIFICATE")
        else:
            raise TlsConfigError(f"unknown ssl.truststore.type {kind} on {where}: PEM or PKCS12")
    else:
        if context.verify_mode != ssl.CERT_NONE:
            context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
        return
    try:
        context.load_verify_locations(cadata=pem)
    except ssl.SSLError as exc:
        raise TlsConfigError(f"the truststore of {where} does not load: {exc}") from None


def _pkcs12_certificates(data: bytes, password: str | None, where: str) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    try:
        _, certificate, extra = pkcs12.load_key_and_certificates(data, password.encode() if password else None)
    except ValueError as exc:
        raise TlsConfigError(f"the PKCS12 truststore of {where} does not load (a wrong ssl.truststore.password?): {exc}") from None
    certificates = ([certificate] if certificate is not None else []) + list(extra)
    if not certificates:
        raise TlsConfigError(f"the PKCS12 truststore of {where} holds no certificate")
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certificates)


class NoMatchingRule(ValueError):
    """No ssl.principal.mapping.rules rule applies to a certificate's subject."""


@dataclass(slots=True, frozen=True)
class _Rule:
    pattern: re.Pattern[str] | None  # None: DEFAULT, the name unchanged
    replacement: str
    case: str  # "", "L" or "U"

    def apply(self, name: str) -> str | None:
        if self.pattern is None:
            return name
        if self.pattern.fullmatch(name) is None:
            return None
        groups = self.pattern.groups
        result = self.pattern.sub(lambda match: _java_replacement(self.replacement, match, groups), name)
        return result.lower() if self.case == "L" else result.upper() if self.case == "U" else result


def _java_replacement(template: str, match: re.Match[str], groups: int) -> str:
    """Java's Matcher.replaceAll template: `$n` is group n (a literal `$n` past the last group,
    as SslPrincipalMapper.escapeLiteralBackReferences makes it), `\\x` is x."""
    out = []
    index = 0
    while index < len(template):
        char = template[index]
        if char == "\\" and index + 1 < len(template):
            out.append(template[index + 1])
            index += 2
        elif char == "$" and index + 1 < len(template) and template[index + 1].isdigit() and int(template[index + 1]) <= groups:
            number, index = int(template[index + 1]), index + 2
            while index < len(template) and template[index].isdigit() and number * 10 + int(template[index]) <= groups:
                number, index = number * 10 + int(template[index]), index + 1
            out.append(match.group(number) or "")
        else:
            out.append(char)
            index += 1
    return "".join(out)


# SslPrincipalMapper's grammar: DEFAULT, or RULE:pattern/replacement/ with an optional L or U.
_RULE = r"(DEFAULT)|RULE:((\\.|[^\\/])*)/((\\.|[^\\/])*)/([LU]?).*?|(.*?)"
_RULE_SPLITTER = re.compile(r"\s*(" + _RULE + r")\s*(,\s*|$)")
_RULE_PARSER = re.compile(_RULE)


class PrincipalMapper:
    """Kafka's SslPrincipalMapper: the first rule that matches a distinguished name gives the
    principal's name; DEFAULT keeps the name whole."""

    def __init__(self, rules: list[_Rule]) -> None:
        self.rules = rules

    @classmethod
    def parse(cls, text: str) -> PrincipalMapper:
        rules = []
        for found in _RULE_SPLITTER.finditer(text.strip()):
            rule = found.group(1)
            match = _RULE_PARSER.match(rule)
            if match is None or match.end() != len(rule):
                raise TlsConfigError(f"invalid rule in ssl.principal.mapping.rules: {rule!r}")
            if match.group(1) is not None:
                rules.append(_Rule(None, "", ""))
            elif match.group(2) is not None:
                try:
                    pattern = re.compile(match.group(2))
                except re.error as exc:
                    raise TlsConfigError(f"invalid pattern in ssl.principal.mapping.rules: {match.group(2)!r}: {exc}") from None
                rules.append(_Rule(pattern, match.group(4), match.group(6)))
            if found.end() == len(text.strip()):
                break
        return cls(rules)

    def name(self, distinguished_name: str) -> str:
        for rule in self.rules:
            result = rule.apply(distinguished_name)
            if result is not None:
                return result
        raise NoMatchingRule(f"no ssl.principal.mapping.rules rule applies to {distinguished_name}")


def subject_name(certificate_der: bytes) -> str:
    """The subject of a DER certificate in RFC 2253 form, as Java's X500Principal.getName()
    writes it: the last RDN first, no spaces, CN/OU/O/L/ST/C/STREET/DC/UID by keyword."""
    from cryptography import x509

    return x509.load_der_x509_certificate(certificate_der).subject.rfc4514_string()


class _Gate(asyncio.Protocol):
    """Holds what arrives between the end of a handshake and the connection taking over."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.lost: tuple[Exception | None] | None = None

    def data_received(self, data: bytes) -> None:
        self.received += data

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = (exc,)

    def hand_over(self, protocol: asyncio.BufferedProtocol) -> None:
        feed_received(protocol, self.received)
        if self.lost is not None:
            protocol.connection_lost(self.lost[0])


class Admissions(Protocol):
    """What counts sockets against the connection limits (the broker, through its
    ConnectionRegistry): a TLS socket is counted from its accept, before its handshake."""

    def admit(self, ip: str, listener: str) -> Refusal | None:
        """Count a new socket from `ip` in, or say which limit refuses it."""

    def release(self, ip: str, listener: str, connection: Any) -> None:
        """Count a closed socket from `ip` to `listener` out."""


@runtime_checkable
class Counted(Protocol):
    """A protocol that takes a socket's count over and gives it back when it closes (the
    Connection); one without it leaves the count to the acceptor."""

    admitted: bool


class TlsAcceptor(asyncio.Protocol):
    """The protocol of a new connection to a TLS listener until its handshake is done: counts
    it against the connection limits at once (Kafka's Acceptor counts a socket before its
    channel exists, so stalled handshakes cannot outnumber max.connections.per.ip), runs the
    handshake under a deadline, works out the peer's principal, then hands the TLS transport,
    and the count, to the protocol `accept(principal)` makes. A handshake that fails, stalls or
    meets garbage costs one log line and that connection only, and gives its count back."""

    def __init__(
        self,
        context: ssl.SSLContext,
        timeout: float,
        mapper: PrincipalMapper | None,
        accept: Callable[[str], asyncio.BufferedProtocol],
        anonymous: str,
        handshakes: set[asyncio.Task[None]],
        registry: Admissions,
        listener: str,
    ) -> None:
        """`mapper` names the principal of a client certificate (SSL listeners); None leaves
        every client `anonymous` (SASL_SSL listeners, where SASL names it). The handshake runs
        as a task in `handshakes` (the broker cancels those left when it stops). `registry`
        counts the socket in as a connection to `listener`."""
        self.context = context
        self.timeout = timeout
        self.mapper = mapper
        self.accept = accept
        self.anonymous = anonymous
        self.handshakes = handshakes
        self.registry = registry
        self.listener = listener

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it
        peer = transport.get_extra_info("peername")
        address = f"{peer[0]}:{peer[1]}" if peer else "?"
        ip = peer[0] if peer else "?"
        refusal = self.registry.admit(ip, self.listener)
        if refusal is not None:
            log.info("refusing connection from %s: %s", address, refusal.reason)
            refusal.close(transport)
            return
        transport.pause_reading()  # start_tls reads from here on
        task = asyncio.get_running_loop().create_task(self._handshake(transport, address, ip))
        self.handshakes.add(task)
        task.add_done_callback(self.handshakes.discard)

    def connection_lost(self, exc: Exception | None) -> None:
        """Only before start_tls takes the transport over; the handshake then fails."""

    async def _handshake(self, transport: asyncio.Transport, address: str, ip: str) -> None:
        protocol: asyncio.BufferedProtocol | None = None
        try:
            secured = await self._secure(transport, address)
            if secured is None:
                return
            tls, principal, gate = secured
            protocol = self.accept(principal)
            if isinstance(protocol, Counted):
                protocol.admitted = True  # the count is the connection's from here on
            tls.set_protocol(protocol)
            protocol.connection_made(tls)
            gate.hand_over(protocol)
        finally:
            if not isinstance(protocol, Counted):
                self.registry.release(ip, self.listener, None)

    async def _secure(self, transport: asyncio.Transport, address: str) -> tuple[asyncio.Transport, str, _Gate] | None:
        """The handshake: the TLS transport, the peer's principal and what arrived meanwhile,
        or None when it failed (the transport closed)."""
        gate = _Gate()
        loop = asyncio.get_running_loop()
        try:
            tls = await loop.start_tls(transport, gate, self.context, server_side=True, ssl_handshake_timeout=self.timeout)
        except (OSError, EOFError) as exc:
            log.warning("TLS handshake with %s failed: %s", address, _reason(exc))
            transport.abort()
            return None
        except asyncio.CancelledError:
            transport.abort()
            raise
        if tls is None:
            log.warning("TLS handshake with %s failed: the client closed the connection", address)
            return None
        principal = self.anonymous
        certificate = tls.get_extra_info("ssl_object").getpeercert(binary_form=True)
        if certificate is not None and self.mapper is not None:
            try:
                principal = "User:" + self.mapper.name(subject_name(certificate))
            except NoMatchingRule as exc:
                log.warning("closing TLS connection from %s: %s", address, exc)
                tls.abort()
                return None
        return tls, principal, gate


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    return str(exc) or type(exc).__name__
