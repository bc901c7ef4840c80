"""What a ShareFetch acquires near the share-partition's record lock limit, and which log
batches it sends around an aborted transaction under read_committed.

The expected answers are the reference Kafka 4.4's to the same requests (asked of it with
`compat.kafka`: this file's socket tests, run unchanged against it, pass: raw ShareFetch v2 and
ShareAcknowledge v1, records produced by kafka-python, share.partition.max.record.locks set to
100 on the group), and what its jar does
(kafka_2.13-4.4.0.jar, decompiled): SharePartition.lastOffsetAndMaxRecordsToAcquire lowers a
fetch's max records to the room left under the limit, and acquireNewBatchRecords then acquires
to the end of the log batch that limit fell in (RECORD_LIMIT: holds that batch's tail back,
AVAILABLE), so the window may end past the limit; a full window hands out only AVAILABLE
in-flight records. ShareFetchUtils.maybeSliceFetchRecords sends every batch read from the one
holding the first acquired offset to the last starting by the last acquired offset: an aborted
transaction's data between them too (acquired and archived, so not among the acquired ranges:
tests/server/test_share_read_committed_aborted.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from kafka import KafkaProducer  # type: ignore[import-untyped]

from ottla.server.coordinator import Timers
from ottla.server.share.partition import AcquiredRange, RecordState, SharePartition, SharePartitionLimits
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.records import scan_batches
from share_member import ShareMember, produce_transactions

ACCEPT, RELEASE = 1, 2
BATCH_OPTIMIZED, RECORD_LIMIT = 0, 1


@pytest.fixture(scope="module")
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None) as running:
        yield running


class _Member:
    """One member of a fresh share group (its configs set first) on a fresh one-partition
    topic, assigned it, its share-partition started at the end of the log."""

    def __init__(self, broker: ThreadedBroker, name: str, configs: dict[str, str]) -> None:
        self.topic, self.group = f"lock-limit-{name}", f"lock-limit-{name}-group"
        self.bootstrap = broker.bootstrap_servers
        broker.create_topic(self.topic, partitions=1)
        self.member = ShareMember(broker)
        altered = self.member.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {"resources": [{
            "resource_type": 32, "resource_name": self.group,
            "configs": [{"name": key, "config_operation": 0, "value": value} for key, value in configs.items()]}],
            "validate_only": False})
        assert altered["responses"][0]["error_code"] == 0
        self.topic_id = bytes(self.member.join_until_assigned(self.group, [self.topic])[0]["topic_id"])
        self.fetch(0, max_wait_ms=0)

    def produce_batch(self, count: int) -> None:
        """`count` records in one log batch: sent together, flushed before the linger ends."""
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=60000, batch_size=1 << 20)
        for value in range(count):
            producer.send(self.topic, b"v%d" % value, partition=0)
        producer.flush()
        producer.close()

    def fetch(self, epoch: int, mode: int = BATCH_OPTIMIZED, max_wait_ms: int = 5000,
              acknowledgements: list[tuple[int, int, int]] = ()) -> tuple[list[tuple[int, int, int]], int, list[tuple[int, int]], int]:
        """(acquired ranges as (first, last, delivery count), acknowledge error, (first, last)
        offsets of the batches sent, their size in bytes) of the one partition."""
        response = self.member.call(ApiKey.SHARE_FETCH, 2, {
            "group_id": self.group, "member_id": self.member.member_id, "share_session_epoch": epoch, "max_wait_ms": max_wait_ms,
            "min_bytes": 1, "max_bytes": 1 << 20, "max_records": 500, "batch_size": 500, "share_acquire_mode": mode,
            "is_renew_ack": False,
            "topics": [{"topic_id": self.topic_id, "partitions": [{"partition_index": 0, "acknowledgement_batches": [
                {"first_offset": first, "last_offset": last, "acknowledge_types": [kind]} for first, last, kind in acknowledgements]}]}],
            "forgotten_topics_data": []})
        assert response["error_code"] == 0
        partitions: list[Any] = [p for topic in response["responses"] for p in topic["partitions"]]
        if not partitions:
            return [], 0, [], 0
        (partition,) = partitions
        assert partition["error_code"] == 0
        records = bytes(partition["records"] or b"")
        return ([(r["first_offset"], r["last_offset"], r["delivery_count"]) for r in partition["acquired_records"]],
                partition["acknowledge_error_code"],
                [(header.base_offset, header.base_offset + header.last_offset_delta) for header, _ in scan_batches(records)], len(records))

    def acknowledge(self, epoch: int, acknowledgements: list[tuple[int, int, int]]) -> None:
        response = self.member.call(ApiKey.SHARE_ACKNOWLEDGE, 1, {
            "group_id": self.group, "member_id": self.member.member_id, "share_session_epoch": epoch,
            "topics": [{"topic_id": self.topic_id, "partitions": [{"partition_index": 0, "acknowledgement_batches": [
                {"first_offset": first, "last_offset": last, "acknowledge_types": [kind]} for first, last, kind in acknowledgements]}]}]})
        assert response["error_code"] == 0
        assert [p["error_code"] for topic in response["responses"] for p in topic["partitions"]] == [0]

    def transactions(self, runs: list[tuple[int, bool]], end: int) -> None:
        produce_transactions(self.bootstrap, self.topic, runs, end)


LOCKS = {"share.partition.max.record.locks": "100"}


def test_lock_limit_extends_to_the_end_of_the_log_batch(broker: ThreadedBroker) -> None:
    """Two log batches of 60 under a limit of 100: the second is acquired whole (0-119, as on
    Kafka 4.4); the full window takes nothing more until records are acknowledged, and then
    again to the end of the log batch the room ends in (120-179 with room for 40)."""
    member = _Member(broker, "batch-end", LOCKS)
    member.produce_batch(60)  # 0-59
    member.produce_batch(60)  # 60-119
    assert member.fetch(1)[:3] == ([(0, 119, 1)], 0, [(0, 59), (60, 119)])
    member.produce_batch(60)  # 120-179
    assert member.fetch(2, max_wait_ms=0)[:3] == ([], 0, [])
    assert member.fetch(3, acknowledgements=[(0, 59, ACCEPT)])[:3] == ([(120, 179, 1)], 0, [(120, 179)])
    member.member.close()


def test_lock_limit_room_caps_available_in_flight_records(broker: ThreadedBroker) -> None:
    """The room left under the limit caps the records acquired again too: with 60 in flight
    (two in-flight batches of 30, released) and 40 of room, a fetch takes the two batches and
    no new record (Kafka 4.4 answered the same); the next takes the new log batch whole."""
    member = _Member(broker, "room", LOCKS)
    member.produce_batch(30)  # 0-29
    assert member.fetch(1)[0] == [(0, 29, 1)]
    member.produce_batch(30)  # 30-59
    assert member.fetch(2)[0] == [(30, 59, 1)]
    member.produce_batch(60)  # 60-119
    member.acknowledge(3, [(0, 59, RELEASE)])
    assert member.fetch(4)[:3] == ([(0, 29, 2), (30, 59, 2)], 0, [(0, 29), (30, 59)])
    assert member.fetch(5)[:3] == ([(60, 119, 1)], 0, [(60, 119)])
    member.member.close()


def test_record_limit_at_the_lock_limit_holds_the_batch_tail_back(broker: ThreadedBroker) -> None:
    """RECORD_LIMIT in a log batch of 150 under a limit of 100: 0-99 acquired, 100-149 in flight
    AVAILABLE, acquired by the next fetch though the window is full (as on Kafka 4.4)."""
    member = _Member(broker, "record-limit", LOCKS)
    member.produce_batch(150)  # 0-149
    assert member.fetch(1, RECORD_LIMIT)[:3] == ([(0, 99, 1)], 0, [(0, 149)])
    assert member.fetch(2, RECORD_LIMIT)[:3] == ([(100, 149, 1)], 0, [(0, 149)])
    member.member.close()


def test_read_committed_sends_aborted_data_between_acquired_offsets(broker: ThreadedBroker) -> None:
    """0-1 committed data, 2 commit, 3-4 aborted data, 5 abort, 6 data, 7 commit: the aborted
    batch is not acquired but is sent, between the others (462 bytes, as Kafka 4.4 sent)."""
    member = _Member(broker, "aborted-between", {"share.isolation.level": "read_committed"})
    member.transactions([(2, True), (2, False), (1, True)], end=8)
    assert member.fetch(1) == ([(0, 2, 1), (5, 7, 1)], 0, [(0, 1), (2, 2), (3, 4), (5, 5), (6, 6), (7, 7)], 462)
    member.member.close()


def test_read_committed_leaves_out_aborted_data_before_the_first_acquired_offset(broker: ThreadedBroker) -> None:
    """0-1 aborted data, 2 abort, 3 data, 4 commit: the batches sent start at the first acquired
    offset's (the abort marker), as Kafka 4.4 sent them."""
    member = _Member(broker, "aborted-first", {"share.isolation.level": "read_committed"})
    member.transactions([(2, False), (1, True)], end=5)
    assert member.fetch(1)[:3] == ([(2, 4, 1)], 0, [(2, 2), (3, 3), (4, 4)])
    member.member.close()


def test_lock_limit_without_sockets() -> None:
    """The rule on one share-partition (an event loop that never runs is the clock)."""
    loop = asyncio.new_event_loop()
    try:
        partition = SharePartition(0, Timers(loop), SharePartitionLimits(max_record_locks=100))
        # Whole log batches: the room (100) falls in 60-119, which is acquired whole.
        assert partition.acquire("a", [(0, 59), (60, 119)], 500) == [AcquiredRange(0, 119, 1)]
        assert partition.acquire("a", [(120, 179)], 500) == []
        # RECORD_LIMIT: the room (100) ends inside 0-149; its tail waits in flight, AVAILABLE.
        limited = SharePartition(0, Timers(loop), SharePartitionLimits(max_record_locks=100))
        assert limited.acquire("a", [(0, 149)], 500, whole_batches=False) == [AcquiredRange(0, 99, 1)]
        assert (limited.end_offset, limited.records[149].state, limited.records[149].delivery_count) == (150, RecordState.AVAILABLE, 0)
        assert limited.acquire("a", [(100, 149)], 500, whole_batches=False) == [AcquiredRange(100, 149, 1)]
    finally:
        loop.close()
