"""The order of DescribeShareGroupOffsets' answer, as Kafka 4.4 gives it: the topics that exist
as DefaultStatePersister.readSummary's HashMap by topic id holds them, each topic's partitions
as its HashMap by partition does (a topic or partition named twice is answered once), then
the topics that do not exist, as named. Every expectation here was the reference Kafka 4.4's
answer to the same request (for topic ids of its own, ordered by the same rule)."""

from __future__ import annotations

from typing import Any

from raw_broker import connection  # noqa: F401 (the fixture)
from compat.differential import _Connection
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode


def _create(connection: _Connection, name: str, partitions: int) -> bytes:
    created = connection.call(ApiKey.CREATE_TOPICS, 7, {"timeout_ms": 5000, "validate_only": False, "topics": [
        {"name": name, "num_partitions": partitions, "replication_factor": 1, "assignments": [], "configs": []}]})
    assert created["topics"][0]["error_code"] == ErrorCode.NONE
    topic_id: bytes = created["topics"][0]["topic_id"]
    return topic_id


def _order(connection: _Connection, topics: list[dict[str, Any]]) -> list[tuple[str, list[int]]]:
    answer = connection.call(ApiKey.DESCRIBE_SHARE_GROUP_OFFSETS, 1, {"groups": [{"group_id": "g", "topics": topics}]})
    (group,) = answer["groups"]
    assert group["error_code"] == ErrorCode.NONE
    return [(topic["topic_name"], [p["partition_index"] for p in topic["partitions"]]) for topic in group["topics"]]


def _bucket(topic_id: bytes) -> int:
    """The bucket of a 16-bucket java.util.HashMap a Uuid key falls in."""
    bits = int.from_bytes(topic_id, "big")
    folded = (bits >> 64) ^ (bits & (2**64 - 1))
    h = ((folded >> 32) ^ folded) & 0xFFFFFFFF
    return (h ^ (h >> 16)) & 15


def test_partitions_come_in_hash_map_order_once_each(connection: _Connection) -> None:
    _create(connection, "wide", 20)
    assert _order(connection, [{"topic_name": "wide", "partitions": [3, 7, 0]}]) == [("wide", [0, 3, 7])]
    # 16 and 0 share a bucket: computeIfAbsent links the later one first.
    assert _order(connection, [{"topic_name": "wide", "partitions": [0, 16]}]) == [("wide", [16, 0])]
    assert _order(connection, [{"topic_name": "wide", "partitions": [16, 0]}]) == [("wide", [0, 16])]
    assert _order(connection, [{"topic_name": "wide", "partitions": [5, 5, 1]}]) == [("wide", [1, 5])]
    # Thirteen partitions still fit 16 buckets; a fourteenth doubles them.
    thirteen = [16, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 0]
    assert _order(connection, [{"topic_name": "wide", "partitions": thirteen}]) == [("wide", [0, 16, *range(2, 13)])]
    assert _order(connection, [{"topic_name": "wide", "partitions": [*thirteen, 1]}]) == [("wide", [*range(13), 16])]


def test_topics_come_by_id_bucket_then_missing_ones_as_named(connection: _Connection) -> None:
    ids = {name: _create(connection, name, 2) for name in ["t1", "t2", "t3", "t4", "t5"]}
    named = ["t3", "t1", "t5", "t2", "t4"]
    # Within a bucket, the topic named later comes first (computeIfAbsent links it at the head).
    expected = sorted(named, key=lambda name: (_bucket(ids[name]), -named.index(name)))
    asked = [{"topic_name": "gone", "partitions": [2, 1, 1]}, *({"topic_name": name, "partitions": [1, 0]} for name in named),
             {"topic_name": "t3", "partitions": [1]}, {"topic_name": "gone", "partitions": [0]}]
    assert _order(connection, asked) == [*((name, [0, 1]) for name in expected), ("gone", [2, 1, 1]), ("gone", [0])]
