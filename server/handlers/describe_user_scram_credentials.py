"""DescribeUserScramCredentials (KIP-554): each user's SCRAM mechanisms and iterations, never
a salt or key; answered as Kafka 4.4's ScramImage.describe answers (all users for a null or
empty list, RESOURCE_NOT_FOUND for a user without credentials, DUPLICATE_RESOURCE for a
user named twice)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        DescribeUserScramCredentialsRequest,
        DescribeUserScramCredentialsResponse,
        DescribeUserScramCredentialsResponseDescribeUserScramCredentialsResult,
    )

API = ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS
VERSIONS = (0, 0)


def handle(context: RequestContext, header: RequestHeader, request: DescribeUserScramCredentialsRequest) -> DescribeUserScramCredentialsResponse:
    store = context.services.scram_credentials
    named = [user["name"] for user in request.get("users") or []]
    duplicated = {name for name in named if named.count(name) > 1}
    users = list(dict.fromkeys(named)) if named else list(store.users())
    results: list[DescribeUserScramCredentialsResponseDescribeUserScramCredentialsResult] = []
    for user in users:
        result: DescribeUserScramCredentialsResponseDescribeUserScramCredentialsResult = {
            "user": user,
            "error_code": ErrorCode.NONE,
            "error_message": None,
            "credential_infos": [],
        }
        credentials = store.mechanisms_of(user)
        if user in duplicated:
            result["error_code"] = ErrorCode.DUPLICATE_RESOURCE
            result["error_message"] = f"Cannot describe SCRAM credentials for the same user twice in a single request: {user}"
        elif not credentials:
            result["error_code"] = ErrorCode.RESOURCE_NOT_FOUND
            result["error_message"] = f"Attempt to describe a user credential that does not exist: {user}"
        else:
            result["credential_infos"] = [
                {"mechanism": mechanism.type_code, "iterations": credential.iterations}
                for mechanism, credential in sorted(credentials.items(), key=lambda item: item[0].type_code)
            ]
        results.append(result)
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": None, "results": results}
