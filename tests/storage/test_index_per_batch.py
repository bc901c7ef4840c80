"""Offset and time index entries are placed batch by batch, as Kafka 4.4's LogSegment.append
does for the batches of one append (a produce request may carry several for a partition): before
each batch, once more than index.interval.bytes went unindexed, an entry for that batch's last
offset at its position, and a time entry for the largest timestamp up to it. The index files then
hold what Kafka writes, and what recovery rebuilds (LogSegment.recover, also batch by batch)."""

from __future__ import annotations

import pathlib
import struct

from ottla.storage import Storage
from ottla.wire.records import Record, build_batch


def batch(timestamp: int, value_size: int) -> bytes:
    return build_batch([Record(0, timestamp, b"k", b"v" * value_size)])


def entries(path: pathlib.Path, layout: struct.Struct) -> list[tuple[int, int]]:
    data = path.read_bytes()
    return [layout.unpack_from(data, at) for at in range(0, len(data), layout.size)]


def test_the_batches_of_one_append_are_indexed_one_by_one(tmp_path: pathlib.Path) -> None:
    storage = Storage.open(tmp_path / "data")
    first = batch(1000, 80)
    several = [batch(1001, 10), batch(1002, 10), batch(1003, 10)]
    try:
        storage.create_topic("t", 1, {"index.interval.bytes": "100"})
        log = storage.partition("t", 0)
        assert len(first) > 100 and all(len(b) < 100 < 2 * len(b) for b in several)
        log.append(first)  # 0
        log.append(b"".join(several))  # 1, 2, 3: one append
    finally:
        storage.close()
    positions = [len(first), len(first) + len(several[0]), len(first) + len(several[0]) + len(several[1])]
    directory = tmp_path / "data" / "t-0"
    # Before the first of the three, len(first) > 100 bytes went unindexed; before the third, two more batches.
    assert entries(directory / f"{0:020d}.index", struct.Struct(">iI")) == [(1, positions[0]), (3, positions[2])]
    # The time entries carry the largest timestamp up to each indexed batch (and the segment's, on close).
    assert entries(directory / f"{0:020d}.timeindex", struct.Struct(">qi")) == [(1001, 1), (1003, 3)]
    storage = Storage.open(tmp_path / "data")
    try:
        segment = storage.partition("t", 0).segments[0]
        written = [segment.index.entry_at(slot) for slot in range(len(segment.index))]
        segment.recover(from_start=True)
        assert [segment.index.entry_at(slot) for slot in range(len(segment.index))] == written
    finally:
        storage.close()
