"""A coordinator journal over PostgreSQL (`__transaction_state`, one partition, on a real
database): what a partition's replay appends is written, a reload reads after this broker's
queued batches, and a record the database refuses (to another broker's claim, or for good)
fails the answers that waited for it. And the share state's journal, which its owners write:
a read again for what ownership came back to abandons the one still under way."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from ottla.server.coordinator import SHARE_GROUP_STATE, TRANSACTION_STATE
from ottla.server.coordinator.database import Journal, Journals
from ottla.storage.postgresql.brokers import claim_leadership
from ottla.storage.postgresql.coordinator_topics import load_partition
from ottla.storage.postgresql.engine import PostgresStorage
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.records.record import Record, build_batch

pytestmark = pytest.mark.external


@asynccontextmanager
async def _opened(
    url: str, leads: Callable[[str, int], bool] = lambda topic, index: True, node_id: int | None = None,
    leader_epoch: Callable[[str, int], int | None] = lambda topic, index: None,
) -> AsyncIterator[tuple[PostgresStorage, Journals, Journal]]:
    """A broker's storage over `url`, its journals, and `__transaction_state`'s journal."""
    storage = await PostgresStorage.connect(url, asyncio.Lock, None)
    journals = Journals(storage, lambda topic, index: None, leads, 5000, node_id, leader_epoch)
    try:
        await journals.open(TRANSACTION_STATE, 1)
        journal = storage.coordinator_journals[TRANSACTION_STATE.name]
        assert isinstance(journal, Journal)
        yield storage, journals, journal
    finally:
        await journals.close(5)
        await storage.close_database()


async def test_what_a_replay_appends_is_written_and_what_the_load_overtook_is_not(postgres_url: str) -> None:
    leading: set[tuple[str, int]] = set()
    async with _opened(postgres_url, lambda topic, index: (topic, index) in leading) as (storage, journals, journal):
        stale, replayed = _batch(b"stale"), _batch(b"replayed")
        replays: list[int] = []

        def replay(index: int) -> None:
            replays.append(index)
            journal.append(index, replayed)

        leading.add((TRANSACTION_STATE.name, 0))
        journals.leader_changed(TRANSACTION_STATE.name, 0, replay)
        journal.append(0, stale)  # this broker's copy changed before its load of the partition ended
        while not replays or journal.loading(0):
            await asyncio.sleep(0.01)
        await journals.written()
        stored = (await load_partition(storage, TRANSACTION_STATE.name, 0)).data
        assert replays == [0]
        assert b"replayed" in stored
        assert b"stale" not in stored


def _batch(value: bytes) -> bytes:
    return build_batch([Record(offset=0, timestamp=0, key=b"key", value=value, headers=())])


async def test_a_reload_reads_what_this_broker_queued_before_it(postgres_url: str) -> None:
    """A broker that led the partition already and reads it again (its leader epoch moved) has
    batches queued whose answers wait for them: the read comes after them, so the replay keeps
    what they acknowledged. Batches of ~600 KB go one a statement, so the queue takes five."""
    async with _opened(postgres_url) as (_, journals, journal):
        queued = [_batch(b"%d" % n + b"x" * 600_000) for n in range(5)]
        for batch in queued:
            journal.append(0, batch)
        replayed: list[bytes] = []
        journals.leader_changed(TRANSACTION_STATE.name, 0, lambda index: replayed.append(journal.loaded(index).data))
        while not replayed:
            await asyncio.sleep(0.01)
        assert [replayed[0].count(b"%dxxxx" % n) for n in range(5)] == [1] * 5


async def test_a_broker_whose_partition_another_claimed_writes_nothing_more_there(postgres_url: str) -> None:
    """Two brokers over one database. Broker 1 writes its coordinator records while it leads the
    partition; broker 2 claims it and reads it. A record broker 1 still writes after the claim
    would be stored behind broker 2's read and missing from its state (a committed offset it
    never sees): the database refuses it, and the wait of the answer that queued it fails with
    NOT_COORDINATOR, so the client asks again and finds broker 2."""
    async with _opened(postgres_url, node_id=1) as (first, journals, journal):
        journal.append(0, _batch(b"before the claim"))
        await journals.written()

        info = first.topic(TRANSACTION_STATE.name)
        assert info is not None
        second = await PostgresStorage.connect(postgres_url, asyncio.Lock, None)
        try:
            await claim_leadership(second.pool, 2, [(uuid.UUID(bytes=info.topic_id), 0)])
        finally:
            await second.close_database()
        journal.append(0, _batch(b"after the claim"))
        with pytest.raises(KafkaError) as refused:
            await journals.written()
        assert refused.value.code is ErrorCode.NOT_COORDINATOR
        stored = (await load_partition(first, TRANSACTION_STATE.name, 0)).data  # read from the database
        assert b"before the claim" in stored
        assert b"after the claim" not in stored
        await journals.written()  # the refusal was that wait's: later ones do not see it


async def test_a_broker_that_claimed_its_partition_back_stores_nothing_it_decided_before(postgres_url: str) -> None:
    """Broker 1 leads the partition at epoch 0 and queues a record; before the record reaches
    the database, broker 2 claims the partition (it reads it and writes its own records) and
    broker 1 claims it back, at epoch 2. The record was decided on a state that missed broker
    2's: stored now, behind them, a replay would let it undo what broker 2 acknowledged (a
    committed offset moving back). The database refuses it, as Kafka's log refuses a
    coordinator write from a leader epoch that has ended, and its answer is NOT_COORDINATOR."""
    async with _opened(postgres_url, node_id=1, leader_epoch=lambda topic, index: 0) as (first, journals, journal):
        info = first.topic(TRANSACTION_STATE.name)
        assert info is not None
        topic_id = uuid.UUID(bytes=info.topic_id)
        await claim_leadership(first.pool, 1, [(topic_id, 0)])
        journal.append(0, _batch(b"decided at epoch 0"))
        await journals.written()

        # Hold the partition's row, so that the next record cannot land until both claims have.
        moves = await first.pool.acquire()
        try:
            async with moves.transaction():
                await moves.execute("SELECT 1 FROM partitions WHERE topic_id = $1 AND partition_index = 0 FOR UPDATE", topic_id)
                journal.append(0, _batch(b"queued before the moves"))
                await moves.execute("UPDATE partitions SET leader_id = 2, leader_epoch = leader_epoch + 1 WHERE topic_id = $1", topic_id)
                await moves.execute("UPDATE partitions SET leader_id = 1, leader_epoch = leader_epoch + 1 WHERE topic_id = $1", topic_id)
        finally:
            await first.pool.release(moves)
        with pytest.raises(KafkaError) as refused:
            await journals.written()
        assert refused.value.code is ErrorCode.NOT_COORDINATOR
        stored = (await load_partition(first, TRANSACTION_STATE.name, 0)).data
        assert b"decided at epoch 0" in stored
        assert b"queued before the moves" not in stored


async def test_records_the_database_refuses_fail_the_answers_that_waited_for_them(postgres_url: str) -> None:
    """A coordinator record larger than its topic's max.message.bytes (a huge group's metadata)
    is refused for good: the answers that waited for it say so (UNKNOWN_SERVER_ERROR, as Kafka's
    GroupMetadataManager turns RECORD_TOO_LARGE) instead of that it was stored, and the
    partition's writer goes on with the next record."""
    async with _opened(postgres_url, node_id=1) as (storage, journals, journal):
        journal.append(0, _batch(b"too large" + b"x" * 2_000_000))
        with pytest.raises(KafkaError) as refused:
            await journals.written()
        assert refused.value.code is ErrorCode.UNKNOWN_SERVER_ERROR
        journal.append(0, _batch(b"the next one"))
        await journals.written()
        stored = (await load_partition(storage, TRANSACTION_STATE.name, 0)).data
        assert b"the next one" in stored and b"too large" not in stored


async def test_a_read_again_abandons_the_one_under_way_for_the_same_keys(postgres_url: str) -> None:
    """A topic partition's leadership came to this broker, went, and came back while the first
    read of its share-partitions' state was under way: that read started before what the other
    leader wrote in between and could end after the second one, so only the second replays.
    Reads for other keys go on beside it."""
    storage = await PostgresStorage.connect(postgres_url, asyncio.Lock, None)
    journals = Journals(storage, lambda topic, index: None, lambda topic, index: True, 5000, 1)
    try:
        await journals.open(SHARE_GROUP_STATE, 1, owners_write=True)
        replays: list[str] = []
        journals.read_again(SHARE_GROUP_STATE.name, 0, lambda _: replays.append("first"), owned=("topic", 0))
        journals.read_again(SHARE_GROUP_STATE.name, 0, lambda _: replays.append("other keys"), owned=("topic", 1))
        journals.read_again(SHARE_GROUP_STATE.name, 0, lambda _: replays.append("again"), owned=("topic", 0))
        for _ in range(500):
            if len(replays) >= 2:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # time for an abandoned read to replay, were it not abandoned
        assert sorted(replays) == ["again", "other keys"]
    finally:
        await journals.close(5)
        await storage.close_database()
