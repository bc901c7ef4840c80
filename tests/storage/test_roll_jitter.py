"""segment.jitter.ms: Kafka's LogSegment.shouldRoll rolls once the segment has waited more than
segment.ms less its rollJitterMs, drawn for each segment below min(segment.jitter.ms, segment.ms)
(LogConfig.randomSegmentJitter)."""

from __future__ import annotations

from ottla.storage.config import LogConfig
from ottla.storage.log import PartitionLog
from ottla.wire.records import Record, build_batch

LOGS = 64


def rolled(overrides: dict[str, str], second_timestamp: int) -> list[bool]:
    """For each of LOGS in-memory logs, whether a record `second_timestamp` after one at 0 rolls."""
    config = LogConfig.from_overrides({"segment.ms": "1000", **overrides})
    out = []
    for _ in range(LOGS):
        log = PartitionLog(None, config)
        log.append(build_batch([Record(0, 1_000_000, b"k", b"v")]))
        log.append(build_batch([Record(0, 1_000_000 + second_timestamp, b"k", b"v")]))
        out.append(len(log.segments) == 2)
    return out


def test_jitter_rolls_segments_before_segment_ms() -> None:
    # Without jitter a segment that has waited exactly segment.ms stays; with it, each of 64 stays
    # only if its draw is 0 (one chance in 1000 each).
    assert not any(rolled({}, 1000))
    assert any(rolled({"segment.jitter.ms": "1000"}, 1000))


def test_jitter_stays_below_segment_ms() -> None:
    # A jitter far above segment.ms is capped by it: a segment never rolls on time at once.
    assert not any(rolled({"segment.jitter.ms": str(10**12)}, 1))
    assert all(rolled({"segment.jitter.ms": str(10**12)}, 1001))
