"""DescribeQuorum (KIP-595, KIP-836, KIP-853): the KRaft metadata quorum, which for Ottla is
static and one voter, the controller, always its leader: this node alone, or in a cluster the
one DescribeCluster names (the first running node), whichever node is asked. The cluster's
other running nodes are the quorum's observers, as Kafka's brokers fetch the metadata log.

Ottla keeps no metadata log (topics and configs live in the data directory), so the quorum's
offsets are those of an empty log: 0, and no follower lags. With kraft.version 0 a voter has
no directory id (Kafka reports the zero UUID for those), and the voter's endpoint is the
listener the question came in on: this node has no separate controller listener.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import time

from ottla.server.cluster.routing import endpoint_of
from ottla.server.context import RequestContext
from ottla.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, default_message
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        DescribeQuorumRequest,
        DescribeQuorumResponse,
        DescribeQuorumResponseNode,
        DescribeQuorumResponsePartitionData,
        DescribeQuorumResponseReplicaState,
    )

API = ApiKey.DESCRIBE_QUORUM
VERSIONS = (0, 2)

METADATA_TOPIC = "__cluster_metadata"  # Kafka's Topic.CLUSTER_METADATA_TOPIC_NAME, partition 0
_LEADER_EPOCH = 1  # the epoch of a quorum whose one voter elected itself once, as a fresh Kafka reports
_ZERO_UUID = bytes(16)


def handle(context: RequestContext, header: RequestHeader, request: DescribeQuorumRequest) -> DescribeQuorumResponse:
    # Kafka 4.4 words success as an empty message, not null.
    response: DescribeQuorumResponse = {"error_code": ErrorCode.NONE, "error_message": "", "topics": [], "nodes": []}
    if not context.authorize(AclOperation.DESCRIBE, ResourceType.CLUSTER, CLUSTER_NAME):  # ControllerApis: authorizeClusterOperation
        # DescribeQuorumRequest.getErrorResponse keeps only the error, worded by its default message.
        return {**response, "error_code": ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "error_message": "Cluster authorization failed."}
    topics = request["topics"]
    # Kafka answers only a request for exactly __cluster_metadata-0; any other shape gets
    # UNKNOWN_TOPIC_OR_PARTITION for every partition it names (KafkaRaftClient.handleDescribeQuorumRequest).
    if len(topics) == 1 and topics[0]["topic_name"] == METADATA_TOPIC and [p["partition_index"] for p in topics[0]["partitions"]] == [0]:
        leader, now_ms = controller_id(context), int(time.time() * 1000)
        cluster = context.services.cluster
        observer_ids = [] if cluster is None else [node.node_id for node in cluster.running_nodes() if node.node_id != leader]

        # The leader reports its own clock for both timestamps (LeaderState.describeQuorum).
        def replica(node_id: int) -> DescribeQuorumResponseReplicaState:
            return {"replica_id": node_id, "replica_directory_id": _ZERO_UUID, "log_end_offset": 0,
                    "last_fetch_timestamp": now_ms, "last_caught_up_timestamp": now_ms}

        response["topics"] = [{"topic_name": METADATA_TOPIC, "partitions": [
            {"partition_index": 0, "error_code": ErrorCode.NONE, "error_message": "", "leader_id": leader, "leader_epoch": _LEADER_EPOCH,
             "high_watermark": 0, "current_voters": [replica(leader)], "observers": [replica(node_id) for node_id in observer_ids]}]}]
        response["nodes"] = [_node(context, leader)]
        return response
    for topic in topics:
        partitions: list[DescribeQuorumResponsePartitionData] = [
            {"partition_index": p["partition_index"], "error_code": ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
             "error_message": default_message(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION), "leader_id": 0, "leader_epoch": 0,
             "high_watermark": 0, "current_voters": [], "observers": []}
            for p in topic["partitions"]]
        response["topics"].append({"topic_name": topic["topic_name"], "partitions": partitions})
    return response


def controller_id(context: RequestContext) -> int:
    """The active controller: this node alone, else the cluster's first running node."""
    cluster = context.services.cluster
    if cluster is None:
        return context.node.node_id
    running = cluster.running_nodes()
    return running[0].node_id if running else context.node.node_id


def _node(context: RequestContext, node_id: int) -> DescribeQuorumResponseNode:
    """The voter as the listener the question came in on advertises it."""
    cluster = context.services.cluster
    endpoint = None if cluster is None else endpoint_of(context, cluster, node_id)
    host, port = (context.node.host, context.node.port) if endpoint is None else (endpoint.host, endpoint.port)
    return {"node_id": node_id, "listeners": [{"name": context.client.listener, "host": host, "port": port}]}
