"""DescribeGroups: state, protocol and members. As in Kafka's ClassicGroup.describe, member
metadata and assignments are shown only once the group is Stable, and an unknown group
is reported as Dead with no error (GROUP_ID_NOT_FOUND comes with v6, not served)."""

from __future__ import annotations

from ottla.server.context import RequestContext
from ottla.server.groups.state import GroupState
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader
from ottla.wire.messages.types import (
    DescribeGroupsRequest,
    DescribeGroupsResponse,
    DescribeGroupsResponseDescribedGroup,
    DescribeGroupsResponseDescribedGroupMember,
)

API = ApiKey.DESCRIBE_GROUPS
VERSIONS = (0, 5)


def handle(context: RequestContext, header: RequestHeader, request: DescribeGroupsRequest) -> DescribeGroupsResponse:
    return {"throttle_time_ms": 0, "groups": [_describe(context, group_id) for group_id in request["groups"]]}


def _describe(context: RequestContext, group_id: str) -> DescribeGroupsResponseDescribedGroup:
    group = context.groups.groups.get(group_id)
    if group is None:
        return {"error_code": ErrorCode.NONE, "group_id": group_id, "group_state": GroupState.DEAD.value, "protocol_type": "", "protocol_data": "", "members": []}
    stable = group.is_in(GroupState.STABLE)
    members: list[DescribeGroupsResponseDescribedGroupMember] = [
        {
            "member_id": member.member_id,
            "group_instance_id": member.group_instance_id,
            "client_id": member.client_id,
            "client_host": member.client_host,
            "member_metadata": member.metadata(group.protocol_name) if stable and group.protocol_name is not None else b"",
            "member_assignment": member.assignment if stable else b"",
        }
        for member in group.members.values()
    ]
    return {
        "error_code": ErrorCode.NONE,
        "group_id": group_id,
        "group_state": group.state.value,
        "protocol_type": group.protocol_type or "",
        "protocol_data": (group.protocol_name or "") if stable else "",
        "members": members,
    }
