"""Log segments: a .log file of RecordBatch v2 bytes plus its sparse indexes.

A segment (Kafka's LogSegment.java) is named by its base offset, the offset
of its first batch; its .log holds whole batches exactly as produced (with
offsets assigned), its .index and .timeindex point into it every
`index.interval.bytes`. Not thread-safe: one owner (the PartitionLog) calls it.

MemorySegment keeps the same contract in memory for `ottla serve --memory`.
"""

from __future__ import annotations

import bisect
import errno
import os
import pathlib
import struct
from dataclasses import dataclass

from storage.index import OffsetIndex, TimeIndex
from wire.errors import ErrorCode, KafkaError
from wire.records import BATCH_HEADER_SIZE, LOG_OVERHEAD, scan_batches

# baseOffset int64, batchLength int32, partitionLeaderEpoch int32, magic int8,
# crc uint32, attributes int16, lastOffsetDelta int32: the prefix a read needs.
_BATCH_PREFIX = struct.Struct(">qi9xhi")
_RECOVERY_WINDOW = 1 << 20


@dataclass(slots=True, frozen=True)
class FileRegion:
    """A byte range of a segment file, for the server to sendfile or read."""

    path: pathlib.Path
    position: int
    length: int

    def read(self) -> bytes:
        with open(self.path, "rb") as file:
            return os.pread(file.fileno(), self.length, self.position)


Chunk = bytes | memoryview | FileRegion


@dataclass(slots=True, frozen=True)
class AppendInfo:
    """What the log learned about an append while validating it."""

    first_offset: int
    last_offset: int
    max_timestamp: int
    offset_of_max_timestamp: int
    size: int


def file_name(base_offset: int, suffix: str) -> str:
    """Kafka's LogFileUtils.filenamePrefixFromOffset: 20 zero-padded digits."""
    return f"{base_offset:020d}{suffix}"


class Segment:
    """One on-disk segment. Invariant: `size` bytes of the .log are whole valid
    batches, offsets strictly increasing; `next_offset` follows the last one."""

    def __init__(self, directory: pathlib.Path, base_offset: int, index_interval_bytes: int) -> None:
        self.base_offset = base_offset
        self.log_path = directory / file_name(base_offset, ".log")
        self.index = OffsetIndex(directory / file_name(base_offset, ".index"), base_offset)
        self.time_index = TimeIndex(directory / file_name(base_offset, ".timeindex"), base_offset)
        self.index_interval_bytes = index_interval_bytes
        self._fd = os.open(self.log_path, os.O_RDWR | os.O_CREAT, 0o644)
        self.size = os.fstat(self._fd).st_size
        self.next_offset = base_offset
        self.max_timestamp = -1
        self.offset_of_max_timestamp = base_offset
        self.bytes_since_last_index_entry = 0

    @property
    def is_empty(self) -> bool:
        return self.size == 0

    def append(self, data: bytes | bytearray | memoryview, info: AppendInfo) -> None:
        """Append already validated batches; index them as Kafka's LogSegment.append does:
        an entry for this append's last offset at its start position once more than
        `index.interval.bytes` went unindexed."""
        position = self.size
        try:
            written = 0
            view = memoryview(data)
            while written < len(view):
                written += os.pwrite(self._fd, view[written:], position + written)
        except OSError as error:
            os.ftruncate(self._fd, position)
            code = ErrorCode.KAFKA_STORAGE_ERROR
            raise KafkaError(code, f"write to {self.log_path} failed: {errno.errorcode.get(error.errno or 0, error)}") from error
        self.size += len(view)
        if info.max_timestamp > self.max_timestamp:
            self.max_timestamp = info.max_timestamp
            self.offset_of_max_timestamp = info.offset_of_max_timestamp
        if self.bytes_since_last_index_entry > self.index_interval_bytes:
            self.index.append(info.last_offset, position)
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
            self.bytes_since_last_index_entry = 0
        self.bytes_since_last_index_entry += len(view)
        self.next_offset = info.last_offset + 1

    def _prefixes(self, position: int, end: int) -> list[tuple[int, int, int, int]]:
        """(position, base offset, size, last offset) of each batch in [position, end)."""
        out = []
        while end - position >= BATCH_HEADER_SIZE:
            prefix = os.pread(self._fd, _BATCH_PREFIX.size, position)
            base_offset, length, _, last_offset_delta = _BATCH_PREFIX.unpack(prefix)
            out.append((position, base_offset, length + LOG_OVERHEAD, base_offset + last_offset_delta))
            position += length + LOG_OVERHEAD
        return out

    def read(self, offset: int, max_bytes: int, min_one: bool) -> tuple[list[Chunk], int]:
        """Whole batches from the one holding `offset`, up to `max_bytes`
        (the first one regardless when `min_one`)."""
        position = self.index.lookup(offset)
        start = -1
        total = 0
        while position < self.size:
            prefix = os.pread(self._fd, _BATCH_PREFIX.size, position)
            base_offset, length, _, last_offset_delta = _BATCH_PREFIX.unpack(prefix)
            size = length + LOG_OVERHEAD
            if start < 0:
                if base_offset + last_offset_delta < offset:
                    position += size
                    continue
                start = position
                if size > max_bytes and not min_one:
                    return [], 0
            elif total + size > max_bytes:
                break
            total += size
            position += size
        if start < 0:
            return [], 0
        return [FileRegion(self.log_path, start, total)], total

    def read_bytes(self, position: int, length: int) -> bytes:
        return os.pread(self._fd, length, position)

    def recover(self) -> int:
        """Re-validate the tail from the last index entry (Kafka's LogSegment.recover
        scans the whole segment; the indexed part was checked when it was written).
        Rebuilds both indexes from scratch when they are inconsistent, truncates a
        torn or corrupt tail, and returns the number of bytes cut."""
        if not self.index.is_consistent(self.size) or not self.time_index.is_consistent():
            self.index.clear()
            self.time_index.clear()
        position = self.index.last_position()
        if self.time_index.timestamps:
            self.max_timestamp = self.time_index.timestamps[-1]
            self.offset_of_max_timestamp = self.time_index.offsets[-1]
        self.bytes_since_last_index_entry = 0
        while position < self.size:
            window = os.pread(self._fd, _RECOVERY_WINDOW, position)
            consumed = self._recover_window(window, position)
            if consumed == 0 and len(window) >= _BATCH_PREFIX.size:
                # Perhaps one batch larger than the window: read it whole.
                _, length, _, _ = _BATCH_PREFIX.unpack_from(window)
                if len(window) < length + LOG_OVERHEAD <= self.size - position:
                    consumed = self._recover_window(os.pread(self._fd, length + LOG_OVERHEAD, position), position)
            if consumed == 0:
                break
            position += consumed
        truncated = self.size - position
        if truncated:
            os.ftruncate(self._fd, position)
            self.size = position
        self.index.rewrite()
        self.time_index.rewrite()
        return truncated

    def _recover_window(self, window: bytes, position: int) -> int:
        """Accept the valid batches at the start of `window`; returns their total size."""
        consumed = 0
        for header, _ in scan_batches(window, verify_crc=True):
            if header.base_offset < self.next_offset:
                break  # offsets must increase: anything else is not ours
            self._note_recovered_batch(position + consumed, header.last_offset, header.max_timestamp, header.size)
            consumed += header.size
        return consumed

    def _note_recovered_batch(self, position: int, last_offset: int, max_timestamp: int, size: int) -> None:
        """Rebuild index state for a batch found valid by recovery, batch by batch as
        Kafka's LogSegment.recover does (it indexes per batch, not per append)."""
        if max_timestamp > self.max_timestamp:
            self.max_timestamp = max_timestamp
            self.offset_of_max_timestamp = last_offset
        if self.bytes_since_last_index_entry > self.index_interval_bytes and (
            not self.index.offsets or last_offset > self.index.offsets[-1]
        ):
            self.index.offsets.append(last_offset)
            self.index.positions.append(position)
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
            self.bytes_since_last_index_entry = 0
        self.bytes_since_last_index_entry += size
        self.next_offset = last_offset + 1

    def flush(self) -> None:
        os.fsync(self._fd)
        self.index.flush()
        self.time_index.flush()

    def close(self) -> None:
        self.index.close()
        self.time_index.close()
        os.close(self._fd)

    def delete(self) -> None:
        self.close()
        for path in (self.log_path, self.index.path, self.time_index.path):
            if path is not None:
                path.unlink(missing_ok=True)


class MemorySegment:
    """The in-memory twin of Segment: batches kept as immutable buffers."""

    def __init__(self, base_offset: int) -> None:
        self.base_offset = base_offset
        self.size = 0
        self.next_offset = base_offset
        self.max_timestamp = -1
        self.offset_of_max_timestamp = base_offset
        self._last_offsets: list[int] = []
        self._batches: list[memoryview] = []
        self._timestamps: list[int] = []

    @property
    def is_empty(self) -> bool:
        return self.size == 0

    def append(self, data: bytes | bytearray | memoryview, info: AppendInfo) -> None:
        """`data` must not be modified afterwards: reads hand out views of it."""
        for header, batch in scan_batches(data):
            self._last_offsets.append(header.last_offset)
            self._batches.append(batch)
            self._timestamps.append(header.max_timestamp)
        self.size += len(data)
        if info.max_timestamp > self.max_timestamp:
            self.max_timestamp = info.max_timestamp
            self.offset_of_max_timestamp = info.offset_of_max_timestamp
        self.next_offset = info.last_offset + 1

    def read(self, offset: int, max_bytes: int, min_one: bool) -> tuple[list[Chunk], int]:
        first = bisect.bisect_left(self._last_offsets, offset)
        chunks: list[Chunk] = []
        total = 0
        for batch in self._batches[first:]:
            if total + len(batch) > max_bytes and (chunks or not min_one):
                break
            chunks.append(batch)
            total += len(batch)
        return chunks, total

    def flush(self) -> None:
        """Nothing to make durable."""

    def close(self) -> None:
        self._batches.clear()

    def delete(self) -> None:
        self.close()
