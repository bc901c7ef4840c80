"""Producer state of a PostgreSQL partition: idempotence, transactions, the LSO and the aborted index.

The rules are the local engine's, run in Python on a `ProducerStateManager`
(storage/producer_state.py), not written again in SQL. What makes them safe with several
brokers on one database is where the outcome is written: `PartitionProducers` is this broker's
copy of the partition's state, current as of the partition row's `producer_state_version`; a
group of appends is decided against the copy (`plan`, each append on the decisions before it, a
refusal or a retry its own), then the one statement that stores the batches writes
the changed producers and aborted ranges and advances the version, only if the row still has
the version and the log end offset the decision was made against (checked under the row's
lock). Otherwise it writes nothing and answers `ProducerStateMoved`: the caller reloads the
state (`load_partition_state`) and decides again. So a sequence is accepted once, whoever asks.

A duplicate or a refusal is decided without writing; the caller confirms the copy is current
before answering one it decided on a copy it has not just loaded or written.

The verifications this broker started (ProducerStateManager.start_verification) live in its
copy alone, as Kafka keeps them in the leader's memory: an append decided on them uses them up
once written. A copy replaced by the database's (another broker's marker moved the state) keeps
those of the producers the database shows unchanged (`keep_verifications`): the leader is the
same, so Kafka's would still hold them, and dropping one would let a batch land ahead of the
lower sequence its verification waits for.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import asyncpg

from ottla.storage.producer_state import BatchMetadata, ProducerStateManager, end_txn_marker
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.records import BatchHeader

# What the producer rules answer; a copy that was stale may have answered them wrongly.
PRODUCER_ERRORS = frozenset(
    {ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, ErrorCode.INVALID_PRODUCER_EPOCH, ErrorCode.INVALID_TXN_STATE}
)
NO_CHANGES = "[]"


class ProducerStateMoved(Exception):
    """The partition's producer state or log end moved since this broker's copy: nothing was
    written; `next_offset` and `version` are the row's now."""

    def __init__(self, next_offset: int, version: int) -> None:
        super().__init__(f"producer state moved to version {version} at offset {next_offset}")
        self.next_offset = next_offset
        self.version = version


@dataclass(slots=True, frozen=True)
class PlannedAppend:
    """One append as the producer rules see it: its batches with a producer id (headers with
    base offsets relative to the append, max timestamps as stored) and how many offsets it takes."""

    batches: Sequence[tuple[BatchHeader, memoryview]]
    count: int
    from_client: bool = True  # False: a coordinator's own write (ProducerStateManager.check)


@dataclass(slots=True, frozen=True)
class ProducerWrite:
    """What an append changes in the producer state, as the append statement's parameters
    ($18..$21 of log.py's `_APPEND`), and the decided state to adopt once it is written."""

    expected_next_offset: int
    expected_version: int
    producers: str
    aborted: str
    decided: ProducerStateManager
    # Producers whose verification the stored appends used up.
    verified: frozenset[int]


# The snapshot form ProducerStateManager.load reads (its `snapshot()`), built in the database:
# one statement, so the version, producers and aborted ranges are of one snapshot.
_STATE_COLUMNS = """
p.producer_state_version, p.next_offset, jsonb_build_object(
    'producers', coalesce((
        SELECT jsonb_object_agg(e.producer_id::text, jsonb_build_array(
            e.producer_epoch, e.current_txn_first_offset, e.last_timestamp, e.batches, e.coordinator_epoch))
        FROM producers e WHERE e.topic_id = p.topic_id AND e.partition_index = p.partition_index), '{}'::jsonb),
    'aborted', coalesce((
        SELECT jsonb_agg(jsonb_build_array(a.producer_id, a.first_offset, a.last_offset, a.last_stable_offset) ORDER BY a.last_offset)
        FROM aborted_transactions a WHERE a.topic_id = p.topic_id AND a.partition_index = p.partition_index), '[]'::jsonb)
)::text AS state
"""
_PARTITION_STATE = f"SELECT {_STATE_COLUMNS} FROM partitions p WHERE p.topic_id = $1 AND p.partition_index = $2"
# At start: every partition that ever had producer state.
_ALL_STATES = f"SELECT p.topic_id, p.partition_index, {_STATE_COLUMNS} FROM partitions p WHERE p.producer_state_version > 0"
_VERSION = "SELECT producer_state_version FROM partitions WHERE topic_id = $1 AND partition_index = $2"


class PartitionProducers:
    """This broker's copy of one partition's producer state, current as of `version`. Not
    thread-safe: the caller decides and stores one group of appends to the partition at a time."""

    def __init__(self, state: ProducerStateManager | None = None, version: int = 0) -> None:
        self.state = ProducerStateManager() if state is None else state
        self.version = version

    def plan(self, appends: Sequence[PlannedAppend], next_offset: int) -> tuple[list[BatchMetadata | KafkaError | None], ProducerWrite | None]:
        """Decide appends that follow one another at `next_offset`, in order, as if each were
        stored before the next is decided: each append's outcome is None (stored, taking its
        `count` offsets), the original of a retried batch (BatchMetadata: store nothing, answer
        with its offsets) or the rules' KafkaError (INVALID_PRODUCER_EPOCH,
        OUT_OF_ORDER_SEQUENCE_NUMBER, INVALID_TXN_STATE) for that append alone; and the write
        that records the stored ones' producer changes (None: they change nothing). A retry or a
        refusal takes no offsets, so the appends after it move down. Each append is decided on
        a scratch copy of the decisions before it and kept only if all its batches pass, so a
        producer's second batch follows its first, as the local engine's `_check_producers`."""
        decided = ProducerStateManager()
        decided.ongoing = dict(self.state.ongoing)
        decided.verifications = dict(self.state.verifications)
        outcomes: list[BatchMetadata | KafkaError | None] = []
        end = next_offset
        changed = False
        for append in appends:
            if not append.batches:
                outcomes.append(None)
                end += append.count
                continue
            producer_ids = {header.producer_id for header, _ in append.batches}
            trial = self._scratch(producer_ids, decided)
            try:
                outcome = _decide(trial, append, end)
            except KafkaError as exc:
                outcomes.append(exc)
                continue
            outcomes.append(outcome)
            if outcome is None:
                decided.producers.update(trial.producers)
                decided.ongoing = trial.ongoing
                decided.aborted.extend(trial.aborted)
                for producer_id in producer_ids - trial.verifications.keys():
                    decided.verifications.pop(producer_id, None)
                end += append.count
                changed = True
        if not changed:
            return outcomes, None
        producers = [
            {
                "producer_id": producer_id, "producer_epoch": entry.epoch, "current_txn_first_offset": entry.current_txn_first_offset,
                "last_timestamp": entry.last_timestamp, "coordinator_epoch": entry.coordinator_epoch,
                "batches": [[b.first_seq, b.last_seq, b.first_offset, b.last_offset, b.timestamp] for b in entry.batches],
            }
            for producer_id, entry in decided.producers.items()
        ]
        aborted = [
            {"producer_id": a.producer_id, "first_offset": a.first_offset, "last_offset": a.last_offset, "last_stable_offset": a.last_stable_offset}
            for a in decided.aborted
        ]
        verified = frozenset(self.state.verifications.keys() - decided.verifications.keys())
        write = ProducerWrite(next_offset, self.version, json.dumps(producers), json.dumps(aborted) if aborted else NO_CHANGES, decided, verified)
        return outcomes, write

    def _scratch(self, producer_ids: set[int], decided: ProducerStateManager) -> ProducerStateManager:
        """A state holding copies of these producers' entries (as `decided` left them, else as
        this copy has them), their verifications and the open transactions, and no aborted
        ranges: what an append may change, and nothing else."""
        scratch = ProducerStateManager()
        for producer_id in producer_ids:
            entry = decided.producers.get(producer_id) or self.state.producers.get(producer_id)
            if entry is not None:
                scratch.producers[producer_id] = replace(entry, batches=list(entry.batches))
        scratch.ongoing = dict(decided.ongoing)
        scratch.verifications = {pid: decided.verifications[pid] for pid in producer_ids if pid in decided.verifications}
        return scratch

    def keep_verifications(self, replaced: PartitionProducers) -> None:
        """This copy, just loaded from the database, replaces `replaced`: take over its
        verifications of the producers whose entries are as `replaced` had them (nothing of theirs
        appended since). One whose entry moved may have had a transactional batch appended, which
        ends a verification (UnifiedLog's clearVerificationStateEntry): it is dropped."""
        for producer_id, verification in replaced.state.verifications.items():
            if self.state.producers.get(producer_id) == replaced.state.producers.get(producer_id):
                self.state.verifications.setdefault(producer_id, verification)

    def adopt(self, write: ProducerWrite, version: int) -> None:
        """The write is in the database, at `version`: take its decisions as this copy's."""
        self.state.producers.update(write.decided.producers)
        self.state.ongoing = write.decided.ongoing
        self.state.aborted.extend(write.decided.aborted)
        for producer_id in write.verified:
            self.state.verifications.pop(producer_id, None)
        self.version = version


def _decide(trial: ProducerStateManager, append: PlannedAppend, base_offset: int) -> BatchMetadata | None:
    """One append's batches decided in turn on `trial` at `base_offset`: the original of the
    first retried batch (trial then holds a partial decision, to be dropped), or None."""
    end = base_offset + append.count
    for relative, batch in append.batches:
        header = replace(relative, base_offset=base_offset + relative.base_offset)
        duplicate = trial.check(header, append.from_client)
        if duplicate is not None:
            return duplicate
        trial.record(header, end, end_txn_marker(batch) if header.is_control else None)
    return None


def _state(row: asyncpg.Record) -> PartitionProducers:
    return PartitionProducers(ProducerStateManager.load(row["state"].encode()), row["producer_state_version"])


async def load_partition_state(pool: asyncpg.Pool, topic_id: uuid.UUID, partition_index: int) -> tuple[PartitionProducers, int] | None:
    """The partition's producer state as the database has it, and its log end offset; None
    when the partition is gone."""
    row = await pool.fetchrow(_PARTITION_STATE, topic_id, partition_index)
    return None if row is None else (_state(row), row["next_offset"])


async def load_all_states(connection: asyncpg.Connection | asyncpg.Pool) -> dict[tuple[uuid.UUID, int], PartitionProducers]:
    """Every partition's producer state that is not empty, by (topic id, partition)."""
    rows: list[Any] = await connection.fetch(_ALL_STATES)
    return {(row["topic_id"], row["partition_index"]): _state(row) for row in rows}


async def state_version(pool: asyncpg.Pool, topic_id: uuid.UUID, partition_index: int) -> int | None:
    """The partition's producer state version now; None when the partition is gone."""
    version: int | None = await pool.fetchval(_VERSION, topic_id, partition_index)
    return version
