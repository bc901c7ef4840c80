"""SyncGroup: the leader hands in the assignment; followers park until it arrives."""

from __future__ import annotations

import asyncio
from typing import Any

from ottla.server.groups.group import SyncResult
from ottla.wire.api import ApiKey

API = ApiKey.SYNC_GROUP
VERSIONS = (0, 5)


def handle(broker, header, request: dict[str, Any]):
    answer: asyncio.Future[SyncResult] = asyncio.get_running_loop().create_future()
    broker.groups.sync(
        request["group_id"],
        request["generation_id"],
        request["member_id"],
        request.get("group_instance_id"),
        request.get("protocol_type"),
        request.get("protocol_name"),
        [(entry["member_id"], bytes(entry["assignment"])) for entry in request["assignments"]],
        lambda result: answer.done() or answer.set_result(result),
    )
    if answer.done():
        return _response(answer.result())
    return _parked(answer)


async def _parked(answer: asyncio.Future[SyncResult]) -> dict[str, Any]:
    return _response(await answer)


def _response(result: SyncResult) -> dict[str, Any]:
    return {
        "throttle_time_ms": 0,
        "error_code": result.error,
        "protocol_type": result.protocol_type,
        "protocol_name": result.protocol_name,
        "assignment": result.assignment,
    }
