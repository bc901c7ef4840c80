"""ListPartitionReassignments (KIP-455), as ReplicationControlManager.listReassignments: the
partitions asked for (all, when the request names none) that have a reassignment in progress,
with their replicas (the target followed by those removed) and the replicas being added and
removed. A single node never moves a replica, so none is ever in progress there; in a cluster
one is until the replicas it adds are in sync (ClusterState.reassign). Unknown topics and
partitions, and topics with nothing in progress, are left out of the answer. Refused without
DESCRIBE on the cluster, the answer echoes the partitions asked for."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType
from ottla.server.security.refusals import needs_permission
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.server.cluster.state import PartitionState
    from ottla.wire.messages.types import (
        ListPartitionReassignmentsRequest,
        ListPartitionReassignmentsResponse,
        ListPartitionReassignmentsResponseOngoingPartitionReassignment,
        ListPartitionReassignmentsResponseOngoingTopicReassignment,
    )

API = ApiKey.LIST_PARTITION_REASSIGNMENTS
VERSIONS = (0, 0)


def handle(context: RequestContext, header: RequestHeader, request: ListPartitionReassignmentsRequest) -> ListPartitionReassignmentsResponse:
    if not context.authorize(AclOperation.DESCRIBE, ResourceType.CLUSTER, CLUSTER_NAME):  # ControllerApis: authorizeClusterOperation
        # ListPartitionReassignmentsRequest.getErrorResponse echoes the partitions asked for, as listed.
        echoed: list[ListPartitionReassignmentsResponseOngoingTopicReassignment] = [
            {"name": topic["name"], "partitions": [{"partition_index": index, "replicas": [], "adding_replicas": [], "removing_replicas": []}
                                                   for index in topic["partition_indexes"]]} for topic in request["topics"] or ()]
        return {"throttle_time_ms": 0, "error_code": ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "error_message": needs_permission(context, AclOperation.DESCRIBE),
                "topics": echoed}
    cluster = context.services.cluster
    topics: list[ListPartitionReassignmentsResponseOngoingTopicReassignment] = []
    if cluster is not None:
        wanted = [(name, None) for name in list(cluster.topics)] if request["topics"] is None else [
            (topic["name"], topic["partition_indexes"]) for topic in request["topics"]]
        for name, indexes in wanted:
            info = context.storage.topic(name)
            known = cluster.topics.get(name)
            if info is None or known is None or known[0] != info.topic_id:
                continue
            states = known[1]
            ongoing = [_ongoing(index, states[index]) for index in (sorted(states) if indexes is None else indexes)
                       if index in states and (states[index].adding or states[index].removing)]
            if ongoing:
                topics.append({"name": name, "partitions": ongoing})
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": None, "topics": topics}


def _ongoing(index: int, state: PartitionState) -> ListPartitionReassignmentsResponseOngoingPartitionReassignment:
    return {"partition_index": index, "replicas": list(state.replicas), "adding_replicas": list(state.adding),
            "removing_replicas": list(state.removing)}
