"""Records delivered often are held back: fewer of them per ShareFetch.

The expected answers are the reference Kafka 4.4's to the same requests (asked of it with
`compat.kafka`: log batches of ten records, one member with raw ShareFetch v1, the group's
share.delivery.count.limit left at 5), and what its jar does (kafka_2.13-4.4.0.jar,
kafka.server.share.SharePartition.acquire, shouldThrottleRecordsDelivery and
acquireSubsetBatchRecords, decompiled): an in-flight batch with an AVAILABLE record delivered
ceil(5 / 2) = 3 times or more is acquired only first in a fetch, which ends with it; of it no
more than its size halved once per delivery from the third (10 >> 1 = 5), the size being the
whole in-flight batch's even when the start offset has moved into it; a record on its last
delivery (the fifth) goes alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from ottla.server.coordinator import Timers
from ottla.server.share.partition import AcquiredRange, SharePartition, SharePartitionLimits
from ottla.testing import ThreadedBroker, running_broker
from share_member import Fetched, ShareFetcher

ACCEPT, RELEASE = 1, 2


@pytest.fixture(scope="module")
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None) as running:
        yield running


def _ranges(fetched: Fetched) -> list[tuple[int, int, int]]:
    """The acquired ranges of a fetch whose acknowledgements were all taken."""
    assert fetched.acknowledge_error == 0
    return fetched.ranges


def test_often_delivered_batches_come_alone_and_halved(broker: ThreadedBroker) -> None:
    fetcher = ShareFetcher(broker, "throttle-halved")
    fetcher.produce_batch()  # 0-9, in-flight batch A
    assert _ranges(fetcher.fetch(max_records=5)) == [(0, 9, 1)]
    fetcher.produce_batch()  # 10-19, in-flight batch B
    assert _ranges(fetcher.fetch()) == [(10, 19, 1)]
    assert _ranges(fetcher.fetch(acknowledgements=[(10, 19, RELEASE)])) == [(10, 19, 2)]
    assert _ranges(fetcher.fetch(acknowledgements=[(10, 19, RELEASE)])) == [(10, 19, 3)]
    # B, delivered three times, waits for a fetch of its own; then half of it at a time.
    assert _ranges(fetcher.fetch(acknowledgements=[(0, 19, RELEASE)])) == [(0, 9, 2)]
    assert _ranges(fetcher.fetch()) == [(10, 14, 4)]
    assert _ranges(fetcher.fetch()) == [(15, 19, 4)]
    assert _ranges(fetcher.fetch(max_wait_ms=0)) == []
    # Released again: A is not held back yet; B's records, on their last delivery, go one by one.
    assert _ranges(fetcher.fetch(acknowledgements=[(0, 19, RELEASE)])) == [(0, 9, 3)]
    assert _ranges(fetcher.fetch()) == [(10, 10, 5)]
    assert _ranges(fetcher.fetch()) == [(11, 11, 5)]
    fetcher.member.close()


def test_the_in_flight_batch_the_start_offset_moved_into_keeps_its_size(broker: ThreadedBroker) -> None:
    fetcher = ShareFetcher(broker, "throttle-straddled")
    fetcher.produce_batch()  # 0-9
    assert _ranges(fetcher.fetch()) == [(0, 9, 1)]
    assert _ranges(fetcher.fetch(acknowledgements=[(0, 4, ACCEPT), (5, 9, RELEASE)])) == [(5, 9, 2)]
    assert _ranges(fetcher.fetch(acknowledgements=[(5, 9, RELEASE)])) == [(5, 9, 3)]
    # Ten records halved: all five left come at once.
    assert _ranges(fetcher.fetch(acknowledgements=[(5, 9, RELEASE)])) == [(5, 9, 4)]
    assert _ranges(fetcher.fetch(acknowledgements=[(5, 9, RELEASE)])) == [(5, 5, 5)]
    fetcher.member.close()


def test_throttling_without_sockets() -> None:
    """The rule on one share-partition (delivery count limit 5: held back from 3 deliveries).
    An event loop that never runs is the clock: no lock expires."""
    loop = asyncio.new_event_loop()
    try:
        partition = SharePartition(0, Timers(loop), SharePartitionLimits(delivery_count_limit=5))
        log = [(0, 9), (10, 19)]
        assert partition.acquire("a", log, 500, batch_size=10) == [AcquiredRange(0, 9, 1), AcquiredRange(10, 19, 1)]
        for count in (2, 3):
            partition.acknowledge("a", 10, 19, [RELEASE])
            assert partition.acquire("a", log, 500) == [AcquiredRange(10, 19, count)]
        partition.acknowledge("a", 0, 19, [RELEASE])
        assert partition.acquire("a", log, 500) == [AcquiredRange(0, 9, 2)]
        assert partition.acquire("a", log, 500) == [AcquiredRange(10, 14, 4)]
        assert partition.acquire("a", log, 500) == [AcquiredRange(15, 19, 4)]
        partition.acknowledge("a", 10, 19, [RELEASE])
        assert partition.acquire("a", log, 500) == [AcquiredRange(10, 10, 5)]
        # The start offset moves into A: its size stays ten.
        partition.acknowledge("a", 0, 4, [ACCEPT])
        partition.acknowledge("a", 5, 9, [RELEASE])
        assert partition.acquire("a", log, 500) == [AcquiredRange(5, 9, 3)]
        partition.acknowledge("a", 5, 9, [RELEASE])
        assert partition.acquire("a", log, 500) == [AcquiredRange(5, 9, 4)]
    finally:
        loop.close()
