"""RenewDelegationToken (KIP-48): set a token's expiry to now plus the period asked, at most
`delegation.token.expiry.time.ms` and never past its maximum; only its owner or a renewer
may, over a channel allowed to manage tokens, and not once it has expired."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.server.handlers._delegation_tokens import change_refusal, refused_expiry
from ottla.wire.api import ApiKey
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import RenewDelegationTokenRequest, RenewDelegationTokenResponse

API = ApiKey.RENEW_DELEGATION_TOKEN
VERSIONS = (1, 2)


def handle(context: RequestContext, header: RequestHeader, request: RenewDelegationTokenRequest) -> RenewDelegationTokenResponse:
    refused = change_refusal(context)
    if refused is not None:
        return {"error_code": refused, "expiry_timestamp_ms": refused_expiry(refused), "throttle_time_ms": 0}
    code, expiry = context.services.tokens.renew(bytes(request["hmac"]), context.client.principal, request["renew_period_ms"])
    return {"error_code": code, "expiry_timestamp_ms": expiry, "throttle_time_ms": 0}
