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

from ottla.server.coordinator import Timers
from ottla.server.share.partition import AcquiredRange, SharePartition, SharePartitionLimits
from ottla.testing import ThreadedBroker, running_broker
from share_member import ShareFetcher

ACCEPT, RELEASE = 1, 2


@pytest.fixture(scope="module")
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None) as running:
        yield running


def _listed(response: dict[str, Any]) -> list[tuple[int, int, list[tuple[int, int, int]]]]:
    """(partition, error, acquired ranges as (first, last, delivery count)) per partition listed."""
    assert response["error_code"] == 0
    return [(p["partition_index"], p["error_code"], [(r["first_offset"], r["last_offset"], r["delivery_count"]) for r in p["acquired_records"]])
            for topic in response["responses"] for p in topic["partitions"]]


def test_new_records_are_acquired_in_ranges_of_batch_size_cut_at_log_batches(broker: ThreadedBroker) -> None:
    fetcher = ShareFetcher(broker, "batches-size", open_session=False)
    fetcher.request(0, max_wait_ms=0)  # the share-partition starts at the end of the log (auto.offset.reset latest)
    fetcher.produce_one_per_batch(10)
    assert _listed(fetcher.request(1, batch_size=3)) == [(0, 0, [(0, 2, 1), (3, 5, 1), (6, 8, 1), (9, 9, 1)])]
    # Released in the next fetch and acquired by it again: still one range per in-flight batch.
    assert _listed(fetcher.request(2, batch_size=3, acknowledgements=[(0, 9, RELEASE)])) == [(0, 0, [(0, 2, 2), (3, 5, 2), (6, 8, 2), (9, 9, 2)])]
    # Closing the session with acknowledgements: the partition is listed for them, as accepted.
    final = fetcher.request(-1, acknowledgements=[(0, 9, ACCEPT)])
    assert _listed(final) == [(0, 0, [])]
    assert final["responses"][0]["partitions"][0]["acknowledge_error_code"] == 0
    fetcher.member.close()


def test_max_records_is_checked_where_a_batch_starts(broker: ThreadedBroker) -> None:
    fetcher = ShareFetcher(broker, "batches-limit", open_session=False)
    fetcher.request(0, max_wait_ms=0)
    fetcher.produce_one_per_batch(10)
    assert _listed(fetcher.request(1, batch_size=4, max_records=6)) == [(0, 0, [(0, 3, 1), (4, 5, 1)])]
    assert _listed(fetcher.request(2, batch_size=4, max_records=6)) == [(0, 0, [(6, 9, 1)])]
    # Whole in-flight batches: the first alone is past 3 records, the next two make 6.
    assert _listed(fetcher.request(3, batch_size=4, max_records=3, acknowledgements=[(0, 9, RELEASE)])) == [(0, 0, [(0, 3, 2)])]
    assert _listed(fetcher.request(4, batch_size=4, max_records=3)) == [(0, 0, [(4, 5, 2), (6, 9, 2)])]
    fetcher.member.close()


def test_a_session_opening_fetch_lists_partitions_with_nothing_to_acquire(broker: ThreadedBroker) -> None:
    fetcher = ShareFetcher(broker, "batches-opening", open_session=False)
    assert _listed(fetcher.request(0, max_wait_ms=0)) == [(0, 0, [])]
    assert _listed(fetcher.request(1, max_wait_ms=0)) == []
    assert _listed(fetcher.request(-1, max_wait_ms=0)) == []
    # Waited for, records that do not come: listed all the same.
    assert _listed(fetcher.request(0, max_wait_ms=200)) == [(0, 0, [])]
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
