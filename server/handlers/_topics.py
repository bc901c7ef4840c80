"""What several handlers say about topics and partitions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.wire.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from ottla.wire.messages.types import MetadataResponseMetadataResponsePartition


def partition_metadata(context: RequestContext, partitions: int) -> list[MetadataResponseMetadataResponsePartition]:
    """A single node leads every partition and is its only replica."""
    node = context.node.node_id
    return [
        {
            "error_code": ErrorCode.NONE,
            "partition_index": index,
            "leader_id": node,
            "leader_epoch": 0,
            "replica_nodes": [node],
            "isr_nodes": [node],
            "offline_replicas": [],
        }
        for index in range(partitions)
    ]


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
