"""One connection's SASL authentication, as Kafka's SaslServerAuthenticator runs it; sans-IO.

The connection asks `check(api_key, now)` before it dispatches a frame: before authentication
only ApiVersions (until one is answered without error) and SaslHandshake are served, then only
SaslAuthenticate; anything else raises `IllegalSaslState` and the connection closes: unanswered
before the handshake, after an ILLEGAL_SASL_STATE answer (`illegal_state_answer`) once a v1
handshake chose a mechanism, as Kafka's SaslServerAuthenticator.handleSaslToken answers. The
SaslHandshake and SaslAuthenticate handlers drive the exchange (`handshake`, `authenticate`);
after a v0 handshake the client sends raw tokens with no Kafka header, which the connection
hands to `evaluate_raw`. A failure leaves `failed` set: the connection sends the answer just
before it closes, connection.failed.authentication.delay.ms later; on what Kafka's SaslServer
fails with an unexpected exception (`SaslServerError`), it closes unanswered at once, as
Kafka's Selector does.

KIP-368: with `connections.max.reauth.ms` set, or a credential that expires (an OAUTHBEARER
token, a delegation token), a client of SaslAuthenticate v1+ is told its session lifetime, the
shorter of the two (0 for a credential already expired: the session is over at once); once it
is over, the connection serves only a SaslHandshake, which starts re-authentication with the
same mechanism (raw tokens after a v0 one), and must end with the same principal. A
re-authentication starts at most once a second (KafkaChannel.maybeBeginServerReauthentication):
a SaslHandshake sooner is answered ILLEGAL_SASL_STATE, as KafkaApis answers one on an
authenticated connection, or closes the connection if the session is over.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Mapping, Protocol

from ottla.server.java_hashing import java_order, sized_capacity, string_hash
from ottla.server.security.sasl.credentials import ScramCredentialStore
from ottla.server.security.sasl.errors import AuthenticationFailed, IllegalSaslState, InvalidCredentials, SaslServerError
from ottla.server.security.sasl.oauthbearer import MECHANISM as OAUTHBEARER, OAuthBearerServer, TokenValidator
from ottla.server.security.sasl.plain import MECHANISM as PLAIN, PlainServer
from ottla.server.security.sasl.scram import ScramMechanism, ScramServer, TokenLookup
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, MalformedFrame
from ottla.wire.header import peek_api
from ottla.wire.protocol import encode_response

log = logging.getLogger("ottla.sasl")

SUPPORTED_MECHANISMS = (PLAIN, *(m.mechanism_name for m in ScramMechanism), OAUTHBEARER)


class MechanismServer(Protocol):
    """A mechanism's server side: client messages in, server messages out, until complete."""

    @property
    def mechanism_name(self) -> str: ...

    complete: bool
    principal: str | None

    def evaluate(self, message: bytes) -> bytes: ...


@dataclass(slots=True, frozen=True)
class SaslSettings:
    """One listener's SASL settings."""

    enabled_mechanisms: tuple[str, ...]
    # PLAIN's users and passwords, from the listener's PlainLoginModule JAAS config.
    plain_users: Mapping[str, str] = field(default_factory=dict, repr=False)
    # connections.max.reauth.ms by mechanism: 0 (or absent) means sessions never expire.
    max_reauth_ms: Mapping[str, int] = field(default_factory=dict)
    # OAUTHBEARER's token validator (unsecured JWS, or JWKS-verified), when it is enabled.
    oauthbearer: TokenValidator | None = None


class SaslState(Enum):
    HANDSHAKE = "handshake"  # Kafka's HANDSHAKE_OR_VERSIONS_REQUEST / HANDSHAKE_REQUEST
    AUTHENTICATE = "authenticate"
    COMPLETE = "complete"
    REAUTHENTICATE = "reauthenticate"
    FAILED = "failed"


_BEFORE_HANDSHAKE = frozenset((ApiKey.API_VERSIONS, ApiKey.SASL_HANDSHAKE))
# KafkaChannel.MIN_REAUTH_INTERVAL_ONE_SECOND_NANOS: between the starts of two re-authentications.
_MIN_REAUTH_INTERVAL_S = 1.0


class SaslAuthenticator:
    def __init__(self, settings: SaslSettings, credentials: ScramCredentialStore, tokens: TokenLookup | None = None) -> None:
        """`tokens` finds the delegation tokens a SCRAM login may use (None: no tokens)."""
        self.settings = settings
        self._credentials = credentials
        self._tokens = tokens
        # Whether the client logged in with a delegation token (which may not manage tokens).
        self.token_authenticated = False
        self.state = SaslState.HANDSHAKE
        # After a SaslHandshake v0 the client sends bare tokens, not SaslAuthenticate requests.
        self.raw_tokens = False
        # A valid ApiVersions was answered before the handshake (set by the connection, which
        # sees the answer): Kafka's HANDSHAKE_REQUEST state, where another one closes the connection.
        self.versions_answered = False
        self.principal: str | None = None
        self.mechanism: str | None = None
        self._server: MechanismServer | None = None
        # Monotonic seconds at which the session ends (KIP-368), None for never.
        self.session_expires_at: float | None = None
        # The session lifetime told to the client: 0 for none.
        self._lifetime_ms = 0
        # Monotonic seconds at which the last re-authentication started, None before the first.
        self._reauth_started_at: float | None = None

    @property
    def authenticated(self) -> bool:
        return self.state is SaslState.COMPLETE

    @property
    def failed(self) -> bool:
        return self.state is SaslState.FAILED

    def check(self, api_key: int, now: float) -> None:
        """Raise IllegalSaslState unless a request of `api_key` may be served now."""
        state = self.state
        if state is SaslState.COMPLETE:
            if self.session_expires_at is not None and now >= self.session_expires_at and (api_key != ApiKey.SASL_HANDSHAKE or self._reauth_too_soon(now)):
                raise IllegalSaslState("the authenticated session expired (connections.max.reauth.ms) without re-authentication")
            return
        if state is SaslState.HANDSHAKE and api_key in _BEFORE_HANDSHAKE:
            if api_key == ApiKey.API_VERSIONS and self.versions_answered:
                raise IllegalSaslState("Unexpected ApiVersions request received during SASL authentication state HANDSHAKE_REQUEST")
            return
        if state in (SaslState.AUTHENTICATE, SaslState.REAUTHENTICATE) and api_key == ApiKey.SASL_AUTHENTICATE:
            return
        phase = "handshake" if state is SaslState.HANDSHAKE else "authentication"
        answered = state is not SaslState.HANDSHAKE
        if answered:
            self.state = SaslState.FAILED
        raise IllegalSaslState(f"Unexpected Kafka request of type {_api_name(api_key)} during SASL {phase}.", answered)

    def handshake(self, mechanism: str, version: int, now: float | None = None) -> ErrorCode:
        """SaslHandshake at monotonic `now` (default: the clock's): NONE and the exchange starts,
        or ILLEGAL_SASL_STATE (authenticated, with no session lifetime to renew or a
        re-authentication started less than a second ago), or UNSUPPORTED_SASL_MECHANISM and `failed`."""
        if self.state is SaslState.COMPLETE:
            now = time.monotonic() if now is None else now
            if self.session_expires_at is None or self._reauth_too_soon(now):
                return ErrorCode.ILLEGAL_SASL_STATE
            self._reauth_started_at = now
            if mechanism != self.mechanism:
                # Kafka's REAUTH_BAD_MECHANISM: the exchange fails at its first token.
                log.debug("re-authentication asked for %s after %s", mechanism, self.mechanism)
                self.state = SaslState.FAILED
                return ErrorCode.NONE
            self._server = self._new_server(mechanism)
            # Kafka re-authenticates with a new SaslServerAuthenticator: after a v0 handshake
            # its tokens come raw, whatever the first login used.
            self.raw_tokens = version == 0
            self.state = SaslState.REAUTHENTICATE
            return ErrorCode.NONE
        if self.state is not SaslState.HANDSHAKE:
            return ErrorCode.ILLEGAL_SASL_STATE
        if mechanism not in self.settings.enabled_mechanisms:
            log.debug("SASL mechanism %r requested by client is not enabled", mechanism)
            self.state = SaslState.FAILED
            return ErrorCode.UNSUPPORTED_SASL_MECHANISM
        self.mechanism = mechanism
        self._server = self._new_server(mechanism)
        self.raw_tokens = version == 0
        self.state = SaslState.AUTHENTICATE
        return ErrorCode.NONE

    def authenticate(self, token: bytes, version: int, now: float) -> tuple[ErrorCode, str | None, bytes, int]:
        """SaslAuthenticate: (error, message, server token, session lifetime ms)."""
        if self.state is SaslState.COMPLETE:
            return ErrorCode.ILLEGAL_SASL_STATE, "SaslAuthenticate request received after successful authentication", b"", 0
        try:
            response = self._evaluate(token, now)
        except InvalidCredentials as exc:
            log.debug("SASL authentication failed: %s", exc)
            phase = "re-authentication" if self.principal is not None else "authentication"
            message = f"Authentication failed during {phase} due to invalid credentials with SASL mechanism {self.mechanism}"
            return ErrorCode.SASL_AUTHENTICATION_FAILED, message, b"", 0
        except AuthenticationFailed as exc:
            return ErrorCode.SASL_AUTHENTICATION_FAILED, str(exc), b"", 0
        lifetime = self._lifetime_ms if self.authenticated else 0
        return ErrorCode.NONE, None, response, lifetime

    def evaluate_raw(self, token: bytes, now: float) -> bytes:
        """A raw token after a v0 handshake: the server's token, or AuthenticationFailed."""
        return self._evaluate(token, now)

    def _evaluate(self, token: bytes, now: float) -> bytes:
        server = self._server
        if server is None or self.state not in (SaslState.AUTHENTICATE, SaslState.REAUTHENTICATE):
            self.state = SaslState.FAILED
            raise AuthenticationFailed(f"Unexpected SASL token in state {self.state.value}")
        try:
            response = server.evaluate(token)
        except (AuthenticationFailed, SaslServerError):
            self.state = SaslState.FAILED
            raise
        if server.complete:
            principal = f"User:{server.principal}"
            if self.principal is not None and principal != self.principal:
                self.state = SaslState.FAILED
                raise AuthenticationFailed(
                    f"Cannot change principals during re-authentication from {_dotted(self.principal)}: {_dotted(principal)}"
                )
            self.principal = principal
            self.token_authenticated = bool(getattr(server, "token_authenticated", False))
            self.state = SaslState.COMPLETE
            lifetime_ms = self._session_lifetime_ms(server)
            self._lifetime_ms = lifetime_ms or 0
            self._server = None
            self.raw_tokens = False
            # Every client is held to the session's lifetime, as Kafka's ReauthInfo: one that
            # cannot re-authenticate (SaslAuthenticate v0, raw tokens) is closed when it ends.
            self.session_expires_at = None if lifetime_ms is None else now + lifetime_ms / 1000
        return response

    def _reauth_too_soon(self, now: float) -> bool:
        return self._reauth_started_at is not None and now - self._reauth_started_at < _MIN_REAUTH_INTERVAL_S

    def _session_lifetime_ms(self, server: MechanismServer) -> int | None:
        """connections.max.reauth.ms, capped by when the credential expires, never below 0; None
        for a session that never ends (Kafka's SaslServerAuthenticator.ReauthInfo
        .calcCompletionTimesAndReturnSessionLifetimeMs). A credential already expired (a
        delegation token not yet swept) gives 0: the session is over as it starts, so the
        connection's next request closes it (`check`), as Kafka's SocketServer closes a channel
        whose serverAuthenticationSessionExpired."""
        max_reauth_ms = self.settings.max_reauth_ms.get(self.mechanism or "", 0)
        expires_at_ms = getattr(server, "expires_at_ms", None)
        if expires_at_ms is None:
            return max_reauth_ms or None
        remaining_ms = max(int(expires_at_ms - time.time() * 1000), 0)
        return min(remaining_ms, max_reauth_ms) if max_reauth_ms else remaining_ms

    def _new_server(self, mechanism: str) -> MechanismServer:
        if mechanism == PLAIN:
            return PlainServer(self.settings.plain_users)
        if mechanism == OAUTHBEARER:
            if self.settings.oauthbearer is None:
                raise ValueError("OAUTHBEARER is enabled without a token validator")
            return OAuthBearerServer(self.settings.oauthbearer)
        scram = ScramMechanism.by_name(mechanism)
        if scram is None:
            raise ValueError(f"no server for SASL mechanism {mechanism}")
        return ScramServer(scram, self._credentials.get, tokens=self._tokens)


def handshake_mechanisms(enabled: tuple[str, ...]) -> list[str]:
    """The mechanisms a SaslHandshake answer lists, in Kafka's order: SaslServerAuthenticator
    keeps `new ArrayList<>(new HashSet<>(sasl.enabled.mechanisms))`, so they come in a Java
    HashSet's iteration order, not as configured."""
    names = list(dict.fromkeys(enabled))
    return java_order(names, string_hash, sized_capacity(len(names)))


def illegal_state_answer(frame: bytes | bytearray, message: str) -> bytes:
    """The request's answer with ILLEGAL_SASL_STATE, as Kafka's `getErrorResponse` gives it for
    a request with a top-level error code (and message, where the response has one); the
    other fields keep their defaults. MalformedFrame for an API or version Ottla cannot encode."""
    api_key, version, correlation_id = peek_api(frame)
    try:
        return encode_response(api_key, version, correlation_id, {"error_code": ErrorCode.ILLEGAL_SASL_STATE, "error_message": message})
    except (KeyError, ValueError) as exc:
        raise MalformedFrame(f"cannot answer API {api_key} v{version}: {exc}") from None


def _api_name(api_key: int) -> str:
    try:
        return ApiKey(api_key).name
    except ValueError:
        return str(api_key)


def _dotted(principal: str) -> str:
    """`User:alice` as Kafka's re-authentication message spells it: `User.alice`."""
    return principal.replace(":", ".", 1)
