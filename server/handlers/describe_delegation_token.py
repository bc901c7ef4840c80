"""DescribeDelegationToken (KIP-48): the tokens (expired ones too, until swept) whose owner,
requester or a renewer is one of the owners named (TokenInformation.ownerOrRenewer), every
token for a null list, none for an empty one; of those, a principal sees the tokens it owns,
requested or may renew, those it may DESCRIBE, and those of owners it may DESCRIBE_TOKENS for
(DelegationTokenManager.filterToken). They come in the order of the broker's token cache, a
ConcurrentHashMap by token id (DelegationTokenCache.tokens)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.server.handlers._delegation_tokens import refusal, split_principal
from ottla.server.java_hashing import string_hash
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
        for token in _in_cache_order(list(tokens.tokens()))
        if (owners is None or any(token.owner_or_renewer(owner) for owner in owners))
        and (
            token.owner_or_renewer(principal)
            or context.authorize(AclOperation.DESCRIBE, ResourceType.DELEGATION_TOKEN, token.token_id)
            or context.authorize(AclOperation.DESCRIBE_TOKENS, ResourceType.USER, token.owner)
        )
    ]
    return {"error_code": ErrorCode.NONE, "tokens": described, "throttle_time_ms": 0}


def _in_cache_order(tokens: list[Token]) -> list[Token]:
    """`tokens` (oldest first) as a ConcurrentHashMap keyed by token id iterates them when put
    in that order: by bin, the spread hash's low bits; within a bin as linked, a put at the tail.
    The table starts at 16 bins and doubles once as many tokens as 3/4 of its bins are in it,
    each bin split as ConcurrentHashMap.transfer splits it: the last run of nodes bound for one
    half kept in order, the nodes before it put in front of their half one by one. Tokens since
    removed are not replayed, so after more than 11 tokens at once the order may differ."""
    bins: list[list[Token]] = [[] for _ in range(16)]

    def spread(token: Token) -> int:
        h = string_hash(token.token_id)
        return (h ^ (h >> 16)) & 0x7FFFFFFF

    for count, token in enumerate(tokens, 1):
        bins[spread(token) & (len(bins) - 1)].append(token)
        if count >= len(bins) - (len(bins) >> 2):
            old = len(bins)
            grown: list[list[Token]] = [[] for _ in range(2 * old)]
            for at, chain in enumerate(bins):
                run_start = len(chain)
                while run_start > 0 and (run_start == len(chain) or spread(chain[run_start - 1]) & old == spread(chain[-1]) & old):
                    run_start -= 1
                low: list[Token] = [t for t in chain[run_start:] if not spread(t) & old]
                high: list[Token] = [t for t in chain[run_start:] if spread(t) & old]
                for t in chain[:run_start]:
                    (high if spread(t) & old else low).insert(0, t)
                grown[at], grown[at + old] = low, high
            bins = grown
    return [token for chain in bins for token in chain]


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
