"""Heartbeat: keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to rejoin."""

from __future__ import annotations

from typing import Any

from ottla.wire.api import ApiKey

API = ApiKey.HEARTBEAT
VERSIONS = (0, 4)


def handle(broker, header, request: dict[str, Any]) -> dict[str, Any]:
    error = broker.groups.heartbeat(request["group_id"], request["generation_id"], request["member_id"], request.get("group_instance_id"))
    return {"throttle_time_ms": 0, "error_code": error}
