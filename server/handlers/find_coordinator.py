"""FindCoordinator: this node coordinates every group and, later, every transaction.

v4+ asks for a batch of keys (KIP-699). Key type 0 is a group, 1 a transactional id;
anything else (share groups, KIP-932) is INVALID_REQUEST, as in Kafka without them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        FindCoordinatorRequest,
        FindCoordinatorResponse,
        FindCoordinatorResponseCoordinator,
    )

API = ApiKey.FIND_COORDINATOR
VERSIONS = (0, 6)

_KEY_TYPES = (0, 1)


def handle(context: RequestContext, header: RequestHeader, request: FindCoordinatorRequest) -> FindCoordinatorResponse:
    key_type = request.get("key_type", 0)
    if header.api_version >= 4:
        return {"throttle_time_ms": 0, "coordinators": [_coordinator(context, key, key_type) for key in request["coordinator_keys"]]}
    found = _coordinator(context, request["key"], key_type)
    return {
        "throttle_time_ms": 0,
        "error_code": found["error_code"],
        "error_message": found["error_message"],
        "node_id": found["node_id"],
        "host": found["host"],
        "port": found["port"],
    }


def _coordinator(context: RequestContext, key: str, key_type: int) -> FindCoordinatorResponseCoordinator:
    if key_type not in _KEY_TYPES:
        return {"key": key, "node_id": -1, "host": "", "port": -1, "error_code": ErrorCode.INVALID_REQUEST, "error_message": f"unknown key type {key_type}"}
    return {"key": key, "node_id": context.node.node_id, "host": context.node.host, "port": context.node.port, "error_code": ErrorCode.NONE, "error_message": None}
