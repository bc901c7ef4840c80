"""The broker's storage over PostgreSQL: client topics in the database, the rest as the local engine keeps it.

`PostgresStorage` is a `Storage` (the local engine, in memory or in a data directory) whose
client topics live in PostgreSQL. What is in the database: topics (name, id, partition count,
config overrides), partitions, and their record batches: CreateTopics, DeleteTopics,
CreatePartitions, Metadata's auto-creation, Produce, Fetch, ListOffsets, DeleteRecords, a topic's
DescribeConfigs, AlterConfigs and IncrementalAlterConfigs, the retention timer and the console's
topic pages and message reads go to it. A topic's configs apply as on the local engine:
max.message.bytes, message.timestamp.type=LogAppendTime, the timestamp bounds, retention.ms and
retention.bytes (by whole batch: log.py says how that differs from Kafka's whole segments),
cleanup.policy for retention and DeleteRecords. Idempotent and transactional produce go to it
too: each partition's producer state (epochs, the last five batches' sequences and offsets, open
transactions), the aborted-transaction index and so the last stable offset are in the database,
checked and written by the statement that stores a batch (producers.py), and the transaction
coordinator's COMMIT/ABORT markers are appended to database partitions like any batch. The
group and transaction coordinators' topics, `__consumer_offsets` and `__transaction_state`, are
database topics too (coordinator_topics.py; the broker creates them and reads them whole at start,
and reads a partition of them again when it gains its leadership from another broker; its
coordinators replay that and append through `coordinator_journals`), so group offsets and
metadata, transactions and their timeouts survive a broker started with nothing on its disk; the
producer ids the transaction coordinator hands out come from blocks reserved in the database, never
given twice. SCRAM credentials, ACLs, client quotas, group configs, delegation tokens, finalized
feature levels and dynamic broker configs are in the database too (metadata.py; the server's
stores keep them there, server/security/database.py), and
`__share_group_state` is a database topic as the coordinators' are, and so are the topics share
groups (dead-letter topics) and streams groups (internal topics) create: their coordinators
create them with `create_database_topic` on a task, not through the synchronous `create_topic`,
which writes only the local engine underneath. What is not yet: a database partition's aborted
ranges below the log start never leave the index. Compaction (compaction.py: the local engine's rules, shared, run on
the log cleaner's schedule by `compact_database`, the coordinators' topics included),
compression.type (a batch in another codec is stored recompressed, storage/validator.py's
`recompress`) and producer.id.expiration.ms (`expire_database_producers`) apply as on the local
engine.

The seam the handlers use: `is_async` is True, so a handler collects the partitions to append
to, read or look up and awaits them all at once (each `DatabasePartition` call is one round
trip on the pool, a read by time one per batch it looks into); the local engine, `is_async` False, is called inline as before.
Everything a handler decides synchronously (does the topic exist, its id, partition count, the
bounds a Fetch compares against, a topic's configs) comes from an in-memory catalogue loaded at
start and changed by this broker's own CreateTopics, DeleteTopics, CreatePartitions and config
changes, which it tells the other brokers on the database (`catalogue_changed`; the broker
sends it as a NOTIFY, notify.py). Another broker's changes arrive by NOTIFY too: a topic change
makes the broker `reload_catalogue` (topics, partitions, configs and every partition's bounds),
another broker's append moves a partition's cached bounds (`saw_bounds`). So the catalogue is
exact with one broker per database, and with several it trails the others' changes by one
notification (a reload after the listening connection was lost). Bounds only move forward;
a partition's producer state is checked against the database's at each append, so another
broker's producers are never missed there, but the last stable offset and aborted transactions
a read_committed Fetch sees on a broker that did not append the transactional batches are its
copy's, reloaded only when it appends itself.
"""

from __future__ import annotations


import json
import pathlib
import time
import urllib.parse
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import ClassVar, Protocol

import asyncpg

from ottla.storage.config import LogConfig
from ottla.storage.engine import Storage, TopicInfo
from ottla.storage.handles import DEFAULT_LIMIT
from ottla.storage.log import AppendResult, ReadResult
from ottla.storage.producer_state import AbortedTransaction, ProducerStateManager
from ottla.storage.segment import Chunk
from ottla.storage.validator import RecordRules, recompress
from ottla.storage.postgresql.log import (
    AppendedRange,
    LeaderFence,
    PostgresPartitionLog,
    PreparedAppend,
    RetentionTarget,
    add_partitions,
    create_topic,
    enforce_retention,
    open_pool,
    set_topic_configs,
    take_group,
)
from ottla.storage.postgresql.compaction import DEFAULT_MAP_CAPACITY, clean_partition
from ottla.storage.postgresql.coordinator_topics import CoordinatorJournal
from ottla.storage.postgresql.migrations import SchemaError, migrate
from ottla.storage.postgresql.producers import (
    PartitionProducers,
    ProducerStateMoved,
    load_all_states,
    load_partition_state,
    state_version,
)
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.records import batch_magic, convert_legacy

# What a lost, restarting, full or unwritable database raises: answered KAFKA_STORAGE_ERROR,
# which clients retry after a metadata refresh (Kafka's answer for a log directory that failed).
# A new connection replaces a broken one at the pool's next acquire, so the broker recovers by
# itself. Besides the database going away: a primary demoted to a read-only standby, a lock or
# idle timeout, a deadlock or serialization failure, and privileges revoked, all passing states
# of the database rather than faults of the request.
DATABASE_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.InvalidTransactionStateError,
    asyncpg.TransactionRollbackError,
    asyncpg.LockNotAvailableError,
    asyncpg.InsufficientPrivilegeError,
)


@contextmanager
def _database_errors() -> Iterator[None]:
    try:
        yield
    except DATABASE_UNAVAILABLE as exc:
        raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, f"PostgreSQL is unavailable: {type(exc).__name__}: {exc}") from exc


class DatabaseUnavailable(RuntimeError):
    """The database cannot be used at start: unreachable, refusing us, or of a schema this code cannot use."""


def _without_password(url: str) -> str:
    """The URL as a message may show it."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}@{host}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


_CATALOGUE = """
SELECT t.topic_id, t.name, t.configs::text AS configs, p.partition_index, p.log_start_offset, p.next_offset, p.next_position
FROM topics t JOIN partitions p USING (topic_id)
ORDER BY t.name, p.partition_index
"""
_DELETE_TOPIC = "DELETE FROM topics WHERE topic_id = $1"
# producer.id.expiration.ms: the partitions with producers idle since before $1 and holding no
# open transaction, then each one's expiry under its row's lock (taken first, as an append takes
# it), which moves its producer state version on so that every broker's copy is reloaded.
_EXPIRABLE = "SELECT DISTINCT topic_id, partition_index FROM producers WHERE current_txn_first_offset IS NULL AND last_timestamp <= $1"
_EXPIRE = """
WITH locked AS (
    SELECT topic_id, partition_index FROM partitions WHERE topic_id = $1 AND partition_index = $2 FOR UPDATE
), expired AS (
    DELETE FROM producers e USING locked l
    WHERE e.topic_id = l.topic_id AND e.partition_index = l.partition_index
      AND e.current_txn_first_offset IS NULL AND e.last_timestamp <= $3
    RETURNING e.producer_id
)
UPDATE partitions p SET producer_state_version = p.producer_state_version + 1
FROM locked l
WHERE p.topic_id = l.topic_id AND p.partition_index = l.partition_index AND EXISTS (SELECT 1 FROM expired)
RETURNING p.producer_state_version
"""
# Decisions an append may retake when the producer state moves under it (other brokers'
# appends) before it answers a retriable KAFKA_STORAGE_ERROR.
_ATTEMPTS = 8


class AsyncLock(Protocol):
    """A first-come first-served lock of the caller's event loop (asyncio.Lock: storage
    imports no asyncio of its own, so the broker hands over the factory)."""

    async def __aenter__(self) -> object: ...

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None) -> None: ...


def _ignore(*_: object) -> None:
    return None


class DatabasePartition:
    """One partition in the database, with its bounds as this broker last saw them: at start,
    then after each of its appends and reads. The synchronous attributes (`high_watermark`,
    `log_start_offset`, ...) are those bounds, for the decisions handlers make before any
    round trip (a Fetch at the high watermark parks without one). What the broker's metrics
    and console read of a local log has its honest counterpart: `size` (bytes appended since
    the partition was created, what DeleteRecords and retention deleted included), no segments, and
    `producer_state`, this broker's copy of the partition's producer state (producers.py):
    loaded at start, replaced when an append finds the database's moved on, and changed by this
    broker's appends only once the database has the change. The last stable offset and the
    aborted transactions a read_committed Fetch needs come from it: exact with one broker, and
    on the leader with several, which catches up when another broker's marker ends a transaction
    its copy holds open (server/cluster/database.py)."""

    leader_epoch: int = 0
    segments: tuple[()] = ()

    def __init__(
        self, log: PostgresPartitionLog, log_start_offset: int, high_watermark: int, size: int, appending: AsyncLock, topic_partition: str, config: LogConfig
    ) -> None:
        self.log = log
        self.topic_partition = topic_partition
        self.config = config
        self.log_start_offset = log_start_offset
        self.high_watermark = high_watermark
        self.size = size
        self.producers = PartitionProducers()
        # Group commit: appends asked for while this broker's previous group is being stored
        # queue here, in the order they were asked for, and the first of them to get the lock
        # stores them (up to log.py's GROUP_BYTES) in one statement (`append_group`): one commit
        # where there were as many as appends. One group at a time, so two requests pipelined on a
        # connection never swap places (each statement waits for the previous one's row lock anyway).
        self._appending = appending
        self._queued: list[PreparedAppend] = []
        # Called when this broker's own append or DeleteRecords moved the bounds (the storage
        # sets it: other brokers hear of it from there).
        self.bounds_moved: Callable[[DatabasePartition], None] = _ignore
        # Whose appends alone are stored (a coordinator's journal: log.py's `LeaderFence`);
        # None: anyone's.
        self.fence: LeaderFence | None = None
        # Whether the copy of the producer state is known current enough to take the last
        # stable offset from: not from the moment this broker becomes the partition's leader
        # among several (`unconfirm`: other brokers appended and wrote markers meanwhile)
        # until `confirm` has read the database's again.
        self.producers_confirmed = True
        self._leaderships = 0

    def saw(self, log_start_offset: int, high_watermark: int) -> bool:
        """Bounds another broker's append or DeleteRecords left: whether they moved here."""
        before = (self.log_start_offset, self.high_watermark)
        self._saw(log_start_offset, high_watermark)
        return before != (self.log_start_offset, self.high_watermark)

    @property
    def config(self) -> LogConfig:
        """The topic's config as this broker applies it to appends, DeleteRecords and retention."""
        return self._config

    @config.setter
    def config(self, config: LogConfig) -> None:
        self._config = config
        self._record_rules = RecordRules.of(config, self.topic_partition)

    @property
    def log_end_offset(self) -> int:
        return self.high_watermark

    @property
    def producer_state(self) -> ProducerStateManager:
        return self.producers.state

    @property
    def last_stable_offset(self) -> int:
        """The first offset of the oldest open transaction, or the high watermark."""
        return self.producers.state.last_stable_offset(self.high_watermark, self.log_start_offset)

    def aborted_transactions(self, start_offset: int, end_offset: int) -> list[AbortedTransaction]:
        """Aborted transactions overlapping [start_offset, end_offset), for read_committed fetches."""
        return self.producers.state.aborted_between(start_offset, end_offset)

    def _saw(self, log_start_offset: int, high_watermark: int) -> None:
        # Appends may finish out of order: the bounds only move forward.
        self.log_start_offset = max(self.log_start_offset, log_start_offset)
        self.high_watermark = max(self.high_watermark, high_watermark)

    async def append(self, records: bytes | bytearray | memoryview, from_client: bool = True) -> AppendResult:
        """Store the batches (their offsets assigned by the statement that stores them; an
        idempotent or transactional batch decided by the producer rules and recorded by that
        statement too), with the other appends queued meanwhile. A retried batch is answered
        with its first offsets, as Kafka does. `from_client=False`: the transaction
        coordinator's markers."""
        if self._config.compression_type != "producer":
            legacy = batch_magic(records) in (0, 1)
            records = recompress(bytearray(convert_legacy(records) if legacy else records), self._config.compression_type, from_client,
                                 self._config.max_message_bytes)
        prepared = self.log.prepare(records, self._config, self._record_rules, from_client=from_client)
        self._queued.append(prepared)
        async with self._appending:
            if prepared.outcome is None:
                # The oldest undecided append is this one: those before it were in earlier groups.
                await self._append_group(take_group(self._queued))
        appended = prepared.result()
        if appended.duplicate:
            return AppendResult(appended.base_offset, appended.last_offset, appended.log_append_time_ms, self.log_start_offset)
        self._saw(appended.log_start_offset, appended.last_offset + 1)
        self.size = max(self.size, appended.end_position)
        self.bounds_moved(self)
        return AppendResult(appended.base_offset, appended.last_offset, appended.log_append_time_ms, appended.log_start_offset)

    async def _append_group(self, group: list[PreparedAppend]) -> None:
        """Give every append of the group its outcome: one statement, unless this broker's copy
        of the producer state (or of the log end) is behind the database's: then the copy is
        reloaded and the group decided again. Retries and producer rules' refusals decided on a
        copy that neither the statement nor a reload just confirmed are confirmed against the
        database's version (one round trip) and decided again if it moved. A failure that ends
        the group (the database away) is every undecided append's; one that cancels this task
        leaves them KAFKA_STORAGE_ERROR, their outcome unknown."""
        failure: BaseException = KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, "the append was cancelled: its outcome is unknown")
        try:
            with _database_errors():
                await self._decide(group)
        except Exception as exc:
            failure = exc
        finally:
            for prepared in group:
                if prepared.outcome is None:
                    prepared.outcome = failure

    async def _decide(self, group: list[PreparedAppend]) -> None:
        pending = group
        confirmed = False
        for _ in range(_ATTEMPTS):
            try:
                current = await self.log.append_group(pending, self.producers, self.high_watermark, self.fence)
            except ProducerStateMoved as moved:
                await self._reload_producers(moved.version)
                self.high_watermark = max(self.high_watermark, moved.next_offset)
                confirmed = True
                continue
            for prepared in pending:
                if isinstance(prepared.outcome, AppendedRange) and not prepared.outcome.duplicate:
                    self._saw(prepared.outcome.log_start_offset, prepared.outcome.last_offset + 1)
            doubtful = [prepared for prepared in pending if prepared.doubtful]
            if not doubtful or confirmed or current or not await self._producers_moved():
                return
            for prepared in doubtful:
                prepared.outcome = None
            pending, confirmed = doubtful, True
        for prepared in pending:
            prepared.outcome = KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, f"the producer state of {self.topic_partition} kept moving under this append")

    def unconfirm(self) -> None:
        """This broker now leads the partition among brokers over one database: its copy of the
        producer state may be behind the transactions other brokers opened and the markers they
        wrote, so read_committed reads `confirm` it first (as Kafka's new leader loads the
        producer state before it serves)."""
        self.producers_confirmed = False
        self._leaderships += 1

    async def confirm(self) -> None:
        """Read the database's producer state again if this broker's copy is not confirmed
        since it became the leader. Readers waiting take the appends' lock in turn, so the first
        reads and the others find it confirmed; KafkaError when the database cannot be read,
        and the next reader tries again."""
        if self.producers_confirmed:
            return
        leadership = self._leaderships
        async with self._appending:
            if self.producers_confirmed:
                return
            with _database_errors():
                await self._producers_moved()
            if leadership == self._leaderships:  # not led anew meanwhile: that needs a read of its own
                self.producers_confirmed = True

    async def catch_up_producers(self) -> bool:
        """Replace this broker's copy of the producer state with the database's if another
        broker moved it (the transaction coordinator writes its markers from its own broker, not
        through the leader): whether it did. Taken in turn with this broker's appends, which
        decide on the copy."""
        async with self._appending:
            with _database_errors():
                return await self._producers_moved()

    async def _producers_moved(self) -> bool:
        """Whether the database's producer state is newer than this broker's copy; if so the
        copy is replaced by the database's."""
        version = await state_version(self.log.pool, self.log.topic_id, self.log.partition_index)
        if version is None:
            raise self.log._missing()
        if version == self.producers.version:
            return False
        await self._reload_producers(version)
        return True

    async def _reload_producers(self, version: int) -> None:
        if version == self.producers.version:
            return
        loaded = await load_partition_state(self.log.pool, self.log.topic_id, self.log.partition_index)
        if loaded is None:
            raise self.log._missing()
        producers, next_offset = loaded
        producers.keep_verifications(self.producers)
        self.producers = producers
        self.high_watermark = max(self.high_watermark, next_offset)

    async def read(self, offset: int, max_bytes: int, min_one: bool = True, max_offset: int | None = None) -> ReadResult:
        """Whole batches from the one holding `offset` while they fit in `max_bytes`, the first
        whatever its size (`min_one` is always so here); with `max_offset`, none starting at or
        past it (as the local log's read). At the high watermark as last seen, nothing, without
        a round trip: every append to the partition goes through this broker."""
        if offset == self.high_watermark:
            return ReadResult([], 0, self.high_watermark, self.log_start_offset)
        with _database_errors():
            stored = await self.log.read(offset, max_bytes)
        self._saw(stored.log_start_offset, stored.high_watermark)
        batches = stored.batches
        if max_offset is not None:
            batches = [batch for batch in batches if int.from_bytes(batch[:8], "big") < max_offset]
        chunks: list[Chunk] = list(batches)
        return ReadResult(chunks, sum(len(batch) for batch in batches), stored.high_watermark, stored.log_start_offset)

    async def delete_records(self, offset: int) -> int:
        """DeleteRecords: the log start offset moved up to `offset` (-1: the high watermark) and
        the batches wholly below it deleted, in the database; returns the new log start offset."""
        with _database_errors():
            log_start_offset = await self.log.delete_records_before(offset)
        self._saw(log_start_offset, log_start_offset)
        self.bounds_moved(self)
        return log_start_offset

    async def offset_for_timestamp(self, timestamp: int) -> tuple[int, int] | None:
        """ListOffsets by time: (timestamp, offset) of the first record at or after it."""
        with _database_errors():
            return await self.log.offset_for_timestamp(timestamp)

    async def max_timestamp(self) -> tuple[int, int] | None:
        """ListOffsets -3: (largest timestamp, offset of the first record carrying it)."""
        with _database_errors():
            return await self.log.max_timestamp()

    async def end_offset_for_epoch(self, leader_epoch: int) -> tuple[int, int]:
        """OffsetForLeaderEpoch: (epoch, end offset) of `leader_epoch` from the partition's epoch
        history in the database, (-1, -1) when undefined (log.py's `end_offset_for_epoch`)."""
        with _database_errors():
            return await self.log.end_offset_for_epoch(leader_epoch)


class PostgresStorage(Storage):
    """Client topics in PostgreSQL over the local engine's (see the module docstring).
    Open it with `connect`; `close_database` releases the pool."""

    is_async: ClassVar[bool] = True

    def __init__(
        self,
        pool: asyncpg.Pool,
        lock: Callable[[], AsyncLock],
        data_dir: pathlib.Path | None,
        max_open_files: int = DEFAULT_LIMIT,
        defaults: Mapping[str, str] | None = None,
        more_dirs: Sequence[pathlib.Path] = (),
        producer_expiration_ms: int | None = None,
    ) -> None:
        super().__init__(data_dir, max_open_files, defaults, more_dirs, producer_expiration_ms)
        self.pool = pool
        self._lock = lock
        self._database_topics: dict[str, TopicInfo] = {}
        self._database_by_id: dict[bytes, TopicInfo] = {}
        self._database_partitions: dict[tuple[str, int], DatabasePartition] = {}
        # Counts this broker's own changes of the catalogue, each made in the database first:
        # a reload applies only a read that no such change landed here during.
        self._changes_here = 0
        # The coordinators' topics' journals by topic name, opened by the broker before the
        # coordinators (coordinator_topics.py): their appends go through them.
        self.coordinator_journals: dict[str, CoordinatorJournal] = {}
        # Told of this broker's own changes, for the other brokers on the database to hear:
        # a partition's bounds after an append or DeleteRecords, and any change of topics.
        self.bounds_moved: Callable[[DatabasePartition], None] = _ignore
        self.catalogue_changed: Callable[[], None] = _ignore

    @classmethod
    async def connect(
        cls,
        url: str,
        lock: Callable[[], AsyncLock],
        data_dir: pathlib.Path | None,
        max_open_files: int = DEFAULT_LIMIT,
        defaults: Mapping[str, str] | None = None,
        more_dirs: Sequence[pathlib.Path] = (),
        meta_properties: Mapping[str, str] | None = None,
        producer_expiration_ms: int | None = None,
    ) -> PostgresStorage:
        """Connect, bring the schema up to date, open the local part (`lock` makes the
        event loop's locks, asyncio.Lock) and load the database's topics, less the producers
        already expired by `producer_expiration_ms`. DatabaseUnavailable when the server cannot
        be reached or its schema is not one this code can use (SchemaError's message says which)."""
        try:
            pool = await open_pool(url)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise DatabaseUnavailable(f"cannot connect to PostgreSQL at {_without_password(url)}: {exc}") from exc
        try:
            async with pool.acquire() as connection:
                await migrate(connection)
            storage = cls(pool, lock, data_dir, max_open_files, defaults, more_dirs, producer_expiration_ms)
            if data_dir is not None:
                storage._load(meta_properties or {})
            await storage._load_catalogue()
            if producer_expiration_ms is not None:
                await storage._expire_producers(int(time.time() * 1000), producer_expiration_ms)
        except BaseException as exc:
            await pool.close()
            if isinstance(exc, (SchemaError, asyncpg.PostgresError)):
                raise DatabaseUnavailable(f"cannot use PostgreSQL at {_without_password(url)}: {exc}") from exc
            raise
        return storage

    async def _load_catalogue(self) -> None:
        partitions: dict[str, list[DatabasePartition]] = {}
        for row in await self.pool.fetch(_CATALOGUE):
            topic_id: uuid.UUID = row["topic_id"]
            name: str = row["name"]
            if name not in self._database_topics:
                self._database_topics[name] = TopicInfo(name, topic_id.bytes, 0, json.loads(row["configs"]))
            index = row["partition_index"]
            log = PostgresPartitionLog(self.pool, topic_id, index)
            config = self._config_of(self._database_topics[name].configs)
            partitions.setdefault(name, []).append(
                DatabasePartition(log, row["log_start_offset"], row["next_offset"], row["next_position"], self._lock(), f"{name}-{index}", config)
            )
        for name, found in partitions.items():
            info = self._database_topics[name]
            self._add(TopicInfo(name, info.topic_id, len(found), info.configs), found)
        by_id = {(partition.log.topic_id, partition.log.partition_index): partition for partition in self._database_partitions.values()}
        for key, producers in (await load_all_states(self.pool)).items():
            if key in by_id:
                by_id[key].producers = producers

    def _config_of(self, overrides: Mapping[str, str]) -> LogConfig:
        return LogConfig.from_overrides({**self.defaults, **overrides})

    def _new_partitions(self, info: TopicInfo, indexes: range) -> list[DatabasePartition]:
        """Empty partitions of a topic, as CreateTopics and CreatePartitions make them."""
        config = self._config_of(info.configs)
        topic_id = uuid.UUID(bytes=info.topic_id)
        return [DatabasePartition(PostgresPartitionLog(self.pool, topic_id, index), 0, 0, 0, self._lock(), f"{info.name}-{index}", config) for index in indexes]

    def _add(self, info: TopicInfo, partitions: list[DatabasePartition], first_index: int = 0) -> None:
        self._database_topics[info.name] = info
        self._database_by_id[info.topic_id] = info
        for index, partition in enumerate(partitions, first_index):
            partition.bounds_moved = self._bounds_moved
            self._database_partitions[(info.name, index)] = partition
        self.topics_version += 1

    def _bounds_moved(self, partition: DatabasePartition) -> None:
        self.bounds_moved(partition)

    def _forget(self, info: TopicInfo) -> None:
        """A deleted topic out of the catalogue (if it is still the one there), the
        `deletion_listeners` told: whichever broker deleted it."""
        current = self._database_topics.get(info.name)
        if current is None or current.topic_id != info.topic_id:
            return
        del self._database_topics[info.name]
        del self._database_by_id[info.topic_id]
        for index in range(current.partitions):
            del self._database_partitions[(info.name, index)]
        self.topics_version += 1
        for listener in self.deletion_listeners:
            listener(current)

    async def reload_catalogue(self) -> list[tuple[str, int]]:
        """Bring the catalogue to the database's: topics another broker created, deleted,
        grew or reconfigured, and every partition's bounds (which only move forward).
        Returns the partitions whose bounds moved, for their parked fetches to be woken.

        A read begun before a change of this broker's was committed, and back after that change
        was applied here, would undo it (a topic just created forgotten, one deleted back): it
        is read again."""
        while True:
            changes = self._changes_here
            with _database_errors():
                rows = await self.pool.fetch(_CATALOGUE)
            if changes == self._changes_here:
                break
        found: dict[str, tuple[uuid.UUID, dict[str, str], list[asyncpg.Record]]] = {}
        for row in rows:
            entry = found.setdefault(row["name"], (row["topic_id"], json.loads(row["configs"]), []))
            entry[2].append(row)
        for name, known in list(self._database_topics.items()):
            seen = found.get(name)
            if seen is None or seen[0].bytes != known.topic_id:
                self._forget(known)
        moved: list[tuple[str, int]] = []
        for name, (topic_id, configs, partition_rows) in found.items():
            info = self._database_topics.get(name)
            if info is None:
                info = TopicInfo(name, topic_id.bytes, 0, configs)
                self._add(info, [])
            if info.configs != configs:
                info = TopicInfo(name, info.topic_id, info.partitions, configs)
                self._database_topics[name] = self._database_by_id[info.topic_id] = info
                config = self._config_of(configs)
                for index in range(info.partitions):
                    self._database_partitions[(name, index)].config = config
                self.topics_version += 1
            if len(partition_rows) > info.partitions:
                grown = TopicInfo(name, info.topic_id, len(partition_rows), configs)
                self._add(grown, self._new_partitions(grown, range(info.partitions, grown.partitions)), info.partitions)
            for row in partition_rows:
                partition = self._database_partitions[(name, row["partition_index"])]
                partition.size = max(partition.size, row["next_position"])
                if partition.saw(row["log_start_offset"], row["next_offset"]):
                    moved.append((name, row["partition_index"]))
        return moved

    def saw_bounds(self, topic_id: uuid.UUID, index: int, high_watermark: int, log_start_offset: int) -> tuple[str, int] | None:
        """Bounds another broker's append left on a partition: the partition, if they moved
        it here (a partition this catalogue does not know yet is left to its reload)."""
        info = self._database_by_id.get(topic_id.bytes)
        if info is None or index >= info.partitions:
            return None
        if self._database_partitions[(info.name, index)].saw(log_start_offset, high_watermark):
            return info.name, index
        return None

    def check_name_free(self, name: str, siblings: Collection[str] = ()) -> None:
        """Storage.check_name_free over the database's topics as well as the local part's: a
        name of the catalogue is TOPIC_ALREADY_EXISTS, one differing from it only by '.' and '_'
        INVALID_TOPIC, as Kafka's controller refuses it (ReplicationControlManager's
        validateNewTopicNames), unless it is one of `siblings`. The catalogue trails other
        brokers' creations by one notification: a name another broker took meanwhile is the
        database's to refuse (its unique topic name), a colliding one is not refused."""
        if name in self._database_topics:
            raise KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists.")
        super().check_name_free(name, siblings)
        if "." in name or "_" in name:
            unified = name.replace(".", "_")
            for existing in self._database_topics:
                if existing.replace(".", "_") == unified and existing not in siblings:
                    raise KafkaError(ErrorCode.INVALID_TOPIC, f"Topic '{name}' collides with existing topic: {existing}")

    async def create_database_topic(
        self, name: str, partitions: int, configs: dict[str, str] | None = None, request: uuid.UUID | None = None
    ) -> TopicInfo:
        """CreateTopics: the topic and its partitions in one transaction, then in the catalogue.
        The name is judged (`check_name_free`) against the catalogue as the coroutine starts,
        before its first round trip: the topics of one request, created together
        (asyncio.gather), are each judged before any of them joins it, so that `t.1` and `t_1`
        asked together are both created, as Kafka 4.4's controller creates them. With `request`
        (shared by one request's topics) the database judges a colliding name again, against
        topics the catalogue has not heard of yet (log.create_topic)."""
        self.check_name_free(name)
        if partitions <= 0:
            raise KafkaError(ErrorCode.INVALID_PARTITIONS, f"number of partitions must be positive, got {partitions}")
        overrides = dict(configs or {})
        with _database_errors():
            try:
                topic_id = await create_topic(self.pool, name, partitions, overrides, request)
            except KafkaError as exc:
                if exc.code in (ErrorCode.TOPIC_ALREADY_EXISTS, ErrorCode.INVALID_TOPIC):
                    # Another broker's, not heard of yet: known here from now on.
                    await self.reload_catalogue()
                raise
        info = TopicInfo(name, topic_id.bytes, partitions, overrides)
        self._add(info, self._new_partitions(info, range(partitions)))
        self._changes_here += 1
        self.catalogue_changed()
        return info

    def _database_topic(self, name: str) -> TopicInfo:
        info = self._database_topics.get(name)
        if info is None:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"unknown topic {name!r}")
        return info

    async def set_database_topic_configs(self, name: str, configs: Mapping[str, str]) -> TopicInfo:
        """AlterConfigs and IncrementalAlterConfigs: replace the topic's overrides in the
        database, then apply them to its partitions here (the next append, DeleteRecords and
        retention pass use them)."""
        info = self._database_topic(name)
        overrides = dict(configs)
        config = self._config_of(overrides)
        with _database_errors():
            await set_topic_configs(self.pool, uuid.UUID(bytes=info.topic_id), overrides)
        current = self._database_topics.get(name)
        if current is None or current.topic_id != info.topic_id:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"topic {name!r} was deleted meanwhile")
        updated = TopicInfo(name, info.topic_id, current.partitions, overrides)
        self._database_topics[name] = self._database_by_id[info.topic_id] = updated
        self.topics_version += 1
        for index in range(updated.partitions):
            self._database_partitions[(name, index)].config = config
        self._changes_here += 1
        self.catalogue_changed()
        return updated

    async def add_database_partitions(self, name: str, total: int) -> TopicInfo:
        """CreatePartitions: the new partitions' rows in the database, empty, then here."""
        info = self._database_topic(name)
        if total <= info.partitions:
            raise KafkaError(ErrorCode.INVALID_PARTITIONS, f"topic {name!r} has {info.partitions} partitions, cannot grow to {total}")
        with _database_errors():
            existing = await add_partitions(self.pool, uuid.UUID(bytes=info.topic_id), total)
        current = self._database_topics.get(name)
        if current is None or current.topic_id != info.topic_id:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"topic {name!r} was deleted meanwhile")
        # `existing` partitions were in the database: any this catalogue lacked were added by
        # another broker, and are taken up with the new ones.
        known = current.partitions
        updated = TopicInfo(name, info.topic_id, total, current.configs)
        self._add(updated, self._new_partitions(updated, range(known, total)), known)
        self._changes_here += 1
        self.catalogue_changed()
        return updated

    def set_defaults(self, defaults: Mapping[str, str]) -> None:
        """The local part's, then every database partition without its own override of a key
        takes the new value."""
        super().set_defaults(defaults)
        configs = {name: self._config_of(info.configs) for name, info in self._database_topics.items()}
        for (name, _), partition in self._database_partitions.items():
            partition.config = configs[name]

    async def enforce_database_retention(self, now_ms: int) -> int:
        """One retention pass over the database partitions whose policy has `delete` and that
        have retention.ms or retention.bytes: one statement for all (log.enforce_retention).
        Returns the number of partitions whose log start moved."""
        targets: list[RetentionTarget] = []
        by_key: dict[tuple[uuid.UUID, int], DatabasePartition] = {}
        for partition in self._database_partitions.values():
            config = partition.config
            if not config.delete or (config.retention_ms < 0 and config.retention_bytes < 0):
                continue
            log = partition.log
            targets.append(
                RetentionTarget(
                    log.topic_id,
                    log.partition_index,
                    now_ms - config.retention_ms if config.retention_ms >= 0 else None,
                    config.retention_bytes if config.retention_bytes >= 0 else None,
                )
            )
            by_key[(log.topic_id, log.partition_index)] = partition
        with _database_errors():
            moved = await enforce_retention(self.pool, targets)
        for key, log_start_offset in moved.items():
            by_key[key]._saw(log_start_offset, log_start_offset)
        return len(moved)

    async def compact_database(self, now_ms: int, map_capacity: int = DEFAULT_MAP_CAPACITY) -> int:
        """One pass of the log cleaner over the database partitions whose cleanup.policy has
        `compact`, a partition at a time (compaction.py), each pass's offset map holding at
        most `map_capacity` keys; returns the records removed. The aborted transactions a pass
        forgot leave this broker's copy of the producer state at once (read_committed fetches
        stop listing them); other brokers' copies follow at their next append (the version moved)."""
        removed = 0
        for partition in list(self._database_partitions.values()):
            if partition.config.compact:
                log = partition.log
                with _database_errors():
                    cleaned = await clean_partition(self.pool, log.topic_id, log.partition_index, partition.config, now_ms, map_capacity)
                removed += cleaned.removed
                version = cleaned.producer_state_version
                if version is not None:
                    state = partition.producers.state
                    state.aborted = [entry for entry in state.aborted if entry.last_offset not in cleaned.forgotten_aborts]
                    if partition.producers.version == version - 1:  # else an older copy, reloaded at its next append
                        partition.producers.version = version
        return removed

    async def expire_database_producers(self, now_ms: int, expiration_ms: int) -> int:
        """producer.id.expiration.ms over the database partitions: producers idle that long and
        holding no open transaction are forgotten, as the local engine's `expire_producers`.
        This broker's copies follow at once; other brokers' reload theirs at their next append
        (the version moved). Returns the number of partitions that forgot a producer."""
        with _database_errors():
            return await self._expire_producers(now_ms, expiration_ms)

    async def _expire_producers(self, now_ms: int, expiration_ms: int) -> int:
        """`expire_database_producers`, its database errors raised as they are. `connect` runs
        it before the broker serves: a partition's state is opened then, and Kafka's
        ProducerStateManager.loadFromSnapshot drops the producers already expired as it opens
        a log, so a retry from one is appended, not taken for a duplicate."""
        cutoff = now_ms - expiration_ms
        by_id = {(partition.log.topic_id, partition.log.partition_index): partition for partition in self._database_partitions.values()}
        expired = 0
        for row in await self.pool.fetch(_EXPIRABLE, cutoff):
            key = (row["topic_id"], row["partition_index"])
            version = await self.pool.fetchval(_EXPIRE, *key, cutoff)
            if version is None:
                continue
            expired += 1
            partition = by_id.get(key)
            if partition is not None and partition.producers.version == version - 1:
                partition.producers.state.expire(now_ms, expiration_ms)
                partition.producers.version = version
        return expired

    async def delete_database_topic(self, name: str) -> None:
        """DeleteTopics: the topic, its partitions and batches in one statement; a topic of the
        local part (an internal one) is deleted there."""
        info = self._database_topics.get(name)
        if info is None:
            super().delete_topic(name)
            return
        with _database_errors():
            await self.pool.execute(_DELETE_TOPIC, uuid.UUID(bytes=info.topic_id))
        # Another DeleteTopics may have finished first while this one waited.
        self._forget(info)
        self._changes_here += 1
        self.catalogue_changed()

    def delete_topic(self, name: str, now_ms: int | None = None) -> None:
        if name in self._database_topics:
            raise KafkaError(ErrorCode.INVALID_REQUEST, f"topic {name!r} is in PostgreSQL: delete it with DeleteTopics")
        super().delete_topic(name, now_ms)

    def topic(self, name: str) -> TopicInfo | None:
        info = self._topics.get(name)
        return info if info is not None else self._database_topics.get(name)

    def topic_by_id(self, topic_id: bytes) -> TopicInfo | None:
        info = self._by_id.get(topic_id)
        return info if info is not None else self._database_by_id.get(topic_id)

    def topics(self) -> list[TopicInfo]:
        return [*self._topics.values(), *self._database_topics.values()]

    def is_database_topic(self, name: str) -> bool:
        return name in self._database_topics

    def partition(self, topic: str, index: int) -> DatabasePartition:  # type: ignore[override]
        """A database partition, or the local part's log for an internal topic. Handlers
        that await (Produce, Fetch, ListOffsets) tell them apart with `is_database_topic`."""
        partition = self._database_partitions.get((topic, index))
        if partition is not None:
            return partition
        return super().partition(topic, index)  # type: ignore[return-value]

    async def close_database(self) -> None:
        await self.pool.close()
