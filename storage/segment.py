"""Log segments: a .log of RecordBatch v2 bytes plus its sparse indexes.

A segment (Kafka's LogSegment.java) is named by its base offset, the offset
of its first batch; its .log holds whole batches exactly as produced (with
offsets assigned) and its .index and .timeindex point into it every
`index.interval.bytes`. Not thread-safe: one owner (the PartitionLog) calls it.

The bytes live in a DiskFile or, for `ottla serve --memory`, a MemoryFile;
everything above that (indexing, reads, recovery, timestamp search) is shared.
"""

from __future__ import annotations

import bisect
import os
import pathlib
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from ottla.storage.files import DELETED_SUFFIX, remove_paths, rename_durably
from ottla.storage.handles import FileHandles
from ottla.storage.index import OFFSET_ENTRY, TIME_ENTRY, OffsetIndex, TimeIndex
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.records import BATCH_HEADER_SIZE, LOG_OVERHEAD, BatchHeader, iter_records, read_header, scan_batches

# baseOffset int64, batchLength int32, partitionLeaderEpoch int32, magic int8,
# crc uint32, attributes int16, lastOffsetDelta int32: what a read needs.
_BATCH_PREFIX = struct.Struct(">qi9xhi")
_RECOVERY_WINDOW = 1 << 20
_PREFIX_WINDOW = 64 * 1024
_SMALL_BATCH = 4096
_LOG_FLAGS = os.O_RDWR | os.O_CREAT


@dataclass(slots=True, frozen=True)
class FileRegion:
    """A byte range of a segment's .log, for the server to sendfile or read.

    `path` is the file's name at the moment it is asked for: a segment deleted after the
    read (retention, DeleteRecords, compaction, DeleteTopics) is renamed, not removed, and
    removed only file.delete.delay.ms later, so a region opened within that delay still
    reads the bytes it was cut from; one already opened reads them to the end whatever
    happens to the name (Kafka's FileRecords slices keep their FileChannel the same way)."""

    file: DiskFile
    position: int
    length: int

    @property
    def path(self) -> pathlib.Path:
        return self.file.path

    def open(self) -> BinaryIO:
        """Its file, opened by the name in its `location` and kept only if it is that very
        file: a deleted topic's directory is renamed on another thread (`rename_directory`),
        so the name read may be a moment stale; it is read again once if it changed meanwhile.
        Raises FileNotFoundError once the file is given up for removal (a file that has its
        name since is another), or when the name read is not the file's."""
        location = self.file.location
        while location is not None:
            path, device, inode = location
            try:
                file = open(path, "rb")
            except FileNotFoundError:
                pass
            else:
                status = os.fstat(file.fileno())
                if (status.st_dev, status.st_ino) == (device, inode):
                    return file
                file.close()
            if self.file.location is location:
                break
            location = self.file.location
        raise FileNotFoundError(f"{self.path} is no longer the region's file")

    def read(self) -> bytes:
        with self.open() as file:
            return os.pread(file.fileno(), self.length, self.position)


Chunk = bytes | memoryview | FileRegion


CLEANED_SUFFIX = ".cleaned"
SWAP_SUFFIX = ".swap"


def _complete_swap(swap: pathlib.Path, log_path: pathlib.Path, index_paths: tuple[pathlib.Path, ...]) -> None:
    for index_path in index_paths:
        index_path.unlink(missing_ok=True)
    rename_durably(swap, log_path)


_SEGMENT_SUFFIXES = (".log", ".index", ".timeindex")


def _next_offset(path: pathlib.Path, base_offset: int) -> int:
    """The offset after the last batch of a complete .log file (Kafka's readNextOffset), its
    base offset if it holds none."""
    next_offset = base_offset
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        position = 0
        while size - position >= _BATCH_PREFIX.size:
            batch_base, length, _, last_offset_delta = _BATCH_PREFIX.unpack(os.pread(file.fileno(), _BATCH_PREFIX.size, position))
            if length < 0 or position + length + LOG_OVERHEAD > size:
                break
            next_offset = batch_base + last_offset_delta + 1
            position += length + LOG_OVERHEAD
    return next_offset


def finish_swaps(directory: pathlib.Path) -> None:
    """After a crash mid-clean (`Segment.replace_contents`): drop incomplete `.cleaned` files,
    complete `.swap` ones. A `.swap` got its name only once fsynced whole: it replaces the
    segments whose base offset lies from its own up to the offset after its last batch (Kafka's
    LogLoader: [swap base offset, readNextOffset)), so their files still here go, then it takes
    its log's name. A segment of its group wholly past its last batch, emptied by the clean,
    stays as it was before the clean (as in Kafka): no other file holds its offsets."""
    for cleaned in directory.glob("*" + CLEANED_SUFFIX):
        cleaned.unlink()
    swaps = sorted(directory.glob("*.log" + SWAP_SUFFIX))
    if not swaps:
        return
    names = os.listdir(directory)
    for swap in swaps:
        log_path = swap.with_name(swap.name.removesuffix(SWAP_SUFFIX))
        if not log_path.stem.isdigit():
            continue
        base = int(log_path.stem)
        end = max(_next_offset(swap, base), base + 1)
        for name in names:
            stem, dot, suffix = name.partition(".")
            if stem.isdigit() and dot + suffix in _SEGMENT_SUFFIXES and base <= int(stem) < end and name != log_path.name:
                (directory / name).unlink(missing_ok=True)
        # The base offset's own old log is replaced by the rename itself: there is always one of the two.
        _complete_swap(swap, log_path, ())


def rename_directory(source: pathlib.Path, destination: pathlib.Path, files: list[DiskFile]) -> None:
    """On any thread: rename a partition's directory, then point its `files` (descriptors
    released, owned by nobody else now: PartitionLog.release_for_deletion) at their new
    names. In between, a region's reader finds no file under the name in `location`, and
    reads it again a moment later (server/sendfile.py, on the loop and in the workers); the
    identity check keeps it from reading another file's bytes.
    No other file can take the old name meanwhile: a topic of the same name is created only
    once the deletion is done (Storage's TopicDeletion)."""
    os.rename(source, destination)
    for file in files:
        file.follow(destination)


def file_name(base_offset: int, suffix: str) -> str:
    """Kafka's LogFileUtils.filenamePrefixFromOffset: 20 zero-padded digits."""
    return f"{base_offset:020d}{suffix}"


class DiskFile:
    """A .log file reached through the shared bounded descriptor cache.

    `location` is its name with the identity (device, inode) of the file it names, set in one
    assignment whenever either changes: a thread opening the file by name (the sendfile
    workers) reads it once and keeps the descriptor only if it opened that very file, since the
    loop may rename it meanwhile and put another file under the old name (a compaction swap,
    a topic re-created after DeleteTopics). It is None once the file is given up for removal:
    a file created later under its name may get its inode number back, and must not pass for
    it."""

    def __init__(self, path: pathlib.Path, handles: FileHandles) -> None:
        self.path = path
        self._handles = handles
        status = os.fstat(handles.fd(path, _LOG_FLAGS))
        self.size = status.st_size
        self.location: tuple[pathlib.Path, int, int] | None = (path, status.st_dev, status.st_ino)
        self._unsynced = False

    def append(self, data: bytearray | memoryview) -> None:
        """Write at the end; on failure cut back to the old size and raise KAFKA_STORAGE_ERROR."""
        view = memoryview(data)
        fd = self._handles.fd(self.path, _LOG_FLAGS)
        written = 0
        try:
            while written < len(view):
                written += os.pwrite(fd, view[written:], self.size + written)
        except OSError as error:
            try:
                os.ftruncate(fd, self.size)
            except OSError:
                pass  # the size in memory still marks where valid data ends; recovery cuts the rest
            raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, f"write to {self.path} failed: {error}") from error
        self.size += written
        self._unsynced = True

    def pread(self, length: int, position: int) -> bytes:
        return os.pread(self._handles.fd(self.path, _LOG_FLAGS), length, position)

    def region(self, position: int, length: int) -> list[Chunk]:
        return [FileRegion(self, position, length)]

    def truncate(self, size: int) -> None:
        os.ftruncate(self._handles.fd(self.path, _LOG_FLAGS), size)
        self.size = size
        self._unsynced = True

    def modified_ms(self) -> int:
        return self.path.stat().st_mtime_ns // 1_000_000

    def replace_contents(self, swap: pathlib.Path, index_paths: tuple[pathlib.Path, ...]) -> DiskFile:
        """Swap in a committed rewrite (`Rewrite.commit`); returns the file now holding it, this
        one being renamed `.log.deleted` for the caller to remove later (regions cut from the old
        contents still read them). The indexes are removed (recovery rebuilds missing ones),
        then `.swap` takes the log's name, with a directory fsync."""
        log_path = self.path
        self.rename(log_path.with_name(log_path.name + DELETED_SUFFIX))
        _complete_swap(swap, log_path, index_paths)
        return DiskFile(log_path, self._handles)

    def rename(self, path: pathlib.Path) -> None:
        """Give the file a new name; regions already cut from it follow."""
        self._handles.close(self.path)
        os.rename(self.path, path)
        self.path = path
        self.location = self._renamed_location()

    def moved_to(self, directory: pathlib.Path) -> None:
        """Its directory was renamed to `directory`: follow it."""
        self._handles.close(self.path)
        self.follow(directory)

    def follow(self, directory: pathlib.Path) -> None:
        """Its directory was renamed to `directory`, its descriptor released before: the name
        and location follow, touching no descriptor, so any thread may call it (`rename_directory`)."""
        self.path = directory / self.path.name
        self.location = self._renamed_location()

    def _renamed_location(self) -> tuple[pathlib.Path, int, int] | None:
        return None if self.location is None else (self.path, *self.location[1:])

    def copied_to(self, directory: pathlib.Path) -> None:
        """An exact copy of it is in `directory` (a log dir move): use that file from now on."""
        self._handles.close(self.path)
        path = directory / self.path.name
        status = os.stat(path)
        self.path = path
        self.location = (path, status.st_dev, status.st_ino)

    def flush(self) -> None:
        if self._unsynced:
            # A descriptor closed by the LRU lost nothing: fsync covers the file, not the descriptor.
            try:
                os.fsync(self._handles.fd(self.path, _LOG_FLAGS))
            except OSError as error:
                raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, f"fsync of {self.path} failed: {error}") from error
            self._unsynced = False

    def take_unsynced(self) -> int | None:
        """A duplicate of the descriptor for another thread to fsync (and close), if
        anything written is not synced yet; from now on that fsync is the other thread's."""
        if not self._unsynced:
            return None
        try:
            descriptor = os.dup(self._handles.fd(self.path, _LOG_FLAGS))
        except OSError:
            self.flush()  # no descriptor to spare: fsync here, as before
            return None
        self._unsynced = False
        return descriptor

    def mark_unsynced(self) -> None:
        """Recovery read the file, perhaps from the page cache alone: the next flush fsyncs it."""
        self._unsynced = True

    def close(self) -> None:
        self._handles.close(self.path)

    def give_up(self) -> None:
        """Release the descriptor, the file being about to be removed: from now on no region
        cut from it opens whatever file has its name."""
        self.close()
        self.location = None

    def delete(self) -> None:
        self.give_up()
        self.path.unlink(missing_ok=True)


class MemoryFile:
    """The in-memory twin of DiskFile: one immutable buffer per append, so reads
    can hand out views without pinning a buffer that later grows."""

    def __init__(self, created_ms: int) -> None:
        self.size = 0
        self._pieces: list[bytes | bytearray | memoryview] = []
        self._starts: list[int] = []
        self._created_ms = created_ms

    def append(self, data: bytearray | memoryview) -> None:
        """Takes ownership of `data`: the caller must not touch it again. A view of less than
        half its buffer (one partition's records in a request frame carrying several) is
        copied, so that a piece never keeps other partitions' bytes alive after theirs go."""
        if isinstance(data, memoryview) and 2 * data.nbytes < len(data.obj):  # type: ignore[arg-type]
            data = bytearray(data)
        self._starts.append(self.size)
        self._pieces.append(data)
        self.size += len(data)

    def _views(self, position: int, length: int) -> Iterator[memoryview]:
        slot = bisect.bisect_right(self._starts, position) - 1
        end = position + length
        while slot < len(self._pieces) and position < end:
            start = self._starts[slot]
            piece = memoryview(self._pieces[slot])[position - start : end - start]
            yield piece
            position += len(piece)
            slot += 1

    def pread(self, length: int, position: int) -> bytes:
        return b"".join(self._views(position, min(length, self.size - position)))

    def region(self, position: int, length: int) -> list[Chunk]:
        return list(self._views(position, length))

    def truncate(self, size: int) -> None:
        slot = bisect.bisect_left(self._starts, size)
        del self._pieces[slot:], self._starts[slot:]
        if self._pieces and self._starts[-1] + len(self._pieces[-1]) > size:
            self._pieces[-1] = bytes(self._pieces[-1][: size - self._starts[-1]])
        self.size = size

    def modified_ms(self) -> int:
        return self._created_ms

    def replace_contents(self, rewrite: Rewrite, modified_ms: int) -> MemoryFile:
        """Views already handed out keep the old pieces alive: nothing to wait for."""
        self._created_ms = modified_ms
        self._pieces = list(rewrite.pieces)
        self._starts = []
        self.size = 0
        for piece in self._pieces:
            self._starts.append(self.size)
            self.size += len(piece)
        return self

    def flush(self) -> None:
        """Nothing to make durable."""

    def take_unsynced(self) -> int | None:
        return None

    def mark_unsynced(self) -> None:
        """Nothing to make durable."""

    def close(self) -> None:
        """Nothing to release: the pieces live as long as the segment."""

    def delete(self) -> None:
        self._pieces.clear()
        self._starts.clear()


class Rewrite:
    """The new contents of a segment being compacted, collected batch by batch where
    they will live: a `.log.cleaned` file beside the segment, or memory."""

    def __init__(self, log_path: pathlib.Path | None) -> None:
        self.path = None if log_path is None else log_path.with_name(log_path.name + CLEANED_SUFFIX)
        self._file = None if self.path is None else open(self.path, "wb")
        self.pieces: list[bytes] = []
        self.size = 0

    def write(self, batch: bytes) -> None:
        if self._file is not None:
            self._file.write(batch)
        else:
            self.pieces.append(batch)
        self.size += len(batch)

    def commit(self, modified_ms: int) -> pathlib.Path | None:
        """Make the new contents durable, their modification time `modified_ms` (that of the
        segments they replace, for time retention: `Segment.replace_contents`), then rename them
        `.log.swap` with a directory fsync: the swap's commit point, after which a restart
        completes it (`finish_swaps`). Returns the swap file (None in memory)."""
        if self._file is None or self.path is None:
            return None
        self._file.flush()
        os.utime(self._file.fileno(), ns=(modified_ms * 1_000_000, modified_ms * 1_000_000))
        os.fsync(self._file.fileno())
        self._file.close()
        swap = self.path.with_name(self.path.name.removesuffix(CLEANED_SUFFIX) + SWAP_SUFFIX)
        rename_durably(self.path, swap)
        return swap

    def abort(self) -> None:
        if self._file is not None and self.path is not None:
            self._file.close()
            self.path.unlink(missing_ok=True)  # gone with its topic's directory


class Segment:
    """One segment. Invariant: the first `file.size` bytes are whole valid batches with
    strictly increasing offsets; `next_offset` follows the last one."""

    def __init__(
        self,
        directory: pathlib.Path | None,
        base_offset: int,
        index_interval_bytes: int,
        handles: FileHandles | None,
        now_ms: int,
        max_index_bytes: int = 10 * 1024 * 1024,
        roll_jitter_ms: int = 0,
    ) -> None:
        """`index_interval_bytes` and `max_index_bytes` are the topic's index.interval.bytes
        and segment.index.bytes; the owning log updates them when the topic's config changes.
        `roll_jitter_ms` is the segment's draw of segment.jitter.ms (Kafka's rollJitterMs, fixed
        when the segment is created or opened)."""
        self.base_offset = base_offset
        self.roll_jitter_ms = roll_jitter_ms
        self.index_interval_bytes = index_interval_bytes
        self.max_index_bytes = max_index_bytes
        # Kafka rolls when either index is full (OffsetIndex/TimeIndex.isFull).
        self.indexes_full = False
        self.created_ms = now_ms
        self.file: DiskFile | MemoryFile
        if directory is None or handles is None:
            self.file = MemoryFile(now_ms)
            self.index = OffsetIndex(None, base_offset, None)
            self.time_index = TimeIndex(None, base_offset, None)
        else:
            self.index = OffsetIndex(directory / file_name(base_offset, ".index"), base_offset, handles)
            self.time_index = TimeIndex(directory / file_name(base_offset, ".timeindex"), base_offset, handles)
            self.file = DiskFile(directory / file_name(base_offset, ".log"), handles)
        self.next_offset = base_offset
        self._max_timestamp: tuple[int, int] | None = None if self.file.size else (-1, base_offset)
        self._first_batch_timestamp: int | None = None if self.file.size else -1
        self.bytes_since_last_index_entry = 0
        # A segment found on disk was sealed when rolled; the active one is reopened by recover().
        self._sealed = self.file.size > 0

    @property
    def size(self) -> int:
        return self.file.size

    @property
    def is_empty(self) -> bool:
        return self.file.size == 0

    @property
    def max_timestamp_and_offset(self) -> tuple[int, int]:
        """(largest timestamp, offset where it was first reached), as Kafka's
        maxTimestampAndOffsetSoFar; after a restart, the time index's last entry
        (a segment's final entry is written when it is rolled or closed)."""
        if self._max_timestamp is None:
            self._max_timestamp = self.time_index.last() or (-1, self.base_offset)
        return self._max_timestamp

    @property
    def largest_timestamp(self) -> int:
        """What time retention compares: Kafka's LogSegment.largestTimestamp falls back
        to the file's modification time when no batch carries a timestamp."""
        timestamp = self.max_timestamp_and_offset[0]
        return timestamp if timestamp >= 0 else self.file.modified_ms()

    @property
    def first_batch_timestamp(self) -> int:
        """Kafka's rollingBasedTimestamp: the first batch's max timestamp, -1 if none."""
        if self._first_batch_timestamp is None:
            first = next(self.batches(), None)
            self._first_batch_timestamp = first[1].max_timestamp if first else -1
        return self._first_batch_timestamp

    def should_roll(self, incoming: int, last_offset: int, incoming_timestamp: int, now_ms: int, segment_bytes: int, segment_ms: int) -> bool:
        """Kafka's LogSegment.shouldRoll for an append of `incoming` bytes ending at `last_offset`:
        never when empty; when the bytes would pass `segment_bytes`, an index is full, the segment
        has waited more than `segment_ms` less its roll jitter (timeWaitedForRoll: by record time
        when batches carry it), or a relative offset would not fit its 4 bytes
        (canConvertToRelativeOffset). One call, as it runs for every append."""
        size = self.file.size
        if size == 0:
            return False
        if size > segment_bytes - incoming or self.indexes_full:
            return True
        first = self._first_batch_timestamp
        if first is None:
            first = self.first_batch_timestamp
        waited = incoming_timestamp - first if first >= 0 else now_ms - self.created_ms
        return waited > segment_ms - self.roll_jitter_ms or last_offset - self.base_offset > 0x7FFFFFFF  # not can_index(last_offset)

    def can_index(self, last_offset: int) -> bool:
        """Relative offsets are 4 bytes (Kafka's canConvertToRelativeOffset)."""
        return last_offset - self.base_offset <= 0x7FFFFFFF

    def append(self, data: bytearray | memoryview, last_offset: int, max_timestamp: int, offset_of_max_timestamp: int) -> None:
        """Append one validated batch ending at `last_offset`, whose largest timestamp first
        appears at `offset_of_max_timestamp` (its last offset). Indexed as Kafka's
        LogSegment.append indexes each batch: once more than `index.interval.bytes` went
        unindexed, an entry for its last offset at its position."""
        position = self.file.size
        self._sealed = False
        if position == 0:
            self._first_batch_timestamp = read_header(data).max_timestamp
        self.file.append(data)
        # The property's value without its call, once known (it is, after the first append).
        known = self._max_timestamp
        if max_timestamp > (known or self.max_timestamp_and_offset)[0]:
            self._max_timestamp = (max_timestamp, offset_of_max_timestamp)
        if self.bytes_since_last_index_entry > self.index_interval_bytes:
            self._index_batch(last_offset, position)
        self.bytes_since_last_index_entry += len(data)
        self.next_offset = last_offset + 1

    def append_batches(self, data: bytearray | memoryview, last_offset: int) -> None:
        """Append several validated batches ending at `last_offset` (a produce request may carry
        several for a partition), indexed batch by batch as Kafka's LogSegment.append loops over
        them: before each, once more than `index.interval.bytes` went unindexed, an entry for its
        last offset at its position, with the largest timestamp of the batches up to it. Apart
        from `append` so that the one-batch append, every producer's, reads no header."""
        position = self.file.size
        self._sealed = False
        if position == 0:
            self._first_batch_timestamp = read_header(data).max_timestamp
        self.file.append(data)
        start = 0
        while start < len(data):
            header = read_header(data, start)
            if header.max_timestamp > self.max_timestamp_and_offset[0]:
                self._max_timestamp = (header.max_timestamp, header.last_offset)
            if self.bytes_since_last_index_entry > self.index_interval_bytes:
                self._index_batch(header.last_offset, position + start)
            self.bytes_since_last_index_entry += header.size
            start += header.size
        self.next_offset = last_offset + 1

    def _index_batch(self, last_offset: int, position: int) -> None:
        """The index entries for a batch ending at `last_offset` at `position` (the time index's
        with the largest timestamp so far), as LogSegment.append adds them."""
        self.index.append(last_offset, position)
        self.time_index.maybe_append(*self.max_timestamp_and_offset)
        self.bytes_since_last_index_entry = 0
        self.indexes_full = (
            self.index.byte_size() + OFFSET_ENTRY.size > self.max_index_bytes
            or self.time_index.byte_size() + TIME_ENTRY.size > self.max_index_bytes
        )

    def batches(self, position: int = 0) -> Iterator[tuple[int, BatchHeader]]:
        """(position, header) of each batch from `position` on, reading headers only."""
        while self.file.size - position >= BATCH_HEADER_SIZE:
            header = read_header(self.file.pread(BATCH_HEADER_SIZE, position))
            yield position, header
            position += header.size

    def read(self, offset: int, max_bytes: int, min_one: bool, max_offset: int | None = None) -> tuple[list[Chunk], int] | None:
        """Whole batches from the one holding `offset`, up to `max_bytes` (the first
        one regardless when `min_one`), none starting at or past `max_offset`; None if
        no batch here reaches `offset`."""
        start = -1
        total = 0
        for position, base_offset, size, last_offset in self._prefixes(self.index.lookup(offset)):
            if max_offset is not None and base_offset >= max_offset:
                break
            if start < 0:
                if last_offset < offset:
                    continue
                if size > max_bytes and not min_one:
                    return [], 0
                start = position
            elif total + size > max_bytes:
                break
            total += size
        if start < 0:
            return None
        return self.file.region(start, total), total

    def _prefixes(self, position: int) -> Iterator[tuple[int, int, int, int]]:
        """(position, base offset, size, last offset) of each batch from `position` on,
        reading only what headers need: one small read per large batch, a 64 KiB window
        when batches are small (a 1 MiB fetch of 100-byte batches is 10,000 headers)."""
        end = self.file.size
        window, window_start = b"", position
        size = _SMALL_BATCH
        while position < end:
            offset_in_window = position - window_start
            if offset_in_window + _BATCH_PREFIX.size > len(window):
                wanted = _PREFIX_WINDOW if size < _SMALL_BATCH else _BATCH_PREFIX.size
                window, window_start, offset_in_window = self.file.pread(wanted, position), position, 0
                if len(window) < _BATCH_PREFIX.size:
                    return
            base_offset, length, _, last_offset_delta = _BATCH_PREFIX.unpack_from(window, offset_in_window)
            size = length + LOG_OVERHEAD
            yield position, base_offset, size, base_offset + last_offset_delta
            position += size

    def find_offset_by_timestamp(self, timestamp: int, starting_offset: int) -> tuple[int, int] | None:
        """The first record at or after `starting_offset` with a timestamp >= `timestamp`,
        as (timestamp, offset); Kafka's LogSegment.findOffsetByTimestamp."""
        indexed_offset = self.time_index.lookup(timestamp)
        position = self.index.lookup(max(indexed_offset, starting_offset))
        for batch_position, header in self.batches(position):
            if header.max_timestamp < timestamp or header.last_offset < starting_offset:
                continue
            for record in iter_records(self.file.pread(header.size, batch_position)):
                if record.timestamp >= timestamp and record.offset >= starting_offset:
                    return record.timestamp, record.offset
        return None

    def offset_of_timestamp(self, timestamp: int, near_offset: int) -> int:
        """The offset of the first record carrying exactly `timestamp` in the batch that
        holds `near_offset` (KIP-734's max-timestamp answer is a record, not a batch)."""
        for batch_position, header in self.batches(self.index.lookup(near_offset)):
            if header.last_offset >= near_offset:
                for record in iter_records(self.file.pread(header.size, batch_position)):
                    if record.timestamp == timestamp:
                        return record.offset
                break
        return near_offset

    def recover(self, from_start: bool = False) -> int:
        """Re-validate the log from the last index entry (or the start) and rebuild what
        follows in both indexes. Kafka's LogSegment.recover scans the whole segment; the
        indexed part was checked when it was written, and a start from scratch happens
        whenever an index is missing or inconsistent. Truncates a torn or corrupt tail;
        returns the number of bytes cut. Index files are rewritten only if they changed."""
        self._sealed = False
        offsets = [self.index.entry_at(slot) for slot in range(len(self.index))]
        times = [self.time_index.entry_at(slot) for slot in range(len(self.time_index))]
        # Both indexes gain an entry together, so an empty time index beside a
        # non-empty offset index was lost.
        if (
            from_start
            or not self.index.is_consistent(self.file.size)
            or not self.time_index.is_consistent()
            or (offsets and not times)
        ):
            offsets, times = [], []
        position = start = offsets[-1][1] if offsets else 0
        # Time entries past the last offset entry are rebuilt by the scan.
        times = [entry for entry in times if entry[1] <= (offsets[-1][0] if offsets else self.base_offset)]
        self._max_timestamp = times[-1] if times else (-1, self.base_offset)
        self._first_batch_timestamp = None
        self.bytes_since_last_index_entry = 0
        self.next_offset = self.base_offset
        while position < self.file.size:
            consumed = self._recover_window(self.file.pread(_RECOVERY_WINDOW, position), position, offsets, times)
            if consumed == 0:
                # Perhaps one batch larger than the window: read it whole.
                prefix = self.file.pread(_BATCH_PREFIX.size, position)
                if len(prefix) == _BATCH_PREFIX.size:
                    size = _BATCH_PREFIX.unpack(prefix)[1] + LOG_OVERHEAD
                    if _RECOVERY_WINDOW < size <= self.file.size - position:
                        consumed = self._recover_window(self.file.pread(size, position), position, offsets, times)
            if consumed == 0:
                break
            position += consumed
        truncated = self.file.size - position
        if truncated and start > 0:
            # Only a full scan may condemn bytes: the index entry itself could be stale.
            return self.recover(from_start=True)
        if truncated:
            self.file.truncate(position)
        # As Kafka's recover ends: the running max becomes the last time entry, as on close.
        largest = self.max_timestamp_and_offset
        if largest[0] >= 0 and (not times or largest[0] > times[-1][0]):
            times.append(largest)
        self.index.replace_if_changed(b"".join(OFFSET_ENTRY.pack(o - self.base_offset, p) for o, p in offsets))
        self.time_index.replace_if_changed(b"".join(TIME_ENTRY.pack(t, o - self.base_offset) for t, o in times))
        return truncated

    def _recover_window(
        self, window: bytes, position: int, offsets: list[tuple[int, int]], times: list[tuple[int, int]]
    ) -> int:
        """Accept the valid batches at the start of `window`, indexing them batch by batch
        as Kafka's LogSegment.recover does; returns their total size."""
        consumed = 0
        for header, _ in scan_batches(window, verify_crc=True):
            if header.base_offset < self.next_offset or not self.can_index(header.last_offset):
                break  # offsets must increase and fit the index: anything else is not ours
            if header.max_timestamp > self.max_timestamp_and_offset[0]:
                self._max_timestamp = (header.max_timestamp, header.last_offset)
            if self.bytes_since_last_index_entry > self.index_interval_bytes:
                offsets.append((header.last_offset, position + consumed))
                largest = self.max_timestamp_and_offset
                if not times or largest[0] > times[-1][0]:
                    times.append(largest)
                self.bytes_since_last_index_entry = 0
            self.bytes_since_last_index_entry += header.size
            self.next_offset = header.last_offset + 1
            consumed += header.size
        return consumed

    def start_rewrite(self) -> Rewrite:
        return Rewrite(self.file.path if isinstance(self.file, DiskFile) else None)

    def replace_contents(self, rewrite: Rewrite, absorbed: Sequence[Segment] = ()) -> list[DeletedFiles]:
        """Swap in the rewritten batches (compaction) of this segment and of the `absorbed` ones
        following it (Kafka's cleaned group: Cleaner.cleanSegments) and rebuild both indexes;
        this segment then covers their offsets too, which never move. Returns the old files,
        renamed `.deleted` for the caller to remove after file.delete.delay.ms (none in memory).
        Only for sealed segments: the active one is never cleaned.

        On disk, in Kafka's order (LocalLog.replaceSegments): the rewrite is fsynced and renamed
        `.log.swap` with a directory fsync (`Rewrite.commit`); then the absorbed segments' files
        and this one's log are renamed `.deleted` and its indexes removed; then the swap takes
        the log's name, and the directory's fsync makes those renames durable with it. A crash
        before the commit leaves the old segments and a `.cleaned` a restart removes; one after
        it leaves the swap, which `finish_swaps` completes: either the old segments or the new
        one are read, never both.

        The new file takes the modification time of the group's last (newest) segment, as
        Kafka's cleaned segment does (Cleaner.cleanSegments' setLastModified): time retention
        falls back to it where no batch carries a timestamp, and an emptied segment has none."""
        self.index.seal()
        self.time_index.seal()
        next_offset = absorbed[-1].next_offset if absorbed else self.next_offset
        modified_ms = (absorbed[-1] if absorbed else self).file.modified_ms()
        swap = rewrite.commit(modified_ms)
        deleted = [files for segment in absorbed if (files := segment.mark_deleted()) is not None]
        old = self.file
        if isinstance(old, DiskFile):
            assert swap is not None
            paths = tuple(path for path in (self.index.path, self.time_index.path) if path is not None)
            self.file = old.replace_contents(swap, paths)
            deleted.append(DeletedFiles(old, []))
        else:
            self.file = old.replace_contents(rewrite, modified_ms)
        self.index.forget()
        self.time_index.forget()
        self.recover(from_start=True)
        self.next_offset = next_offset  # offsets do not move, even if the last batches went
        self.seal()
        return deleted

    @property
    def index_sizes(self) -> tuple[int, int]:
        """Bytes of the offset and time indexes (Kafka's OffsetIndex/TimeIndex.sizeInBytes)."""
        return self.index.byte_size(), self.time_index.byte_size()

    def seal(self, sync_later: list[int] | None = None) -> None:
        """The segment stops being active (rolled or closed): write the final time index
        entry as Kafka's onBecomeInactiveSegment/close do, release the indexes. The files
        are fsynced here, or, given `sync_later`, duplicated descriptors of those not synced
        yet are added to it for the caller to fsync elsewhere (storage/flusher.py)."""
        if self._sealed:
            return
        self._sealed = True
        timestamp, offset = self.max_timestamp_and_offset
        if timestamp >= 0:
            self.time_index.maybe_append(timestamp, offset)
        if sync_later is None:
            self.flush()
        else:
            for part in (self.file, self.index, self.time_index):
                descriptor = part.take_unsynced()
                if descriptor is not None:
                    sync_later.append(descriptor)
        self.index.seal()
        self.time_index.seal()
        self.file.close()

    def flush(self) -> None:
        self.file.flush()
        self.index.flush()
        self.time_index.flush()

    def mark_unsynced(self) -> None:
        """Recovery read its files, perhaps from the page cache alone (a process killed, not
        the machine): the next flush or seal fsyncs them before the recovery point passes."""
        for part in (self.file, self.index, self.time_index):
            part.mark_unsynced()

    def close(self) -> None:
        self.seal()

    def delete(self) -> None:
        """Remove the files now: an in-memory segment's, or one nobody can be reading."""
        # Indexes first: a crash in between leaves a log whose missing indexes are rebuilt.
        self.index.delete()
        self.time_index.delete()
        self.file.delete()

    def mark_deleted(self) -> DeletedFiles | None:
        """Kafka's LogSegment.changeFileSuffixes("", ".deleted"): rename the files for the
        caller to remove after file.delete.delay.ms, releasing descriptors and maps. In
        memory the segment just goes (None): the views a read handed out keep their buffers.
        Indexes first: a crash in between leaves a log whose missing indexes are rebuilt
        (an index without its log would be taken up by a new segment at that offset);
        recovery removes `.deleted` files."""
        if not isinstance(self.file, DiskFile):
            self.delete()
            return None
        indexes = [index.rename_for_deletion() for index in (self.index, self.time_index)]
        self.file.rename(self.file.path.with_name(self.file.path.name + DELETED_SUFFIX))
        return DeletedFiles(self.file, indexes)

    def release_for_deletion(self) -> DiskFile | None:
        """Its partition's directory is about to be renamed for deletion (DeleteTopics):
        release descriptors and maps; returns the log file, which regions already cut read,
        for `rename_directory` to point at the new name (None in memory)."""
        self.index.release()
        self.time_index.release()
        if not isinstance(self.file, DiskFile):
            return None
        self.file.close()
        return self.file


    def relocate(self, directory: pathlib.Path) -> None:
        """Its partition's files were copied to `directory` (a log dir move), pending index
        entries written first: use those files from now on."""
        self.index.relocate(directory)
        self.time_index.relocate(directory)
        if isinstance(self.file, DiskFile):
            self.file.copied_to(directory)


@dataclass(slots=True)
class DeletedFiles:
    """A deleted segment's files (or a compacted segment's old log) under their `.deleted`
    names, to be removed once no reader can still want them. `log` is what the regions
    cut from it reference."""

    log: DiskFile
    others: list[pathlib.Path]

    def moved_to(self, directory: pathlib.Path) -> None:
        self.log.moved_to(directory)
        self.others = [directory / path.name for path in self.others]

    def take(self) -> list[pathlib.Path]:
        """Release the log's descriptor (the descriptor cache is the caller's thread's) and
        give the files to remove (`files.remove_paths`, on any thread)."""
        self.log.give_up()
        return [*self.others, self.log.path]

    def remove(self) -> None:
        remove_paths(self.take())
