"""A roll's fsyncs run on the flusher (storage/flusher.py), not on the appending thread.

What that must not change: a storage stopped uncleanly (its files copied while it is open,
the state a kill leaves) with a rolled segment's tail torn, as an OS crash before the
flusher's fsync may leave it, recovers every segment past the checkpointed recovery point
to a consistent log: offsets, both indexes and producer state agree with what survived;
flush.messages=1 still fsyncs every append (and the segments rolled before it) before the
append returns; close waits for the flusher.
"""

from __future__ import annotations

import errno
import os
import pathlib
import random
import shutil
from dataclasses import dataclass

import pytest
from conftest import read_bytes

from ottla.storage import PartitionLog, Storage
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.records import Record, build_batch, scan_batches

PRODUCER_ID = 7
RECORDS = 3


@dataclass(frozen=True)
class Appended:
    sequence: int  # the batch's base sequence
    timestamp: int
    base_offset: int
    last_offset: int
    segment: int  # base offset of the segment holding it
    position: int
    size: int


def producer_batch(number: int) -> bytes:
    timestamp = 1000 + 10 * number
    records = [Record(i, timestamp, b"k%d" % number, b"v" * 200) for i in range(RECORDS)]
    return build_batch(records, producer_id=PRODUCER_ID, producer_epoch=0, base_sequence=RECORDS * number)


def append(log: PartitionLog, number: int, appended: list[Appended]) -> None:
    active = log.segments[-1]
    position = active.size
    result = log.append(producer_batch(number))
    size = log.segments[-1].size - position
    appended.append(Appended(RECORDS * number, 1000 + 10 * number, result.base_offset, result.last_offset, active.base_offset, position, size))


def fill(log: PartitionLog, appended: list[Appended], batches: int) -> None:
    for _ in range(batches):
        append(log, len(appended), appended)


def read_all(log: PartitionLog) -> list[tuple[int, int]]:
    """(base, last offset) of every batch, reading from the log start to its end."""
    found: list[tuple[int, int]] = []
    offset = log.log_start_offset
    while offset < log.log_end_offset:
        headers = [header for header, _ in scan_batches(read_bytes(log.read(offset, 1 << 20)))]
        assert headers, f"nothing read at {offset} below the log end {log.log_end_offset}"
        found.extend((header.base_offset, header.last_offset) for header in headers)
        offset = headers[-1].last_offset + 1
    return found


def unclean_copy(storage: Storage, source: pathlib.Path, destination: pathlib.Path) -> None:
    """The files as a kill leaves them: copied while the storage is open; then it closes."""
    shutil.copytree(source, destination)
    storage.close()


@pytest.mark.parametrize("seed", range(12))
def test_a_torn_rolled_segment_past_the_recovery_point_is_recovered(tmp_path: pathlib.Path, seed: int) -> None:
    chance = random.Random(seed)
    storage = Storage.open(tmp_path / "live")
    storage.create_topic("t", 1, {"index.interval.bytes": "1000"})
    log = storage.partition("t", 0)
    appended: list[Appended] = []
    for _ in range(2):  # two segments below the recovery point
        fill(log, appended, 6)
        log.roll()
    log.flush()
    storage.checkpoint_recovery_points()
    recovery_point = log.log_end_offset
    for _ in range(2):  # two rolled segments past it, then the active one
        fill(log, appended, 12)
        log.roll()
    fill(log, appended, 5)
    log.flush()  # waits for the flusher, so the checkpoint job (submitted before) is written
    unclean_copy(storage, tmp_path / "live", tmp_path / "crashed")

    directory = tmp_path / "crashed" / "t-0"
    torn = [entry for entry in appended if entry.segment == recovery_point]
    segment_size = torn[-1].position + torn[-1].size
    cut = chance.choice([0, torn[2].position, chance.randrange(segment_size)])
    name = f"{recovery_point:020d}"
    with open(directory / f"{name}.log", "r+b") as file:
        file.truncate(cut)
    (directory / f"{name}.index").write_bytes(chance.randbytes(64))
    (directory / f"{name}.timeindex").write_bytes(chance.randbytes(60))

    whole = [entry for entry in torn if entry.position + entry.size <= cut]
    tail_torn = cut != (whole[-1].position + whole[-1].size if whole else 0)
    before = [entry for entry in appended if entry.segment < recovery_point]
    after = [entry for entry in appended if entry.segment > recovery_point]
    survivors = before + whole + ([] if tail_torn else after)
    end = (whole[-1].last_offset + 1 if whole else recovery_point) if tail_torn else appended[-1].last_offset + 1

    reopened = Storage.open(tmp_path / "crashed")
    try:
        log = reopened.partition("t", 0)
        assert log.log_end_offset == end
        assert read_all(log) == [(entry.base_offset, entry.last_offset) for entry in survivors]
        for entry in survivors:  # both indexes find every surviving batch
            assert read_all_from(log, entry.base_offset) == entry.base_offset
            assert log.offset_for_timestamp(entry.timestamp) == (entry.timestamp, entry.base_offset)
        # Producer state is the survivors': the last one is a duplicate, the next sequence follows it.
        last = survivors[-1]
        retried = log.append(producer_batch(last.sequence // RECORDS))
        assert (retried.base_offset, retried.last_offset) == (last.base_offset, last.last_offset)
        with pytest.raises(KafkaError) as gap:
            log.append(producer_batch(last.sequence // RECORDS + 2))
        assert gap.value.code is ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
        assert log.append(producer_batch(last.sequence // RECORDS + 1)).base_offset == end
        assert not any(name.endswith(".snapshot") and int(name[:20]) > end for name in os.listdir(directory))
    finally:
        reopened.close()


def read_all_from(log: PartitionLog, offset: int) -> int:
    headers = [header for header, _ in scan_batches(read_bytes(log.read(offset, 1)))]
    return headers[0].base_offset


def three_rolled_segments(tmp_path: pathlib.Path) -> tuple[Storage, PartitionLog, list[Appended]]:
    """A fresh storage with topic "t", whose partition 0 has three sealed segments of 4 batches."""
    storage = Storage.open(tmp_path)
    storage.create_topic("t", 1)
    log = storage.partition("t", 0)
    appended: list[Appended] = []
    for _ in range(3):
        fill(log, appended, 4)
        log.roll()
    return storage, log, appended


def test_segments_below_the_recovery_point_are_trusted_and_a_clean_close_checkpoints_the_end(tmp_path: pathlib.Path) -> None:
    """A clean close checkpoints each log's end as its recovery point: the next open scans
    no sealed segment again, as Kafka trusts flushed segments."""
    storage, log, appended = three_rolled_segments(tmp_path)
    end = log.log_end_offset
    storage.close()
    checkpoint = (tmp_path / "recovery-point-offset-checkpoint").read_text().splitlines()
    assert checkpoint == ["0", "1", f"t 0 {end}"]
    reopened = Storage.open(tmp_path)
    try:
        assert reopened.partition("t", 0).recovery_point == end
        assert read_all(reopened.partition("t", 0)) == [(entry.base_offset, entry.last_offset) for entry in appended]
    finally:
        reopened.close()


def test_flush_messages_1_fsyncs_each_append_and_the_rolled_segments_before_it_returns(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(descriptor: int) -> None:
        synced.append(os.path.basename(os.readlink(f"/proc/self/fd/{descriptor}")))
        real_fsync(descriptor)

    storage = Storage.open(tmp_path)
    storage.create_topic("t", 1, {"flush.messages": "1"})
    log = storage.partition("t", 0)
    monkeypatch.setattr(os, "fsync", fsync)
    appended: list[Appended] = []
    try:
        for round_ in range(4):
            fill(log, appended, 2)
            synced.clear()
            log.roll()
            # The first append after a roll returns only once the roll's fsyncs on the flusher
            # are done: the rolled segment's final time index entry and the directory holding
            # the new segment's files, before the new segment's own fsync.
            fill(log, appended, 1)
            new_log = synced.index(f"{appended[-1].segment:020d}.log")
            assert f"{appended[-2].segment:020d}.timeindex" in synced[:new_log], (round_, synced)
            assert "t-0" in synced[:new_log], (round_, synced)
            assert log.recovery_point == log.log_end_offset
            synced.clear()
            fill(log, appended, 1)
            assert synced == [f"{appended[-1].segment:020d}.log"]
    finally:
        storage.close()


def test_the_first_flush_of_a_new_log_makes_its_directory_entries_durable(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kafka's LocalLog.flush fsyncs the log's directory when the flush covers a segment created
    since the last one: a new partition's first segment file survives a power loss with the
    records flush.messages=1 made durable."""
    storage = Storage.open(tmp_path)
    try:
        storage.create_topic("t", 1, {"flush.messages": "1"})
        log = storage.partition("t", 0)
        synced = spy_fsyncs(monkeypatch)
        appended: list[Appended] = []
        fill(log, appended, 1)
        assert synced == [f"{0:020d}.log", "t-0"]
        synced.clear()
        fill(log, appended, 1)
        assert synced == [f"{0:020d}.log"]
    finally:
        storage.close()


def test_close_waits_for_the_flusher(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: set[str] = set()
    real_fsync = os.fsync

    def fsync(descriptor: int) -> None:
        synced.add(os.path.basename(os.readlink(f"/proc/self/fd/{descriptor}")))
        real_fsync(descriptor)

    storage = Storage.open(tmp_path)
    storage.create_topic("t", 1)
    log = storage.partition("t", 0)
    monkeypatch.setattr(os, "fsync", fsync)
    appended: list[Appended] = []
    for _ in range(10):
        fill(log, appended, 3)
        log.roll()
    storage.close()
    assert {f"{base:020d}.log" for base in {entry.segment for entry in appended}} <= synced
    assert {f"{base:020d}.timeindex" for base in {entry.segment for entry in appended}} <= synced


def test_a_topic_created_again_never_inherits_the_deleted_ones_recovery_point(tmp_path: pathlib.Path) -> None:
    """Otherwise a crash would trust the new partition's unsynced segments below the old point."""
    storage, log, appended = three_rolled_segments(tmp_path)
    log.flush()
    storage.checkpoint_recovery_points()
    storage.delete_topic("t")
    storage.create_topic("t", 1)
    try:
        assert (tmp_path / "recovery-point-offset-checkpoint").read_text().splitlines() == ["0", "0"]
    finally:
        storage.close()


def spy_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the files fsynced from now on (the real fsync still runs)."""
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(descriptor: int) -> None:
        synced.append(os.path.basename(os.readlink(f"/proc/self/fd/{descriptor}")))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)
    return synced


def test_after_an_unclean_stop_the_active_segment_is_fsynced_before_the_recovery_point_passes_it(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a killed process wrote may be in the page cache alone when the broker starts again:
    recovery reads it from there, and the first flush (flush.ms, a roll) must fsync it before
    the recovery point passes it, or a power loss then would take records below that point."""
    storage = Storage.open(tmp_path / "running")
    storage.create_topic("t", 1)
    log = storage.partition("t", 0)
    fill(log, [], 5)
    unclean_copy(storage, tmp_path / "running", tmp_path / "killed")
    reopened = Storage.open(tmp_path / "killed")
    try:
        log = reopened.partition("t", 0)
        synced = spy_fsyncs(monkeypatch)
        log.flush()
        assert f"{0:020d}.log" in synced
        assert log.recovery_point == log.log_end_offset == 5 * RECORDS
    finally:
        reopened.close()


def test_after_an_unclean_stop_the_active_segment_is_checked_from_its_start(tmp_path: pathlib.Path) -> None:
    """Pages lost before the active segment's last index entry read back as zeros: Kafka
    recovers the whole segment after an unclean shutdown and cuts the log there, where a check
    from the last index entry alone would keep the hole and serve it."""
    storage = Storage.open(tmp_path / "running")
    storage.create_topic("t", 1, {"index.interval.bytes": "1"})
    log = storage.partition("t", 0)
    appended: list[Appended] = []
    fill(log, appended, 600)  # past the index's 4 KiB write-behind: its entries are in the file
    unclean_copy(storage, tmp_path / "running", tmp_path / "killed")
    hole = appended[100]
    path = tmp_path / "killed" / "t-0" / f"{0:020d}.log"
    with open(path, "r+b") as file:
        file.seek(hole.position)
        file.write(bytes(4096))
    reopened = Storage.open(tmp_path / "killed")
    try:
        log = reopened.partition("t", 0)
        assert log.log_end_offset == hole.base_offset
        assert read_all(log) == [(entry.base_offset, entry.last_offset) for entry in appended[:100]]
    finally:
        reopened.close()


def test_a_failed_fsync_of_the_active_segment_takes_its_directory_offline(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Linux may drop the pages a failed fsync could not write and report the error once: a
    retry would then succeed without them. So the recovery point stays, and the directory goes
    offline (Kafka's LogDirFailureChannel), rather than the producer's retry being answered."""
    storage = Storage.open(tmp_path)
    storage.create_topic("t", 1, {"flush.messages": "1"})
    log = storage.partition("t", 0)
    appended: list[Appended] = []
    fill(log, appended, 1)
    durable = log.recovery_point
    real_fsync = os.fsync

    def failing(descriptor: int) -> None:
        if os.readlink(f"/proc/self/fd/{descriptor}").endswith(".log"):
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", failing)
    with pytest.raises(KafkaError) as failed:
        append(log, 1, appended)
    assert failed.value.code is ErrorCode.KAFKA_STORAGE_ERROR
    assert log.recovery_point == durable
    with pytest.raises(KafkaError) as offline:
        storage.partition("t", 0)
    assert offline.value.code is ErrorCode.KAFKA_STORAGE_ERROR
    monkeypatch.setattr(os, "fsync", real_fsync)
    storage.close()


def test_a_start_forgets_recovery_points_of_partitions_no_longer_there(tmp_path: pathlib.Path) -> None:
    """A topic deleted just before a crash, its checkpoint not rewritten yet: the start rewrites
    the checkpoint without it, so that the topic created again under its name cannot find the
    old point there after another crash and have its unsynced segments trusted."""
    storage, log, _ = three_rolled_segments(tmp_path)
    end = log.log_end_offset
    storage.close()
    assert (tmp_path / "recovery-point-offset-checkpoint").read_text().splitlines() == ["0", "1", f"t 0 {end}"]
    shutil.rmtree(tmp_path / "t-0")  # DeleteTopics' removal, its checkpoint lost to the crash
    (tmp_path / "t.topic.json").unlink()
    reopened = Storage.open(tmp_path)
    try:
        assert (tmp_path / "recovery-point-offset-checkpoint").read_text().splitlines() == ["0", "0"]
        reopened.create_topic("t", 1)
        assert reopened.partition("t", 0).recovery_point == 0
    finally:
        reopened.close()
