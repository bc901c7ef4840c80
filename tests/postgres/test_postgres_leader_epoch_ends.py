"""OffsetForLeaderEpoch's answer on the PostgreSQL engine (log.py's `end_offset_for_epoch`), as
Kafka 4.4's LeaderEpochFileCache.endOffsetFor gives it over the leader's cache: an older epoch
ends where the next epoch with records starts (answered with the largest epoch at or below
it), not at the log end; below the earliest entry the requested epoch itself, ending where that
entry starts; above the latest, or -1, undefined. DeleteRecords truncates the cache from the log
start (truncateFromStart: the last entry at or below it is kept, moved up to it).

Leadership moves as cluster mode moves it, by claims in the database (brokers.py), against a
real PostgreSQL. The history: epoch 0 holds offsets 0..6, epoch 1 (broker 2) 7..9, epoch 2
(broker 1) nothing, epoch 3 (broker 2) 10..11, epoch 4 (broker 1, the leader) nothing yet. The
leader's cache in Kafka is then (0, 0), (1, 7), (3, 10), (4, 12): epoch 2 was replaced when its
broker followed again (a leader with no records is truncated away by the next epoch's start)."""

from __future__ import annotations

import pytest

from ottla.storage.postgresql import PostgresPartitionLog, create_topic
from ottla.storage.postgresql.brokers import claim_leadership
from ottla.storage.postgresql.log import RetentionTarget, enforce_retention
from ottla.wire.records import Record, build_batch

pytestmark = pytest.mark.external

EPOCHS = (-5, -1, 0, 1, 2, 3, 4, 5)


def _batch(count: int) -> bytes:
    return build_batch([Record(i, 1_000 + i, None, b"v") for i in range(count)])


async def _history(pool) -> PostgresPartitionLog:
    topic_id = await create_topic(pool, "epochs", 1)
    log = PostgresPartitionLog(pool, topic_id, 0)
    for count in (2, 3):
        await log.append(_batch(count))
    assert (await claim_leadership(pool, 1, [(topic_id, 0)]))[(topic_id, 0)].leader_epoch == 0  # the first claim keeps epoch 0
    await log.append(_batch(2))
    for node, epoch, counts in ((2, 1, (3,)), (1, 2, ()), (2, 3, (1, 1)), (1, 4, ())):
        assert (await claim_leadership(pool, node, [(topic_id, 0)]))[(topic_id, 0)].leader_epoch == epoch
        for count in counts:
            await log.append(_batch(count))
    assert await log.high_watermark() == 12
    return log


async def _answers(log: PostgresPartitionLog) -> list[tuple[int, int]]:
    return [await log.end_offset_for_epoch(epoch) for epoch in EPOCHS]


async def test_an_older_epoch_ends_where_the_next_one_starts(pool) -> None:
    log = await _history(pool)
    assert await _answers(log) == [(-5, 0), (-1, -1), (0, 7), (1, 10), (1, 10), (3, 12), (4, 12), (-1, -1)]


async def test_delete_records_truncates_the_epochs_from_the_log_start(pool) -> None:
    log = await _history(pool)
    assert await log.delete_records_before(8) == 8  # inside epoch 1's batch, which stays
    assert await _answers(log) == [(-5, 8), (-1, -1), (0, 8), (1, 10), (1, 10), (3, 12), (4, 12), (-1, -1)]
    assert await log.delete_records_before(10) == 10  # at epoch 3's start
    assert await _answers(log) == [(-5, 10), (-1, -1), (0, 10), (1, 10), (2, 10), (3, 12), (4, 12), (-1, -1)]
    assert await log.delete_records_before(-1) == 12  # everything: the leader's epoch alone, at the log end
    assert await _answers(log) == [(-5, 12), (-1, -1), (0, 12), (1, 12), (2, 12), (3, 12), (4, 12), (-1, -1)]


async def test_retention_truncates_them_too(pool) -> None:
    log = await _history(pool)
    target = RetentionTarget(log.topic_id, 0, None, 3 * len(_batch(1)) + 1)  # keeps the 3-record batch of epoch 1 and after
    assert await enforce_retention(pool, [target]) == {(log.topic_id, 0): 7}
    assert await _answers(log) == [(-5, 7), (-1, -1), (0, 7), (1, 10), (1, 10), (3, 12), (4, 12), (-1, -1)]


async def test_a_fresh_partition_has_its_first_leaders_epoch_alone(pool) -> None:
    """As the reference broker answers a new partition (tests/server/test_offset_for_leader_epoch_below_first.py)."""
    topic_id = await create_topic(pool, "fresh", 1)
    log = PostgresPartitionLog(pool, topic_id, 0)
    assert await _answers(log) == [(-5, 0), (-1, -1), (0, 0), (-1, -1), (-1, -1), (-1, -1), (-1, -1), (-1, -1)]
