"""Which refusal a Produce with several faults gets, in Kafka 4.4's order (checked against
the reference broker): KafkaApis.handleProduceRequest refuses an unknown partition, then
records ProduceRequest.validateRecords rejects; only then does ReplicaManager.appendRecords
judge acks, and appendToLocalLog an internal topic."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from compat.differential import _Connection
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.records import Compression, Record, build_batch

_BATCH = build_batch([Record(0, 1000, b"k", b"v")])


@pytest.fixture
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None) as handle:
        handle.create_topic("plain")
        _look_up_a_group(handle)
        yield handle


def _look_up_a_group(broker: ThreadedBroker) -> None:
    """`__consumer_offsets` exists once a group is first looked up, as on Kafka."""
    conn = _Connection(broker.bootstrap_servers)
    try:
        assert conn.call(ApiKey.FIND_COORDINATOR, 3, {"key": "g", "key_type": 0})["error_code"] == ErrorCode.NONE
    finally:
        conn.close()


def _error(broker: ThreadedBroker, topic: str, records: bytes, acks: int, version: int = 9) -> int:
    conn = _Connection(broker.bootstrap_servers)
    try:
        answer = conn.call(ApiKey.PRODUCE, version, {
            "transactional_id": None, "acks": acks, "timeout_ms": 5000,
            "topic_data": [{"name": topic, "partition_data": [{"index": 0, "records": records}]}],
        })
    finally:
        conn.close()
    return int(answer["responses"][0]["partition_responses"][0]["error_code"])


@pytest.mark.parametrize(("topic", "records", "version", "expected"), [
    pytest.param("no-such-topic", _BATCH, 9, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, id="unknown-topic"),
    pytest.param("plain", b"", 9, ErrorCode.INVALID_RECORD, id="no-batch"),
    pytest.param("plain", _BATCH + _BATCH, 9, ErrorCode.INVALID_RECORD, id="two-batches"),
    pytest.param("plain", build_batch([Record(0, 1000, b"k", b"v")], compression=Compression.ZSTD), 6, ErrorCode.UNSUPPORTED_COMPRESSION_TYPE,
                 id="zstd-before-v7"),
    pytest.param("__consumer_offsets", _BATCH, 9, ErrorCode.INVALID_REQUIRED_ACKS, id="internal-topic"),
])
def test_invalid_acks_is_judged_after_the_partition_and_its_records(broker: ThreadedBroker, topic: str, records: bytes, version: int, expected: ErrorCode) -> None:
    assert _error(broker, topic, records, acks=2, version=version) == expected
    if expected is ErrorCode.INVALID_REQUIRED_ACKS:
        assert _error(broker, topic, records, acks=1, version=version) == ErrorCode.INVALID_TOPIC


def test_a_sound_request_with_invalid_acks_is_refused_and_not_appended(broker: ThreadedBroker) -> None:
    assert _error(broker, "plain", _BATCH, acks=2) == ErrorCode.INVALID_REQUIRED_ACKS
    conn = _Connection(broker.bootstrap_servers)
    try:
        answer = conn.call(ApiKey.PRODUCE, 9, {
            "transactional_id": None, "acks": 1, "timeout_ms": 5000,
            "topic_data": [{"name": "plain", "partition_data": [{"index": 0, "records": _BATCH}]}],
        })
    finally:
        conn.close()
    assert answer["responses"][0]["partition_responses"][0]["base_offset"] == 0
