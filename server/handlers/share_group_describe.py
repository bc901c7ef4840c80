"""ShareGroupDescribe (KIP-932): a share group's state, epochs and members with their assignments."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        ShareGroupDescribeRequest,
        ShareGroupDescribeResponse,
        ShareGroupDescribeResponseDescribedGroup,
        ShareGroupDescribeResponseMember,
        ShareGroupDescribeResponseTopicPartitions,
    )

API = ApiKey.SHARE_GROUP_DESCRIBE
VERSIONS = (1, 1)

# Kafka's AclOperation set a describe reports when asked and no authorizer limits it.
_UNKNOWN_OPERATIONS = -2147483648


def handle(context: RequestContext, header: RequestHeader, request: ShareGroupDescribeRequest) -> ShareGroupDescribeResponse:
    return {"throttle_time_ms": 0, "groups": [_describe(context, group_id) for group_id in request["group_ids"]]}


def _describe(context: RequestContext, group_id: str) -> ShareGroupDescribeResponseDescribedGroup:
    group = context.services.share.groups.get(group_id)
    if group is None:
        error = ErrorCode.GROUP_ID_NOT_FOUND
        message = (f"Group {group_id} is not a share group." if group_id in context.groups.groups
                   else f"Group {group_id} not found.")
        return {"error_code": error, "error_message": message, "group_id": group_id, "group_state": "Dead", "group_epoch": -1,
                "assignment_epoch": -1, "assignor_name": "", "members": [], "authorized_operations": _UNKNOWN_OPERATIONS}
    storage = context.storage
    members: list[ShareGroupDescribeResponseMember] = []
    for member in group.members.values():
        topic_partitions: list[ShareGroupDescribeResponseTopicPartitions] = []
        for topic_id, partitions in sorted(member.assignment.items()):
            info = storage.topic_by_id(topic_id)
            topic_partitions.append({"topic_id": topic_id, "topic_name": "" if info is None else info.name, "partitions": partitions})
        members.append({"member_id": member.member_id, "rack_id": member.rack_id, "member_epoch": member.member_epoch,
                        "client_id": member.client_id, "client_host": member.client_host,
                        "subscribed_topic_names": member.subscribed_topic_names, "assignment": {"topic_partitions": topic_partitions}})
    return {"error_code": ErrorCode.NONE, "error_message": None, "group_id": group_id, "group_state": group.state.value,
            "group_epoch": group.group_epoch, "assignment_epoch": group.group_epoch, "assignor_name": "simple",
            "members": members, "authorized_operations": _UNKNOWN_OPERATIONS}
