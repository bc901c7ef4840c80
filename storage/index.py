"""Sparse offset and time indexes, in Kafka's on-disk entry formats.

OffsetIndex (Kafka's OffsetIndex.java): 8-byte entries, 4-byte offset
relative to the segment's base offset + 4-byte position in the .log file.
TimeIndex (TimeIndex.java): 12-byte entries, 8-byte timestamp + 4-byte
relative offset. Both are big-endian, strictly increasing, and sparse: the
segment adds an entry after each `index.interval.bytes` of log.

Like Kafka, an index is not checksummed: recovery rebuilds it from the log
when it is missing or inconsistent. Unlike Kafka, the files are not
preallocated to `segment.index.bytes`, so they always have the size Kafka
trims them to when a segment is closed.
"""

from __future__ import annotations

import bisect
import os
import pathlib
import struct
from typing import BinaryIO

OFFSET_ENTRY = struct.Struct(">iI")
TIME_ENTRY = struct.Struct(">qi")


class _IndexFile:
    """The append-only file behind an index, kept open between appends."""

    def __init__(self, path: pathlib.Path | None, base_offset: int) -> None:
        self.path = path
        self.base_offset = base_offset
        self._file: BinaryIO | None = None

    def _read_entries(self, entry: struct.Struct) -> list[tuple[int, int]]:
        if self.path is None:
            return []
        if not self.path.exists():
            self.path.touch()  # Kafka creates both index files with the segment
            return []
        data = self.path.read_bytes()
        # A torn trailing entry is dropped; recovery checks the rest.
        return list(entry.iter_unpack(data[: len(data) - len(data) % entry.size]))

    def _append_entry(self, entry: bytes) -> None:
        if self.path is None:
            return
        if self._file is None:
            # Unbuffered: each entry reaches the page cache at once, like the log itself.
            self._file = open(self.path, "ab", buffering=0)
        self._file.write(entry)

    def _replace(self, data: bytes) -> None:
        if self.path is None:
            return
        self.close()
        _write_atomically(self.path, data)

    def flush(self) -> None:
        if self._file is not None:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class OffsetIndex(_IndexFile):
    """Maps relative offsets to .log positions; entries mirrored in memory for bisect."""

    def __init__(self, path: pathlib.Path | None, base_offset: int) -> None:
        super().__init__(path, base_offset)
        entries = self._read_entries(OFFSET_ENTRY)
        self.offsets = [base_offset + relative for relative, _ in entries]
        self.positions = [position for _, position in entries]

    def __len__(self) -> int:
        return len(self.offsets)

    def is_consistent(self, log_size: int) -> bool:
        """Kafka's OffsetIndex.sanityCheck, plus monotonicity: entries must be
        strictly increasing and point inside the log."""
        pairs = zip(self.offsets, self.offsets[1:])
        if any(later <= earlier for earlier, later in pairs):
            return False
        if any(later < earlier for earlier, later in zip(self.positions, self.positions[1:])):
            return False
        return not self.positions or (self.offsets[0] >= self.base_offset and self.positions[-1] < log_size)

    def append(self, offset: int, position: int) -> None:
        self.offsets.append(offset)
        self.positions.append(position)
        self._append_entry(OFFSET_ENTRY.pack(offset - self.base_offset, position))

    def lookup(self, offset: int) -> int:
        """Position of the last indexed batch whose offset is <= `offset` (0 if none)."""
        slot = bisect.bisect_right(self.offsets, offset) - 1
        return self.positions[slot] if slot >= 0 else 0

    def last_position(self) -> int:
        return self.positions[-1] if self.positions else 0

    def clear(self) -> None:
        self.offsets.clear()
        self.positions.clear()

    def truncate_to_position(self, log_size: int) -> None:
        """Drop entries at or past `log_size` (after the log was truncated)."""
        keep = bisect.bisect_left(self.positions, log_size)
        if keep == len(self.positions):
            return
        del self.offsets[keep:], self.positions[keep:]
        self.rewrite()

    def rewrite(self) -> None:
        self._replace(b"".join(OFFSET_ENTRY.pack(o - self.base_offset, p) for o, p in zip(self.offsets, self.positions)))


class TimeIndex(_IndexFile):
    """Maps max timestamps to the relative offset of the batch that carried them."""

    def __init__(self, path: pathlib.Path | None, base_offset: int) -> None:
        super().__init__(path, base_offset)
        entries = self._read_entries(TIME_ENTRY)
        self.timestamps = [timestamp for timestamp, _ in entries]
        self.offsets = [base_offset + relative for _, relative in entries]

    def __len__(self) -> int:
        return len(self.timestamps)

    def is_consistent(self) -> bool:
        increasing = all(b > a for a, b in zip(self.timestamps, self.timestamps[1:]))
        ordered = all(b >= a for a, b in zip(self.offsets, self.offsets[1:]))
        return increasing and ordered and (not self.offsets or self.offsets[0] >= self.base_offset)

    def maybe_append(self, timestamp: int, offset: int) -> None:
        """Kafka's TimeIndex.maybeAppend: only a timestamp larger than the last entry's."""
        if self.timestamps and timestamp <= self.timestamps[-1]:
            return
        self.timestamps.append(timestamp)
        self.offsets.append(offset)
        self._append_entry(TIME_ENTRY.pack(timestamp, offset - self.base_offset))

    def lookup(self, timestamp: int) -> int:
        """Offset to start scanning from for the first record with timestamp >= `timestamp`.

        Kafka's TimeIndex.lookup: the last entry with timestamp <= target. An
        entry's offset is where its timestamp first became the segment's
        maximum, so no earlier record can reach it."""
        slot = bisect.bisect_right(self.timestamps, timestamp) - 1
        return self.offsets[slot] if slot >= 0 else self.base_offset

    def clear(self) -> None:
        self.timestamps.clear()
        self.offsets.clear()

    def truncate_to_offset(self, next_offset: int) -> None:
        keep = bisect.bisect_left(self.offsets, next_offset)
        if keep == len(self.offsets):
            return
        del self.timestamps[keep:], self.offsets[keep:]
        self.rewrite()

    def rewrite(self) -> None:
        self._replace(b"".join(TIME_ENTRY.pack(t, o - self.base_offset) for t, o in zip(self.timestamps, self.offsets)))


def _write_atomically(path: pathlib.Path, data: bytes) -> None:
    """Write tmp, fsync, rename: a crash leaves the old file or the new one."""
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
