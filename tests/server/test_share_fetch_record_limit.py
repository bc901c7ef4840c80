"""ShareFetch v2's RECORD_LIMIT acquire mode (KIP-1206) stopping inside a log batch.

The expected answers are the reference Kafka 4.4's to the same requests (asked of it with
`compat.kafka`: two log batches of ten records, fetched by one member with raw ShareFetch v2),
and what its jars do (decompiled kafka_2.13-4.4.0.jar SharePartition.acquireNewBatchRecords and
createBatches, kafka-server-4.4.0.jar InFlightBatch.maybeInitializeOffsetStateUpdate): the new
in-flight batch runs to the end of the log batch the limit fell in, its records past the limit
AVAILABLE and never delivered (delivery count 0). So acknowledging one of them is
INVALID_RECORD_STATE, not a request past the end (INVALID_REQUEST); they are acquired later as
part of that in-flight batch, one range with its other records, cut from the next one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from ottla.server.coordinator import Timers
from ottla.server.share.partition import AcquiredRange, RecordState, SharePartition, SharePartitionLimits
from ottla.testing import ThreadedBroker, running_broker
from share_member import BATCH_OPTIMIZED, RECORD_LIMIT, ShareFetcher

ACCEPT, RELEASE = 1, 2


@pytest.fixture(scope="module")
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None) as running:
        yield running


def test_record_limit_leaves_the_rest_of_the_log_batch_in_flight_and_available(broker: ThreadedBroker) -> None:
    fetcher = ShareFetcher(broker, "record-limit-tail", version=2)
    fetcher.produce_batch(b"x", 10)  # 0-9
    fetcher.produce_batch(b"y", 10)  # 10-19
    assert fetcher.fetch(1, 3, RECORD_LIMIT)[:2] == ([(0, 2, 1)], 0)
    # 5 is in flight, not acquired; the rest of its in-flight batch comes as one range.
    assert fetcher.fetch(2, 20, RECORD_LIMIT, acknowledgements=[(5, 5, ACCEPT)])[:2] == ([(3, 9, 1), (10, 19, 1)], 121)
    # Released: 0-9 is one in-flight batch again, 10-19 another.
    assert fetcher.fetch(3, 5, RECORD_LIMIT, acknowledgements=[(0, 19, RELEASE)])[:2] == ([(0, 4, 2)], 0)
    assert fetcher.fetch(4, 6, RECORD_LIMIT)[:2] == ([(5, 9, 2), (10, 10, 2)], 0)
    assert fetcher.fetch(5, 3, BATCH_OPTIMIZED, max_wait_ms=0)[:2] == ([(11, 19, 2)], 0)
    fetcher.member.close()


def test_record_limit_tail_without_sockets() -> None:
    """The rule on one share-partition: RECORD_LIMIT stopping inside a log batch of new records
    keeps the rest of that batch in flight, AVAILABLE with delivery count 0; stopping where a
    log batch starts keeps nothing more. (An event loop that never runs is the clock.)"""
    loop = asyncio.new_event_loop()
    try:
        partition = SharePartition(0, Timers(loop), SharePartitionLimits())
        assert partition.acquire("a", [(0, 9), (10, 19)], 3, whole_batches=False) == [AcquiredRange(0, 2, 1)]
        assert partition.end_offset == 10 and partition.next_fetch_offset() == 3
        assert [(partition.records[o].state, partition.records[o].delivery_count) for o in (3, 9)] == [(RecordState.AVAILABLE, 0)] * 2
        assert partition.acquire("a", [(0, 9), (10, 19)], 7, whole_batches=False) == [AcquiredRange(3, 9, 1)]
        assert partition.end_offset == 10
        assert partition.acquire("a", [(10, 19), (20, 29)], 10, whole_batches=False) == [AcquiredRange(10, 19, 1)]
        assert partition.end_offset == 20
    finally:
        loop.close()
