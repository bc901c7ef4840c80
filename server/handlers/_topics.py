"""What several handlers say about topics and partitions."""

from __future__ import annotations

from typing import Any

from ottla.wire.errors import ErrorCode, KafkaError


def partition_metadata(broker, partitions: int) -> list[dict[str, Any]]:
    """A single node leads every partition and is its only replica."""
    node = broker.node_id
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


def resolve_topic_name(broker, name: str | None, topic_id: bytes | None) -> str:
    """Requests name a topic by name (older versions) or by id (Fetch 13+, Metadata 10+)."""
    if topic_id and any(topic_id):
        info = broker.storage.topic_by_id(topic_id)
        if info is None:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_ID)
        return info.name
    if name is None:
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    return name
