"""The order of DeleteShareGroupOffsets' answer, as Kafka 4.4's bytecode builds it
(GroupCoordinatorShard.completeDeleteShareGroupOffsets): first the deleted topics, as a
HashMap by topic id iterates them (a topic named twice is deleted and answered once), then
the topics refused with an error, as named."""

from __future__ import annotations

from typing import Any

from raw_broker import connection  # noqa: F401 (the fixture)
from compat.differential import _Connection
from compat.harness import wait_for
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

NO_OFFSETS = "There is no offset information to delete."
NO_TOPIC = "This server does not host this topic-partition."


def _heartbeat(connection: _Connection, epoch: int, topics: list[str] | None = None) -> Any:
    return connection.call(ApiKey.SHARE_GROUP_HEARTBEAT, 1, {"group_id": "sg", "member_id": "m1abcdefghijklmnopqrst", "member_epoch": epoch,
                                                             "rack_id": None, "subscribed_topic_names": topics})


def _bucket(topic_id: bytes) -> int:
    """The bucket of a 16-bucket java.util.HashMap a Uuid key falls in."""
    bits = int.from_bytes(topic_id, "big")
    folded = (bits >> 64) ^ (bits & (2**64 - 1))
    h = ((folded >> 32) ^ folded) & 0xFFFFFFFF
    return (h ^ (h >> 16)) & 15


def test_deleted_topics_come_by_id_bucket_then_refused_ones_as_named(connection: _Connection) -> None:
    subscribed = ["d1", "d2", "d3", "d4", "d5"]
    created = connection.call(ApiKey.CREATE_TOPICS, 7, {"timeout_ms": 5000, "validate_only": False, "topics": [
        {"name": name, "num_partitions": 1, "replication_factor": 1, "assignments": [], "configs": []} for name in [*subscribed, "u"]]})
    assert [t["error_code"] for t in created["topics"]] == [ErrorCode.NONE] * 6
    ids = {t["name"]: t["topic_id"] for t in created["topics"]}
    epoch = _heartbeat(connection, 0, subscribed)["member_epoch"]

    def initialized() -> bool:
        nonlocal epoch
        beat = _heartbeat(connection, epoch)
        epoch = beat["member_epoch"]
        return beat["assignment"] is not None and len(beat["assignment"]["topic_partitions"]) == len(subscribed)

    assert wait_for(initialized, timeout=30)
    assert _heartbeat(connection, -1)["error_code"] == ErrorCode.NONE
    named = ["nope", "d3", "u", "d1", "d5", "d2", "d4", "d3"]
    answer = connection.call(ApiKey.DELETE_SHARE_GROUP_OFFSETS, 0, {"group_id": "sg", "topics": [{"topic_name": name} for name in named]})
    assert answer["error_code"] == ErrorCode.NONE
    # Within a bucket, the topic named later comes first (computeIfAbsent links it at the head).
    deleted = sorted(subscribed, key=lambda name: (_bucket(ids[name]), -named.index(name)))
    assert [(t["topic_name"], t["error_code"], t["error_message"]) for t in answer["responses"]] == [
        *((name, ErrorCode.NONE, None) for name in deleted),
        ("nope", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, NO_TOPIC), ("u", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, NO_OFFSETS)]
