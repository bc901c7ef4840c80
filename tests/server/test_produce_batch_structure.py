"""A client's batch whose records disagree with its header, over raw Produce requests to a
real broker, answered as Kafka 4.4 answers them (checked against the reference broker):

- more records than the header's count (its last offset delta and count agree with each other)
  is INVALID_RECORD wherever the records are read, as DefaultRecordBatch's iterators refuse it
  ("Incorrect declared batch size, records still remaining in file"): stored, it would hide
  records from every reader that trusts the count;
- records with offset deltas that skip a number, rebuilt in the topic's codec, are numbered
  one by one (LogValidator.buildRecordsAndAssignOffsets): no record shares an offset with the
  next batch.
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
from ottla.wire.records import Compression, Record, build_batch, compute_crc, iter_records, scan_batches

_LAST_OFFSET_DELTA_AT = 23
_RECORDS_COUNT_AT = 57


@pytest.fixture
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None) as handle:
        yield handle


def _produce(conn: _Connection, topic: str, records: bytes) -> dict[str, Any]:
    answer = conn.call(ApiKey.PRODUCE, 9, {
        "transactional_id": None, "acks": -1, "timeout_ms": 5000,
        "topic_data": [{"name": topic, "partition_data": [{"index": 0, "records": records}]}],
    })
    partition: dict[str, Any] = answer["responses"][0]["partition_responses"][0]
    return partition


def _fetched_offsets(conn: _Connection, topic: str) -> list[tuple[int, list[int]]]:
    """(base offset, the offsets of its records) of each batch the partition holds."""
    answer = conn.call(ApiKey.FETCH, 11, {
        "replica_id": -1, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1 << 20, "isolation_level": 0, "session_id": 0,
        "session_epoch": -1, "rack_id": "", "forgotten_topics_data": [],
        "topics": [{"topic": topic, "partitions": [{"partition": 0, "current_leader_epoch": -1, "fetch_offset": 0,
                                                     "last_fetched_epoch": -1, "log_start_offset": -1, "partition_max_bytes": 1 << 20}]}],
    })
    data = answer["responses"][0]["partitions"][0]["records"] or b""
    return [(header.base_offset, [record.offset for record in iter_records(batch)]) for header, batch in scan_batches(data)]


def _claiming_one_record(batch: bytes) -> bytes:
    """`batch` with a header that counts one record (last offset delta 0), CRC made good."""
    changed = bytearray(batch)
    struct.pack_into(">i", changed, _LAST_OFFSET_DELTA_AT, 0)
    struct.pack_into(">i", changed, _RECORDS_COUNT_AT, 1)
    struct.pack_into(">I", changed, 17, compute_crc(changed))
    return bytes(changed)


@pytest.mark.parametrize("compression", [Compression.NONE, Compression.GZIP], ids=["uncompressed", "gzip"])
@pytest.mark.parametrize("configs", [
    pytest.param({"cleanup_policy": "compact"}, id="compacted"),
    pytest.param({"message_timestamp_before_max_ms": "3600000"}, id="timestamp-bounded"),
    pytest.param({"compression_type": "lz4"}, id="recompressed"),
])
def test_records_past_the_declared_count_are_an_invalid_record(broker: ThreadedBroker, compression: Compression, configs: dict[str, str]) -> None:
    broker.create_topic("hiding", **configs)
    now = int(time.time() * 1000)
    two = build_batch([Record(0, now, b"a", b"1"), Record(1, now, b"b", b"2")], compression=compression)
    conn = _Connection(broker.bootstrap_servers)
    try:
        answer = _produce(conn, "hiding", _claiming_one_record(two))
        assert (answer["error_code"], answer["record_errors"]) == (ErrorCode.INVALID_RECORD, [])
        assert _produce(conn, "hiding", two)["base_offset"] == 0  # the log was left as it was
    finally:
        conn.close()


def test_a_rebuilt_batch_numbers_its_records_one_by_one(broker: ThreadedBroker) -> None:
    broker.create_topic("renumbered", compression_type="gzip")
    now = int(time.time() * 1000)
    skipping = build_batch([Record(0, now, b"a", b"1"), Record(2, now, b"b", b"2")], last_offset=1)  # deltas 0 and 2, two records
    conn = _Connection(broker.bootstrap_servers)
    try:
        assert _produce(conn, "renumbered", skipping)["base_offset"] == 0
        assert _produce(conn, "renumbered", build_batch([Record(0, now, b"c", b"3")]))["base_offset"] == 2
        assert _fetched_offsets(conn, "renumbered") == [(0, [0, 1]), (2, [2])]
    finally:
        conn.close()
