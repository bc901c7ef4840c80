"""SASL/OAUTHBEARER (RFC 7628) as Kafka's OAuthBearerSaslServer runs it, with Kafka's two
broker-side token validators.

The client's one message is `n,[a=<authzid>],\\x01auth=Bearer <token>\\x01[key=value\\x01...]\\x01`
(other keys are SASL extensions, KIP-342). A token that does not validate is answered with an
RFC 7628 error challenge, `{"status":"invalid_token"}`; the client acknowledges it with a lone
`\\x01` and the exchange fails with that JSON as its message, as Kafka's does.

- `UnsecuredJwsValidator` is Kafka's default (OAuthBearerUnsecuredValidatorCallbackHandler), for
  development only: `alg: none` tokens, claims checked but nothing signed, configured by the
  `unsecuredValidator*` options of the listener's OAuthBearerLoginModule JAAS config.
- `JwksValidator` is Kafka's OAuthBearerValidatorCallbackHandler (BrokerJwtValidator): RS256/384/512
  and ES256/384/512 signatures checked against a JSON Web Key Set read from
  `sasl.oauthbearer.jwks.endpoint.url`, then `exp`, `iat`, `nbf`, the issuer, the audience and the
  subject claim, with `sasl.oauthbearer.clock.skew.seconds` of tolerance.

Both give a principal (the subject claim) and the token's expiry, which bounds the session
(KIP-368). Signatures are checked with `cryptography` (pyca), already the broker's library for
X.509 and PKCS12: JWS needs only its RSA and EC verification, so no JWT library is added.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import re
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

from ottla.server.security.sasl.errors import AuthenticationFailed, InvalidCredentials

log = logging.getLogger("ottla.sasl")

MECHANISM = "OAUTHBEARER"
# Kafka's OAuthBearerValidatorCallbackHandler, under its 4.x name and its 3.x one.
JWKS_CALLBACK_HANDLERS = (
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
    "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerValidatorCallbackHandler",
)
UNSECURED_CALLBACK_HANDLER = "org.apache.kafka.common.security.oauthbearer.internals.unsecured.OAuthBearerUnsecuredValidatorCallbackHandler"

# OAuthBearerClientInitialResponse's grammar.
_SEPARATOR = "\x01"
_SASLNAME = r"(?:[\x01-\x7F](?<![=,])|=2C|=3D)+"
_CLIENT_FIRST = re.compile(rf"n,(?:a=(?P<authzid>{_SASLNAME}))?,\x01(?P<pairs>(?:[A-Za-z]+=[\x21-\x7E \t\r\n]+\x01)*)\x01", re.S)
_AUTH = re.compile(r"(?P<scheme>\w+) +(?P<token>[-_.a-zA-Z0-9]+)")


class TokenRejected(Exception):
    """A token that does not validate: `status` and `scope` go into the RFC 7628 challenge;
    the message only to the broker's debug log (it may quote the token's claims)."""

    def __init__(self, message: str, status: str = "invalid_token", scope: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.scope = scope


@dataclass(slots=True, frozen=True)
class BearerToken:
    principal: str
    scope: frozenset[str]
    # Wall-clock milliseconds at which the token expires: the session may not outlive it.
    expires_at_ms: int
    claims: Mapping[str, Any] = field(repr=False)


class TokenValidator(Protocol):
    def validate(self, token: str) -> BearerToken: ...


Clock = Callable[[], float]  # wall-clock seconds, time.time


def _b64url(part: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise TokenRejected("a JWS part is not base64url") from None


def _not_json(constant: str) -> float:
    raise ValueError(f"{constant} is not JSON")


def _json_object(part: str, what: str) -> dict[str, Any]:
    """Strict JSON, as Kafka's parser: Python's would take NaN and Infinity."""
    try:
        value = json.loads(_b64url(part), parse_constant=_not_json)
    except (ValueError, UnicodeDecodeError):
        raise TokenRejected(f"the JWS {what} is not JSON") from None
    if not isinstance(value, dict):
        raise TokenRejected(f"the JWS {what} is not a JSON object")
    return value


def _number_claim(claims: Mapping[str, Any], name: str, required: bool) -> float | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise TokenRejected(f"no {name!r} claim")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TokenRejected(f"the {name!r} claim is not a number")
    try:
        number = float(value)
    except OverflowError:
        raise TokenRejected(f"the {name!r} claim is out of range") from None
    if not math.isfinite(number):
        raise TokenRejected(f"the {name!r} claim is out of range")
    return number


def _subject(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value.strip():
        raise TokenRejected(f"no principal name in JWT claim: {name}")
    return value


def _scope(claims: Mapping[str, Any], name: str) -> frozenset[str]:
    """A string scope is one element, a list is its strings, as Kafka's validators read it."""
    value = claims.get(name)
    if isinstance(value, str):
        return frozenset([value.strip()]) if value.strip() else frozenset()
    if isinstance(value, list):
        return frozenset(item for item in value if isinstance(item, str))
    return frozenset()


class UnsecuredJwsValidator:
    """Kafka's OAuthBearerUnsecuredValidatorCallbackHandler: an `alg: none` JWS with an empty
    signature, a principal claim, `exp` (and `iat` if present) within the allowed clock skew,
    and every `unsecuredValidatorRequiredScope` element in the token's scope."""

    def __init__(self, options: Mapping[str, str], clock: Clock = time.time) -> None:
        self.principal_claim = options.get("unsecuredValidatorPrincipalClaimName", "sub").strip() or "sub"
        self.scope_claim = options.get("unsecuredValidatorScopeClaimName", "scope").strip() or "scope"
        required = options.get("unsecuredValidatorRequiredScope", "")
        self.required_scope = [item.strip() for item in required.split(",") if item.strip()]
        skew = options.get("unsecuredValidatorAllowableClockSkewMs", "0").strip() or "0"
        if not skew.isdigit():
            raise ValueError("unsecuredValidatorAllowableClockSkewMs must be a non-negative number")
        self.skew_ms = int(skew)
        self._clock = clock

    def validate(self, token: str) -> BearerToken:
        if ".." in token:
            raise TokenRejected("Malformed compact serialization contains '..'")
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenRejected("an unsecured JWS has three parts, the last one empty")
        header, claims = _json_object(parts[0], "header"), _json_object(parts[1], "claims")
        if header.get("alg") != "none":
            raise TokenRejected("Unsecured JWS must have 'none' for an algorithm")
        if parts[2]:
            raise TokenRejected("Unsecured JWS must not contain a digital signature")
        now_ms = self._clock() * 1000
        expires = _number_claim(claims, "exp", required=True)
        assert expires is not None
        principal = _subject(claims, self.principal_claim)
        issued = _number_claim(claims, "iat", required=False)
        if issued is not None and now_ms + self.skew_ms < issued * 1000:
            raise TokenRejected("the token's issued-at time is in the future")
        if now_ms > expires * 1000 + self.skew_ms:
            raise TokenRejected("the token has expired")
        if issued is not None and expires <= issued:
            raise TokenRejected("the token's expiration time is not after its issued-at time")
        scope = _scope(claims, self.scope_claim)
        for element in self.required_scope:
            if element not in scope:
                # Java's List.toString, as Kafka's challenge spells the required scope.
                raise TokenRejected(f"the token's scope lacks {element!r}", "insufficient_scope", f"[{', '.join(self.required_scope)}]")
        return BearerToken(principal, scope, int(expires * 1000), claims)


# JWS algorithms by name: (key type, hash).
_ALGORITHMS = {
    "RS256": ("RSA", "SHA256"), "RS384": ("RSA", "SHA384"), "RS512": ("RSA", "SHA512"),
    "ES256": ("EC", "SHA256"), "ES384": ("EC", "SHA384"), "ES512": ("EC", "SHA512"),
}
_CURVES = {"P-256": "SECP256R1", "P-384": "SECP384R1", "P-521": "SECP521R1"}


@dataclass(slots=True, frozen=True)
class _Jwk:
    kid: str | None
    kty: str
    key: Any  # a cryptography public key


def _integer(value: str) -> int:
    return int.from_bytes(_b64url(value), "big")


def _public_key(entry: Mapping[str, Any]) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if entry.get("kty") == "RSA":
        return rsa.RSAPublicNumbers(_integer(entry["e"]), _integer(entry["n"])).public_key()
    curve = getattr(ec, _CURVES[entry["crv"]])()
    return ec.EllipticCurvePublicNumbers(_integer(entry["x"]), _integer(entry["y"]), curve).public_key()


def read_jwks(url: str, timeout: float = 10.0) -> list[_Jwk]:
    """The signature keys (`use` absent or `sig`; RSA and EC) of the JWKS at `url`: a file URL
    (`file:///etc/kafka/jwks.json`) or an http(s) one. Other keys are skipped, as jose4j does."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        text = Path(urllib.request.url2pathname(parsed.path)).read_text(encoding="utf-8")
    elif parsed.scheme in ("http", "https"):
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 - the operator's URL
            text = answer.read().decode("utf-8")
    else:
        raise ValueError("sasl.oauthbearer.jwks.endpoint.url must be a file, http or https URL")
    keys = []
    for entry in json.loads(text).get("keys", []):
        if entry.get("use", "sig") != "sig" or entry.get("kty") not in ("RSA", "EC"):
            continue
        try:
            keys.append(_Jwk(entry.get("kid"), entry["kty"], _public_key(entry)))
        except (KeyError, ValueError, TypeError):
            log.warning("skipping a malformed key of the JWKS at %s", url)
    return keys


class JwksValidator:
    """Kafka's BrokerJwtValidator: a signed JWS (never `alg: none`) whose key is in the JWKS,
    `exp` and `iat` required, `nbf` honoured, `iss` and `aud` checked when expected ones are
    configured, and a non-blank subject claim. A file JWKS is read again after
    `sasl.oauthbearer.jwks.endpoint.refresh.ms`, or when a token names a key id it lacks; an
    http(s) one is fetched at start-up only (a fetch would block the broker's event loop)."""

    def __init__(
        self,
        url: str,
        *,
        expected_audience: tuple[str, ...] = (),
        expected_issuer: str | None = None,
        subject_claim: str = "sub",
        scope_claim: str = "scope",
        clock_skew_seconds: int = 30,
        refresh_ms: int = 3_600_000,
        clock: Clock = time.time,
    ) -> None:
        self.url = url
        self.expected_audience = expected_audience
        self.expected_issuer = expected_issuer
        self.subject_claim = subject_claim
        self.scope_claim = scope_claim
        self.skew = clock_skew_seconds
        self.refresh_seconds = refresh_ms / 1000
        self._clock = clock
        self._keys = read_jwks(url)
        self._read_at = clock()
        self._refreshable = urllib.parse.urlparse(url).scheme == "file"

    def _candidates(self, kid: str | None, kty: str) -> list[_Jwk]:
        if self._refreshable:
            known = kid is None or any(key.kid == kid for key in self._keys)
            # An unknown key id is re-read at most once a second: a flood of bogus ids costs one read.
            stale = self._clock() - self._read_at > (self.refresh_seconds if known else 1.0)
            if stale:
                try:
                    self._keys = read_jwks(self.url)
                except (OSError, ValueError) as exc:
                    log.warning("cannot read the JWKS at %s again, keeping the keys read before: %s", self.url, exc)
                self._read_at = self._clock()
        return [key for key in self._keys if key.kty == kty and (kid is None or key.kid == kid)]

    def validate(self, token: str) -> BearerToken:
        parts = token.split(".")
        if len(parts) != 3 or not all(parts):
            raise TokenRejected("a JWS has three non-empty parts")
        header, claims = _json_object(parts[0], "header"), _json_object(parts[1], "claims")
        algorithm = _ALGORITHMS.get(str(header.get("alg")))
        if algorithm is None:
            raise TokenRejected(f"JWS algorithm {header.get('alg')!r} is not allowed")
        kid = header.get("kid")
        signed = f"{parts[0]}.{parts[1]}".encode()
        signature = _b64url(parts[2])
        if not any(_verifies(key.key, algorithm, signature, signed) for key in self._candidates(kid if isinstance(kid, str) else None, algorithm[0])):
            raise TokenRejected("no key of the JWKS verifies the token's signature")
        now = self._clock()
        expires = _number_claim(claims, "exp", required=True)
        issued = _number_claim(claims, "iat", required=True)
        not_before = _number_claim(claims, "nbf", required=False)
        assert expires is not None and issued is not None
        if now - self.skew >= expires:
            raise TokenRejected("the token has expired")
        if not_before is not None and now + self.skew < not_before:
            raise TokenRejected("the token is not valid yet (nbf)")
        if self.expected_issuer is not None and claims.get("iss") != self.expected_issuer:
            raise TokenRejected("the token's issuer is not the expected one")
        if self.expected_audience:
            audience = claims.get("aud")
            audiences = [audience] if isinstance(audience, str) else audience if isinstance(audience, list) else []
            if not set(self.expected_audience) & set(audiences):
                raise TokenRejected("the token's audience is not an expected one")
        principal = _subject(claims, self.subject_claim)
        return BearerToken(principal, _scope(claims, self.scope_claim), int(expires * 1000), claims)


def _verifies(key: Any, algorithm: tuple[str, str], signature: bytes, signed: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    kind, hash_name = algorithm
    digest = getattr(hashes, hash_name)()
    try:
        if kind == "RSA":
            key.verify(signature, signed, padding.PKCS1v15(), digest)
        else:
            # JWS carries an EC signature as r || s (RFC 7518 section 3.4), not DER.
            half = len(signature) // 2
            if len(signature) % 2 or half != (key.curve.key_size + 7) // 8:
                return False
            der = encode_dss_signature(int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big"))
            key.verify(der, signed, ec.ECDSA(digest))
    except InvalidSignature:
        return False
    return True


class OAuthBearerServer:
    """One OAUTHBEARER exchange, server side (Kafka's OAuthBearerSaslServer)."""

    mechanism_name = MECHANISM

    def __init__(self, validator: TokenValidator) -> None:
        self._validator = validator
        self._error: str | None = None
        self.complete = False
        self.principal: str | None = None
        self.token: BearerToken | None = None
        self.extensions: dict[str, str] = {}

    @property
    def expires_at_ms(self) -> int | None:
        return None if self.token is None else self.token.expires_at_ms

    def evaluate(self, message: bytes) -> bytes:
        if self.complete:
            raise InvalidCredentials("unexpected OAUTHBEARER message after completion")
        if message == _SEPARATOR.encode() and self._error is not None:
            # The client's acknowledgement of our error challenge (RFC 7628 section 3.2.3).
            raise AuthenticationFailed(self._error)
        self._error = None
        try:
            text = message.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidCredentials("Invalid OAUTHBEARER client first message") from None
        match = _CLIENT_FIRST.fullmatch(text)
        if match is None:
            raise InvalidCredentials("Invalid OAUTHBEARER client first message")
        pairs = dict(pair.split("=", 1) for pair in match["pairs"].split(_SEPARATOR) if pair)
        auth = pairs.pop("auth", None)
        if auth is None:
            raise InvalidCredentials("Invalid OAUTHBEARER client first message: 'auth' not specified")
        bearer = _AUTH.fullmatch(auth)
        if bearer is None:
            raise InvalidCredentials("Invalid OAUTHBEARER client first message: invalid 'auth' format")
        if bearer["scheme"].lower() != "bearer":
            raise InvalidCredentials(f"Invalid scheme in OAUTHBEARER client first message: {bearer['scheme']}")
        try:
            token = self._validator.validate(bearer["token"])
        except TokenRejected as exc:
            log.debug("OAUTHBEARER token rejected: %s", exc)
            self._error = _error_json(exc.status, exc.scope)
            return self._error.encode()
        # Compared as sent, =2C and =3D undecoded: Kafka's OAuthBearerClientInitialResponse
        # keeps the authzid's saslname escapes, so a principal with "," or "=" never matches one.
        authorization_id = match["authzid"] or ""
        if authorization_id and authorization_id != token.principal:
            raise AuthenticationFailed(
                f"Authentication failed: Client requested an authorization id ({authorization_id}) that is different from the token's principal name ({token.principal})"
            )
        # Kafka's default validators accept every extension; none of them changes who the client is.
        self.extensions = pairs
        self.token = token
        self.principal = token.principal
        self.complete = True
        return b""


def _error_json(status: str, scope: str | None) -> str:
    """OAuthBearerSaslServer.jsonErrorResponse, byte for byte."""
    text = f'{{"status":"{status}"'
    if scope is not None:
        text += f', "scope":"{scope}"'
    return text + "}"
