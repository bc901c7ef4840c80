"""ElectLeaders (KIP-183, KIP-460): with one replica per partition the preferred leader is
always the leader, so every existing partition answers ELECTION_NOT_NEEDED, as Kafka does.

In a cluster (server/cluster/) as Kafka's ReplicationControlManager.electLeaders: PREFERRED
moves leadership to the first replica when it is running and in the ISR (else
PREFERRED_LEADER_NOT_AVAILABLE); UNCLEAN elects any running replica of a partition without a
leader (else ELIGIBLE_LEADERS_NOT_AVAILABLE); a partition already led as asked is
ELECTION_NOT_NEEDED. Without named partitions every partition is tried and every topic is
listed, with only the partitions that needed an election. An empty list is answered at once;
an unknown election type refuses the whole request (INVALID_REQUEST).

Kafka's controller runs the election as an event due by `timeout_ms` from its arrival
(ControllerRequestContext.requestTimeoutMsToDeadlineNs), and its event queue times out an
event whose deadline has passed before running it: with `timeout_ms` <= 0 every request but
the empty list is REQUEST_TIMED_OUT, whatever it names."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.cluster.routing import partition_state
from ottla.server.cluster.state import NO_LEADER, ClusterState, PartitionState
from ottla.server.context import RequestContext
from ottla.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType
from ottla.server.security.refusals import needs_permission
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.storage import TopicInfo
    from ottla.wire.messages.types import (
        ElectLeadersRequest,
        ElectLeadersRequestTopicPartitions,
        ElectLeadersResponse,
        ElectLeadersResponsePartitionResult,
        ElectLeadersResponseReplicaElectionResult,
    )

# Kafka's errors without a message of their own carry Errors' default one (ApiError(Errors)).
_NOT_NEEDED = "Leader election not needed for topic partition."
API = ApiKey.ELECT_LEADERS
VERSIONS = (0, 2)

PREFERRED, UNCLEAN = 0, 1


def handle(context: RequestContext, header: RequestHeader, request: ElectLeadersRequest) -> ElectLeadersResponse:
    storage = context.storage
    election_type = request.get("election_type", PREFERRED)
    requested = request["topic_partitions"]
    if not context.authorize(AclOperation.ALTER, ResourceType.CLUSTER, CLUSTER_NAME):
        # ControllerApis: authorizeClusterOperation throws.
        return _refused(requested, ErrorCode.CLUSTER_AUTHORIZATION_FAILED, needs_permission(context, AclOperation.ALTER))
    if requested is not None and not requested:
        # QuorumController.electLeaders answers an empty list at once, before reading the type.
        return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "replica_election_results": []}
    if request["timeout_ms"] <= 0:
        # A TimeoutException without a message, as ElectLeadersRequest.getErrorResponse words it.
        return _refused(requested, ErrorCode.REQUEST_TIMED_OUT, None)
    if election_type not in (PREFERRED, UNCLEAN):
        return _refused(requested, ErrorCode.INVALID_REQUEST, f"Unknown election type {election_type}")
    cluster = context.services.cluster
    if cluster is not None:
        return _cluster_election(context, cluster, election_type, requested)
    if requested is None:
        # Every topic, internal ones too, with no partition results: nothing needed electing.
        every: list[ElectLeadersResponseReplicaElectionResult] = [{"topic": info.name, "partition_result": []} for info in storage.topics()]
        return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "replica_election_results": every}
    results: list[ElectLeadersResponseReplicaElectionResult] = []
    for topic in requested:
        info = storage.topic(topic["topic"])
        partition_results: list[ElectLeadersResponsePartitionResult] = []
        for index in topic["partitions"]:
            if info is not None and 0 <= index < info.partitions:
                code, message = ErrorCode.ELECTION_NOT_NEEDED, _NOT_NEEDED
            else:
                code, message = _unknown(topic["topic"], index, info)
            partition_results.append({"partition_id": index, "error_code": code, "error_message": message})
        results.append({"topic": topic["topic"], "partition_result": partition_results})
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "replica_election_results": results}


def _refused(requested: list[ElectLeadersRequestTopicPartitions] | None, error: ErrorCode, message: str | None) -> ElectLeadersResponse:
    """ElectLeadersRequest.getErrorResponse: the error for the request and each partition it names."""
    results: list[ElectLeadersResponseReplicaElectionResult] = [
        {"topic": topic["topic"], "partition_result": [{"partition_id": p, "error_code": error, "error_message": message} for p in topic["partitions"]]}
        for topic in requested or ()
    ]
    return {"throttle_time_ms": 0, "error_code": error, "replica_election_results": results}


def _unknown(name: str, index: int, info: TopicInfo | None) -> tuple[ErrorCode, str]:
    """ReplicationControlManager.electLeader's answer for a topic or partition it does not know."""
    if info is None:
        return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"No such topic as {name}"
    return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"No such partition as {name}-{index}"


def _cluster_election(
    context: RequestContext, cluster: ClusterState, election_type: int, requested: list[ElectLeadersRequestTopicPartitions] | None
) -> ElectLeadersResponse:
    storage = context.storage
    every = requested is None
    wanted = [(info.name, list(range(info.partitions))) for info in storage.topics()] if requested is None else [
        (topic["topic"], topic["partitions"]) for topic in requested
    ]
    results: list[ElectLeadersResponseReplicaElectionResult] = []
    for name, indexes in wanted:
        info = storage.topic(name)
        partition_results: list[ElectLeadersResponsePartitionResult] = []
        for index in indexes:
            message: str | None
            if info is not None and 0 <= index < info.partitions:
                code, message = _elect(cluster, partition_state(context, cluster, info, index), name, index, election_type)
            else:
                code, message = _unknown(name, index, info)
            if not (every and code == ErrorCode.ELECTION_NOT_NEEDED):
                partition_results.append({"partition_id": index, "error_code": code, "error_message": message})
        results.append({"topic": name, "partition_result": partition_results})
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "replica_election_results": results}


def _elect(cluster: ClusterState, state: PartitionState, name: str, index: int, election_type: int) -> tuple[ErrorCode, str | None]:
    if election_type == PREFERRED:
        if state.leader == state.replicas[0]:
            return ErrorCode.ELECTION_NOT_NEEDED, _NOT_NEEDED
        if cluster.elect_preferred(name, index):
            return ErrorCode.NONE, None
        return ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE, "The preferred leader was not available."
    if state.leader != NO_LEADER:
        return ErrorCode.ELECTION_NOT_NEEDED, _NOT_NEEDED
    if cluster.elect_unclean(name, index):
        return ErrorCode.NONE, None
    return ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE, "Eligible topic partition leaders are not available."
