"""A transaction whose markers go into database partitions (written by tasks) completes only once
they are in, as Kafka's coordinator writes CompleteCommit only after every marker was acked: until
then it is in PrepareCommit, where the producer's next requests are CONCURRENT_TRANSACTIONS, and a
coordinator that stopped meanwhile leaves PrepareCommit in `__transaction_state` for the next one
to write the markers again. The database partitions here are the in-memory storage's, their
appends turned into coroutines that wait until the test lets them through."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ottla.server.cluster.state import ClusterState
from ottla.server.config import BrokerConfig
from ottla.server.coordinator import OFFSETS_TOPIC, TRANSACTION_STATE, CoordinatorLog
from ottla.server.groups import CommitEntry
from ottla.server.txn import TransactionCoordinator, TxnConfig
from ottla.server.txn.coordinator import ProducerIdManager
from ottla.server.txn.marker_channel import OffsetsMarkerChannel
from ottla.server.txn.state import TxnState
from ottla.server.txn.verification import raise_for_answer
from ottla.storage import Storage
from ottla.wire.errors import ErrorCode, KafkaError
from tests.server.test_txn_coordinator import TIMEOUT_MS, Harness


class _GatedPartition:
    """A partition whose append is a coroutine that waits for `gate` (the database answering)."""

    def __init__(self, log: Any, gate: asyncio.Event) -> None:
        self._log = log
        self._gate = gate

    async def append(self, batch: bytes, from_client: bool = True) -> Any:
        await self._gate.wait()
        return self._log.append(batch, from_client=from_client)


class _DatabaseLike:
    """The harness's storage with `topics` (topic "t" unless told) taken for database topics."""

    def __init__(self, storage: Storage, gate: asyncio.Event, topics: frozenset[str] = frozenset({"t"})) -> None:
        self._storage = storage
        self._gate = gate
        self._topics = topics

    def is_database_topic(self, name: str) -> bool:
        return name in self._topics

    def partition(self, topic: str, index: int) -> Any:
        log = self._storage.partition(topic, index)
        return _GatedPartition(log, self._gate) if topic in self._topics else log

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)


def _coordinator(h: Harness, storage: Any) -> TransactionCoordinator:
    coordinator = TransactionCoordinator(CoordinatorLog(h.storage, TRANSACTION_STATE, 1), storage, h.groups, ProducerIdManager(None), TxnConfig(), h.clock)
    coordinator.load()
    return coordinator


async def test_a_transaction_completes_once_its_database_markers_are_in_and_a_stop_before_leaves_it_prepared() -> None:
    h = Harness()
    gate = asyncio.Event()
    coordinator = _coordinator(h, _DatabaseLike(h.storage, gate))
    try:
        init = coordinator.init_producer_id("tx", TIMEOUT_MS)
        pid, epoch = init.producer_id, init.producer_epoch
        assert coordinator.add_partitions("tx", pid, epoch, {("t", 0), ("t", 1)}) is ErrorCode.NONE
        h.produce(pid, epoch, 0)
        assert coordinator.end_transaction("tx", pid, epoch, commit=True).error is ErrorCode.NONE
        await asyncio.sleep(0)
        txn = coordinator.describe("tx")
        assert txn is not None and txn.state is TxnState.PREPARE_COMMIT and txn.partitions == {("t", 0), ("t", 1)}
        assert coordinator.init_producer_id("tx", TIMEOUT_MS).error is ErrorCode.CONCURRENT_TRANSACTIONS
        assert coordinator.add_partitions("tx", pid, epoch, {("t", 0)}) is ErrorCode.CONCURRENT_TRANSACTIONS
        assert coordinator.abort_timed_out() == 0 and txn.state is TxnState.PREPARE_COMMIT  # the sweep leaves it to its markers

        # A coordinator loading the log now (this one stopped) finds PrepareCommit and writes the
        # markers again, here straight into the partitions, then completes.
        successor = _coordinator(h, h.storage)
        assert successor.describe("tx").state is TxnState.COMPLETE_COMMIT  # type: ignore[union-attr]
        assert [marker for _, is_marker, marker in h.batches(1) if is_marker] == [b"\x00\x00\x00\x01"]
        successor.close()

        gate.set()
        await coordinator.completion("tx")
        assert txn.state is TxnState.COMPLETE_COMMIT and not txn.partitions
        assert await coordinator.database_markers.settled([("t", 0), ("t", 1)]) == {("t", 0): ErrorCode.NONE, ("t", 1): ErrorCode.NONE}
        assert coordinator.init_producer_id("tx", TIMEOUT_MS).error is ErrorCode.NONE
    finally:
        coordinator.close()
        h.close()


async def test_a_marker_for_offsets_this_broker_is_still_loading_waits_for_the_load() -> None:
    """A broker that has just taken a `__consumer_offsets` partition over replays it before its
    groups' pending offsets are in memory. A marker applied meanwhile would find none, and the
    replay, having read the log before the marker, would leave them pending for good: so the marker
    is retried until the load is done, then written, and it commits them."""
    h = Harness()
    gate = asyncio.Event()
    gate.set()
    storage = _DatabaseLike(h.storage, gate, frozenset({"t", OFFSETS_TOPIC}))
    coordinator = _coordinator(h, storage)
    loading = {h.groups.offsets_partition("g")}
    cluster = ClusterState([1], [None], None, lambda topic, index: 0, lambda topic, index, epoch: None)
    coordinator.offsets_marker_channel = OffsetsMarkerChannel(cluster, storage, BrokerConfig(), 1, 1, loading.__contains__)  # type: ignore[arg-type]
    try:
        init = coordinator.init_producer_id("tx", TIMEOUT_MS)
        pid, epoch = init.producer_id, init.producer_epoch
        assert coordinator.add_partitions("tx", pid, epoch, {("t", 0)}) is ErrorCode.NONE
        h.produce(pid, epoch, 0)
        assert coordinator.add_offsets("tx", pid, epoch, "g") is ErrorCode.NONE
        assert coordinator.check_offsets_commit("tx", pid, epoch, "g", 4) is ErrorCode.NONE
        assert h.groups.commit_transactional_offsets("g", pid, epoch, -1, "", None, [CommitEntry("t", 0, 5)]) == [ErrorCode.NONE]

        assert coordinator.end_transaction("tx", pid, epoch, commit=True).error is ErrorCode.NONE
        await asyncio.sleep(0.3)  # a few retries of the marker
        txn = coordinator.describe("tx")
        assert txn is not None and txn.state is TxnState.PREPARE_COMMIT
        assert h.groups.has_pending_transactional_offset("g", "t", 0)

        loading.clear()
        await asyncio.wait_for(coordinator.completion("tx"), 10)
        assert txn.state is TxnState.COMPLETE_COMMIT
        assert not h.groups.has_pending_transactional_offset("g", "t", 0)
        _, [(_, [(_, committed)])] = h.groups.fetch_offsets("g", [("t", [0])])
        assert committed is not None and committed.offset == 5
    finally:
        coordinator.close()
        h.close()


class _SharedDatabaseJournal:
    """A coordinator partition's journal among brokers over one database: whether this broker
    leads the partition and is still loading it, the batches it was asked to write, and what a
    load reads (the database's partition: here `storage`'s)."""

    def __init__(self, storage: Storage | None = None) -> None:
        self.leading = True
        self.loading_now = False
        self.appended: list[bytes] = []
        self._storage = storage

    def loaded(self, partition: int) -> Any:
        assert self._storage is not None
        return self._storage.partition(TRANSACTION_STATE.name, partition)

    def leads(self, partition: int) -> bool:
        return self.leading

    def loading(self, partition: int) -> bool:
        return self.loading_now

    def append(self, partition: int, batch: bytes) -> None:
        self.appended.append(batch)


def test_a_transaction_on_a_partition_moved_away_or_still_loading_is_refused_not_changed() -> None:
    """Over a shared database this broker's copy of a transaction is the record only while it
    leads the id's partition and has read it again since taking it over: a partition's leader
    asking for its produce (KIP-890, no handler's coordinator check on that path) and a local
    TxnOffsetCommit get NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS (the produce answers the
    client NOT_ENOUGH_REPLICAS, which it retries), and nothing is written."""
    h = Harness()
    coordinator = h.coordinator
    journal = _SharedDatabaseJournal()
    try:
        init = coordinator.init_producer_id("tx", TIMEOUT_MS)
        pid, epoch = init.producer_id, init.producer_epoch
        coordinator.log.journal = journal  # type: ignore[assignment]
        for leading, loading, refusal in ((True, True, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS), (False, False, ErrorCode.NOT_COORDINATOR)):
            journal.leading, journal.loading_now = leading, loading
            assert coordinator.add_partitions("tx", pid, epoch, {("t", 0)}, tv2=True) is refusal
            assert coordinator.verify_partitions("tx", pid, epoch, {("t", 0)}) == {("t", 0): refusal}
            assert coordinator.check_offsets_commit("tx", pid, epoch, "g", 5) is refusal
            assert coordinator.end_transaction("tx", pid, epoch, commit=True).error is refusal
            with pytest.raises(KafkaError) as produce_refused:
                raise_for_answer(refusal, 12)
            assert produce_refused.value.code is ErrorCode.NOT_ENOUGH_REPLICAS
            txn = coordinator.describe("tx")
            assert txn is not None and txn.state is TxnState.EMPTY and not txn.partitions
            assert journal.appended == []

        journal.leading, journal.loading_now = True, False
        assert coordinator.add_partitions("tx", pid, epoch, {("t", 0)}, tv2=True) is ErrorCode.NONE
        assert len(journal.appended) == 1
    finally:
        h.close()


async def test_a_broker_starting_over_a_shared_database_finishes_no_transaction_before_it_leads() -> None:
    """A broker joining brokers over one database reads every transaction at its start, some of
    them in the hands of live brokers: a Prepare state it finished then would get a second set of
    markers (one landing after its producer's next transaction began would end that one too). It
    finishes a transaction only once it leads the id's partition and has read it again; its timer
    leaves alone the ids it does not lead or is still reading."""
    h = Harness()
    gate = asyncio.Event()
    live = _coordinator(h, _DatabaseLike(h.storage, gate))
    journal = _SharedDatabaseJournal(h.storage)
    journal.leading = False
    log = CoordinatorLog(h.storage, TRANSACTION_STATE, 1)
    log.journal = journal  # type: ignore[assignment]
    starting = TransactionCoordinator(log, h.storage, h.groups, ProducerIdManager(None), TxnConfig(), h.clock)
    try:
        init = live.init_producer_id("tx", TIMEOUT_MS)
        pid, epoch = init.producer_id, init.producer_epoch
        assert live.add_partitions("tx", pid, epoch, {("t", 0)}) is ErrorCode.NONE
        h.produce(pid, epoch, 0)
        assert live.end_transaction("tx", pid, epoch, commit=True).error is ErrorCode.NONE
        await asyncio.sleep(0)

        starting.load()
        for leading, loading in ((False, False), (True, True)):
            journal.leading, journal.loading_now = leading, loading
            assert starting.abort_timed_out() == 0
        described = starting.describe("tx")
        assert described is not None and described.state is TxnState.PREPARE_COMMIT
        assert [is_marker for _, is_marker, _ in h.batches(0)] == [False]
        assert journal.appended == []

        gate.set()
        await live.completion("tx")
        assert [is_marker for _, is_marker, _ in h.batches(0)] == [False, True]
    finally:
        starting.close()
        live.close()
        h.close()
