"""Log compaction (cleanup.policy=compact): keep the latest record per key.

Follows Kafka's LogCleaner in outline. The dirty section runs from the first
dirty offset (checkpointed) to the active segment, or to the first segment
still inside min.compaction.lag.ms. An offset map of key -> latest offset is
built over it; then every closed segment from the log start up to the end of
the dirty section is rewritten, keeping a record only if no later record
has its key. Offsets never change: batches keep their base offset and
lastOffsetDelta (MemoryRecords.filterTo). Batches that lose no record are
copied byte for byte.

Tombstones (null values) are kept for delete.retention.ms and are then
removed. Kafka (KIP-534) times that from when the cleaner first saw the
tombstone; we time it from the segment's largest timestamp, Kafka's rule
before KIP-534.

Transactions, as Kafka's cleaner: a pass stops before the first segment that
reaches the last stable offset (an open transaction may still be aborted), and
records of aborted transactions never count as their key's latest (the cleaner
would otherwise drop the committed value before one, and read_committed readers
would find no value for the key at all).

Divergences, each for a later issue: a batch that loses all its records is
dropped even if it carried a producer's last sequence (Kafka keeps it empty);
control batches and aborted records are kept unless a later record of their key
replaces them (Kafka removes aborted batches and, later, their markers); small
segments are not merged into one; the offset map is a dict with no size cap
(log.cleaner.dedupe.buffer.size).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, TypeVar

from ottla.storage.config import LogConfig
from ottla.storage.validator import rebuild_batch
from ottla.wire.records import Record, iter_records, read_header

OffsetMap = dict[bytes, int]


class SegmentView(Protocol):
    """What the cleaner's schedule reads of a closed segment (the local engine's Segment, the
    PostgreSQL engine's segment rows)."""

    @property
    def next_offset(self) -> int: ...

    @property
    def size(self) -> int: ...

    @property
    def first_batch_timestamp(self) -> int: ...

    @property
    def max_timestamp_and_offset(self) -> tuple[int, int]: ...


S = TypeVar("S", bound=SegmentView)


def due_segments(
    closed: Sequence[S], first_dirty_offset: int, now_ms: int, config: LogConfig, last_stable_offset: int,
) -> tuple[list[S], list[S]] | None:
    """Kafka's LogCleanerManager for one log: the closed segments a pass cleans (from the
    first up to the first still inside min.compaction.lag.ms or reaching the last stable
    offset) and the dirty ones among them (past the checkpointed `first_dirty_offset`), or
    None when the log is not due: nothing dirty, or the dirty share below
    min.cleanable.dirty.ratio while no dirty record is older than max.compaction.lag.ms
    (KIP-354)."""
    if not config.compact:
        return None
    cleanable: list[S] = []
    for segment in closed:
        newest = segment.max_timestamp_and_offset[0]  # -1: emptied by an earlier pass
        if (newest >= 0 and now_ms - newest < config.min_compaction_lag_ms) or segment.next_offset > last_stable_offset:
            break
        cleanable.append(segment)
    if not cleanable or cleanable[-1].next_offset <= first_dirty_offset:
        return None
    dirty = [segment for segment in cleanable if segment.next_offset > first_dirty_offset]
    total = sum(segment.size for segment in cleanable)
    oldest_dirty = dirty[0].first_batch_timestamp
    overdue = 0 <= oldest_dirty < now_ms - config.max_compaction_lag_ms
    if total and not overdue and sum(segment.size for segment in dirty) / total < config.min_cleanable_dirty_ratio:
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


def map_batch(offset_map: OffsetMap, data: bytes, aborted: AbortedBatches) -> None:
    """Record a batch of the dirty section (taken in log order) in the map of key ->
    latest offset, unless it is a control batch or an aborted transaction's."""
    header = read_header(data)
    if header.is_control or (header.is_transactional and aborted.holds(header.producer_id, header.base_offset)):
        return
    for record in iter_records(data):
        if record.key is not None:
            offset_map[bytes(record.key)] = record.offset


def filter_batch(data: bytes, keep: Callable[[Record], bool]) -> bytes | None:
    """The batch with only the records `keep` accepts: the same bytes if all stay,
    None if none do. A control batch always stays."""
    header = read_header(data)
    if header.is_control:
        return data
    records = list(iter_records(data))
    retained = [record for record in records if keep(record)]
    if len(retained) == len(records):
        return data
    if not retained:
        return None
    return rebuild_batch(header, retained, header.compression)


def record_filter(offset_map: OffsetMap, drop_tombstones: bool) -> Callable[[Record], bool]:
    """Kafka's LogCleaner.shouldRetainRecord: latest per key; tombstones until their horizon."""

    def keep(record: Record) -> bool:
        if record.key is None:
            return True  # only possible in data written before the topic was compacted
        latest = offset_map.get(bytes(record.key), -1)
        if record.offset < latest:
            return False
        return not (drop_tombstones and record.value is None)

    return keep
