"""Log compaction: latest record per key, tombstones, offsets kept, crash-safe rewrites."""

from __future__ import annotations

import pathlib

import pytest
from conftest import read_bytes
from kafka.record import MemoryRecords

from ottla.storage import segment as storage_segment
from ottla.storage import LogConfig, Storage
from ottla.storage.log import run_steps
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.records import Compression, Record, build_batch, iter_records, scan_batches

COMPACTED = {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0"}


def keyed(pairs: list[tuple[str, str | None]], timestamp: int = 1000, compression: Compression = Compression.NONE) -> bytes:
    return build_batch(
        [Record(i, timestamp, key.encode(), None if value is None else value.encode()) for i, (key, value) in enumerate(pairs)],
        compression=compression,
    )


def contents(storage: Storage) -> list[tuple[int, str, str | None]]:
    log = storage.partition("c", 0)
    out = []
    offset = log.log_start_offset
    while offset < log.log_end_offset:
        result = log.read(offset, 1 << 20)
        batches = list(scan_batches(read_bytes(result), verify_crc=True))
        for _, batch in batches:
            for record in iter_records(batch):
                out.append((record.offset, bytes(record.key or b"").decode(), None if record.value is None else bytes(record.value).decode()))
        offset = batches[-1][0].next_offset
    return out


def fill(storage: Storage, config: dict[str, str] | None = None) -> None:
    """Segments [0-4] [5-8] [9] closed, [10] active."""
    storage.create_topic("c", 1, {**COMPACTED, **(config or {})})
    log = storage.partition("c", 0)
    for segment in (
        [[("a", "a0"), ("b", "b0"), ("c", "c0")], [("a", "a1"), ("d", "d0")]],
        [[("b", "b1"), ("a", "a2")], [("e", "e0"), ("c", None)]],
        [[("d", "d1")]],
        [[("a", "a3")]],
    ):
        if log.log_end_offset:
            log.roll()
        for pairs in segment:
            log.append(keyed(pairs))


def test_compaction_keeps_the_latest_record_per_key_at_its_offset(storage: Storage) -> None:
    fill(storage)
    log = storage.partition("c", 0)
    assert storage.compact(now_ms=2000) == 5
    # The active segment's a3 is not cleaned against: only closed segments are.
    assert contents(storage) == [(5, "b", "b1"), (6, "a", "a2"), (7, "e", "e0"), (8, "c", None), (9, "d", "d1"), (10, "a", "a3")]
    # The three closed segments, small, are cleaned into one (Kafka's Cleaner.groupSegmentsBySize).
    assert [segment.base_offset for segment in log.segments] == [0, 10]
    assert log.log_end_offset == 11
    assert storage.compact(now_ms=2000) == 0  # nothing dirty left


def test_tombstones_stay_until_delete_retention_ms(storage: Storage) -> None:
    fill(storage, {"delete.retention.ms": "5000"})
    storage.compact(now_ms=2000)
    assert (8, "c", None) in contents(storage)
    log = storage.partition("c", 0)
    # The pass at 2000 kept it and stamped its batch's delete horizon, 2000 + 5000 (KIP-534): it
    # stays through a pass before 7000 and goes at the first pass from then on.
    for key, now in (("f", 6999), ("g", 7000)):
        log.append(keyed([(key, "new")], timestamp=1500))  # something dirty for the cleaner
        log.roll()
        storage.compact(now_ms=now)
        assert ((8, "c", None) in contents(storage)) is (now == 6999)



def test_rewritten_batches_keep_base_and_last_offset_and_are_valid_for_clients(storage: Storage) -> None:
    storage.create_topic("c", 1, COMPACTED)
    log = storage.partition("c", 0)
    log.append(keyed([("a", "1"), ("b", "1"), ("a", "2"), ("c", "1")], compression=Compression.GZIP))
    log.append(keyed([("c", "2")]))
    log.roll()
    log.append(keyed([("z", "1")]))
    storage.compact(now_ms=2000)
    data = read_bytes(log.read(0, 1 << 20))
    [(header, batch), (second, _)] = list(scan_batches(data, verify_crc=True))
    assert (header.base_offset, header.last_offset, header.records_count) == (0, 3, 2)
    assert header.compression is Compression.GZIP
    assert [(r.offset, r.key, r.value) for r in iter_records(batch)] == [(1, b"b", b"1"), (2, b"a", b"2")]
    assert second.base_offset == 4
    kafka_batch = MemoryRecords(data).next_batch()
    assert kafka_batch.validate_crc()
    assert [(r.offset, r.key) for r in kafka_batch] == [(1, b"b"), (2, b"a")]


def test_dirty_ratio_and_compaction_lag_hold_the_cleaner_back(storage: Storage) -> None:
    fill(storage, {"min.cleanable.dirty.ratio": "0.99", "min.compaction.lag.ms": "0"})
    assert storage.compact(now_ms=2000) > 0  # everything is dirty at first: ratio 1
    storage.partition("c", 0).append(keyed([("a", "late")]))
    storage.partition("c", 0).roll()
    assert storage.compact(now_ms=2000) == 0  # a sliver of dirty data is below the ratio
    # The dirty records date from 1000: past max.compaction.lag.ms, the ratio no longer holds
    # the cleaner back, and the late "a" supersedes a2 and a3.
    overdue = {**COMPACTED, "min.cleanable.dirty.ratio": "0.99", "max.compaction.lag.ms": "500"}
    storage.partition("c", 0).config = LogConfig.from_overrides(overdue)
    assert storage.compact(now_ms=2000) == 2
    storage.create_topic("lagged", 1, {**COMPACTED, "min.compaction.lag.ms": "10000"})
    lagged = storage.partition("lagged", 0)
    for _ in range(4):
        lagged.append(keyed([("k", "v")]))
        lagged.roll()
    assert lagged.clean(now_ms=5000) == 0
    assert lagged.clean(now_ms=20_000) > 0


def test_compacted_topics_reject_records_without_a_key(storage: Storage) -> None:
    storage.create_topic("c", 1, COMPACTED)
    with pytest.raises(KafkaError) as raised:
        storage.partition("c", 0).append(build_batch([Record(0, 1, b"k", b"v"), Record(1, 1, None, b"v")]))
    assert raised.value.code is ErrorCode.INVALID_RECORD


def test_delete_policy_topics_are_not_compacted(storage: Storage) -> None:
    storage.create_topic("c", 1)
    for _ in range(3):
        storage.partition("c", 0).append(keyed([("a", "v")]))
        storage.partition("c", 0).roll()
    assert storage.compact(now_ms=10**12) == 0
    assert len(contents(storage)) == 3


def test_cleaning_progress_survives_restart(tmp_path: pathlib.Path) -> None:
    first = Storage.open(tmp_path)
    fill(first)
    first.compact(now_ms=2000)
    expected = contents(first)
    dirty_from = first.partition("c", 0).first_dirty_offset
    first.close()
    assert (tmp_path / "cleaner-offset-checkpoint").read_text() == f"0\n1\nc 0 {dirty_from}\n"
    reopened = Storage.open(tmp_path)
    assert contents(reopened) == expected
    assert reopened.compact(now_ms=2000) == 0
    reopened.close()


def test_crash_before_the_swap_is_complete_keeps_the_old_segment(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = Storage.open(tmp_path)
    fill(first)
    before = contents(first)

    def crash(*_: object) -> None:
        raise KeyboardInterrupt("killed while renaming .cleaned to .swap")

    monkeypatch.setattr(storage_segment.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        first.compact(now_ms=2000)
    monkeypatch.undo()
    assert list((tmp_path / "c-0").glob("*.cleaned"))
    first.locks.release()  # the process died: the kernel drops its locks
    reopened = Storage.open(tmp_path)
    assert contents(reopened) == before
    assert not list((tmp_path / "c-0").glob("*.cleaned"))
    reopened.close()


def test_crash_after_the_swap_file_is_complete_finishes_the_swap(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reference = Storage.open(tmp_path / "reference")
    fill(reference)
    reference.compact(now_ms=2000)
    expected = contents(reference)
    reference.close()

    first = Storage.open(tmp_path / "crashed")
    fill(first)

    def crash(*_: object) -> None:
        raise KeyboardInterrupt("killed before .swap replaced the log")

    monkeypatch.setattr(storage_segment, "_complete_swap", crash)
    with pytest.raises(KeyboardInterrupt):
        first.compact(now_ms=2000)
    monkeypatch.undo()
    assert list((tmp_path / "crashed" / "c-0").glob("*.swap"))
    first.locks.release()  # the process died: the kernel drops its locks
    reopened = Storage.open(tmp_path / "crashed")
    assert not list((tmp_path / "crashed" / "c-0").glob("*.swap"))
    # The first segment's swap is finished; later segments were never cleaned: the log is
    # readable, and the next pass finishes the job.
    reopened.partition("c", 0).first_dirty_offset = 0
    reopened.compact(now_ms=2000)
    assert contents(reopened) == expected
    reopened.close()


# segment.bytes of one batch: each segment is cleaned on its own, none merged into another.
UNMERGED = {**COMPACTED, "segment.bytes": "73"}


def test_segments_emptied_by_compaction_stay_empty_and_offsets_stay_readable(storage: Storage) -> None:
    storage.create_topic("c", 1, UNMERGED)
    log = storage.partition("c", 0)
    for pairs in ([("keep", "1")], [("x", "1")], [("x", "2")], [("x", "3")], [("y", "1")]):
        log.append(keyed(pairs))
        log.roll()
    assert [s.base_offset for s in log.segments] == [0, 1, 2, 3, 4, 5]
    storage.compact(now_ms=2000)
    # [1] and [2] held only superseded records: they stay, empty, as Kafka's cleaned segments.
    assert [s.base_offset for s in log.segments] == [0, 1, 2, 3, 4, 5]
    assert [s.size == 0 for s in log.segments[:-1]] == [False, True, True, False, False]
    assert contents(storage) == [(0, "keep", "1"), (3, "x", "3"), (4, "y", "1")]
    # A fetch inside the emptied range gets the next batch there is (one segment per read).
    assert read_from(storage, 1) == [(3, 3)]


def read_from(storage: Storage, offset: int) -> list[tuple[int, int]]:
    log = storage.partition("c", 0)
    return [(header.base_offset, header.last_offset) for header, _ in scan_batches(read_bytes(log.read(offset, 1 << 20)))]


def test_emptied_segments_stay_empty_after_restart(tmp_path: pathlib.Path) -> None:
    first = Storage.open(tmp_path)
    first.create_topic("c", 1, UNMERGED)
    log = first.partition("c", 0)
    for pairs in ([("keep", "1")], [("x", "1")], [("x", "2")]):
        log.append(keyed(pairs))
        log.roll()
    first.compact(now_ms=2000)
    expected = contents(first)
    first.close()
    names = ["00000000000000000000.log", "00000000000000000001.log", "00000000000000000002.log", "00000000000000000003.log"]
    assert sorted(p.name for p in (tmp_path / "c-0").glob("*.log")) == names
    assert (tmp_path / "c-0" / names[1]).stat().st_size == 0
    reopened = Storage.open(tmp_path)
    assert contents(reopened) == expected == [(0, "keep", "1"), (2, "x", "2")]
    assert reopened.partition("c", 0).log_end_offset == 3
    reopened.close()


def _mid_rewrite_of_first_segment(storage: Storage):
    """A compaction pass stopped after its offset map (5 dirty batches) and the first
    batch of segment [0-4]'s rewrite, as the broker's cleaner leaves it between slices."""
    steps = storage.compaction_steps(2000)
    for _ in range(6):
        next(steps)
    return steps


def test_a_pass_meeting_a_segment_deleted_between_steps_stops_and_the_next_completes(storage: Storage) -> None:
    fill(storage)
    log = storage.partition("c", 0)
    steps = _mid_rewrite_of_first_segment(storage)
    log.delete_records(5)  # segment [0-4], under rewrite, goes
    run_steps(steps)
    assert [offset for offset, *_ in contents(storage)] == list(range(5, 11))  # as appended
    if storage.data_dir is not None:
        assert not list(storage.data_dir.rglob("*.cleaned")), "the abandoned rewrite was left behind"
    assert storage.compact(now_ms=2000) == 0  # what is left holds each key once
    assert log.first_dirty_offset == 10
    assert contents(storage) == [(5, "b", "b1"), (6, "a", "a2"), (7, "e", "e0"), (8, "c", None), (9, "d", "d1"), (10, "a", "a3")]


def test_a_pass_meeting_its_topic_deleted_between_steps_ends_quietly(storage: Storage) -> None:
    fill(storage)
    steps = _mid_rewrite_of_first_segment(storage)
    storage.delete_topic("c", now_ms=0)
    assert run_steps(steps) == 0
    storage.delete_expired_files(now_ms=60_000)  # file.delete.delay.ms later
    if storage.data_dir is not None:
        assert not any(storage.data_dir.glob("c-0*")), "the deleted partition's files remain"
