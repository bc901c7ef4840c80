"""SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) as Kafka's ScramSaslServer runs them.

The server side is a sans-IO state machine: `ScramServer.evaluate(client message) -> server
message`, raising `AuthenticationFailed` on anything wrong, `complete` and `principal` at the
end. Kafka's dialect: no channel binding (the GS2 header is `n,,` or `n,a=<authzid>,`), the
authorization id, if given, must be the user name, and the `tokenauth` extension asks for
delegation-token credentials: the user name is a token id, and a login proves the token's
HMAC and makes the client the token's owner (ottla.server.security.tokens). A credential
keeps the salt, stored key, server key and iteration count (`ScramCredential`), never the
password.

The client-final message is checked as Kafka 4.4's ScramSaslServer checks it, in its order:
its nonce must EQUAL the server-first's (so librdkafka before 2.6.1, which repeats its own
nonce first, is refused, as by Kafka); the channel binding `c=` is not compared with the GS2
header; and the proof is verified over the AuthMessage Kafka rebuilds from the parsed parts
(ScramFormatter.authMessage), not over the bytes the client sent: the client-first part
without `m=` and with its extensions as `k=v` pairs, `c=` re-encoded and the client-final's
extensions left out. A client that signs RFC 5802's AuthMessage with an `m=` or a client-final
extension is refused there as here. Kafka keeps a client-first's extensions in a `Map.copyOf`,
whose order is salted per JVM: with two or more, Ottla keeps the client's order, one of those
Kafka may pick.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import Enum
from typing import Callable, Protocol

from ottla.server.security.sasl.errors import AuthenticationFailed, InvalidCredentials, SaslServerError


# Kafka's ScramMechanism.minIterations / maxIterations, the same for both hashes.
MIN_ITERATIONS = 4096
MAX_ITERATIONS = 16384


class ScramMechanism(Enum):
    """Kafka's org.apache.kafka.common.security.scram.internals.ScramMechanism: its wire type
    (AlterUserScramCredentials' `Mechanism`), hash, and iteration bounds."""

    SCRAM_SHA_256 = (1, "SCRAM-SHA-256", "sha256")
    SCRAM_SHA_512 = (2, "SCRAM-SHA-512", "sha512")

    def __init__(self, type_code: int, mechanism_name: str, hash_name: str) -> None:
        self.type_code = type_code
        self.mechanism_name = mechanism_name
        self.hash_name = hash_name

    @property
    def min_iterations(self) -> int:
        return MIN_ITERATIONS

    @property
    def max_iterations(self) -> int:
        return MAX_ITERATIONS

    @classmethod
    def by_name(cls, name: str) -> ScramMechanism | None:
        return next((m for m in cls if m.mechanism_name == name), None)

    @classmethod
    def by_type(cls, type_code: int) -> ScramMechanism | None:
        return next((m for m in cls if m.type_code == type_code), None)

    def hash(self, data: bytes) -> bytes:
        return hashlib.new(self.hash_name, data).digest()

    def hmac(self, key: bytes, data: bytes) -> bytes:
        return hmac.new(key, data, self.hash_name).digest()

    def salted_password(self, password: str, salt: bytes, iterations: int) -> bytes:
        """Hi(Normalize(password), salt, i): PBKDF2 with this hash's HMAC. Kafka does not apply
        SASLprep; it takes the password's UTF-8 bytes, and so do we."""
        return hashlib.pbkdf2_hmac(self.hash_name, password.encode("utf-8"), salt, iterations)

    def credential(self, salted_password: bytes, salt: bytes, iterations: int) -> ScramCredential:
        """What the server keeps of a password (RFC 5802 section 3): StoredKey and ServerKey."""
        client_key = self.hmac(salted_password, b"Client Key")
        return ScramCredential(salt, self.hash(client_key), self.hmac(salted_password, b"Server Key"), iterations)

    def credential_from_password(self, password: str, iterations: int, salt: bytes | None = None) -> ScramCredential:
        salt = secrets.token_bytes(32) if salt is None else salt
        return self.credential(self.salted_password(password, salt, iterations), salt, iterations)


@dataclass(slots=True, frozen=True)
class ScramCredential:
    """One user's credential for one mechanism; the password cannot be recovered from it."""

    salt: bytes
    stored_key: bytes
    server_key: bytes
    iterations: int

    def __repr__(self) -> str:
        return f"ScramCredential(iterations={self.iterations})"


# The grammar of Kafka's ScramMessages (RFC 5802 section 7, without channel binding).
_SASLNAME = r"(?:[\x01-\x7F](?<![=,])|=2C|=3D)+"
_PRINTABLE = r"[\x21-\x2B\x2D-\x7E]+"
_BASE64 = r"(?:[a-zA-Z0-9/+]{4})*(?:[a-zA-Z0-9/+]{3}=|[a-zA-Z0-9/+]{2}==)?"
_EXTENSIONS = r"(?:,[a-zA-Z]+=[\x01-\x2B\x2D-\x7F]+)*"
_CLIENT_FIRST = re.compile(
    rf"n,(?:a=(?P<authzid>{_SASLNAME}))?,(?:m=[\x01-\x2B\x2D-\x7F]+,)?n=(?P<saslname>{_SASLNAME}),r=(?P<nonce>{_PRINTABLE})(?P<extensions>{_EXTENSIONS})"
)
_CLIENT_FINAL = re.compile(rf"c=(?P<channel>{_BASE64}),r=(?P<nonce>{_PRINTABLE}){_EXTENSIONS},p=(?P<proof>{_BASE64})")
_TOKEN_AUTH = "tokenauth"


def username_of(sasl_name: str) -> str:
    """RFC 5802's saslname decoded: `=2C` is a comma, `=3D` an equals sign."""
    return sasl_name.replace("=2C", ",").replace("=3D", "=")


@dataclass(slots=True, frozen=True)
class _ClientFirst:
    # As sent: Kafka compares the authorization id with the user name without decoding it.
    authorization_id: str
    sasl_name: str
    nonce: str
    extensions: dict[str, str]

    @property
    def username(self) -> str:
        return username_of(self.sasl_name)

    @property
    def bare(self) -> str:
        """client-first-message-bare as Kafka rebuilds it (ClientFirstMessage.clientFirstMessageBare)."""
        extensions = "".join(f",{name}={value}" for name, value in self.extensions.items())
        return f"n={self.sasl_name},r={self.nonce}{extensions}"


def _parse_client_first(message: bytes) -> _ClientFirst:
    text = _decode(message, "Invalid SCRAM client first message format")
    match = _CLIENT_FIRST.fullmatch(text)
    if match is None:
        raise InvalidCredentials("Invalid SCRAM client first message format")
    # Kafka's Utils.parseMap: a repeated name keeps its place and takes the last value.
    extensions = dict(item.split("=", 1) for item in match["extensions"].split(",")[1:])
    return _ClientFirst(match["authzid"] or "", match["saslname"], match["nonce"], extensions)


def _decode(message: bytes, complaint: str) -> str:
    try:
        return message.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidCredentials(complaint) from None


def _random_nonce() -> str:
    return secrets.token_urlsafe(24)


# Looks up a user's credential for a mechanism (the credential store), None for no such user.
CredentialLookup = Callable[[str, ScramMechanism], ScramCredential | None]


class TokenLogin(Protocol):
    """What a delegation token offers a SCRAM login (ottla.server.security.tokens.TokenCredential)."""

    @property
    def credential(self) -> ScramCredential: ...

    @property
    def owner(self) -> str: ...

    @property
    def expires_at_ms(self) -> int: ...


# Looks up a token id's login for a mechanism, None for no such token (an expired one is found until swept).
TokenLookup = Callable[[str, ScramMechanism], TokenLogin | None]


class ScramServer:
    """One SCRAM exchange, server side: client-first in, server-first out; client-final in,
    server-final out; then `complete`, with `principal` the user's."""

    def __init__(
        self, mechanism: ScramMechanism, lookup: CredentialLookup, server_nonce: Callable[[], str] | None = None, tokens: TokenLookup | None = None
    ) -> None:
        """`server_nonce` makes the server's half of the nonce (a test vector's fixed one);
        `tokens` finds delegation tokens (None: every token id is unknown)."""
        self.mechanism = mechanism
        self._lookup = lookup
        self._tokens = tokens
        # The owner a token login authenticates as ("User:alice"), and when its token expires.
        self._token_owner: str | None = None
        self.expires_at_ms: int | None = None
        self._server_nonce = server_nonce or _random_nonce
        self._client_first: _ClientFirst | None = None
        self._server_first = ""
        self._nonce = ""
        self._credential: ScramCredential | None = None
        self.complete = False
        self.principal: str | None = None
        self.token_authenticated = False

    @property
    def mechanism_name(self) -> str:
        return self.mechanism.mechanism_name

    def evaluate(self, message: bytes) -> bytes:
        try:
            if self._client_first is None:
                return self._first(message)
            if not self.complete and self._credential is not None:
                return self._final(message)
        except AuthenticationFailed:
            self._credential = None
            self.complete = False
            raise
        raise InvalidCredentials("Unexpected challenge in Sasl server state")

    def _first(self, message: bytes) -> bytes:
        first = _parse_client_first(message)
        self._client_first = first
        self.token_authenticated = first.extensions.get(_TOKEN_AUTH, "").lower() == "true"
        credential: ScramCredential | None
        if self.token_authenticated:
            token = None if self._tokens is None else self._tokens(first.username, self.mechanism)
            if token is None:
                raise InvalidCredentials("Token Authentication failed: Invalid tokenId")
            credential, self._token_owner, self.expires_at_ms = token.credential, token.owner, token.expires_at_ms
        else:
            credential = self._lookup(first.username, self.mechanism)
        if credential is None:
            raise InvalidCredentials("Authentication failed: Invalid user credentials")
        if first.authorization_id and first.authorization_id != first.username:
            raise AuthenticationFailed("Authentication failed: Client requested an authorization id that is different from username")
        if credential.iterations < self.mechanism.min_iterations:
            raise InvalidCredentials(f"Iterations {credential.iterations} is less than the minimum {self.mechanism.min_iterations}")
        self._credential = credential
        self._nonce = first.nonce + self._server_nonce()
        self._server_first = f"r={self._nonce},s={base64.b64encode(credential.salt).decode()},i={credential.iterations}"
        return self._server_first.encode()

    def _final(self, message: bytes) -> bytes:
        assert self._client_first is not None and self._credential is not None
        text = _decode(message, "Invalid SCRAM client final message format")
        match = _CLIENT_FINAL.fullmatch(text)
        if match is None:
            raise InvalidCredentials("Invalid SCRAM client final message format")
        # Equality, as RFC 5802 and Kafka 4.x's ScramSaslServer require (Kafka 3.8.1 to 3.9
        # accepted a nonce that merely ended with it, for librdkafka before 2.6.1).
        if match["nonce"] != self._nonce:
            raise InvalidCredentials("Invalid client nonce in the final client message.")
        # The grammar's base64 always decodes; the channel binding is not checked, only signed.
        channel = base64.b64decode(match["channel"])
        proof = base64.b64decode(match["proof"])
        without_proof = f"c={base64.b64encode(channel).decode()},r={match['nonce']}"
        auth_message = f"{self._client_first.bare},{self._server_first},{without_proof}".encode()
        credential = self._credential
        client_signature = self.mechanism.hmac(credential.stored_key, auth_message)
        if len(proof) != len(client_signature):
            # ScramFormatter.xor's IllegalArgumentException, which no SASL layer of Kafka's catches.
            raise SaslServerError(f"a SCRAM client proof of {len(proof)} bytes, where {self.mechanism_name} needs {len(client_signature)}")
        client_key = bytes(a ^ b for a, b in zip(proof, client_signature))
        if not hmac.compare_digest(self.mechanism.hash(client_key), credential.stored_key):
            raise InvalidCredentials("Invalid client credentials")
        server_signature = self.mechanism.hmac(credential.server_key, auth_message)
        self._credential = None
        self.complete = True
        # A token makes the client its owner (ScramSaslServer: the token cache's owner).
        owner = self._token_owner
        self.principal = self._client_first.username if owner is None else owner.partition(":")[2]
        return b"v=" + base64.b64encode(server_signature)

