"""LeaveGroup: one member before v3, a batch from v3 (KIP-345), with reasons from v5."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.server.security.authorizer import AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import LeaveGroupRequest, LeaveGroupResponse, LeaveGroupResponseMemberResponse

API = ApiKey.LEAVE_GROUP
VERSIONS = (0, 5)


def handle(context: RequestContext, header: RequestHeader, request: LeaveGroupRequest) -> LeaveGroupResponse:
    if not context.authorize(AclOperation.READ, ResourceType.GROUP, request["group_id"]):
        return {"throttle_time_ms": 0, "error_code": ErrorCode.GROUP_AUTHORIZATION_FAILED, "members": []}
    if header.api_version < 3:
        leaving: list[tuple[str, str | None]] = [(request["member_id"], None)]
    else:
        leaving = [(member["member_id"], member.get("group_instance_id")) for member in request["members"]]
    error, member_errors = context.groups.leave(request["group_id"], leaving)
    if header.api_version < 3:
        # LeaveGroupResponse: the single member's error becomes the top-level error.
        if error is ErrorCode.NONE:
            error = next((e for e in member_errors if e is not ErrorCode.NONE), ErrorCode.NONE)
        return {"throttle_time_ms": 0, "error_code": error}
    members: list[LeaveGroupResponseMemberResponse] = [
        {"member_id": member_id, "group_instance_id": instance_id, "error_code": member_error}
        for (member_id, instance_id), member_error in zip(leaving, member_errors)
    ]
    return {"throttle_time_ms": 0, "error_code": error, "members": members}
