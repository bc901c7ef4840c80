"""When Kafka 4.4's LogCleanerManager finds a compacted log due (grabFilthiestCompactedLog,
maxCompactionDelay), checked against the local engine's schedule (storage/compaction.py)."""

from __future__ import annotations

from ottla.storage import LogConfig, Storage
from ottla.wire.records import Record, build_batch

COMPACTED = {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0"}


def keyed(pairs: list[tuple[str, str]], timestamp: int) -> bytes:
    return build_batch([Record(i, timestamp, key.encode(), value.encode()) for i, (key, value) in enumerate(pairs)])


def segments(storage: Storage, topic: str, overrides: dict[str, str], batches: list[tuple[list[tuple[str, str]], int]]) -> None:
    """One closed segment per batch, then an active one with one record."""
    storage.create_topic(topic, 1, overrides)
    log = storage.partition(topic, 0)
    for pairs, timestamp in batches:
        log.append(keyed(pairs, timestamp))
        log.roll()
    log.append(keyed([("z", "active")], 1000))


def test_a_dirty_ratio_of_one_leaves_compaction_to_max_compaction_lag(storage: Storage) -> None:
    """Kafka cleans when cleanableRatio > min.cleanable.dirty.ratio, strictly: a wholly dirty
    log (ratio 1) is not due under a ratio of 1 until max.compaction.lag.ms passes."""
    overrides = {**COMPACTED, "min.cleanable.dirty.ratio": "1"}
    segments(storage, "c", overrides, [([("a", "a0"), ("b", "b0")], 1000), ([("a", "a1")], 1000)])
    log = storage.partition("c", 0)
    assert log.clean(now_ms=2000) == 0
    log.config = LogConfig.from_overrides({**overrides, "max.compaction.lag.ms": "500"})
    assert log.clean(now_ms=2000) == 1  # a0 goes


def test_max_compaction_lag_counts_the_oldest_first_batch_of_every_dirty_segment(storage: Storage) -> None:
    """maxCompactionDelay takes the earliest first-batch timestamp over all closed dirty
    segments, not the first dirty segment's alone."""
    storage.create_topic("c", 1, COMPACTED)
    log = storage.partition("c", 0)
    log.append(keyed([("a", "a0"), ("b", "b0")], 1000))
    log.roll()
    assert log.clean(now_ms=2000) == 0  # nothing to remove, but the first segment is now clean
    log.config = LogConfig.from_overrides({**COMPACTED, "min.cleanable.dirty.ratio": "0.99", "max.compaction.lag.ms": "500"})
    log.append(keyed([("c", "c0")], 1900))  # the first dirty segment: recent
    log.roll()
    log.append(keyed([("a", "a1")], 1000))  # the next one: an old timestamp
    log.roll()
    assert log.clean(now_ms=2000) == 1  # overdue by the second dirty segment: a0 goes


def test_min_compaction_lag_looks_at_dirty_segments_only(storage: Storage) -> None:
    """findFirstUncleanableSegment starts at the first dirty offset: a clean segment with recent
    records (cleaned before min.compaction.lag.ms was raised) does not hold back the dirty ones."""
    storage.create_topic("c", 1, COMPACTED)
    log = storage.partition("c", 0)
    log.append(keyed([("a", "a0"), ("b", "b0")], 4000))
    log.roll()
    assert log.clean(now_ms=4500) == 0  # the first segment is clean from now on
    log.config = LogConfig.from_overrides({**COMPACTED, "min.compaction.lag.ms": "2000"})
    log.append(keyed([("a", "a1")], 1000))  # dirty, and old enough
    log.roll()
    log.append(keyed([("z", "active")], 1000))
    assert log.clean(now_ms=5000) == 1  # a0 goes
