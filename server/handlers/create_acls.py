"""CreateAcls: add ACL bindings, each answered on its own (Kafka's AclApis and AclControlManager).

A creation naming UNKNOWN (code 0) for a type, pattern, operation or permission does not parse
in Kafka (CreateAclsRequest.validate): the connection is closed unanswered, whoever sends it.
Then it needs ALTER on the cluster (else every creation is CLUSTER_AUTHORIZATION_FAILED); with no
authorizer every creation is SECURITY_DISABLED. A creation naming what only a filter may (ANY,
MATCH) fails the whole request UNKNOWN_SERVER_ERROR, nothing created. Otherwise a binding Kafka
refuses (CLUSTER named other than `kafka-cluster`, an empty name, a code it does not know, a
principal without a type, an empty host, a CIDR range below metadata.version 4.4-IV1 or
malformed) is answered on its own; the valid ones are added
and persisted together."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.server.security.authorizer import (
    CLUSTER_NAME,
    Acl,
    AclOperation,
    ResourceType,
    carries_unknown,
    creation_problem,
    filter_only,
    make_acl,
)
from ottla.server.security.refusals import needs_permission
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, MalformedFrame
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import CreateAclsRequest, CreateAclsResponse, CreateAclsResponseAclCreationResult

API = ApiKey.CREATE_ACLS
VERSIONS = (1, 3)


def handle(context: RequestContext, header: RequestHeader, request: CreateAclsRequest) -> CreateAclsResponse:
    creations = request["creations"]
    if any(carries_unknown((c["resource_type"], c["resource_pattern_type"], c["operation"], c["permission_type"])) for c in creations):
        raise MalformedFrame("CreateAcls: creations contain UNKNOWN elements")
    authorizer = context.authorizer
    if not context.authorize(AclOperation.ALTER, ResourceType.CLUSTER, CLUSTER_NAME):
        return _all_failed(len(creations), ErrorCode.CLUSTER_AUTHORIZATION_FAILED, needs_permission(context, AclOperation.ALTER))
    if authorizer is None:
        return _all_failed(len(creations), ErrorCode.SECURITY_DISABLED, "No Authorizer is configured.")
    acls = [
        make_acl(
            creation["resource_type"],
            creation["resource_name"],
            creation["resource_pattern_type"],
            creation["principal"],
            creation["host"],
            creation["operation"],
            creation["permission_type"],
        )
        for creation in creations
    ]
    if any(filter_only(acl) for acl in acls):
        return _all_failed(len(creations), ErrorCode.UNKNOWN_SERVER_ERROR, None)
    results: list[CreateAclsResponseAclCreationResult] = []
    valid: list[Acl] = []
    metadata_version = context.services.features.level("metadata.version")
    for acl in acls:
        problem = creation_problem(acl, metadata_version)
        if problem is None:
            valid.append(acl)
            # AclCreationResult's default message, which AclApis leaves on a success: "", not null.
            results.append({"error_code": ErrorCode.NONE, "error_message": ""})
        else:
            results.append({"error_code": problem[0], "error_message": problem[1]})
    if valid:
        authorizer.create(valid)
    return {"throttle_time_ms": 0, "results": results}


def _all_failed(count: int, error: ErrorCode, message: str | None) -> CreateAclsResponse:
    return {"throttle_time_ms": 0, "results": [{"error_code": error, "error_message": message} for _ in range(count)]}
