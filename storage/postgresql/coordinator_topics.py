"""The coordinators' topics and producer ids in PostgreSQL: what a broker needs of them at start.

The coordinators (groups, transactions) keep their state as records in internal topics and
rebuild it by replaying them at load, synchronously. Over PostgreSQL those topics are database
topics like any other (their batches in `batches`, readable by any client), so a broker started
on another machine, with nothing on its disk, finds every group offset and transaction there.
Because the replay is synchronous and a database read is not, `load_topic` reads a topic's
partitions whole before its coordinator opens (`LoadedPartition` then serves them to the replay);
the coordinators' appends later go through a `CoordinatorJournal`, which the broker implements
with its event loop (storage imports no asyncio).

Producer ids are handed out in blocks reserved by one statement (`reserve_producer_ids`): the
row's lock serializes brokers, so no id is ever given twice, across restarts or brokers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import asyncpg

from ottla.storage.engine import TopicInfo
from ottla.storage.log import ReadResult
from ottla.storage.postgresql.log import StoredRead
from ottla.wire.errors import ErrorCode, KafkaError

_LOAD_READ_BYTES = 1 << 20

_RESERVE_PRODUCER_IDS = "UPDATE producer_id_block SET next_producer_id = next_producer_id + $1 RETURNING next_producer_id - $1"


class CoordinatorJournal(Protocol):
    """A coordinator topic's appends, synchronous for the coordinator: each batch is written to
    the partition in the order appended, and the broker holds an answer until the batches
    appended before it are written. `loaded` is what the partition held when last read (at
    start, or when this broker gained its leadership), `loading` whether it is being read
    again (`loading_any`: whether any partition is); `leads` whether this broker leads the
    partition (coordinates its keys): only then are its appends written, so that brokers sharing
    the database never write over the coordinator's records (but for a topic whose keys each
    broker writes for what it owns, the share groups' state). `reload` reads the partition
    again, then calls `replay(partition)`."""

    def append(self, partition: int, batch: bytes) -> None: ...

    async def reload(self, partition: int, replay: Callable[[int], None]) -> None: ...

    def leads(self, partition: int) -> bool: ...

    def loaded(self, partition: int) -> LoadedPartition: ...

    def loading(self, partition: int) -> bool: ...

    def loading_any(self) -> bool: ...


class _StoredLog(Protocol):
    """What `load_partition` reads of log.PostgresPartitionLog: the database's batches, not a broker's copy of the bounds."""

    async def read(self, offset: int, max_bytes: int) -> StoredRead: ...


class _DatabasePartition(Protocol):
    """What `load_partition` reads of engine.DatabasePartition (engine.py imports this module)."""

    log_start_offset: int

    @property
    def log(self) -> _StoredLog: ...


class _DatabaseTopics(Protocol):
    """What `load_topic` needs of engine.PostgresStorage."""

    def topic(self, name: str) -> TopicInfo | None: ...

    async def create_database_topic(self, name: str, partitions: int, configs: dict[str, str] | None = None) -> TopicInfo: ...

    def partition(self, topic: str, index: int) -> _DatabasePartition: ...


@dataclass(slots=True, frozen=True)
class LoadedPartition:
    """A database partition's batches as read at start, read back synchronously by the replay
    as a local log is (`log_start_offset`, `log_end_offset`, `read`)."""

    log_start_offset: int
    log_end_offset: int
    data: bytes

    def read(self, offset: int, max_bytes: int) -> ReadResult:
        """Every batch loaded: the replay skips those below `offset` itself."""
        return ReadResult([self.data], len(self.data), self.log_end_offset, self.log_start_offset)


async def load_topic(storage: _DatabaseTopics, name: str, partitions: int, configs: Mapping[str, str]) -> list[LoadedPartition]:
    """The coordinator topic `name` created in the database if missing (an existing one keeps
    its partition count: a key's partition must never move), then each partition read whole."""
    info = storage.topic(name)
    if info is None:
        try:
            info = await storage.create_database_topic(name, partitions, dict(configs))
        except KafkaError as exc:
            # Another broker starting at the same time created it first: the catalogue has it now.
            info = storage.topic(name)
            if exc.code is not ErrorCode.TOPIC_ALREADY_EXISTS or info is None:
                raise
    return [await load_partition(storage, name, index) for index in range(info.partitions)]


async def load_partition(storage: _DatabaseTopics, name: str, index: int) -> LoadedPartition:
    """Partition `index` of the coordinator topic `name`, read whole from the database (read
    even when this broker's bounds say it is empty: another broker may have appended since)."""
    partition = storage.partition(name, index)
    read = await partition.log.read(partition.log_start_offset, _LOAD_READ_BYTES)
    chunks: list[bytes] = []
    start = end = read.log_start_offset
    while read.batches:
        chunks.extend(read.batches)
        last = chunks[-1]
        end = int.from_bytes(last[:8], "big") + int.from_bytes(last[23:27], "big") + 1
        if end >= read.high_watermark:
            break
        read = await partition.log.read(end, _LOAD_READ_BYTES)
    return LoadedPartition(start, max(end, read.high_watermark), b"".join(chunks))


async def reserve_producer_ids(pool: asyncpg.Pool, count: int) -> int:
    """The first of `count` producer ids no broker has been or will be given."""
    first: int = await pool.fetchval(_RESERVE_PRODUCER_IDS, count)
    return first
