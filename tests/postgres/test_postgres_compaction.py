"""Compaction, compression.type and producer expiry on the PostgreSQL engine.

The cleaner's steps are checked against the local engine: the same batches appended to a local
log and to a database partition, the same cleaner passes at the same times, the same bytes read
back after each (the local engine's compaction cases, tests/storage/test_compaction.py, with
their rolls made by segment.ms from record time, since a database partition has no roll()).
Then a broker over the database, with real clients: its log cleaner compacts a topic on its
schedule, a gzip topic stores what an uncompressed producer sends compressed, and a producer
idle past producer.id.expiration.ms is forgotten and answered as the local engine answers it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka.protocol.producer import ProduceRequest, ProduceResponse
from kafka_wire import RawClient, make
from test_postgres_topics import _WAIT, _serve, _wait_for

from ottla.storage import Storage
from ottla.storage.postgresql.engine import PostgresStorage
from ottla.storage.producer_state import control_batch
from ottla.wire.errors import ErrorCode
from ottla.wire.records import Compression, Record, build_batch, iter_records, read_header, scan_batches

# Rolls by record time: a batch more than a second newer than its segment's first starts a new one.
COMPACTED = {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0", "segment.ms": "1000", "delete.retention.ms": "5000"}


def keyed(pairs: list[tuple[str, str | None]], timestamp: int, compression: Compression = Compression.NONE) -> bytes:
    return build_batch(
        [Record(i, timestamp, key.encode(), None if value is None else value.encode()) for i, (key, value) in enumerate(pairs)],
        compression=compression,
    )


def appended(pairs: list[tuple[str, str | None]], timestamp: int, compression: Compression = Compression.NONE) -> tuple[bytes, bool]:
    return keyed(pairs, timestamp, compression), True


# Each step: batches appended (and whether from a client, not the transaction coordinator), then
# one cleaner pass at `now`.
STEPS: list[tuple[list[tuple[bytes, bool]], int]] = [
    # Segments [0-4] (time 1000) [5-8] (3000) [9] (5000) closed, [10] (7000) active: a3 is not
    # cleaned against; the pass keeps the tombstone for c and stamps its batch with a delete
    # horizon (8000 + delete.retention.ms: 13000, KIP-534).
    (
        [
            appended([("a", "a0"), ("b", "b0"), ("c", "c0")], 1000),
            appended([("a", "a1"), ("d", "d0")], 1000, Compression.GZIP),
            appended([("b", "b1"), ("a", "a2")], 3000),
            appended([("e", "e0"), ("c", None)], 3000),
            appended([("d", "d1")], 5000),
            appended([("a", "a3")], 7000),
        ],
        8000,
    ),
    # A pass with nothing new to clean changes nothing.
    ([], 8000),
    # f rolls [10] closed: a3 supersedes a2; the tombstone stays until its horizon, and
    # segment [5-8] keeps e0 and it.
    ([appended([("f", "f0")], 9000)], 8500),
    # Several keys at once, compressed, superseding records of three segments; [5-8]'s e goes
    # too, the tombstone is past its horizon, and the emptied segments [9] and [11] merge into
    # the ones before them.
    ([appended([("e", "e1"), ("d", "d2"), ("f", "f1")], 11000, Compression.ZSTD), appended([("z", "z0")], 13000)], 20000),
    # An aborted transaction and its marker, then a later b: the aborted batch goes at the first
    # pass (Kafka's CleanedTransactionMetadata), its marker stays until a delete horizon the pass
    # stamps on it.
    (
        [
            (build_batch([Record(0, 15000, b"b", b"b-aborted"), Record(1, 15000, b"q", b"q0")], producer_id=30, producer_epoch=0,
                         base_sequence=0, transactional=True), True),
            (control_batch(30, 0, False, 15000), False),
            appended([("b", "b2")], 17000),
            appended([("y", "y0")], 19000),
        ],
        30000,
    ),
    # A committed g, then a transaction writing g that aborts: the aborted g is never g's
    # latest, so the committed one stays (else read_committed readers would find no g), and the
    # aborted batch goes.
    (
        [
            appended([("g", "g0")], 21000),
            (build_batch([Record(0, 21000, b"g", b"g-aborted")], producer_id=31, producer_epoch=0, base_sequence=0, transactional=True), True),
            (control_batch(31, 0, False, 21000), False),
            appended([("x", "x0")], 23000),
        ],
        40000,
    ),
    # A committed i, then a transaction writing i still open in a closed segment: no segment
    # reaching the last stable offset is cleaned, nor counted, so the committed i stays.
    (
        [
            appended([("i", "i0")], 25000),
            (build_batch([Record(0, 27000, b"i", b"i-open")], producer_id=32, producer_epoch=0, base_sequence=0, transactional=True), True),
            appended([("w", "w0")], 29000),
        ],
        40000,
    ),
]


def _local_contents(storage: Storage) -> list[bytes]:
    log = storage.partition("c", 0)
    out: list[bytes] = []
    offset = log.log_start_offset
    while offset < log.log_end_offset:
        result = log.read(offset, 1 << 20)
        data = b"".join(bytes(chunk) for chunk in result.chunks)  # type: ignore[arg-type]
        batches = [bytes(batch) for _, batch in scan_batches(data, verify_crc=True)]
        out += batches
        offset = read_header(batches[-1]).next_offset
    return out


async def _database_contents(storage: PostgresStorage) -> list[bytes]:
    partition = storage.partition("c", 0)
    read = await partition.read(partition.log_start_offset, 1 << 20)
    return [bytes(batch) for _, batch in scan_batches(b"".join(bytes(chunk) for chunk in read.chunks), verify_crc=True)]  # type: ignore[arg-type]


def _records(batches: list[bytes]) -> list[tuple[int, str, str | None]]:
    return [
        (record.offset, bytes(record.key or b"").decode(), None if record.value is None else bytes(record.value).decode())
        for batch in batches
        for record in iter_records(batch)
    ]


async def test_the_cleaner_steps_give_the_same_batches_on_both_engines(postgres_url: str) -> None:
    local = Storage(None)
    local.create_topic("c", 1, COMPACTED)
    database = await PostgresStorage.connect(postgres_url, asyncio.Lock, None)
    try:
        await database.create_database_topic("c", 1, COMPACTED)
        seen: list[list[tuple[int, str, str | None]]] = []
        for step, (appends, now) in enumerate(STEPS):
            if step == 2:
                # The cleaner's checkpoint and segments are the database's: a broker started
                # anew goes on from them.
                await database.close_database()
                database = await PostgresStorage.connect(postgres_url, asyncio.Lock, None)
            for batch, from_client in appends:
                local.partition("c", 0).append(batch, from_client=from_client)
                await database.partition("c", 0).append(batch, from_client=from_client)
            removed_locally = local.compact(now_ms=now)
            assert await database.compact_database(now) == removed_locally
            expected = _local_contents(local)
            assert await _database_contents(database) == expected
            seen.append(_records(expected))
        # The cases themselves, so that the comparison above compares something.
        assert seen[0] == [(5, "b", "b1"), (6, "a", "a2"), (7, "e", "e0"), (8, "c", None), (9, "d", "d1"), (10, "a", "a3")]
        assert seen[1] == seen[0]
        assert seen[2] == [(5, "b", "b1"), (7, "e", "e0"), (8, "c", None), (9, "d", "d1"), (10, "a", "a3"), (11, "f", "f0")]
        assert seen[3] == [(5, "b", "b1"), (10, "a", "a3"), (12, "e", "e1"), (13, "d", "d2"), (14, "f", "f1"), (15, "z", "z0")]
        assert seen[4] == [(10, "a", "a3"), (12, "e", "e1"), (13, "d", "d2"), (14, "f", "f1"), (15, "z", "z0"),
                           (18, "\0" * 4, "\0" * 6), (19, "b", "b2"), (20, "y", "y0")]
        assert seen[5] == [*seen[4], (21, "g", "g0"), (23, "\0" * 4, "\0" * 6), (24, "x", "x0")]
        assert seen[6] == [*seen[5], (25, "i", "i0"), (26, "i", "i-open"), (27, "w", "w0")]
        partition = database.partition("c", 0)
        # A read inside a removed range starts at the batch there is next, as on the local
        # engine (whose reads stop at a segment's end, where a database read goes on).
        for offset in (0, 6, 7, 11):
            local_read = local.partition("c", 0).read(offset, 1 << 20)
            database_read = await partition.read(offset, 1 << 20)
            assert bytes(database_read.chunks[0]) == bytes(local_read.chunks[0])  # type: ignore[arg-type]
        assert await partition.offset_for_timestamp(2000) == local.partition("c", 0).offset_for_timestamp(2000) == (7000, 10)
        assert (await partition.read(0, 1 << 20)).high_watermark == 28
    finally:
        await database.close_database()



async def test_a_read_after_compaction_holds_what_fits_in_bytes(postgres_url: str) -> None:
    """Compaction removes batches but not their positions: a read's byte window from its first
    batch spans the gaps they left. The read holds every batch that fits in max_bytes, as
    Kafka's does (its cleaned segments are rewritten without them), not only those whose
    positions happen to fall in the window."""
    database = await PostgresStorage.connect(postgres_url, asyncio.Lock, None)
    try:
        await database.create_database_topic("c", 1, COMPACTED)
        partition = database.partition("c", 0)
        value = "v" * 1000
        # One batch a segment (segment.ms 1000 by record time): a, six x superseded by the
        # later x, b between them; c in the active segment, which is not cleaned.
        keys = ["a", "x", "x", "x", "x", "x", "x", "b", "x", "c"]
        for index, key in enumerate(keys):
            await partition.append(keyed([(key, value)], 1000 + 2000 * index))
        await database.compact_database(100_000)
        kept = await _database_contents(database)
        assert [record[:2] for record in _records(kept)] == [(0, "a"), (7, "b"), (8, "x"), (9, "c")]
        read = await partition.read(0, sum(map(len, kept)))
        assert b"".join(bytes(chunk) for chunk in read.chunks) == b"".join(kept)  # type: ignore[arg-type]
        one_less = await partition.read(0, sum(map(len, kept)) - 1)
        assert b"".join(bytes(chunk) for chunk in one_less.chunks) == b"".join(kept[:3])  # type: ignore[arg-type]
    finally:
        await database.close_database()


async def test_two_brokers_cleaning_one_partition_at_once_write_one_pass(postgres_url: str) -> None:
    """Both passes read the same dirty section; the first to write wins, the other is dropped
    (its removals are not counted, nor written over the first's)."""
    local = Storage(None)
    local.create_topic("c", 1, COMPACTED)
    first = await PostgresStorage.connect(postgres_url, asyncio.Lock, None)
    second = await PostgresStorage.connect(postgres_url, asyncio.Lock, None)
    try:
        await first.create_database_topic("c", 1, COMPACTED)
        await second.reload_catalogue()
        for batch, from_client in STEPS[0][0]:
            local.partition("c", 0).append(batch, from_client=from_client)
            await first.partition("c", 0).append(batch, from_client=from_client)
        removed = local.compact(now_ms=8000)
        assert sorted(await asyncio.gather(first.compact_database(8000), second.compact_database(8000))) == [0, removed]
        assert await _database_contents(first) == _local_contents(local)
    finally:
        await first.close_database()
        await second.close_database()

async def _stored(url: str, query: str, *arguments: object) -> list[Any]:
    connection = await asyncpg.connect(url)
    try:
        return list(await connection.fetch(query, *arguments))
    finally:
        await connection.close()


def _read_all(bootstrap: str, topic: str, end: int) -> list[tuple[int, bytes | None, bytes | None]]:
    """(offset, key, value) of every record a consumer gets from the start up to offset `end`."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}-reader", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        got: list[tuple[int, bytes | None, bytes | None]] = []
        deadline = time.monotonic() + _WAIT
        while (not got or got[-1][0] < end - 1) and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                got.append((message.offset(), message.key(), message.value()))
        return got
    finally:
        consumer.close()


def _idempotent(sequence: int, timestamp: int) -> bytes:
    return build_batch([Record(0, timestamp, None, b"%d" % sequence)], producer_id=4242, producer_epoch=0, base_sequence=sequence)


def _produce(client: RawClient, topic: str, batch: bytes) -> int:
    body = dict(transactional_id=None, acks=-1, timeout_ms=5000, topic_data=[dict(name=topic, partition_data=[dict(index=0, records=batch)])])
    error: int = client.call(make(ProduceRequest, body), 9, ProduceResponse).responses[0].partition_responses[0].error_code
    return error


@pytest.mark.external
def test_a_broker_over_postgresql_compacts_recompresses_and_expires_producers(postgres_url: str) -> None:
    settings = ("log.cleaner.backoff.ms=200", "producer.id.expiration.check.interval.ms=200", "producer.id.expiration.ms=60000")
    with _serve(postgres_url, *settings) as (bootstrap, _):
        admin = AdminClient({"bootstrap.servers": bootstrap})
        topics = [
            NewTopic("compacted", 1, 1, config={"cleanup.policy": "compact", "segment.ms": "1000", "min.cleanable.dirty.ratio": "0"}),
            NewTopic("zipped", 1, 1, config={"compression.type": "gzip"}),
            NewTopic("idempotent", 1, 1),
        ]
        for future in admin.create_topics(topics).values():
            future.result(timeout=30)
        now = time.time_ns() // 1_000_000 - 60_000
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "enable.idempotence": False, "compression.type": "none"})
        # Segments [0-1] and [2] closed by record time, [3] active: the cleaner's schedule
        # removes k1's first value only.
        for key, value, timestamp in ((b"k1", b"v1", now), (b"k1", b"v2", now), (b"k2", b"v", now + 2000), (b"k1", b"v3", now + 4000)):
            producer.produce("compacted", value, key, partition=0, timestamp=timestamp)
            assert producer.flush(30) == 0
        compacted = [(1, b"k1", b"v2"), (2, b"k2", b"v"), (3, b"k1", b"v3")]
        _wait_for(lambda: _read_all(bootstrap, "compacted", 4) == compacted, "the cleaner to compact the topic in PostgreSQL")

        # compression.type=gzip: sent uncompressed, stored gzip, read back as sent.
        for value in (b"first" * 50, b"second" * 50):
            producer.produce("zipped", value, partition=0)
            assert producer.flush(30) == 0
        stored = asyncio.run(_stored(postgres_url, "SELECT data FROM batches JOIN topics USING (topic_id) WHERE name = 'zipped' ORDER BY last_offset"))
        assert [read_header(row["data"]).compression for row in stored] == [Compression.GZIP, Compression.GZIP]
        assert [value for _, _, value in _read_all(bootstrap, "zipped", 2)] == [b"first" * 50, b"second" * 50]
        del producer, admin  # librdkafka's handles go before the broker does

        # A producer silent for longer than producer.id.expiration.ms (by its batches' time) is
        # forgotten; its next sequence is then taken, as the local engine (and Kafka) takes it.
        silent_since = time.time_ns() // 1_000_000 - 600_000
        with RawClient(bootstrap) as client:
            assert _produce(client, "idempotent", _idempotent(0, silent_since)) == 0
            forgotten = "SELECT count(*) AS n FROM producers WHERE producer_id = 4242"
            _wait_for(lambda: asyncio.run(_stored(postgres_url, forgotten))[0]["n"] == 0, "the producer to expire in PostgreSQL")
            answered = _produce(client, "idempotent", _idempotent(1, silent_since))
    local = Storage(None)
    local.create_topic("idempotent", 1)
    log = local.partition("idempotent", 0)
    log.append(_idempotent(0, silent_since))
    local.expire_producers(time.time_ns() // 1_000_000, 60_000)
    assert log.append(_idempotent(1, silent_since)).base_offset == 1
    assert answered == ErrorCode.NONE
