"""AlterPartitionReassignments (KIP-455) on one node: moving a partition to the replica set
it already has succeeds with nothing to do; any other broker is unknown; cancelling finds no
reassignment in progress. Messages are Kafka's (ReplicationControlManager).

v1 (KIP-860) lets the request forbid a change of replication factor and echoes that
choice. On one node no accepted reassignment can change it (a second replica is an unknown
broker or a duplicate, refused first, as Kafka orders its checks), so the flag changes
nothing else."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        AlterPartitionReassignmentsRequest,
        AlterPartitionReassignmentsResponse,
        AlterPartitionReassignmentsResponseReassignablePartitionResponse,
        AlterPartitionReassignmentsResponseReassignableTopicResponse,
    )

API = ApiKey.ALTER_PARTITION_REASSIGNMENTS
VERSIONS = (0, 1)


def handle(context: RequestContext, header: RequestHeader, request: AlterPartitionReassignmentsRequest) -> AlterPartitionReassignmentsResponse:
    responses: list[AlterPartitionReassignmentsResponseReassignableTopicResponse] = []
    if not context.authorize(AclOperation.ALTER, ResourceType.CLUSTER, CLUSTER_NAME):
        # ControllerApis: authorizeClusterOperation throws; the request's getErrorResponse gives
        # the error to the request and to each partition.
        error, message = ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "Request is not authorized."
        for topic in request["topics"]:
            responses.append({"name": topic["name"], "partitions": [
                {"partition_index": p["partition_index"], "error_code": error, "error_message": message} for p in topic["partitions"]]})
        return {"throttle_time_ms": 0, "allow_replication_factor_change": request.get("allow_replication_factor_change", True),
                "error_code": error, "error_message": message, "responses": responses}
    for topic in request["topics"]:
        partitions: list[AlterPartitionReassignmentsResponseReassignablePartitionResponse] = []
        for wanted in topic["partitions"]:
            entry: AlterPartitionReassignmentsResponseReassignablePartitionResponse = {"partition_index": wanted["partition_index"], "error_code": ErrorCode.NONE, "error_message": None}
            try:
                _check(context, topic["name"], wanted["partition_index"], wanted["replicas"])
            except KafkaError as exc:
                entry["error_code"] = exc.code
                entry["error_message"] = exc.message
            partitions.append(entry)
        responses.append({"name": topic["name"], "partitions": partitions})
    return {
        "throttle_time_ms": 0,
        "allow_replication_factor_change": request.get("allow_replication_factor_change", True),
        "error_code": ErrorCode.NONE,
        "error_message": None,
        "responses": responses,
    }


def _check(context: RequestContext, name: str, index: int, replicas: list[int] | None) -> None:
    info = context.storage.topic(name)
    if info is None:
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"Unable to find a topic named {name}.")
    if not 0 <= index < info.partitions:
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"Unable to find partition {name}:{index}.")
    if replicas is None:
        raise KafkaError(ErrorCode.NO_REASSIGNMENT_IN_PROGRESS)
    if not replicas:
        raise KafkaError(ErrorCode.INVALID_REPLICATION_ASSIGNMENT, "The manual partition assignment includes an empty replica list.")
    for node in replicas:
        if node != context.node.node_id:
            raise KafkaError(
                ErrorCode.INVALID_REPLICATION_ASSIGNMENT, f"The manual partition assignment includes broker {node}, but no such broker is registered."
            )
    if len(replicas) > 1:
        raise KafkaError(
            ErrorCode.INVALID_REPLICATION_ASSIGNMENT, f"The manual partition assignment includes the broker {context.node.node_id} more than once."
        )
