"""CreateDelegationToken (KIP-48): a token for the requester, or (v3, KIP-373) for another
owner the requester may CREATE_TOKENS for, checked in KafkaApis' order: an allowed channel
(DELEGATION_TOKEN_REQUEST_NOT_ALLOWED), the owner's ACL (DELEGATION_TOKEN_AUTHORIZATION_FAILED),
User renewers only (INVALID_PRINCIPAL_TYPE; the owner's type is not checked), then, in the
controller, a secret key configured (DELEGATION_TOKEN_AUTH_DISABLED) and metadata.version 3.6-IV2
or above (UNSUPPORTED_VERSION). KafkaApis' refusals carry
-1 timestamps; the controller's leave them at their default, 0. An owner named with a null
type fails Kafka's KafkaPrincipal constructor before any check: UNKNOWN_SERVER_ERROR, answered
by the request's getErrorResponse (ANONYMOUS as both owner and requester)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import ANONYMOUS, RequestContext
from ottla.server.features import DELEGATION_TOKEN_LEVEL
from ottla.server.handlers._delegation_tokens import USER_TYPE, requests_allowed, split_principal
from ottla.server.security.authorizer import AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import CreateDelegationTokenRequest, CreateDelegationTokenResponse

API = ApiKey.CREATE_DELEGATION_TOKEN
VERSIONS = (1, 3)


def handle(context: RequestContext, header: RequestHeader, request: CreateDelegationTokenRequest) -> CreateDelegationTokenResponse:
    requester = context.client.principal
    owner_type, owner_name = request.get("owner_principal_type"), request.get("owner_principal_name")
    if owner_name and owner_type is None:
        return _error(ErrorCode.UNKNOWN_SERVER_ERROR, ANONYMOUS, ANONYMOUS)
    # KafkaApis: a null or empty owner name means the requester.
    owner = requester if not owner_name else f"{owner_type}:{owner_name}"
    if not requests_allowed(context):
        return _error(ErrorCode.DELEGATION_TOKEN_REQUEST_NOT_ALLOWED, owner, requester)
    if owner != requester and not context.authorize(AclOperation.CREATE_TOKENS, ResourceType.USER, owner):
        return _error(ErrorCode.DELEGATION_TOKEN_AUTHORIZATION_FAILED, owner, requester)
    renewers = [(renewer["principal_type"], renewer["principal_name"]) for renewer in request["renewers"]]
    if any(principal_type != USER_TYPE for principal_type, _ in renewers):
        return _error(ErrorCode.INVALID_PRINCIPAL_TYPE, owner, requester)
    tokens = context.services.tokens
    if not tokens.enabled:
        return _error(ErrorCode.DELEGATION_TOKEN_AUTH_DISABLED, owner, requester, timestamp=0)
    if context.services.features.level("metadata.version") < DELEGATION_TOKEN_LEVEL:
        return _error(ErrorCode.UNSUPPORTED_VERSION, owner, requester, timestamp=0)
    token = tokens.create(owner, requester, [f"{t}:{n}" for t, n in renewers], request["max_lifetime_ms"])
    response = _error(ErrorCode.NONE, owner, requester)
    response["issue_timestamp_ms"] = token.issue_ms
    response["expiry_timestamp_ms"] = token.expiry_ms
    response["max_timestamp_ms"] = token.max_ms
    response["token_id"] = token.token_id
    response["hmac"] = token.hmac
    return response


def _error(code: ErrorCode, owner: str, requester: str, timestamp: int = -1) -> CreateDelegationTokenResponse:
    owner_type, owner_name = split_principal(owner)
    requester_type, requester_name = split_principal(requester)
    return {
        "error_code": code,
        "principal_type": owner_type,
        "principal_name": owner_name,
        "token_requester_principal_type": requester_type,
        "token_requester_principal_name": requester_name,
        "issue_timestamp_ms": timestamp,
        "expiry_timestamp_ms": timestamp,
        "max_timestamp_ms": timestamp,
        "token_id": "",
        "hmac": b"",
        "throttle_time_ms": 0,
    }
