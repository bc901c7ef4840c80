"""DescribeDelegationToken (KIP-48): the tokens (expired ones too, until swept) whose owner,
requester or a renewer is one of the owners named (TokenInformation.ownerOrRenewer), every
token for a null list, none for an empty one; of those, a principal sees the tokens it owns,
requested or may renew, those it may DESCRIBE, and those of owners it may DESCRIBE_TOKENS for
(DelegationTokenManager.filterToken)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.server.handlers._delegation_tokens import refusal, split_principal
from ottla.server.security.authorizer import AclOperation, ResourceType
from ottla.server.security.tokens import Token
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import DescribeDelegationTokenRequest, DescribeDelegationTokenResponse, DescribeDelegationTokenResponseDescribedDelegationToken

API = ApiKey.DESCRIBE_DELEGATION_TOKEN
VERSIONS = (1, 3)


def handle(context: RequestContext, header: RequestHeader, request: DescribeDelegationTokenRequest) -> DescribeDelegationTokenResponse:
    refused = refusal(context)
    if refused is not None:
        return {"error_code": refused, "tokens": [], "throttle_time_ms": 0}
    tokens = context.services.tokens
    named = request["owners"]
    owners = None if named is None else [f"{owner['principal_type']}:{owner['principal_name']}" for owner in named]
    principal = context.client.principal
    described = [
        _described(token)
        for token in tokens.tokens()
        if (owners is None or any(token.owner_or_renewer(owner) for owner in owners))
        and (
            token.owner_or_renewer(principal)
            or context.authorize(AclOperation.DESCRIBE, ResourceType.DELEGATION_TOKEN, token.token_id)
            or context.authorize(AclOperation.DESCRIBE_TOKENS, ResourceType.USER, token.owner)
        )
    ]
    return {"error_code": ErrorCode.NONE, "tokens": described, "throttle_time_ms": 0}


def _described(token: Token) -> DescribeDelegationTokenResponseDescribedDelegationToken:
    owner_type, owner_name = split_principal(token.owner)
    requester_type, requester_name = split_principal(token.requester)
    return {
        "principal_type": owner_type,
        "principal_name": owner_name,
        "token_requester_principal_type": requester_type,
        "token_requester_principal_name": requester_name,
        "issue_timestamp": token.issue_ms,
        "expiry_timestamp": token.expiry_ms,
        "max_timestamp": token.max_ms,
        "token_id": token.token_id,
        "hmac": token.hmac,
        "renewers": [{"principal_type": kind, "principal_name": name} for kind, name in map(split_principal, token.renewers)],
    }
