"""Sequence checks, transactions, the LSO and the aborted-transactions index, without a log."""

from __future__ import annotations

import json
import pathlib

import pytest

from ottla.storage import LogConfig, PartitionLog
from ottla.storage.handles import FileHandles
from ottla.storage.producer_state import CONTROL_ABORT, CONTROL_COMMIT, ProducerStateManager, control_batch, end_txn_marker
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.records import Record, build_batch, read_header


def _batch(base_offset: int, count: int, pid: int = 7, epoch: int = 0, seq: int = 0, transactional: bool = False):
    records = [Record(base_offset + i, 1000 + i, b"k", b"v") for i in range(count)]
    return read_header(build_batch(records, base_offset=base_offset, producer_id=pid, producer_epoch=epoch, base_sequence=seq, transactional=transactional))


def _append(state: ProducerStateManager, header, high_watermark: int = 0):
    assert state.check(header) is None
    state.record(header, high_watermark)


def _marker(offset: int, pid: int, commit: bool, epoch: int = 0, coordinator_epoch: int = 0):
    data = bytearray(control_batch(pid, epoch, commit, 5000, coordinator_epoch))
    data[0:8] = offset.to_bytes(8, "big")
    return read_header(bytes(data)), end_txn_marker(bytes(data))


def test_in_order_batches_are_accepted():
    state = ProducerStateManager()
    _append(state, _batch(0, 3, seq=0))
    _append(state, _batch(3, 2, seq=3))
    assert state.producers[7].last_seq == 4


def test_a_retried_batch_is_recognised_with_its_original_offsets():
    state = ProducerStateManager()
    _append(state, _batch(0, 3, seq=0))
    _append(state, _batch(3, 2, seq=3))
    retry = _batch(99, 3, seq=0)  # the offsets the retry would get are not the ones it had
    original = state.check(retry)
    assert original is not None and (original.first_offset, original.last_offset) == (0, 2)


def test_only_the_last_five_batches_are_remembered():
    state = ProducerStateManager()
    for i in range(6):
        _append(state, _batch(i, 1, seq=i))
    with pytest.raises(KafkaError) as raised:
        state.check(_batch(50, 1, seq=0))  # older than the five kept: out of order, as Kafka says
    assert raised.value.code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert state.check(_batch(50, 1, seq=1)) is not None


def test_a_gap_is_out_of_order():
    state = ProducerStateManager()
    _append(state, _batch(0, 3, seq=0))
    with pytest.raises(KafkaError) as raised:
        state.check(_batch(3, 1, seq=5))
    assert raised.value.code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER


def test_an_unknown_producer_goes_on_at_any_sequence_and_is_then_held_to_it():
    """Kafka's ProducerAppendInfo.checkSequence accepts any sequence from a producer the
    partition has no state for (expired, or removed with its batches by retention)."""
    state = ProducerStateManager()
    assert state.check(_batch(0, 1, seq=42)) is None
    _append(state, _batch(0, 1, seq=42))
    assert state.check(_batch(1, 1, seq=43)) is None
    with pytest.raises(KafkaError) as raised:
        state.check(_batch(1, 1, seq=45))
    assert raised.value.code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER


def test_a_new_epoch_starts_at_zero_and_fences_the_old_one():
    state = ProducerStateManager()
    _append(state, _batch(0, 2, seq=0, epoch=0))
    with pytest.raises(KafkaError) as raised:
        state.check(_batch(2, 1, seq=5, epoch=1))
    assert raised.value.code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    _append(state, _batch(2, 1, seq=0, epoch=1))
    with pytest.raises(KafkaError) as raised:
        state.check(_batch(3, 1, seq=2, epoch=0))
    assert raised.value.code == ErrorCode.INVALID_PRODUCER_EPOCH


def test_sequence_wraps_at_int32_max():
    state = ProducerStateManager()
    _append(state, _batch(0, 1, seq=0))
    state.producers[7].batches[-1] = state.producers[7].batches[-1].__class__(2**31 - 1, 2**31 - 1, 0, 0, 0)
    assert state.check(_batch(1, 1, seq=0)) is None


def test_transactions_hold_back_the_lso_and_aborts_are_indexed():
    state = ProducerStateManager()
    _append(state, _batch(0, 2, pid=1, seq=0, transactional=True), high_watermark=2)
    _append(state, _batch(2, 1, pid=2, seq=0, transactional=True), high_watermark=3)
    assert state.last_stable_offset(3) == 0
    marker, kind = _marker(3, pid=1, commit=False)
    assert kind.control_type == CONTROL_ABORT
    aborted = state.record(marker, 4, kind)
    assert (aborted.producer_id, aborted.first_offset, aborted.last_offset) == (1, 0, 3)
    assert state.last_stable_offset(4) == 2  # producer 2's transaction is still open
    marker, kind = _marker(4, pid=2, commit=True)
    assert kind.control_type == CONTROL_COMMIT
    assert state.record(marker, 5, kind) is None
    assert state.last_stable_offset(5) == 5
    assert [a.producer_id for a in state.aborted_between(0, 5)] == [1]
    assert state.aborted_between(4, 5) == []


def test_snapshot_round_trip_keeps_everything():
    state = ProducerStateManager()
    _append(state, _batch(0, 2, pid=1, seq=0, transactional=True))
    _append(state, _batch(2, 1, pid=3, seq=0))
    marker, kind = _marker(3, pid=1, commit=False, coordinator_epoch=6)
    state.record(marker, 4, kind)
    _append(state, _batch(4, 1, pid=1, epoch=0, seq=2, transactional=True))
    restored = ProducerStateManager.load(state.snapshot())
    assert restored.producers == state.producers
    assert restored.producers[1].coordinator_epoch == 6
    assert restored.aborted == state.aborted
    assert restored.last_stable_offset(5) == 4
    assert restored.check(_batch(9, 1, pid=3, seq=0)) is not None  # still a known duplicate


def test_silent_producers_expire_but_not_inside_a_transaction():
    state = ProducerStateManager()
    _append(state, _batch(0, 1, pid=1, seq=0))
    _append(state, _batch(1, 1, pid=2, seq=0, transactional=True))
    state.expire(now_ms=10_000_000, expiration_ms=1000)
    assert set(state.producers) == {2}


def test_a_producer_expires_at_exactly_its_expiration():
    """ProducerStateManager.isProducerExpired: silent for `expiration_ms` or longer."""
    state = ProducerStateManager()
    _append(state, _batch(0, 1, pid=1, seq=0))
    last = state.producers[1].last_timestamp
    state.expire(now_ms=last + 999, expiration_ms=1000)
    assert set(state.producers) == {1}
    state.expire(now_ms=last + 1000, expiration_ms=1000)
    assert set(state.producers) == set()


def test_a_producer_keeps_the_coordinator_epoch_of_its_last_marker():
    """-1 before any marker, while its first transaction is open too; then each marker's, one
    for a transaction that wrote nothing here included (ProducerAppendInfo.appendEndTxnMarker)."""
    state = ProducerStateManager()
    _append(state, _batch(0, 1, pid=1, seq=0, transactional=True))
    assert state.producers[1].coordinator_epoch == -1
    marker, kind = _marker(1, pid=1, commit=True, coordinator_epoch=3)
    state.record(marker, 2, kind)
    assert state.producers[1].coordinator_epoch == 3
    _append(state, _batch(2, 1, pid=1, seq=1, transactional=True))
    assert state.producers[1].coordinator_epoch == 3  # a new transaction keeps the last marker's
    marker, kind = _marker(3, pid=1, commit=False, coordinator_epoch=4)
    state.record(marker, 4, kind)
    marker, kind = _marker(4, pid=1, commit=False, coordinator_epoch=5)  # nothing open: no abort, still recorded
    assert state.record(marker, 5, kind) is None
    assert state.producers[1].coordinator_epoch == 5


def test_a_snapshot_written_before_coordinator_epochs_reads_as_none_known():
    state = ProducerStateManager()
    _append(state, _batch(0, 2, pid=1, seq=0, transactional=True))
    marker, kind = _marker(2, pid=1, commit=True, coordinator_epoch=2)
    state.record(marker, 3, kind)
    old = json.loads(state.snapshot())
    old["producers"] = {pid: fields[:4] for pid, fields in old["producers"].items()}  # the four fields written before
    restored = ProducerStateManager.load(json.dumps(old).encode())
    assert restored.producers[1].coordinator_epoch == -1
    assert restored.producers[1].batches == state.producers[1].batches


def test_a_log_reopened_keeps_coordinator_epochs_from_its_snapshot_and_its_tail(tmp_path: pathlib.Path):
    """The first marker is in the snapshot taken at the roll; the second only in the replayed tail."""
    def txn_batch(seq: int) -> bytes:
        return build_batch([Record(0, 1000, b"k", b"v")], producer_id=1, producer_epoch=0, base_sequence=seq, transactional=True)

    log = PartitionLog(tmp_path, LogConfig.from_overrides({"segment.bytes": "200"}), FileHandles(64))
    log.append(txn_batch(0))
    log.append(control_batch(1, 0, commit=True, timestamp=5000, coordinator_epoch=7), from_client=False)
    log.append(build_batch([Record(0, 1000, b"k", b"v")], producer_id=2, producer_epoch=0, base_sequence=0, transactional=True))
    log.append(control_batch(2, 0, commit=False, timestamp=5000, coordinator_epoch=8), from_client=False)
    log.flush()
    assert len(log.segments) > 1 and list(tmp_path.glob("*.snapshot"))
    reopened = PartitionLog(tmp_path, LogConfig.from_overrides({"segment.bytes": "200"}), FileHandles(64))  # no close: a crash
    assert {pid: e.coordinator_epoch for pid, e in reopened.producer_state.producers.items()} == {1: 7, 2: 8}
