"""Log compaction (cleanup.policy=compact): keep the latest record per key.

Follows Kafka's LogCleaner in outline. The dirty section runs from the first
dirty offset (checkpointed) to the active segment, or to the first dirty segment
still inside min.compaction.lag.ms. An offset map of key -> latest offset is
built over it; then every closed segment from the log start up to the end of
the dirty section is rewritten, keeping a record only if no later record
has its key. Offsets never change: batches keep their base offset and
lastOffsetDelta (MemoryRecords.filterTo). Batches that lose no record are
copied byte for byte.

Tombstones and transaction markers (`BatchCleaner`, the local engine's): as Kafka since
KIP-534, a pass that keeps a tombstone, or a marker whose transaction has no batch left, in a
batch without a delete horizon stamps the batch with one (now + delete.retention.ms: the
batch's base timestamp, attribute bit 6); a later pass past that horizon drops the tombstones
and such markers. Batches of aborted transactions go at the first pass that cleans them
(Kafka's CleanedTransactionMetadata); a marker stays while its transaction still has a batch
in the pass. Records without a key are dropped (Kafka counts them invalid); a topic made
compacted after such records were written loses them at its first pass, as in Kafka. A batch
left without records stays, empty, when it is its producer's last or ends at the high watermark
(Kafka's RETAIN_EMPTY): a producer state rebuilt from the log still finds the last sequence.

Transactions, as Kafka's cleaner: a pass stops before the first segment that
reaches the last stable offset (an open transaction may still be aborted), and
records of aborted transactions never count as their key's latest (the cleaner
would otherwise drop the committed value before one, and read_committed readers
would find no value for the key at all).

The aborted-transaction index, as Kafka's cleaned .txnindex: an entry whose marker a pass
cleans stays only if a batch of its transaction was still there (`indexed_aborts`).

The offset map (`DirtyOffsetMap`) holds at most Kafka's count of keys for
log.cleaner.dedupe.buffer.size; once full, the pass stops where Kafka's does.

Segments are cleaned in groups, as Kafka's (Cleaner.groupSegmentsBySize): consecutive small
segments are rewritten into one, so a compacted log rolled often (segment.ms) does not keep its
small files forever. A group a pass leaves without a batch stays, an empty segment at the group's
base offset, as Kafka's Cleaner.cleanSegments swaps in its cleaned segment however empty: its
offsets stay its own (a time retention past the segment before it moves the log start only up
to it), and the next pass's grouping takes it in whatever its offsets.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol, TypeVar

from ottla.storage.config import LogConfig
from ottla.storage.producer_state import CONTROL_ABORT, CONTROL_COMMIT, control_type
from ottla.storage.validator import rebuild_batch
from ottla.wire.records import (
    BATCH_HEADER,
    BATCH_HEADER_SIZE,
    CRC,
    CRC_OFFSET,
    DELETE_HORIZON_BIT,
    LOG_OVERHEAD,
    BatchHeader,
    Record,
    compute_crc,
    iter_records,
    read_header,
)

OffsetMap = dict[bytes, int]
LONG_MAX = 2**63 - 1


class SegmentView(Protocol):
    """What the cleaner's schedule reads of a closed segment (the local engine's Segment, the
    PostgreSQL engine's segment rows)."""

    @property
    def base_offset(self) -> int: ...

    @property
    def next_offset(self) -> int: ...

    @property
    def size(self) -> int: ...

    @property
    def first_batch_timestamp(self) -> int: ...

    @property
    def max_timestamp_and_offset(self) -> tuple[int, int]: ...


S = TypeVar("S", bound=SegmentView)


class GroupedSegment(SegmentView, Protocol):
    """What grouping reads of a local segment besides the schedule's view."""

    @property
    def index_sizes(self) -> tuple[int, int]: ...


G = TypeVar("G", bound=GroupedSegment)
_INT_MAX = 2**31 - 1


def group_segments_by_size(segments: Sequence[G], max_size: int, max_index_size: int) -> list[list[G]]:
    """Kafka's Cleaner.groupSegmentsBySize: the segments of a pass, in order, cut into runs each
    cleaned into one segment. A segment joins the run before it while the run's .log bytes stay
    within `max_size` (segment.bytes), each of its indexes' bytes within `max_index_size`
    (segment.index.bytes), and, unless the segment is empty, its last offset within Int.MaxValue
    of the run's base offset (relative offsets are 4 bytes). Sizes are those before cleaning,
    which never grows a segment, so the merged one fits. Kafka bounds the last segment's offsets
    by the first uncleanable offset; a segment's next offset is at most that, and as tight."""
    groups: list[list[G]] = []
    size = offset_index = time_index = 0
    for segment in segments:
        offset_bytes, time_bytes = segment.index_sizes
        if groups and (
            size + segment.size <= max_size
            and offset_index + offset_bytes <= max_index_size
            and time_index + time_bytes <= max_index_size
            and (segment.size == 0 or segment.next_offset - 1 - groups[-1][0].base_offset <= _INT_MAX)
        ):
            groups[-1].append(segment)
            size, offset_index, time_index = size + segment.size, offset_index + offset_bytes, time_index + time_bytes
        else:
            groups.append([segment])
            size, offset_index, time_index = segment.size, offset_bytes, time_bytes
    return groups


def due_segments(
    closed: Sequence[S], first_dirty_offset: int, now_ms: int, config: LogConfig, last_stable_offset: int,
) -> tuple[list[S], list[S]] | None:
    """Kafka's LogCleanerManager for one log: the closed segments a pass cleans (from the
    first up to the first dirty one still inside min.compaction.lag.ms or reaching the last
    stable offset) and the dirty ones among them (past the checkpointed `first_dirty_offset`), or
    None when the log is not due: nothing dirty, or the dirty share not above
    min.cleanable.dirty.ratio (grabFilthiestCompactedLog's `cleanableRatio > minCleanableRatio`,
    so a ratio of 1 leaves compaction to max.compaction.lag.ms) while no closed dirty segment's
    first batch is older than max.compaction.lag.ms (KIP-354's maxCompactionDelay: the earliest
    positive first-batch timestamp of every closed dirty segment, cleanable or not)."""
    if not config.compact:
        return None
    cleanable: list[S] = []
    for segment in closed:
        newest = segment.max_timestamp_and_offset[0]  # -1: emptied by an earlier pass
        # findFirstUncleanableSegment looks from the first dirty offset on: clean segments never hold a pass back.
        lagging = segment.next_offset > first_dirty_offset and newest >= 0 and now_ms - newest < config.min_compaction_lag_ms
        if lagging or segment.next_offset > last_stable_offset:
            break
        cleanable.append(segment)
    if not cleanable or cleanable[-1].next_offset <= first_dirty_offset:
        return None
    dirty = [segment for segment in cleanable if segment.next_offset > first_dirty_offset]
    # LogToClean: clean bytes are the segments below the first dirty offset, dirty ones those from
    # it, so the segment holding it (where a pass whose offset map filled stopped) counts in both.
    total = sum(segment.size for segment in cleanable if segment.base_offset < first_dirty_offset) + sum(segment.size for segment in dirty)
    first_timestamps = [s.first_batch_timestamp for s in closed if s.next_offset > first_dirty_offset]
    overdue = min((t for t in first_timestamps if t > 0), default=LONG_MAX) < now_ms - max(config.max_compaction_lag_ms, 0)
    if total and not overdue and sum(segment.size for segment in dirty) / total <= config.min_cleanable_dirty_ratio:
        return None
    return cleanable, dirty


class AbortedBatches:
    """The aborted index's ranges (producer id, first offset, last offset: the marker's), to
    tell the batches of aborted transactions (Kafka's CleanedTransactionMetadata)."""

    def __init__(self, ranges: Iterable[tuple[int, int, int]]) -> None:
        self._by_producer: dict[int, list[tuple[int, int]]] = {}
        for producer_id, first_offset, last_offset in ranges:
            self._by_producer.setdefault(producer_id, []).append((first_offset, last_offset))

    def holds(self, producer_id: int, offset: int) -> bool:
        return any(first <= offset <= last for first, last in self._by_producer.get(producer_id, ()))


# Kafka's SkimpyOffsetMap entry: an MD5 digest of the key (16 bytes) and an offset (8).
_KAFKA_MAP_ENTRY_BYTES = 24


def offset_map_capacity(dedupe_buffer_size: int = 128 * 1024 * 1024, threads: int = 1, load_factor: float = 0.9) -> int:
    """The keys a cleaner maps in one pass: Kafka's SkimpyOffsetMap slots for one cleaner
    thread's share of log.cleaner.dedupe.buffer.size (capped at Int.MaxValue bytes, as
    LogCleaner sizes it), times log.cleaner.io.buffer.load.factor (buildOffsetMapForSegment's
    maxDesiredMapSize). The defaults are Kafka's: 5,033,164 keys. Ottla's map holds the keys
    themselves in a dict, about 140 bytes a short key where Kafka's holds 24, so the same
    count costs Ottla about six times the memory; keeping Kafka's count keeps where a pass
    stops the same as Kafka's."""
    return int(min(dedupe_buffer_size // threads, 2**31 - 1) // _KAFKA_MAP_ENTRY_BYTES * load_factor)


class DirtyOffsetMap:
    """Kafka's cleaner offset map as Cleaner.buildOffsetMap fills it, with at most `capacity`
    keys: batches of the dirty section are added in log order until one has a keyed record
    to add with the map holding `capacity` keys (new or not, as `map.size() <
    maxDesiredMapSize`); its records added so far stay, and `latest_offset` stays the last
    offset of the batch before it. The pass then cleans only the segments below
    `latest_offset + 1`, keeps every record past `latest_offset` and leaves the rest for the
    next pass (Cleaner.doClean's endOffset, shouldRetainRecord's pastLatestOffset)."""

    def __init__(self, start_offset: int, capacity: int, aborted: AbortedBatches) -> None:
        """`start_offset`: the first dirty offset; records below it are not mapped."""
        self.offsets: OffsetMap = {}
        self.latest_offset = start_offset - 1
        self.full = False
        self._start_offset = start_offset
        self._capacity = capacity
        self._aborted = aborted

    def add(self, data: bytes) -> bool:
        """Map a batch, unless it is a control batch or an aborted transaction's; False, the
        map full, if it could not be mapped whole."""
        header = read_header(data)
        if header.last_offset < self._start_offset:
            return True
        if not header.is_control and not (header.is_transactional and self._aborted.holds(header.producer_id, header.base_offset)):
            offsets = self.offsets
            for record in iter_records(data):
                if record.key is not None and record.offset >= self._start_offset:
                    if len(offsets) >= self._capacity:
                        self.full = True
                        return False
                    offsets[bytes(record.key)] = record.offset
        self.latest_offset = header.last_offset
        return True

    def end_segment(self, next_offset: int) -> None:
        """A segment mapped whole: its offsets past its last batch (compacted away) are mapped too."""
        self.latest_offset = next_offset - 1


_COMPRESSION_BITS = 0x07


class CleanedTransactions:
    """Kafka's CleanedTransactionMetadata over one pass, batches fed in log order: which batches
    belong to aborted transactions (discarded) and which markers no longer have a batch of
    their transaction in the log (discardable once their delete horizon passes)."""

    def __init__(self, aborted: Iterable[tuple[int, int, int]]) -> None:
        """`aborted`: the aborted index's (producer id, first offset, last offset) ranges."""
        self._pending = deque(sorted(aborted, key=lambda entry: entry[1]))
        self._aborted: dict[int, bool] = {}  # producer id -> whether a batch of its aborted transaction was read
        self._committed: set[int] = set()  # producers with a transactional batch read since their last marker
        # The ABORT markers read whose transaction still had a batch in the pass: their index entries
        # are all the cleaned segments keep (onControlBatchRead appends only those to the cleaned .txnindex).
        self.indexed_aborts: set[int] = set()

    def discardable(self, header: BatchHeader, data: bytes | memoryview) -> bool:
        """onBatchRead for data batches (True: an aborted transaction's), onControlBatchRead
        for markers (True: no batch of its transaction was read in this pass)."""
        while self._pending and self._pending[0][1] <= header.last_offset:
            self._aborted.setdefault(self._pending.popleft()[0], False)
        producer_id = header.producer_id
        if header.is_control:
            if header.records_count == 0:
                return True
            kind = control_type(data)
            if kind == CONTROL_ABORT:
                if self._aborted.pop(producer_id, False):
                    self.indexed_aborts.add(header.base_offset)
                    return False
                return True
            if kind == CONTROL_COMMIT:
                if producer_id in self._committed:
                    self._committed.discard(producer_id)
                    return False
                return True
            return False
        if not header.is_transactional:
            return False
        if producer_id in self._aborted:
            self._aborted[producer_id] = True
            return True
        self._committed.add(producer_id)
        return False


class BatchCleaner:
    """Kafka's cleaner filter (Cleaner.cleanInto's RecordFilter through MemoryRecords.filterTo)
    for one pass: feed it every batch of the cleaned segments in log order."""

    def __init__(
        self, offset_map: OffsetMap, transactions: CleanedTransactions, now_ms: int, delete_retention_ms: int,
        last_batches: Mapping[int, tuple[int, int]], high_watermark: int, latest_offset: int = LONG_MAX,
    ) -> None:
        """`last_batches`: each producer's (last data offset or -1, epoch) in the producer state
        (Cleaner's lastRecordsOfActiveProducers); `latest_offset`: the last offset the map
        covers (`DirtyOffsetMap.latest_offset`), records past it being kept."""
        self._offset_map = offset_map
        self._latest_offset = latest_offset
        self._transactions = transactions
        self._now_ms = now_ms
        self._delete_retention_ms = delete_retention_ms
        self._last_batches = last_batches
        self._high_watermark = high_watermark

    def clean(self, data: bytes) -> bytes | None:
        """The batch as the pass leaves it: the same bytes if unchanged, None if it goes, or
        without records where Kafka keeps it so (BatchRetention.RETAIN_EMPTY): a producer's last
        batch, whose sequence its state rebuilt from the log needs, and one ending at the high watermark."""
        header = read_header(data)
        horizon = header.delete_horizon
        discardable = self._transactions.discardable(header, data)
        discard_all = discardable and (not header.is_control or (horizon is not None and horizon <= self._now_ms))
        retain_empty = self._retains_empty(header)
        if discard_all and not retain_empty:
            return None
        records = list(iter_records(data))
        if discard_all:
            retained = []
            stamp = False
        elif header.is_control:
            retained = records
            stamp = discardable and horizon is None
        else:
            retain_deletes = horizon is None or self._now_ms < horizon
            retained = [record for record in records if self._keep(record, retain_deletes)]
            stamp = horizon is None and any(record.value is None for record in retained)
        if not retained:
            if not retain_empty:
                return None
            return _empty_batch(header) if records else data
        if len(retained) == len(records) and not stamp:
            return data
        if stamp:
            horizon = self._now_ms + self._delete_retention_ms
        # Kafka's MemoryRecordsBuilder given a deleteHorizonMs makes it the base timestamp (record
        # timestamps deltas from it) and sets the flag; everything else of the header is kept.
        return rebuild_batch(header, retained, header.compression, horizon)

    def _retains_empty(self, header: BatchHeader) -> bool:
        if header.next_offset == self._high_watermark:
            return True
        last = self._last_batches.get(header.producer_id) if header.producer_id >= 0 else None
        if last is None:
            return False
        last_data_offset, epoch = last
        if last_data_offset >= 0:
            return header.last_offset == last_data_offset
        return header.is_control and header.producer_epoch == epoch

    def _keep(self, record: Record, retain_deletes: bool) -> bool:
        """Cleaner.shouldRetainRecord: a record past what the map covers, or the key's latest
        record, a tombstone only before its horizon."""
        if record.offset > self._latest_offset:
            return True
        if record.key is None:
            return False
        return record.offset >= self._offset_map.get(bytes(record.key), -1) and (record.value is not None or retain_deletes)


def _empty_batch(header: BatchHeader) -> bytes:
    """`header`'s batch without records (DefaultRecordBatch.writeEmptyHeader): offsets, producer
    fields and flags kept, uncompressed, both timestamps the batch's max, no delete horizon."""
    attributes = header.attributes & ~(_COMPRESSION_BITS | DELETE_HORIZON_BIT)
    batch = bytearray(BATCH_HEADER_SIZE)
    BATCH_HEADER.pack_into(
        batch, 0, header.base_offset, BATCH_HEADER_SIZE - LOG_OVERHEAD, header.partition_leader_epoch, 2, 0, attributes,
        header.last_offset_delta, header.max_timestamp, header.max_timestamp, header.producer_id, header.producer_epoch,
        header.base_sequence, 0,
    )
    CRC.pack_into(batch, CRC_OFFSET, compute_crc(batch))
    return bytes(batch)
