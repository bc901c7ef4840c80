"""The coordinators over a database: their topics' appends written in order and awaited before
an answer, and producer ids reserved in blocks.

The coordinators stay synchronous (sans-IO): a change appends its records to `CoordinatorLog`
and moves on. Over PostgreSQL a partition's append is a coroutine, so a topic's `Journal`
queues each batch and one task per partition writes them in order. Kafka answers a change only
once its record is written (CoordinatorRuntime completes a write's future at the high
watermark): `durable_coordinator_writes` wraps the coordinator APIs' handlers so that an answer
given while batches are queued waits until those batches are written. While the database is
away a batch is retried (a retried write that had reached the database is a second copy of the
same records, harmless to the replay); an answer that waited offsets.commit.timeout.ms is given
up and COORDINATOR_NOT_AVAILABLE answered instead, as Kafka answers a coordinator write that
timed out, so the client finds its coordinator again and retries.
A batch the database refuses for good (the topic deleted, a record too large, a transactional
batch of a fenced producer) is logged and dropped, and the answers that waited for it get the
error instead (the coordinator's memory then holds a change the database lacks until the
partition is read again).

A broker reads the coordinators' topics at start, leads none of their partitions until it has
joined the cluster, and when it gains leadership of one (its claim landed) reads that partition
again and the coordinator rebuilds its state of it (`Journals.leader_changed`), answering
COORDINATOR_LOAD_IN_PROGRESS for its keys meanwhile, as Kafka's new coordinator does; the read
comes after this broker's own batches still queued. The whole partition is read again: what this
broker loaded before may have been compacted or deleted since. A partition's writes carry this
broker's node id and the database stores none once another broker has claimed the partition, so
no record lands behind the new leader's read: the answers that waited for one refused so get
NOT_COORDINATOR, and their clients find the new coordinator.
The share groups' state topic is the exception (`Journal.owners_write`): each broker writes the
records of what it owns there (the share-partitions of the partitions it leads, the groups it
coordinates), whoever leads the topic's partition, and reads it again when it gains ownership
(`Journals.read_again`; the share groups of a `__consumer_offsets` partition within that
partition's load: `Journals.open`'s `loaded_with`).

What a coordinator changed is visible to other requests on this broker (OffsetFetch, Describe*)
as soon as it is queued, before it is written: Kafka's reads wait for the high watermark.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from ottla.server.context import RequestContext
from ottla.server.coordinator.log import default_setting, store_error
from ottla.server.coordinator.topics import InternalTopic
from ottla.server.faults import Fault
from ottla.storage.postgresql.coordinator_topics import LoadedPartition, load_partition, load_topic, reserve_producer_ids
from ottla.storage.postgresql.engine import PostgresStorage
from ottla.storage.postgresql.log import LeaderFence
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.header import RequestHeader
from ottla.wire.records.batch import TRANSACTIONAL_BIT, read_header

log = logging.getLogger("ottla.coordinator")

_FIRST_RETRY_S = 0.1
_LAST_RETRY_S = 1.0
# The most bytes of queued batches one append carries.
_MAX_WRITE_BYTES = 1 << 20

Handle = Callable[[RequestContext, RequestHeader, Any], Any]

# The APIs whose handlers change coordinator state: their answers wait for its records.
COORDINATOR_WRITES = frozenset(
    {
        ApiKey.OFFSET_COMMIT, ApiKey.TXN_OFFSET_COMMIT, ApiKey.OFFSET_DELETE, ApiKey.DELETE_GROUPS,
        ApiKey.JOIN_GROUP, ApiKey.SYNC_GROUP, ApiKey.HEARTBEAT, ApiKey.LEAVE_GROUP,
        ApiKey.CONSUMER_GROUP_HEARTBEAT, ApiKey.STREAMS_GROUP_HEARTBEAT, ApiKey.SHARE_GROUP_HEARTBEAT,
        ApiKey.SHARE_FETCH, ApiKey.SHARE_ACKNOWLEDGE, ApiKey.ALTER_SHARE_GROUP_OFFSETS, ApiKey.DELETE_SHARE_GROUP_OFFSETS,
        ApiKey.INIT_PRODUCER_ID, ApiKey.ADD_PARTITIONS_TO_TXN, ApiKey.ADD_OFFSETS_TO_TXN, ApiKey.END_TXN, ApiKey.WRITE_TXN_MARKERS,
    }
)


class _PartitionWriter:
    """One partition's queued batches, written in order by one task: those queued while an
    append is under way go together in the next (one statement, one round trip), but a
    transactional batch goes alone, so that the producer rules' refusal of it loses no other.
    With `only_leader` (this broker's node id) the database refuses the batches once another
    broker has claimed the partition: that broker read it after its claim, so a batch stored
    later would be missing from its state. Each batch also carries the leader epoch this broker
    knew when it queued it, and is refused once the partition's epoch has moved: a broker that
    lost the partition and claimed it back decided it on a state that missed what the other
    wrote meanwhile (as Kafka's coordinator writes fail once its leader epoch is gone). The
    waits that covered a refused batch fail, so no answer says a change was stored that was not."""

    def __init__(
        self, storage: PostgresStorage, topic: str, index: int, notify_data: Callable[[str, int], None], only_leader: int | None = None,
    ) -> None:
        self.storage = storage
        self.topic = topic
        self.index = index
        self.notify_data = notify_data
        self.only_leader = only_leader
        # (batch, the leader epoch it was decided under: None when there is no claim to check)
        self.queued: deque[tuple[bytes, int | None]] = deque()
        self.appended = 0  # batches ever queued
        self.written = 0  # of those, written (or dropped for good)
        # Where the last batches the database refused end (in `written`'s count), and what the
        # answers that waited for them say instead.
        self.refused_end = 0
        self.refusal = ErrorCode.NONE
        # (written when the wait began, the batches it waits for, its future)
        self.waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self.task: asyncio.Task[None] | None = None

    def append(self, batch: bytes, leader_epoch: int | None = None) -> None:
        self.queued.append((batch, leader_epoch))
        self.appended += 1
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._write_queued())

    async def _write_queued(self) -> None:
        try:
            while self.queued:
                count = self._next_write()
                batches = [batch for batch, _ in itertools.islice(self.queued, count)]
                refusal = await self._write(b"".join(batches), self.queued[0][1])
                if refusal is not ErrorCode.NONE:
                    self.refused_end, self.refusal = self.written + count, refusal
                for _ in range(count):
                    self.queued.popleft()
                self.written += count
                self._wake()
        finally:
            self.task = None

    def _next_write(self) -> int:
        """How many of the queued batches the next append carries: all of one leader epoch."""
        count = size = 0
        first_epoch = self.queued[0][1]
        for batch, leader_epoch in self.queued:
            transactional = read_header(batch).attributes & TRANSACTIONAL_BIT
            if count and (transactional or size + len(batch) > _MAX_WRITE_BYTES or leader_epoch != first_epoch):
                break
            count += 1
            size += len(batch)
            if transactional:
                break
        return count

    async def _write(self, batch: bytes, leader_epoch: int | None) -> ErrorCode:
        """Store `batch`, retrying while the database is away or fails in a way a later attempt
        may get past: NONE once stored, else what the answers that waited for it say."""
        delay = _FIRST_RETRY_S
        fence = None if self.only_leader is None else LeaderFence(self.only_leader, leader_epoch)
        while True:
            partition = self.storage.partition(self.topic, self.index)
            partition.fence = fence
            try:
                await partition.append(batch, from_client=False)
            except KafkaError as exc:
                if exc.code is ErrorCode.NOT_LEADER_FOR_PARTITION:
                    log.info("records of %s-%d not written: %s", self.topic, self.index, exc.message)
                    return ErrorCode.NOT_COORDINATOR
                if exc.code is not ErrorCode.KAFKA_STORAGE_ERROR:
                    log.error("records of %s-%d were refused by the database: %s", self.topic, self.index, exc)
                    return store_error(exc.code)
                reason = exc.message
            except Exception as exc:  # the driver's other errors (a database failing over), which only storage names
                reason = repr(exc)
            else:
                self.notify_data(self.topic, self.index)
                return ErrorCode.NONE
            log.warning("records of %s-%d are not written yet, retrying in %.1f s: %s", self.topic, self.index, delay, reason)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _LAST_RETRY_S)

    def _wake(self) -> None:
        """Wake the waits whose batches are all written (or refused). A wait is woken at the
        first write that reaches its last batch, so the last refused batches lie in its range
        exactly when they end after its first."""
        waiting = []
        for start, target, waiter in self.waiters:
            if target > self.written:
                waiting.append((start, target, waiter))
            elif waiter.done():
                continue
            elif self.refused_end > start:
                waiter.set_exception(KafkaError(self.refusal, f"records of {self.topic}-{self.index} were not stored"))
            else:
                waiter.set_result(None)
        self.waiters = waiting

    def until_written(self) -> asyncio.Future[None] | None:
        """A future done once every batch queued so far is written; None if they are. It
        fails (KafkaError: NOT_COORDINATOR when another broker leads the partition now) if the
        database refused one of them."""
        if self.written >= self.appended:
            return None
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append((self.written, self.appended, waiter))
        return waiter


class Journal:
    """A coordinator topic's `CoordinatorJournal`: its partitions' writers, what each partition
    held when last read for the coordinator's load, and the partitions being read again."""

    def __init__(self, journals: Journals, topic: str, loaded: list[LoadedPartition], owners_write: bool = False) -> None:
        self._journals = journals
        self._topic = topic
        self._loaded = loaded
        # Whether every broker writes the records of the keys it owns, whoever leads the
        # partition: the share-partitions' state, written by their topic partitions' leaders and
        # their groups' coordinators (in Kafka through the share coordinator, WriteShareGroupState).
        self.owners_write = owners_write
        only_leader = None if owners_write else journals.node_id
        self._writers = [_PartitionWriter(journals.storage, topic, index, journals.notify_data, only_leader) for index in range(len(loaded))]
        # Partitions whose leadership this broker gained, until their records are replayed.
        self._loading: set[int] = set()

    def append(self, partition: int, batch: bytes) -> None:
        if not self.owners_write and (not self.leads(partition) or partition in self._loading):
            # Another broker coordinates the partition's keys (requests for them are sent
            # there), or did until this broker's load of them ends: this broker's copy changed
            # by its own timers is not the record.
            return
        self._writers[partition].append(batch, None if self.owners_write else self._journals.leader_epoch(self._topic, partition))
        self._journals.unwritten.add(self._writers[partition])

    def leads(self, partition: int) -> bool:
        return self._journals.leads(self._topic, partition)

    def loaded(self, partition: int) -> LoadedPartition:
        return self._loaded[partition]

    def loading(self, partition: int) -> bool:
        return partition in self._loading

    def loading_any(self) -> bool:
        return bool(self._loading)

    def stop(self) -> None:
        for writer in self._writers:
            if writer.task is not None:
                writer.task.cancel()

    def loading_changed(self, partition: int, loading: bool) -> None:
        if loading:
            self._loading.add(partition)
        else:
            self._loading.discard(partition)

    async def reload(self, partition: int, replay: Callable[[int], None], along: Sequence[Journal] = ()) -> None:
        """Read the partition again from the database (every partition of an `owners_write`
        journal: the keys an owner gains are spread over them), and every partition of the
        `along` journals (whose keys come with it: `Journals.open`'s `loaded_with`), then
        `replay(partition)` while this broker still leads it; the partition's load has ended
        when the replay begins, so what the replay appends is written, and nothing of the
        partition's keys was written between the reads and the replay."""
        own = range(len(self._loaded)) if self.owners_write else (partition,)
        read_own = [(self, index, read) for index, read in zip(own, await asyncio.gather(*(self._read(index) for index in own)))]
        read_along = [(journal, index, await journal._read(index)) for journal in along for index in range(len(journal._loaded))]
        if self.owners_write or self.leads(partition):
            for journal, index, read in [*read_own, *read_along]:
                journal._loaded[index] = read
            # The replay's own writes (a transaction it finishes) are made from what was just
            # read: they are the record, unlike those of this broker's copy from before.
            self._loading.discard(partition)
            replay(partition)

    async def _read(self, partition: int) -> LoadedPartition:
        """The partition as the database holds it, read once this broker's batches queued
        before the read are written or refused (the epoch moved): their answers wait for them,
        so a read that missed them would leave the replay without what they acknowledged. A
        read the database fails is retried."""
        queued = self._writers[partition].until_written()
        if queued is not None:
            with contextlib.suppress(KafkaError):  # refused: not in the database
                await queued
        delay = _FIRST_RETRY_S
        while True:
            try:
                return await load_partition(self._journals.storage, self._topic, partition)
            except Exception as exc:  # the driver's errors too, which only storage names
                log.warning("%s-%d is not loaded yet, retrying in %.1f s: %s", self._topic, partition, delay, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _LAST_RETRY_S)


class Journals:
    """The broker's journals, one per coordinator topic in the database, and the writes of all
    of them an answer waits for."""

    def __init__(
        self, storage: PostgresStorage, notify_data: Callable[[str, int], None], leads: Callable[[str, int], bool], write_timeout_ms: int,
        node_id: int | None = None, leader_epoch: Callable[[str, int], int | None] = lambda topic, index: None,
        setting: Callable[[str], Any] = default_setting,
    ) -> None:
        self.storage = storage
        # The broker's settings (BrokerConfig.value), which the topics' configs derive from.
        self.setting = setting
        # This broker's node id: its coordinator writes are stored only while no other broker
        # has claimed their partition (`_PartitionWriter.only_leader`).
        self.node_id = node_id
        self.notify_data = notify_data
        # How long an answer waits for its records (offsets.commit.timeout.ms).
        self.write_timeout_s = write_timeout_ms / 1000
        # Whether this broker leads a partition of a coordinator topic (always, alone on the database).
        self.leads = leads
        # The partition's leader epoch as this broker last read it (None alone on the database):
        # the epoch its coordinator's writes are decided under.
        self.leader_epoch = leader_epoch
        # Writers with batches queued since they were last found all written.
        self.unwritten: set[_PartitionWriter] = set()
        # The loads of coordinator partitions whose leadership this broker gained.
        self._reloads: dict[tuple[str, int], asyncio.Task[None]] = {}
        # The reads of `owners_write` partitions under way (`read_again`), by what they are for.
        self._reads_again: dict[Hashable, asyncio.Task[None]] = {}
        # By coordinator topic, the `owners_write` journals whose keys this broker owns through
        # that topic's partitions (`open`'s `loaded_with`).
        self._loaded_with: dict[str, list[Journal]] = {}
        self._producer_ids: DatabaseProducerIds | None = None

    async def open(self, topic: InternalTopic, partitions: int, owners_write: bool = False, loaded_with: str | None = None) -> None:
        """The topic in the database (created if missing), read whole for the coordinator's
        load, and its journal where `CoordinatorLog` finds it (`Journal.owners_write`). With
        `loaded_with`, the coordinator topic through whose partitions this broker owns some of
        its keys (the share groups of a `__consumer_offsets` partition): each load of one of
        that topic's partitions reads this topic again too, before the replay, as Kafka keeps
        such keys' records in that partition itself. Read after the load, a key first written
        in between (a share group joined once the partition is served) would be missing from
        the read, and its replay would drop the key."""
        loaded = await load_topic(self.storage, topic.name, partitions, topic.configs(self.setting))
        journal = Journal(self, topic.name, loaded, owners_write)
        self.storage.coordinator_journals[topic.name] = journal
        if loaded_with is not None:
            self._loaded_with.setdefault(loaded_with, []).append(journal)

    def leader_changed(self, topic: str, index: int, replay: Callable[[int], None]) -> None:
        """A partition's leader changed. Of a coordinator topic, and to this broker: another
        broker coordinated its keys and wrote their records, so this broker's copy is read
        again from the database and `replay(index)` rebuilds the coordinator's state of it
        (Kafka's new coordinator loads the partition likewise). Until it has, the coordinator
        answers COORDINATOR_LOAD_IN_PROGRESS for the partition's keys and writes none of its
        records. A load under way for a partition that moved again is abandoned. The journals
        `loaded_with` the topic are read again within the load (`open`)."""
        journal = self.storage.coordinator_journals.get(topic)
        if not isinstance(journal, Journal) or journal.owners_write:
            return
        key = (topic, index)
        under_way = self._reloads.pop(key, None)
        if under_way is not None:
            under_way.cancel()
            journal.loading_changed(index, False)
        if not journal.leads(index):
            return
        journal.loading_changed(index, True)
        task = asyncio.get_running_loop().create_task(journal.reload(index, replay, self._loaded_with.get(topic, ())))
        self._reloads[key] = task

        def done(finished: asyncio.Task[None]) -> None:
            if self._reloads.get(key) is finished:
                del self._reloads[key]
                journal.loading_changed(index, False)
                if not finished.cancelled() and finished.exception() is not None:
                    log.error("%s-%d was not loaded: %s", topic, index, finished.exception())

        task.add_done_callback(done)

    def read_again(self, topic: str, index: int, replay: Callable[[int], None], owned: Hashable) -> None:
        """Read a partition of an `owners_write` journal again from the database, then
        `replay(index)`: a broker that gained ownership of some of its keys (`owned`: a topic
        partition's share-partitions, the share groups of a `__consumer_offsets` partition)
        rebuilds their state from what their previous owner wrote. A read under way for the
        same `owned` is abandoned: ownership that went and came back again meanwhile makes it
        older than what the new owner wrote in between, and it could end after the new read."""
        journal = self.storage.coordinator_journals.get(topic)
        if not isinstance(journal, Journal) or not journal.owners_write:
            return
        under_way = self._reads_again.pop(owned, None)
        if under_way is not None:
            under_way.cancel()
        task = asyncio.get_running_loop().create_task(journal.reload(index, replay))
        self._reads_again[owned] = task

        def done(finished: asyncio.Task[None]) -> None:
            if self._reads_again.get(owned) is finished:
                del self._reads_again[owned]
            if not finished.cancelled() and finished.exception() is not None:
                log.error("%s-%d was not read again: %s", topic, index, finished.exception())

        task.add_done_callback(done)

    async def open_producer_ids(self, block_size: int) -> DatabaseProducerIds:
        """The transaction coordinator's producer ids, from blocks of `block_size` reserved in the database."""
        self._producer_ids = DatabaseProducerIds(self.storage, block_size, await reserve_producer_ids(self.storage.pool, block_size))
        return self._producer_ids

    async def written(self) -> None:
        """Return once every batch queued so far is written."""
        waiters = []
        for writer in list(self.unwritten):
            waiter = writer.until_written()
            if waiter is None:
                self.unwritten.discard(writer)
            else:
                waiters.append(waiter)
        if waiters:
            await asyncio.gather(*waiters)

    async def close(self, timeout_s: float) -> None:
        """Give the queued batches `timeout_s` to be written (a stop while the database is
        away loses them: their answers were never given), then stop the writers."""
        try:
            await asyncio.wait_for(self.written(), timeout_s)
        except TimeoutError:
            log.warning("stopping with coordinator records not written to the database")
        except KafkaError as exc:
            log.info("stopping with coordinator records the database refused: %s", exc.message)
        for reload in [*self._reloads.values(), *self._reads_again.values()]:
            reload.cancel()
        for journal in self.storage.coordinator_journals.values():
            if isinstance(journal, Journal):
                journal.stop()
        self.storage.coordinator_journals.clear()
        if self._producer_ids is not None:
            self._producer_ids.close()


def durable_coordinator_writes(handlers: Mapping[int, tuple[Handle, int, int]], journals: Callable[[], Journals | None]) -> dict[int, tuple[Handle, int, int]]:
    """The handler table with each coordinator API's answer held until the coordinator records
    queued by then are written (`journals()` is the running broker's, None when stopped)."""
    table = dict(handlers)
    for api in COORDINATOR_WRITES:
        if api in table:
            handle, lowest, highest = table[api]
            table[api] = (_durable(handle, journals), lowest, highest)
    return table


def _durable(handle: Handle, journals: Callable[[], Journals | None]) -> Handle:
    def durable_handle(context: RequestContext, header: RequestHeader, request: Any) -> Any:
        result = handle(context, header, request)
        running = journals()
        if running is None:
            return result
        if asyncio.iscoroutine(result) or running.unwritten:
            return _answer_when_written(running, result, header, request)
        return result

    return durable_handle


async def _answer_when_written(journals: Journals, result: Any, header: RequestHeader, request: Any) -> Any:
    answer = await result if asyncio.iscoroutine(result) else result
    try:
        await asyncio.wait_for(journals.written(), journals.write_timeout_s)
    except TimeoutError:
        unavailable = _error_answer(header, request, ErrorCode.COORDINATOR_NOT_AVAILABLE)
        if unavailable is not None:
            return unavailable
        with contextlib.suppress(KafkaError):
            await journals.written()  # an answer with no place for an error: it waits on
    except KafkaError as exc:
        # Records queued before this answer were not stored (NOT_COORDINATOR: refused to the
        # partition's new leader, so the client asks again and finds it).
        refused = _error_answer(header, request, exc.code)
        if refused is not None:
            return refused
    return answer


def _error_answer(header: RequestHeader, request: Mapping[str, Any], error: ErrorCode) -> dict[str, Any] | None:
    """The API's answer with `error` wherever it puts errors (the faults module knows where)."""
    fault = Fault(0, "coordinator write", None, None, None, None, None, int(error), 0, None, 0, None, 1)
    answer = fault.error_response(header, request)
    if answer is not None:
        answer.setdefault("throttle_time_ms", 0)
    return answer


class DatabaseProducerIds:
    """Producer ids from blocks reserved in the database (the transaction coordinator's
    `producer_ids`): the next block is reserved while half of the current one is left, so
    `generate` never waits. Ids of a block left unused at a stop are never given out."""

    def __init__(self, storage: PostgresStorage, block_size: int, first: int) -> None:
        self._storage = storage
        self._block_size = block_size
        self._next = first
        self._end = first + block_size
        self._reserved: list[int] = []
        self._reserving: asyncio.Task[None] | None = None

    def generate(self) -> int:
        if self._next >= self._end:
            if not self._reserved:
                raise KafkaError(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, "the next block of producer ids is not reserved yet")
            self._next = self._reserved.pop(0)
            self._end = self._next + self._block_size
        producer_id = self._next
        self._next += 1
        if self._end - self._next < self._block_size // 2 and not self._reserved and self._reserving is None:
            self._reserving = asyncio.get_running_loop().create_task(self._reserve())
        return producer_id

    async def _reserve(self) -> None:
        delay = _FIRST_RETRY_S
        try:
            while True:
                try:
                    self._reserved.append(await reserve_producer_ids(self._storage.pool, self._block_size))
                    return
                except Exception as exc:  # the driver's errors too, which only storage names
                    log.warning("no block of producer ids reserved yet, retrying in %.1f s: %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _LAST_RETRY_S)
        finally:
            self._reserving = None

    def close(self) -> None:
        if self._reserving is not None:
            self._reserving.cancel()
