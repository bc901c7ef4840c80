"""Group commit on the PostgreSQL engine: appends to one partition queued while one is being
stored go to the database together, in one statement, and each gets its own answer.

Without sockets: the idempotence steps of test_postgres_idempotence, asked all at once of one
database partition, are answered as a local log answers them one by one, in fewer commits than
appends. With raw requests over a real broker: concurrent idempotent producers on one partition
get distinct, gap-free offsets in their sequences' order, a retry its first offsets, and a
sequence gap fails that one batch alone.
"""

from __future__ import annotations

import asyncio
import pathlib
import threading
import time
from typing import Any

import asyncpg
import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from kafka.protocol.consumer.fetch import FetchRequest, FetchResponse
from kafka.protocol.producer import ProduceRequest, ProduceResponse
from kafka_wire import RawClient, make, read_records
from test_postgres_idempotence import _STEPS, _local_log, _local_outcome, _plain, _producers
from test_postgres_idempotence import _batch as _idempotent

from compat.harness import OttlaBroker
from ottla.storage.postgresql.engine import PostgresStorage
from ottla.storage.postgresql.log import GROUP_BYTES, PreparedAppend, take_group
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.records import Record, build_batch

_T0 = 1_700_000_000_000


async def _commits_that_stored(url: str, topic: str) -> int:
    """How many transactions stored the topic's batches: each row's xmin is its inserter's."""
    connection = await asyncpg.connect(url)
    try:
        count: int = await connection.fetchval(
            "SELECT count(DISTINCT b.xmin::text) FROM batches b JOIN topics t USING (topic_id) WHERE t.name = $1", topic
        )
        return count
    finally:
        await connection.close()


async def test_appends_asked_at_once_are_answered_as_one_by_one_in_fewer_commits(postgres_url, tmp_path):
    """Every append is queued before the first one's round trip ends, so all but the first go
    in one group: its retries, gaps, fenced epochs and markers are decided in the order asked,
    each on the decisions before it, and a refused batch takes no offsets from the others."""
    storage = await PostgresStorage.connect(postgres_url, asyncio.Lock, None)
    try:
        await storage.create_database_topic("t", 1)
        partition = storage.partition("t", 0)

        async def outcome(batch: bytes, from_client: bool) -> tuple[Any, ...]:
            try:
                appended = await partition.append(batch, from_client=from_client)
            except KafkaError as exc:
                return ("error", exc.code)
            return ("appended", appended.base_offset, appended.last_offset)

        answers = await asyncio.gather(*(outcome(batch, from_client) for batch, from_client in _STEPS))
        with _local_log(tmp_path) as local:
            expected = [_local_outcome(local, batch, from_client)[:3] for batch, from_client in _STEPS]
            assert answers == expected
            assert partition.last_stable_offset == local.last_stable_offset
            assert partition.aborted_transactions(0, 10**6) == local.aborted_transactions(0, 10**6) != []
            assert _producers(partition.producer_state) == _producers(local.producer_state)
            assert partition.high_watermark == local.log_end_offset
        stored = {answer[1] for answer in answers if answer[0] == "appended"}
        assert await _commits_that_stored(postgres_url, "t") < len(stored) / 2
    finally:
        await storage.close_database()

    # What the group wrote is what a broker started again reads as the producer state.
    restarted = await PostgresStorage.connect(postgres_url, asyncio.Lock, None)
    try:
        assert _producers(restarted.partition("t", 0).producer_state) == _producers(partition.producer_state)
    finally:
        await restarted.close_database()


async def test_a_refusal_on_a_stale_copy_is_decided_again_after_its_group_stored_the_rest(postgres_url):
    """Broker 1 stores producer 9's sequences 0-1 and broker 2 its sequence 2; broker 1, whose
    copy still ends at sequence 1, groups a plain batch with sequence 3: its copy refuses that
    one (OUT_OF_ORDER_SEQUENCE_NUMBER) while the statement stores the plain batch and shows the
    producer state moved, so broker 1 reloads it and stores sequence 3 after all, after the
    plain one."""
    brokers = [await PostgresStorage.connect(postgres_url, asyncio.Lock, None)]
    try:
        await brokers[0].create_database_topic("stale", 1)
        brokers.append(await PostgresStorage.connect(postgres_url, asyncio.Lock, None))
        first, second = (broker.partition("stale", 0) for broker in brokers)
        assert (await first.append(_idempotent(9, 0, 0, 2))).base_offset == 0
        assert (await second.append(_idempotent(9, 0, 2))).base_offset == 2
        # The first append is in flight alone; the other two queue behind it and go together.
        appended = await asyncio.gather(first.append(_plain(b"alone")), first.append(_plain(b"grouped")), first.append(_idempotent(9, 0, 3)))
        assert [(range_.base_offset, range_.last_offset) for range_ in appended] == [(3, 3), (4, 4), (5, 5)]
        assert first.high_watermark == 6
    finally:
        for broker in brokers:
            await broker.close_database()


def test_a_group_takes_the_oldest_appends_up_to_its_size_and_always_one():
    queued = [PreparedAppend(-1, size=size) for size in (GROUP_BYTES // 2, GROUP_BYTES // 2, 1, 2 * GROUP_BYTES, 1)]
    expected = [queued[:2], queued[2:3], queued[3:4], queued[4:]]
    assert [take_group(queued) for _ in expected] == expected and queued == []


_PRODUCERS = 6
_TOPIC = "grouped"


def _value(producer_id: int, index: int, record: int) -> tuple[bytes, bytes]:
    return f"{producer_id}".encode(), f"{producer_id}-{index}-{record}".encode()


def _batch(producer_id: int, index: int) -> bytes:
    """The producer's `index`th batch: two records, so its sequences start at 2 * index."""
    records = [Record(i, _T0, *_value(producer_id, index, i)) for i in range(2)]
    return build_batch(records, producer_id=producer_id, producer_epoch=0, base_sequence=2 * index)


def _produce(client: RawClient, batch: bytes) -> None:
    body = dict(acks=-1, timeout_ms=30_000, transactional_id=None, topic_data=[
        dict(name=_TOPIC, partition_data=[dict(index=0, records=batch)]),
    ])
    client.send(make(ProduceRequest, body), 9)


def _pipeline(bootstrap: str, indexes: list[int], producer_id: int, start: threading.Barrier) -> list[tuple[int, int, int]]:
    """Send the producer's batches at these indexes back to back on one connection, once every
    producer is ready; (index, error code, base offset) of each answer, in order."""
    with RawClient(bootstrap) as client:
        start.wait(30)
        first = client.correlation_id + 1
        for index in indexes:
            _produce(client, _batch(producer_id, index))
        answers = []
        for index, correlation_id in zip(indexes, range(first, first + len(indexes))):
            frame = client.receive_frame()
            assert int.from_bytes(frame[:4], "big") == correlation_id
            (partition,) = ProduceResponse.decode(frame, version=9, header=True).responses[0].partition_responses
            answers.append((index, partition.error_code, partition.base_offset))
        return answers


def _fetch_all(bootstrap: str, end: int) -> list[tuple[int, bytes, bytes]]:
    records: list[tuple[int, bytes, bytes]] = []
    with RawClient(bootstrap) as client:
        deadline = time.monotonic() + 30
        while len(records) < end:
            assert time.monotonic() < deadline, records
            body = dict(replica_id=-1, max_wait_ms=100, min_bytes=1, max_bytes=1 << 20, isolation_level=0, session_id=0, session_epoch=-1,
                        topics=[dict(topic=_TOPIC, partitions=[dict(partition=0, current_leader_epoch=-1, fetch_offset=len(records),
                                                                     last_fetched_epoch=-1, log_start_offset=-1, partition_max_bytes=1 << 20)])],
                        forgotten_topics_data=[], rack_id="")
            (partition,) = client.call(make(FetchRequest, body), 12, FetchResponse).responses[0].partitions
            assert partition.error_code == 0
            records.extend(read_records(partition.records or b""))
    return records


@pytest.mark.external
def test_concurrent_producers_on_one_partition_get_gap_free_offsets_and_their_own_errors(postgres_url: str, tmp_path: pathlib.Path) -> None:
    """Producer 100 skips batches (OUT_OF_ORDER_SEQUENCE_NUMBER for that batch alone, and its
    next batch in sequence is stored); producer 101 sends its first batch twice (the retry
    answered with the first's offset); the others send five batches each; all pipelined."""
    plans = {100: [0, 7, 1, 2]} | {101: [0, 0, 1, 2]} | {producer_id: [0, 1, 2, 3, 4] for producer_id in range(102, 100 + _PRODUCERS)}
    with OttlaBroker(tmp_path / "broker", storage=postgres_url, ready_timeout=60, stop_timeout=30) as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic(_TOPIC, 1, 1)])[_TOPIC].result(timeout=30)
        # The partition takes appends once the broker has claimed its leadership.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            described = admin.list_topics(_TOPIC, timeout=10).topics[_TOPIC]
            if described.error is None and described.partitions and described.partitions[0].leader >= 0:
                break
            time.sleep(0.1)
        start = threading.Barrier(len(plans))
        answers: dict[int, list[tuple[int, int, int]]] = {}

        def run(producer_id: int) -> None:
            answers[producer_id] = _pipeline(broker.bootstrap, plans[producer_id], producer_id, start)

        threads = [threading.Thread(target=run, args=(producer_id,)) for producer_id in plans]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(90)
        assert answers.keys() == plans.keys()

        gap = ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER.value
        assert [(index, error) for index, error, _ in answers[100]] == [(0, 0), (7, gap), (1, 0), (2, 0)]
        retried = answers[101]
        assert [error for _, error, _ in retried] == [0, 0, 0, 0] and retried[0][2] == retried[1][2]
        stored = {
            (producer_id, index): base_offset
            for producer_id, sent in answers.items() for index, error, base_offset in sent if error == 0
        }
        # Each stored batch holds two offsets: together they tile [0, end) without a gap or overlap.
        end = 2 * len(stored)
        assert sorted(stored.values()) == list(range(0, end, 2))
        for producer_id, sent in answers.items():
            offsets = [stored[(producer_id, index)] for index in sorted({index for index, error, _ in sent if error == 0})]
            assert offsets == sorted(offsets), (producer_id, sent)
        expected = {}
        for (producer_id, index), base_offset in stored.items():
            for i in range(2):
                expected[base_offset + i] = _value(producer_id, index, i)
        fetched = _fetch_all(broker.bootstrap, end)
        assert {offset: (key, value) for offset, key, value in fetched} == expected
        assert [offset for offset, _, _ in fetched] == list(range(end))
