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
from typing import Any

import pytest
from kafka import KafkaProducer  # type: ignore[import-untyped]

from ottla.server.coordinator import Timers
from ottla.server.share.partition import AcquiredRange, SharePartition, SharePartitionLimits
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from share_member import ShareMember

ACCEPT, RELEASE = 1, 2


@pytest.fixture(scope="module")
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None) as running:
        yield running


class _Fetcher:
    """One member of a fresh share group on a fresh one-partition topic, assigned it, its
    share-partition started at the end of the log."""

    def __init__(self, broker: ThreadedBroker, name: str) -> None:
        self.topic, self.group = f"throttle-{name}", f"throttle-{name}-group"
        self.bootstrap = broker.bootstrap_servers
        broker.create_topic(self.topic, partitions=1)
        self.member = ShareMember(broker)
        self.topic_id = bytes(self.member.join_until_assigned(self.group, [self.topic])[0]["topic_id"])
        self.epoch = 0
        self.fetch(max_wait_ms=0)

    def produce_batch(self, count: int = 10) -> None:
        """`count` records in one log batch: sent together, flushed before the linger ends."""
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=60000, batch_size=1 << 20)
        for value in range(count):
            producer.send(self.topic, b"v%d" % value, partition=0)
        producer.flush()
        producer.close()

    def fetch(self, max_records: int = 500, max_wait_ms: int = 5000,
              acknowledgements: list[tuple[int, int, int]] = ()) -> list[tuple[int, int, int]]:
        """The next fetch of the session: its acquired ranges as (first, last, delivery count)."""
        response = self.member.call(ApiKey.SHARE_FETCH, 1, {
            "group_id": self.group, "member_id": self.member.member_id, "share_session_epoch": self.epoch,
            "max_wait_ms": max_wait_ms, "min_bytes": 1, "max_bytes": 1 << 20, "max_records": max_records, "batch_size": 500,
            "topics": [{"topic_id": self.topic_id, "partitions": [{"partition_index": 0, "acknowledgement_batches": [
                {"first_offset": first, "last_offset": last, "acknowledge_types": [kind]} for first, last, kind in acknowledgements]}]}],
            "forgotten_topics_data": []})
        self.epoch += 1
        assert response["error_code"] == 0
        partitions: list[Any] = [p for topic in response["responses"] for p in topic["partitions"]]
        assert all(p["error_code"] == 0 and p["acknowledge_error_code"] == 0 for p in partitions)
        return [(r["first_offset"], r["last_offset"], r["delivery_count"]) for p in partitions for r in p["acquired_records"]]


def test_often_delivered_batches_come_alone_and_halved(broker: ThreadedBroker) -> None:
    fetcher = _Fetcher(broker, "halved")
    fetcher.produce_batch()  # 0-9, in-flight batch A
    assert fetcher.fetch(max_records=5) == [(0, 9, 1)]
    fetcher.produce_batch()  # 10-19, in-flight batch B
    assert fetcher.fetch() == [(10, 19, 1)]
    assert fetcher.fetch(acknowledgements=[(10, 19, RELEASE)]) == [(10, 19, 2)]
    assert fetcher.fetch(acknowledgements=[(10, 19, RELEASE)]) == [(10, 19, 3)]
    # B, delivered three times, waits for a fetch of its own; then half of it at a time.
    assert fetcher.fetch(acknowledgements=[(0, 19, RELEASE)]) == [(0, 9, 2)]
    assert fetcher.fetch() == [(10, 14, 4)]
    assert fetcher.fetch() == [(15, 19, 4)]
    assert fetcher.fetch(max_wait_ms=0) == []
    # Released again: A is not held back yet; B's records, on their last delivery, go one by one.
    assert fetcher.fetch(acknowledgements=[(0, 19, RELEASE)]) == [(0, 9, 3)]
    assert fetcher.fetch() == [(10, 10, 5)]
    assert fetcher.fetch() == [(11, 11, 5)]
    fetcher.member.close()


def test_the_in_flight_batch_the_start_offset_moved_into_keeps_its_size(broker: ThreadedBroker) -> None:
    fetcher = _Fetcher(broker, "straddled")
    fetcher.produce_batch()  # 0-9
    assert fetcher.fetch() == [(0, 9, 1)]
    assert fetcher.fetch(acknowledgements=[(0, 4, ACCEPT), (5, 9, RELEASE)]) == [(5, 9, 2)]
    assert fetcher.fetch(acknowledgements=[(5, 9, RELEASE)]) == [(5, 9, 3)]
    # Ten records halved: all five left come at once.
    assert fetcher.fetch(acknowledgements=[(5, 9, RELEASE)]) == [(5, 9, 4)]
    assert fetcher.fetch(acknowledgements=[(5, 9, RELEASE)]) == [(5, 5, 5)]
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
