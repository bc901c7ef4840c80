"""The PostgreSQL engine's cleaner and topic names as the local engine's, which follow Kafka 4.4:
a pass maps at most the broker's offset-map capacity of keys and a full map stops it where
Kafka's stops (Cleaner.doClean's endOffset); an aborted transaction's row goes at the pass that
reads its ABORT marker with no batch of its transaction left (CleanedTransactionMetadata); and
a name differing from an existing topic's only by '.' and '_' is refused, while two such names
asked in one request are both created (ReplicationControlManager.validateNewTopicNames). Each
against a private PostgreSQL server; the cleaner's results are compared with the local engine's
on the same batches, rolled by record time (segment.ms) on both."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kafka_wire import RawClient

from compat.harness import OttlaBroker
from ottla.server.config import BrokerConfig
from ottla.server.log_maintenance import LogMaintenance
from ottla.storage import Storage
from ottla.storage.postgresql.engine import PostgresStorage
from ottla.storage.producer_state import control_batch
from ottla.wire.records import Record, build_batch, iter_records, scan_batches
from tests.server.test_collision_chars_one_request import create_one_partition_topics, metadata_auto_creating

# Rolls by record time: a batch more than a second newer than its segment's first starts a new one.
COMPACTED = {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0", "segment.ms": "1000", "delete.retention.ms": "5000"}
NONE, UNKNOWN_TOPIC_OR_PARTITION, INVALID_TOPIC = 0, 3, 17


def keyed(timestamp: int, *keys: str) -> bytes:
    return build_batch([Record(i, timestamp, key.encode(), b"v") for i, key in enumerate(keys)])


def transactional(key: str, producer_id: int, sequence: int, timestamp: int) -> bytes:
    return build_batch(
        [Record(0, timestamp, key.encode(), b"v")], producer_id=producer_id, producer_epoch=0, base_sequence=sequence, transactional=True,
    )


async def _database_records(storage: PostgresStorage) -> list[tuple[int, str]]:
    partition = storage.partition("c", 0)
    read = await partition.read(partition.log_start_offset, 1 << 20)
    data = b"".join(bytes(chunk) for chunk in read.chunks)  # type: ignore[arg-type]
    return [(record.offset, bytes(record.key or b"").decode()) for _, batch in scan_batches(data, verify_crc=True) for record in iter_records(batch)]


def _local_records(storage: Storage) -> list[tuple[int, str]]:
    log = storage.partition("c", 0)
    out: list[tuple[int, str]] = []
    offset = log.log_start_offset
    while offset < log.log_end_offset:
        result = log.read(offset, 1 << 20)
        data = b"".join(bytes(chunk) for chunk in result.chunks)  # type: ignore[arg-type]
        for header, batch in scan_batches(data, verify_crc=True):
            out.extend((record.offset, bytes(record.key or b"").decode()) for record in iter_records(batch))
            offset = header.next_offset
    return out


async def _first_dirty_offset(storage: PostgresStorage) -> int:
    offset: int = await storage.pool.fetchval("SELECT first_dirty_offset FROM partitions")
    return offset


async def _both(local: Storage, database: PostgresStorage, batch: bytes, from_client: bool = True) -> None:
    local.partition("c", 0).append(batch, from_client=from_client)
    await database.partition("c", 0).append(batch, from_client=from_client)


async def test_a_full_map_stops_the_pass_where_the_local_engines_stops(postgres_url: str) -> None:
    local = Storage(None)
    local.create_topic("c", 1, COMPACTED)
    database = await PostgresStorage.connect(postgres_url, asyncio.Lock, None)
    try:
        await database.create_database_topic("c", 1, COMPACTED)
        # Segments [0-1] (time 1000), [2-5] (3000), active [6] (5000).
        for batch in (keyed(1000, "a"), keyed(1000, "b"), keyed(3000, "a"), keyed(3000, "b"), keyed(3000, "c", "a"), keyed(5000, "z")):
            await _both(local, database, batch)
        # Three keys: a at 2, b at 3, c at 4 of the batch the map could not finish; the pass covers up to 3.
        for expected_dirty, expected in ((4, [(2, "a"), (3, "b"), (4, "c"), (5, "a"), (6, "z")]), (6, [(3, "b"), (4, "c"), (5, "a"), (6, "z")])):
            removed = local.partition("c", 0).clean(100_000, map_capacity=3)
            assert await database.compact_database(100_000, map_capacity=3) == removed
            assert await _database_records(database) == _local_records(local) == expected
            assert await _first_dirty_offset(database) == local.partition("c", 0).first_dirty_offset == expected_dirty
    finally:
        await database.close_database()


async def test_the_broker_settings_bound_a_database_pass(postgres_url: str) -> None:
    """log.cleaner.dedupe.buffer.size over log.cleaner.threads at log.cleaner.io.buffer.load.factor:
    two keys. The first pass maps a and b, c finds the map full, and the pass ends at 2 (an
    unbounded map would end it at 3); the segment it stopped in then counts as clean and dirty
    (a ratio of 0.5, not above min.cleanable.dirty.ratio), so no later pass moves it."""
    settings = {"log.cleaner.dedupe.buffer.size": "120", "log.cleaner.threads": "2", "log.cleaner.io.buffer.load.factor": "1.0",
                "log.cleaner.backoff.ms": "50"}
    database = await PostgresStorage.connect(postgres_url, asyncio.Lock, None)
    maintenance = LogMaintenance(database, BrokerConfig.from_settings(settings))
    try:
        await database.create_database_topic("c", 1, {**COMPACTED, "min.cleanable.dirty.ratio": "0.5"})
        partition = database.partition("c", 0)
        for batch in (keyed(1000, "a"), keyed(1000, "b"), keyed(1000, "c"), keyed(3000, "z")):
            await partition.append(batch)
        maintenance.start()
        for _ in range(600):  # up to 30 s for the first pass to be written
            if (offset := await _first_dirty_offset(database)) != 0:
                break
            await asyncio.sleep(0.05)
        assert offset == 2
    finally:
        maintenance.stop()
        await database.close_database()


def _listed(partition: Any) -> list[tuple[int, int]]:
    """(producer id, first offset) of what a read_committed fetch from the log start lists."""
    return [(entry.producer_id, entry.first_offset) for entry in partition.aborted_transactions(partition.log_start_offset, partition.log_end_offset)]


async def test_an_aborted_transactions_row_goes_at_the_pass_that_finds_none_of_its_batches(postgres_url: str) -> None:
    local = Storage(None)
    local.create_topic("c", 1, COMPACTED)
    database = await PostgresStorage.connect(postgres_url, asyncio.Lock, None)
    try:
        await database.create_database_topic("c", 1, COMPACTED)
        await _both(local, database, transactional("a", 2, 0, 1000))  # 0
        await _both(local, database, control_batch(2, 0, commit=False, timestamp=1000), from_client=False)  # 1
        # The producer's later transaction: the aborted batch is not its last, so it is not kept empty.
        await _both(local, database, transactional("q", 2, 1, 1000))  # 2
        await _both(local, database, control_batch(2, 0, commit=True, timestamp=1000), from_client=False)  # 3
        # Active at the first pass: a transaction aborted later, whose batch the second pass reads.
        await _both(local, database, transactional("b", 4, 0, 3000))  # 4
        await _both(local, database, control_batch(4, 0, commit=False, timestamp=3000), from_client=False)  # 5
        assert _listed(database.partition("c", 0)) == _listed(local.partition("c", 0)) == [(2, 0), (4, 4)]
        # The first pass drops the aborted batch; having read it, it keeps the row.
        assert await database.compact_database(100_000) == local.compact(100_000) == 1
        assert _listed(database.partition("c", 0)) == _listed(local.partition("c", 0)) == [(2, 0), (4, 4)]
        await _both(local, database, keyed(5000, "y"))  # 6: [4-5] closed
        await _both(local, database, keyed(7000, "x"))  # 7: [6] closed
        # The next pass reads marker 1 with no batch of its transaction left: the row goes.
        assert await database.compact_database(100_000) == local.compact(100_000)
        assert await _database_records(database) == _local_records(local)
        assert _listed(database.partition("c", 0)) == _listed(local.partition("c", 0)) == [(4, 4)]
        rows = await database.pool.fetch("SELECT producer_id, first_offset FROM aborted_transactions")
        assert [(row["producer_id"], row["first_offset"]) for row in rows] == [(4, 4)]
    finally:
        await database.close_database()
    restarted = await PostgresStorage.connect(postgres_url, asyncio.Lock, None)
    try:
        assert _listed(restarted.partition("c", 0)) == [(4, 4)]
    finally:
        await restarted.close_database()


@pytest.mark.external
def test_colliding_names_as_kafka_answers_them_over_postgresql(postgres_url: str) -> None:
    """The reference Kafka 4.4's answers, as tests/server/test_collision_chars_one_request.py has them."""
    with OttlaBroker(storage=postgres_url, ready_timeout=60, stop_timeout=30) as broker, RawClient(broker.bootstrap) as client:
        assert create_one_partition_topics(client, ["ok.1"]) == [("ok.1", NONE, None)]
        assert create_one_partition_topics(client, ["ok__1", "ok_1", "q.1", "q_1"]) == [
            ("ok__1", NONE, None),
            ("ok_1", INVALID_TOPIC, "Topic 'ok_1' collides with existing topic: ok.1"),
            ("q.1", NONE, None),
            ("q_1", NONE, None),
        ]
        assert create_one_partition_topics(client, ["d.1"]) == [("d.1", NONE, None)]
        assert create_one_partition_topics(client, ["d_1"]) == [("d_1", INVALID_TOPIC, "Topic 'd_1' collides with existing topic: d.1")]
        metadata_auto_creating(client, ["m.1x", "m_1x", "m__1x"])
        assert metadata_auto_creating(client, ["m.1x", "m_1x", "m__1x"]) == {"m.1x": (NONE, 1), "m_1x": (NONE, 1), "m__1x": (NONE, 1)}
        metadata_auto_creating(client, ["e.1"])
        assert metadata_auto_creating(client, ["e_1", "bad name"]) == {"e_1": (UNKNOWN_TOPIC_OR_PARTITION, 0), "bad name": (INVALID_TOPIC, 0)}
