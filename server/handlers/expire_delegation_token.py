"""ExpireDelegationToken (KIP-48): bring a token's expiry forward (a negative period removes
it at once); only its owner or a renewer may, over a channel allowed to manage tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.server.handlers._delegation_tokens import requests_allowed
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import ExpireDelegationTokenRequest, ExpireDelegationTokenResponse

API = ApiKey.EXPIRE_DELEGATION_TOKEN
VERSIONS = (1, 2)


def handle(context: RequestContext, header: RequestHeader, request: ExpireDelegationTokenRequest) -> ExpireDelegationTokenResponse:
    tokens = context.services.tokens
    if not requests_allowed(context):
        code, expiry = ErrorCode.DELEGATION_TOKEN_REQUEST_NOT_ALLOWED, -1
    elif not tokens.enabled:
        code, expiry = ErrorCode.DELEGATION_TOKEN_AUTH_DISABLED, -1
    else:
        code, expiry = tokens.expire(bytes(request["hmac"]), context.client.principal, request["expiry_time_period_ms"])
    return {"error_code": code, "expiry_timestamp_ms": expiry, "throttle_time_ms": 0}
