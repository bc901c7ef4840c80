"""Console logins: with an authorizer, a SASL listener or one requiring TLS client certificates
configured, the console asks who you are.

A login is checked as the broker checks a Kafka client's SASL exchange, with the same code
(`ottla.server.security.sasl`): PLAIN against the users of a SASL listener's PlainLoginModule
JAAS config, SCRAM against the broker's SCRAM credentials (the password salted with the stored
salt and iterations must give the stored key). The session it opens is a random cookie naming
the principal (`User:<name>`); every API call then acts as that principal, so the ACLs that
bind its Kafka clients bind it in the console too. Without security the console acts as
ANONYMOUS, as a PLAINTEXT client does, and asks nothing.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

from ottla.server.context import ANONYMOUS
from ottla.server.security.listeners import configured_listeners
from ottla.server.security.sasl import AuthenticationFailed, listener_sasl_settings
from ottla.server.security.sasl.plain import MECHANISM as PLAIN, PlainServer
from ottla.server.security.sasl.scram import MIN_ITERATIONS, ScramMechanism

log = logging.getLogger(__name__)

COOKIE = "ottla_session"
# A session lasts a working day; the oldest go first past MAX_SESSIONS, so logins cannot grow memory.
SESSION_SECONDS = 8 * 3600
MAX_SESSIONS = 1000


@dataclass(slots=True, frozen=True)
class Session:
    principal: str
    expires: float


class LoginFailed(Exception):
    """Wrong user or password; the message does not say which."""


class Logins:
    """The sessions of one HTTP listener, and whether it needs them at all."""

    def __init__(self, broker: Any) -> None:
        self.broker = broker
        self._sessions: dict[str, Session] = {}

    @functools.cached_property
    def _plain_users(self) -> dict[str, str]:
        config = self.broker.config
        users: dict[str, str] = {}
        for listener in configured_listeners(config):
            if listener.protocol.uses_sasl:
                settings = listener_sasl_settings(functools.partial(config.listener_value, listener.name), listener.name)
                if PLAIN in settings.enabled_mechanisms:
                    users.update(settings.plain_users)
        return users

    @functools.cached_property
    def required(self) -> bool:
        """Whether the console asks for a login: when the broker authorizes or authenticates,
        by SASL or by a TLS client certificate it requires (ssl.client.auth=required): a
        console acting as ANONYMOUS there would give anyone who reaches it what the Kafka
        listeners refuse them. Such a broker's console logs in with SCRAM credentials."""
        if self.broker.services is not None and self.broker.services.authorizer is not None:
            return True
        config = self.broker.config
        return any(
            listener.protocol.uses_sasl or (listener.protocol.uses_tls and config.listener_value(listener.name, "ssl.client.auth") == "required")
            for listener in configured_listeners(config)
        )

    def principal(self, token: str | None) -> str | None:
        """Who the session `token` is, ANONYMOUS when no login is required, None when it must log in."""
        if not self.required:
            return ANONYMOUS
        session = self._sessions.get(token or "")
        if session is None or session.expires < time.time():
            self._sessions.pop(token or "", None)
            return None
        return session.principal

    async def login(self, username: str, password: str, address: str) -> tuple[str, str]:
        """A new session for `username`, checked by PLAIN or SCRAM: (token, principal). The
        password is hashed in a thread, and a user without SCRAM credentials costs the same
        PBKDF2 as one with them, so a login's time does not tell which users exist. A failure
        is answered after connection.failed.authentication.delay.ms, as Kafka closes a failed
        SASL connection, to slow a password guesser without holding the event loop."""
        principal = f"User:{username}"
        stored = self._scram_credentials(username)
        if not await asyncio.to_thread(self._check, username, password, stored):
            log.info("console login failed for %r from %s", principal, address)
            await asyncio.sleep(self.broker.config.value("connection.failed.authentication.delay.ms") / 1000)
            raise LoginFailed("wrong user name or password")
        log.info("console login of %r from %s", principal, address)
        while len(self._sessions) >= MAX_SESSIONS:
            del self._sessions[next(iter(self._sessions))]
        token = secrets.token_urlsafe(32)
        self._sessions[token] = Session(principal, time.time() + SESSION_SECONDS)
        return token, principal

    def logout(self, token: str | None) -> None:
        self._sessions.pop(token or "", None)

    def _plain_ok(self, username: str, password: str) -> bool:
        if not self._plain_users:
            return False
        try:
            PlainServer(self._plain_users).evaluate(f"\0{username}\0{password}".encode())
        except AuthenticationFailed:
            return False
        return True

    def _scram_credentials(self, username: str) -> list[tuple[Any, Any]]:
        """(mechanism, stored credential) of each SCRAM mechanism `username` has, read on the loop."""
        services = self.broker.services
        return [] if services is None else list(services.scram_credentials.mechanisms_of(username).items())

    def _check(self, username: str, password: str, stored: list[tuple[Any, Any]]) -> bool:
        """Whether `password` is `username`'s, by PLAIN or by its SCRAM credentials `stored`;
        without any, one PBKDF2 of a default credential is spent all the same."""
        if self._plain_ok(username, password):
            return True
        if not stored:
            ScramMechanism.SCRAM_SHA_512.credential_from_password(password, MIN_ITERATIONS)
            return False
        for mechanism, credential in stored:
            given = mechanism.credential_from_password(password, credential.iterations, credential.salt)
            if hmac.compare_digest(given.stored_key, credential.stored_key):
                return True
        return False
