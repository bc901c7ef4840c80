"""FindCoordinator: this node coordinates every group and, later, every transaction.

v4+ asks for a batch of keys (KIP-699). Key type 0 is a group, 1 a transactional id;
anything else (share groups, KIP-932) is INVALID_REQUEST, as in Kafka without them.
"""

from __future__ import annotations

from typing import Any

from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

API = ApiKey.FIND_COORDINATOR
VERSIONS = (0, 6)

_KEY_TYPES = (0, 1)


def handle(broker, header, request: dict[str, Any]) -> dict[str, Any]:
    key_type = request.get("key_type", 0)
    if header.api_version >= 4:
        return {"throttle_time_ms": 0, "coordinators": [_coordinator(broker, key, key_type) for key in request["coordinator_keys"]]}
    found = _coordinator(broker, request["key"], key_type)
    del found["key"]
    return {"throttle_time_ms": 0, **found}


def _coordinator(broker, key: str, key_type: int) -> dict[str, Any]:
    if key_type not in _KEY_TYPES:
        return {"key": key, "node_id": -1, "host": "", "port": -1, "error_code": ErrorCode.INVALID_REQUEST, "error_message": f"unknown key type {key_type}"}
    return {"key": key, "node_id": broker.node_id, "host": broker.advertised_host, "port": broker.port, "error_code": ErrorCode.NONE, "error_message": None}
