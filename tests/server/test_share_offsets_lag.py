"""DescribeShareGroupOffsets' lag: the records past the start offset less those already done.

Kafka 4.4's GroupCoordinatorService.computeShareGroupLagAndBuildResponse (kafka-group-coordinator
4.4.0 jar) answers the partition's end offset less the start offset less deliveryCompleteCount,
the in-flight records acknowledged or archived; Ottla left those out. The lags expected are the
reference Kafka 4.4's to the same requests. Its start offsets differ: Kafka describes the start
offset it persisted with the acknowledgement, before the acknowledgement moved it (0 throughout
here), Ottla the one it moved to; the lag is the same either way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from ottla.server.coordinator import Timers
from ottla.server.share.partition import SharePartition, SharePartitionLimits
from ottla.testing import ThreadedBroker, running_broker
from share_member import ShareFetcher

ACCEPT, REJECT = 1, 3


@pytest.fixture(scope="module")
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None) as running:
        yield running


def test_lag_leaves_out_records_acknowledged_in_flight(broker: ThreadedBroker) -> None:
    """0-9 acquired; 3-5 accepted: lag 7 with the start offset still 0. Then 0 accepted and 1
    rejected: lag 5 (2 and 6-9); five more records: lag 10."""
    fetcher = ShareFetcher(broker, "lag-in-flight", version=2)
    fetcher.produce_batch(count=10)
    assert fetcher.fetch().ranges == [(0, 9, 1)]
    assert fetcher.fetch(max_wait_ms=0, acknowledgements=[(3, 5, ACCEPT)]).ranges == []
    assert fetcher.described() == (0, 7)
    assert fetcher.fetch(max_wait_ms=0, acknowledgements=[(0, 0, ACCEPT), (1, 1, REJECT)]).ranges == []
    assert fetcher.described()[1] == 5
    fetcher.produce_batch(count=5)
    assert fetcher.described()[1] == 10
    fetcher.member.close()


def test_delivery_complete_without_sockets() -> None:
    loop = asyncio.new_event_loop()
    try:
        partition = SharePartition(0, Timers(loop), SharePartitionLimits())
        partition.acquire("a", [(0, 9)], 500)
        partition.acknowledge("a", 3, 5, [ACCEPT])
        partition.acknowledge("a", 8, 8, [REJECT])
        assert (partition.start_offset, partition.delivery_complete()) == (0, 4)
        partition.acknowledge("a", 0, 2, [ACCEPT])
        assert (partition.start_offset, partition.delivery_complete()) == (6, 1)
    finally:
        loop.close()
