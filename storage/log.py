"""A partition's log: an ordered list of segments behind one append/read interface.

Invariants: segments are sorted by base offset and contiguous; only the last
(active) one is appended to; `log_end_offset` is the next offset to assign.
Single node, so the high watermark equals the log end offset after each
append. Not thread-safe: the broker calls it from its one event-loop thread.
"""

from __future__ import annotations

import bisect
import pathlib
import time
from dataclasses import dataclass

from storage.config import LogConfig
from storage.segment import AppendInfo, Chunk, MemorySegment, Segment
from wire.errors import ErrorCode, KafkaError
from wire.records import batch_magic, convert_legacy, iter_batches, set_base_offset, set_log_append_time, set_partition_leader_epoch

AnySegment = Segment | MemorySegment


@dataclass(slots=True, frozen=True)
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


class PartitionLog:
    def __init__(self, directory: pathlib.Path | None, config: LogConfig, leader_epoch: int = 0) -> None:
        self.directory = directory
        self.config = config
        self.leader_epoch = leader_epoch
        self.segments: list[AnySegment] = []
        self._log_start_offset = 0
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            self._load()
        if not self.segments:
            self.segments.append(self._new_segment(0))

    def _new_segment(self, base_offset: int) -> AnySegment:
        if self.directory is None:
            return MemorySegment(base_offset)
        return Segment(self.directory, base_offset, self.config.index_interval_bytes)

    def _load(self) -> None:
        """Open existing segments; recover the active one (its tail may be torn)."""
        assert self.directory is not None
        bases = sorted(int(path.stem) for path in self.directory.glob("*.log") if path.stem.isdigit())
        for base in bases:
            self.segments.append(Segment(self.directory, base, self.config.index_interval_bytes))
        for segment, following in zip(self.segments, self.segments[1:]):
            segment.next_offset = following.base_offset
        if self.segments:
            active = self.segments[-1]
            assert isinstance(active, Segment)
            active.recover()
            self._log_start_offset = self.segments[0].base_offset

    @property
    def log_start_offset(self) -> int:
        return self._log_start_offset

    @property
    def log_end_offset(self) -> int:
        return self.segments[-1].next_offset

    @property
    def high_watermark(self) -> int:
        return self.log_end_offset

    def append(self, records: memoryview | bytes | bytearray, log_append_time_ms: int | None = None) -> AppendResult:
        """Validate batches, assign offsets in place on a copy, append the bytes.

        `log_append_time_ms` is the broker's clock (now if None); it is stamped
        only when the topic's message.timestamp.type is LogAppendTime.
        Raises KafkaError: CORRUPT_MESSAGE, INVALID_RECORD, MESSAGE_SIZE_TOO_LARGE,
        RECORD_LIST_TOO_LARGE, KAFKA_STORAGE_ERROR.
        """
        # The one copy on the produce path: offsets are rewritten in this buffer.
        data = bytearray(convert_legacy(records) if batch_magic(records) in (0, 1) else records)
        batches = [(header, batch.nbytes) for header, batch in iter_batches(data)]
        if len(data) > self.config.segment_bytes:
            raise KafkaError(ErrorCode.RECORD_LIST_TOO_LARGE, f"{len(data)} bytes exceed segment.bytes")
        append_time = -1
        if self.config.log_append_time:
            append_time = int(time.time() * 1000) if log_append_time_ms is None else log_append_time_ms
        first_offset = next_offset = self.log_end_offset
        max_timestamp, offset_of_max_timestamp = -1, first_offset
        position = 0
        for header, size in batches:
            if size > self.config.max_message_bytes:
                raise KafkaError(ErrorCode.MESSAGE_SIZE_TOO_LARGE, f"batch of {size} bytes exceeds max.message.bytes")
            set_base_offset(data, position, next_offset)
            set_partition_leader_epoch(data, position, self.leader_epoch)
            batch_max_timestamp = header.max_timestamp
            if append_time >= 0:
                set_log_append_time(data, position, append_time)
                batch_max_timestamp = append_time
            next_offset += header.last_offset_delta + 1
            if batch_max_timestamp > max_timestamp:
                max_timestamp, offset_of_max_timestamp = batch_max_timestamp, next_offset - 1
            position += size
        info = AppendInfo(first_offset, next_offset - 1, max_timestamp, offset_of_max_timestamp, len(data))
        self._maybe_roll(len(data))
        self.segments[-1].append(data, info)
        return AppendResult(first_offset, next_offset - 1, append_time, self._log_start_offset)

    def _maybe_roll(self, incoming: int) -> None:
        active = self.segments[-1]
        if not active.is_empty and active.size + incoming > self.config.segment_bytes:
            self.segments.append(self._new_segment(active.next_offset))

    def read(self, offset: int, max_bytes: int, min_one: bool = True) -> ReadResult:
        """Whole batches from the one holding `offset`, up to `max_bytes` (at least
        one when `min_one`, as Kafka does); never spans two segments, as in Kafka."""
        end = self.log_end_offset
        if offset < self._log_start_offset or offset > end:
            raise KafkaError(
                ErrorCode.OFFSET_OUT_OF_RANGE,
                f"offset {offset} outside [{self._log_start_offset}, {end}]",
            )
        slot = max(bisect.bisect_right([s.base_offset for s in self.segments], offset) - 1, 0)
        for segment in self.segments[slot:]:
            if offset < segment.next_offset:
                chunks, size = segment.read(offset, max_bytes, min_one)
                return ReadResult(chunks, size, end, self._log_start_offset)
        return ReadResult([], 0, end, self._log_start_offset)

    def flush(self) -> None:
        for segment in self.segments:
            segment.flush()

    def close(self) -> None:
        for segment in self.segments:
            segment.flush()
            segment.close()

    def delete(self) -> None:
        for segment in self.segments:
            segment.delete()
        self.segments.clear()
