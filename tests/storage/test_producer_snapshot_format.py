"""`<offset>.snapshot` files are Kafka 4.4's binary producer snapshots (ProducerStateManager
.writeSnapshot over the ProducerSnapshot message, version 1), both ways.

KAFKA_SNAPSHOT was written by the reference Kafka 4.4 at its clean shutdown, after an idempotent
producer (id 0) wrote batches of sequences 0-1, 2 and 3-4 (offsets 0-4), a transactional one (id
1) wrote offset 5 and committed (marker at 6, coordinator epoch 0), and another (id 2) wrote
offset 7, CreateTime 1700000000000, leaving its transaction open. kafka-dump-log printed it as
KAFKA_DUMP. The aborted transactions are not in a snapshot: the `.txnindex` files give them back."""

from __future__ import annotations

import os
import pathlib

import pytest

from compat import kafka as reference
from ottla.storage import Storage
from ottla.storage.config import LogConfig
from ottla.storage.handles import FileHandles
from ottla.storage.log import PartitionLog
from ottla.storage.producer_snapshot import CorruptSnapshotError, decode_snapshot, encode_snapshot
from ottla.storage.producer_state import BatchMetadata, control_batch
from ottla.wire.records import Record, build_batch

KAFKA_SNAPSHOT = bytes.fromhex(
    "000154fb7d69000000030000000000000000000000000004000000000000000400000001000001a250505db6ffffffffffffffff"
    "ffffffff0000000000000001000000000000000000000000000500000000000001a25050783900000000ffffffffffffffff0000"
    "0000000000020000000000000000000000000007000000000000018bcfe56800ffffffff0000000000000007"
)
KAFKA_DUMP = [
    "producerId: 0 producerEpoch: 0 coordinatorEpoch: -1 currentTxnFirstOffset: OptionalLong.empty lastTimestamp: 1796643773878 "
    "firstSequence: 3 lastSequence: 4 lastOffset: 4 offsetDelta: 1 timestamp: 1796643773878",
    "producerId: 1 producerEpoch: 0 coordinatorEpoch: 0 currentTxnFirstOffset: OptionalLong.empty lastTimestamp: 1796643780665 "
    "firstSequence: 0 lastSequence: 0 lastOffset: 5 offsetDelta: 0 timestamp: 1796643780665",
    "producerId: 2 producerEpoch: 0 coordinatorEpoch: -1 currentTxnFirstOffset: OptionalLong[7] lastTimestamp: 1700000000000 "
    "firstSequence: 0 lastSequence: 0 lastOffset: 7 offsetDelta: 0 timestamp: 1700000000000",
]
TS = 1700000000000


def test_a_snapshot_kafka_wrote_reads_as_its_producers_and_writes_back_byte_for_byte() -> None:
    state = decode_snapshot(KAFKA_SNAPSHOT)
    idempotent, committed, open_txn = state.producers[0], state.producers[1], state.producers[2]
    assert idempotent.batches == [BatchMetadata(3, 4, 3, 4, 1796643773878)]
    assert (idempotent.epoch, idempotent.current_txn_first_offset, idempotent.coordinator_epoch) == (0, None, -1)
    assert (committed.last_timestamp, committed.coordinator_epoch, committed.current_txn_first_offset) == (1796643780665, 0, None)
    assert (open_txn.current_txn_first_offset, open_txn.last_timestamp) == (7, TS)
    assert state.ongoing == {7: 2}
    assert encode_snapshot(state) == KAFKA_SNAPSHOT


@pytest.mark.parametrize(
    "data",
    [
        b'{"producers":{"0":[0,null,1700000000000,[[0,1,0,1,1700000000000]],-1]},"aborted":[]}',  # an earlier Ottla's
        KAFKA_SNAPSHOT[:-1],  # torn
        KAFKA_SNAPSHOT[:20] + bytes([KAFKA_SNAPSHOT[20] ^ 1]) + KAFKA_SNAPSHOT[21:],  # a flipped bit: the CRC fails
        b"",
    ],
    ids=["json", "torn", "crc", "empty"],
)
def test_a_snapshot_kafka_could_not_read_is_corrupt(data: bytes) -> None:
    with pytest.raises(CorruptSnapshotError):
        decode_snapshot(data)


def _write_kafkas_producers(tmp_path: pathlib.Path) -> pathlib.Path:
    """The reference's producers, appended to a partition here, which is then closed."""
    storage = Storage.open(tmp_path)
    storage.create_topic("t", 1)
    log = storage.partition("t", 0)
    for sequence, count, timestamp in ((0, 2, 1796643773870), (2, 1, 1796643773875), (3, 2, 1796643773878)):
        records = [Record(i, timestamp, b"k", b"v") for i in range(count)]
        log.append(build_batch(records, producer_id=0, producer_epoch=0, base_sequence=sequence))
    log.append(build_batch([Record(0, TS, b"k", b"v")], producer_id=1, producer_epoch=0, base_sequence=0, transactional=True))
    log.append(control_batch(1, 0, commit=True, timestamp=1796643780665, coordinator_epoch=0), from_client=False)
    log.append(build_batch([Record(0, TS, b"k", b"v")], producer_id=2, producer_epoch=0, base_sequence=0, transactional=True))
    storage.close()
    return tmp_path / "t-0" / "00000000000000000008.snapshot"


def test_ottlas_snapshot_is_the_bytes_kafka_wrote_for_the_same_producers(tmp_path: pathlib.Path) -> None:
    assert _write_kafkas_producers(tmp_path).read_bytes() == KAFKA_SNAPSHOT


def test_kafka_dump_log_prints_ottlas_snapshot_as_kafkas(tmp_path: pathlib.Path) -> None:
    if not reference.is_fetched():
        pytest.skip(f"reference Kafka {reference.KAFKA_VERSION} not fetched: run `python -m compat.kafka --fetch`")
    dumped = reference.run_tool("kafka-dump-log", "--files", str(_write_kafkas_producers(tmp_path)))
    assert dumped.returncode == 0, dumped.stderr
    assert [line for line in dumped.stdout.splitlines() if line.startswith("producerId")] == KAFKA_DUMP


def test_aborted_transactions_below_the_snapshot_come_back_from_the_txnindex(tmp_path: pathlib.Path) -> None:
    storage = Storage.open(tmp_path)
    storage.create_topic("t", 1)
    log = storage.partition("t", 0)
    log.append(build_batch([Record(0, TS, b"k", b"v")], producer_id=5, producer_epoch=0, base_sequence=0, transactional=True))
    log.append(control_batch(5, 0, commit=False, timestamp=TS), from_client=False)
    log.roll()
    log.append(build_batch([Record(0, TS, b"k", b"v")], producer_id=6, producer_epoch=0, base_sequence=0, transactional=True))
    log.append(control_batch(6, 0, commit=False, timestamp=TS), from_client=False)
    before = log.aborted_transactions(0, 4)
    storage.close()
    reopened = Storage.open(tmp_path)
    assert [(a.producer_id, a.first_offset, a.last_offset) for a in before] == [(5, 0, 1), (6, 2, 3)]
    assert reopened.partition("t", 0).aborted_transactions(0, 4) == before
    reopened.close()


@pytest.mark.parametrize("snapshot_at", ["close", "roll", "flush", "roll without a flusher"])
def test_a_txnindex_appended_to_is_fsynced_with_the_snapshot_above_it(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, snapshot_at: str
) -> None:
    """Below a snapshot the `.txnindex` is the one record of its aborted transactions: a power
    loss must not take its entry while the snapshot stays (Kafka's LogSegment.flush syncs it): at
    a roll on the flusher with the rolled segment's files, at a flush with the active one's."""
    storage = Storage.open(tmp_path / "data")
    storage.create_topic("t", 1)
    log = storage.partition("t", 0)
    if snapshot_at == "roll without a flusher":
        log = PartitionLog(tmp_path / "alone", LogConfig.from_overrides({}), FileHandles(64))
    log.append(build_batch([Record(0, TS, b"k", b"v")], producer_id=5, producer_epoch=0, base_sequence=0, transactional=True))
    log.append(control_batch(5, 0, commit=False, timestamp=TS), from_client=False)
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(descriptor: int) -> None:
        synced.append(os.path.basename(os.readlink(f"/proc/self/fd/{descriptor}")))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    if snapshot_at.startswith("roll"):
        log.roll()
        log.flush()  # waits for the flusher
        assert any(name.startswith("00000000000000000002.snapshot") for name in synced)  # `.tmp` before its rename without a flusher
    elif snapshot_at == "flush":  # flush.messages, flush.ms: the recovery point passes it
        log.flush()
    else:
        log.close()
    assert "00000000000000000000.txnindex" in synced
    storage.close()
