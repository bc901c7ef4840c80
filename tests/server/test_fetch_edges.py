"""Fetch, ListOffsets and DeleteRecords edges, raw requests against a broker, answered as Kafka 4
answers them (KafkaApis, ReplicaManager, FetchSession, FetchResponse)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Producer

from compat.differential import _Connection
from ottla.server.fetch_sessions import FetchSessionCache
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.records import Record, build_batch


@pytest.fixture
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None) as running:
        yield running


@pytest.fixture
def conn(broker: ThreadedBroker) -> Iterator[_Connection]:
    connection = _Connection(broker.bootstrap_servers)
    try:
        yield connection
    finally:
        connection.close()


def _topic(broker: ThreadedBroker, partitions: int = 1) -> str:
    name = f"edge-{uuid.uuid4().hex[:8]}"
    broker.create_topic(name, partitions)
    return name


def _produce(conn: _Connection, topic: str, partition: int, count: int) -> None:
    batch = build_batch([Record(i, -1, None, b"v%d" % i) for i in range(count)])
    answer = conn.call(ApiKey.PRODUCE, 9, {"acks": -1, "timeout_ms": 5000, "transactional_id": None, "topic_data": [
        {"name": topic, "partition_data": [{"index": partition, "records": batch}]}]})
    assert answer["responses"][0]["partition_responses"][0]["error_code"] == 0


def _topic_id(conn: _Connection, topic: str) -> bytes:
    described = conn.call(ApiKey.METADATA, 12, {"topics": [{"name": topic, "topic_id": bytes(16)}], "allow_auto_topic_creation": False,
                                                "include_topic_authorized_operations": False})["topics"][0]
    assert described["error_code"] == 0
    return described["topic_id"]


def _part(index: int, offset: int = 0, epoch: int = -1) -> dict[str, Any]:
    return {"partition": index, "current_leader_epoch": epoch, "fetch_offset": offset, "last_fetched_epoch": -1,
            "log_start_offset": -1, "partition_max_bytes": 1 << 20}


def _fetch(conn: _Connection, version: int, topics: list[dict[str, Any]], session_id: int = 0, epoch: int = -1,
           isolation: int = 0) -> dict[str, Any]:
    return conn.call(ApiKey.FETCH, version, {
        "replica_id": -1, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1 << 20, "isolation_level": isolation,
        "session_id": session_id, "session_epoch": epoch, "rack_id": "", "topics": topics, "forgotten_topics_data": []})


def _errors(response: dict[str, Any]) -> list[int]:
    return [p["error_code"] for t in response["responses"] for p in t["partitions"]]


def _list_offsets(conn: _Connection, topic: str, wanted: list[tuple[int, int]], isolation: int = 0, replica_id: int = -1) -> list[tuple[int, int, int]]:
    answer = conn.call(ApiKey.LIST_OFFSETS, 9, {"replica_id": replica_id, "isolation_level": isolation, "topics": [
        {"name": topic, "partitions": [{"partition_index": p, "current_leader_epoch": -1, "timestamp": ts} for p, ts in wanted]}]})
    return [(p["partition_index"], p["error_code"], p["offset"]) for t in answer["topics"] for p in t["partitions"]]


def _delete_topic(conn: _Connection, topic: str) -> None:
    answer = conn.call(ApiKey.DELETE_TOPICS, 6, {"topics": [{"name": topic, "topic_id": bytes(16)}], "timeout_ms": 5000})
    assert answer["responses"][0]["error_code"] == 0


def test_a_topic_id_session_keeps_the_name_its_partitions_joined_with(broker: ThreadedBroker, conn: _Connection) -> None:
    """KafkaApis: the session's partition keeps its resolved name; the topic deleted is
    UNKNOWN_TOPIC_OR_PARTITION (metadataCache.contains), recreated under the same name
    INCONSISTENT_TOPIC_ID (readFromLog), not UNKNOWN_TOPIC_ID."""
    topic = _topic(broker)
    _produce(conn, topic, 0, 2)
    topic_id = _topic_id(conn, topic)
    opened = _fetch(conn, 13, [{"topic_id": topic_id, "partitions": [_part(0)]}], 0, 0)
    session = opened["session_id"]
    assert session and _errors(opened) == [0]
    _delete_topic(conn, topic)
    deleted = _fetch(conn, 13, [], session, 1, isolation=1)
    assert _errors(deleted) == [ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]
    # Refused before any read: an empty list, not null.
    assert deleted["responses"][0]["partitions"][0]["aborted_transactions"] == []
    broker.create_topic(topic, 1)
    recreated = _fetch(conn, 13, [], session, 2, isolation=1)
    assert recreated["responses"][0]["topic_id"] == topic_id
    assert _errors(recreated) == [ErrorCode.INCONSISTENT_TOPIC_ID]
    # A failed read: null.
    assert recreated["responses"][0]["partitions"][0]["aborted_transactions"] is None
    # A full fetch by the old id no longer names any topic.
    assert _errors(_fetch(conn, 13, [{"topic_id": topic_id, "partitions": [_part(0)]}])) == [ErrorCode.UNKNOWN_TOPIC_ID]


def test_an_all_zero_topic_id_is_an_unknown_topic_id(conn: _Connection) -> None:
    assert _errors(_fetch(conn, 13, [{"topic_id": bytes(16), "partitions": [_part(0)]}])) == [ErrorCode.UNKNOWN_TOPIC_ID]


def test_an_incremental_answer_gives_one_entry_to_adjacent_partitions_of_a_topic(broker: ThreadedBroker, conn: _Connection) -> None:
    """FetchResponse.toMessage groups consecutive partitions of a topic after the unchanged ones
    are left out, whatever blocks the session's read order made."""
    topic, other = _topic(broker, 2), _topic(broker)
    opened = _fetch(conn, 12, [{"topic": topic, "partitions": [_part(0), _part(1)]}, {"topic": other, "partitions": [_part(0)]}], 0, 0)
    session = opened["session_id"]
    _produce(conn, topic, 0, 1)
    # Partition 0 returned a record: the session now reads topic-1, other-0, topic-0.
    first = _fetch(conn, 12, [{"topic": topic, "partitions": [_part(0, 0)]}], session, 1)
    assert [(t["topic"], [p["partition_index"] for p in t["partitions"]]) for t in first["responses"]] == [(topic, [0])]
    _produce(conn, topic, 0, 1)
    _produce(conn, topic, 1, 1)
    second = _fetch(conn, 12, [{"topic": topic, "partitions": [_part(0, 1)]}], session, 2)
    assert [(t["topic"], [p["partition_index"] for p in t["partitions"]]) for t in second["responses"]] == [(topic, [1, 0])]


@pytest.mark.parametrize("epoch, error", [(-1, 0), (0, 0), (1, ErrorCode.UNKNOWN_LEADER_EPOCH)])
def test_a_single_node_fetch_checks_the_current_leader_epoch(broker: ThreadedBroker, conn: _Connection, epoch: int, error: int) -> None:
    topic = _topic(broker)
    _produce(conn, topic, 0, 1)
    answer = _fetch(conn, 12, [{"topic": topic, "partitions": [_part(0, 0, epoch)]}], isolation=1)
    assert _errors(answer) == [error]
    if error:
        assert answer["responses"][0]["partitions"][0]["aborted_transactions"] is None


def test_a_single_node_fetch_fences_an_older_leader_epoch(broker: ThreadedBroker, conn: _Connection) -> None:
    topic = _topic(broker)
    assert broker.broker is not None
    broker.broker.storage.partition(topic, 0).leader_epoch = 3
    assert _errors(_fetch(conn, 12, [{"topic": topic, "partitions": [_part(0, 0, 2)]}])) == [ErrorCode.FENCED_LEADER_EPOCH]
    assert _errors(_fetch(conn, 12, [{"topic": topic, "partitions": [_part(0, 0, 3)]}])) == [0]


def test_a_read_committed_fetch_that_fails_its_read_answers_null_aborted_transactions(broker: ThreadedBroker, conn: _Connection) -> None:
    """ReplicaManager.createLogReadResult: no FetchDataInfo aborted transactions, null in the
    answer; an unknown partition is refused before the read, with an empty list."""
    topic = _topic(broker)
    _produce(conn, topic, 0, 1)
    answer = _fetch(conn, 12, [{"topic": topic, "partitions": [_part(0, 5), _part(7)]}], isolation=1)
    partitions = answer["responses"][0]["partitions"]
    assert [(p["error_code"], p["aborted_transactions"]) for p in partitions] == [
        (ErrorCode.OFFSET_OUT_OF_RANGE, None), (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, [])]


def test_list_offsets_answers_a_duplicated_partition_once_invalid_request(broker: ThreadedBroker, conn: _Connection) -> None:
    """Kafka 4's ReplicaManager.fetchOffset files answers by partition: the copies collapse."""
    topic = _topic(broker, 2)
    _produce(conn, topic, 0, 3)
    assert _list_offsets(conn, topic, [(0, -1), (1, -1), (0, -2)]) == [(0, ErrorCode.INVALID_REQUEST, -1), (1, 0, 0)]


def _open_transaction(broker: ThreadedBroker, topic: str) -> Producer:
    """A transactional producer whose one record stays uncommitted: the LSO stays at 0."""
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "transactional.id": f"txn-{uuid.uuid4().hex[:6]}"})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic, b"open", partition=0)
    assert producer.flush(30) == 0
    return producer


def test_list_offsets_for_a_replica_ignores_the_isolation_level(broker: ThreadedBroker, conn: _Connection) -> None:
    """Partition.fetchOffsetForTimestamp: a non-client request reads to the log end."""
    topic = _topic(broker)
    producer = _open_transaction(broker, topic)
    try:
        assert _list_offsets(conn, topic, [(0, -1)], isolation=1) == [(0, 0, 0)]
        assert _list_offsets(conn, topic, [(0, -1)], isolation=1, replica_id=-2) == [(0, 0, 1)]
    finally:
        producer.abort_transaction(30)


def _transactional_producer(conn: _Connection, txn: str) -> None:
    deadline = time.monotonic() + 30
    while conn.call(ApiKey.INIT_PRODUCER_ID, 4, {"transactional_id": txn, "transaction_timeout_ms": 60000,
                                                 "producer_id": -1, "producer_epoch": -1})["error_code"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)


@pytest.mark.parametrize("internal", ["__consumer_offsets", "__transaction_state"])
def test_delete_records_refuses_an_internal_topic(conn: _Connection, internal: str) -> None:
    """KafkaApis calls ReplicaManager.deleteRecords with allowInternalTopicDeletion false."""
    # Create the internal topic the way a client does: by asking for its coordinator.
    _transactional_producer(conn, "refuse") if internal == "__transaction_state" else conn.call(
        ApiKey.FIND_COORDINATOR, 3, {"key": "refuse", "key_type": 0})
    answer = conn.call(ApiKey.DELETE_RECORDS, 2, {"topics": [{"name": internal, "partitions": [
        {"partition_index": 0, "offset": -1}, {"partition_index": 9999, "offset": -1}]}], "timeout_ms": 5000})
    assert [(p["error_code"], p["low_watermark"]) for p in answer["topics"][0]["partitions"]] == [
        (ErrorCode.INVALID_TOPIC, -1), (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1)]


def test_the_cache_holds_what_kafkas_eight_shards_hold() -> None:
    """BrokerServer gives each of 8 shards slots // 8 sessions: 1 to 7 slots hold none."""
    assert FetchSessionCache.for_slots(7).max_entries == 0
    assert FetchSessionCache.for_slots(1000).max_entries == 1000
    assert FetchSessionCache.for_slots(20).max_entries == 16


def test_a_broker_with_fewer_slots_than_shards_opens_no_session() -> None:
    with running_broker(data_dir=None, max_incremental_fetch_session_cache_slots=4) as broker:
        topic = _topic(broker)
        conn = _Connection(broker.bootstrap_servers)
        try:
            assert [_fetch(conn, 12, [{"topic": topic, "partitions": [_part(0)]}], 0, 0)["session_id"] for _ in range(3)] == [0, 0, 0]
        finally:
            conn.close()
