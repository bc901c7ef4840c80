"""JoinGroup: parks until the group's join phase completes (server/groups/coordinator.py).
Share groups are the share coordinator's, so this handler tells the group coordinator
whether one holds the id."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncio
from ottla.server.context import Answer, RequestContext
from ottla.server.groups import JoinRequest
from ottla.server.groups.group import JoinResult
from ottla.server.security.authorizer import AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import JoinGroupRequest, JoinGroupResponse

API = ApiKey.JOIN_GROUP
VERSIONS = (0, 9)


def handle(context: RequestContext, header: RequestHeader, request: JoinGroupRequest) -> Answer[JoinGroupResponse]:
    version = header.api_version
    if not context.authorize(AclOperation.READ, ResourceType.GROUP, request["group_id"]):
        # JoinGroupRequest.getErrorResponse: no generation, member, leader or protocol.
        return _response(version, JoinResult(ErrorCode.GROUP_AUTHORIZATION_FAILED, ""))
    session_timeout_ms = request["session_timeout_ms"]
    join = JoinRequest(
        group_id=request["group_id"],
        member_id=request["member_id"],
        group_instance_id=request.get("group_instance_id"),
        protocol_type=request["protocol_type"],
        # A name listed twice stays listed twice: Kafka counts it twice (ClassicGroup.selectProtocol).
        protocols=tuple((protocol["name"], bytes(protocol["metadata"])) for protocol in request["protocols"]),
        session_timeout_ms=session_timeout_ms,
        # JoinGroup v0 has no rebalance timeout; Kafka uses the session timeout.
        rebalance_timeout_ms=request["rebalance_timeout_ms"] if version >= 1 else session_timeout_ms,
        client_id=header.client_id or "",
        # Kafka's context.clientAddress().toString(): the address, no host name, after a slash.
        client_host="/" + context.client_host,
        require_known_member_id=version >= 4,
        supports_skip_assignment=version >= 9,
    )
    answer: asyncio.Future[JoinResult] = asyncio.get_running_loop().create_future()

    def settle(result: JoinResult) -> None:
        if not answer.done():
            answer.set_result(result)

    context.groups.join(join, settle, share_group=lambda group_id: group_id in context.services.share.groups)
    if answer.done():
        return _response(version, answer.result())
    return _parked(version, answer)


async def _parked(version: int, answer: asyncio.Future[JoinResult]) -> JoinGroupResponse:
    return _response(version, await answer)


def _response(version: int, result: JoinResult) -> JoinGroupResponse:
    protocol_name = result.protocol_name
    # JoinGroupResponse: before v7 the protocol name is not nullable, "" stands for none.
    if version < 7 and protocol_name is None:
        protocol_name = ""
    elif version >= 7 and protocol_name == "":
        protocol_name = None
    return {
        "throttle_time_ms": 0,
        "error_code": result.error,
        "generation_id": result.generation_id,
        "protocol_type": result.protocol_type,
        "protocol_name": protocol_name,
        "leader": result.leader,
        "skip_assignment": result.skip_assignment,
        "member_id": result.member_id,
        "members": [
            {"member_id": m.member_id, "group_instance_id": m.group_instance_id, "metadata": m.metadata} for m in result.members
        ],
    }
