"""Sparse offset and time indexes, in Kafka's on-disk entry formats.

OffsetIndex (Kafka's OffsetIndex.java): 8-byte entries, 4-byte offset
relative to the segment's base offset + 4-byte position in the .log file.
TimeIndex (TimeIndex.java): 12-byte entries, 8-byte timestamp + 4-byte
relative offset. Both are big-endian and increasing, and sparse: the segment
adds an entry after each `index.interval.bytes` of log.

Like Kafka, an index is not checksummed: recovery rebuilds it from the log
when it is missing or inconsistent. Unlike Kafka, the files are not
preallocated to `segment.index.bytes`, so they always have the size Kafka
trims them to when a segment is closed.

Entries stay in their on-disk encoding and are searched in place: the
active segment's in a bytearray it appends to, a sealed segment's in a
read-only mmap loaded on first lookup, so memory does not grow with the log.
"""

from __future__ import annotations

import mmap
import os
import pathlib
import struct

from ottla.storage.files import DELETED_SUFFIX, replace_file
from ottla.storage.handles import FileHandles

OFFSET_ENTRY = struct.Struct(">iI")
TIME_ENTRY = struct.Struct(">qi")
_APPEND_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT
# New entries reach the file in groups of this many bytes (and at flush, roll and
# close): one syscall per entry would cost as much as the log write itself. Entries
# lost in a crash are rebuilt by recovery, which scans from the last one on disk.
_WRITE_BEHIND_BYTES = 4096


class _Index:
    """Fixed-size entries in a file, appended to while the segment is active."""

    entry: struct.Struct

    def __init__(self, path: pathlib.Path | None, base_offset: int, handles: FileHandles | None) -> None:
        self.path = path
        self.base_offset = base_offset
        self._handles = handles
        self._entries: bytearray | mmap.mmap | bytes | None = None if path is not None else bytearray()
        self._unwritten = bytearray()
        self._unsynced = False
        if path is not None and not path.exists():
            path.touch()  # Kafka creates both index files with the segment

    def _data(self) -> bytearray | mmap.mmap | bytes:
        if self._entries is None:
            assert self.path is not None
            with open(self.path, "rb") as file:
                size = os.fstat(file.fileno()).st_size
                usable = size - size % self.entry.size  # a torn trailing entry is dropped
                self._entries = mmap.mmap(file.fileno(), usable, access=mmap.ACCESS_READ) if usable else b""
        return self._entries

    def __len__(self) -> int:
        return len(self._data()) // self.entry.size

    def byte_size(self) -> int:
        return len(self._data())

    def _unpack(self, slot: int) -> tuple[int, int]:
        first, second = self.entry.unpack_from(self._data(), slot * self.entry.size)
        return first, second

    def _writable(self) -> bytearray:
        """The entries as an appendable bytearray (the active segment's)."""
        data = self._data()
        if not isinstance(data, bytearray):
            writable = bytearray(data)
            self._close_map()
            self._entries = data = writable
        return data

    def _append(self, entry: bytes) -> None:
        self._writable().extend(entry)
        if self.path is not None:
            self._unwritten += entry
            if len(self._unwritten) >= _WRITE_BEHIND_BYTES:
                self._write_unwritten()

    def _write_unwritten(self) -> None:
        """Write pending entries out. An index is derived data: if the disk refuses it, the
        entries stay pending (and in memory) and recovery rebuilds what never reached disk."""
        if self._unwritten and self.path is not None and self._handles is not None:
            try:
                written = os.write(self._handles.fd(self.path, _APPEND_FLAGS), self._unwritten)
            except OSError:
                return
            del self._unwritten[:written]
            self._unsynced = True

    def _last_slot_below(self, key: int, field: int) -> int:
        """Index of the last entry whose `field` is <= key, or -1."""
        low, high = 0, len(self) - 1
        found = -1
        while low <= high:
            middle = (low + high) // 2
            if self._unpack(middle)[field] <= key:
                found, low = middle, middle + 1
            else:
                high = middle - 1
        return found

    def replace_if_changed(self, entries: bytes) -> None:
        if self._data()[:] != entries:  # an mmap only compares equal to itself
            self.replace(entries)

    def replace(self, entries: bytes) -> None:
        """Swap in a rebuilt index, durably (storage/files.py)."""
        self._unwritten.clear()
        self._close_map()
        self._entries = bytearray(entries)
        if self.path is not None:
            if self._handles is not None:
                self._handles.close(self.path)
            replace_file(self.path, entries)

    def seal(self) -> None:
        """The segment stopped being active: write what is pending, free the entries;
        an mmap comes back on demand."""
        if self.path is not None:
            self._write_unwritten()
            self._close_map()
            self._entries = None
            if self._handles is not None:
                self._handles.close(self.path)

    def forget(self) -> None:
        """The file was removed underneath (a compaction swap): start empty."""
        self._close_map()
        self._entries = bytearray()
        self._unwritten.clear()
        if self.path is not None:
            self.path.touch()

    def _close_map(self) -> None:
        if isinstance(self._entries, mmap.mmap):
            self._entries.close()

    def close(self) -> None:
        self.seal()

    def flush(self) -> None:
        self._write_unwritten()
        if self._unsynced and self.path is not None and self._handles is not None:
            try:
                os.fsync(self._handles.fd(self.path, _APPEND_FLAGS))
            except OSError:
                return  # derived data, rebuilt by recovery: the log's own fsync is what counts
            self._unsynced = False

    def mark_unsynced(self) -> None:
        """Recovery read the file, perhaps from the page cache alone: the next flush fsyncs it."""
        self._unsynced = self.path is not None

    def take_unsynced(self) -> int | None:
        """Pending entries written, then a duplicate of the descriptor for another thread to
        fsync (and close), if the file has unsynced writes; that fsync is then the other's."""
        self._write_unwritten()
        if not self._unsynced or self.path is None or self._handles is None:
            return None
        try:
            descriptor = os.dup(self._handles.fd(self.path, _APPEND_FLAGS))
        except OSError:
            return None  # derived data, rebuilt by recovery: the log's own fsync is what counts
        self._unsynced = False
        return descriptor

    def delete(self) -> None:
        self.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    def release(self) -> None:
        """The segment is gone (deleted): drop pending entries, the map and the descriptor."""
        self._unwritten.clear()
        if self.path is not None:
            self._close_map()
            self._entries = None
            if self._handles is not None:
                self._handles.close(self.path)

    def relocate(self, directory: pathlib.Path) -> None:
        """Use the copy of the file in `directory` (a log dir move): the entries, all written
        out before the copy, come back from it on demand (an index is sparse: entries the disk
        refused are only missed lookups, rebuilt at the next recovery)."""
        if self.path is not None:
            self.release()
            self.path = directory / self.path.name

    def rename_for_deletion(self) -> pathlib.Path:
        """`release`, then rename the file `.deleted` (Kafka's changeFileSuffixes); returns the new name."""
        assert self.path is not None
        self.release()
        deleted = self.path.with_name(self.path.name + DELETED_SUFFIX)
        os.rename(self.path, deleted)
        self.path = deleted
        return deleted


class OffsetIndex(_Index):
    """Maps offsets to .log positions of the batches holding them."""

    entry = OFFSET_ENTRY

    def entry_at(self, slot: int) -> tuple[int, int]:
        """(absolute offset, position) of entry `slot`."""
        relative, position = self._unpack(slot)
        return self.base_offset + relative, position

    def is_consistent(self, log_size: int) -> bool:
        """Kafka's OffsetIndex.sanityCheck, extended: offsets strictly and positions
        weakly increasing, every position inside the log."""
        previous = (-1, -1)
        for slot in range(len(self)):
            relative, position = self._unpack(slot)
            if relative <= previous[0] or position < previous[1] or position >= log_size:
                return False
            previous = (relative, position)
        return True

    def append(self, offset: int, position: int) -> None:
        self._append(OFFSET_ENTRY.pack(offset - self.base_offset, position))

    def lookup(self, offset: int) -> int:
        """Position of the last indexed batch whose offset is <= `offset` (0 if none)."""
        slot = self._last_slot_below(offset - self.base_offset, 0)
        return self._unpack(slot)[1] if slot >= 0 else 0

    def last(self) -> tuple[int, int] | None:
        return self.entry_at(len(self) - 1) if len(self) else None


class TimeIndex(_Index):
    """Maps a segment's running max timestamp to the offset where it was first reached."""

    entry = TIME_ENTRY

    def entry_at(self, slot: int) -> tuple[int, int]:
        """(timestamp, absolute offset) of entry `slot`."""
        timestamp, relative = self._unpack(slot)
        return timestamp, self.base_offset + relative

    def is_consistent(self) -> bool:
        """Timestamps strictly and offsets weakly increasing, none below the base."""
        previous = (-(1 << 63), 0)
        for slot in range(len(self)):
            timestamp, relative = self._unpack(slot)
            if timestamp <= previous[0] or relative < previous[1]:
                return False
            previous = (timestamp, relative)
        return True

    def last(self) -> tuple[int, int] | None:
        return self.entry_at(len(self) - 1) if len(self) else None

    def maybe_append(self, timestamp: int, offset: int) -> None:
        """Kafka's TimeIndex.maybeAppend: only a timestamp larger than the last entry's."""
        data = self._data()
        if data and timestamp <= TIME_ENTRY.unpack_from(data, len(data) - TIME_ENTRY.size)[0]:
            return
        self._append(TIME_ENTRY.pack(timestamp, offset - self.base_offset))

    def lookup(self, timestamp: int) -> int:
        """Offset to start scanning from for the first record with timestamp >= `timestamp`.

        Kafka's TimeIndex.lookup: the last entry with timestamp <= target. An
        entry's offset is where its timestamp first became the segment's
        maximum, so no earlier record reaches it."""
        slot = self._last_slot_below(timestamp, 0)
        return self.entry_at(slot)[1] if slot >= 0 else self.base_offset

