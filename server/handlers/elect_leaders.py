"""ElectLeaders (KIP-183, KIP-460): with one replica per partition the preferred leader is
always the leader, so every existing partition answers ELECTION_NOT_NEEDED, as Kafka does."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        ElectLeadersRequest,
        ElectLeadersResponse,
        ElectLeadersResponsePartitionResult,
        ElectLeadersResponseReplicaElectionResult,
    )

_NOT_AUTHORIZED = "Request is not authorized."
API = ApiKey.ELECT_LEADERS
VERSIONS = (0, 2)

PREFERRED, UNCLEAN = 0, 1


def handle(context: RequestContext, header: RequestHeader, request: ElectLeadersRequest) -> ElectLeadersResponse:
    storage = context.storage
    election_type = request.get("election_type", PREFERRED)
    requested = request["topic_partitions"]
    if not context.authorize(AclOperation.ALTER, ResourceType.CLUSTER, CLUSTER_NAME):
        # ControllerApis: authorizeClusterOperation throws; ElectLeadersRequest.getErrorResponse
        # gives the error to the request and to each partition it names.
        error = ErrorCode.CLUSTER_AUTHORIZATION_FAILED
        refused: list[ElectLeadersResponseReplicaElectionResult] = [
            {"topic": topic["topic"], "partition_result": [{"partition_id": p, "error_code": error, "error_message": _NOT_AUTHORIZED} for p in topic["partitions"]]}
            for topic in requested or ()
        ]
        return {"throttle_time_ms": 0, "error_code": error, "replica_election_results": refused}
    if requested is None:
        # Kafka lists every topic, with no partition results: nothing was elected.
        every: list[ElectLeadersResponseReplicaElectionResult] = [{"topic": info.name, "partition_result": []} for info in storage.topics()]
        return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "replica_election_results": every}
    valid_type = election_type in (PREFERRED, UNCLEAN)
    results: list[ElectLeadersResponseReplicaElectionResult] = []
    for topic in requested:
        info = storage.topic(topic["topic"])
        partition_results: list[ElectLeadersResponsePartitionResult] = []
        for index in topic["partitions"]:
            if not valid_type:
                code, message = ErrorCode.INVALID_REQUEST, f"Unknown election type {election_type}"
            elif info is None:
                code, message = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"No such topic as {topic['topic']}"
            elif not 0 <= index < info.partitions:
                code, message = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"No such partition as {topic['topic']}-{index}"
            else:
                code, message = ErrorCode.ELECTION_NOT_NEEDED, "Leader election not needed for topic partition."
            partition_results.append({"partition_id": index, "error_code": code, "error_message": message})
        results.append({"topic": topic["topic"], "partition_result": partition_results})
    top_error = ErrorCode.NONE if valid_type else ErrorCode.INVALID_REQUEST
    return {"throttle_time_ms": 0, "error_code": top_error, "replica_election_results": results}
