"""DescribeGroups: state, protocol and members. As in Kafka's GroupMetadataManager.describeGroups,
each member's current assignment is always shown, its metadata and the group's protocol
only once the group is Stable (ClassicGroupMember.describeNoMetadata before). An unknown
group, or one of another type (share, consumer, streams), is reported as Dead: with no
error before v6, with GROUP_ID_NOT_FOUND and Kafka's message from v6 (KIP-1043).

A group the principal may not DESCRIBE is answered GROUP_AUTHORIZATION_FAILED, ahead of the
others, as KafkaApis.handleDescribeGroupsRequest orders them; v3+ asked for it, a described
group carries the principal's authorized operations on it.

Members are listed as ClassicGroup.allMembers gives them: the iteration order of its HashMap
by member id."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.cluster.coordinators import GROUP, refusal
from ottla.server.context import RequestContext
from ottla.server.groups.state import GroupState
from ottla.server.java_hashing import default_capacity, java_order, string_hash
from ottla.server.security.authorizer import AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        DescribeGroupsRequest,
        DescribeGroupsResponse,
        DescribeGroupsResponseDescribedGroup,
        DescribeGroupsResponseDescribedGroupMember,
    )

API = ApiKey.DESCRIBE_GROUPS
VERSIONS = (0, 6)


# Kafka's value when authorized operations were not asked for (Integer.MIN_VALUE).
_NO_OPERATIONS = -(2**31)


def handle(context: RequestContext, header: RequestHeader, request: DescribeGroupsRequest) -> DescribeGroupsResponse:
    report_missing = header.api_version >= 6
    with_operations = request.get("include_authorized_operations", False)
    allowed = context.authorized(AclOperation.DESCRIBE, ResourceType.GROUP, request["groups"])
    groups = [_refused(group_id) for group_id in request["groups"] if group_id not in allowed]
    cluster = context.services.cluster
    for group_id in request["groups"]:
        if group_id in allowed:
            elsewhere = None if cluster is None else refusal(context, cluster, GROUP, group_id)
            if elsewhere is not None:
                groups.append({**_refused(group_id), "error_code": elsewhere})  # the client asks its coordinator
                continue
            described = _describe(context, group_id, report_missing)
            if with_operations and described["error_code"] == ErrorCode.NONE:
                described["authorized_operations"] = context.authorized_operations(ResourceType.GROUP, group_id)
            groups.append(described)
    return {"throttle_time_ms": 0, "groups": groups}


def _refused(group_id: str) -> DescribeGroupsResponseDescribedGroup:
    """DescribeGroupsResponse.groupError: no state, protocol or message."""
    return {"error_code": ErrorCode.GROUP_AUTHORIZATION_FAILED, "error_message": None, "group_id": group_id, "group_state": "",
            "protocol_type": "", "protocol_data": "", "members": [], "authorized_operations": _NO_OPERATIONS}


def _describe(context: RequestContext, group_id: str, report_missing: bool) -> DescribeGroupsResponseDescribedGroup:
    # A share, consumer or streams group is no classic group (GroupMetadataManager.classicGroup's
    # message), though a classic entry without members may hold its committed offsets.
    other_type = (group_id in context.services.share.groups or context.groups.consumer_group(group_id) is not None
                  or context.groups.streams_group(group_id) is not None)
    group = None if other_type else context.groups.groups.get(group_id)
    # A deleted group is gone, as in Kafka.
    if group is None or group.is_in(GroupState.DEAD):
        missing = f"Group {group_id} is not a classic group." if other_type else f"Group {group_id} not found."
        return {
            "error_code": ErrorCode.GROUP_ID_NOT_FOUND if report_missing else ErrorCode.NONE,
            "error_message": missing if report_missing else None,
            "group_id": group_id,
            "group_state": GroupState.DEAD.value,
            "protocol_type": "",
            "protocol_data": "",
            "members": [],
            "authorized_operations": _NO_OPERATIONS,
        }
    stable = group.is_in(GroupState.STABLE)
    members: list[DescribeGroupsResponseDescribedGroupMember] = [
        {
            "member_id": member.member_id,
            "group_instance_id": member.group_instance_id,
            "client_id": member.client_id,
            "client_host": member.client_host,
            "member_metadata": member.metadata(group.protocol_name) if stable and group.protocol_name is not None else b"",
            "member_assignment": member.assignment,
        }
        for member in java_order(list(group.members.values()), lambda m: string_hash(m.member_id), default_capacity(len(group.members)))
    ]
    return {
        "error_code": ErrorCode.NONE,
        "error_message": None,
        "group_id": group_id,
        "group_state": group.state.value,
        "protocol_type": group.protocol_type or "",
        "protocol_data": (group.protocol_name or "") if stable else "",
        "members": members,
        "authorized_operations": _NO_OPERATIONS,
    }
