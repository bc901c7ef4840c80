"""Indexes, segment roll, retention, DeleteRecords and ListOffsets by timestamp."""

from __future__ import annotations

import os
import pathlib

import pytest
from conftest import batch, read_base_offsets

from ottla.storage import Storage
from ottla.storage.handles import FileHandles
from ottla.storage.index import OffsetIndex, TimeIndex
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.records import Record, build_batch

BATCH_SIZE = len(batch(1, value_size=100))


# --- index lookups at boundaries -----------------------------------------------------


@pytest.fixture(params=["file", "memory"])
def index_dir(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> pathlib.Path | None:
    return tmp_path if request.param == "file" else None


def test_offset_index_lookup_boundaries(index_dir: pathlib.Path | None) -> None:
    handles = FileHandles()
    index = OffsetIndex(index_dir and index_dir / "x.index", 1000, handles)
    assert index.lookup(1000) == 0 and index.last() is None
    for offset, position in [(1010, 0), (1020, 100), (1030, 200)]:
        index.append(offset, position)
    expected = {999: 0, 1000: 0, 1009: 0, 1010: 0, 1019: 0, 1020: 100, 1029: 100, 1030: 200, 10**12: 200}
    assert {offset: index.lookup(offset) for offset in expected} == expected
    if index_dir is not None:
        index.close()
        reloaded = OffsetIndex(index_dir / "x.index", 1000, handles)
        assert {offset: reloaded.lookup(offset) for offset in expected} == expected
        assert (index_dir / "x.index").read_bytes() == bytes.fromhex("0000000a00000000" "0000001400000064" "0000001e000000c8")


def test_time_index_lookup_boundaries(index_dir: pathlib.Path | None) -> None:
    index = TimeIndex(index_dir and index_dir / "x.timeindex", 50, FileHandles())
    assert index.lookup(5) == 50
    for timestamp, offset in [(100, 52), (100, 53), (90, 54), (200, 57), (300, 60)]:
        index.maybe_append(timestamp, offset)
    assert [index.entry_at(slot) for slot in range(len(index))] == [(100, 52), (200, 57), (300, 60)]
    expected = {0: 50, 99: 50, 100: 52, 199: 52, 200: 57, 299: 57, 300: 60, 10**15: 60}
    assert {timestamp: index.lookup(timestamp) for timestamp in expected} == expected


def test_index_with_a_torn_trailing_entry_drops_it(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "x.index"
    path.write_bytes(bytes.fromhex("0000000100000000" "00000002000000"))
    index = OffsetIndex(path, 0, FileHandles())
    assert len(index) == 1 and index.last() == (1, 0)


# --- segment roll ------------------------------------------------------------------------


def test_roll_at_segment_bytes(storage: Storage) -> None:
    storage.create_topic("t", 1, {"segment.bytes": str(BATCH_SIZE * 3)})
    log = storage.partition("t", 0)
    for _ in range(10):
        log.append(batch(1, value_size=100))
    assert [segment.base_offset for segment in log.segments] == [0, 3, 6, 9]
    # A read never spans segments, as in Kafka; the next fetch continues.
    assert read_base_offsets(log.read(1, 1 << 20)) == [1, 2]
    assert read_base_offsets(log.read(3, 1 << 20)) == [3, 4, 5]


def test_roll_at_segment_ms_by_record_time(storage: Storage) -> None:
    storage.create_topic("t", 1, {"segment.ms": "1000"})
    log = storage.partition("t", 0)
    log.append(batch(1, timestamp=10_000))
    log.append(batch(1, timestamp=11_000))  # waited exactly segment.ms: not yet
    log.append(batch(1, timestamp=11_001))
    assert [segment.base_offset for segment in log.segments] == [0, 2]


def test_roll_at_segment_ms_by_clock_without_timestamps(storage: Storage) -> None:
    storage.create_topic("t", 1, {"segment.ms": "1000"})
    log = storage.partition("t", 0)
    created = log.segments[0].created_ms
    log.append(batch(1, timestamp=-1), log_append_time_ms=created)
    log.append(batch(1, timestamp=-1), log_append_time_ms=created + 1000)
    log.append(batch(1, timestamp=-1), log_append_time_ms=created + 1001)
    assert [segment.base_offset for segment in log.segments] == [0, 2]


def test_roll_when_the_time_index_is_full(storage: Storage) -> None:
    storage.create_topic("t", 1, {"segment.index.bytes": "24", "index.interval.bytes": "0"})
    log = storage.partition("t", 0)
    for index in range(6):
        log.append(batch(1, timestamp=index))
    # Two 12-byte time index entries fit; a segment indexes its 2nd and 3rd append, then is full.
    assert [segment.base_offset for segment in log.segments] == [0, 3]
    assert [len(segment.time_index) for segment in log.segments] == [2, 2]


def test_rolled_segments_survive_restart(tmp_path: pathlib.Path) -> None:
    storage = Storage.open(tmp_path)
    storage.create_topic("t", 1, {"segment.bytes": str(BATCH_SIZE * 2)})
    for _ in range(5):
        storage.partition("t", 0).append(batch(1, value_size=100))
    storage.close()
    assert sorted(p.name for p in (tmp_path / "t-0").glob("*.log")) == [f"{base:020d}.log" for base in (0, 2, 4)]
    reopened = Storage.open(tmp_path)
    log = reopened.partition("t", 0)
    assert [segment.base_offset for segment in log.segments] == [0, 2, 4]
    assert log.log_end_offset == 5
    assert read_base_offsets(log.read(2, 1 << 20)) == [2, 3]
    assert log.append(batch(1, value_size=100)).base_offset == 5
    reopened.close()


# --- retention -----------------------------------------------------------------------------


def test_retention_by_time_deletes_whole_old_segments(storage: Storage) -> None:
    storage.create_topic("t", 1, {"segment.bytes": str(BATCH_SIZE * 2), "retention.ms": "1000"})
    log = storage.partition("t", 0)
    for timestamp in (1000, 1500, 2000, 5000, 5500, 9000):
        log.append(batch(1, value_size=100, timestamp=timestamp))
    assert [s.base_offset for s in log.segments] == [0, 2, 4]
    assert storage.enforce_retention(now_ms=5500) == 1  # segment [0,1]: newest 1500 < 4500
    assert (log.log_start_offset, [s.base_offset for s in log.segments]) == (2, [2, 4])
    with pytest.raises(KafkaError) as raised:
        log.read(1, 100)
    assert raised.value.code is ErrorCode.OFFSET_OUT_OF_RANGE
    assert read_base_offsets(log.read(2, 1 << 20)) == [2, 3]


def test_retention_by_time_can_empty_the_log(storage: Storage) -> None:
    storage.create_topic("t", 1, {"retention.ms": "1000"})
    log = storage.partition("t", 0)
    log.append(batch(3, timestamp=100))
    assert storage.enforce_retention(now_ms=10_000) == 1
    assert (log.log_start_offset, log.log_end_offset) == (3, 3)
    assert [s.base_offset for s in log.segments] == [3]
    assert log.read(3, 100).size == 0
    assert log.append(batch(1, timestamp=10_000)).base_offset == 3
    assert storage.enforce_retention(now_ms=10_500) == 0


def test_retention_by_size(storage: Storage) -> None:
    storage.create_topic("t", 1, {"segment.bytes": str(BATCH_SIZE * 2), "retention.bytes": str(BATCH_SIZE * 3)})
    log = storage.partition("t", 0)
    for _ in range(7):
        log.append(batch(1, value_size=100))
    # 7 batches in segments of 2,2,2,1: drop segments while what remains stays >= 3 batches.
    assert storage.enforce_retention(now_ms=0) == 2
    assert [s.base_offset for s in log.segments] == [4, 6]
    assert log.size == BATCH_SIZE * 3 and log.log_start_offset == 4


def test_compact_only_topics_keep_old_segments(storage: Storage) -> None:
    storage.create_topic("t", 1, {"retention.ms": "1", "cleanup.policy": "compact", "segment.bytes": str(BATCH_SIZE)})
    log = storage.partition("t", 0)
    for _ in range(3):
        log.append(batch(1, value_size=100, timestamp=1))
    assert storage.enforce_retention(now_ms=10**12) == 0


def test_retention_on_disk_removes_files_and_survives_restart(tmp_path: pathlib.Path) -> None:
    storage = Storage.open(tmp_path)
    storage.create_topic("t", 1, {"segment.bytes": str(BATCH_SIZE), "retention.ms": "100"})
    log = storage.partition("t", 0)
    for timestamp in (1, 2, 1000):
        log.append(batch(1, value_size=100, timestamp=timestamp))
    storage.enforce_retention(now_ms=1050)
    live = [
        "00000000000000000002.index",
        "00000000000000000002.log",
        "00000000000000000002.snapshot",  # producer state at the roll; the deleted segments' went with them
        "00000000000000000002.timeindex",
        "leader-epoch-checkpoint",  # its epoch now starts at the new log start, as Kafka's truncateFromStart
    ]
    # Renamed for file.delete.delay.ms (60 s by default), as Kafka does, then removed.
    deleted = [f"{base:020d}.{kind}.deleted" for base in (0, 1) for kind in ("index", "log", "timeindex")]
    assert sorted(p.name for p in (tmp_path / "t-0").iterdir() if p.suffix != ".metadata") == sorted(live + deleted)
    assert storage.delete_expired_files(now_ms=1050 + 59_999) == 0
    assert storage.delete_expired_files(now_ms=1050 + 60_000) == 2
    assert sorted(p.name for p in (tmp_path / "t-0").iterdir() if p.suffix != ".metadata") == live
    storage.close()
    reopened = Storage.open(tmp_path)
    assert (reopened.partition("t", 0).log_start_offset, reopened.partition("t", 0).log_end_offset) == (2, 3)
    reopened.close()


# --- DeleteRecords -------------------------------------------------------------------------


def test_delete_records_moves_log_start_and_drops_segments(storage: Storage) -> None:
    storage.create_topic("t", 1, {"segment.bytes": str(BATCH_SIZE * 2)})
    log = storage.partition("t", 0)
    for _ in range(6):
        log.append(batch(1, value_size=100))
    assert log.delete_records(3) == 3
    assert [s.base_offset for s in log.segments] == [2, 4]  # [2,3] still holds offset 3
    assert read_base_offsets(log.read(3, 1 << 20)) == [3]
    with pytest.raises(KafkaError):
        log.read(2, 100)
    assert log.delete_records(1) == 3  # never moves backwards
    assert log.delete_records(-1) == 6  # -1: up to the high watermark
    assert log.read(6, 100).size == 0
    for offset in (7, -2):
        with pytest.raises(KafkaError) as raised:
            log.delete_records(offset)
        assert raised.value.code is ErrorCode.OFFSET_OUT_OF_RANGE


def test_delete_records_survives_restart(tmp_path: pathlib.Path) -> None:
    storage = Storage.open(tmp_path)
    storage.create_topic("t", 2)
    storage.partition("t", 1).append(batch(5))
    storage.partition("t", 1).delete_records(3)
    storage.close()
    assert (tmp_path / "log-start-offset-checkpoint").read_text() == "0\n1\nt 1 3\n"
    reopened = Storage.open(tmp_path)
    assert reopened.partition("t", 1).log_start_offset == 3
    assert reopened.partition("t", 0).log_start_offset == 0
    reopened.close()


# --- ListOffsets -----------------------------------------------------------------------------


def timestamped_log(storage: Storage) -> None:
    storage.create_topic("t", 1, {"segment.bytes": "300", "index.interval.bytes": "100"})
    log = storage.partition("t", 0)
    # offsets 0-2 @ 100, 105, 103; 3-5 @ 200, 200, 150; 6 @ 120 (out of order); 7-8 @ 400, 410
    for timestamps in ([100, 105, 103], [200, 200, 150], [120], [400, 410]):
        log.append(build_batch([Record(i, t, None, b"v" * 30) for i, t in enumerate(timestamps)]))


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (0, (100, 0)),
        (100, (100, 0)),
        (101, (105, 1)),
        (104, (105, 1)),
        (106, (200, 3)),
        (200, (200, 3)),
        (201, (400, 7)),
        (410, (410, 8)),
        (411, None),
        (-1, (-1, 9)),
        (-2, (-1, 0)),
        (-4, (-1, 0)),
        (-3, (410, 8)),
    ],
)
def test_offset_for_timestamp(storage: Storage, target: int, expected: tuple[int, int] | None) -> None:
    timestamped_log(storage)
    log = storage.partition("t", 0)
    assert len(log.segments) > 1
    assert log.offset_for_timestamp(target) == expected


def test_offset_for_timestamp_respects_log_start(storage: Storage) -> None:
    timestamped_log(storage)
    log = storage.partition("t", 0)
    log.delete_records(2)
    assert log.offset_for_timestamp(0) == (103, 2)
    assert log.offset_for_timestamp(-2) == (-1, 2)


def test_max_timestamp_is_the_first_record_carrying_it(storage: Storage) -> None:
    storage.create_topic("t", 1)
    log = storage.partition("t", 0)
    log.append(build_batch([Record(i, t, None, b"v") for i, t in enumerate([5, 9, 9, 1])]))
    log.append(build_batch([Record(0, 9, None, b"v")]))
    assert log.offset_for_timestamp(-3) == log.max_timestamp() == (9, 1)
    storage.create_topic("empty", 1)
    assert storage.partition("empty", 0).max_timestamp() is None


def test_offset_for_timestamp_after_restart_uses_the_stored_indexes(tmp_path: pathlib.Path) -> None:
    storage = Storage.open(tmp_path)
    timestamped_log(storage)
    storage.close()
    reopened = Storage.open(tmp_path)
    log = reopened.partition("t", 0)
    assert [log.offset_for_timestamp(t) for t in (101, 201, -3)] == [(105, 1), (400, 7), (410, 8)]
    reopened.close()


# --- file handles --------------------------------------------------------------------------


def test_file_handles_stay_bounded(tmp_path: pathlib.Path) -> None:
    storage = Storage.open(tmp_path, max_open_files=8)
    storage.create_topic("t", 20, {"index.interval.bytes": "0"})
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        for partition in range(20):
            storage.partition("t", partition).append(batch(2))
    for partition in range(20):
        assert read_base_offsets(storage.partition("t", partition).read(0, 1 << 20)) == [0, 2, 4]
    assert len(os.listdir("/proc/self/fd")) - before <= 8
    storage.close()
    reopened = Storage.open(tmp_path, max_open_files=8)
    assert [reopened.partition("t", p).log_end_offset for p in range(20)] == [6] * 20
    reopened.close()
