"""SyncGroup: the leader hands in the assignment; followers park until it arrives."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncio
from ottla.server.context import Answer, RequestContext
from ottla.server.groups.group import SyncResult
from ottla.server.security.authorizer import AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import SyncGroupRequest, SyncGroupResponse

API = ApiKey.SYNC_GROUP
VERSIONS = (0, 5)


def handle(context: RequestContext, header: RequestHeader, request: SyncGroupRequest) -> Answer[SyncGroupResponse]:
    if header.api_version >= 5 and (request.get("protocol_type") is None or request.get("protocol_name") is None):
        # SyncGroupRequest.areMandatoryProtocolTypeAndNamePresent: from v5 both are required,
        # checked by KafkaApis before the group is authorized or looked at.
        return _response(SyncResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL))
    if not context.authorize(AclOperation.READ, ResourceType.GROUP, request["group_id"]):
        return {"throttle_time_ms": 0, "error_code": ErrorCode.GROUP_AUTHORIZATION_FAILED, "protocol_type": None, "protocol_name": None, "assignment": b""}
    answer: asyncio.Future[SyncResult] = asyncio.get_running_loop().create_future()

    def settle(result: SyncResult) -> None:
        if not answer.done():
            answer.set_result(result)

    context.groups.sync(
        request["group_id"],
        request["generation_id"],
        request["member_id"],
        request.get("group_instance_id"),
        request.get("protocol_type"),
        request.get("protocol_name"),
        [(entry["member_id"], bytes(entry["assignment"])) for entry in request["assignments"]],
        settle,
    )
    if answer.done():
        return _response(answer.result())
    return _parked(answer)


async def _parked(answer: asyncio.Future[SyncResult]) -> SyncGroupResponse:
    return _response(await answer)


def _response(result: SyncResult) -> SyncGroupResponse:
    return {
        "throttle_time_ms": 0,
        "error_code": result.error,
        "protocol_type": result.protocol_type,
        "protocol_name": result.protocol_name,
        "assignment": result.assignment,
    }
