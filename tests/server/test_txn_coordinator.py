"""The transaction state machine and coordinator driven directly: no sockets, no event loop.

The coordinator runs over a real Storage (in memory, or a directory for the restart
cases) and a manual clock, so timeouts are crossed by advancing time, and what a
restart recovers is exactly what was written to `__transaction_state` and the logs.
"""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from ottla.server.coordinator import OFFSETS, OFFSETS_TOPIC, TRANSACTION_STATE, TRANSACTION_STATE_TOPIC, CoordinatorLog
from ottla.server.groups import CommitEntry, GroupConfig, GroupCoordinator
from ottla.server.txn import TransactionCoordinator, TxnConfig
from ottla.server.txn.coordinator import PRODUCER_ID_BLOCK_SIZE, ProducerIdManager
from ottla.server.txn.records import TxnRecord, parse_txn_key, parse_txn_value, txn_key, txn_value
from ottla.server.txn.state import VALID_PREVIOUS_STATES, IllegalTransition, TxnState, check_transition
from ottla.server.txn.verification import verify_transactional_produce
from ottla.storage import Storage
from tests.server.test_groups_coordinator import WALL_CLOCK_BASE_MS, ManualClock
from tests.storage.conftest import read_bytes
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.records import Record, build_batch, iter_records, read_header, scan_batches

TIMEOUT_MS = 60_000


class Harness:
    """`transaction_version` is the finalized transaction.version: Kafka 4.4 formats at 2."""

    def __init__(self, data_dir: pathlib.Path | None = None, clock: ManualClock | None = None, transaction_version: int = 2, **config: Any) -> None:
        self.storage = Storage.open(data_dir)
        self.storage.create_topic("t", 2) if self.storage.topic("t") is None else None
        self.clock = clock or ManualClock()
        wall = lambda: WALL_CLOCK_BASE_MS + int(self.clock.now * 1000)  # noqa: E731
        self.groups = GroupCoordinator(CoordinatorLog(self.storage, OFFSETS, 1), GroupConfig(), self.clock, wall_clock_ms=wall)
        self.groups.load()
        self.coordinator = TransactionCoordinator(
            CoordinatorLog(self.storage, TRANSACTION_STATE, 1),
            self.storage,
            self.groups,
            ProducerIdManager(data_dir),
            TxnConfig(**config),
            self.clock,
            wall_clock_ms=wall,
            transaction_version=lambda: transaction_version,
        )
        self.coordinator.load()

    def produce(self, producer_id: int, epoch: int, seq: int, partition: int = 0, value: bytes = b"v") -> None:
        batch = build_batch([Record(0, 1000, None, value)], producer_id=producer_id, producer_epoch=epoch, base_sequence=seq, transactional=True)
        self.storage.partition("t", partition).append(batch)

    def batches(self, partition: int = 0) -> list[tuple[int, bool, bytes]]:
        """(producer epoch, is a marker, first record value or marker key) of every batch."""
        log = self.storage.partition("t", partition)
        out: list[tuple[int, bool, bytes]] = []
        offset = 0
        while offset < log.high_watermark:  # a read stops at a segment's end
            for header, batch in scan_batches(read_bytes(log.read(offset, 1 << 20))):
                record = next(iter_records(batch))
                out.append((header.producer_epoch, header.is_control, bytes(record.key if header.is_control else record.value)))
                offset = header.next_offset
        return out

    def close(self) -> None:
        self.coordinator.close()
        self.groups.close()
        self.storage.close()


def _begin(h: Harness, tid: str = "tx") -> tuple[int, int]:
    init = h.coordinator.init_producer_id(tid, TIMEOUT_MS)
    assert init.error is ErrorCode.NONE
    assert h.coordinator.add_partitions(tid, init.producer_id, init.producer_epoch, {("t", 0), ("t", 1)}) is ErrorCode.NONE
    return init.producer_id, init.producer_epoch


COMMIT_KEY, ABORT_KEY = b"\x00\x00\x00\x01", b"\x00\x00\x00\x00"


# --- the table ---------------------------------------------------------------------


@pytest.mark.parametrize("target", list(TxnState))
@pytest.mark.parametrize("current", list(TxnState))
def test_every_transition_is_allowed_exactly_when_the_table_says(current: TxnState, target: TxnState) -> None:
    if current in VALID_PREVIOUS_STATES[target]:
        check_transition(current, target)
    else:
        with pytest.raises(IllegalTransition):
            check_transition(current, target)


def test_the_table_is_kafkas() -> None:
    """Spot checks against TransactionState.java: a commit can only follow Ongoing, an
    abort also follows the epoch fence and (transaction version 2) an idle id, and
    nothing leaves Dead."""
    assert VALID_PREVIOUS_STATES[TxnState.PREPARE_COMMIT] == {TxnState.ONGOING}
    assert VALID_PREVIOUS_STATES[TxnState.PREPARE_ABORT] == {
        TxnState.ONGOING, TxnState.PREPARE_EPOCH_FENCE, TxnState.EMPTY, TxnState.COMPLETE_COMMIT, TxnState.COMPLETE_ABORT
    }
    assert not any(TxnState.DEAD in previous for previous in VALID_PREVIOUS_STATES.values())
    assert [TxnState.from_id(i) for i in range(8)] == list(TxnState)


def test_records_round_trip_in_kafkas_layout() -> None:
    record = TxnRecord(42, 3, 60000, TxnState.ONGOING, frozenset({("a", 1), ("a", 0), ("b", 2)}), 1234, 1200)
    value = txn_value(record)
    assert value[:2] == b"\x00\x00" and value[2:10] == (42).to_bytes(8, "big") and value[16] == 1  # version, producer id, status
    assert parse_txn_value(value) == record
    assert parse_txn_key(txn_key("my-id")) == "my-id" and txn_key("my-id") == b"\x00\x00\x00\x05my-id"


def test_value_version_1_is_kafkas_flexible_layout_with_tagged_fields() -> None:
    """TransactionLogValue v1: compact arrays and strings, and the tagged fields written only
    when not at their defaults (ClientTransactionVersion is tag 2, PreviousProducerId tag 0)."""
    record = TxnRecord(42, 3, 60000, TxnState.ONGOING, frozenset({("a", 1), ("a", 0)}), 1234, 1200, client_transaction_version=2)
    value = txn_value(record, version=1)
    head = (1).to_bytes(2, "big") + (42).to_bytes(8, "big") + (3).to_bytes(2, "big") + (60000).to_bytes(4, "big") + b"\x01"
    partitions = b"\x02" + b"\x02a" + b"\x03" + (0).to_bytes(4, "big") + (1).to_bytes(4, "big") + b"\x00"
    times = (1234).to_bytes(8, "big") + (1200).to_bytes(8, "big")
    assert value == head + partitions + times + b"\x01" + b"\x02\x02\x00\x02"
    assert parse_txn_value(value) == record
    rotated = TxnRecord(43, 0, 60000, TxnState.EMPTY, frozenset(), 1, -1, client_transaction_version=2, previous_producer_id=42)
    value = txn_value(rotated, version=1)
    assert value[17] == 0  # an Empty state's partitions are null, as Kafka writes them
    assert value[-15:] == b"\x02" + b"\x00\x08" + (42).to_bytes(8, "big") + b"\x02\x02\x00\x02"
    assert parse_txn_value(value) == rotated
    # Version 0 has no tagged fields: the client's transaction version is not kept.
    assert parse_txn_value(txn_value(rotated, version=0)) == TxnRecord(43, 0, 60000, TxnState.EMPTY, frozenset(), 1, -1)
    assert txn_value(rotated, version=0)[17:21] == b"\xff\xff\xff\xff"


# --- InitProducerId ----------------------------------------------------------------


def test_idempotent_producers_get_fresh_ids_at_epoch_zero() -> None:
    h = Harness()
    first, second = h.coordinator.init_producer_id(None, 0), h.coordinator.init_producer_id(None, 0)
    assert (first.producer_epoch, second.producer_epoch) == (0, 0) and first.producer_id != second.producer_id


def test_producer_ids_stay_unique_across_restarts(tmp_path: pathlib.Path) -> None:
    ids = ProducerIdManager(tmp_path)
    given = [ids.generate() for _ in range(3)]
    again = ProducerIdManager(tmp_path)
    assert again.generate() == PRODUCER_ID_BLOCK_SIZE and given == [0, 1, 2]


def test_a_transactional_id_keeps_its_producer_id_and_bumps_its_epoch() -> None:
    h = Harness()
    first = h.coordinator.init_producer_id("tx", TIMEOUT_MS)
    second = h.coordinator.init_producer_id("tx", TIMEOUT_MS)
    assert (second.producer_id, second.producer_epoch) == (first.producer_id, first.producer_epoch + 1)
    assert h.coordinator.add_partitions("tx", first.producer_id, first.producer_epoch, {("t", 0)}) is ErrorCode.PRODUCER_FENCED


@pytest.mark.parametrize(("tid", "timeout", "error"), [("", TIMEOUT_MS, ErrorCode.INVALID_REQUEST), ("tx", 0, ErrorCode.INVALID_TRANSACTION_TIMEOUT), ("tx", 900_001, ErrorCode.INVALID_TRANSACTION_TIMEOUT)])
def test_bad_init_requests(tid: str, timeout: int, error: ErrorCode) -> None:
    assert Harness().coordinator.init_producer_id(tid, timeout).error is error


def test_kip_360_bump_with_a_stale_epoch_is_fenced() -> None:
    """The epoch just bumped from is a retry of that bump (answered as it was); one before it is stale."""
    h = Harness()
    first = h.coordinator.init_producer_id("tx", TIMEOUT_MS)
    bumped = h.coordinator.init_producer_id("tx", TIMEOUT_MS, first.producer_id, first.producer_epoch)
    assert bumped.producer_epoch == first.producer_epoch + 1
    again = h.coordinator.init_producer_id("tx", TIMEOUT_MS, first.producer_id, first.producer_epoch)
    assert (again.error, again.producer_epoch) == (ErrorCode.NONE, bumped.producer_epoch)
    h.coordinator.init_producer_id("tx", TIMEOUT_MS, bumped.producer_id, bumped.producer_epoch)
    assert h.coordinator.init_producer_id("tx", TIMEOUT_MS, first.producer_id, first.producer_epoch).error is ErrorCode.PRODUCER_FENCED


def test_a_new_producer_aborts_and_fences_the_open_transaction_of_the_old_one() -> None:
    h = Harness()
    pid, epoch = _begin(h)
    h.produce(pid, epoch, 0, value=b"zombie")
    assert h.storage.partition("t", 0).last_stable_offset == 0
    # Kafka's handleInitProducerId: the abort is started and the first answer is
    # CONCURRENT_TRANSACTIONS; the producer's retry gets its epoch.
    assert h.coordinator.init_producer_id("tx", TIMEOUT_MS).error is ErrorCode.CONCURRENT_TRANSACTIONS
    new = h.coordinator.init_producer_id("tx", TIMEOUT_MS)
    assert new.producer_epoch > epoch + 1  # the abort itself ran at a fenced epoch
    assert h.batches() == [(epoch, False, b"zombie"), (epoch + 1, True, ABORT_KEY)]
    assert h.storage.partition("t", 0).last_stable_offset == 2
    with pytest.raises(Exception) as raised:
        h.produce(pid, epoch, 1)  # the old producer's late write
    assert raised.value.code is ErrorCode.INVALID_PRODUCER_EPOCH


# --- the transaction ---------------------------------------------------------------


def test_commit_writes_markers_into_every_partition_and_a_retry_succeeds() -> None:
    h = Harness()
    pid, epoch = _begin(h)
    h.produce(pid, epoch, 0)
    assert h.coordinator.describe("tx").state is TxnState.ONGOING
    assert h.coordinator.end_transaction("tx", pid, epoch, commit=True).error is ErrorCode.NONE
    assert h.batches(0) == [(epoch, False, b"v"), (epoch, True, COMMIT_KEY)]
    assert h.batches(1) == [(epoch, True, COMMIT_KEY)]  # joined, wrote nothing: the marker still goes
    assert h.coordinator.describe("tx").state is TxnState.COMPLETE_COMMIT
    assert h.coordinator.end_transaction("tx", pid, epoch, commit=True).error is ErrorCode.NONE  # retried EndTxn
    assert h.coordinator.end_transaction("tx", pid, epoch, commit=False).error is ErrorCode.INVALID_TXN_STATE
    assert len(h.batches(0)) == 2


def test_a_marker_that_fails_for_now_is_written_again_before_the_transaction_completes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A marker refused for now (a full disk: KAFKA_STORAGE_ERROR) keeps PrepareAbort, its
    partition left for the sweep, as Kafka's marker handler retries it. Completed without it,
    the partition's transaction would stay open, and the producer's next commit there would
    commit these aborted records with it. The marker already in elsewhere is not written twice."""
    h = Harness()
    pid, epoch = _begin(h)
    h.produce(pid, epoch, 0, value=b"aborted")
    log = h.storage.partition("t", 0)
    real_append = log.append
    failures = [KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, "No space left on device")]

    def append(records: Any, *args: Any, **kwargs: Any) -> Any:
        if failures and read_header(records).is_control:
            raise failures.pop()
        return real_append(records, *args, **kwargs)

    monkeypatch.setattr(log, "append", append)
    assert h.coordinator.end_transaction("tx", pid, epoch, commit=False).error is ErrorCode.NONE
    described = h.coordinator.describe("tx")
    assert described is not None and (described.state, described.partitions) == (TxnState.PREPARE_ABORT, {("t", 0)})
    assert h.batches(1) == [(epoch, True, ABORT_KEY)]
    assert log.last_stable_offset == 0
    assert h.coordinator.add_partitions("tx", pid, epoch, {("t", 0)}) is ErrorCode.CONCURRENT_TRANSACTIONS

    h.coordinator.abort_timed_out()
    assert h.coordinator.describe("tx").state is TxnState.COMPLETE_ABORT  # type: ignore[union-attr]
    assert h.batches(0) == [(epoch, False, b"aborted"), (epoch, True, ABORT_KEY)]
    assert h.batches(1) == [(epoch, True, ABORT_KEY)]
    assert log.last_stable_offset == 2
    assert [(a.producer_id, a.first_offset) for a in log.aborted_transactions(0, 2)] == [(pid, 0)]


def test_end_txn_errors() -> None:
    h = Harness()
    init = h.coordinator.init_producer_id("tx", TIMEOUT_MS)
    assert h.coordinator.end_transaction("tx", init.producer_id, init.producer_epoch, True).error is ErrorCode.INVALID_TXN_STATE  # Empty
    assert h.coordinator.end_transaction("tx", init.producer_id + 1, init.producer_epoch, True).error is ErrorCode.INVALID_PRODUCER_ID_MAPPING
    assert h.coordinator.end_transaction("nope", init.producer_id, 0, True).error is ErrorCode.INVALID_PRODUCER_ID_MAPPING
    assert h.coordinator.end_transaction("tx", init.producer_id, init.producer_epoch + 1, True).error is ErrorCode.PRODUCER_FENCED


def test_end_txn_v5_bumps_the_epoch_with_each_end() -> None:
    h = Harness()
    pid, epoch = _begin(h)
    ended = h.coordinator.end_transaction("tx", pid, epoch, commit=False, tv2=True)
    assert (ended.error, ended.producer_id, ended.producer_epoch) == (ErrorCode.NONE, pid, epoch + 1)
    assert h.batches(1) == [(epoch + 1, True, ABORT_KEY)]
    assert h.coordinator.describe("tx").partitions == set()  # they leave with the markers


@pytest.mark.parametrize(
    "state, commit, epoch_offset, error",
    [
        # TransactionCoordinator.endTransaction's table for transaction version 2:
        # "retry" is the epoch one below the stored one, "current" the stored one.
        ("Empty", False, 0, ErrorCode.NONE),
        ("Empty", True, 0, ErrorCode.INVALID_TXN_STATE),
        ("Empty", False, -1, ErrorCode.PRODUCER_FENCED),
        ("CompleteAbort", False, -1, ErrorCode.NONE),
        ("CompleteAbort", False, 0, ErrorCode.NONE),
        ("CompleteAbort", True, -1, ErrorCode.INVALID_TXN_STATE),
        ("CompleteAbort", True, 0, ErrorCode.INVALID_TXN_STATE),
        ("CompleteCommit", True, -1, ErrorCode.NONE),
        ("CompleteCommit", True, 0, ErrorCode.INVALID_TXN_STATE),
        ("CompleteCommit", False, -1, ErrorCode.INVALID_TXN_STATE),
        ("CompleteCommit", False, 0, ErrorCode.NONE),
        ("CompleteCommit", True, -2, ErrorCode.PRODUCER_FENCED),
    ],
)
def test_end_txn_v5_retries_and_aborts_with_nothing_open(state: str, commit: bool, epoch_offset: int, error: ErrorCode) -> None:
    h = Harness()
    init = h.coordinator.init_producer_id("tx", TIMEOUT_MS)
    pid = init.producer_id
    if state != "Empty":
        assert h.coordinator.add_partitions("tx", pid, 0, {("t", 0)}, tv2=True) is ErrorCode.NONE
        assert h.coordinator.end_transaction("tx", pid, 0, state == "CompleteCommit", tv2=True).error is ErrorCode.NONE
    before = h.coordinator.describe("tx").producer_epoch
    ended = h.coordinator.end_transaction("tx", pid, before + epoch_offset, commit, tv2=True)
    assert ended.error is error
    after = h.coordinator.describe("tx")
    bumped = error is ErrorCode.NONE and epoch_offset == 0
    assert after.producer_epoch == before + bumped
    if error is ErrorCode.NONE:
        assert (ended.producer_id, ended.producer_epoch) == (pid, after.producer_epoch)
        assert after.state is (TxnState.COMPLETE_COMMIT if commit else TxnState.COMPLETE_ABORT)


def test_end_txn_v5_at_the_last_epoch_moves_to_a_new_producer_id() -> None:
    """The markers carry Short.MAX_VALUE, then the id rotates (TransactionMetadata.prepareComplete)."""
    h = Harness()
    pid, _ = _begin(h)
    txn = h.coordinator.describe("tx")
    txn.producer_epoch = 2**15 - 2
    ended = h.coordinator.end_transaction("tx", pid, 2**15 - 2, commit=True, tv2=True)
    assert ended.error is ErrorCode.NONE and ended.producer_id != pid and ended.producer_epoch == 0
    assert h.batches(0)[-1] == (2**15 - 1, True, COMMIT_KEY)


def test_a_retried_end_that_exhausted_the_epoch_is_recognised_by_the_previous_id(tmp_path: pathlib.Path) -> None:
    """Kafka's retryOnOverflow: the previous producer id at the last epoch but one, kept in
    the state log (PreviousProducerId), so a restart in between changes nothing."""
    h = Harness(tmp_path)
    pid, _ = _begin(h)
    h.coordinator.describe("tx").producer_epoch = 2**15 - 2
    ended = h.coordinator.end_transaction("tx", pid, 2**15 - 2, commit=True, tv2=True)
    h.close()
    again = Harness(tmp_path)
    retried = again.coordinator.end_transaction("tx", pid, 2**15 - 2, commit=True, tv2=True)
    assert (retried.error, retried.producer_id, retried.producer_epoch) == (ErrorCode.NONE, ended.producer_id, 0)
    assert again.coordinator.end_transaction("tx", pid, 2**15 - 2, commit=False, tv2=True).error is ErrorCode.INVALID_TXN_STATE
    assert again.coordinator.end_transaction("tx", pid, 5, commit=True, tv2=True).error is ErrorCode.INVALID_PRODUCER_ID_MAPPING
    again.close()


def test_the_client_transaction_version_survives_a_restart(tmp_path: pathlib.Path) -> None:
    """The log's value version 1 keeps a transaction's ClientTransactionVersion."""
    h = Harness(tmp_path)
    pid = h.coordinator.init_producer_id("tx", TIMEOUT_MS).producer_id
    assert h.coordinator.add_partitions("tx", pid, 0, {("t", 0)}, tv2=True) is ErrorCode.NONE
    _begin(h, "tv1")
    h.close()
    again = Harness(tmp_path)
    assert again.coordinator.describe("tx").client_transaction_version == 2
    assert again.coordinator.describe("tv1").client_transaction_version == 0
    again.close()


def test_a_timed_out_v2_transaction_is_fenced_once_and_its_producers_abort_is_a_retry() -> None:
    """As Kafka 4.4 answers it: the epoch fence is the only bump, the ABORT marker carries it,
    and the producer's own EndTxn v5 at its old epoch is one below, so a retry: its abort
    succeeds with the new epoch, its commit is INVALID_TXN_STATE."""
    h = Harness()
    pid, epoch = h.coordinator.init_producer_id("tx", TIMEOUT_MS).producer_id, 0
    assert h.coordinator.add_partitions("tx", pid, epoch, {("t", 0)}, tv2=True) is ErrorCode.NONE
    h.produce(pid, epoch, 0)
    h.clock.advance(TIMEOUT_MS / 1000 + 20)
    assert h.coordinator.describe("tx").producer_epoch == epoch + 1
    assert h.batches(0)[-1] == (epoch + 1, True, ABORT_KEY)
    assert h.coordinator.end_transaction("tx", pid, epoch, commit=True, tv2=True).error is ErrorCode.INVALID_TXN_STATE
    ended = h.coordinator.end_transaction("tx", pid, epoch, commit=False, tv2=True)
    assert (ended.error, ended.producer_epoch) == (ErrorCode.NONE, epoch + 1)


def test_a_new_producer_fences_an_open_v2_transaction_with_one_bump_then_its_own() -> None:
    """InitProducerId over an open v2 transaction: the ABORT marker at one above, the new
    producer at two above (Kafka 4.4's answer after its CONCURRENT_TRANSACTIONS and retry)."""
    h = Harness()
    pid, epoch = h.coordinator.init_producer_id("tx", TIMEOUT_MS).producer_id, 0
    assert h.coordinator.add_partitions("tx", pid, epoch, {("t", 0)}, tv2=True) is ErrorCode.NONE
    h.produce(pid, epoch, 0)
    assert h.coordinator.init_producer_id("tx", TIMEOUT_MS).error is ErrorCode.CONCURRENT_TRANSACTIONS
    assert h.coordinator.init_producer_id("tx", TIMEOUT_MS).producer_epoch == epoch + 2
    assert h.batches(0)[-1] == (epoch + 1, True, ABORT_KEY)


def test_init_producer_id_naming_the_epoch_a_v2_end_bumped_from_is_its_retry() -> None:
    """TransactionMetadata.prepareAbortOrCommit under version 2 keeps the epoch it bumped from
    (lastProducerEpoch): a producer that committed at e and, its answer lost, re-initializes
    naming (pid, e) is answered e + 1 without a bump, not fenced."""
    h = Harness()
    pid, epoch = h.coordinator.init_producer_id("tx", TIMEOUT_MS).producer_id, 0
    assert h.coordinator.add_partitions("tx", pid, epoch, {("t", 0)}, tv2=True) is ErrorCode.NONE
    h.produce(pid, epoch, 0)
    ended = h.coordinator.end_transaction("tx", pid, epoch, commit=True, tv2=True)
    assert (ended.error, ended.producer_epoch) == (ErrorCode.NONE, epoch + 1)
    again = h.coordinator.init_producer_id("tx", TIMEOUT_MS, pid, epoch)
    assert (again.error, again.producer_id, again.producer_epoch) == (ErrorCode.NONE, pid, epoch + 1)


def test_markers_written_for_an_outside_caller_settle_the_partition() -> None:
    """WriteTxnMarkers (the admin client's abortTransaction): the hanging transaction ends
    in that partition, and a stale epoch is refused there."""
    h = Harness()
    pid, epoch = _begin(h)
    h.produce(pid, epoch, 0, value=b"hung")
    assert h.storage.partition("t", 0).last_stable_offset == 0
    assert h.coordinator.write_markers(pid, epoch - 1, False, [("t", 0)], coordinator_epoch=0) == {("t", 0): ErrorCode.INVALID_PRODUCER_EPOCH}
    assert h.coordinator.write_markers(pid, epoch, False, [("t", 0)], coordinator_epoch=3) == {("t", 0): ErrorCode.NONE}
    log = h.storage.partition("t", 0)
    assert log.last_stable_offset == log.high_watermark == 2
    assert [a.first_offset for a in log.aborted_transactions(0, 2)] == [0]


def test_a_transaction_past_its_timeout_is_fenced_and_aborted() -> None:
    h = Harness()
    pid, epoch = _begin(h)
    h.produce(pid, epoch, 0, value=b"hung")
    h.clock.advance(TIMEOUT_MS / 1000 - 5)
    assert h.coordinator.describe("tx").state is TxnState.ONGOING
    h.clock.advance(20)  # the sweep runs every 10 s by default
    txn = h.coordinator.describe("tx")
    assert (txn.state, txn.producer_epoch) == (TxnState.COMPLETE_ABORT, epoch + 1)
    assert h.batches(0)[-1] == (epoch + 1, True, ABORT_KEY)
    assert h.coordinator.end_transaction("tx", pid, epoch, commit=True).error is ErrorCode.PRODUCER_FENCED


def test_idle_transactional_ids_expire() -> None:
    h = Harness(id_expiration_ms=1000, remove_expired_interval_ms=500)
    h.coordinator.init_producer_id("tx", TIMEOUT_MS)
    _begin(h, "busy")
    h.clock.advance(2)
    assert h.coordinator.describe("tx") is None and h.coordinator.describe("busy") is not None


def test_list_transactions_filters() -> None:
    h = Harness()
    _begin(h, "a")
    h.coordinator.init_producer_id("b", TIMEOUT_MS)
    assert [t.transactional_id for t in h.coordinator.list_transactions({"Ongoing"}, set(), -1)] == ["a"]
    assert {t.transactional_id for t in h.coordinator.list_transactions(set(), set(), -1)} == {"a", "b"}
    h.clock.advance(5)
    # Kafka 4.4's TransactionStateManager.listTransactionStates: `now - txnStartTimestamp >
    # durationFilter` in any state, so "b", Empty with no start (-1), is always listed.
    assert {t.transactional_id for t in h.coordinator.list_transactions(set(), set(), 4000)} == {"a", "b"}
    assert [t.transactional_id for t in h.coordinator.list_transactions(set(), set(), 6000)] == ["b"]


# --- offsets in a transaction ------------------------------------------------------


def _send_offsets(h: Harness, pid: int, epoch: int, group: str = "g", offset: int = 5) -> None:
    assert h.coordinator.add_offsets("tx", pid, epoch, group) is ErrorCode.NONE
    assert h.coordinator.check_offsets_commit("tx", pid, epoch, group, 4) is ErrorCode.NONE
    errors = h.groups.commit_transactional_offsets(group, pid, epoch, -1, "", None, [CommitEntry("t", 0, offset)])
    assert errors == [ErrorCode.NONE]


def _committed(h: Harness, group: str = "g") -> int | None:
    _, [(_, [(_, value)])] = h.groups.fetch_offsets(group, [("t", [0])])
    return None if value is None else value.offset


@pytest.mark.parametrize("commit", [True, False])
def test_offsets_in_a_transaction_are_visible_only_once_it_commits(commit: bool) -> None:
    h = Harness()
    pid, epoch = _begin(h)
    _send_offsets(h, pid, epoch)
    assert _committed(h) is None and h.groups.has_pending_transactional_offset("g", "t", 0)
    h.coordinator.end_transaction("tx", pid, epoch, commit)
    assert _committed(h) == (5 if commit else None)
    assert not h.groups.has_pending_transactional_offset("g", "t", 0)


def test_offsets_need_the_group_added_first() -> None:
    """Before v5 AddOffsetsToTxn must come first: TRANSACTION_ABORTABLE from v4,
    INVALID_TXN_STATE for older clients; from v5 the commit adds the group itself."""
    h = Harness()
    pid, epoch = _begin(h)
    assert h.coordinator.check_offsets_commit("tx", pid, epoch, "g", 3) is ErrorCode.INVALID_TXN_STATE
    assert h.coordinator.check_offsets_commit("tx", pid, epoch, "g", 4) is ErrorCode.TRANSACTION_ABORTABLE
    assert h.coordinator.check_offsets_commit("tx", pid, epoch + 1, "g", 4) is ErrorCode.INVALID_PRODUCER_EPOCH
    assert h.coordinator.check_offsets_commit("tx", pid, epoch, "g", 5) is ErrorCode.NONE
    assert (OFFSETS_TOPIC, h.groups.offsets_partition("g")) in h.coordinator.describe("tx").partitions
    assert h.coordinator.check_offsets_commit("tx", pid, epoch, "g", 4) is ErrorCode.NONE


# --- restarts ----------------------------------------------------------------------


def test_an_open_transaction_survives_a_restart_and_can_commit(tmp_path: pathlib.Path) -> None:
    h = Harness(tmp_path)
    pid, epoch = _begin(h)
    h.produce(pid, epoch, 0, value=b"before")
    _send_offsets(h, pid, epoch)
    h.close()
    again = Harness(tmp_path)
    assert again.storage.partition("t", 0).last_stable_offset == 0  # still not readable
    assert again.coordinator.describe("tx").state is TxnState.ONGOING
    again.produce(pid, epoch, 1, value=b"after")  # the sequence continues from the snapshot
    assert again.coordinator.end_transaction("tx", pid, epoch, True).error is ErrorCode.NONE
    assert _committed(again) == 5
    assert again.storage.partition("t", 0).last_stable_offset == 3
    assert again.coordinator.init_producer_id(None, 0).producer_id >= PRODUCER_ID_BLOCK_SIZE  # no id handed out twice
    again.close()


def test_an_open_transaction_left_by_a_restart_is_aborted_by_its_timeout(tmp_path: pathlib.Path) -> None:
    h = Harness(tmp_path)
    pid, epoch = _begin(h)
    h.produce(pid, epoch, 0, value=b"orphan")
    h.close()
    again = Harness(tmp_path)
    again.clock.advance(TIMEOUT_MS / 1000 + 15)
    assert again.coordinator.describe("tx").state is TxnState.COMPLETE_ABORT
    log = again.storage.partition("t", 0)
    assert log.last_stable_offset == log.high_watermark == 2
    assert [(a.first_offset, a.last_offset) for a in log.aborted_transactions(0, 2)] == [(0, 1)]
    again.close()


def test_a_stop_between_prepare_and_complete_finishes_on_load(tmp_path: pathlib.Path) -> None:
    """PrepareCommit is in the log but no marker: loading writes the markers and completes."""
    h = Harness(tmp_path)
    pid, epoch = _begin(h)
    h.produce(pid, epoch, 0)
    txn = h.coordinator.describe("tx")
    h.coordinator._write(txn, TxnState.PREPARE_COMMIT)  # as if stopped right after this write
    h.close()
    again = Harness(tmp_path)
    assert again.coordinator.describe("tx").state is TxnState.COMPLETE_COMMIT
    assert again.batches(0) == [(epoch, False, b"v"), (epoch, True, COMMIT_KEY)]
    assert again.storage.partition("t", 0).last_stable_offset == 2
    again.close()


def test_internal_topics_are_created_on_first_use() -> None:
    """Not at load: Kafka creates each when its coordinator is first looked up or written to."""
    h = Harness()
    assert h.storage.topic(TRANSACTION_STATE_TOPIC) is None and h.storage.topic(OFFSETS_TOPIC) is None
    h.coordinator.init_producer_id("tx", TIMEOUT_MS)
    assert h.storage.topic(TRANSACTION_STATE_TOPIC) is not None and h.storage.topic(OFFSETS_TOPIC) is None


def test_an_end_whose_write_failed_is_finished_by_the_next_sweep() -> None:
    """PrepareCommit stored, then the Complete write failed: the coordinator does not leave
    the transaction there (CONCURRENT_TRANSACTIONS forever) but finishes it on its next sweep."""
    h = Harness()
    pid, epoch = _begin(h)
    h.produce(pid, epoch, 0)
    h.coordinator._write(h.coordinator.describe("tx"), TxnState.PREPARE_COMMIT)
    assert h.coordinator.end_transaction("tx", pid, epoch, commit=True).error is ErrorCode.CONCURRENT_TRANSACTIONS
    h.clock.advance(11)
    assert h.coordinator.describe("tx").state is TxnState.COMPLETE_COMMIT
    assert h.batches(0)[-1] == (epoch, True, COMMIT_KEY)


class _RecordingGroupOffsets:
    """The GroupOffsets interface and nothing more of the group coordinator."""

    def __init__(self) -> None:
        self.completed: list[tuple[int, set[int], bool]] = []

    def offsets_partition(self, group_id: str) -> int:
        return 1

    def complete_transaction(self, producer_id: int, partitions: set[int], commit: bool) -> None:
        self.completed.append((producer_id, partitions, commit))


def test_offsets_in_a_transaction_need_only_the_injected_group_offsets_interface():
    storage = Storage.open(None)
    CoordinatorLog(storage, OFFSETS, 2).ensure_topic()
    group_offsets = _RecordingGroupOffsets()
    coordinator = TransactionCoordinator(CoordinatorLog(storage, TRANSACTION_STATE, 1), storage, group_offsets, ProducerIdManager(None), TxnConfig(), ManualClock())
    coordinator.load()
    init = coordinator.init_producer_id("tx", TIMEOUT_MS)
    assert coordinator.add_offsets("tx", init.producer_id, init.producer_epoch, "g") is ErrorCode.NONE
    assert coordinator.describe("tx").partitions == {(OFFSETS_TOPIC, 1)}
    assert coordinator.end_transaction("tx", init.producer_id, init.producer_epoch, commit=False).error is ErrorCode.NONE
    assert group_offsets.completed == [(init.producer_id, {1}, False)]
    coordinator.close()


# --- transactional produce verification (KIP-890) -----------------------------------


def _verify(h: Harness, pid: int, epoch: int, version: int, partition: int = 0) -> ErrorCode:
    batch = build_batch([Record(0, 1000, None, b"v")], producer_id=pid, producer_epoch=epoch, base_sequence=0, transactional=True)
    try:
        verify_transactional_produce(h.coordinator, h.storage.partition("t", partition), "t", partition, "tx", memoryview(batch), version)
    except KafkaError as exc:
        return exc.code
    return ErrorCode.NONE


@pytest.mark.parametrize("version, error", [(10, ErrorCode.INVALID_TXN_STATE), (11, ErrorCode.TRANSACTION_ABORTABLE), (12, ErrorCode.NONE)])
def test_a_transactional_produce_to_a_partition_not_in_the_transaction(version: int, error: ErrorCode) -> None:
    """Part 1 refuses it (the error older clients know, below v11); part 2 (v12) adds it."""
    h = Harness()
    init = h.coordinator.init_producer_id("tx", TIMEOUT_MS)
    assert _verify(h, init.producer_id, init.producer_epoch, version) is error
    assert (("t", 0) in h.coordinator.describe("tx").partitions) is (version >= 12)


def test_below_transaction_version_2_the_version_2_requests_are_refused() -> None:
    """What Kafka 4.4 answers at transaction.version 0 (asked of the reference after
    `kafka-features downgrade`): Produce v12 and TxnOffsetCommit v5 may not add a partition
    and EndTxn v5 is refused, all UNSUPPORTED_VERSION; a partition AddPartitionsToTxn already
    added takes Produce v12."""
    h = Harness(transaction_version=0)
    init = h.coordinator.init_producer_id("tx", TIMEOUT_MS)
    pid, epoch = init.producer_id, init.producer_epoch
    assert _verify(h, pid, epoch, 12) is ErrorCode.UNSUPPORTED_VERSION
    assert h.coordinator.check_offsets_commit("tx", pid, epoch, "g", 5) is ErrorCode.UNSUPPORTED_VERSION
    assert h.coordinator.add_partitions("tx", pid, epoch, {("t", 0)}) is ErrorCode.NONE
    assert _verify(h, pid, epoch, 12) is ErrorCode.NONE
    assert h.coordinator.end_transaction("tx", pid, epoch, commit=True, tv2=True).error is ErrorCode.UNSUPPORTED_VERSION
    assert h.coordinator.end_transaction("tx", pid, epoch, commit=True).error is ErrorCode.NONE


def test_a_produce_verified_by_its_partition_or_refused_for_its_epoch() -> None:
    h = Harness()
    pid, epoch = _begin(h)
    assert _verify(h, pid, epoch, 11) is ErrorCode.NONE
    assert _verify(h, pid, epoch + 1, 11) is ErrorCode.INVALID_PRODUCER_EPOCH  # PRODUCER_FENCED, as producers expect it
    h.coordinator.end_transaction("tx", pid, epoch, commit=True)
    assert _verify(h, pid, epoch, 11) is ErrorCode.TRANSACTION_ABORTABLE  # a late write of an ended transaction
