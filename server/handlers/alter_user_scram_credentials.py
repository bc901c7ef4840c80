"""AlterUserScramCredentials (KIP-554): delete and upsert SCRAM credentials, judged per user
as Kafka 4.4's ScramControlManager.alterCredentials judges them: a user altered twice in one
request gets DUPLICATE_RESOURCE (and none of its alterations apply), an unknown mechanism
UNSUPPORTED_SASL_MECHANISM, an empty name (checked first) or iterations outside 4096..16384
UNACCEPTABLE_CREDENTIAL, deleting a credential that does not exist RESOURCE_NOT_FOUND, an
empty salted password UNKNOWN_SERVER_ERROR (Kafka's HMAC refuses the empty key). Below
metadata.version 3.5-IV2 every user gets UNSUPPORTED_VERSION instead (none is kept, so none
is ever seen twice).
The client salts the password; the broker keeps only the keys derived from it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.server.features import SCRAM_LEVEL
from ottla.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType
from ottla.server.security.refusals import needs_permission
from ottla.server.security.sasl import ScramCredential, ScramMechanism
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        AlterUserScramCredentialsRequest,
        AlterUserScramCredentialsResponse,
        AlterUserScramCredentialsResponseAlterUserScramCredentialsResult,
    )

API = ApiKey.ALTER_USER_SCRAM_CREDENTIALS
VERSIONS = (0, 0)

_TWICE = "A user credential cannot be altered twice in the same request"
_UNKNOWN_MECHANISM = (ErrorCode.UNSUPPORTED_SASL_MECHANISM, "Unknown SCRAM mechanism")
_EMPTY_NAME = (ErrorCode.UNACCEPTABLE_CREDENTIAL, "Username must not be empty")
_UNSUPPORTED = (ErrorCode.UNSUPPORTED_VERSION, "The current metadata.version does not support SCRAM")


def handle(context: RequestContext, header: RequestHeader, request: AlterUserScramCredentialsRequest) -> AlterUserScramCredentialsResponse:
    if not context.authorize(AclOperation.ALTER, ResourceType.CLUSTER, CLUSTER_NAME):
        # ControllerApis: the request's error response, every user named once, sorted.
        users = sorted({entry["name"] for entry in (*request["deletions"], *request["upsertions"])})
        error, message = ErrorCode.CLUSTER_AUTHORIZATION_FAILED, needs_permission(context, AclOperation.ALTER)
        return {"throttle_time_ms": 0, "results": [{"user": user, "error_code": error, "error_message": message} for user in users]}
    store = context.services.scram_credentials
    supported = context.services.features.level("metadata.version") >= SCRAM_LEVEL
    errors: dict[str, tuple[ErrorCode, str | None]] = {}
    deletions: dict[str, ScramMechanism] = {}
    upsertions: dict[str, tuple[ScramMechanism, bytes, bytes, int]] = {}
    for deletion in request["deletions"]:
        name = deletion["name"]
        if name in errors:
            continue
        mechanism = ScramMechanism.by_type(deletion["mechanism"])
        if deletions.pop(name, None) is not None:
            errors[name] = (ErrorCode.DUPLICATE_RESOURCE, _TWICE)
        elif not supported:
            errors[name] = _UNSUPPORTED
        elif not name:
            errors[name] = _EMPTY_NAME
        elif mechanism is None:
            errors[name] = _UNKNOWN_MECHANISM
        elif store.get(name, mechanism) is None:
            errors[name] = (ErrorCode.RESOURCE_NOT_FOUND, "Attempt to delete a user credential that does not exist")
        else:
            deletions[name] = mechanism
    for upsertion in request["upsertions"]:
        name = upsertion["name"]
        if name in errors:
            continue
        mechanism = ScramMechanism.by_type(upsertion["mechanism"])
        iterations = upsertion["iterations"]
        if deletions.pop(name, None) is not None or upsertions.pop(name, None) is not None:
            errors[name] = (ErrorCode.DUPLICATE_RESOURCE, _TWICE)
        elif not supported:
            errors[name] = _UNSUPPORTED
        elif not name:
            errors[name] = _EMPTY_NAME
        elif mechanism is None:
            errors[name] = _UNKNOWN_MECHANISM
        elif iterations < mechanism.min_iterations:
            errors[name] = (ErrorCode.UNACCEPTABLE_CREDENTIAL, "Too few iterations")
        elif iterations > mechanism.max_iterations:
            errors[name] = (ErrorCode.UNACCEPTABLE_CREDENTIAL, "Too many iterations")
        else:
            upsertions[name] = (mechanism, bytes(upsertion["salted_password"]), bytes(upsertion["salt"]), iterations)
    credentials: list[tuple[str, ScramMechanism, ScramCredential]] = []
    for name, (mechanism, salted_password, salt, iterations) in upsertions.items():
        if salted_password:
            credentials.append((name, mechanism, mechanism.credential(salted_password, salt, iterations)))
        else:
            # finishUpsertion: Java's HMAC refuses an empty key, an UNKNOWN_SERVER_ERROR without message.
            errors[name] = (ErrorCode.UNKNOWN_SERVER_ERROR, None)
    if deletions or credentials:
        store.apply(deletions.items(), credentials)
    results: list[AlterUserScramCredentialsResponseAlterUserScramCredentialsResult] = [
        {"user": name, "error_code": ErrorCode.NONE, "error_message": None} for name in (*deletions, *(name for name, _, _ in credentials))
    ]
    results += [{"user": name, "error_code": code, "error_message": message} for name, (code, message) in errors.items()]
    return {"throttle_time_ms": 0, "results": results}
