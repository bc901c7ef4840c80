"""The log cleaner over a PostgreSQL partition: the local engine's compaction, one pass at a time.

The rules are storage/compaction.py's, shared with the local engine: `due_segments` chooses what a
pass cleans (min.compaction.lag.ms, min.cleanable.dirty.ratio, max.compaction.lag.ms),
`DirtyOffsetMap` builds the key map over the dirty section (at most the broker's
`offset_map_capacity` keys: a full map stops the pass where Kafka's stops, the next pass going on
from there) and `BatchCleaner` rewrites each batch of the cleanable
segments (latest record per key at its offset; tombstones and markers until the delete horizon a
pass stamps on their batch, KIP-534; aborted transactions' batches dropped; no segment reaching the
last stable offset cleaned and no aborted record counted as its key's latest). Offsets never
change: a rewritten batch keeps its base and last offset (and its row's end_position, so reads by
position still never exceed max_bytes); a batch that keeps no record is deleted, unless it is its
producer's last or ends at the log end (kept empty, as Kafka keeps it), and a fetch inside a
deleted one gets the next batch there is, as on the local engine. The aborted-transaction rows
whose ABORT marker a pass cleans go in the same transaction as its rewrite, unless a batch of
their transaction was still there (`CleanedTransactions.indexed_aborts`, Kafka's cleaned
.txnindex): read_committed fetches stop listing transactions with nothing left to skip.

Segments: those rules are per segment (the active one is never cleaned), and batches here are
rows, not segment files, so each pass first replays Kafka's roll rules (segment.bytes and
segment.ms by record time, LogSegment.shouldRoll without jitter, as PartitionLog._maybe_roll)
over the batches appended since the last pass, and keeps the segments in the `segments` table
(migration 6) with what a local segment file would report: offsets, size as stored now, first
batch's and largest timestamps. A pass cleans its segments in the local engine's groups
(`group_segments_by_size`, Kafka's Cleaner.groupSegmentsBySize), each into one segment at the
group's base offset, kept however empty, as the local engine keeps its swapped segment: the two
engines' segments stay the same.

A pass reads without locks, decides in Python, and writes in one transaction under the partition
row's lock (which appends take too), and only if the partition's first dirty offset is still the
one it read: when two brokers clean one partition, the second pass to write is dropped and the
next starts over. Appends go on during a pass (they add batches past the active segment, which a
pass never touches); a batch DeleteRecords or retention removed meanwhile is not written back.

Divergences from the local engine: rolls are decided per batch where the local engine decides per
produce request (the same unless a request carries several batches for one partition), and by
the topic's config at the pass rather than at the append; a segment whose batches carry no
timestamp never rolls on time (the local engine uses the segment file's creation and
modification times); segment.jitter.ms is not drawn; the segment index's size (segment.index.bytes)
never rolls one, nor limits a group; a pass holds the rewritten batches of the section it cleans
in memory until it writes them; segments wholly below the log start are forgotten at the next pass
that cleans.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

import asyncpg

from ottla.storage.compaction import (
    AbortedBatches,
    BatchCleaner,
    CleanedTransactions,
    DirtyOffsetMap,
    due_segments,
    group_segments_by_size,
    offset_map_capacity,
)
from ottla.storage.config import LogConfig
from ottla.wire.records import read_header

# A relative offset in a segment's index is 4 bytes (Kafka's canConvertToRelativeOffset).
_MAX_RELATIVE_OFFSET = 0x7FFFFFFF
# Batches read per round trip while a pass maps and rewrites.
_PAGE = 256


@dataclass(slots=True)
class StoredSegment:
    """A segment as the `segments` table keeps it; the last of a partition's is the active one."""

    base_offset: int
    next_offset: int
    size: int
    first_batch_timestamp: int
    max_timestamp: int

    @property
    def max_timestamp_and_offset(self) -> tuple[int, int]:
        return self.max_timestamp, self.base_offset

    @property
    def is_empty(self) -> bool:
        return self.size == 0

    @property
    def index_sizes(self) -> tuple[int, int]:
        """No index files: segment.index.bytes never limits a cleaner's group here."""
        return 0, 0


def replay_rolls(segments: list[StoredSegment], batches: Iterable[tuple[int, int, int, int]], config: LogConfig) -> None:
    """Extend `segments` (at least the active one) with `batches` appended after them, as
    (base offset, last offset, size, max timestamp) in offset order, rolling where the local
    engine would have rolled before appending the batch."""
    active = segments[-1]
    for base_offset, last_offset, size, max_timestamp in batches:
        if not active.is_empty and (
            active.size > config.segment_bytes - size
            or (active.first_batch_timestamp >= 0 and max_timestamp - active.first_batch_timestamp > config.segment_ms)
            or last_offset - active.base_offset > _MAX_RELATIVE_OFFSET
        ):
            active = StoredSegment(base_offset, base_offset, 0, -1, -1)
            segments.append(active)
        if active.is_empty:
            active.first_batch_timestamp = max_timestamp
        active.size += size
        active.next_offset = last_offset + 1
        active.max_timestamp = max(active.max_timestamp, max_timestamp)


# The cleaner's offset map at Kafka's default log.cleaner.dedupe.buffer.size, threads and load factor.
DEFAULT_MAP_CAPACITY = offset_map_capacity()


@dataclass(slots=True)
class _Rewrite:
    """What a pass changes: batches replaced (last offset, bytes, max timestamp) and removed;
    the offsets [cleaned_from, cleaned_to) it cleaned, and the ABORT markers there whose
    aborted-transaction rows stay (`indexed_aborts`)."""

    last_offsets: list[int]
    data: list[bytes]
    max_timestamps: list[int]
    removed: list[int]
    cleaned_from: int
    cleaned_to: int
    indexed_aborts: list[int]


@dataclass(slots=True, frozen=True)
class CleanedPass:
    """What a pass wrote: the records it removed, the aborted transactions it forgot (by their
    marker's offset) and the producer state version forgetting them moved the partition to
    (None: none forgotten), for this broker's copy of the state to follow."""

    removed: int = 0
    forgotten_aborts: frozenset[int] = frozenset()
    producer_state_version: int | None = None


_NOTHING_WRITTEN = CleanedPass()


_STATE = "SELECT first_dirty_offset, log_start_offset FROM partitions WHERE topic_id = $1 AND partition_index = $2"
_LOCK = _STATE + " FOR UPDATE"
_SEGMENTS = """
SELECT base_offset, next_offset, size, first_batch_timestamp, max_timestamp FROM segments
WHERE topic_id = $1 AND partition_index = $2 ORDER BY base_offset
"""
_APPENDED_SINCE = """
SELECT base_offset, last_offset, octet_length(data) AS size, max_timestamp FROM batches
WHERE topic_id = $1 AND partition_index = $2 AND last_offset >= $3 ORDER BY last_offset
"""
# Read after the segments and the batches appended since: a transaction open when those were
# read is still open here or has its marker, and so its range in the aborted index below.
_OPEN_TRANSACTIONS_FROM = "SELECT min(current_txn_first_offset) FROM producers WHERE topic_id = $1 AND partition_index = $2"
_ABORTED = """
SELECT producer_id, first_offset, last_offset FROM aborted_transactions
WHERE topic_id = $1 AND partition_index = $2 AND last_offset >= $3
"""
_PRODUCERS = "SELECT producer_id, producer_epoch, batches FROM producers WHERE topic_id = $1 AND partition_index = $2"
_PAGE_OF_BATCHES = """
SELECT last_offset, data FROM batches
WHERE topic_id = $1 AND partition_index = $2 AND last_offset >= $3 AND base_offset < $4
ORDER BY last_offset LIMIT $5
"""
_REMOVE = "DELETE FROM batches WHERE topic_id = $1 AND partition_index = $2 AND last_offset = ANY($3::bigint[])"
_REPLACE = """
UPDATE batches b SET data = r.data, max_timestamp = r.max_timestamp
FROM unnest($3::bigint[], $4::bytea[], $5::bigint[]) AS r(last_offset, data, max_timestamp)
WHERE b.topic_id = $1 AND b.partition_index = $2 AND b.last_offset = r.last_offset
"""
_FORGET_SEGMENTS = "DELETE FROM segments WHERE topic_id = $1 AND partition_index = $2"
_STORE_SEGMENTS = """
INSERT INTO segments (topic_id, partition_index, base_offset, next_offset, size, first_batch_timestamp, max_timestamp)
SELECT $1, $2, s.* FROM unnest($3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[]) AS s
"""
_CHECKPOINT = "UPDATE partitions SET first_dirty_offset = $3 WHERE topic_id = $1 AND partition_index = $2"
_FORGET_ABORTED = """
DELETE FROM aborted_transactions
WHERE topic_id = $1 AND partition_index = $2 AND last_offset >= $3 AND last_offset < $4 AND last_offset <> ALL($5::bigint[])
RETURNING last_offset
"""
# The aborted index is producer state: every broker's copy is reloaded at its next append once
# the version moves, as after producer.id.expiration.ms (engine.py's `_EXPIRE`).
_STATE_MOVED = """
UPDATE partitions SET producer_state_version = producer_state_version + 1
WHERE topic_id = $1 AND partition_index = $2 RETURNING producer_state_version
"""


async def _batches(pool: asyncpg.Pool, topic_id: uuid.UUID, index: int, start: int, end: int) -> AsyncIterator[tuple[int, bytes]]:
    """(last offset, bytes) of the batches holding offsets in [start, end), a page at a time."""
    while start < end:
        rows = await pool.fetch(_PAGE_OF_BATCHES, topic_id, index, start, end, _PAGE)
        for row in rows:
            yield row["last_offset"], row["data"]
        if len(rows) < _PAGE:
            return
        start = rows[-1]["last_offset"] + 1


async def clean_partition(
    pool: asyncpg.Pool, topic_id: uuid.UUID, index: int, config: LogConfig, now_ms: int, map_capacity: int = DEFAULT_MAP_CAPACITY,
) -> CleanedPass:
    """One cleaner pass over a partition (see the module docstring), its offset map holding at
    most `map_capacity` keys; returns what it wrote. A partition gone meanwhile, or cleaned by
    another broker meanwhile, is left as it is (nothing written)."""
    state = await pool.fetchrow(_STATE, topic_id, index)
    if state is None:
        return _NOTHING_WRITTEN
    first_dirty_offset: int = state["first_dirty_offset"]
    rows = await pool.fetch(_SEGMENTS, topic_id, index)
    segments = [
        StoredSegment(row["base_offset"], row["next_offset"], row["size"], row["first_batch_timestamp"], row["max_timestamp"]) for row in rows
    ] or [StoredSegment(0, 0, 0, -1, -1)]
    known = len(segments), segments[-1].next_offset
    appended = await pool.fetch(_APPENDED_SINCE, topic_id, index, segments[-1].next_offset)
    replay_rolls(segments, ((row["base_offset"], row["last_offset"], row["size"], row["max_timestamp"]) for row in appended), config)
    open_from = await pool.fetchval(_OPEN_TRANSACTIONS_FROM, topic_id, index)
    last_stable_offset = segments[-1].next_offset if open_from is None else open_from
    due = due_segments(segments[:-1], first_dirty_offset, now_ms, config, last_stable_offset)
    if due is None:
        await _store_rolls(pool, topic_id, index, first_dirty_offset, segments, known)
        return _NOTHING_WRITTEN
    cleanable, dirty = due
    # Every aborted transaction of the cleaned segments: the cleaner drops their batches, then their markers.
    aborted_rows = await pool.fetch(_ABORTED, topic_id, index, cleanable[0].base_offset)
    ranges = [(row["producer_id"], row["first_offset"], row["last_offset"]) for row in aborted_rows]
    # As the local engine's PartitionLog.clean_steps: a segment at a time, until the map is full.
    offset_map = DirtyOffsetMap(first_dirty_offset, map_capacity, AbortedBatches(ranges))
    for segment in dirty:
        async for _, data in _batches(pool, topic_id, index, max(segment.base_offset, first_dirty_offset), segment.next_offset):
            if not offset_map.add(data):
                break
        if offset_map.full:
            break
        offset_map.end_segment(segment.next_offset)
    if offset_map.latest_offset < first_dirty_offset:  # not one batch fits the map
        await _store_rolls(pool, topic_id, index, first_dirty_offset, segments, known)
        return _NOTHING_WRITTEN
    end_offset = offset_map.latest_offset + 1
    cleanable = [segment for segment in cleanable if segment.base_offset < end_offset]
    # Each producer's last data batch and epoch: the cleaner keeps that batch, emptied if need be (RETAIN_EMPTY).
    last_batches = {}
    for row in await pool.fetch(_PRODUCERS, topic_id, index):
        batches = json.loads(row["batches"])
        last_batches[row["producer_id"]] = (batches[-1][3] if batches else -1, row["producer_epoch"])
    transactions = CleanedTransactions(ranges)
    cleaner = BatchCleaner(
        offset_map.offsets, transactions, now_ms, config.delete_retention_ms, last_batches, segments[-1].next_offset,
        offset_map.latest_offset,
    )
    rewrite = _Rewrite([], [], [], [], cleanable[0].base_offset, cleanable[-1].next_offset, [])
    removed = 0
    merged_away: set[int] = set()  # id() of the segments taken into their group's first
    for group in group_segments_by_size(cleanable, config.segment_bytes, config.segment_index_bytes):
        size, first_timestamp, largest = 0, -1, -1
        for segment in group:
            async for last_offset, data in _batches(pool, topic_id, index, segment.base_offset, segment.next_offset):
                filtered = cleaner.clean(data)
                if filtered is None:
                    rewrite.removed.append(last_offset)
                    removed += read_header(data).records_count
                    continue
                header = read_header(filtered)
                if filtered is not data:
                    removed += read_header(data).records_count - header.records_count
                    rewrite.last_offsets.append(last_offset)
                    rewrite.data.append(filtered)
                    rewrite.max_timestamps.append(header.max_timestamp)
                if size == 0:
                    first_timestamp = header.max_timestamp
                size += len(filtered)
                largest = max(largest, header.max_timestamp)
        merged = group[0]
        merged.next_offset, merged.size, merged.first_batch_timestamp, merged.max_timestamp = group[-1].next_offset, size, first_timestamp, largest
        merged_away.update(id(segment) for segment in group[1:])
    rewrite.indexed_aborts = sorted(transactions.indexed_aborts)
    kept = [segment for segment in segments if id(segment) not in merged_away]
    start: int = state["log_start_offset"]
    while len(kept) > 1 and kept[1].base_offset <= start:
        kept.pop(0)
    written = await _write(pool, topic_id, index, first_dirty_offset, end_offset, kept, rewrite)
    return CleanedPass(removed, written.forgotten_aborts, written.producer_state_version) if written is not None else _NOTHING_WRITTEN


async def _store_rolls(
    pool: asyncpg.Pool, topic_id: uuid.UUID, index: int, first_dirty_offset: int, segments: list[StoredSegment], known: tuple[int, int],
) -> None:
    """A pass that cleans nothing still keeps the segments its replay rolled, if they changed
    from the `known` (count, end) it read."""
    if (len(segments), segments[-1].next_offset) != known:
        await _write(pool, topic_id, index, first_dirty_offset, first_dirty_offset, segments, None)


async def _write(
    pool: asyncpg.Pool, topic_id: uuid.UUID, index: int, read_dirty_offset: int, first_dirty_offset: int,
    segments: list[StoredSegment], rewrite: _Rewrite | None,
) -> CleanedPass | None:
    """A pass's outcome in one transaction, if the partition is still there and no other pass
    moved its first dirty offset since `read_dirty_offset` was read: what it forgot of the
    aborted index (its `removed` not counted here), or None when nothing was written."""
    forgotten: frozenset[int] = frozenset()
    version: int | None = None
    async with pool.acquire() as connection, connection.transaction():
        state = await connection.fetchrow(_LOCK, topic_id, index)
        if state is None or state["first_dirty_offset"] != read_dirty_offset:
            return None
        if rewrite is not None:
            if rewrite.removed:
                await connection.execute(_REMOVE, topic_id, index, rewrite.removed)
            if rewrite.last_offsets:
                await connection.execute(_REPLACE, topic_id, index, rewrite.last_offsets, rewrite.data, rewrite.max_timestamps)
            rows = await connection.fetch(_FORGET_ABORTED, topic_id, index, rewrite.cleaned_from, rewrite.cleaned_to, rewrite.indexed_aborts)
            if rows:
                forgotten = frozenset(row["last_offset"] for row in rows)
                version = await connection.fetchval(_STATE_MOVED, topic_id, index)
        await connection.execute(_FORGET_SEGMENTS, topic_id, index)
        await connection.execute(
            _STORE_SEGMENTS, topic_id, index,
            [s.base_offset for s in segments], [s.next_offset for s in segments], [s.size for s in segments],
            [s.first_batch_timestamp for s in segments], [s.max_timestamp for s in segments],
        )
        if first_dirty_offset != read_dirty_offset:
            await connection.execute(_CHECKPOINT, topic_id, index, first_dirty_offset)
    return CleanedPass(0, forgotten, version)
