"""What the four delegation-token handlers share: who may ask (KafkaApis.allowTokenRequests),
the refusals before any token is looked at, and Kafka's principal strings."""

from __future__ import annotations

from ottla.server.context import ANONYMOUS, RequestContext
from ottla.server.features import DELEGATION_TOKEN_LEVEL
from ottla.server.security.listeners import SecurityProtocol
from ottla.wire.errors import ErrorCode

USER_TYPE = "User"


def requests_allowed(context: RequestContext) -> bool:
    """Tokens are managed only over an authenticated channel, and never with a token: not on
    PLAINTEXT, not by a one-way-TLS client (ANONYMOUS on SSL), not by a token login."""
    client = context.client
    if context.sasl is not None and context.sasl.token_authenticated:
        return False
    if client.security_protocol is SecurityProtocol.PLAINTEXT:
        return False
    return not (client.security_protocol is SecurityProtocol.SSL and client.principal == ANONYMOUS)


def refusal(context: RequestContext) -> ErrorCode | None:
    """Why Describe, Renew and Expire refuse before looking at a token, in Kafka's order (a
    channel not allowed, then no secret key configured); None when they go on."""
    if not requests_allowed(context):
        return ErrorCode.DELEGATION_TOKEN_REQUEST_NOT_ALLOWED
    if not context.services.tokens.enabled:
        return ErrorCode.DELEGATION_TOKEN_AUTH_DISABLED
    return None


def change_refusal(context: RequestContext) -> ErrorCode | None:
    """Why Renew and Expire refuse before looking at a token: `refusal`'s reasons, then, in the
    controller (DelegationTokenControlManager), a metadata.version below 3.6-IV2."""
    refused = refusal(context)
    if refused is None and context.services.features.level("metadata.version") < DELEGATION_TOKEN_LEVEL:
        return ErrorCode.UNSUPPORTED_VERSION
    return refused


def refused_expiry(code: ErrorCode) -> int:
    """The expiry Renew and Expire answer with a refusal: -1 from KafkaApis' own refusal of the
    channel; the controller's refusals leave the field at its default, 0."""
    return -1 if code is ErrorCode.DELEGATION_TOKEN_REQUEST_NOT_ALLOWED else 0


def split_principal(principal: str) -> tuple[str, str]:
    """("User", "alice") from "User:alice"."""
    principal_type, _, name = principal.partition(":")
    return principal_type, name
