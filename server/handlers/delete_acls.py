"""DeleteAcls: remove the ACLs each filter matches, answering per filter with what it removed
(Kafka's AclApis and AclControlManager.deleteAcls: every filter sees the set as it was).

A filter naming UNKNOWN (code 0) for a type, pattern, operation or permission does not parse in
Kafka (DeleteAclsRequest.normalizeAndValidate): the connection is closed unanswered. Then it needs
ALTER on the cluster; with no authorizer every filter is SECURITY_DISABLED. A filter with a code
Kafka does not know is INVALID_REQUEST and removes nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.server.security.authorizer import CLUSTER_NAME, AclFilter, AclOperation, ResourceType, carries_unknown
from ottla.server.security.refusals import needs_permission
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, MalformedFrame
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import DeleteAclsRequest, DeleteAclsResponse, DeleteAclsResponseDeleteAclsFilterResult

API = ApiKey.DELETE_ACLS
VERSIONS = (1, 3)


def handle(context: RequestContext, header: RequestHeader, request: DeleteAclsRequest) -> DeleteAclsResponse:
    if any(carries_unknown((f["resource_type_filter"], f["pattern_type_filter"], f["operation"], f["permission_type"])) for f in request["filters"]):
        raise MalformedFrame("DeleteAcls: filters contain UNKNOWN elements")
    filters = [
        AclFilter(
            item["resource_type_filter"],
            item["resource_name_filter"],
            item["pattern_type_filter"],
            item["principal_filter"],
            item["host_filter"],
            item["operation"],
            item["permission_type"],
        )
        for item in request["filters"]
    ]
    authorizer = context.authorizer
    if not context.authorize(AclOperation.ALTER, ResourceType.CLUSTER, CLUSTER_NAME):
        return _all_failed(len(filters), ErrorCode.CLUSTER_AUTHORIZATION_FAILED, needs_permission(context, AclOperation.ALTER))
    if authorizer is None:
        return _all_failed(len(filters), ErrorCode.SECURITY_DISABLED, "No Authorizer is configured.")
    problems = [acl_filter.problem() for acl_filter in filters]
    removed = authorizer.delete([acl_filter for acl_filter, problem in zip(filters, problems) if problem is None])
    results: list[DeleteAclsResponseDeleteAclsFilterResult] = []
    for problem in problems:
        if problem is not None:
            results.append({"error_code": ErrorCode.INVALID_REQUEST, "error_message": problem, "matching_acls": []})
            continue
        matching = removed.pop(0)
        results.append({
            "error_code": ErrorCode.NONE,
            "error_message": None,
            "matching_acls": [
                {
                    "error_code": ErrorCode.NONE,
                    "error_message": None,
                    "resource_type": acl.resource_type,
                    "resource_name": acl.resource_name,
                    "pattern_type": acl.pattern_type,
                    "principal": acl.principal,
                    "host": acl.host,
                    "operation": acl.operation,
                    "permission_type": acl.permission_type,
                }
                for acl in matching
            ],
        })
    return {"throttle_time_ms": 0, "filter_results": results}


def _all_failed(count: int, error: ErrorCode, message: str) -> DeleteAclsResponse:
    return {"throttle_time_ms": 0, "filter_results": [{"error_code": error, "error_message": message, "matching_acls": []} for _ in range(count)]}
