"""The cleaner's offset map is bounded as Kafka 4.4's (SkimpyOffsetMap of
log.cleaner.dedupe.buffer.size x log.cleaner.io.buffer.load.factor): a pass whose dirty section
holds more keys cleans only up to the last offset it mapped (Cleaner.doClean's endOffset), keeps
every record past it, and leaves the rest to the next pass, which starts there."""

from __future__ import annotations

from conftest import read_bytes

from ottla.storage import Storage
from ottla.storage.compaction import offset_map_capacity
from ottla.storage.config import LogConfig
from ottla.storage.log import PartitionLog
from ottla.wire.records import Record, build_batch, iter_records, scan_batches

COMPACTED = {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0"}
# segment.bytes of the second segment below: the first pass cleans each segment on its own,
# not merging them (Kafka's Cleaner.groupSegmentsBySize), so the first is left empty.
UNMERGED = {**COMPACTED, "segment.bytes": "219"}


def keyed(*keys: str) -> bytes:
    return build_batch([Record(i, 1000, key.encode(), b"v") for i, key in enumerate(keys)])


def records(log: PartitionLog) -> list[tuple[int, str]]:
    """(offset, key) of every record, read as a fetch reads."""
    out = []
    offset = log.log_start_offset
    while offset < log.log_end_offset:
        for header, batch in scan_batches(read_bytes(log.read(offset, 1 << 20)), verify_crc=True):
            out.extend((record.offset, bytes(record.key or b"").decode()) for record in iter_records(batch))
            offset = header.next_offset
    return out


def test_kafkas_default_map_holds_five_million_keys() -> None:
    """128 MiB of 24-byte entries (MD5 and offset), 90% of them."""
    assert offset_map_capacity() == 5_033_164
    assert offset_map_capacity(2**40, threads=2) == int((2**31 - 1) // 24 * 0.9)


def partly_cleaned(storage: Storage) -> PartitionLog:
    """A log whose first pass, its map holding 3 keys, stopped inside its second segment."""
    storage.create_topic("c", 1, UNMERGED)
    log = storage.partition("c", 0)
    log.append(keyed("a"))  # 0
    log.append(keyed("b"))  # 1
    log.roll()
    log.append(keyed("a"))  # 2
    log.append(keyed("b"))  # 3
    log.append(keyed("c", "a"))  # 4, 5: c fills the map, a finds it full
    log.roll()
    log.append(keyed("z"))  # 6, active
    # Mapped: a at 2, b at 3, and c at 4 of the batch it could not finish; the pass covers up to 3.
    assert log.clean(now_ms=100_000, map_capacity=3) == 2
    return log


def test_a_full_map_stops_the_pass_at_the_last_batch_it_mapped_whole(storage: Storage) -> None:
    log = partly_cleaned(storage)
    assert records(log) == [(2, "a"), (3, "b"), (4, "c"), (5, "a"), (6, "z")]
    assert log.first_dirty_offset == 4
    # The next pass maps from there and finishes the job.
    assert log.clean(now_ms=100_000, map_capacity=3) == 1
    assert records(log) == [(3, "b"), (4, "c"), (5, "a"), (6, "z")]
    assert log.first_dirty_offset == 6


def test_the_segment_a_pass_stopped_in_counts_as_both_clean_and_dirty(storage: Storage) -> None:
    """LogToClean's cleanable ratio: clean bytes are the segments below the first dirty offset,
    dirty bytes those from it; the first segment, emptied, weighs nothing, so the ratio is 1/2."""
    log = partly_cleaned(storage)
    assert log.segments[0].size == 0
    log.config = LogConfig.from_overrides({**UNMERGED, "min.cleanable.dirty.ratio": "0.5"})
    assert log.clean(now_ms=100_000, map_capacity=3) == 0
    assert log.first_dirty_offset == 4
    log.config = LogConfig.from_overrides({**UNMERGED, "min.cleanable.dirty.ratio": "0.49"})
    assert log.clean(now_ms=100_000, map_capacity=3) == 1
