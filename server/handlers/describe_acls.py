"""DescribeAcls: the ACLs a filter matches, grouped by resource pattern (Kafka's AclApis).

A filter naming UNKNOWN (code 0) for a type, pattern, operation or permission does not parse in
Kafka (DescribeAclsRequest.normalizeAndValidate): the connection is closed unanswered. Then it
needs DESCRIBE on the cluster; with no authorizer configured the answer is SECURITY_DISABLED, as
Kafka's. A code Kafka does not know reads as UNKNOWN, which matches no ACL: an empty answer, no
error (the broker's StandardAuthorizer.acls filters without AclControlManager.validateFilter)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.server.security.authorizer import CLUSTER_NAME, Acl, AclFilter, AclOperation, ResourceType, carries_unknown
from ottla.server.security.refusals import needs_permission
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, MalformedFrame
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import DescribeAclsRequest, DescribeAclsResponse, DescribeAclsResponseDescribeAclsResource

API = ApiKey.DESCRIBE_ACLS
VERSIONS = (1, 3)


def handle(context: RequestContext, header: RequestHeader, request: DescribeAclsRequest) -> DescribeAclsResponse:
    if carries_unknown((request["resource_type_filter"], request["pattern_type_filter"], request["operation"], request["permission_type"])):
        raise MalformedFrame("DescribeAcls: the filter contains UNKNOWN elements")
    # DescribeAclsResponseData's default message, which AclApis leaves on a success: "", not null.
    response: DescribeAclsResponse = {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": "", "resources": []}
    authorizer = context.authorizer
    if not context.authorize(AclOperation.DESCRIBE, ResourceType.CLUSTER, CLUSTER_NAME):
        response["error_code"] = ErrorCode.CLUSTER_AUTHORIZATION_FAILED
        response["error_message"] = needs_permission(context, AclOperation.DESCRIBE)
        return response
    if authorizer is None:
        response["error_code"] = ErrorCode.SECURITY_DISABLED
        response["error_message"] = "No Authorizer is configured on the broker"
        return response
    acl_filter = AclFilter(
        request["resource_type_filter"],
        request["resource_name_filter"],
        request["pattern_type_filter"],
        request["principal_filter"],
        request["host_filter"],
        request["operation"],
        request["permission_type"],
    )
    response["resources"] = resources(authorizer.describe(acl_filter))
    return response


def resources(acls: list[Acl]) -> list[DescribeAclsResponseDescribeAclsResource]:
    """ACLs grouped by resource pattern, in order of first appearance (DescribeAclsResponse.aclsResources)."""
    grouped: dict[tuple[int, str, int], DescribeAclsResponseDescribeAclsResource] = {}
    for acl in acls:
        key = (acl.resource_type, acl.resource_name, acl.pattern_type)
        resource = grouped.get(key)
        if resource is None:
            resource = grouped[key] = {"resource_type": acl.resource_type, "resource_name": acl.resource_name, "pattern_type": acl.pattern_type, "acls": []}
        resource["acls"].append({"principal": acl.principal, "host": acl.host, "operation": acl.operation, "permission_type": acl.permission_type})
    return list(grouped.values())
