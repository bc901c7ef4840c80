"""AlterPartitionReassignments (KIP-455), as Kafka's controller answers it
(ReplicationControlManager.alterPartitionReassignment; messages are Kafka's).

The target replicas are checked as validateManualPartitionAssignment checks them: not empty,
then in ascending broker order each one registered and named once. On one node the only
registered broker is this one, so a valid target is the replica set the partition already
has, and nothing moves. In a cluster (server/cluster/) every node is registered, stopped ones
too, and a new target is applied: replicas share one log, so a running replica the target adds
is caught up at once and the reassignment completes as Kafka's completes once its adding
replicas join the ISR (ClusterState.reassign). One that adds a stopped replica stays in
progress (listed, its replicas the target followed by those it removes) until that node starts
and joins the ISR, or until it is cancelled (null replicas: ClusterState.cancel_reassignment);
cancelling where none is in progress is NO_REASSIGNMENT_IN_PROGRESS.
Over a shared PostgreSQL log (server/cluster/database.py) placement follows the live brokers
alone, so a target other than the current replicas is refused.

v1 (KIP-860) lets the request forbid a change of replication factor, checked after the
target (validatePartitionReplicationFactorUnchanged: against the replicas without those a
reassignment in progress removes), and the answer echoes that choice;
Kafka's error answers (AlterPartitionReassignmentsRequest.getErrorResponse) and its answer
to an empty request leave it at its default, true.

The controller answers an empty request at once with a default response (an empty, not null,
message). Any other runs as an event due by `timeout_ms` from its arrival, which Kafka's event
queue times out before running when the deadline has passed: with `timeout_ms` <= 0 every
partition is REQUEST_TIMED_OUT (as in ElectLeaders)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.cluster.routing import partition_state, unclean_allowed
from ottla.server.cluster.state import ClusterState, UncleanRevert
from ottla.server.context import RequestContext
from ottla.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType
from ottla.server.security.refusals import needs_permission
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.storage import TopicInfo
    from ottla.wire.messages.types import (
        AlterPartitionReassignmentsRequest,
        AlterPartitionReassignmentsResponse,
        AlterPartitionReassignmentsResponseReassignablePartitionResponse,
        AlterPartitionReassignmentsResponseReassignableTopicResponse,
    )

API = ApiKey.ALTER_PARTITION_REASSIGNMENTS
VERSIONS = (0, 1)


def handle(context: RequestContext, header: RequestHeader, request: AlterPartitionReassignmentsRequest) -> AlterPartitionReassignmentsResponse:
    if not context.authorize(AclOperation.ALTER, ResourceType.CLUSTER, CLUSTER_NAME):
        # ControllerApis: authorizeClusterOperation throws.
        return _refused(request, ErrorCode.CLUSTER_AUTHORIZATION_FAILED, needs_permission(context, AclOperation.ALTER))
    if not request["topics"]:
        return {"throttle_time_ms": 0, "allow_replication_factor_change": True, "error_code": ErrorCode.NONE, "error_message": "", "responses": []}
    if request["timeout_ms"] <= 0:
        return _refused(request, ErrorCode.REQUEST_TIMED_OUT, None)
    allow_change = request.get("allow_replication_factor_change", True)
    responses: list[AlterPartitionReassignmentsResponseReassignableTopicResponse] = []
    for topic in request["topics"]:
        partitions: list[AlterPartitionReassignmentsResponseReassignablePartitionResponse] = []
        for wanted in topic["partitions"]:
            entry: AlterPartitionReassignmentsResponseReassignablePartitionResponse = {"partition_index": wanted["partition_index"], "error_code": ErrorCode.NONE, "error_message": None}
            try:
                _reassign(context, topic["name"], wanted["partition_index"], wanted["replicas"], allow_change)
            except KafkaError as exc:
                entry["error_code"] = exc.code
                entry["error_message"] = exc.message
            partitions.append(entry)
        responses.append({"name": topic["name"], "partitions": partitions})
    return {"throttle_time_ms": 0, "allow_replication_factor_change": allow_change, "error_code": ErrorCode.NONE, "error_message": None, "responses": responses}


def _refused(request: AlterPartitionReassignmentsRequest, error: ErrorCode, message: str | None) -> AlterPartitionReassignmentsResponse:
    """AlterPartitionReassignmentsRequest.getErrorResponse: the error for the request and each partition."""
    responses: list[AlterPartitionReassignmentsResponseReassignableTopicResponse] = [
        {"name": topic["name"], "partitions": [
            {"partition_index": p["partition_index"], "error_code": error, "error_message": message} for p in topic["partitions"]]}
        for topic in request["topics"]
    ]
    return {"throttle_time_ms": 0, "allow_replication_factor_change": True, "error_code": error, "error_message": message, "responses": responses}


def _reassign(context: RequestContext, name: str, index: int, replicas: list[int] | None, allow_change: bool) -> None:
    info = context.storage.topic(name)
    if info is None:
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"Unable to find a topic named {name}.")
    if not 0 <= index < info.partitions:
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"Unable to find partition {name}:{index}.")
    cluster = context.services.cluster
    if replicas is None:
        _cancel(context, cluster, info, index)
        return
    if not replicas:
        raise KafkaError(ErrorCode.INVALID_REPLICATION_ASSIGNMENT, "The manual partition assignment includes an empty replica list.")
    registered = {context.node.node_id} if cluster is None else cluster.nodes.keys()
    previous = None
    for node in sorted(replicas):
        if node not in registered:
            raise KafkaError(
                ErrorCode.INVALID_REPLICATION_ASSIGNMENT, f"The manual partition assignment includes broker {node}, but no such broker is registered."
            )
        if node == previous:
            raise KafkaError(ErrorCode.INVALID_REPLICATION_ASSIGNMENT, f"The manual partition assignment includes the broker {node} more than once.")
        previous = node
    state = None if cluster is None else partition_state(context, cluster, info, index)
    current = (context.node.node_id,) if state is None else state.replicas
    size = len(current) if state is None else len(current) - len(state.removing)
    if not allow_change and len(replicas) != size:
        raise KafkaError(ErrorCode.INVALID_REPLICATION_FACTOR, f"The replication factor is changed from {size} to {len(replicas)}")
    if cluster is not None and tuple(replicas) != current:
        if not cluster.reassignable:
            raise KafkaError(
                ErrorCode.INVALID_REPLICATION_ASSIGNMENT,
                "Partitions over the shared PostgreSQL log are placed on every live broker; their replicas cannot be reassigned.",
            )
        cluster.reassign(name, index, tuple(replicas))


def _cancel(context: RequestContext, cluster: ClusterState | None, info: TopicInfo, index: int) -> None:
    """ReplicationControlManager.cancelPartitionReassignment: revert the reassignment in progress."""
    state = None if cluster is None else partition_state(context, cluster, info, index)
    if cluster is None or state is None or not (state.adding or state.removing):
        # NoReassignmentInProgressException carries Errors' own words, which the partition's
        # ApiError.fromThrowable drops: the answer's message is null.
        raise KafkaError(ErrorCode.NO_REASSIGNMENT_IN_PROGRESS)
    try:
        cluster.cancel_reassignment(info.name, index, unclean_allowed(context.storage, context.config, info.name))
    except UncleanRevert:
        raise KafkaError(
            ErrorCode.INVALID_REPLICATION_ASSIGNMENT,
            f"Unable to revert partition assignment for {info.name}:{index} because it would require an unclean leader election.",
        ) from None
