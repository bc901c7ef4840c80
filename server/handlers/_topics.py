"""What several handlers say about topics and partitions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.cluster.routing import partition_state
from ottla.server.cluster.state import NO_LEADER, ClusterState
from ottla.server.context import RequestContext
from ottla.storage import TopicInfo
from ottla.wire.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from ottla.wire.messages.types import MetadataResponseMetadataResponsePartition


def partition_metadata(context: RequestContext, info: TopicInfo) -> list[MetadataResponseMetadataResponsePartition]:
    """A single node leads every partition and is its only replica; a cluster says each
    partition's replicas, leader, epoch and ISR, and its replicas on nodes not running as
    offline (LEADER_NOT_AVAILABLE while it has no leader, as Kafka's MetadataCache answers).
    A partition in a failed log directory has its one replica offline and no leader, as
    Kafka's controller leaves a partition whose last replica's directory failed."""
    cluster = context.services.cluster
    if cluster is not None:
        return [_cluster_partition(context, cluster, info, index) for index in range(info.partitions)]
    node = context.node.node_id
    storage = context.storage
    any_offline = storage.has_offline_partitions
    partitions: list[MetadataResponseMetadataResponsePartition] = []
    for index in range(info.partitions):
        offline = any_offline and storage.is_offline(info.name, index)
        partitions.append(
            {
                "error_code": ErrorCode.LEADER_NOT_AVAILABLE if offline else ErrorCode.NONE,
                "partition_index": index,
                "leader_id": NO_LEADER if offline else node,
                "leader_epoch": 0,
                "replica_nodes": [node],
                "isr_nodes": [node],
                "offline_replicas": [node] if offline else [],
            }
        )
    return partitions


def _cluster_partition(context: RequestContext, cluster: ClusterState, info: TopicInfo, index: int) -> MetadataResponseMetadataResponsePartition:
    state = partition_state(context, cluster, info, index)
    nodes = cluster.nodes
    return {
        "error_code": ErrorCode.LEADER_NOT_AVAILABLE if state.leader == NO_LEADER else ErrorCode.NONE,
        "partition_index": index,
        "leader_id": state.leader,
        "leader_epoch": state.leader_epoch,
        "replica_nodes": list(state.replicas),
        "isr_nodes": list(state.isr),
        "offline_replicas": [node for node in state.replicas if not nodes[node].running],
    }


def resolve_topic_name(context: RequestContext, name: str | None, topic_id: bytes | None) -> str:
    """Requests name a topic by name (older versions) or by id (Fetch 13+, Metadata 10+)."""
    if topic_id and any(topic_id):
        info = context.storage.topic_by_id(topic_id)
        if info is None:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_ID)
        return info.name
    if name is None:
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    return name
