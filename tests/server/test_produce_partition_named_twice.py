"""KafkaApis.handleProduceRequest reads a request's partitions into maps keyed by topic and
partition: a partition named twice is answered once and appended once (its last copy whose
records pass validateRecords), a copy refused there answers for the partition though a valid
copy was appended, and a topic named with no partitions has no answer. Every expected answer,
and the records left in the log, are the reference Kafka 4.4's to the same requests."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from ottla.server.admin.client import Connection
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.records import iter_records, scan_batches
from ottla.wire.records.record import Record, build_batch


@pytest.fixture
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None) as running:
        running.create_topic("t", partitions=1)
        running.create_topic("u", partitions=1)
        yield running


def _connect(broker: ThreadedBroker) -> Connection:
    host, port = broker.bootstrap_servers.split(",")[0].rsplit(":", 1)
    return Connection(host, int(port), 30.0, "named-twice")


def _batch(value: bytes) -> bytes:
    return build_batch([Record(0, int(time.time() * 1000), b"k", value)])


def _produce(connection: Connection, copies: list[bytes]) -> list[tuple[str, int, int, int]]:
    answer = connection.request(ApiKey.PRODUCE, 9, {"transactional_id": None, "acks": -1, "timeout_ms": 5000, "topic_data": [
        {"name": "t", "partition_data": [{"index": 0, "records": copy} for copy in copies]}]})
    return [(t["name"], p["index"], p["error_code"], p["base_offset"]) for t in answer["responses"] for p in t["partition_responses"]]


def _values(connection: Connection) -> list[bytes]:
    answer = connection.request(ApiKey.FETCH, 4, {"replica_id": -1, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1 << 20, "isolation_level": 0,
                                                   "topics": [{"topic": "t", "partitions": [{"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20}]}]})
    data = bytes(answer["responses"][0]["partitions"][0]["records"] or b"")
    return [bytes(record.value) for _, batch in scan_batches(data) for record in iter_records(batch)]


def test_a_partition_named_twice_is_answered_once_and_appended_once(broker: ThreadedBroker) -> None:
    partial = _batch(b"refused")[:-3]
    connection = _connect(broker)
    try:
        assert _produce(connection, [_batch(b"one"), _batch(b"two")]) == [("t", 0, ErrorCode.NONE, 0)]
        assert _values(connection) == [b"two"]
        assert _produce(connection, [partial, _batch(b"three")]) == [("t", 0, ErrorCode.INVALID_RECORD, -1)]
        assert _produce(connection, [_batch(b"four"), partial]) == [("t", 0, ErrorCode.INVALID_RECORD, -1)]
        assert _values(connection) == [b"two", b"three", b"four"]
    finally:
        connection.close()


def test_a_topic_named_with_no_partitions_has_no_answer(broker: ThreadedBroker) -> None:
    connection = _connect(broker)
    try:
        answer = connection.request(ApiKey.PRODUCE, 9, {"transactional_id": None, "acks": -1, "timeout_ms": 5000, "topic_data": [
            {"name": "t", "partition_data": [{"index": 0, "records": _batch(b"five")}]},
            {"name": "t", "partition_data": []}, {"name": "u", "partition_data": []}]})
        assert [(t["name"], [p["index"] for p in t["partition_responses"]]) for t in answer["responses"]] == [("t", [0])]
    finally:
        connection.close()


def test_a_topic_named_twice_is_answered_in_one_entry(broker: ThreadedBroker) -> None:
    connection = _connect(broker)
    try:
        answer = connection.request(ApiKey.PRODUCE, 9, {"transactional_id": None, "acks": -1, "timeout_ms": 5000, "topic_data": [
            {"name": "u", "partition_data": [{"index": 0, "records": _batch(b"six")}]},
            {"name": "u", "partition_data": [{"index": 1, "records": _batch(b"seven")}]}]})
        assert [(t["name"], sorted(p["index"] for p in t["partition_responses"])) for t in answer["responses"]] == [("u", [0, 1])]
    finally:
        connection.close()
