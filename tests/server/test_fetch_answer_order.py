"""A Fetch answer lays its partitions out as Kafka 4.4's does (checked against the reference
broker): KafkaApis.handleFetchRequest puts the partitions it read first, in request order, then
those it refused before any read (unknown topic, topic id or partition); FetchResponse.of gives
a topic's partitions that end up next to each other one entry, and a topic without partitions
none. A session opened by a full request keeps its partitions in that order."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from compat.differential import _Connection
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.records import Record, build_batch

_UNKNOWN = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


@pytest.fixture
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None) as running:
        yield running


def _partition(index: int, offset: int = 0) -> dict[str, Any]:
    return {"partition": index, "current_leader_epoch": -1, "fetch_offset": offset, "last_fetched_epoch": -1,
            "log_start_offset": -1, "partition_max_bytes": 1 << 20}


def _fetch(conn: _Connection, version: int, topics: list[dict[str, Any]], session_id: int = 0, epoch: int = -1) -> dict[str, Any]:
    return conn.call(ApiKey.FETCH, version, {
        "replica_id": -1, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1 << 20, "isolation_level": 0,
        "session_id": session_id, "session_epoch": epoch, "rack_id": "", "topics": topics, "forgotten_topics_data": []})


def _layout(response: dict[str, Any]) -> list[tuple[Any, list[tuple[int, int]]]]:
    return [(topic.get("topic", topic.get("topic_id")), [(p["partition_index"], p["error_code"]) for p in topic["partitions"]])
            for topic in response["responses"]]


def test_refused_partitions_follow_those_read(broker: ThreadedBroker) -> None:
    topic, missing = f"order-{uuid.uuid4().hex[:8]}", f"missing-{uuid.uuid4().hex[:8]}"
    broker.create_topic(topic, 2)
    conn = _Connection(broker.bootstrap_servers)
    try:
        answer = _fetch(conn, 12, [{"topic": topic, "partitions": []}, {"topic": topic, "partitions": [_partition(0)]},
                                   {"topic": missing, "partitions": [_partition(0)]},
                                   {"topic": topic, "partitions": [_partition(1), _partition(7)]}])
        assert _layout(answer) == [(topic, [(0, 0), (1, 0)]), (missing, [(0, _UNKNOWN)]), (topic, [(7, _UNKNOWN)])]
        topic_id = conn.call(ApiKey.METADATA, 12, {"topics": [{"name": topic, "topic_id": bytes(16)}], "allow_auto_topic_creation": False,
                                                   "include_topic_authorized_operations": False})["topics"][0]["topic_id"]
        unknown_id = uuid.uuid4().bytes
        answer = _fetch(conn, 13, [{"topic_id": topic_id, "partitions": [_partition(0)]}, {"topic_id": unknown_id, "partitions": [_partition(0)]},
                                   {"topic_id": topic_id, "partitions": [_partition(1)]}])
        assert _layout(answer) == [(topic_id, [(0, 0), (1, 0)]), (unknown_id, [(0, ErrorCode.UNKNOWN_TOPIC_ID)])]
    finally:
        conn.close()


def _produce(conn: _Connection, topic: str, partition: int, count: int) -> None:
    batch = build_batch([Record(i, -1, None, b"v%d" % i) for i in range(count)])
    produced = conn.call(ApiKey.PRODUCE, 9, {"acks": -1, "timeout_ms": 5000, "transactional_id": None, "topic_data": [
        {"name": topic, "partition_data": [{"index": partition, "records": batch}]}]})
    assert produced["responses"][0]["partition_responses"][0]["error_code"] == 0


def test_a_session_opened_with_a_refused_partition_first_reads_the_others(broker: ThreadedBroker) -> None:
    topic, missing = f"order-{uuid.uuid4().hex[:8]}", f"missing-{uuid.uuid4().hex[:8]}"
    broker.create_topic(topic, 2)
    conn = _Connection(broker.bootstrap_servers)
    try:
        _produce(conn, topic, 1, 5)
        opened = _fetch(conn, 12, [{"topic": missing, "partitions": [_partition(0)]},
                                   {"topic": topic, "partitions": [_partition(0), _partition(1, offset=5)]}], epoch=0)
        session = opened["session_id"]
        assert session and _layout(opened) == [(topic, [(0, 0), (1, 0)]), (missing, [(0, _UNKNOWN)])]
        _produce(conn, topic, 1, 3)
        # The session reads partition 1 from offset 5, as the full request asked: the new batch.
        answer = _fetch(conn, 12, [], session, 1)
        assert _layout(answer) == [(topic, [(1, 0)]), (missing, [(0, _UNKNOWN)])]
        read = answer["responses"][0]["partitions"][0]
        assert read["high_watermark"] == 8 and int.from_bytes(bytes(read["records"][:8]), "big") == 5
    finally:
        conn.close()
