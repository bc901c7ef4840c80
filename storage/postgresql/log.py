"""A partition's log in PostgreSQL: append, read, ListOffsets and DeleteRecords over `batches`.

Invariants (the schema is migrations.py's):

* Offsets are assigned by the one statement that stores the batches (one round trip): it locks
  the partition row (`SELECT ... FOR UPDATE`), inserts the batches with each one's base offset and
  leader epoch written into its bytes (outside the CRC) and advances `next_offset`. Any number of
  writers, on any number of brokers, are serialized per partition by that lock, so offsets are
  contiguous and never handed out twice.
* Group commit: one statement stores a group of appends (`append_group`: the requests a broker
  queued on the partition while its previous statement was in flight), at offsets in the
  group's order, so they share one commit and its WAL flush. Each append gets its own range or
  its own error: the producer rules decide them one after the other and a refused one takes no
  offsets; a bad batch is refused by `prepare`, before it joins a group. Partitions are not
  grouped with one another: each one's statement runs on its own pooled connection, and
  PostgreSQL's WAL flush already serves the commits that arrive together (one flush covers every
  commit record written before it), where one transaction over several partitions would lock
  their rows together (an order to keep across brokers, or deadlocks) and undo them all when one
  partition's producer state moved.
* `next_offset` is the log end offset and the high watermark: PostgreSQL holds the one copy.
* A read is one statement, so it sees one snapshot: the bounds it reports and the batches it
  returns agree, and never include an uncommitted append.
* Batches with a producer id (idempotent, transactional, markers) are decided by the caller's
  copy of the producer state and recorded by that same statement, which writes nothing when the
  copy is not the database's (producers.py): a sequence is accepted once, by one broker.
* DeleteRecords moves `log_start_offset` and deletes the batches wholly below it in one
  statement, remembering the largest max timestamp among them for ListOffsets -3 (`max_timestamp`);
  the batch carrying it is read before, by a statement of its own, and the move applies only if
  nothing that would change that batch committed in between.
* `leader_epochs` holds where each leader epoch with batches starts (the append that stores an
  epoch's first batch writes it): Kafka's leader epoch cache, truncated from the log start when
  read (`end_offset_for_epoch`), so DeleteRecords and retention leave it alone.
* Retention (`enforce_retention`) deletes the oldest whole batches where Kafka deletes the
  oldest whole segments, so it is finer-grained than Kafka's: a batch past retention.ms goes even
  when a newer batch would have shared its segment and kept it there, and retention.bytes is
  met to the batch, not to the segment. Like DeleteRecords, it moves `log_start_offset` first.

Batches are validated as the local engine's produce path does (`iter_batches`: length, magic,
CRC-32C, client rules; legacy message sets are up-converted first), under the topic's config as
the caller gives it: max.message.bytes, message.timestamp.type=LogAppendTime (the batch stamped
with the broker's clock) and the record rules of storage/validator.py (timestamp bounds,
compacted keys). A topic's compression.type other than `producer` is applied before, by the
caller (engine.py, with storage/validator.py's `recompress`); compaction rewrites stored batches
afterwards (compaction.py), keeping their offsets and end positions.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import asyncpg

from ottla.storage.config import LogConfig
from ottla.storage.leader_epochs import end_offset_for
from ottla.storage.postgresql.producers import NO_CHANGES, PRODUCER_ERRORS, PartitionProducers, PlannedAppend, ProducerStateMoved
from ottla.storage.producer_state import BatchMetadata
from ottla.storage.validator import RecordRules
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.records import (
    BatchHeader,
    batch_magic,
    convert_legacy,
    iter_batches,
    iter_records,
    read_header,
    set_log_append_time,
)

# ListOffsets' special targets (Kafka's ListOffsetsRequest).
LATEST_TIMESTAMP = -1
EARLIEST_TIMESTAMP = -2
EARLIEST_LOCAL_TIMESTAMP = -4

_INT32_MAX = 2**31 - 1
_DEFAULT_CONFIG = LogConfig.from_overrides({})


async def open_pool(url: str, size: int = 4) -> asyncpg.Pool:
    """A bounded pool for the engine: `size` connections, each preparing a statement once and
    reusing it (asyncpg's statement cache). The engine keeps no session state on a pooled
    connection (no SET, LISTEN or session advisory lock), so the pool's reset query at each
    release, a second round trip per statement, is skipped."""

    async def keep_session(connection: asyncpg.Connection) -> None:
        return None

    return await asyncpg.create_pool(url, min_size=size, max_size=size, reset=keep_session)


# pg_advisory_xact_lock's first key for topic names; the second is the hash of a collision key.
_COLLISION_LOCK = 0x746F7069  # "topi"

# A topic whose name is `$1` or, not created by request `$2`, collides with it: the first by name.
_COLLIDING = """
SELECT name FROM topics
WHERE replace(name, '.', '_') = replace($1, '.', '_') AND (name = $1 OR created_by_request IS DISTINCT FROM $2)
ORDER BY name = $1 DESC, name
LIMIT 1
"""


async def create_topic(
    pool: asyncpg.Pool, name: str, partitions: int, configs: dict[str, str] | None = None, request: uuid.UUID | None = None
) -> uuid.UUID:
    """Create a topic and its partitions, empty, in one transaction; returns its id.
    TOPIC_ALREADY_EXISTS when the name is taken. With `request` (the CreateTopics request's id,
    shared by the topics it creates), a name differing from an existing topic's only by '.' and
    '_' is INVALID_TOPIC with Kafka's message, unless that topic is of the same request: judged
    under an advisory lock on the collision key, held until commit, so of two brokers creating
    colliding names at once the second sees the first's topic (migration 13). Without `request`
    (Metadata's auto-creation, whose names Kafka also creates together) the lock is taken and
    nothing judged, so a CreateTopics judged after it still sees its topic."""
    topic_id = uuid.uuid4()
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1, hashtext(replace($2, '.', '_')))", _COLLISION_LOCK, name)
        if request is not None:
            existing = await connection.fetchval(_COLLIDING, name, request)
            if existing == name:
                raise KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists.")
            if existing is not None:
                raise KafkaError(ErrorCode.INVALID_TOPIC, f"Topic '{name}' collides with existing topic: {existing}")
        try:
            await connection.execute(
                "INSERT INTO topics (topic_id, name, configs, created_by_request) VALUES ($1, $2, $3::jsonb, $4)",
                topic_id, name, json.dumps(configs or {}), request,
            )
        except asyncpg.UniqueViolationError:
            raise KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists.") from None
        await connection.execute(
            "INSERT INTO partitions (topic_id, partition_index) SELECT $1, generate_series(0, $2 - 1)",
            topic_id, partitions,
        )
    return topic_id


async def set_topic_configs(pool: asyncpg.Pool, topic_id: uuid.UUID, configs: dict[str, str]) -> None:
    """Replace a topic's config overrides. UNKNOWN_TOPIC_OR_PARTITION when it is gone."""
    updated = await pool.execute("UPDATE topics SET configs = $2::jsonb WHERE topic_id = $1", topic_id, json.dumps(configs))
    if updated == "UPDATE 0":
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"no topic {topic_id}")


async def add_partitions(pool: asyncpg.Pool, topic_id: uuid.UUID, total: int) -> int:
    """CreatePartitions: empty partitions from the topic's count up to `total`, in one
    statement; returns how many the topic had. INVALID_PARTITIONS when it already has
    `total` or more (another broker grew it first), UNKNOWN_TOPIC_OR_PARTITION when it is gone."""
    row = await pool.fetchrow(_ADD_PARTITIONS, topic_id, total)
    if row is None or row["existing"] == 0:
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"no topic {topic_id}")
    existing: int = row["existing"]
    if existing >= total:
        raise KafkaError(ErrorCode.INVALID_PARTITIONS, f"the topic has {existing} partitions, cannot grow to {total}")
    return existing


@dataclass(slots=True, frozen=True)
class RetentionTarget:
    """One partition's retention: keep the batches whose max timestamp is at least
    `keep_after_ms` (None: no time limit) and the newest batches within `keep_bytes` (None: no
    size limit)."""

    topic_id: uuid.UUID
    partition_index: int
    keep_after_ms: int | None
    keep_bytes: int | None


async def enforce_retention(pool: asyncpg.Pool, targets: list[RetentionTarget]) -> dict[tuple[uuid.UUID, int], int]:
    """One retention pass over `targets`, in one statement: each partition's log start offset
    moves past the longest prefix of batches that are all too old or all beyond retention.bytes
    (as Kafka's deleteOldSegments takes the longest prefix of segments, here a batch at a time),
    and the batches wholly below it are deleted. Returns the new log start offset of each
    partition whose start moved."""
    if not targets:
        return {}
    rows = await pool.fetch(
        _RETENTION,
        [target.topic_id for target in targets],
        [target.partition_index for target in targets],
        [target.keep_after_ms for target in targets],
        [target.keep_bytes for target in targets],
    )
    return {(row["topic_id"], row["partition_index"]): row["log_start_offset"] for row in rows}


@dataclass(slots=True, frozen=True)
class AppendedRange:
    """Offsets a successful append assigned, and the log start offset and the partition's
    bytes appended so far (its end position) after it; the time the broker stamped the
    batches with under LogAppendTime, else -1."""

    base_offset: int
    last_offset: int
    log_start_offset: int
    end_position: int
    log_append_time_ms: int = -1
    # A retried batch answered with the offsets and time it was first stored at (Kafka's
    # UnifiedLog.append); nothing was stored, so log start and end position are unknown (-1, 0).
    duplicate: bool = False


@dataclass(slots=True, eq=False)
class PreparedAppend:
    """One request's batches for a partition, validated and laid out as the append statement's
    rows (offsets, positions and running max timestamps relative to the request), waiting for
    a group to store them; then its outcome, and where it fell in its group."""

    log_append_time_ms: int
    from_client: bool = True  # False: a coordinator's own write (ProducerStateManager.check)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    producer_batches: list[tuple[BatchHeader, memoryview]] = field(default_factory=list)
    count: int = 0
    size: int = 0
    max_timestamp: int = -1
    outcome: AppendedRange | BaseException | None = None
    group_offset: int = 0
    group_position: int = 0

    @property
    def doubtful(self) -> bool:
        """Answered by a copy of the producer state alone (a retry, or a producer rule's
        refusal): right only if that copy was the database's."""
        outcome = self.outcome
        if isinstance(outcome, AppendedRange):
            return outcome.duplicate
        return isinstance(outcome, KafkaError) and outcome.code in PRODUCER_ERRORS

    def result(self) -> AppendedRange:
        """The outcome: the range, or its error raised."""
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        if self.outcome is None:
            raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, "the append's group ended before it was decided")
        return self.outcome


# A group stops growing past this many bytes (its first append whatever its size): the statement's
# bytea array stays far below PostgreSQL's 1 GB for one value, and one big group's WAL write does
# not hold back the appends queued behind it for long.
GROUP_BYTES = 8 << 20


def take_group(queued: list[PreparedAppend]) -> list[PreparedAppend]:
    """Remove and return the group to store next: the oldest queued appends, up to GROUP_BYTES."""
    size = taken = 0
    while taken < len(queued) and (taken == 0 or size + queued[taken].size <= GROUP_BYTES):
        size += queued[taken].size
        taken += 1
    group = queued[:taken]
    del queued[:taken]
    return group


@dataclass(slots=True, frozen=True)
class LeaderFence:
    """Whose appends a partition stores: only `node_id`'s, and (unless None) only while the
    partition's leader epoch is still `leader_epoch`, the one they were decided under."""

    node_id: int
    leader_epoch: int | None = None


@dataclass(slots=True, frozen=True)
class StoredRead:
    """Whole batches in offset order, with the partition's bounds as of the same snapshot."""

    batches: list[bytes]
    high_watermark: int
    log_start_offset: int

    @property
    def size(self) -> int:
        return sum(len(batch) for batch in self.batches)


# Appends and reads, one statement each; asyncpg prepares each once per connection.
# An append is this one statement, one round trip, atomic without a transaction block: it locks
# the partition row (FOR UPDATE returns its latest version, after any append it waited for),
# stores the batches at the offsets and positions that follow, with each batch's base offset and
# leader epoch written into its bytes (both outside the CRC, DefaultRecordBatch), and advances the
# row. The row's lock is held for the statement only, not across client round trips.
# $3..$14: per batch, its offset and last offset after the first, end position after the first
# position, max timestamp, largest max timestamp so far in this append, then stored as given.
# $18..$21, for batches with a producer id (producers.py): the log end offset and producer state
# version the append was decided against (NULL: no producer state involved, nothing checked),
# the producers it changes and the aborted transactions it ends, as JSON. When the row has moved
# on from them the statement writes nothing and answers current = false.
# $22: the only broker that may append (NULL: any), refused (fenced = true, nothing written) once
# another has claimed the partition: a claim and an append take the row's lock in turn, so an
# append either lands before the claim, and the new leader's read after its claim sees it, or
# is refused. $23: the leader epoch the append was decided under (NULL: any), refused once the
# partition's epoch has moved, which a claim does whenever the leader changes: so a broker that
# lost the partition and claimed it back stores nothing it decided before.
# The first append stamped with a new leader epoch records where that epoch starts (leader_epochs,
# for `end_offset_for_epoch`): epochs only grow, so the partition's batches are in epoch order.
_APPEND = """
WITH checked AS (
    SELECT next_offset, next_position, max_timestamp, leader_epoch, appended_epoch, log_start_offset, producer_state_version,
        ($22::integer IS NOT NULL AND leader_id NOT IN (-1, $22)) OR ($23::integer IS NOT NULL AND leader_epoch <> $23) AS fenced,
        $18::bigint IS NULL OR (next_offset = $18 AND producer_state_version = $19::bigint) AS in_step
    FROM partitions WHERE topic_id = $1 AND partition_index = $2 FOR UPDATE
), locked AS (
    SELECT *, in_step AND NOT fenced AS current FROM checked
), stored AS (
    INSERT INTO batches (
        topic_id, partition_index, base_offset, last_offset, end_position, max_timestamp,
        max_timestamp_so_far, producer_id, producer_epoch, base_sequence, last_sequence,
        is_transactional, is_control, data, stored_at_ms)
    SELECT $1, $2, l.next_offset + b.offset_delta, l.next_offset + b.last_delta, l.next_position + b.end_delta,
        b.max_timestamp, greatest(l.max_timestamp, b.running_max), b.producer_id, b.producer_epoch,
        b.base_sequence, b.last_sequence, b.is_transactional, b.is_control,
        overlay(overlay(b.data PLACING int8send(l.next_offset + b.offset_delta) FROM 1 FOR 8)
                PLACING int4send(l.leader_epoch) FROM 13 FOR 4),
        CASE WHEN b.max_timestamp < 0 THEN (extract(epoch FROM statement_timestamp()) * 1000)::bigint END
    FROM locked l, unnest($3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[],
                          $9::smallint[], $10::integer[], $11::integer[], $12::boolean[], $13::boolean[], $14::bytea[])
        AS b(offset_delta, last_delta, end_delta, max_timestamp, running_max, producer_id, producer_epoch,
             base_sequence, last_sequence, is_transactional, is_control, data)
    WHERE l.current
), epoch_started AS (
    INSERT INTO leader_epochs (topic_id, partition_index, leader_epoch, start_offset)
    SELECT $1, $2, l.leader_epoch, l.next_offset FROM locked l WHERE l.current AND l.leader_epoch <> l.appended_epoch
    ON CONFLICT DO NOTHING
), producers_written AS (
    INSERT INTO producers AS e (
        topic_id, partition_index, producer_id, producer_epoch, batches, current_txn_first_offset, last_timestamp, coordinator_epoch)
    SELECT $1, $2, w.producer_id, w.producer_epoch, w.batches, w.current_txn_first_offset, w.last_timestamp, w.coordinator_epoch
    FROM locked l, jsonb_to_recordset($20::jsonb) AS w(producer_id bigint, producer_epoch smallint, batches jsonb,
        current_txn_first_offset bigint, last_timestamp bigint, coordinator_epoch integer)
    WHERE l.current
    ON CONFLICT (topic_id, partition_index, producer_id) DO UPDATE SET
        producer_epoch = EXCLUDED.producer_epoch, batches = EXCLUDED.batches, current_txn_first_offset = EXCLUDED.current_txn_first_offset,
        last_timestamp = EXCLUDED.last_timestamp, coordinator_epoch = EXCLUDED.coordinator_epoch
), aborted_written AS (
    INSERT INTO aborted_transactions (topic_id, partition_index, producer_id, first_offset, last_offset, last_stable_offset)
    SELECT $1, $2, a.producer_id, a.first_offset, a.last_offset, a.last_stable_offset
    FROM locked l, jsonb_to_recordset($21::jsonb) AS a(producer_id bigint, first_offset bigint, last_offset bigint, last_stable_offset bigint)
    WHERE l.current
), advanced AS (
    UPDATE partitions p
    SET next_offset = l.next_offset + $15, next_position = l.next_position + $16, max_timestamp = greatest(l.max_timestamp, $17),
        appended_epoch = l.leader_epoch, producer_state_version = l.producer_state_version + CASE WHEN $18::bigint IS NULL THEN 0 ELSE 1 END
    FROM locked l WHERE p.topic_id = $1 AND p.partition_index = $2 AND l.current
)
SELECT next_offset, next_position, log_start_offset, producer_state_version, current, fenced FROM locked
"""
# The batch holding `offset` (the first whose last_offset reaches it), then the batches after it
# whose positions fit in max_bytes counted from its start; that first batch whatever its size
# when $5. The bounds are scalar subqueries, each run once (an InitPlan), so the batches are one
# range of the position index: as a join, the planner may look the first batch up again for
# every batch of the partition, a read costing the partition's size rather than its own.
_READ = """
WITH first AS MATERIALIZED (
    SELECT end_position, end_position - octet_length(data) AS start_position FROM batches
    WHERE topic_id = $1 AND partition_index = $2 AND last_offset >= $3
    ORDER BY last_offset LIMIT 1
)
SELECT p.log_start_offset, p.next_offset, ARRAY(
    SELECT b.data FROM batches b
    WHERE b.topic_id = $1 AND b.partition_index = $2
      AND b.end_position >= (SELECT end_position FROM first)
      AND b.end_position <= (SELECT CASE WHEN $5 THEN greatest(end_position, start_position + $4) ELSE start_position + $4 END FROM first)
    ORDER BY b.end_position
) AS batches
FROM partitions p WHERE p.topic_id = $1 AND p.partition_index = $2
"""
# The first batch at or after `after` (and, when $5, the log start) whose max timestamp reaches
# the target; the time index finds where max_timestamp_so_far first does, which is that batch
# unless DeleteRecords or retention removed a batch with a larger timestamp than those kept.
_BY_TIMESTAMP = """
SELECT b.data, p.log_start_offset FROM partitions p, LATERAL (
    SELECT data FROM batches
    WHERE topic_id = $1 AND partition_index = $2 AND max_timestamp_so_far >= $3 AND max_timestamp >= $3
      AND last_offset >= greatest(CASE WHEN $5 THEN p.log_start_offset ELSE 0 END, $4)
    ORDER BY max_timestamp_so_far, last_offset LIMIT 1
) b
WHERE p.topic_id = $1 AND p.partition_index = $2
"""
# ListOffsets -3 (KIP-734): what DeleteRecords removed, and the largest timestamp kept. The last
# batch's running max is that unless a removed batch set it; then the kept batches are scanned.
_LARGEST_SO_FAR = """
SELECT p.deleted_max_timestamp, p.deleted_max_timestamp_offset, (
    SELECT max_timestamp_so_far FROM batches WHERE topic_id = $1 AND partition_index = $2 ORDER BY last_offset DESC LIMIT 1
) AS largest
FROM partitions p WHERE p.topic_id = $1 AND p.partition_index = $2
"""
_LARGEST_KEPT = "SELECT max(max_timestamp) FROM batches WHERE topic_id = $1 AND partition_index = $2"
_BOUNDS = "SELECT log_start_offset, next_offset FROM partitions WHERE topic_id = $1 AND partition_index = $2"
# OffsetForLeaderEpoch: the partition's epoch and bounds, and where each epoch with batches starts,
# from the last one starting at or below the log start (Kafka drops the cache's entries before it).
_EPOCHS = """
SELECT p.leader_epoch, p.log_start_offset, p.next_offset, e.epochs, e.starts
FROM partitions p, LATERAL (
    SELECT coalesce(array_agg(leader_epoch ORDER BY leader_epoch), '{}') AS epochs,
        coalesce(array_agg(start_offset ORDER BY leader_epoch), '{}') AS starts
    FROM leader_epochs
    WHERE topic_id = $1 AND partition_index = $2 AND leader_epoch >= coalesce((
        SELECT leader_epoch FROM leader_epochs
        WHERE topic_id = $1 AND partition_index = $2 AND start_offset <= p.log_start_offset
        ORDER BY leader_epoch DESC LIMIT 1), -1)
) e
WHERE p.topic_id = $1 AND p.partition_index = $2
"""
# DeleteRecords, in two statements and no transaction block. The first reads the bounds and, of
# the batches below the new log start ($3, -1: the log end), the first carrying a larger max
# timestamp than the one remembered (if any): its largest record is found in its bytes. The
# second moves the log start (with that record, $4 and $5, when there is one) and deletes the
# batches wholly below it, only while the row still has the log start, the remembered max
# timestamp and the cleaner's checkpoint the first one read ($6..$8): the UPDATE takes the row's
# lock and checks them on its latest version, so another DeleteRecords or retention that moved
# the log start in between, or a compaction pass that rewrote batches and moved its checkpoint,
# makes it write nothing and the caller starts over. Appends in between change none of the batches below the new
# log start, which lies at or below the log end the first statement read: those batches were
# committed before it, so the second statement's DELETE sees them all.
_DELETE_PLAN = """
SELECT p.log_start_offset, p.next_offset, p.deleted_max_timestamp, p.first_dirty_offset, c.data, c.max_timestamp
FROM partitions p LEFT JOIN LATERAL (
    SELECT data, max_timestamp FROM batches
    WHERE topic_id = $1 AND partition_index = $2
      AND last_offset < greatest(p.log_start_offset, CASE WHEN $3 = -1 THEN p.next_offset ELSE $3 END)
      AND max_timestamp > p.deleted_max_timestamp
    ORDER BY max_timestamp DESC, last_offset LIMIT 1
) c ON true
WHERE p.topic_id = $1 AND p.partition_index = $2
"""
_DELETE_BEFORE = """
WITH moved AS (
    UPDATE partitions SET log_start_offset = $3, deleted_max_timestamp = coalesce($4, deleted_max_timestamp),
        deleted_max_timestamp_offset = coalesce($5, deleted_max_timestamp_offset)
    WHERE topic_id = $1 AND partition_index = $2
      AND log_start_offset = $6 AND deleted_max_timestamp = $7 AND first_dirty_offset = $8
    RETURNING log_start_offset
), deleted AS (
    DELETE FROM batches WHERE topic_id = $1 AND partition_index = $2 AND last_offset < $3 AND EXISTS (SELECT FROM moved)
)
SELECT EXISTS (SELECT FROM moved)
"""


# CreatePartitions: the rows from the current count up; the count as it was, read under the
# topic row's lock so that two brokers growing one topic take turns.
_ADD_PARTITIONS = """
WITH locked AS (
    SELECT topic_id FROM topics WHERE topic_id = $1 FOR UPDATE
), existing AS (
    SELECT count(*)::integer AS n FROM partitions p, locked l WHERE p.topic_id = l.topic_id
), added AS (
    INSERT INTO partitions (topic_id, partition_index)
    SELECT l.topic_id, generate_series(e.n, $2 - 1) FROM locked l, existing e WHERE e.n > 0
)
SELECT e.n AS existing FROM locked l, existing e
"""
# Retention: per partition, the new log start is the base offset of the first batch kept by
# time (max timestamp >= keep_after; for a batch without one, the time it was stored, as Kafka
# falls back to a segment's modification time) and by size (the first whose end position is past
# next_position - keep_bytes: each batch before it leaves at least keep_bytes after it, as Kafka
# keeps at least retention.bytes), the later of the two, or the log end when no batch is kept;
# it only moves forward. Batches wholly below it are deleted, and with them what DeleteRecords
# remembered of the batches it removed (Kafka's retention check drops the segments below the log
# start, and their records stop counting for ListOffsets -3).
_RETENTION = """
WITH wanted AS (
    SELECT * FROM unnest($1::uuid[], $2::integer[], $3::bigint[], $4::bigint[]) AS w(topic_id, partition_index, keep_after, keep_bytes)
), target AS (
    SELECT p.topic_id, p.partition_index, p.log_start_offset AS old_start, greatest(
        CASE WHEN w.keep_after IS NULL THEN p.log_start_offset ELSE coalesce((
            SELECT b.base_offset FROM batches b
            WHERE b.topic_id = p.topic_id AND b.partition_index = p.partition_index
              AND b.last_offset >= p.log_start_offset
              AND CASE WHEN b.max_timestamp >= 0 THEN b.max_timestamp ELSE coalesce(b.stored_at_ms, w.keep_after) END >= w.keep_after
            ORDER BY b.last_offset LIMIT 1), p.next_offset) END,
        CASE WHEN w.keep_bytes IS NULL THEN p.log_start_offset ELSE coalesce((
            SELECT b.base_offset FROM batches b
            WHERE b.topic_id = p.topic_id AND b.partition_index = p.partition_index
              AND b.end_position > p.next_position - w.keep_bytes
            ORDER BY b.end_position LIMIT 1), p.next_offset) END
    ) AS new_start
    FROM partitions p JOIN wanted w USING (topic_id, partition_index)
), moved AS (
    UPDATE partitions p SET log_start_offset = greatest(p.log_start_offset, t.new_start),
        deleted_max_timestamp = -1, deleted_max_timestamp_offset = -1
    FROM target t
    WHERE p.topic_id = t.topic_id AND p.partition_index = t.partition_index AND t.new_start > t.old_start
    RETURNING p.topic_id, p.partition_index, p.log_start_offset
), deleted AS (
    DELETE FROM batches b USING moved m
    WHERE b.topic_id = m.topic_id AND b.partition_index = m.partition_index AND b.last_offset < m.log_start_offset
)
SELECT topic_id, partition_index, log_start_offset FROM moved
"""


def _last_sequence(base_sequence: int, last_offset_delta: int, producer_id: int) -> int:
    """The batch's last sequence; sequences wrap past 2^31-1 to 0 (DefaultRecordBatch.incrementSequence)."""
    if producer_id < 0 or base_sequence < 0:
        return base_sequence
    if base_sequence > _INT32_MAX - last_offset_delta:
        return base_sequence - (_INT32_MAX - last_offset_delta) - 1
    return base_sequence + last_offset_delta


class PostgresPartitionLog:
    """One partition of a topic in the database, used through `pool`; see the module docstring.

    Holds no state of its own beyond the partition's identity: every broker may have one for
    the same partition, and all of them see the same log.
    """

    def __init__(self, pool: asyncpg.Pool, topic_id: uuid.UUID, partition_index: int) -> None:
        self.pool = pool
        self.topic_id = topic_id
        self.partition_index = partition_index

    def _missing(self) -> KafkaError:
        return KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"no partition {self.partition_index} of topic {self.topic_id}")

    def prepare(
        self, records: bytes | bytearray | memoryview, config: LogConfig | None = None, rules: RecordRules | None = None, now_ms: int | None = None,
        from_client: bool = True,
    ) -> PreparedAppend:
        """Validate the batches under the topic's `config` and record `rules` (the defaults'
        when not given; `rules` is RecordRules.of(config, ...), built once per config by the
        caller) and lay them out as the append statement stores them. Under LogAppendTime each
        batch is stamped with `now_ms` (the clock when None). Raises KafkaError (CORRUPT_MESSAGE,
        INVALID_RECORD, MESSAGE_SIZE_TOO_LARGE, RECORD_LIST_TOO_LARGE) or RecordValidationError (INVALID_RECORD,
        INVALID_TIMESTAMP naming the records at fault): before any round trip, so a bad request
        never joins a group. `from_client=False`: the coordinators' own writes (markers)."""
        config = _DEFAULT_CONFIG if config is None else config
        rules = RecordRules.of(config, str(self.partition_index)) if rules is None else rules
        now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        append_time = now if config.log_append_time else -1
        data = convert_legacy(records) if batch_magic(records) in (0, 1) else records
        # Under LogAppendTime the batches are stamped in a copy, CRC and all.
        stamped = bytearray(data) if append_time >= 0 else None
        if stamped is not None:
            data = stamped
        prepared = PreparedAppend(append_time, from_client)
        offset_delta = position = 0
        max_timestamp = -1
        for header, batch in iter_batches(data, from_client=from_client):
            if header.size > config.max_message_bytes:
                raise KafkaError(ErrorCode.MESSAGE_SIZE_TOO_LARGE, f"batch of {header.size} bytes exceeds max.message.bytes")
            if rules.needs_walk(header.attributes, header.max_timestamp, now):
                rules.check(batch, header.attributes, now)
            batch_max_timestamp = header.max_timestamp
            if stamped is not None:
                set_log_append_time(stamped, position, append_time)
                batch_max_timestamp = append_time
            last_delta = header.last_offset_delta
            max_timestamp = max(max_timestamp, batch_max_timestamp)
            position += header.size
            prepared.rows.append((
                offset_delta, offset_delta + last_delta, position, batch_max_timestamp, max_timestamp,
                header.producer_id, header.producer_epoch, header.base_sequence,
                _last_sequence(header.base_sequence, last_delta, header.producer_id),
                header.is_transactional, header.is_control, batch,
            ))
            if header.producer_id >= 0:
                prepared.producer_batches.append((replace(header, base_offset=offset_delta, max_timestamp=batch_max_timestamp), batch))
            offset_delta += last_delta + 1
        if position > config.segment_bytes:  # after each batch's own size, as the local engine and Kafka's append
            raise KafkaError(ErrorCode.RECORD_LIST_TOO_LARGE, f"{position} bytes exceed segment.bytes")
        prepared.count, prepared.size, prepared.max_timestamp = offset_delta, position, max_timestamp
        return prepared

    async def append_group(
        self, group: Sequence[PreparedAppend], producers: PartitionProducers | None = None, next_offset: int = 0, fence: LeaderFence | None = None,
    ) -> bool | None:
        """Store the appends of `group` that the producer rules accept in one statement (one
        round trip, one commit), at the offsets that follow in the group's order, and give each
        append its outcome (`PreparedAppend.outcome`): its AppendedRange (`duplicate` for a
        retried batch, answered with its first offsets and not stored) or its own KafkaError (a
        producer rule's refusal), never another append's.

        Batches with a producer id need `producers`, the caller's copy of the partition's
        producer state, and `next_offset`, the log end it expects: they are decided against it
        (producers.py) and recorded by the same statement, which the copy then adopts.
        ProducerStateMoved, with nothing stored and no outcome given, when the copy or
        `next_offset` was not the database's; UNKNOWN_TOPIC_OR_PARTITION when the partition is
        gone. With a `fence`, NOT_LEADER_FOR_PARTITION and nothing stored once another broker
        has claimed the partition, or its leader epoch is no longer the fence's. Returns whether
        the statement saw the copy's version (so the copy's retries and refusals are the
        database's too), None when nothing needed storing."""
        for prepared in group:
            prepared.outcome = None  # a previous attempt's answers were decided on another copy
        planned = [PlannedAppend(prepared.producer_batches, prepared.count, prepared.from_client) for prepared in group]
        if any(append.batches for append in planned):
            if producers is None:
                raise KafkaError(ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT, "idempotent and transactional batches need the partition's producer state")
            decisions, write = producers.plan(planned, next_offset)
        else:
            decisions, write = [None] * len(group), None
        answered: list[tuple[PreparedAppend, AppendedRange | KafkaError]] = []
        stored_appends: list[PreparedAppend] = []
        columns: list[list[Any]] = [[] for _ in range(12)]
        offset_delta = position = 0
        max_timestamp = -1
        for prepared, decision in zip(group, decisions):
            if isinstance(decision, BatchMetadata):
                answered.append((prepared, AppendedRange(decision.first_offset, decision.last_offset, -1, 0, decision.timestamp, True)))
                continue
            if decision is not None:
                answered.append((prepared, decision))
                continue
            stored_appends.append(prepared)
            prepared.group_offset, prepared.group_position = offset_delta, position
            for row in prepared.rows:
                shifted = (
                    offset_delta + row[0], offset_delta + row[1], position + row[2], row[3], max(max_timestamp, row[4]), *row[5:],
                )
                for column, value in zip(columns, shifted):
                    column.append(value)
            offset_delta += prepared.count
            position += prepared.size
            max_timestamp = max(max_timestamp, prepared.max_timestamp)
        current: bool | None = None
        if stored_appends:
            decided_version = None if producers is None else producers.version
            checked = (None, None, NO_CHANGES, NO_CHANGES) if write is None else (write.expected_next_offset, write.expected_version, write.producers, write.aborted)
            stored = await self.pool.fetchrow(
                _APPEND, self.topic_id, self.partition_index, *columns, offset_delta, position, max_timestamp, *checked,
                None if fence is None else fence.node_id, None if fence is None else fence.leader_epoch,
            )
            if stored is None:
                raise self._missing()
            if stored["fenced"]:
                raise KafkaError(ErrorCode.NOT_LEADER_FOR_PARTITION, f"partition {self.partition_index} of topic {self.topic_id} was claimed since")
            version: int = stored["producer_state_version"]
            if not stored["current"]:
                raise ProducerStateMoved(stored["next_offset"], version)
            if write is not None and producers is not None:
                producers.adopt(write, version + 1)
            current = version == decided_version
            first_offset: int = stored["next_offset"]
            for prepared in stored_appends:
                base = first_offset + prepared.group_offset
                end_position = stored["next_position"] + prepared.group_position + prepared.size
                prepared.outcome = AppendedRange(base, base + prepared.count - 1, stored["log_start_offset"], end_position, prepared.log_append_time_ms)
        for prepared, answer in answered:
            prepared.outcome = answer
        return current

    async def append(
        self, records: bytes | bytearray | memoryview, config: LogConfig | None = None, rules: RecordRules | None = None, now_ms: int | None = None,
        producers: PartitionProducers | None = None, next_offset: int = 0, from_client: bool = True,
    ) -> AppendedRange:
        """One append alone: `prepare`, then `append_group` of it; its refusal raised. The log
        is unchanged when this raises."""
        prepared = self.prepare(records, config, rules, now_ms, from_client)
        await self.append_group([prepared], producers, next_offset)
        return prepared.result()

    async def read(self, offset: int, max_bytes: int) -> StoredRead:
        """Whole batches from the one holding `offset`, in offset order, while they fit in
        `max_bytes` (the first one whatever its size, as Kafka's Fetch with minOneMessage).
        OFFSET_OUT_OF_RANGE outside [log start, log end]. A batch's position stays where it was
        appended, so the batches compaction removed leave gaps in the positions a read's window
        spans: while what was read leaves room, the read goes on past it, so the answer holds
        what fits in bytes, as Kafka's does."""
        row = await self.pool.fetchrow(_READ, self.topic_id, self.partition_index, offset, max_bytes, True)
        if row is None:
            raise self._missing()
        log_start_offset: int = row["log_start_offset"]
        next_offset: int = row["next_offset"]
        if offset < log_start_offset or offset > next_offset:
            raise KafkaError(ErrorCode.OFFSET_OUT_OF_RANGE, f"offset {offset} outside [{log_start_offset}, {next_offset}]")
        batches: list[bytes] = list(row["batches"])
        room = max_bytes - sum(map(len, batches))
        while batches and room > 0:
            after = read_header(batches[-1]).last_offset + 1
            if after >= next_offset:
                break
            more = await self.pool.fetchrow(_READ, self.topic_id, self.partition_index, after, room, False)
            found: list[bytes] = [] if more is None else more["batches"]
            if not found:
                break
            batches.extend(found)
            room -= sum(map(len, found))
        return StoredRead(batches, next_offset, log_start_offset)

    async def offset_for_timestamp(self, timestamp: int) -> tuple[int, int] | None:
        """ListOffsets: (timestamp, offset) of the first record at or after the log start with a
        timestamp >= the target, None when no record has one; latest (-1) and earliest (-2, -4)
        report timestamp -1, as Kafka does. Other negative targets are not answered here
        (-3, KIP-734's max timestamp, is `max_timestamp`): ValueError."""
        if timestamp in (LATEST_TIMESTAMP, EARLIEST_TIMESTAMP, EARLIEST_LOCAL_TIMESTAMP):
            log_start_offset, next_offset = await self._bounds()
            return -1, next_offset if timestamp == LATEST_TIMESTAMP else log_start_offset
        if timestamp < 0:
            raise ValueError(f"ListOffsets target {timestamp} is not supported by this engine yet")
        return await self._first_reaching(timestamp, kept_only=True)

    async def _first_reaching(self, timestamp: int, kept_only: bool) -> tuple[int, int] | None:
        """(timestamp, offset) of the first record whose timestamp reaches `timestamp`, among the
        stored ones at or after the log start (`kept_only`) or all of them."""
        after = 0
        while True:
            row = await self.pool.fetchrow(_BY_TIMESTAMP, self.topic_id, self.partition_index, timestamp, after, kept_only)
            if row is None:
                return None
            first_kept: int = row["log_start_offset"] if kept_only else 0
            batch: bytes = row["data"]
            for record in iter_records(batch):
                if record.timestamp >= timestamp and record.offset >= first_kept:
                    return record.timestamp, record.offset
                after = record.offset + 1
            # Only records below the log start reached the target: look past this batch.

    async def max_timestamp(self) -> tuple[int, int] | None:
        """ListOffsets -3 (KIP-734): (largest timestamp, offset of the first record carrying
        it), the first of equals winning, among every record stored, below the log start too, and
        those DeleteRecords removed since the last retention that moved the log start; None when
        none has a timestamp. As Kafka 4.4's UnifiedLog.fetchOffsetByTimestamp, over a log that
        is one segment: the answer may lie below the log start (the local engine's as long as its
        log start is in its first segment)."""
        row = await self.pool.fetchrow(_LARGEST_SO_FAR, self.topic_id, self.partition_index)
        if row is None:
            raise self._missing()
        removed = (row["deleted_max_timestamp"], row["deleted_max_timestamp_offset"]) if row["deleted_max_timestamp"] >= 0 else None
        largest: int | None = row["largest"]
        for scanned in (False, True):
            if scanned:
                largest = await self.pool.fetchval(_LARGEST_KEPT, self.topic_id, self.partition_index)
            # A removed record's offset is below every stored one's: it wins a tie.
            if largest is None or largest < 0 or (removed is not None and removed[0] >= largest):
                return removed
            found = await self._first_reaching(largest, kept_only=False)
            if found is not None and found[0] == largest:
                return found
        return removed

    async def end_offset_for_epoch(self, requested_epoch: int) -> tuple[int, int]:
        """OffsetForLeaderEpoch: (epoch, end offset) of `requested_epoch` as Kafka 4.4's
        LeaderEpochFileCache.endOffsetFor answers over the leader's cache, (-1, -1) when undefined.
        That cache holds the start of every epoch that has records and the leader's own epoch
        (assigned at its election at the log end, Partition.makeLeader: here the partition's
        epoch, starting at its first batch or else at the log end), truncated from the log start
        (truncateFromStart: the entries starting at or below it go, the last of them kept as
        starting at it), then read as `leader_epochs.end_offset_for` reads it."""
        row = await self.pool.fetchrow(_EPOCHS, self.topic_id, self.partition_index)
        if row is None:
            raise self._missing()
        log_start: int = row["log_start_offset"]
        log_end: int = row["next_offset"]
        entries: list[tuple[int, int]] = list(zip(row["epochs"], row["starts"]))
        if not entries or entries[-1][0] < row["leader_epoch"]:
            entries.append((row["leader_epoch"], log_end))
        below = [slot for slot, (_, start) in enumerate(entries) if start <= log_start]
        if below:
            entries = [(entries[below[-1]][0], log_start), *entries[below[-1] + 1:]]
        return end_offset_for(entries, requested_epoch, log_end)

    async def _bounds(self) -> tuple[int, int]:
        row = await self.pool.fetchrow(_BOUNDS, self.topic_id, self.partition_index)
        if row is None:
            raise self._missing()
        return row["log_start_offset"], row["next_offset"]

    async def log_start_offset(self) -> int:
        return (await self._bounds())[0]

    async def high_watermark(self) -> int:
        return (await self._bounds())[1]

    async def delete_records_before(self, offset: int) -> int:
        """DeleteRecords: move the log start offset up to `offset` (-1: the high watermark) and
        delete the batches wholly below it, atomically, remembering their largest record for
        `max_timestamp`. Returns the new log start offset; OFFSET_OUT_OF_RANGE past the high
        watermark. Two round trips (one when the log start stays), more only when another
        DeleteRecords, retention or compaction pass on the partition commits between them."""
        while True:
            row = await self.pool.fetchrow(_DELETE_PLAN, self.topic_id, self.partition_index, offset)
            if row is None:
                raise self._missing()
            if not -1 <= offset <= row["next_offset"]:
                raise KafkaError(ErrorCode.OFFSET_OUT_OF_RANGE, f"cannot delete records up to {offset}")
            old_start: int = row["log_start_offset"]
            new_start = max(old_start, row["next_offset"] if offset == -1 else offset)
            if new_start == old_start:
                return old_start
            removed: tuple[int, int] | tuple[None, None] = (None, None)
            if row["data"] is not None:
                largest: int = row["max_timestamp"]
                for record in iter_records(row["data"]):
                    if record.timestamp >= largest:
                        removed = (record.timestamp, record.offset)
                        break
            moved = await self.pool.fetchval(
                _DELETE_BEFORE, self.topic_id, self.partition_index, new_start, *removed,
                old_start, row["deleted_max_timestamp"], row["first_dirty_offset"],
            )
            if moved:
                return new_start
