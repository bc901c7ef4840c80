"""FindCoordinator: this node coordinates every group and, later, every transaction; in a
cluster, the leader of the key's `__consumer_offsets` / `__transaction_state` partition does
(server/cluster/coordinators.py).

v4+ asks for a batch of keys (KIP-699). Key type 0 is a group, 1 a transactional id;
anything else (share groups, KIP-932) is INVALID_REQUEST, as in Kafka without them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.cluster.coordinators import find_coordinator
from ottla.server.context import RequestContext
from ottla.server.security.authorizer import AclOperation, ResourceType
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
# KafkaApis.getCoordinator: the key's resource, and the error (with its exception's default
# message, which the response carries) when the principal may not DESCRIBE it.
_REFUSALS = {
    0: (ResourceType.GROUP, ErrorCode.GROUP_AUTHORIZATION_FAILED, "Group authorization failed."),
    1: (ResourceType.TRANSACTIONAL_ID, ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, "Transactional Id authorization failed."),
}


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
    resource_type, error, message = _REFUSALS[key_type]
    if not context.authorize(AclOperation.DESCRIBE, resource_type, key):
        return {"key": key, "node_id": -1, "host": "", "port": -1, "error_code": error, "error_message": message}
    cluster = context.services.cluster
    if cluster is not None:
        return find_coordinator(context, cluster, key_type, key)  # type: ignore[return-value]
    return {"key": key, "node_id": context.node.node_id, "host": context.node.host, "port": context.node.port, "error_code": ErrorCode.NONE, "error_message": None}
