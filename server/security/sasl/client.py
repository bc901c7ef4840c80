"""The client half of SASL for a broker's own connections to other brokers, as Kafka's
SaslClientAuthenticator speaks it: PLAIN (one token) and SCRAM-SHA-256/512 (RFC 5802: client
first, client final, then the server's signature checked).

Who the broker logs in as comes from where Kafka takes it: the inter-broker listener's JAAS
config for the mechanism `sasl.mechanism.inter.broker.protocol` names
(`listener.name.<listener>.<mechanism>.sasl.jaas.config`, its `username` and `password`
options), the same login module that lists PLAIN's users for the server side. The broker's
server mechanisms (ottla.server.security.sasl.scram) are reused for the hash arithmetic only;
messages here name no password.
"""

from __future__ import annotations

import base64
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ottla.server.security.sasl.errors import AuthenticationFailed
from ottla.server.security.sasl.jaas import JaasError, parse_jaas_config
from ottla.server.security.sasl.plain import MECHANISM as PLAIN
from ottla.server.security.sasl.scram import ScramMechanism

CLIENT_MECHANISMS = (PLAIN, *(mechanism.mechanism_name for mechanism in ScramMechanism))


class LoginConfigError(ValueError):
    """Inter-broker SASL settings a broker cannot log in with; the message names keys, never values."""


@dataclass(slots=True, frozen=True)
class SaslLogin:
    """Who a broker logs in to another broker as, with which mechanism."""

    mechanism: str
    username: str
    password: str = field(repr=False)

    def exchange(self) -> SaslExchange:
        """A fresh exchange for one connection."""
        if self.mechanism == PLAIN:
            return PlainExchange(self.username, self.password)
        scram = ScramMechanism.by_name(self.mechanism)
        assert scram is not None, self.mechanism
        return ScramExchange(scram, self.username, self.password)


def inter_broker_login(setting: Callable[[str], Any], listener: str) -> SaslLogin:
    """The login for the inter-broker `listener`; `setting(name)` is a setting as that listener
    sees it (BrokerConfig.listener_value)."""
    mechanism = str(setting("sasl.mechanism.inter.broker.protocol") or "")
    if mechanism not in CLIENT_MECHANISMS:
        raise LoginConfigError(
            f"sasl.mechanism.inter.broker.protocol is {mechanism or 'unset'}: a broker logs in to the others on listener {listener} "
            f"with one of {', '.join(CLIENT_MECHANISMS)}"
        )
    name = f"listener.name.{listener.lower()}.{mechanism.lower()}.sasl.jaas.config"
    text = setting(f"{mechanism.lower()}.sasl.jaas.config")
    if text is None:
        raise LoginConfigError(f"the inter-broker listener {listener} uses {mechanism}, but {name} is not set")
    try:
        options = parse_jaas_config(str(text)).options
    except JaasError as exc:
        raise LoginConfigError(f"{name}: {exc}") from None
    username, password = options.get("username"), options.get("password")
    if not username or password is None:
        raise LoginConfigError(f"{name} needs username and password options: the broker logs in to the others with them")
    return SaslLogin(mechanism, username, password)


class SaslExchange:
    """One connection's exchange: `respond(None)` gives the first token; `respond(answer)` the
    next one, None when the client has nothing more to send. AuthenticationFailed when the
    server's answers are not those of a server holding this user's credential."""

    def respond(self, challenge: bytes | None) -> bytes | None:
        raise NotImplementedError


class PlainExchange(SaslExchange):
    def __init__(self, username: str, password: str) -> None:
        self._token: bytes | None = f"\0{username}\0{password}".encode()

    def respond(self, challenge: bytes | None) -> bytes | None:
        token, self._token = self._token, None
        return token


class ScramExchange(SaslExchange):
    """Client first (`n,,n=<user>,r=<nonce>`), client final with the proof, then the server's
    signature `v=` verified, as Kafka's ScramSaslClient does."""

    def __init__(self, mechanism: ScramMechanism, username: str, password: str) -> None:
        self._mechanism = mechanism
        self._password = password
        self._nonce = secrets.token_urlsafe(24)
        self._bare = f"n={username.replace('=', '=3D').replace(',', '=2C')},r={self._nonce}"
        self._salted = b""
        self._auth_message = b""
        self._step = 0

    def respond(self, challenge: bytes | None) -> bytes | None:
        self._step += 1
        if self._step == 1:
            return f"n,,{self._bare}".encode()
        assert challenge is not None
        if self._step == 2:
            return self._final(challenge)
        if self._step == 3:
            self._verify(challenge)
            return None
        raise AuthenticationFailed("the server sent a SCRAM message after its signature")

    def _final(self, server_first: bytes) -> bytes:
        text = server_first.decode("utf-8", errors="replace")
        fields = dict(item.split("=", 1) for item in text.split(",") if "=" in item)
        nonce, iterations = fields.get("r", ""), fields.get("i", "")
        if not nonce.startswith(self._nonce) or not iterations.isdigit() or "s" not in fields:
            raise AuthenticationFailed("the server's first SCRAM message is malformed")
        self._salted = self._mechanism.salted_password(self._password, base64.b64decode(fields["s"]), int(iterations))
        without_proof = f"c={base64.b64encode(b'n,,').decode()},r={nonce}"
        self._auth_message = f"{self._bare},{text},{without_proof}".encode()
        client_key = self._mechanism.hmac(self._salted, b"Client Key")
        signature = self._mechanism.hmac(self._mechanism.hash(client_key), self._auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def _verify(self, server_final: bytes) -> None:
        server_key = self._mechanism.hmac(self._salted, b"Server Key")
        expected = b"v=" + base64.b64encode(self._mechanism.hmac(server_key, self._auth_message))
        if not hmac.compare_digest(server_final, expected):
            raise AuthenticationFailed("the server's SCRAM signature is wrong: it does not hold this user's credential")
