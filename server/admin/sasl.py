"""The client half of SASL for the ottla commands: PLAIN and SCRAM (RFC 5802, RFC 7677) as
Kafka's SaslClientAuthenticator and ScramSaslClient speak them.

Kept apart from the broker's mechanisms (server/security/sasl/), as the whole admin client is:
it needs only `wire/`, so the commands stay a second, independent implementation of each
side of the exchange.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field

# SCRAM mechanisms: (AlterUserScramCredentials' mechanism type, hash), Kafka's ScramMechanism.
SCRAM = {"SCRAM-SHA-256": (1, "sha256"), "SCRAM-SHA-512": (2, "sha512")}
MECHANISMS = ("PLAIN", *SCRAM)


class SaslError(Exception):
    """The exchange cannot go on; the message names no secret."""


@dataclass(slots=True, frozen=True)
class SaslLogin:
    """Who to log in as on a SASL_PLAINTEXT listener: one of MECHANISMS."""

    mechanism: str
    username: str
    password: str = field(repr=False)


def salted_password(mechanism: str, password: str, salt: bytes, iterations: int) -> bytes:
    """Hi(password, salt, i), PBKDF2 over the mechanism's HMAC, as Kafka's ScramFormatter
    computes it (the password's UTF-8 bytes, no SASLprep)."""
    return hashlib.pbkdf2_hmac(SCRAM[mechanism][1], password.encode("utf-8"), salt, iterations)


class ScramClient:
    """One SCRAM exchange, client side: `first()`, then `final(server first)`, then
    `verify(server final)`, which raises SaslError unless the broker proved it holds the
    user's credential."""

    def __init__(self, mechanism: str, username: str, password: str) -> None:
        self._hash = SCRAM[mechanism][1]
        self._mechanism = mechanism
        self._username = username.replace("=", "=3D").replace(",", "=2C")
        self._password = password
        self._nonce = secrets.token_urlsafe(24)
        self._bare = ""
        self._auth_message = b""
        self._salted = b""

    def _hmac(self, key: bytes, data: bytes) -> bytes:
        return hmac.new(key, data, self._hash).digest()

    def first(self) -> bytes:
        self._bare = f"n={self._username},r={self._nonce}"
        return f"n,,{self._bare}".encode()

    def final(self, server_first: bytes) -> bytes:
        text = server_first.decode("utf-8", errors="replace")
        fields = dict(item.split("=", 1) for item in text.split(",") if "=" in item)
        nonce, iterations = fields.get("r", ""), fields.get("i", "")
        if not nonce.startswith(self._nonce) or not iterations.isdigit() or "s" not in fields:
            raise SaslError("the broker's first SCRAM message is malformed")
        self._salted = salted_password(self._mechanism, self._password, base64.b64decode(fields["s"]), int(iterations))
        without_proof = f"c={base64.b64encode(b'n,,').decode()},r={nonce}"
        self._auth_message = f"{self._bare},{text},{without_proof}".encode()
        client_key = self._hmac(self._salted, b"Client Key")
        signature = self._hmac(hashlib.new(self._hash, client_key).digest(), self._auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify(self, server_final: bytes) -> None:
        expected = b"v=" + base64.b64encode(self._hmac(self._hmac(self._salted, b"Server Key"), self._auth_message))
        if not hmac.compare_digest(server_final, expected):
            raise SaslError("the broker's SCRAM signature is wrong: it does not hold this user's credential")


_JAAS_OPTION = re.compile(r'\b(username|password)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s;"]+))')


def jaas_credentials(text: str) -> tuple[str | None, str | None]:
    """The `username` and `password` options of a client's `sasl.jaas.config` (PlainLoginModule
    or ScramLoginModule), quoted values unescaped as Kafka's JaasConfig reads them."""
    found: dict[str, str] = {}
    for match in _JAAS_OPTION.finditer(text):
        quoted, bare = match.group(2), match.group(3)
        found[match.group(1)] = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
    return found.get("username"), found.get("password")
