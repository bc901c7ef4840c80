"""Idempotent and transactional produce on the PostgreSQL engine, on a real server.

Without sockets: the same batches appended to a local log and to a database partition get the
same answers (offsets, duplicates, producer errors, LSO, aborted index); two brokers' copies of
one partition never both accept a sequence; a broker started again knows its producers. With
real clients over a broker in its own process: an idempotent producer whose first response is
dropped has its retry recognised, and read_committed sees only the committed transaction.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import pytest
from confluent_kafka import Consumer, IsolationLevel, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from compat.harness import OttlaBroker
from ottla.storage import Storage
from ottla.storage.postgresql.engine import PostgresStorage
from ottla.storage.producer_state import control_batch
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.records import Record, build_batch

_T0 = 1_700_000_000_000


def _batch(producer_id: int, epoch: int, sequence: int, count: int = 1, transactional: bool = False) -> bytes:
    records = [Record(i, _T0 + sequence + i, None, f"{producer_id}-{epoch}-{sequence + i}".encode()) for i in range(count)]
    return build_batch(records, producer_id=producer_id, producer_epoch=epoch, base_sequence=sequence, transactional=transactional)


def _plain(value: bytes) -> bytes:
    return build_batch([Record(0, _T0, None, value)])


def _marker(producer_id: int, epoch: int, commit: bool) -> bytes:
    return control_batch(producer_id, epoch, commit, _T0, coordinator_epoch=3)


# (batch, from_client): an idempotent producer's sequence with a retry, gaps, a fenced epoch, a
# new epoch, an unknown producer; two transactions of two producers, one committed and one
# aborted, interleaved with plain batches, and a marker from an epoch the producer has left.
_STEPS: list[tuple[bytes, bool]] = [
    (_batch(1, 0, 0, 3), True),
    (_batch(1, 0, 3, 2), True),
    (_batch(1, 0, 3, 2), True),  # retried: its first offsets, not stored again
    (_batch(1, 0, 0, 3), True),  # an older retry, still among the last five
    (_batch(1, 0, 9), True),  # a gap: OUT_OF_ORDER_SEQUENCE_NUMBER
    (_plain(b"plain"), True),
    (_batch(1, 1, 0), True),  # a new epoch starts at 0
    (_batch(1, 0, 5), True),  # the old epoch: INVALID_PRODUCER_EPOCH
    (_batch(1, 2, 4), True),  # a new epoch not at 0: OUT_OF_ORDER_SEQUENCE_NUMBER
    (_batch(7, 0, 4), True),  # unknown producer not at 0: taken, as Kafka takes it
    (_batch(20, 0, 0, 2, transactional=True), True),
    (_batch(21, 0, 0, 1, transactional=True), True),
    (_plain(b"between"), True),
    (_batch(20, 0, 2, 2, transactional=True), True),
    (_marker(21, 0, commit=False), False),
    (_batch(20, 0, 2, 2, transactional=True), True),  # a transactional retry
    (_marker(20, 0, commit=True), False),
    (_marker(20, 0, commit=False), False),  # a marker for nothing open: written, changes nothing
    (_batch(21, 1, 0, 1, transactional=True), True),
    (_batch(21, 1, 1), True),  # a plain write inside its open transaction: INVALID_TXN_STATE
    (_marker(21, 0, commit=True), False),  # from the epoch the producer left: INVALID_PRODUCER_EPOCH
    (_marker(21, 1, commit=False), False),
]


def _local_outcome(log: Any, batch: bytes, from_client: bool) -> tuple[Any, ...]:
    try:
        appended = log.append(batch, from_client=from_client)
    except KafkaError as exc:
        return ("error", exc.code)
    return ("appended", appended.base_offset, appended.last_offset, log.last_stable_offset)


async def _database_outcome(partition: Any, batch: bytes, from_client: bool) -> tuple[Any, ...]:
    try:
        appended = await partition.append(batch, from_client=from_client)
    except KafkaError as exc:
        return ("error", exc.code)
    return ("appended", appended.base_offset, appended.last_offset, partition.last_stable_offset)


def _producers(state: Any) -> dict[int, tuple[Any, ...]]:
    return {pid: (e.epoch, e.batches, e.current_txn_first_offset, e.coordinator_epoch) for pid, e in state.producers.items()}


@contextmanager
def _local_log(tmp_path: pathlib.Path) -> Iterator[Any]:
    storage = Storage.open(tmp_path / "local")
    try:
        storage.create_topic("t", 1)
        yield storage.partition("t", 0)
    finally:
        storage.close()


async def _connect(url: str) -> PostgresStorage:
    return await PostgresStorage.connect(url, asyncio.Lock, None)


async def test_the_database_answers_producers_as_the_local_engine_and_keeps_their_state_across_a_restart(postgres_url, tmp_path):
    storage = await _connect(postgres_url)
    try:
        await storage.create_database_topic("t", 1)
        partition = storage.partition("t", 0)
        with _local_log(tmp_path) as local:
            answers = []
            for batch, from_client in _STEPS:
                expected = _local_outcome(local, batch, from_client)
                assert await _database_outcome(partition, batch, from_client) == expected, (len(answers), expected)
                answers.append(expected)
            local_state = local.producer_state
            # The steps reach every rule.
            assert {answer[1] for answer in answers if answer[0] == "error"} == {
                ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, ErrorCode.INVALID_PRODUCER_EPOCH, ErrorCode.INVALID_TXN_STATE
            }
            assert partition.last_stable_offset == local.last_stable_offset
            assert partition.aborted_transactions(0, 10**6) == local.aborted_transactions(0, 10**6) != []
            assert _producers(partition.producer_state) == _producers(local_state)
            end = local.log_end_offset
            assert partition.high_watermark == end
    finally:
        await storage.close_database()

    restarted = await _connect(postgres_url)
    try:
        partition = restarted.partition("t", 0)
        assert _producers(partition.producer_state) == _producers(local_state)
        assert partition.aborted_transactions(0, 10**6) == local_state.aborted
        retried = await partition.append(_batch(1, 1, 0))
        assert (retried.base_offset, retried.last_offset, partition.high_watermark) == (6, 6, end)
        with pytest.raises(KafkaError) as refused:
            await partition.append(_batch(1, 1, 5))
        assert refused.value.code is ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    finally:
        await restarted.close_database()


async def test_two_brokers_on_one_database_never_both_accept_a_sequence(postgres_url):
    """Each broker's copy of the partition's producer state goes stale as the other appends: the
    statement that stores a batch refuses a decision made on a stale copy, the broker reloads,
    and a sequence is stored once whoever is asked, however often and concurrently."""
    brokers = [await _connect(postgres_url)]
    try:
        await brokers[0].create_database_topic("shared", 1)
        brokers.append(await _connect(postgres_url))  # sees the topic
        partitions = [broker.partition("shared", 0) for broker in brokers]
        for sequence in range(0, 40, 2):
            batch = _batch(5, 0, sequence, 2)
            outcomes = await asyncio.gather(*(partition.append(batch) for partition in partitions * 2), return_exceptions=True)
            assert {(o.base_offset, o.last_offset) for o in outcomes} == {(sequence, sequence + 1)}, outcomes
        # A retry of an older batch to the broker that did not store it, and a gap, to either.
        assert (await partitions[1].append(_batch(5, 0, 34, 2))).base_offset == 34
        for partition in partitions:
            with pytest.raises(KafkaError) as refused:
                await partition.append(_batch(5, 0, 50))
            assert refused.value.code is ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
        read = await partitions[0].read(0, 10**6)
        assert read.high_watermark == 40 and len(read.chunks) == 20
    finally:
        for broker in brokers:
            await broker.close_database()


_START_TIMEOUT = 60.0
_WAIT = 60.0


def _broker(work_dir: pathlib.Path | None = None, storage: str | None = None) -> OttlaBroker:
    """A broker on a free port over `storage` (the local engine without), in `work_dir` (a
    temporary one without); its `test_hook_args` take `--fault` settings from its start."""
    return OttlaBroker(work_dir, storage=storage, ready_timeout=_START_TIMEOUT, stop_timeout=30)


def _create_topic(bootstrap: str, name: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, 1, 1)])[name].result(timeout=30)


def _read(bootstrap: str, topic: str, isolation: str, expected: int) -> list[tuple[int, bytes]]:
    """(offset, value) of the first `expected` records a consumer at this isolation level gets."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{isolation}", "isolation.level": isolation,
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        got: list[tuple[int, bytes]] = []
        deadline = time.monotonic() + _WAIT
        while len(got) < expected and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                got.append((message.offset(), message.value()))
        return got
    finally:
        consumer.close()


def _delivered(producer: Producer, topic: str, value: bytes) -> list[Any]:
    reports: list[Any] = []
    producer.produce(topic, value, on_delivery=lambda error, message: reports.append((error, message.offset() if error is None else None)))
    return reports


async def _stored_batches(url: str, topic: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        count: int = await connection.fetchval(
            "SELECT count(*) FROM batches JOIN topics USING (topic_id) WHERE topics.name = $1", topic
        )
        return count
    finally:
        await connection.close()


@pytest.mark.external
def test_an_idempotent_producer_s_retry_is_stored_once_across_a_broker_restart(postgres_url, tmp_path):
    """The broker stores the producer's second batch, then drops the connection unanswered; it
    is stopped and started again on its port while librdkafka waits to retry, so the retry
    (the same producer id, epoch and sequence) most likely reaches a broker that knows the
    producer only from the database. Either way it is answered with the first offset, once."""
    drop_second = {"api": "produce", "topic": "idem", "drop": "after", "every": 2, "count": 1}
    producer: Producer | None = None
    broker = _broker(tmp_path / "broker", postgres_url)
    broker.test_hook_args = ["--fault", json.dumps(drop_second)]
    with broker:
        bootstrap = broker.bootstrap
        _create_topic(bootstrap, "idem")
        producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 0,
                             "retry.backoff.ms": 3000, "retry.backoff.max.ms": 3000, "reconnect.backoff.ms": 500})
        first = _delivered(producer, "idem", b"one")
        assert producer.flush(30) == 0 and first == [(None, 0)]
        second = _delivered(producer, "idem", b"two")
        deadline = time.monotonic() + _WAIT
        while asyncio.run(_stored_batches(postgres_url, "idem")) < 2:
            producer.poll(0.1)
            assert time.monotonic() < deadline, "the second batch was never stored"
        # Started again on the same port and data dir, without the fault.
        broker.test_hook_args = []
        broker.restart()
        assert broker.bootstrap == bootstrap
        assert producer.flush(_WAIT) == 0 and second == [(None, 1)]
        third = _delivered(producer, "idem", b"three")
        assert producer.flush(30) == 0 and third == [(None, 2)]
        assert _read(bootstrap, "idem", "read_uncommitted", 3) == [(0, b"one"), (1, b"two"), (2, b"three")]
    assert asyncio.run(_stored_batches(postgres_url, "idem")) == 3


def _transactions(bootstrap: str) -> dict[str, Any]:
    """One committed transaction, one aborted, then one left open while the last stable offset
    is asked for, then committed; what each isolation level reads."""
    _create_topic(bootstrap, "txn")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": "w22-tx", "linger.ms": 0})
    producer.init_transactions(30)
    for values, commit in (([b"a1", b"a2"], True), ([b"b1", b"b2"], False)):
        producer.begin_transaction()
        for value in values:
            producer.produce("txn", value)
        producer.flush(30)
        (producer.commit_transaction if commit else producer.abort_transaction)(30)
    producer.begin_transaction()
    producer.produce("txn", b"c1")
    producer.flush(30)
    latest = {}
    for level in (IsolationLevel.READ_COMMITTED, IsolationLevel.READ_UNCOMMITTED):
        listed = admin.list_offsets({TopicPartition("txn", 0): OffsetSpec.latest()}, isolation_level=level)
        latest[level.name] = next(iter(listed.values())).result(timeout=30).offset
    producer.commit_transaction(30)
    return {
        "latest_while_open": latest,
        "read_committed": _read(bootstrap, "txn", "read_committed", 3),
        "read_uncommitted": _read(bootstrap, "txn", "read_uncommitted", 5),
    }


@pytest.mark.external
def test_transactions_read_committed_and_uncommitted_as_on_the_local_engine(postgres_url):
    with _broker(storage=postgres_url) as broker:
        database = _transactions(broker.bootstrap)
    assert database["read_committed"] == [(0, b"a1"), (1, b"a2"), (6, b"c1")]
    assert database["read_uncommitted"] == [(0, b"a1"), (1, b"a2"), (3, b"b1"), (4, b"b2"), (6, b"c1")]
    assert database["latest_while_open"] == {"READ_COMMITTED": 6, "READ_UNCOMMITTED": 7}
    with _broker() as broker:
        assert _transactions(broker.bootstrap) == database
