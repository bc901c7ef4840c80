"""SASL/PLAIN (RFC 4616) as Kafka's PlainSaslServer checks it: one message,
`authzid NUL username NUL password`, against the users of the listener's JAAS config."""

from __future__ import annotations

import hmac
from typing import Mapping

from ottla.server.security.sasl.errors import AuthenticationFailed

MECHANISM = "PLAIN"


class PlainServer:
    mechanism_name = MECHANISM

    def __init__(self, users: Mapping[str, str]) -> None:
        self._users = users
        self.complete = False
        self.principal: str | None = None

    def evaluate(self, message: bytes) -> bytes:
        if self.complete:
            raise AuthenticationFailed("Authentication failed: unexpected message after completion")
        tokens = message.decode("utf-8", errors="replace").split("\0", 3)
        if len(tokens) != 3:
            raise AuthenticationFailed(f"Invalid SASL/PLAIN response: expected 3 tokens, got {min(len(tokens), 4)}")
        authorization_id, username, password = tokens
        if not username:
            raise AuthenticationFailed("Authentication failed: username not specified")
        if not password:
            raise AuthenticationFailed("Authentication failed: password not specified")
        expected = self._users.get(username)
        # Compared even for an unknown user, so that the time taken does not tell who exists.
        matches = hmac.compare_digest(password.encode(), (expected if expected is not None else "\0" + password).encode())
        if expected is None or not matches:
            raise AuthenticationFailed("Authentication failed: Invalid username or password")
        if authorization_id and authorization_id != username:
            raise AuthenticationFailed("Authentication failed: Client requested an authorization id that is different from username")
        self.complete = True
        self.principal = username
        return b""
