"""CreateAcls: add ACL bindings, each answered on its own (Kafka's AclApis and AclControlManager).

Needs ALTER on the cluster (else every creation is CLUSTER_AUTHORIZATION_FAILED); with no
authorizer every creation is SECURITY_DISABLED. A binding Kafka refuses (CLUSTER named other
than `kafka-cluster`, an empty name, a filter-only type, pattern or operation) is
INVALID_REQUEST; the valid ones are added and persisted together."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.server.security.authorizer import CLUSTER_NAME, Acl, AclOperation, ResourceType, creation_problem, make_acl
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import CreateAclsRequest, CreateAclsResponse, CreateAclsResponseAclCreationResult

API = ApiKey.CREATE_ACLS
VERSIONS = (1, 3)


def handle(context: RequestContext, header: RequestHeader, request: CreateAclsRequest) -> CreateAclsResponse:
    creations = request["creations"]
    authorizer = context.authorizer
    if not context.authorize(AclOperation.ALTER, ResourceType.CLUSTER, CLUSTER_NAME):
        return _all_failed(len(creations), ErrorCode.CLUSTER_AUTHORIZATION_FAILED, ErrorCode.CLUSTER_AUTHORIZATION_FAILED.name)
    if authorizer is None:
        return _all_failed(len(creations), ErrorCode.SECURITY_DISABLED, "No Authorizer is configured.")
    results: list[CreateAclsResponseAclCreationResult] = []
    valid: list[Acl] = []
    for creation in creations:
        acl = make_acl(
            creation["resource_type"],
            creation["resource_name"],
            creation["resource_pattern_type"],
            creation["principal"],
            creation["host"],
            creation["operation"],
            creation["permission_type"],
        )
        problem = creation_problem(acl)
        if problem is None:
            valid.append(acl)
            results.append({"error_code": ErrorCode.NONE, "error_message": None})
        else:
            results.append({"error_code": ErrorCode.INVALID_REQUEST, "error_message": problem})
    if valid:
        authorizer.create(valid)
    return {"throttle_time_ms": 0, "results": results}


def _all_failed(count: int, error: ErrorCode, message: str) -> CreateAclsResponse:
    return {"throttle_time_ms": 0, "results": [{"error_code": error, "error_message": message} for _ in range(count)]}
