"""How a SASL exchange fails, split as Kafka splits it: what the client may be told."""

from __future__ import annotations


class AuthenticationFailed(Exception):
    """Kafka's SaslAuthenticationException: the message goes to the client as is, so it
    names no secret and does not say whether a user exists."""


class InvalidCredentials(AuthenticationFailed):
    """Kafka's SaslException: the client is told only that its credentials were invalid
    (the message may say whether the user exists, so it stays in the broker's debug log)."""


class IllegalSaslState(Exception):
    """A request the exchange does not expect now (Kafka's IllegalSaslStateException): the
    connection is closed; when `answered`, after the request is answered with
    ILLEGAL_SASL_STATE (a Kafka request where a SaslAuthenticate was due)."""

    def __init__(self, message: str, answered: bool = False) -> None:
        super().__init__(message)
        self.answered = answered


class SaslServerError(Exception):
    """An exchange on which Kafka's SaslServer throws an unexpected exception (neither a
    SaslException nor an AuthenticationException): Kafka's Selector closes the connection
    without answering, and so does Ottla."""
