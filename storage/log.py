"""A partition's log: an ordered list of segments behind one append/read interface.

Invariants: segments are sorted by base offset and contiguous; only the last
(active) one is appended to; `log_end_offset` is the next offset to assign;
`log_start_offset` lies within [first segment's base offset, log end offset].
Single node, so the high watermark equals the log end offset after each
append. Not thread-safe: the broker calls it from its one event-loop thread.

Producer state (storage/producer_state.py) is checked before each batch is appended and
updated after, as Kafka's UnifiedLog.analyzeAndValidateProducerState does. It is written
to `<offset>.snapshot` at each roll and at close, and rebuilt on open from the newest
snapshot not past the log end plus a replay of the batch headers after it
(ProducerStateManager.truncateAndReload), in Kafka's binary form (storage/producer_snapshot.py);
the aborted transactions below the snapshot come from the `.txnindex` files. After a clean
shutdown that left no snapshot, as in Kafka, nothing is replayed: the producers are forgotten.
As in Kafka, a roll's snapshot stays while its segment does, so that a crash recovers each
segment from the snapshot at its base; the load deletes the others and writes one at the log
end when it replayed past the newest (`_load_producer_state`).

Durability at a roll (Kafka's UnifiedLog.roll and its `flush-log` job): the old segment is
sealed and the snapshot written without fsync, and their fsyncs (then the directory's) are
handed to the storage's worker (storage/flusher.py), so the event loop never waits for a
rolled gigabyte to reach the disk. The recovery point is the offset below which everything
is known durable: it moves when the worker reports a rolled segment synced, and to the log
end at each flush (flush.messages, flush.ms) and at close; the storage checkpoints it
(Kafka's recovery-point-offset-checkpoint). On load every segment holding offsets at or
past it is recovered from its start, not only the active one (Kafka's LogLoader), and a
torn tail cut from a sealed segment takes the later segments with it; none is after a clean
shutdown (the storage's `.kafka_cleanshutdown` marker), as in Kafka.

Directory entries: a file's fsync does not make its name durable, its directory's fsync does.
The partition's directory is fsynced wherever Kafka fsyncs it: after a new segment's files
(a flush, a roll's job: Kafka's LocalLog.flush) and after compaction's renames (its
LocalLog.replaceSegments). Renames to `.deleted` for retention or DeleteRecords, and
removals, are not followed by one, as in Kafka (LogSegment.changeFileSuffixes,
deleteIfExists): one a power loss undoes only brings back a file that is deleted again. The
partition directory's own entry, in the log directory, is the storage's (storage/engine.py).
"""

from __future__ import annotations

import bisect
import errno
import functools
import os
import pathlib
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass

from ottla.storage.compaction import (
    AbortedBatches,
    BatchCleaner,
    CleanedTransactions,
    DirtyOffsetMap,
    due_segments,
    group_segments_by_size,
    offset_map_capacity,
)
from ottla.storage.config import LogConfig
from ottla.storage.flusher import Flusher, FlushJob, sync_rolled
from ottla.storage.files import DELETED_SUFFIX, TEMPORARY_SUFFIX, fsync_directory, remove_paths, replace_file
from ottla.storage.handles import FileHandles
from ottla.storage.leader_epochs import (
    EPOCH_CHECKPOINT_FILE,
    assign_epoch,
    format_epoch_checkpoint,
    parse_epoch_checkpoint,
    truncate_epochs_from_start,
)
from ottla.storage.producer_snapshot import CorruptSnapshotError, decode_snapshot, encode_snapshot
from ottla.storage.producer_state import (
    AbortedTransaction, BatchMetadata, ProducerStateManager, end_txn_marker, txn_index_entries, txn_index_entry,
)
from ottla.storage.segment import CLEANED_SUFFIX, SWAP_SUFFIX, Chunk, DeletedFiles, DiskFile, Segment, file_name, finish_swaps
from ottla.storage.validator import RecordRules, recompress
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.records import (
    BatchHeader,
    FIELD_ATTRIBUTES,
    FIELD_LAST_OFFSET_DELTA,
    FIELD_MAX_TIMESTAMP,
    FIELD_PRODUCER_ID,
    batch_magic,
    convert_legacy,
    iter_batch_fields,
    read_header,
    set_base_offset,
    set_log_append_time,
    set_partition_leader_epoch,
)

# ListOffsets' special timestamps (Kafka's ListOffsetsRequest).
LATEST_TIMESTAMP = -1
EARLIEST_TIMESTAMP = -2
MAX_TIMESTAMP = -3
EARLIEST_LOCAL_TIMESTAMP = -4

# The cleaner's offset map at Kafka's default log.cleaner.dedupe.buffer.size, threads and load factor.
DEFAULT_MAP_CAPACITY = offset_map_capacity()

SNAPSHOT_SUFFIX = ".snapshot"
TXN_INDEX_SUFFIX = ".txnindex"

# Not frozen: a frozen dataclass sets each field through object.__setattr__, which made building
# one, once per append, cost 7.9k instructions instead of 2.8k.
@dataclass(slots=True)
class AppendResult:
    base_offset: int
    last_offset: int
    log_append_time_ms: int  # -1 unless the topic uses LogAppendTime
    log_start_offset: int


@dataclass(slots=True, frozen=True)
class ReadResult:
    """Whole batches as buffers or file ranges (for sendfile), in log order."""

    chunks: list[Chunk]
    size: int
    high_watermark: int
    log_start_offset: int


def run_steps(steps: Generator[None, None, int]) -> int:
    """Drive a stepwise pass (`PartitionLog.clean_steps`) to its end, without pausing."""
    while True:
        try:
            next(steps)
        except StopIteration as finished:
            cleaned: int = finished.value
            return cleaned


def _segment_batches(segment: Segment) -> Iterator[bytes]:
    """A segment's batches one at a time: compaction never holds a whole segment."""
    for position, header in segment.batches():
        yield segment.file.pread(header.size, position)


def out_of_space(error: BaseException) -> bool:
    """A full disk (or quota): appends are refused until there is room again, but the
    directory stays online (tests/robustness/test_disk_full.py). Divergence: Kafka's
    LogDirFailureChannel takes the directory offline on any IOException, this one too."""
    cause = error.__cause__ if isinstance(error, KafkaError) else error
    return isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT)


def _stray_snapshots(offsets: list[int], bases: list[int]) -> list[int]:
    """Kafka's ProducerStateManager.removeStraySnapshots, of `offsets` sorted: the snapshots at
    no segment's base go, all but the newest, and that one too unless it lies past the last
    segment's base (as a close's at the log end does)."""
    at_bases = set(bases)
    strays = [offset for offset in offsets if offset not in at_bases]
    return strays[:-1] if strays and strays[-1] > bases[-1] else strays


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class PartitionLog:
    """One partition's segments; see the module docstring for its invariants."""

    def __init__(
        self,
        directory: pathlib.Path | None,
        config: LogConfig,
        handles: FileHandles | None = None,
        log_start_offset: int = 0,
        on_checkpoint: Callable[[], None] | None = None,
        leader_epoch: int = 0,
        first_dirty_offset: int = 0,
        topic_partition: str = "",
        flusher: Flusher | None = None,
        recovery_point: int = 0,
        producer_expiration_ms: int | None = None,
        clean_shutdown: bool = False,
    ) -> None:
        """`directory=None` keeps the log in memory. `log_start_offset`,
        `first_dirty_offset` and `recovery_point` are the checkpointed values;
        `on_checkpoint` persists the first two when DeleteRecords or the cleaner moves them.
        `topic_partition` ("<topic>-<index>") names the partition in record errors.
        `flusher` takes a roll's fsyncs off the caller's thread; without one they happen in `roll`.
        `producer_expiration_ms` (producer.id.expiration.ms) drops the producers a snapshot
        holds that are expired when it is loaded; None keeps them all. `clean_shutdown`: the log
        directory held Kafka's clean-shutdown marker (storage/engine.py), so every file was
        fsynced at the last close and load skips what only a crash needs (`_load`)."""
        self.directory = directory
        self._config = config
        self.topic_partition = topic_partition
        self._record_rules = RecordRules.of(config, topic_partition)
        self._leader_epoch = leader_epoch
        # (epoch, start offset) history, as Kafka's LeaderEpochFileCache and its checkpoint file.
        self.epochs: list[tuple[int, int]] = []
        self._handles = handles if directory is not None else None
        self._on_checkpoint = on_checkpoint
        self.first_dirty_offset = first_dirty_offset
        self.segments: list[Segment] = []
        # Files of deleted segments, each with the time it may be removed (file.delete.delay.ms).
        self._deleted: list[tuple[int, DeletedFiles]] = []
        self.producer_state = ProducerStateManager()
        self._snapshot_offset = 0  # the log end offset the newest snapshot was taken at
        self._txn_index_unsynced = False  # the active segment's `.txnindex` was appended to since its fsync
        self._messages_since_flush = 0
        self._last_flush_ms = _now_ms()
        self._flusher = flusher
        self._recovery_point = recovery_point
        self._producer_expiration_ms = producer_expiration_ms
        # Rolled segments whose fsync is the flusher's, oldest first: (the offset durable below once done, job).
        self._pending: deque[tuple[int, FlushJob]] = deque()
        # Told of an I/O error on append or read (but a full disk): the storage takes the log's directory offline.
        self.on_storage_error: Callable[[], None] | None = None
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            self._load(clean_shutdown, log_start_offset)
            if self.segments and log_start_offset > self.segments[-1].next_offset:
                self._start_afresh_at(log_start_offset)
        if not self.segments:
            self.segments.append(self._new_segment(0, _now_ms()))
        self._log_start_offset = min(max(log_start_offset, self.segments[0].base_offset), self.log_end_offset)
        self.first_dirty_offset = min(first_dirty_offset, self.log_end_offset)
        self._recovery_point = min(self._recovery_point, self.log_end_offset)
        self._load_epochs()
        if not self.epochs:
            self.leader_epoch = leader_epoch

    def _new_segment(self, base_offset: int, now_ms: int) -> Segment:
        config = self._config
        return Segment(
            self.directory, base_offset, config.index_interval_bytes, self._handles, now_ms, config.segment_index_bytes,
            config.random_segment_jitter(),
        )

    def _load(self, clean_shutdown: bool, log_start_offset: int) -> None:
        """Open existing segments; recover the active one (its tail may be torn), and from
        its start every sealed one holding offsets at or past the recovery point (its roll's
        fsync may not have happened) or missing an index. A sealed segment with a torn tail
        becomes the active one: the segments after it were written later and go (Kafka's
        LogLoader.recoverLog). Leftovers of an interrupted index rewrite go, and files of
        deleted segments whose delay a restart cut short (as Kafka's LogLoader).

        The active segment is checked from its last index entry after a clean close (the
        recovery point is its end); otherwise, as Kafka after an unclean shutdown, from its
        start (pages lost before that entry read back as zeros), and what was read is marked
        unsynced: it may be in the page cache alone, and the recovery point must not pass it
        before an fsync.

        After a `clean_shutdown` every segment was fsynced at close, so none is recovered from
        its start for lying past the recovery point (Kafka's LogLoader with hadCleanShutdown):
        the recovery point stays where it was checkpointed, and a crash later recovers from
        there. A missing index is rebuilt all the same, and the active segment is still
        checked from its last index entry, which is how its end is found."""
        assert self.directory is not None
        checkpointed_recovery_point = self._recovery_point  # recovering sealed segments below moves it
        # One listing per partition: thousands of partitions must open in well under a second.
        names = set(os.listdir(self.directory))
        if any(name.endswith((TEMPORARY_SUFFIX, DELETED_SUFFIX, CLEANED_SUFFIX, SWAP_SUFFIX)) for name in names):
            for name in names:
                if name.endswith((TEMPORARY_SUFFIX, DELETED_SUFFIX)):
                    (self.directory / name).unlink()
            finish_swaps(self.directory)
            names = set(os.listdir(self.directory))
        bases = sorted(int(name[:-4]) for name in names if name.endswith(".log") and name[:-4].isdigit())
        now = _now_ms()
        self.segments = [self._new_segment(base, now) for base in bases]
        for segment, following in zip(self.segments, self.segments[1:]):
            segment.next_offset = following.base_offset
        for slot, segment in enumerate(self.segments[:-1]):
            base, next_offset = segment.base_offset, segment.next_offset
            indexes_missing = not {f"{base:020d}.index", f"{base:020d}.timeindex"} <= names
            if not indexes_missing and (clean_shutdown or next_offset <= self._recovery_point):
                continue
            if segment.recover(from_start=True):
                for later in self.segments[slot + 1 :]:
                    later.delete()
                del self.segments[slot + 1 :]
                break
            segment.next_offset = next_offset  # compaction may have emptied its last offsets
            segment.mark_unsynced()
            self._seal_and_sync(segment, None)
        if self.segments:
            active = self.segments[-1]
            active.recover()
            if not clean_shutdown and active.next_offset != self._recovery_point:
                active.recover(from_start=True)
                active.mark_unsynced()
            self._load_producer_state(names, clean_shutdown, log_start_offset, checkpointed_recovery_point)
            self._sync_txn_indexes(names)

    def _start_afresh_at(self, log_start_offset: int) -> None:
        """The checkpointed log start is past what survived (a power loss took an unsynced
        tail below it): as Kafka's LogLoader, the log restarts empty at the log start, so that
        offsets readers were told are gone are never handed out again. The new segment is
        created first: a crash in between leaves the old ones below the log start, for
        retention to remove, never a directory without a segment (which a re-created topic's
        is, its stale checkpoint entries ignored)."""
        fresh = self._new_segment(log_start_offset, _now_ms())
        for segment in self.segments:
            segment.delete()
        for offset in self._snapshot_offsets():
            self._snapshot_path(offset).unlink()
        self.producer_state = ProducerStateManager()
        self._snapshot_offset = 0
        self.segments = [fresh]

    def _snapshot_offsets(self, names: Iterable[str] | None = None) -> list[int]:
        assert self.directory is not None
        names = os.listdir(self.directory) if names is None else names
        return sorted(int(n[: -len(SNAPSHOT_SUFFIX)]) for n in names if n.endswith(SNAPSHOT_SUFFIX) and n[: -len(SNAPSHOT_SUFFIX)].isdigit())

    def _snapshot_path(self, offset: int) -> pathlib.Path:
        assert self.directory is not None
        return self.directory / f"{offset:020d}{SNAPSHOT_SUFFIX}"

    def _load_producer_state(self, names: set[str], clean_shutdown: bool, log_start_offset: int, recovery_point: int) -> None:
        """The newest readable snapshot at or below the log end, less its producers expired by
        now (ProducerStateManager.loadFromSnapshot; the batches replayed after it are kept until
        the periodic expiry, as there), with the aborted transactions the `.txnindex` files hold
        below it, then the batches after it. Without a snapshot the whole log is replayed, where
        Kafka starts at the log start: the `.txnindex` files are rewritten from the state replayed
        (`_sync_txn_indexes`), and an aborted transaction begun below the log start would be lost.

        The snapshot files end as Kafka's LogLoader leaves them. After a crash, the segments
        from the one holding the recovery point on are recovered (LogLoader.recoverLog), each
        from the producer state at its base: the snapshots past the first one's base go
        (truncateAndReload), and one is written at its base and at each recovered segment's
        end. Then, either way, stray snapshots go (removeStraySnapshots: those at no segment's
        base, but the newest if it lies in the last segment, as a close's at the log end does),
        and those past the log end or at or below the log start (truncateAndReload); unreadable
        ones (CorruptSnapshotException: torn, or an earlier Ottla's JSON) go as they are met.
        The replay writes a snapshot at the last two segments' bases it passes and at the log
        end (UnifiedLog.rebuildProducerState), each only past the newest snapshot, so a clean
        shutdown's load, whose snapshot is at the log end, writes none.

        After a `clean_shutdown` that left no snapshot at all, nothing is replayed: the state
        starts empty, the aborted transactions aside (the `.txnindex` files are their record),
        and empty snapshots are written where Kafka's UnifiedLog.rebuildProducerState writes
        them (reloadFromCleanShutdown), so that a crash later does not rebuild from the log
        the producers this start forgot."""
        end = self.log_end_offset
        bases = [segment.base_offset for segment in self.segments]
        log_start = max(log_start_offset, bases[0])  # LogLoader's, before a start past the end is dealt with
        snapshots = self._snapshot_offsets(names)
        gone: set[int] = set()
        points = {*bases[-2:], end}
        if not clean_shutdown:
            recovered = max(bisect.bisect_right(bases, recovery_point) - 1, 0)
            first = bases[recovered]
            gone.update(offset for offset in snapshots if offset > first or offset <= log_start_offset)
            points.update(segment.next_offset for segment in self.segments[recovered:])
            points.add(first)
        kept = [offset for offset in snapshots if offset not in gone]
        gone.update(_stray_snapshots(kept, bases))
        if clean_shutdown and set(kept) <= gone:
            self._remove_snapshots(gone)
            self._load_aborted_below(end, names)
            if self.segments[0].base_offset < end:
                self._take_empty_snapshots(end)
            return
        gone.update(offset for offset in kept if offset > end or offset <= log_start)
        self._remove_snapshots(gone)
        # Kafka's lastSnapOffset: the snapshot loaded or written last, else the log start.
        start, self._snapshot_offset = bases[0], log_start
        for offset in reversed([offset for offset in kept if offset not in gone]):
            path = self._snapshot_path(offset)
            try:
                self.producer_state = decode_snapshot(path.read_bytes())
            except CorruptSnapshotError:
                path.unlink()
                continue
            if self._producer_expiration_ms is not None:
                self.producer_state.expire(_now_ms(), self._producer_expiration_ms)
            start = self._snapshot_offset = offset
            break
        self._load_aborted_below(start, names)
        pending = {point for point in points if point > start and point > log_start}
        for segment in self.segments:
            if segment.next_offset <= start:
                continue
            if segment.base_offset in pending:
                self._write_snapshot_at(segment.base_offset)
            for position, header in segment.batches(segment.index.lookup(start) if segment.base_offset <= start else 0):
                if header.producer_id < 0 or header.last_offset < start:
                    continue
                # A control batch the cleaner left empty: its transaction is gone from the log (Kafka's ProducerAppendInfo.append).
                emptied = header.is_control and header.records_count == 0
                marker = end_txn_marker(segment.file.pread(header.size, position)) if header.is_control and not emptied else None
                self.producer_state.record(header, header.next_offset, marker)
        if end in pending and self._snapshot_offset != end:
            self._write_snapshot_at(end)

    def _remove_snapshots(self, offsets: Iterable[int]) -> None:
        for offset in offsets:
            self._snapshot_path(offset).unlink()

    def _write_snapshot_at(self, offset: int) -> None:
        """The producer state replayed up to `offset`, written there (Kafka's takeSnapshot at load).
        Its fsync and the directory's are the flusher's when there is one, as a roll's are, so
        that a start after a crash does not wait for one per partition: a crash before them leaves
        the file torn or missing, unreadable or absent to the next load, which replays the log."""
        path = self._snapshot_path(offset)
        replace_file(path, encode_snapshot(self.producer_state), sync=self._flusher is None)
        if self._flusher is not None:
            self._flusher.submit(functools.partial(sync_rolled, [], path, self.directory))
        self._snapshot_offset = offset

    def _load_aborted_below(self, start: int, names: set[str]) -> None:
        """Add to the producer state the aborted transactions the `.txnindex` files hold below `start`."""
        for segment in self.segments:
            txn_index = self._txn_index_path(segment)
            if segment.base_offset < start and txn_index.name in names:
                entries = txn_index_entries(txn_index.read_bytes())
                self.producer_state.aborted.extend(entry for entry in entries if entry.last_offset < start)

    def _take_empty_snapshots(self, end: int) -> None:
        """Kafka's rebuildProducerState after a clean shutdown without snapshots: a snapshot of
        the empty state at the base offsets of the last two segments and at the log end, fsynced,
        none at 0 (ProducerStateManager.takeSnapshot writes past its last snapshot offset only,
        0 before any)."""
        offsets = {segment.base_offset for segment in self.segments[-2:] if segment.base_offset > 0} | {end}
        for offset in sorted(offsets):
            replace_file(self._snapshot_path(offset), encode_snapshot(self.producer_state))
        self._snapshot_offset = end

    def _take_snapshot(self, sync: bool = True) -> pathlib.Path | None:
        """Kafka's ProducerStateManager.takeSnapshot, at roll and close; skipped when
        nothing was appended since the last one. Returns the file written, for the caller
        to fsync (with its directory) when not `sync`."""
        end = self.log_end_offset
        if self.directory is None or end == self._snapshot_offset:
            return None
        path = self._snapshot_path(end)
        replace_file(path, encode_snapshot(self.producer_state), sync)
        self._snapshot_offset = end
        return path

    def _seal_and_sync(self, segment: Segment, snapshot: Callable[[], pathlib.Path | None] | None) -> None:
        """Seal a segment no longer active and take the producer snapshot, both made durable
        (with the directory) on the flusher, or here without one; the recovery point passes
        the segment once they are."""
        end = segment.next_offset
        if self._flusher is None:
            segment.seal()
            self._fsync_txn_index()
            if snapshot is not None:
                snapshot()
            self._recovery_point = max(self._recovery_point, end)
            return
        descriptors: list[int] = []
        segment.seal(descriptors)
        txn_index = self._unsynced_txn_index()
        if txn_index is not None:
            descriptors.append(txn_index)
        written: pathlib.Path | None = None
        try:
            if snapshot is not None:
                written = snapshot()
        finally:
            self._pending.append((end, self._flusher.submit(functools.partial(sync_rolled, descriptors, written, self.directory))))
        self._advance_recovery_point()

    def _unsynced_txn_index(self) -> int | None:
        """A descriptor of the active segment's `.txnindex` when appends wrote to it since its last
        fsync, for the caller to fsync and close: below a snapshot the file is the one record of
        its aborted transactions, so it is made durable with the segment (Kafka's LogSegment.flush)."""
        if not self._txn_index_unsynced:
            return None
        self._txn_index_unsynced = False
        try:
            return os.open(self._txn_index_path(self.segments[-1]), os.O_RDONLY)
        except FileNotFoundError:
            return None  # rewritten durably by a clean, or gone with its segment

    def _fsync_txn_index(self) -> None:
        descriptor = self._unsynced_txn_index()
        if descriptor is None:
            return
        try:
            os.fsync(descriptor)
        except OSError as error:
            raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, f"fsync of a .txnindex failed: {error}") from error
        finally:
            os.close(descriptor)

    def _advance_recovery_point(self) -> None:
        """Pass the rolled segments the flusher has synced, oldest first; a failed fsync
        stops the recovery point for good and fails the log's directory."""
        while self._pending and self._pending[0][1].done:
            end, job = self._pending[0]
            if job.error is not None:
                if self.on_storage_error is not None:
                    self.on_storage_error()
                return
            self._pending.popleft()
            self._recovery_point = max(self._recovery_point, end)

    @property
    def recovery_point(self) -> int:
        """Every offset below it is on disk (fsynced), with its segment's indexes."""
        self._advance_recovery_point()
        return self._recovery_point

    @property
    def config(self) -> LogConfig:
        return self._config

    @config.setter
    def config(self, config: LogConfig) -> None:
        """A topic config change (AlterConfigs) applies at once, to existing segments too."""
        self._config = config
        self._record_rules = RecordRules.of(config, self.topic_partition)
        for segment in self.segments:
            segment.index_interval_bytes = config.index_interval_bytes
            segment.max_index_bytes = config.segment_index_bytes

    @property
    def log_start_offset(self) -> int:
        return self._log_start_offset

    @property
    def leader_epoch(self) -> int:
        """The epoch stamped on appended batches; setting it starts that epoch at the log end in
        the epoch history, as Kafka's Partition.makeLeader (LeaderEpochFileCache.assign)."""
        return self._leader_epoch

    @leader_epoch.setter
    def leader_epoch(self, epoch: int) -> None:
        self._leader_epoch = epoch
        self._save_epochs(assign_epoch(self.epochs, epoch, self.log_end_offset))

    def _load_epochs(self) -> None:
        """The history in `leader-epoch-checkpoint`, kept as it is at open: the epoch the
        partition is led at is the caller's to set (a cluster's may be newer). Without one
        (unreadable or missing, as a new partition's), the history starts with `leader_epoch`
        at the log end, as Kafka's empty cache does at its makeLeader."""
        if self.directory is None:
            return
        try:
            self.epochs = parse_epoch_checkpoint((self.directory / EPOCH_CHECKPOINT_FILE).read_text())
        except (OSError, ValueError):
            self.epochs = []

    def _save_epochs(self, epochs: list[tuple[int, int]] | None) -> None:
        """Keep a changed history (None: unchanged) and replace its file durably, as Kafka's
        LeaderEpochCheckpointFile.write: only leadership and log start moves change it, never an append."""
        if epochs is None:
            return
        self.epochs = epochs
        if self.directory is not None:
            replace_file(self.directory / EPOCH_CHECKPOINT_FILE, format_epoch_checkpoint(epochs).encode())

    @property
    def log_end_offset(self) -> int:
        return self.segments[-1].next_offset

    @property
    def high_watermark(self) -> int:
        return self.log_end_offset

    @property
    def size(self) -> int:
        return sum(segment.size for segment in self.segments)

    def append(
        self, records: memoryview | bytes | bytearray, log_append_time_ms: int | None = None, from_client: bool = True
    ) -> AppendResult:
        """Validate batches, assign offsets in place, append the bytes.

        A writable `records` (a bytearray, or a memoryview of one: a produce request's
        own frame) is taken over: offsets, leader epoch and append time are written into it,
        and a memory segment keeps it, so the caller must not use it again. Read-only
        bytes are copied first.

        `log_append_time_ms` is the broker's clock (now if None): stamped into the
        batches when the topic's message.timestamp.type is LogAppendTime, and the
        time segment.ms counts from. `from_client=False` is the coordinators' own
        writes (Kafka's AppendOrigin.COORDINATOR): control markers and transactional
        offset commits without sequences. Raises KafkaError: CORRUPT_MESSAGE,
        INVALID_RECORD, MESSAGE_SIZE_TOO_LARGE, RECORD_LIST_TOO_LARGE,
        KAFKA_STORAGE_ERROR, RecordValidationError (INVALID_RECORD or INVALID_TIMESTAMP
        naming the records at fault, storage/validator.py), and the producer state's
        INVALID_PRODUCER_EPOCH, OUT_OF_ORDER_SEQUENCE_NUMBER, INVALID_TXN_STATE; the log is unchanged
        when it does. A retried idempotent batch is not appended again: the result
        carries the offsets it got the first time (Kafka's duplicate handling in
        UnifiedLog.append).
        """
        data = convert_legacy(records) if batch_magic(records) in (0, 1) else records
        if not isinstance(data, bytearray) and (not isinstance(data, memoryview) or data.readonly):
            data = bytearray(data)
        max_message_bytes = self._config.max_message_bytes
        data = recompress(data, self._config.compression_type, from_client, max_message_bytes)
        now = _now_ms() if log_append_time_ms is None else log_append_time_ms
        append_time = now if self._config.log_append_time else -1
        rules = self._record_rules
        first_offset = next_offset = self.log_end_offset
        max_timestamp, offset_of_max_timestamp = -1, first_offset
        position = 0
        producer_batches: list[tuple[int, BatchHeader]] = []  # (position, header) of batches with a producer id
        # Validation finishes before anything is written, so a bad batch leaves the log as it was.
        for fields, batch in iter_batch_fields(data, from_client=from_client):
            size = batch.nbytes
            if size > max_message_bytes:
                raise KafkaError(ErrorCode.MESSAGE_SIZE_TOO_LARGE, f"batch of {size} bytes exceeds max.message.bytes")
            # Records are walked only where a rule may fail (storage/validator.py).
            if rules.needs_walk(fields[FIELD_ATTRIBUTES], fields[FIELD_MAX_TIMESTAMP], now):
                rules.check(batch, fields[FIELD_ATTRIBUTES], now)
            set_base_offset(data, position, next_offset)
            set_partition_leader_epoch(data, position, self._leader_epoch)
            batch_max_timestamp = fields[FIELD_MAX_TIMESTAMP]
            if append_time >= 0:
                set_log_append_time(data, position, append_time)
                batch_max_timestamp = append_time
            if fields[FIELD_PRODUCER_ID] >= 0:
                # The header as stored (offset and time assigned), built once from the fields.
                stored = (next_offset, *fields[1:FIELD_MAX_TIMESTAMP], batch_max_timestamp, *fields[FIELD_MAX_TIMESTAMP + 1 :])
                producer_batches.append((position, BatchHeader(*stored)))
            next_offset += fields[FIELD_LAST_OFFSET_DELTA] + 1
            if batch_max_timestamp > max_timestamp:
                max_timestamp, offset_of_max_timestamp = batch_max_timestamp, next_offset - 1
            position += size
        last_offset = next_offset - 1
        total = len(data)
        if total > self._config.segment_bytes:  # after each batch's own size, as in Kafka's append
            raise KafkaError(ErrorCode.RECORD_LIST_TOO_LARGE, f"{total} bytes exceed segment.bytes")
        if producer_batches:
            duplicate = self._check_producers(producer_batches, from_client)
            if duplicate is not None:
                return AppendResult(duplicate.first_offset, duplicate.last_offset, duplicate.timestamp, self._log_start_offset)
        try:
            self._maybe_roll(total, last_offset, max_timestamp, now)
            if size == total:  # one batch, as producers send
                self.segments[-1].append(data, last_offset, max_timestamp, offset_of_max_timestamp)
            else:
                self.segments[-1].append_batches(data, last_offset)
        except KafkaError as error:
            if error.code is ErrorCode.KAFKA_STORAGE_ERROR and self.on_storage_error is not None and not out_of_space(error):
                self.on_storage_error()
            raise
        for position, header in producer_batches:
            marker = end_txn_marker(memoryview(data)[position : position + header.size]) if header.is_control else None
            aborted = self.producer_state.record(header, next_offset, marker)
            if aborted is not None and self.directory is not None:
                with open(self._txn_index_path(self.segments[-1]), "ab") as txn_index:
                    txn_index.write(txn_index_entry(aborted))
                self._txn_index_unsynced = True
        self._messages_since_flush += next_offset - first_offset
        if self._messages_since_flush >= self._config.flush_messages:
            self.flush(now)
        return AppendResult(first_offset, last_offset, append_time, self._log_start_offset)

    def _check_producers(self, batches: list[tuple[int, BatchHeader]], from_client: bool = True) -> BatchMetadata | None:
        """The original of a retried batch, or None when all may be appended; raises the
        sequence and epoch errors. Several batches in one request are checked in turn
        against a scratch copy, so a producer's second batch follows its first."""
        state = self.producer_state if len(batches) == 1 else ProducerStateManager.load(self.producer_state.snapshot())
        for _, header in batches:
            duplicate = state.check(header, from_client)
            if duplicate is not None:
                return duplicate
            if len(batches) > 1 and not header.is_control:
                state.record(header, header.next_offset)
        return None

    @property
    def last_stable_offset(self) -> int:
        """The LSO: read_committed readers see nothing at or past it."""
        return self.producer_state.last_stable_offset(self.high_watermark, self._log_start_offset)

    def aborted_transactions(self, start_offset: int, end_offset: int) -> list[AbortedTransaction]:
        """Aborted transactions overlapping [start_offset, end_offset), for read_committed fetches."""
        return self.producer_state.aborted_between(start_offset, end_offset)

    def expire_producers(self, now_ms: int, expiration_ms: int) -> None:
        """producer.id.expiration.ms: forget idle producers without an open transaction."""
        self.producer_state.expire(now_ms, expiration_ms)

    def _maybe_roll(self, incoming: int, last_offset: int, max_timestamp: int, now_ms: int) -> None:
        """Kafka's LogSegment.shouldRoll, with the active segment's own segment.jitter.ms draw."""
        config = self._config
        if self.segments[-1].should_roll(incoming, last_offset, max_timestamp, now_ms, config.segment_bytes, config.segment_ms):
            self.roll(now_ms)

    def roll(self, now_ms: int | None = None) -> None:
        """Start a new active segment at the log end offset. A new segment's files that
        cannot be created (full disk, no descriptors) are KAFKA_STORAGE_ERROR, and the
        old segment stays active."""
        active = self.segments[-1]
        try:
            segment = self._new_segment(active.next_offset, _now_ms() if now_ms is None else now_ms)
        except OSError as error:
            raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, f"cannot roll a new segment: {error}") from error
        self._seal_and_sync(active, lambda: self._take_snapshot(sync=self._flusher is None))
        self.segments.append(segment)

    def read(self, offset: int, max_bytes: int, min_one: bool = True, max_offset: int | None = None) -> ReadResult:
        """Whole batches from the one holding `offset`, up to `max_bytes` (at least
        one when `min_one`, as Kafka does); never spans two segments, as in Kafka.
        `max_offset` (the LSO, for read_committed) stops before the batch starting there."""
        end = self.log_end_offset
        if offset < self._log_start_offset or offset > end:
            raise KafkaError(ErrorCode.OFFSET_OUT_OF_RANGE, f"offset {offset} outside [{self._log_start_offset}, {end}]")
        limit = end if max_offset is None else max_offset
        if offset >= limit:
            return ReadResult([], 0, end, self._log_start_offset)
        for segment in self.segments[self._segment_slot(offset) :]:
            if segment.base_offset >= limit:
                break
            # A segment emptied by compaction holds nothing: go on to the next, as Kafka does.
            try:
                found = segment.read(offset, max_bytes, min_one, limit) if offset < segment.next_offset else None
            except OSError as error:
                if self.on_storage_error is not None:
                    self.on_storage_error()
                raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, f"read of {self.topic_partition} failed: {error}") from error
            if found is not None:
                return ReadResult(found[0], found[1], end, self._log_start_offset)
        return ReadResult([], 0, end, self._log_start_offset)

    def _segment_slot(self, offset: int) -> int:
        return max(bisect.bisect_right([segment.base_offset for segment in self.segments], offset) - 1, 0)

    def offset_for_timestamp(self, timestamp: int) -> tuple[int, int] | None:
        """ListOffsets: (timestamp, offset) of the first record with a timestamp >= the
        target (Kafka's TimestampAndOffset order), None when no record has one. The
        special targets work too: latest (-1) and earliest (-2, and -4 as there are no
        tiers here) report timestamp -1 as Kafka does; -3 is `max_timestamp()`."""
        if timestamp == LATEST_TIMESTAMP:
            return -1, self.log_end_offset
        if timestamp in (EARLIEST_TIMESTAMP, EARLIEST_LOCAL_TIMESTAMP):
            return -1, self._log_start_offset
        if timestamp == MAX_TIMESTAMP:
            return self.max_timestamp()
        if timestamp < 0:
            return None
        start = self._log_start_offset
        for segment in self.segments[self._segment_slot(start) :]:
            if segment.max_timestamp_and_offset[0] >= timestamp:
                found = segment.find_offset_by_timestamp(timestamp, start)
                if found is not None:
                    return found
        return None

    def max_timestamp(self) -> tuple[int, int] | None:
        """(largest timestamp, offset of the first record carrying it) for ListOffsets -3
        (KIP-734), None for a log without timestamped records. Over every segment kept, the
        first of equals winning, as Kafka 4.4's UnifiedLog.fetchOffsetByTimestamp looks: records
        below the log start (DeleteRecords) count while their segment stays, so the answer may
        lie below it. Kafka drops the segments wholly below at its next retention check, this
        log at once (`delete_records`): the answer is Kafka's once that check has run."""
        best: tuple[int, int, Segment] | None = None
        for segment in self.segments:
            timestamp, offset = segment.max_timestamp_and_offset
            if timestamp >= 0 and (best is None or timestamp > best[0]):
                best = (timestamp, offset, segment)
        if best is None:
            return None
        timestamp, offset, segment = best
        return timestamp, segment.offset_of_timestamp(timestamp, offset)

    def delete_records(self, offset: int, now_ms: int | None = None) -> int:
        """DeleteRecords (API 21): move the log start offset up to `offset` (-1: the
        high watermark) and delete segments wholly below it (their files go
        file.delete.delay.ms after `now_ms`). Returns the new low watermark; an offset
        past the high watermark is OFFSET_OUT_OF_RANGE."""
        target = self.high_watermark if offset == -1 else offset
        if target < 0 or target > self.high_watermark:
            raise KafkaError(ErrorCode.OFFSET_OUT_OF_RANGE, f"cannot delete records up to {offset}")
        if target > self._log_start_offset:
            self._log_start_offset = target
            self._save_epochs(truncate_epochs_from_start(self.epochs, target))
            if self._on_checkpoint is not None:
                self._on_checkpoint()
            now = _now_ms() if now_ms is None else now_ms
            self._delete_segments(lambda segment, following: following is not None and following.base_offset <= target, now)
        return self._log_start_offset

    def enforce_retention(self, now_ms: int) -> int:
        """Kafka's UnifiedLog.deleteOldSegments: whole segments past retention.ms, then
        past retention.bytes, then below the log start offset. Returns segments deleted."""
        deleted = 0
        if self._config.delete:
            if self._config.retention_ms >= 0:
                limit = self._config.retention_ms
                deleted += self._delete_segments(lambda segment, _: now_ms - segment.largest_timestamp > limit, now_ms)
            if self._config.retention_bytes >= 0:
                excess = self.size - self._config.retention_bytes

                def over_size(segment: Segment, _: Segment | None) -> bool:
                    nonlocal excess
                    if excess - segment.size < 0:
                        return False
                    excess -= segment.size
                    return True

                deleted += self._delete_segments(over_size, now_ms)
        start = self._log_start_offset
        deleted += self._delete_segments(lambda _, following: following is not None and following.base_offset <= start, now_ms)
        return deleted

    def _delete_segments(self, predicate: Callable[[Segment, Segment | None], bool], now_ms: int) -> int:
        """Delete the longest prefix of segments matching `predicate` (Kafka's
        deletableSegments). An empty active segment stays; a non-empty one goes only
        after a roll, so the log always has an active segment at its end."""
        count = 0
        for slot, segment in enumerate(self.segments):
            following = self.segments[slot + 1] if slot + 1 < len(self.segments) else None
            if (following is None and segment.is_empty) or not predicate(segment, following):
                break
            count += 1
        if count == 0:
            return 0
        if count == len(self.segments):
            self.roll()
        doomed, self.segments = self.segments[:count], self.segments[count:]
        for segment in doomed:
            self._delete_later(self._with_txn_index(segment, segment.mark_deleted()), now_ms)
        self._log_start_offset = max(self._log_start_offset, self.segments[0].base_offset)
        self._save_epochs(truncate_epochs_from_start(self.epochs, self._log_start_offset))
        self.producer_state.truncate_before(self._log_start_offset)
        if self.directory is not None:
            # As UnifiedLog.deleteSegments: a deleted segment's snapshot goes with it.
            for offset in self._snapshot_offsets():
                if offset < self.segments[0].base_offset:
                    self._snapshot_path(offset).unlink()
        return count

    def clean(self, now_ms: int, map_capacity: int = DEFAULT_MAP_CAPACITY) -> int:
        """One compaction pass, start to end; returns the records removed."""
        return run_steps(self.clean_steps(now_ms, map_capacity))

    def clean_steps(self, now_ms: int, map_capacity: int = DEFAULT_MAP_CAPACITY) -> Generator[None, None, int]:
        """One compaction pass (storage/compaction.py), yielding after every batch so that
        a caller on an event loop can serve clients between them; returns the records removed.

        Cleans closed segments only, up to the first one still inside
        min.compaction.lag.ms, and only when the dirty share of them exceeds
        min.cleanable.dirty.ratio or dirty records passed max.compaction.lag.ms
        (Kafka's LogCleanerManager). Between two steps the log may change: appends only
        reach the active segment, which is never cleaned, but retention, DeleteRecords or
        a topic deletion may remove a segment of the pass; then the pass ends there, its
        segment left as it was, and the next pass starts over from the same dirty offset.

        The offset map holds at most `map_capacity` keys (`compaction.offset_map_capacity`):
        once full, the pass cleans only up to the last offset it mapped, as Kafka's, and the
        next pass goes on from there; memory stays bounded however large the dirty section."""
        due = due_segments(self.segments[:-1], self.first_dirty_offset, now_ms, self._config, self.last_stable_offset)
        if due is None:
            return 0
        cleanable, dirty = due
        # Every transaction below the last stable offset has its marker: this index is complete there.
        ranges = [(a.producer_id, a.first_offset, a.last_offset) for a in self.producer_state.aborted]
        offset_map = DirtyOffsetMap(self.first_dirty_offset, map_capacity, AbortedBatches(ranges))
        for segment in dirty:
            for data in _segment_batches(segment):
                mapped = offset_map.add(data)
                yield
                if segment not in self.segments:
                    return 0
                if not mapped:
                    break
            if offset_map.full:
                break
            offset_map.end_segment(segment.next_offset)
        end_offset = offset_map.latest_offset + 1
        if end_offset <= self.first_dirty_offset:
            return 0  # not one batch fits the map
        cleanable = [segment for segment in cleanable if segment.base_offset < end_offset]
        last_batches = {
            producer_id: (entry.batches[-1].last_offset if entry.batches else -1, entry.epoch)
            for producer_id, entry in self.producer_state.producers.items()
        }
        transactions = CleanedTransactions(ranges)
        cleaner = BatchCleaner(
            offset_map.offsets, transactions, now_ms, self._config.delete_retention_ms, last_batches, self.high_watermark,
            offset_map.latest_offset,
        )
        removed = 0
        config = self._config
        for group in group_segments_by_size(cleanable, config.segment_bytes, config.segment_index_bytes):
            first = group[0]
            if first not in self.segments:
                return removed
            rewrite = first.start_rewrite()
            changed = len(group) > 1  # merging alone is worth the swap
            dropped = 0
            try:
                for segment in group:
                    for data in _segment_batches(segment):
                        filtered = cleaner.clean(data)
                        if filtered is not data:
                            changed = True
                            dropped += read_header(data).records_count - (read_header(filtered).records_count if filtered else 0)
                        if filtered is not None:
                            rewrite.write(filtered)
                        yield
                        # Retention and DeleteRecords take a prefix of the segments, DeleteTopics all.
                        if segment not in self.segments or first not in self.segments:
                            rewrite.abort()
                            return removed
            except BaseException:
                rewrite.abort()  # e.g. an undecodable batch, or the pass cancelled: the segments stay as they were
                raise
            if changed:
                for absorbed in group[1:]:
                    self._with_txn_index(absorbed, None)
                    if self.directory is not None:
                        # As UnifiedLog.replaceSegments: a segment merged away takes its snapshot along.
                        self._snapshot_path(absorbed.base_offset).unlink(missing_ok=True)
                for files in first.replace_contents(rewrite, group[1:]):
                    self._delete_later(files, now_ms)
                slot = self.segments.index(first)
                del self.segments[slot + 1 : slot + len(group)]
                removed += dropped
            else:
                rewrite.abort()
            self._forget_cleaned_aborts(first, transactions.indexed_aborts)
            self._write_txn_index(first)
        self.first_dirty_offset = end_offset
        if self._on_checkpoint is not None:
            self._on_checkpoint()
        return removed

    def _forget_cleaned_aborts(self, segment: Segment, indexed: set[int]) -> None:
        """Kafka rewrites a cleaned segment's .txnindex with only the aborted transactions whose
        ABORT marker it read while a batch of theirs was still in the pass (Cleaner.cleanSegments,
        CleanedTransactionMetadata.onControlBatchRead): the entries of the others whose marker
        lies in `segment` go, from memory (the caller rewrites the `.txnindex` a restart reads them
        back from). Read_committed fetches stop listing them."""
        # An entry is known by its marker's offset, unique in the log.
        gone = {
            entry.last_offset for entry in self.producer_state.aborted
            if segment.base_offset <= entry.last_offset < segment.next_offset and entry.last_offset not in indexed
        }
        if not gone:
            return
        self.producer_state.aborted = [entry for entry in self.producer_state.aborted if entry.last_offset not in gone]

    def _txn_index_path(self, segment: Segment) -> pathlib.Path:
        assert self.directory is not None
        return self.directory / file_name(segment.base_offset, TXN_INDEX_SUFFIX)

    def _write_txn_index(self, segment: Segment) -> None:
        """Make `segment`'s `.txnindex` (Kafka's TransactionIndex) hold the aborted transactions
        whose ABORT marker it holds, in marker order; without any it has no file, as Kafka
        creates one at its first entry. The producer state is the record of them (its
        `.txnindex` files below the newest snapshot are read back into it at load)."""
        if self.directory is None:
            return
        entries = [entry for entry in self.producer_state.aborted if segment.base_offset <= entry.last_offset < segment.next_offset]
        path = self._txn_index_path(segment)
        if entries:
            replace_file(path, b"".join(txn_index_entry(entry) for entry in entries))
        else:
            path.unlink(missing_ok=True)

    def _sync_txn_indexes(self, names: set[str]) -> None:
        """At load: every segment's `.txnindex` as the producer state has it (a crash may have
        cut an append, or come between a clean and its rewrite), and none of a segment gone."""
        assert self.directory is not None
        live = {file_name(segment.base_offset, TXN_INDEX_SUFFIX) for segment in self.segments}
        for name in names:
            if name.endswith(TXN_INDEX_SUFFIX) and name not in live:
                (self.directory / name).unlink()
        if not self.producer_state.aborted and not any(name.endswith(TXN_INDEX_SUFFIX) for name in names):
            return
        for segment in self.segments:
            path = self._txn_index_path(segment)
            expected = b"".join(
                txn_index_entry(entry) for entry in self.producer_state.aborted if segment.base_offset <= entry.last_offset < segment.next_offset
            )
            if (path.read_bytes() if path.name in names else b"") != expected:
                self._write_txn_index(segment)

    def _with_txn_index(self, segment: Segment, files: DeletedFiles | None) -> DeletedFiles | None:
        """`segment`'s `.txnindex`, renamed `.deleted`, goes with its other files (Kafka's
        LogSegment.changeFileSuffixes); a segment merged into another by a clean has none left."""
        if self.directory is None:
            return files
        path = self._txn_index_path(segment)
        deleted = path.with_name(path.name + DELETED_SUFFIX)
        try:
            os.rename(path, deleted)
        except FileNotFoundError:
            return files
        if files is None:
            remove_paths([deleted])
            return None
        files.others.append(deleted)
        return files

    def flush(self, now_ms: int | None = None) -> None:
        """fsync everything appended: first wait for the rolled segments still on the
        flusher, so that the recovery point never has an unsynced offset below it."""
        self._wait_for_flusher()
        try:
            for segment in self.segments:
                segment.flush()
            self._fsync_txn_index()
            if self.directory is not None and self.segments[-1].base_offset >= self._recovery_point:
                # A segment created since the last flush (a new log's first): its directory
                # entry made durable too, as Kafka's LocalLog.flush does.
                try:
                    fsync_directory(self.directory)
                except FileNotFoundError:
                    pass  # renamed away for deletion meanwhile (Kafka's flushDirIfExists)
                except OSError as error:
                    raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, f"fsync of {self.directory} failed: {error}") from error
        except KafkaError:
            # An fsync that failed (a full disk's too) may have dropped the pages it could not
            # write, and a retry would succeed without them (Kafka's LogDirFailureChannel): the
            # recovery point stays and the directory goes offline, as when a rolled segment's
            # fsync fails.
            if self.on_storage_error is not None:
                self.on_storage_error()
            raise
        self._recovery_point = self.log_end_offset
        self._messages_since_flush = 0
        self._last_flush_ms = _now_ms() if now_ms is None else now_ms

    def _drain_flusher(self) -> None:
        """Wait for this log's rolled segments on the flusher and pass those synced; any left
        in `_pending` afterwards failed."""
        for _, job in self._pending:
            job.wait()
        self._advance_recovery_point()

    def _wait_for_flusher(self) -> None:
        """`_drain_flusher`, then KAFKA_STORAGE_ERROR if a rolled segment's fsync failed."""
        self._drain_flusher()
        if self._pending:
            error = self._pending[0][1].error
            raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, f"fsync of a rolled segment of {self.topic_partition} failed: {error}") from error

    def flush_if_due(self, now_ms: int) -> None:
        """flush.ms (Kafka's default: never; the OS writes the page cache back)."""
        if now_ms - self._last_flush_ms >= self._config.flush_ms:
            self.flush(now_ms)

    def close(self) -> None:
        """Seal and fsync every segment, after the flusher's pending work for them, and the
        producer snapshot; the recovery point reaches the log end unless an fsync failed."""
        self._drain_flusher()
        for segment in self.segments:
            segment.close()
        self._fsync_txn_index()
        self._take_snapshot()
        if not self._pending:
            self._recovery_point = self.log_end_offset

    def _delete_later(self, files: DeletedFiles | None, now_ms: int) -> None:
        """Kafka's UnifiedLog.deleteSegmentFiles: the renamed files of a deleted segment
        stay for file.delete.delay.ms, so a fetch answer already cut from them (sent by
        sendfile, perhaps still queued behind others) can still be sent whole."""
        if files is not None:
            self._deleted.append((now_ms + self._config.file_delete_delay_ms, files))

    def delete_expired_files(self, now_ms: int) -> int:
        """Remove the files of segments deleted at least file.delete.delay.ms before
        `now_ms`; returns how many segments' files went."""
        taken = self.take_expired_files(now_ms)
        for paths in taken:
            remove_paths(paths)
        return len(taken)

    def take_expired_files(self, now_ms: int) -> list[list[pathlib.Path]]:
        """The files of each segment deleted at least file.delete.delay.ms before `now_ms`,
        forgotten here with their descriptors released, for `files.remove_paths`."""
        if not self._deleted:
            return []  # the common case, checked every second for every partition
        expired = [files for due, files in self._deleted if due <= now_ms]
        if expired:
            self._deleted = [(due, files) for due, files in self._deleted if due > now_ms]
        return [files.take() for files in expired]

    def delete(self) -> None:
        """Drop everything now (an in-memory log, or one whose files nobody reads)."""
        for segment in self.segments:
            segment.delete()
        self.segments.clear()
        for _, files in self._deleted:
            files.remove()
        self._deleted.clear()

    def switch_directory(self, directory: pathlib.Path, old_moved_to: pathlib.Path) -> None:
        """The log's files now live in `directory` (an exact copy: storage/relocation.py) and
        its old directory was renamed `old_moved_to`. Memory state stays as it is; descriptors
        and maps are released and come back from the new files on demand. Files of deleted
        segments stay with the old directory, as do regions already cut from them."""
        for segment in self.segments:
            segment.relocate(directory)
        for _, files in self._deleted:
            files.moved_to(old_moved_to)
        self.directory = directory

    def release_for_deletion(self) -> list[DiskFile]:
        """DeleteTopics, the caller's thread's part: end the log, its directory to be renamed
        for deletion (`segment.rename_directory`, on any thread, renames it and points the
        files returned at their new names) and removed after file.delete.delay.ms.
        Descriptors and maps are released now: the descriptor cache is this thread's, and knows
        files by their old names, which a re-created topic of the same name uses again. The
        files returned are the segments' and deleted segments' logs, which regions already cut
        from them still read."""
        assert self.directory is not None
        files = [segment.release_for_deletion() for segment in self.segments]
        files += [deleted.log for _, deleted in self._deleted]
        self.segments.clear()
        self._deleted.clear()
        return [file for file in files if file is not None]
