"""How a ShareFetch hands records out: its acquired-record ranges, and which partitions it lists.

The expected answers are the reference Kafka 4.4's to the same requests (asked of it with
`compat.kafka`): ten records produced one per log batch, fetched by one member.

- BatchSize: new records are acquired in in-flight batches of BatchSize records or more, cut
  where a log batch starts (SharePartition.createBatches), one acquired range each; released
  and acquired again, each in-flight batch is still one range, and a member acquiring in whole
  batches gets whole in-flight batches past MaxRecords.
- A session-opening ShareFetch (epoch 0) lists every partition of the session, those with
  nothing to acquire too (ShareSessionContext answers a new session's fetch in full); a later
  one lists only what changed.
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
    """One member of a fresh share group on a fresh one-partition topic, assigned it."""

    def __init__(self, broker: ThreadedBroker, name: str) -> None:
        self.topic, self.group = f"batches-{name}", f"batches-{name}-group"
        broker.create_topic(self.topic, partitions=1)
        self.member = ShareMember(broker)
        assigned = self.member.join_until_assigned(self.group, [self.topic])
        self.topic_id = bytes(assigned[0]["topic_id"])
        self.bootstrap = broker.bootstrap_servers

    def produce_one_per_batch(self, count: int) -> None:
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=0)
        for value in range(count):
            producer.send(self.topic, b"v%d" % value, partition=0).get(timeout=30)
        producer.close()

    def fetch(self, epoch: int, batch_size: int = 500, max_records: int = 500, releases: tuple[int, int] | None = None,
              max_wait_ms: int = 5000, acknowledgements: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        acks = acknowledgements or []
        if releases is not None:
            acks.append({"first_offset": releases[0], "last_offset": releases[1], "acknowledge_types": [RELEASE]})
        return self.member.call(ApiKey.SHARE_FETCH, 1, {
            "group_id": self.group, "member_id": self.member.member_id, "share_session_epoch": epoch, "max_wait_ms": max_wait_ms,
            "min_bytes": 1, "max_bytes": 1 << 20, "max_records": max_records, "batch_size": batch_size,
            "topics": [{"topic_id": self.topic_id, "partitions": [{"partition_index": 0, "acknowledgement_batches": acks}]}],
            "forgotten_topics_data": []})


def _listed(response: dict[str, Any]) -> list[tuple[int, int, list[tuple[int, int, int]]]]:
    """(partition, error, acquired ranges as (first, last, delivery count)) per partition listed."""
    assert response["error_code"] == 0
    return [(p["partition_index"], p["error_code"], [(r["first_offset"], r["last_offset"], r["delivery_count"]) for r in p["acquired_records"]])
            for topic in response["responses"] for p in topic["partitions"]]


def test_new_records_are_acquired_in_ranges_of_batch_size_cut_at_log_batches(broker: ThreadedBroker) -> None:
    fetcher = _Fetcher(broker, "size")
    fetcher.fetch(0, max_wait_ms=0)  # the share-partition starts at the end of the log (auto.offset.reset latest)
    fetcher.produce_one_per_batch(10)
    assert _listed(fetcher.fetch(1, batch_size=3)) == [(0, 0, [(0, 2, 1), (3, 5, 1), (6, 8, 1), (9, 9, 1)])]
    # Released in the next fetch and acquired by it again: still one range per in-flight batch.
    assert _listed(fetcher.fetch(2, batch_size=3, releases=(0, 9))) == [(0, 0, [(0, 2, 2), (3, 5, 2), (6, 8, 2), (9, 9, 2)])]
    # Closing the session with acknowledgements: the partition is listed for them, as accepted.
    final = fetcher.fetch(-1, acknowledgements=[{"first_offset": 0, "last_offset": 9, "acknowledge_types": [ACCEPT]}])
    assert _listed(final) == [(0, 0, [])]
    assert final["responses"][0]["partitions"][0]["acknowledge_error_code"] == 0
    fetcher.member.close()


def test_max_records_is_checked_where_a_batch_starts(broker: ThreadedBroker) -> None:
    fetcher = _Fetcher(broker, "limit")
    fetcher.fetch(0, max_wait_ms=0)
    fetcher.produce_one_per_batch(10)
    assert _listed(fetcher.fetch(1, batch_size=4, max_records=6)) == [(0, 0, [(0, 3, 1), (4, 5, 1)])]
    assert _listed(fetcher.fetch(2, batch_size=4, max_records=6)) == [(0, 0, [(6, 9, 1)])]
    # Whole in-flight batches: the first alone is past 3 records, the next two make 6.
    assert _listed(fetcher.fetch(3, batch_size=4, max_records=3, releases=(0, 9))) == [(0, 0, [(0, 3, 2)])]
    assert _listed(fetcher.fetch(4, batch_size=4, max_records=3)) == [(0, 0, [(4, 5, 2), (6, 9, 2)])]
    fetcher.member.close()


def test_a_session_opening_fetch_lists_partitions_with_nothing_to_acquire(broker: ThreadedBroker) -> None:
    fetcher = _Fetcher(broker, "opening")
    assert _listed(fetcher.fetch(0, max_wait_ms=0)) == [(0, 0, [])]
    assert _listed(fetcher.fetch(1, max_wait_ms=0)) == []
    assert _listed(fetcher.fetch(-1, max_wait_ms=0)) == []
    # Waited for, records that do not come: listed all the same.
    assert _listed(fetcher.fetch(0, max_wait_ms=200)) == [(0, 0, [])]
    fetcher.member.close()


def test_in_flight_batches_bound_ranges_and_whole_batch_limits() -> None:
    """The rule without sockets, on one share-partition: new records in batches of at least
    `batch_size` cut at log batch starts; ranges and the soft record limit follow them. (An
    event loop that never runs is the clock: no lock expires.)"""
    loop = asyncio.new_event_loop()
    try:
        def fresh() -> SharePartition:
            return SharePartition(0, Timers(loop), SharePartitionLimits())

        one_per_batch = [(offset, offset) for offset in range(10)]
        partition = fresh()
        assert partition.acquire("a", one_per_batch, 6, batch_size=4) == [AcquiredRange(0, 3, 1), AcquiredRange(4, 5, 1)]
        assert partition.acquire("a", one_per_batch[6:], 500, batch_size=4) == [AcquiredRange(6, 9, 1)]
        assert partition.release_member("a")
        assert partition.acquire("b", one_per_batch, 3, batch_size=4) == [AcquiredRange(0, 3, 2)]
        assert partition.acquire("b", one_per_batch, 3, batch_size=4) == [AcquiredRange(4, 5, 2), AcquiredRange(6, 9, 2)]
        # Log batches are never cut, and a cut comes only batch_size records or more after the last.
        assert fresh().acquire("a", [(0, 4), (5, 5), (6, 9)], 500, batch_size=2) == [AcquiredRange(0, 4, 1), AcquiredRange(5, 9, 1)]
        # RECORD_LIMIT: one range, exactly max_records.
        assert fresh().acquire("a", one_per_batch, 5, whole_batches=False, batch_size=2) == [AcquiredRange(0, 4, 1)]
    finally:
        loop.close()
