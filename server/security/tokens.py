"""Delegation tokens (KIP-48), issued, renewed, expired and checked as Kafka 4.4's
DelegationTokenManager and DelegationTokenControlManager do.

A token is an id (a random UUID, base64) and an HMAC-SHA512 of that id keyed with
`delegation.token.secret.key`: without the key, tokens are disabled
(DELEGATION_TOKEN_AUTH_DISABLED), as in Kafka. A client logs in with SCRAM, the token id as
user name and the base64 HMAC as password, and the `tokenauth=true` extension; it is then
its token's owner. Each token has an owner, the principal that asked for it, renewers, an
issue time, an expiry time (pushed forward by renewals, never past the maximum) and a
maximum time (issue + `delegation.token.max.lifetime.ms`, or less if asked).

Tokens live in `<data dir>/delegation-tokens.json`, replaced whole and durably on each
change (`storage.files.replace_file`). As in Kafka's metadata records, the HMAC is not
stored: it is derived again from the secret key, so the file holds no credential, and a
changed key invalidates every token. An expired token stays until a sweep drops it, at most
once every `delegation.token.expiry.check.interval.ms` on the next use, as Kafka's controller
sweeps: until then Describe lists it, Renew and Expire answer DELEGATION_TOKEN_EXPIRED (but an
Expire with a negative period removes it), and a login with it succeeds into a session already
over (session lifetime 0), which ends at the connection's next request. Over PostgreSQL the tokens
are the database's, shared by every broker on it (server/security/database.py): `record_change`
then takes each change instead of the file, and `reset` puts the tokens as another broker left
them in place.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from ottla.server.security.sasl.scram import ScramCredential, ScramMechanism
from ottla.storage.files import replace_file
from ottla.wire.errors import ErrorCode

FILE_NAME = "delegation-tokens.json"
_FORMAT_VERSION = 1
DEFAULT_CHECK_INTERVAL_MS = 3_600_000  # delegation.token.expiry.check.interval.ms


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(slots=True, frozen=True)
class Token:
    """One token's information (Kafka's TokenInformation) and its HMAC."""

    token_id: str
    owner: str  # "User:alice"
    requester: str
    renewers: tuple[str, ...]
    issue_ms: int
    expiry_ms: int
    max_ms: int
    hmac: bytes = field(repr=False)

    def may_renew(self, principal: str) -> bool:
        """Who may renew or expire the token (DelegationTokenControlManager.allowedToRenew)."""
        return principal == self.owner or principal in self.renewers

    def owner_or_renewer(self, principal: str) -> bool:
        """Who sees the token and whom an owners filter matches (TokenInformation.ownerOrRenewer):
        its requester too."""
        return principal == self.requester or self.may_renew(principal)

    def expired(self, now: int) -> bool:
        return self.max_ms < now or self.expiry_ms < now


@dataclass(slots=True, frozen=True)
class TokenCredential:
    """What a SCRAM login with a token checks: the token's credential, whom it makes the client, until when."""

    credential: ScramCredential
    owner: str
    expires_at_ms: int


class DelegationTokens:
    """The tokens issued by this broker. `enabled` only with a secret key."""

    def __init__(
        self,
        path: Path | None,
        secret_key: str | None,
        max_lifetime_ms: int,
        expiry_time_ms: int,
        tokens: Iterable[Token] = (),
        check_interval_ms: int = DEFAULT_CHECK_INTERVAL_MS,
    ) -> None:
        self._path = path
        self._key = secret_key.encode() if secret_key else None
        self.max_lifetime_ms = max_lifetime_ms
        self.expiry_time_ms = expiry_time_ms
        self.check_interval_ms = check_interval_ms
        self._swept_ms = now_ms()
        self._tokens = {token.token_id: token for token in tokens}
        self._by_hmac = {token.hmac: token.token_id for token in self._tokens.values()}
        # SCRAM credentials of each token, derived on first use (4096 PBKDF2 rounds each).
        self._credentials: dict[tuple[str, ScramMechanism], ScramCredential] = {}
        # Over PostgreSQL: what records each change (created, renewed, removed ids) instead of the file.
        self.record_change: Callable[[list[Token], list[Token], list[str]], None] | None = None

    @classmethod
    def open(
        cls, data_dir: Path | None, secret_key: str | None, max_lifetime_ms: int, expiry_time_ms: int, check_interval_ms: int = DEFAULT_CHECK_INTERVAL_MS
    ) -> DelegationTokens:
        path = None if data_dir is None else data_dir / FILE_NAME
        tokens = cls(path, secret_key, max_lifetime_ms, expiry_time_ms, check_interval_ms=check_interval_ms)
        if path is not None and path.exists() and tokens._key is not None:
            for row in json.loads(path.read_text(encoding="utf-8"))["tokens"]:
                token_id = row["token_id"]
                token = Token(
                    token_id, row["owner"], row["requester"], tuple(row["renewers"]), row["issue_ms"], row["expiry_ms"], row["max_ms"], tokens._hmac(token_id)
                )
                tokens._tokens[token_id] = token
                tokens._by_hmac[token.hmac] = token_id
        return tokens

    @property
    def enabled(self) -> bool:
        return self._key is not None

    def _hmac(self, token_id: str) -> bytes:
        assert self._key is not None
        return hmac.new(self._key, token_id.encode(), hashlib.sha512).digest()

    def create(self, owner: str, requester: str, renewers: Iterable[str], max_lifetime_ms: int, now: int | None = None) -> Token:
        """A new token (DelegationTokenControlManager.createDelegationToken): its maximum is the
        lifetime asked for, capped by `delegation.token.max.lifetime.ms` (which a value <= 0 asks
        for), its expiry `delegation.token.expiry.time.ms` away, capped by the maximum."""
        issued = now_ms() if now is None else now
        lifetime = self.max_lifetime_ms if max_lifetime_ms <= 0 else min(max_lifetime_ms, self.max_lifetime_ms)
        token_id = _random_id()
        max_ms = issued + lifetime
        token = Token(token_id, owner, requester, tuple(renewers), issued, min(issued + self.expiry_time_ms, max_ms), max_ms, self._hmac(token_id))
        self._tokens[token_id] = token
        self._by_hmac[token.hmac] = token_id
        self._changed([token], [], [])
        return token

    def renew(self, token_hmac: bytes, principal: str, renew_period_ms: int, now: int | None = None) -> tuple[ErrorCode, int]:
        """(error, new expiry): now + `delegation.token.expiry.time.ms`, or the period when
        positive and shorter, never past the maximum (DelegationTokenControlManager.renewDelegationToken).
        Refused in the controller's order: not found, expired, owner mismatch; a refusal's expiry
        is 0, the field's default the controller leaves."""
        current = now_ms() if now is None else now
        token = self.by_hmac(token_hmac, current)
        if token is None:
            return ErrorCode.DELEGATION_TOKEN_NOT_FOUND, 0
        if token.expired(current):
            return ErrorCode.DELEGATION_TOKEN_EXPIRED, 0
        if not token.may_renew(principal):
            return ErrorCode.DELEGATION_TOKEN_OWNER_MISMATCH, 0
        period = self.expiry_time_ms if renew_period_ms <= 0 else min(self.expiry_time_ms, renew_period_ms)
        return self._expire_at(token, min(current + period, token.max_ms))

    def expire(self, token_hmac: bytes, principal: str, expiry_period_ms: int, now: int | None = None) -> tuple[ErrorCode, int]:
        """(error, new expiry) as DelegationTokenControlManager.expireDelegationToken: refused when
        not found, then when `principal` may not renew it (a refusal's expiry is 0); a negative
        period then removes the token at once, expired or not, and answers now; else an expired
        token is refused, and a live one expires at now + the period, never past its maximum."""
        current = now_ms() if now is None else now
        token = self.by_hmac(token_hmac, current)
        if token is None:
            return ErrorCode.DELEGATION_TOKEN_NOT_FOUND, 0
        if not token.may_renew(principal):
            return ErrorCode.DELEGATION_TOKEN_OWNER_MISMATCH, 0
        if expiry_period_ms < 0:
            self._remove(token)
            self._changed([], [], [token.token_id])
            return ErrorCode.NONE, current
        if token.expired(current):
            return ErrorCode.DELEGATION_TOKEN_EXPIRED, 0
        return self._expire_at(token, min(current + expiry_period_ms, token.max_ms))

    def _expire_at(self, token: Token, expiry_ms: int) -> tuple[ErrorCode, int]:
        renewed = self._tokens[token.token_id] = replace(token, expiry_ms=expiry_ms)
        self._changed([], [renewed], [])
        return ErrorCode.NONE, expiry_ms

    def by_hmac(self, token_hmac: bytes, now: int | None = None) -> Token | None:
        """The token `token_hmac` names, expired or not until swept."""
        self._maybe_sweep(now_ms() if now is None else now)
        token_id = self._by_hmac.get(bytes(token_hmac))
        return None if token_id is None else self._tokens[token_id]

    def tokens(self, now: int | None = None) -> Iterator[Token]:
        """Every token, expired or not until swept, oldest first."""
        self._maybe_sweep(now_ms() if now is None else now)
        return iter(sorted(self._tokens.values(), key=lambda token: token.issue_ms))

    def scram(self, token_id: str, mechanism: ScramMechanism) -> TokenCredential | None:
        """The credential a SCRAM login with `token_id` must prove, None for no such token. An
        expired token not yet swept still answers, as Kafka's ScramServerCallbackHandler takes it
        from the token cache without looking at its expiry: the login then succeeds with a session
        that is already over, and the connection closes at its next request (SaslAuthenticator)."""
        self._maybe_sweep(now_ms())
        token = self._tokens.get(token_id)
        if token is None:
            return None
        credential = self._credentials.get((token_id, mechanism))
        if credential is None:
            password = base64.b64encode(token.hmac).decode()
            credential = self._credentials[(token_id, mechanism)] = mechanism.credential_from_password(password, mechanism.min_iterations)
        return TokenCredential(credential, token.owner, token.expiry_ms)

    def _maybe_sweep(self, now: int) -> None:
        """Drop the expired tokens once `check_interval_ms` has passed since the last sweep
        (DelegationTokenControlManager.sweepExpiredDelegationTokens)."""
        if now - self._swept_ms < self.check_interval_ms:
            return
        self._swept_ms = now
        expired = [token for token in self._tokens.values() if token.expired(now)]
        for token in expired:
            self._remove(token)
        if expired:
            self._changed([], [], [token.token_id for token in expired])

    def _remove(self, token: Token) -> None:
        del self._tokens[token.token_id]
        self._by_hmac.pop(token.hmac, None)
        for mechanism in ScramMechanism:
            self._credentials.pop((token.token_id, mechanism), None)

    def reset(self, tokens: Iterable[tuple[str, str, str, tuple[str, ...], int, int, int]]) -> None:
        """Every token replaced by `tokens` (id, owner, requester, renewers, issue, expiry and
        maximum times), as the database now has them; none without a secret key."""
        if self._key is None:
            return
        self._tokens = {row[0]: Token(*row, self._hmac(row[0])) for row in tokens}
        self._by_hmac = {token.hmac: token.token_id for token in self._tokens.values()}
        self._credentials = {key: credential for key, credential in self._credentials.items() if key[0] in self._tokens}

    def _changed(self, created: list[Token], renewed: list[Token], removed: list[str]) -> None:
        if self.record_change is not None:
            self.record_change(created, renewed, removed)
        else:
            self._write()

    def _write(self) -> None:
        if self._path is None:
            return
        rows = [
            {
                "token_id": token.token_id,
                "owner": token.owner,
                "requester": token.requester,
                "renewers": list(token.renewers),
                "issue_ms": token.issue_ms,
                "expiry_ms": token.expiry_ms,
                "max_ms": token.max_ms,
            }
            for token in self._tokens.values()
        ]
        replace_file(self._path, json.dumps({"version": _FORMAT_VERSION, "tokens": rows}, indent=1).encode())


def _random_id() -> str:
    """Kafka's Uuid.randomUuid as a string: URL-safe base64 of a random UUID, drawn again when it
    would start with "-" (it would read as an option on a command line)."""
    while True:
        token_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not token_id.startswith("-"):
            return token_id
