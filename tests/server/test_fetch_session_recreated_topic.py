"""A topic-id fetch session whose topic was deleted and created again with fewer partitions,
answered per partition as Kafka 4.4 answers it (checked against the reference broker): the
partitions the new topic has are INCONSISTENT_TOPIC_ID (ReplicaManager.readFromLog, aborted
transactions null), those it lacks UNKNOWN_TOPIC_OR_PARTITION (KafkaApis.handleFetchRequest's
metadataCache.contains, refused before any read: an empty list)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from compat.differential import _Connection
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode


@pytest.fixture
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None) as running:
        yield running


def _partition(index: int) -> dict[str, Any]:
    return {"partition": index, "current_leader_epoch": -1, "fetch_offset": 0, "last_fetched_epoch": -1,
            "log_start_offset": -1, "partition_max_bytes": 1 << 20}


def _fetch(conn: _Connection, topics: list[dict[str, Any]], session_id: int, epoch: int) -> dict[str, Any]:
    return conn.call(ApiKey.FETCH, 13, {
        "replica_id": -1, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1 << 20, "isolation_level": 1,
        "session_id": session_id, "session_epoch": epoch, "rack_id": "", "topics": topics, "forgotten_topics_data": []})


def _answers(response: dict[str, Any]) -> list[tuple[int, int, Any]]:
    return [(p["partition_index"], p["error_code"], p["aborted_transactions"]) for t in response["responses"] for p in t["partitions"]]


def test_a_session_partition_the_recreated_topic_lacks_is_unknown(broker: ThreadedBroker) -> None:
    topic = f"recreated-{uuid.uuid4().hex[:8]}"
    broker.create_topic(topic, 3)
    conn = _Connection(broker.bootstrap_servers)
    try:
        described = conn.call(ApiKey.METADATA, 12, {"topics": [{"name": topic, "topic_id": bytes(16)}], "allow_auto_topic_creation": False,
                                                    "include_topic_authorized_operations": False})["topics"][0]
        opened = _fetch(conn, [{"topic_id": described["topic_id"], "partitions": [_partition(i) for i in range(3)]}], 0, 0)
        session = opened["session_id"]
        assert session and [error for _, error, _ in _answers(opened)] == [0, 0, 0]
        deleted = conn.call(ApiKey.DELETE_TOPICS, 6, {"topics": [{"name": topic, "topic_id": bytes(16)}], "timeout_ms": 5000})
        assert deleted["responses"][0]["error_code"] == 0
        broker.create_topic(topic, 1)
        expected = [(0, ErrorCode.INCONSISTENT_TOPIC_ID, None), (1, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, []),
                    (2, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, [])]
        assert _answers(_fetch(conn, [], session, 1)) == expected
        # Errors are always sent again: the next incremental fetch answers the same.
        assert _answers(_fetch(conn, [], session, 2)) == expected
    finally:
        conn.close()
