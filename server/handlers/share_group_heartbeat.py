"""ShareGroupHeartbeat (KIP-932): join a share group (epoch 0), stay in it, or leave (-1);
the answer carries the member's epoch and, from the broker's assignor, its partitions when
it joins or they change (ottla.server.share.group says when the epochs move).

As KafkaApis.handleShareGroupHeartbeat: READ on the group (GROUP_AUTHORIZATION_FAILED), the
member id (`member_id_valid`, INVALID_REQUEST), then DESCRIBE on every subscribed topic name
(TOPIC_AUTHORIZATION_FAILED when any is refused).
Then the coordinator's order: the request's own checks (INVALID_REQUEST), then the group (a
group of another type, or a missing group the request does not create, is GROUP_ID_NOT_FOUND),
then the member (UNKNOWN_MEMBER_ID, FENCED_MEMBER_EPOCH)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.server.java_strings import is_blank
from ottla.server.security.authorizer import AclOperation, ResourceType
from ottla.server.share.group import ShareMember
from ottla.server.share.sessions import member_id_valid
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        ShareGroupHeartbeatRequest,
        ShareGroupHeartbeatResponse,
        ShareGroupHeartbeatResponseAssignment,
    )

API = ApiKey.SHARE_GROUP_HEARTBEAT
VERSIONS = (1, 1)


def handle(context: RequestContext, header: RequestHeader, request: ShareGroupHeartbeatRequest) -> ShareGroupHeartbeatResponse:
    group_id = request["group_id"]
    share = context.services.share
    if context.services.features.level("share.version") < 1:
        # KafkaApis.handleShareGroupHeartbeat while share groups are off.
        return _error(ErrorCode.UNSUPPORTED_VERSION, "The share group protocol is not enabled.")
    if not context.authorize(AclOperation.READ, ResourceType.GROUP, group_id):
        return _error(ErrorCode.GROUP_AUTHORIZATION_FAILED, None)
    if not member_id_valid(request["member_id"]):
        return _error(ErrorCode.INVALID_REQUEST, None)
    names = request.get("subscribed_topic_names")
    if names and len(context.authorized(AclOperation.DESCRIBE, ResourceType.TOPIC, names)) < len(set(names)):
        return _error(ErrorCode.TOPIC_AUTHORIZATION_FAILED, None)
    invalid = _invalid(request)
    if invalid is not None:
        return _error(ErrorCode.INVALID_REQUEST, invalid)
    if (group_id in context.groups.groups or context.groups.consumer_group(group_id) is not None
            or context.groups.streams_group(group_id) is not None):
        # GroupMetadataManager.shareGroup: the id belongs to a classic, consumer or streams group.
        return _error(ErrorCode.GROUP_ID_NOT_FOUND, f"Group {group_id} is not a share group.")
    error, member, sent = share.heartbeat(
        group_id, request["member_id"], request["member_epoch"], request.get("rack_id"),
        request.get("subscribed_topic_names"), header.client_id or "", "/" + context.client_host,
    )
    if error is not ErrorCode.NONE or member is None:
        return _error(error, _message(error, group_id, request["member_id"], request["member_epoch"], member))
    assignment: ShareGroupHeartbeatResponseAssignment | None = None
    if sent is not None:
        assignment = {"topic_partitions": [{"topic_id": topic_id, "partitions": partitions}
                                           for topic_id, partitions in sorted(sent.items())]}
    return {
        "throttle_time_ms": 0,
        "error_code": ErrorCode.NONE,
        "error_message": None,
        "member_id": member.member_id,
        "member_epoch": member.member_epoch,
        "heartbeat_interval_ms": share.heartbeat_interval_ms(group_id),
        "assignment": assignment,
    }


def _invalid(request: ShareGroupHeartbeatRequest) -> str | None:
    """Why GroupCoordinatorService.throwIfShareGroupHeartbeatRequestIsInvalid refuses the
    request, or None. Ids count as empty when blank (Utils.throwIfEmptyString trims); a join
    must subscribe to at least one topic, and -1 (leave) is the lowest epoch."""
    if is_blank(request["member_id"]):
        return "MemberId can't be empty."
    if is_blank(request["group_id"]):
        return "GroupId can't be empty."
    if is_blank(request.get("rack_id")):
        return "RackId can't be empty."
    if request["member_epoch"] == 0:
        if not request.get("subscribed_topic_names"):
            return "SubscribedTopicNames must be set in first request."
    elif request["member_epoch"] < -1:
        return "MemberEpoch is invalid."
    return None



def _message(error: ErrorCode, group_id: str, member_id: str, member_epoch: int, member: ShareMember | None) -> str | None:
    """The message GroupMetadataManager's exception carries: a leave looks the group up with
    shareGroup, a heartbeat with getOrMaybeCreateShareGroup, and their words differ; a fenced
    `member` is told the epoch the coordinator knows (throwIfShareGroupMemberEpochIsInvalid)."""
    if error is ErrorCode.GROUP_ID_NOT_FOUND:
        return f"Group {group_id} not found." if member_epoch == -1 else f"Share group {group_id} not found."
    if error is ErrorCode.UNKNOWN_MEMBER_ID:
        return f"Member {member_id} is not a member of group {group_id}."
    if error is ErrorCode.FENCED_MEMBER_EPOCH and member is not None:
        if member_epoch > member.member_epoch:
            return (f"The share group member has a greater member epoch ({member_epoch}) than the one known by the group "
                    f"coordinator ({member.member_epoch}). The member must abandon all its partitions and rejoin.")
        return (f"The share group member has a smaller member epoch ({member_epoch}) than the one known by the group "
                f"coordinator ({member.member_epoch}), and it does not match the previous member epoch "
                f"({member.previous_member_epoch}). The member must abandon all its partitions and rejoin.")
    return None


def _error(code: ErrorCode, message: str | None) -> ShareGroupHeartbeatResponse:
    return {"throttle_time_ms": 0, "error_code": code, "error_message": message, "member_id": None,
            "member_epoch": 0, "heartbeat_interval_ms": 0, "assignment": None}
