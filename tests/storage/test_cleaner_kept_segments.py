"""What the cleaner swaps in, as Kafka 4.4's Cleaner.cleanSegments does: one cleaned segment per
group, even one left without a batch (kept, empty, at the group's base offset), whose files take
the modification time of the group's last old segment (`cleaned.setLastModified`). Both show in
time retention of a compact,delete topic: it falls back to that time for a segment without
timestamps, and an empty segment has none. The files are built through the storage, then a
broker started on them tells a stock client where the log starts."""

from __future__ import annotations

import os
import pathlib
import time

from kafka import KafkaConsumer
from kafka import TopicPartition as KafkaTopicPartition

from ottla.storage import Storage
from ottla.testing import running_broker
from ottla.wire.records import Record, build_batch

HOUR_MS = 3_600_000
COMPACT_DELETE = {"cleanup.policy": "compact,delete", "min.cleanable.dirty.ratio": "0", "retention.ms": str(HOUR_MS)}


def _keyed(key: str, value: str, timestamp: int) -> bytes:
    return build_batch([Record(0, timestamp, key.encode(), value.encode())])


def _name(base_offset: int) -> str:
    return f"{base_offset:020d}.log"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _set_mtime(path: pathlib.Path, ms: int) -> None:
    os.utime(path, ns=(ms * 1_000_000, ms * 1_000_000))


def _log_start_seen_by_a_client(data: pathlib.Path, topic: str) -> int:
    """The partition's log start, as a broker started on `data` (cleaner off) tells kafka-python."""
    with running_broker(data_dir=data, log_cleaner_enable=False) as broker:
        consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap_servers, enable_auto_commit=False, group_id=None)
        try:
            partition = KafkaTopicPartition(topic, 0)
            return int(consumer.beginning_offsets([partition])[partition])
        finally:
            consumer.close()


def test_a_merged_segment_keeps_the_modification_time_of_the_last_one_it_replaces(tmp_path: pathlib.Path) -> None:
    """Three segments whose batches carry no timestamp, last written two hours ago, merged into
    one: it is as old as they are, so time retention removes it (its records superseded by the
    active segment's or not, retention looks at the time alone)."""
    data = tmp_path / "data"
    storage = Storage.open(data)
    try:
        storage.create_topic("t", 1, COMPACT_DELETE)
        log = storage.partition("t", 0)
        for key in ("a", "b", "c"):
            log.append(_keyed(key, key + "0", -1))
            log.roll()
        log.append(_keyed("z", "active", _now_ms()))
        partition = data / "t-0"
        now = _now_ms()
        for base, age in ((0, 4 * HOUR_MS), (1, 3 * HOUR_MS), (2, 2 * HOUR_MS)):
            _set_mtime(partition / _name(base), now - age)
        storage.compact(now_ms=now)
        assert [segment.base_offset for segment in log.segments] == [0, 3]
        assert (partition / _name(0)).stat().st_mtime_ns // 1_000_000 == now - 2 * HOUR_MS
        assert storage.enforce_retention(_now_ms()) == 1
    finally:
        storage.close()
    assert _log_start_seen_by_a_client(data, "t") == 3


def test_a_group_a_pass_empties_stays_an_empty_segment_with_its_own_offsets(tmp_path: pathlib.Path) -> None:
    """Segments (one group each) [a, two hours old] [b, two hours old] [b, now] then the active
    one: the pass empties [1]. It stays, an empty file, its time the old file's (just written);
    time retention then removes [0] alone, and the log starts at 1, as in Kafka. A segment
    before it taking its offsets over would take them away with it: the log would start at 2."""
    data = tmp_path / "data"
    storage = Storage.open(data)
    try:
        old, now = _now_ms() - 2 * HOUR_MS, _now_ms()
        one_batch = len(_keyed("a", "v0", old))
        storage.create_topic("t", 1, {**COMPACT_DELETE, "segment.bytes": str(one_batch)})
        log = storage.partition("t", 0)
        for key, value, timestamp in (("a", "v0", old), ("b", "v0", old), ("b", "v1", now)):
            log.append(_keyed(key, value, timestamp))
            log.roll()
        log.append(_keyed("z", "v2", now))
        storage.compact(now_ms=_now_ms())
        assert [(segment.base_offset, segment.size) for segment in log.segments[:3]] == [(0, one_batch), (1, 0), (2, one_batch)]
        assert (data / "t-0" / _name(1)).stat().st_size == 0
        assert storage.enforce_retention(_now_ms()) == 1
        assert log.log_start_offset == 1
    finally:
        storage.close()
    assert sorted(path.name for path in (data / "t-0").glob("*.log")) == [_name(1), _name(2), _name(3)]
    assert _log_start_seen_by_a_client(data, "t") == 1
