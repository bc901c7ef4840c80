"""ShareGroupDescribe (KIP-932): a share group's state, epochs and members with their assignments.
With `share.version` finalized at 0 every group is answered UNSUPPORTED_VERSION, as Kafka 4.4 does.

As KafkaApis.handleShareGroupDescribe: a group the principal may not DESCRIBE is answered
GROUP_AUTHORIZATION_FAILED, ahead of the others; a described group carries its authorized
operations when asked; and, with an authorizer, a group assigned a topic the principal may not
DESCRIBE is answered TOPIC_AUTHORIZATION_FAILED, without members."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.cluster.coordinators import GROUP, elsewhere
from ottla.server.context import RequestContext
from ottla.server.security.authorizer import AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, default_message
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
    if context.services.features.level("share.version") < 1:
        return {"throttle_time_ms": 0, "groups": [_error(group_id, ErrorCode.UNSUPPORTED_VERSION, None) for group_id in request["group_ids"]]}
    allowed = context.authorized(AclOperation.DESCRIBE, ResourceType.GROUP, request["group_ids"])
    groups = [_error(group_id, ErrorCode.GROUP_AUTHORIZATION_FAILED, None) for group_id in request["group_ids"] if group_id not in allowed]
    for group_id in request["group_ids"]:
        if group_id not in allowed:
            continue
        # GroupCoordinatorService.shareGroupDescribe refuses an empty id before it routes the others.
        if (error := ErrorCode.INVALID_GROUP_ID if not group_id else elsewhere(context, GROUP, group_id)) is not None:
            # A routed refusal carries its default words (GroupCoordinatorService.handleOperationException).
            groups.append(_error(group_id, error, None if error is ErrorCode.INVALID_GROUP_ID else default_message(error)))
            continue
        answer = _describe(context, group_id)
        if answer["error_code"] == ErrorCode.NONE:
            if request.get("include_authorized_operations"):
                answer["authorized_operations"] = context.authorized_operations(ResourceType.GROUP, group_id)
            if context.authorizer is not None:
                names = {tp["topic_name"] for member in answer["members"] for tp in member["assignment"]["topic_partitions"]}
                if len(context.authorized(AclOperation.DESCRIBE, ResourceType.TOPIC, names)) < len(names):
                    answer = _error(group_id, ErrorCode.TOPIC_AUTHORIZATION_FAILED,
                                    "The group has described topic(s) that the client is not authorized to describe.")
        groups.append(answer)
    return {"throttle_time_ms": 0, "groups": groups}


def _error(group_id: str, code: ErrorCode, message: str | None) -> ShareGroupDescribeResponseDescribedGroup:
    """A DescribedGroup with Kafka's defaults but its id and error."""
    return {"error_code": code, "error_message": message, "group_id": group_id, "group_state": "", "group_epoch": 0,
            "assignment_epoch": 0, "assignor_name": "", "members": [], "authorized_operations": _UNKNOWN_OPERATIONS}


def _describe(context: RequestContext, group_id: str) -> ShareGroupDescribeResponseDescribedGroup:
    group = context.services.share.groups.get(group_id)
    if group is None:
        error = ErrorCode.GROUP_ID_NOT_FOUND
        other = (group_id in context.groups.groups or context.groups.consumer_group(group_id) is not None
                 or context.groups.streams_group(group_id) is not None)
        message = f"Group {group_id} is not a share group." if other else f"Group {group_id} not found."
        return {"error_code": error, "error_message": message, "group_id": group_id, "group_state": "", "group_epoch": 0,
                "assignment_epoch": 0, "assignor_name": "", "members": [], "authorized_operations": _UNKNOWN_OPERATIONS}
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
            "group_epoch": group.group_epoch, "assignment_epoch": group.assignment_epoch, "assignor_name": "simple",
            "members": members, "authorized_operations": _UNKNOWN_OPERATIONS}
