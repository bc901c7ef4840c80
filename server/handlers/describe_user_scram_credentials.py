"""DescribeUserScramCredentials (KIP-554): each user's SCRAM mechanisms and iterations, never
a salt or key; answered as Kafka 4.4's ScramImage.describe answers (all users for a null or
empty list, RESOURCE_NOT_FOUND for a user without credentials, DUPLICATE_RESOURCE for a
user named twice). A message Kafka leaves unset is its generated classes' default, "" (not
null). Kafka orders results and mechanisms by its HashMaps' iteration; Ottla by name and type."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType
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
    if not context.authorize(AclOperation.DESCRIBE, ResourceType.CLUSTER, CLUSTER_NAME):
        # KafkaApis: the request's getErrorResponse, one result per user asked for, each with the
        # error and no user name. (Asked for every user, Kafka 4.4 fails to build it and never
        # answers; this answers with the error alone.) No message: ApiError.fromThrowable leaves
        # out the error's default one, which Errors.exception() carries.
        error, message = ErrorCode.CLUSTER_AUTHORIZATION_FAILED, None
        refused: list[DescribeUserScramCredentialsResponseDescribeUserScramCredentialsResult] = [
            {"user": "", "error_code": error, "error_message": message, "credential_infos": []} for _ in request.get("users") or ()
        ]
        return {"throttle_time_ms": 0, "error_code": error, "error_message": message, "results": refused}
    store = context.services.scram_credentials
    named = [user["name"] for user in request.get("users") or []]
    duplicated = {name for name in named if named.count(name) > 1}
    users = list(dict.fromkeys(named)) if named else list(store.users())
    results: list[DescribeUserScramCredentialsResponseDescribeUserScramCredentialsResult] = []
    for user in users:
        result: DescribeUserScramCredentialsResponseDescribeUserScramCredentialsResult = {
            "user": user,
            "error_code": ErrorCode.NONE,
            "error_message": "",
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
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": "", "results": results}
