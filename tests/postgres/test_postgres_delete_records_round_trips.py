"""DeleteRecords on the PostgreSQL engine in two round trips (log.py's `delete_records_before`):
one read of the bounds and of the removed batch carrying the largest timestamp, one statement
that moves the log start and deletes, applied only while nothing else moved the log start
meanwhile. Counted with asyncpg's query logger on every pooled connection (BEGIN and COMMIT
are round trips too), and checked to do what it did: the same log start, the same batches
left, the same ListOffsets -3 answers as the local engine's, under concurrent appends."""

from __future__ import annotations

import asyncio
import random

import asyncpg
import pytest

from ottla.storage import LogConfig, PartitionLog
from ottla.storage.postgresql import PostgresPartitionLog, create_topic, open_pool
from ottla.wire.records import Record, build_batch

pytestmark = pytest.mark.external


def _batch(timestamps: list[int]) -> bytes:
    return build_batch([Record(i, ts, None, b"v") for i, ts in enumerate(timestamps)])


async def _queries_of(pool: asyncpg.Pool, work) -> tuple[object, list[str]]:
    """What `work()` returned and the statements it sent, over every connection of `pool`."""
    sent: list[str] = []

    def logged(record) -> None:
        sent.append(record.query)

    connections = [await pool.acquire() for _ in range(pool.get_max_size())]
    for connection in connections:
        connection.add_query_logger(logged)
    for connection in connections:
        await pool.release(connection)
    try:
        result = await work()
    finally:
        connections = [await pool.acquire() for _ in range(pool.get_max_size())]
        for connection in connections:
            connection.remove_query_logger(logged)
        for connection in connections:
            await pool.release(connection)
    return result, sent


async def test_delete_records_takes_two_round_trips(pool) -> None:
    topic_id = await create_topic(pool, "round-trips", 1)
    log = PostgresPartitionLog(pool, topic_id, 0)
    for timestamps in ([1_000, 3_000], [2_000], [2_500], [2_800]):
        await log.append(_batch(timestamps))
    new_start, sent = await _queries_of(pool, lambda: log.delete_records_before(3))
    assert new_start == 3
    assert len(sent) == 2, sent
    assert await log.max_timestamp() == (3_000, 1)
    # Nothing to move: the bounds are read, nothing is written.
    new_start, sent = await _queries_of(pool, lambda: log.delete_records_before(2))
    assert (new_start, len(sent)) == (3, 1), sent


async def test_what_delete_records_does_is_the_local_engines_under_concurrent_appends(pool, postgres_url) -> None:
    """A second pool appends while the first deletes: every delete's answer is a log start the
    local engine reaches for the same cuts, no batch wholly below the log start is left, and
    the max timestamp is the local engine's (one segment) once the appends are done."""
    topic_id = await create_topic(pool, "concurrent", 1)
    log = PostgresPartitionLog(pool, topic_id, 0)
    other = await open_pool(postgres_url, size=2)
    rng = random.Random(7)
    batches = [_batch([rng.randint(1_000, 9_000) for _ in range(rng.randint(1, 3))]) for _ in range(60)]
    try:
        appender = PostgresPartitionLog(other, topic_id, 0)
        for batch in batches[:20]:
            await appender.append(batch)

        async def append_rest() -> None:
            for batch in batches[20:]:
                await appender.append(batch)

        async def delete_some() -> list[int]:
            return [await log.delete_records_before(cut) for cut in (3, 3, 10, 15, -1, 20)]

        _, starts = await asyncio.gather(append_rest(), delete_some())
        assert starts == sorted(starts)
        local = PartitionLog(None, LogConfig.from_overrides({}))
        for batch in batches:
            local.append(batch, from_client=True)
        for start in starts:
            local.delete_records(start)
        assert await log.log_start_offset() == local.log_start_offset
        assert await log.max_timestamp() == local.max_timestamp()
        async with pool.acquire() as connection:
            below = await connection.fetchval("SELECT count(*) FROM batches WHERE last_offset < $1", local.log_start_offset)
        assert below == 0
    finally:
        await other.close()
