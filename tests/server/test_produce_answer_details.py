"""The small details of Produce answers, as Kafka 4.4 gives them (checked against the reference
broker with the same raw requests):

- a partition's error_message is null for every refusal but the log's record errors
  (LogAppendResult.errorMessage is set only for a RecordValidationException, and for the
  transaction verification's answers); a refused request of the handler (unknown topic,
  ProduceRequest.validateRecords, acks) is its code alone;
- bytes after a partition's batch that hold no whole batch are dropped
  (UnifiedLog.trimInvalidBytes): the batch alone is stored and acknowledged, while a batch
  size no batch can have after it is CORRUPT_MESSAGE and nothing is stored.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from typing import Any

import pytest

from compat.differential import _Connection
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.records import Record, build_batch, iter_records, scan_batches

_BATCH = build_batch([Record(0, 1000, b"k", b"v")])


@pytest.fixture
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None) as handle:
        # `__consumer_offsets` exists once a group is first looked up, as on Kafka.
        conn = _Connection(handle.bootstrap_servers)
        try:
            assert conn.call(ApiKey.FIND_COORDINATOR, 3, {"key": "g", "key_type": 0})["error_code"] == ErrorCode.NONE
        finally:
            conn.close()
        yield handle


def _produce(broker: ThreadedBroker, topic: str, records: bytes, acks: int = -1) -> dict[str, Any]:
    conn = _Connection(broker.bootstrap_servers)
    try:
        answer = conn.call(ApiKey.PRODUCE, 9, {
            "transactional_id": None, "acks": acks, "timeout_ms": 5000,
            "topic_data": [{"name": topic, "partition_data": [{"index": 0, "records": records}]}],
        })
    finally:
        conn.close()
    partition: dict[str, Any] = answer["responses"][0]["partition_responses"][0]
    return partition


def _stored(broker: ThreadedBroker, topic: str) -> tuple[int, list[list[tuple[int, bytes | None]]]]:
    """The high watermark and, batch by batch, the (offset, value) of each record stored."""
    conn = _Connection(broker.bootstrap_servers)
    try:
        answer = conn.call(ApiKey.FETCH, 11, {
            "replica_id": -1, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1 << 20, "isolation_level": 0, "session_id": 0,
            "session_epoch": -1, "rack_id": "", "forgotten_topics_data": [],
            "topics": [{"topic": topic, "partitions": [{"partition": 0, "current_leader_epoch": -1, "fetch_offset": 0,
                                                         "last_fetched_epoch": -1, "log_start_offset": -1, "partition_max_bytes": 1 << 20}]}],
        })
    finally:
        conn.close()
    partition = answer["responses"][0]["partitions"][0]
    data = partition["records"] or b""
    return partition["high_watermark"], [[(record.offset, record.value) for record in iter_records(batch)] for _, batch in scan_batches(data)]


def _with_size(batch: bytes, size: int) -> bytes:
    changed = bytearray(batch)
    struct.pack_into(">i", changed, 8, size)
    return bytes(changed)


@pytest.mark.parametrize(("topic", "records", "acks", "expected"), [
    pytest.param("no-such-topic", _BATCH, -1, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, id="unknown-topic"),
    pytest.param("plain", _BATCH, 2, ErrorCode.INVALID_REQUIRED_ACKS, id="invalid-acks"),
    pytest.param("plain", _BATCH[:-3], -1, ErrorCode.INVALID_RECORD, id="only-a-partial-batch"),
    pytest.param("plain", _BATCH + _BATCH, -1, ErrorCode.INVALID_RECORD, id="two-batches"),
    pytest.param("small", build_batch([Record(0, 1000, b"k", b"v" * 200)]), -1, ErrorCode.MESSAGE_SIZE_TOO_LARGE, id="too-large"),
    pytest.param("__consumer_offsets", _BATCH, -1, ErrorCode.INVALID_TOPIC, id="internal-topic"),
])
def test_a_refusal_other_than_record_errors_has_no_message(broker: ThreadedBroker, topic: str, records: bytes, acks: int, expected: ErrorCode) -> None:
    broker.create_topic("plain")
    broker.create_topic("small", max_message_bytes="100")
    answer = _produce(broker, topic, records, acks)
    assert (answer["error_code"], answer["error_message"]) == (expected, None)


def test_record_errors_are_worded_as_kafka_words_them(broker: ThreadedBroker) -> None:
    broker.create_topic("keyed", cleanup_policy="compact")
    now = int(time.time() * 1000)
    answer = _produce(broker, "keyed", build_batch([Record(0, now, None, b"v"), Record(1, now, b"k", b"v"), Record(2, now, None, b"v")]))
    why = "Compacted topic cannot accept message without key in topic partition keyed-0"
    assert answer["error_code"] == ErrorCode.INVALID_RECORD
    assert answer["error_message"] == (
        "One or more records have been rejected due to 2 record errors in total, and only showing the first three errors at most: "
        f"[RecordError(batchIndex=0, message='{why}'), RecordError(batchIndex=2, message='{why}')]"
    )
    assert answer["record_errors"] == [{"batch_index": 0, "batch_index_error_message": why}, {"batch_index": 2, "batch_index_error_message": why}]


@pytest.mark.parametrize("stray", [
    pytest.param(b"\x01\x02\x03\x04\x05", id="a-few-bytes"),
    pytest.param(_BATCH[:20], id="a-partial-header"),
    pytest.param(_BATCH[:-2], id="a-partial-batch"),
    pytest.param(_with_size(_BATCH, 1 << 30)[:20], id="a-size-past-the-request"),
])
def test_bytes_after_the_batch_that_hold_no_batch_are_dropped(broker: ThreadedBroker, stray: bytes) -> None:
    broker.create_topic("trimmed")
    answer = _produce(broker, "trimmed", _BATCH + stray)
    assert (answer["error_code"], answer["error_message"], answer["base_offset"]) == (ErrorCode.NONE, None, 0)
    assert _produce(broker, "trimmed", _BATCH)["base_offset"] == 1
    assert _stored(broker, "trimmed") == (2, [[(0, b"v")], [(1, b"v")]])


def test_an_impossible_size_after_the_batch_is_corrupt_and_nothing_is_stored(broker: ThreadedBroker) -> None:
    broker.create_topic("refused")
    answer = _produce(broker, "refused", _BATCH + _with_size(_BATCH, 5))
    assert (answer["error_code"], answer["error_message"], answer["base_offset"], answer["log_start_offset"]) == (ErrorCode.CORRUPT_MESSAGE, None, -1, -1)
    assert _stored(broker, "refused") == (0, [])


def test_an_isr_below_min_insync_replicas_has_no_message() -> None:
    """Partition.appendRecordsToLeader's NotEnoughReplicasException is not one Kafka words."""
    with running_broker(nodes=3, data_dir=None) as cluster:
        cluster.create_topic("durable", partitions=1, replication_factor=3, min_insync_replicas=2)
        first, second, third = cluster.partition_state("durable", 0)["replicas"]
        cluster.stop_node(first)
        cluster.stop_node(second)
        assert cluster.partition_state("durable", 0)["isr"] == [third]
        leader = dict(zip((1, 2, 3), cluster.bootstrap_servers.split(",")))[third]
        conn = _Connection(leader)
        try:
            answer = conn.call(ApiKey.PRODUCE, 9, {
                "transactional_id": None, "acks": -1, "timeout_ms": 5000,
                "topic_data": [{"name": "durable", "partition_data": [{"index": 0, "records": _BATCH}]}],
            })
        finally:
            conn.close()
    partition = answer["responses"][0]["partition_responses"][0]
    assert (partition["error_code"], partition["error_message"]) == (ErrorCode.NOT_ENOUGH_REPLICAS, None)
