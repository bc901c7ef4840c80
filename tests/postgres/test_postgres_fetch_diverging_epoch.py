"""Fetch's last_fetched_epoch over one PostgreSQL (KIP-320/KIP-595): checked, as Kafka 4.4's
Partition.readRecords checks it, against the database's epoch history
(DatabasePartition.end_offset_for_epoch), looked up with the read. Broker 1 writes offsets 0..4
in epoch 0, stops, and broker 2 takes the partition over in epoch 1 and writes 5..7."""

from __future__ import annotations

import time
from typing import Any

import pytest

from compat.harness import OttlaBroker
from ottla.server.admin.client import Connection
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.records import Record, build_batch

pytestmark = pytest.mark.external

_LEASE = {"broker.session.timeout.ms": "3000", "broker.heartbeat.interval.ms": "500"}


def _connect(bootstrap: str) -> Connection:
    host, port = bootstrap.rsplit(":", 1)
    return Connection(host, int(port), 30.0, "pg-diverging-test")


def _produce(connection: Connection, topic: str, count: int) -> None:
    for i in range(count):
        batch = build_batch([Record(0, 1_700_000_000_000, None, b"v%d" % i, ())])
        answer = connection.request(ApiKey.PRODUCE, 9, {"acks": -1, "timeout_ms": 10_000, "transactional_id": None, "topic_data": [
            {"name": topic, "partition_data": [{"index": 0, "records": batch}]}]})
        assert answer["responses"][0]["partition_responses"][0]["error_code"] == ErrorCode.NONE


def _leader_epoch(connection: Connection, topic: str) -> int:
    """The partition's leader epoch once this broker leads it (-1 before)."""
    found = connection.request(ApiKey.METADATA, 12, {"topics": [{"name": topic, "topic_id": bytes(16)}], "allow_auto_topic_creation": False,
                                                     "include_topic_authorized_operations": False})["topics"][0]
    partitions = found["partitions"]
    return partitions[0]["leader_epoch"] if partitions and not partitions[0]["error_code"] else -1


def _until_leading(connection: Connection, topic: str) -> int:
    """The partition's leader epoch once this broker has claimed it."""
    deadline = time.monotonic() + 60
    while (epoch := _leader_epoch(connection, topic)) < 0:
        assert time.monotonic() < deadline, "the broker never took the partition over"
        time.sleep(0.1)
    return epoch


def _fetch(connection: Connection, topic: str, offset: int, last_fetched_epoch: int) -> tuple[Any, ...]:
    answer = connection.request(ApiKey.FETCH, 12, {
        "replica_id": -1, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1 << 20, "isolation_level": 0, "session_id": 0,
        "session_epoch": -1, "rack_id": "", "forgotten_topics_data": [], "topics": [{"topic": topic, "partitions": [
            {"partition": 0, "current_leader_epoch": -1, "fetch_offset": offset, "last_fetched_epoch": last_fetched_epoch,
             "log_start_offset": -1, "partition_max_bytes": 1 << 20}]}]})
    partition = answer["responses"][0]["partitions"][0]
    return (partition["error_code"], partition["high_watermark"], partition["log_start_offset"], bool(partition["records"]),
            partition.get("diverging_epoch") or None)


def test_a_fetch_over_the_database_checks_the_last_fetched_epoch(postgres_url: str) -> None:
    with OttlaBroker(storage=postgres_url, node_id=1, settings=_LEASE, ready_timeout=60, stop_timeout=30) as first:
        connection = _connect(first.bootstrap)
        answer = connection.request(ApiKey.CREATE_TOPICS, 7, {"topics": [{"name": "diverging", "num_partitions": 1, "replication_factor": -1,
                                                                          "assignments": [], "configs": []}], "timeout_ms": 30_000, "validate_only": False})
        assert answer["topics"][0]["error_code"] == ErrorCode.NONE
        _produce(connection, "diverging", 5)
        connection.close()
    with OttlaBroker(storage=postgres_url, node_id=2, settings=_LEASE, ready_timeout=60, stop_timeout=30) as second:
        connection = _connect(second.bootstrap)
        assert _until_leading(connection, "diverging") == 1
        _produce(connection, "diverging", 3)
        records = (ErrorCode.NONE, 8, 0, True, None)
        out_of_range = (ErrorCode.OFFSET_OUT_OF_RANGE, -1, -1, False, None)

        def diverged(epoch: int, end_offset: int) -> tuple[Any, ...]:
            return (ErrorCode.NONE, 8, 0, False, {"epoch": epoch, "end_offset": end_offset})

        offsets = (0, 4, 5, 6, 9)
        assert [_fetch(connection, "diverging", offset, -1) for offset in offsets] == [records] * 4 + [out_of_range]
        assert [_fetch(connection, "diverging", offset, 0) for offset in offsets] == [records] * 3 + [diverged(0, 5)] * 2
        assert [_fetch(connection, "diverging", offset, 1) for offset in offsets] == [records] * 4 + [diverged(1, 8)]
        assert [_fetch(connection, "diverging", offset, 2) for offset in offsets] == [out_of_range] * 5
        connection.close()
