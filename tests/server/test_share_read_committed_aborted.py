"""What a read_committed share group acquires around an aborted transaction.

Kafka 4.4's SharePartition.acquire (kafka_2.13-4.4.0.jar: maybeFilterAbortedTransactionalAcquiredRecords,
filterAbortedTransactionalAcquiredRecords) acquires the aborted transaction's records as any
others, then archives them and leaves them out of the answer: they count toward the fetch's max
records and the in-flight window (share.partition.max.record.locks). The expected answers are
the reference Kafka 4.4's to the same raw ShareFetch v2 requests (asked of it with `compat.kafka`),
except where a test says Ottla departs from it.

Each transaction's records are one log batch: in `[(2, True), (3, False), (2, True)]` the log
holds 0-1 committed data, 2 its commit marker, 3-5 aborted data, 6 its abort marker, 7-8 data, 9
a commit marker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from ottla.server.coordinator import Timers
from ottla.server.share.partition import AcquiredRange, RecordState, SharePartition, SharePartitionLimits
from ottla.testing import ThreadedBroker, running_broker
from share_member import RECORD_LIMIT, ShareFetcher

ACCEPT = 1
READ_COMMITTED = {"share.isolation.level": "read_committed"}
LOCKS = {**READ_COMMITTED, "share.partition.max.record.locks": "100"}


@pytest.fixture(scope="module")
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None) as running:
        yield running


def test_aborted_records_count_toward_max_records(broker: ThreadedBroker) -> None:
    """MaxRecords 5, whole batches: 0-1, 2 and the aborted 3-5 make 6 records, so the fetch
    stops there and answers 0-2 (Ottla answered 0-2 and 6-8 when it left them out first);
    the next fetch starts past them, at the abort marker."""
    fetcher = ShareFetcher(broker, "aborted-max-records", version=2, group_configs=READ_COMMITTED)
    fetcher.transactions([(2, True), (3, False), (2, True)], end=10)
    assert fetcher.fetch(max_records=5)[::2] == ([(0, 2, 1)], [0, 2])
    assert fetcher.fetch()[::2] == ([(6, 9, 1)], [6, 7, 9])
    fetcher.member.close()


def test_record_limit_archives_the_aborted_tail_when_acquired(broker: ThreadedBroker) -> None:
    """RECORD_LIMIT, MaxRecords 4: 0-3 acquired, 3 archived, 4-5 (the aborted batch's tail) held
    back AVAILABLE; the next fetch acquires 4-5 with 6-7, so 4 records, and archives 4-5, then
    8 (the tail of 6-8) and 9 come as two ranges, as Kafka 4.4 answered."""
    fetcher = ShareFetcher(broker, "aborted-record-limit", version=2, group_configs=READ_COMMITTED)
    fetcher.transactions([(2, True), (3, False), (2, True)], end=10)
    assert fetcher.fetch(max_records=4, acquire_mode=RECORD_LIMIT).ranges == [(0, 2, 1)]
    assert fetcher.fetch(max_records=4, acquire_mode=RECORD_LIMIT).ranges == [(6, 7, 1)]
    assert fetcher.fetch(max_records=10, acquire_mode=RECORD_LIMIT, acknowledgements=[(0, 2, ACCEPT)])[:2] == (
        [(8, 8, 1), (9, 9, 1)], 0)
    fetcher.member.close()


def test_aborted_records_fill_the_in_flight_window(broker: ThreadedBroker) -> None:
    """A limit of 100: 0-59 and 60 acquired with the aborted 61-120, which fill the window; the
    next fetch takes nothing, and once 0-60 are acknowledged the start offset moves past the
    archived records and 121-132 are acquired (Kafka 4.4 answered the same)."""
    fetcher = ShareFetcher(broker, "aborted-window", version=2, group_configs=LOCKS)
    fetcher.transactions([(60, True), (60, False), (10, True)], end=133)
    assert fetcher.fetch()[::2] == ([(0, 60, 1)], [0, 60])
    assert fetcher.fetch(max_wait_ms=0).ranges == []
    assert fetcher.fetch(acknowledgements=[(0, 60, ACCEPT)])[:2] == ([(121, 132, 1)], 0)
    assert fetcher.described() == (121, 12)
    fetcher.member.close()


def test_a_fetch_of_only_aborted_records_answers_empty_at_once(broker: ThreadedBroker) -> None:
    """MaxRecords 2 takes the aborted 0-2 whole and nothing else: the fetch answers, empty,
    without waiting its max wait for records that are there already (as Kafka 4.4 did, at
    once); the next fetch gets 3-5."""
    fetcher = ShareFetcher(broker, "aborted-only", version=2, group_configs=READ_COMMITTED)
    fetcher.transactions([(3, False), (1, True)], end=6)
    assert fetcher.fetch(max_records=2, max_wait_ms=2000).ranges == []
    assert fetcher.fetch(max_records=2).ranges == [(3, 4, 1)]
    fetcher.member.close()


def test_aborted_records_filling_the_window_do_not_stall_it(broker: ThreadedBroker) -> None:
    """Ottla departs from Kafka 4.4 here: the aborted 0-99 fill a window of 100 and are archived;
    Kafka keeps its start offset at 0 until an acknowledgement moves it, which nothing in
    flight can send, so its next fetches acquire nothing, even past the lock duration (seen on
    the reference broker). Ottla moves the start offset past them at once."""
    fetcher = ShareFetcher(broker, "aborted-stall", version=2, group_configs=LOCKS)
    fetcher.transactions([(100, False), (10, True)], end=112)
    assert fetcher.fetch(max_wait_ms=0).ranges == []
    assert fetcher.described() == (100, 12)
    assert fetcher.fetch().ranges == [(100, 111, 1)]
    fetcher.member.close()


def test_aborted_records_without_sockets() -> None:
    """The rule on one share-partition (an event loop that never runs is the clock)."""
    loop = asyncio.new_event_loop()
    try:
        partition = SharePartition(0, Timers(loop), SharePartitionLimits())
        batches = [(0, 1), (2, 2), (3, 5), (6, 6), (7, 8), (9, 9)]
        assert partition.acquire("a", batches, 5, aborted=[(3, 5)]) == [AcquiredRange(0, 2, 1)]
        assert [partition.records[offset].state for offset in range(3, 6)] == [RecordState.ARCHIVED] * 3
        assert (partition.start_offset, partition.end_offset, partition.take_archived()) == (0, 6, [])
        assert partition.acquire("a", batches[3:], 500) == [AcquiredRange(6, 9, 1)]
        # Only aborted records: nothing acquired, nothing locked, the start offset past them.
        aborted_only = SharePartition(0, Timers(loop), SharePartitionLimits())
        assert aborted_only.acquire("a", [(0, 2), (3, 3)], 2, aborted=[(0, 2)]) == []
        assert (aborted_only.start_offset, aborted_only.end_offset) == (3, 3)
    finally:
        loop.close()
