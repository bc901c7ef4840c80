"""ListOffsets with the max timestamp (-3, KIP-734) after DeleteRecords, answered as Kafka 4.4
answers it (checked against the reference broker): UnifiedLog.fetchOffsetByTimestamp looks over
every segment the log keeps, records below the log start included, so the answer can lie below
the log start offset. Segments wholly below it are gone (Kafka's retention check drops them,
this broker at once): their records no longer count."""

from __future__ import annotations

import pathlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from compat.differential import _Connection
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.records import Record, build_batch


@pytest.fixture(params=["memory", "files"])
def broker(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None if request.param == "memory" else tmp_path) as running:
        yield running


@pytest.fixture
def conn(broker: ThreadedBroker) -> Iterator[_Connection]:
    connection = _Connection(broker.bootstrap_servers)
    try:
        yield connection
    finally:
        connection.close()


def _topic(broker: ThreadedBroker, conn: _Connection, stamps: list[int], **configs: Any) -> str:
    """A one-partition topic holding one batch per timestamp."""
    name = f"maxts-{uuid.uuid4().hex[:8]}"
    broker.create_topic(name, 1, **configs)
    for stamp in stamps:
        answer = conn.call(ApiKey.PRODUCE, 9, {"acks": -1, "timeout_ms": 5000, "transactional_id": None, "topic_data": [
            {"name": name, "partition_data": [{"index": 0, "records": build_batch([Record(0, stamp, None, b"v")])}]}]})
        assert answer["responses"][0]["partition_responses"][0]["error_code"] == 0
    return name


def _delete_records(conn: _Connection, topic: str, offset: int) -> None:
    answer = conn.call(ApiKey.DELETE_RECORDS, 2, {"topics": [{"name": topic, "partitions": [{"partition_index": 0, "offset": offset}]}], "timeout_ms": 5000})
    assert answer["topics"][0]["partitions"][0]["low_watermark"] == offset


def _max_timestamp(conn: _Connection, topic: str) -> tuple[int, int, int, int]:
    answer = conn.call(ApiKey.LIST_OFFSETS, 9, {"replica_id": -1, "isolation_level": 0, "topics": [
        {"name": topic, "partitions": [{"partition_index": 0, "current_leader_epoch": -1, "timestamp": -3}]}]})
    found = answer["topics"][0]["partitions"][0]
    return found["error_code"], found["timestamp"], found["offset"], found["leader_epoch"]


@pytest.mark.parametrize("stamps, delete_to, expected", [
    ([1000, 3000, 2000], 2, (3000, 1)),
    ([1000, 3000, 2000], 3, (3000, 1)),
    ([3000, 1000, 3000], 1, (3000, 0)),
])
def test_the_max_timestamp_may_lie_below_the_log_start(broker: ThreadedBroker, conn: _Connection, stamps: list[int], delete_to: int,
                                                       expected: tuple[int, int]) -> None:
    topic = _topic(broker, conn, stamps)
    _delete_records(conn, topic, delete_to)
    assert _max_timestamp(conn, topic) == (0, *expected, 0)


def test_records_of_segments_wholly_below_the_log_start_no_longer_count(broker: ThreadedBroker, conn: _Connection) -> None:
    topic = _topic(broker, conn, [1000, 3000, 2000], segment_bytes=100)
    _delete_records(conn, topic, 2)
    assert _max_timestamp(conn, topic) == (0, 2000, 2, 0)
