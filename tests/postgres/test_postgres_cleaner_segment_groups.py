"""The PostgreSQL engine's cleaner leaves the same segments as the local engine's: each pass
cleans its segments in Kafka's groups (Cleaner.groupSegmentsBySize: consecutive segments whose
bytes fit segment.bytes), each into one segment at the group's base offset, kept however empty
(Cleaner.cleanSegments swaps in its cleaned segment whatever it holds), so its offsets stay its
own. The segments decide what later passes clean (min.cleanable.dirty.ratio, the compaction
lags), so both engines must keep the same ones: checked after each pass of the cross-engine
cleaner steps (test_postgres_compaction.py, which compares their batches), at the default
segment.bytes, where every pass merges what it cleans into one segment, and at 120 bytes, where
a batch fills a segment and the passes empty some."""

from __future__ import annotations

import asyncio

import pytest
from test_postgres_compaction import COMPACTED, STEPS

from ottla.storage import Storage
from ottla.storage.postgresql.engine import PostgresStorage

Segment = tuple[int, int, int, int, int]  # base offset, next offset, size, first batch's and largest timestamps

_SEGMENTS = """
SELECT base_offset, next_offset, size, first_batch_timestamp, max_timestamp FROM segments
WHERE topic_id = $1 AND partition_index = 0 ORDER BY base_offset
"""


def _local_segments(storage: Storage) -> list[Segment]:
    return [
        (segment.base_offset, segment.next_offset, segment.size, segment.first_batch_timestamp, segment.max_timestamp_and_offset[0])
        for segment in storage.partition("c", 0).segments
    ]


async def _database_segments(storage: PostgresStorage) -> list[Segment]:
    rows = await storage.pool.fetch(_SEGMENTS, storage.partition("c", 0).log.topic_id)
    return [(row["base_offset"], row["next_offset"], row["size"], row["first_batch_timestamp"], row["max_timestamp"]) for row in rows]


@pytest.mark.parametrize(("segment_bytes", "first_pass"), [
    # [0-4] and [5-8] merge into one segment; the active [10] is not cleaned.
    (None, [(0, 10), (10, 11)]),
    # [0-2] and [3-4] each emptied, each kept at its own base offset.
    ("120", [(0, 3), (3, 5), (5, 7), (7, 9), (9, 10), (10, 11)]),
])
async def test_each_cleaner_pass_leaves_the_same_segments_on_both_engines(
    postgres_url: str, segment_bytes: str | None, first_pass: list[tuple[int, int]],
) -> None:
    configs = COMPACTED if segment_bytes is None else {**COMPACTED, "segment.bytes": segment_bytes}
    local = Storage(None)
    local.create_topic("c", 1, configs)
    database = await PostgresStorage.connect(postgres_url, asyncio.Lock, None)
    try:
        await database.create_database_topic("c", 1, configs)
        seen = []
        for appends, now in STEPS:
            for batch, from_client in appends:
                local.partition("c", 0).append(batch, from_client=from_client)
                await database.partition("c", 0).append(batch, from_client=from_client)
            assert await database.compact_database(now) == local.compact(now_ms=now)
            expected = _local_segments(local)
            assert await _database_segments(database) == expected
            seen.append(expected)
        # The cases themselves, so that the comparison above compares something.
        assert [(base, next_offset) for base, next_offset, *_ in seen[0]] == first_pass
    finally:
        await database.close_database()
