"""RecordBatch v2 (magic 2) as a header view: Kafka's `DefaultRecordBatch.java`.

Format: https://kafka.apache.org/documentation/#recordbatch.

The produce path only ever looks at the 61-byte batch header: `iter_batches`
(and `iter_batch_fields`, its allocation-free twin for the log's append)
checks each batch whole (length, magic, CRC-32C, record count) and hands back
a memoryview of it; `set_base_offset` and `set_partition_leader_epoch` then
rewrite fields that lie outside the CRC, in place.

Divergence from Kafka's LogValidator: it walks every record of every batch
(timestamps, consecutive offset deltas); we trust the batch header (its max
timestamp answers the future-timestamp rule), as the batch CRC already
guarantees the producer's bytes arrived intact.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import IntEnum

from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.records.compression import Buffer, Compression

# baseOffset, batchLength, partitionLeaderEpoch, magic, crc, attributes,
# lastOffsetDelta, baseTimestamp, maxTimestamp, producerId, producerEpoch,
# baseSequence, recordsCount
BATCH_HEADER = struct.Struct(">qiibIhiqqqhii")
BATCH_HEADER_SIZE = BATCH_HEADER.size  # 61
# The 12 bytes before the first field that batchLength counts (Kafka's LOG_OVERHEAD).
LOG_OVERHEAD = 12
BASE_OFFSET = struct.Struct(">q")
PARTITION_LEADER_EPOCH_OFFSET = 12
PARTITION_LEADER_EPOCH = struct.Struct(">i")
MAGIC_OFFSET = 16
CRC_OFFSET = 17
# CRC-32C covers everything from attributes to the end of the batch.
ATTRIBUTES_OFFSET = 21
ATTRIBUTES = struct.Struct(">h")
MAX_TIMESTAMP_OFFSET = 35
MAX_TIMESTAMP = struct.Struct(">q")
CRC = struct.Struct(">I")
# Kafka's LegacyRecord.RECORD_OVERHEAD_V0: ByteBufferLogInputStream rejects any batch or
# message whose length field is below it, whatever its magic.
RECORD_OVERHEAD_V0 = 14
_BATCH_LENGTH = struct.Struct(">i")
_MAX_CODEC = int(max(Compression))

# Attribute bits (the same in legacy messages, which have no transactional or control bit).
COMPRESSION_MASK = 0x07
TIMESTAMP_TYPE_BIT = 0x08
TRANSACTIONAL_BIT = 0x10
CONTROL_BIT = 0x20
# KIP-534 (DefaultRecordBatch.DELETE_HORIZON_FLAG_MASK): the base timestamp is the batch's delete
# horizon, set by the log cleaner; record timestamps stay deltas from it.
DELETE_HORIZON_BIT = 0x40

NO_TIMESTAMP = -1
NO_PRODUCER_ID = -1


class TimestampType(IntEnum):
    CREATE_TIME = 0
    LOG_APPEND_TIME = 1


@dataclass(slots=True, frozen=True)
class BatchHeader:
    """The fixed 61-byte header of a RecordBatch v2, field for field."""

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def compression(self) -> Compression:
        return Compression(self.attributes & COMPRESSION_MASK)

    @property
    def timestamp_type(self) -> TimestampType:
        return TimestampType.LOG_APPEND_TIME if self.attributes & TIMESTAMP_TYPE_BIT else TimestampType.CREATE_TIME

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL_BIT)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_BIT)

    @property
    def delete_horizon(self) -> int | None:
        """When the cleaner may drop the batch's tombstones (a marker: the batch), if stamped."""
        return self.base_timestamp if self.attributes & DELETE_HORIZON_BIT else None

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.last_offset + 1

    @property
    def size(self) -> int:
        """Bytes the whole batch occupies, header included."""
        return self.batch_length + LOG_OVERHEAD


def read_header(data: Buffer, position: int = 0) -> BatchHeader:
    """Decode the header at `position`; the caller guarantees 61 bytes are there."""
    return BatchHeader(*BATCH_HEADER.unpack_from(data, position))


def corrupt(message: str) -> KafkaError:
    """Bytes that cannot be what they claim (Kafka's CorruptRecordException)."""
    return KafkaError(ErrorCode.CORRUPT_MESSAGE, message)


def invalid(message: str) -> KafkaError:
    """Well-formed data a client may not send (Kafka's InvalidRecordException)."""
    return KafkaError(ErrorCode.INVALID_RECORD, message)


def _first_crc32c(data: Buffer) -> int:
    """CRC-32C of `data`, importing the crc32c package at the first batch rather than with this
    module: the package's import reads its own installed metadata (importlib.metadata and the
    email parser), some 15 ms of CPU that a broker's start, which sees no batch, need not spend."""
    global _crc32c
    from crc32c import crc32c

    _crc32c = crc32c
    return crc32c(data)


_crc32c: Callable[[Buffer], int] = _first_crc32c


def compute_crc(batch: Buffer) -> int:
    """The CRC-32C a batch's crc field must hold: over attributes to the end."""
    view = memoryview(batch)
    return _crc32c(view[ATTRIBUTES_OFFSET:])


def iter_batches(data: Buffer, *, from_client: bool = True) -> Iterator[tuple[BatchHeader, memoryview]]:
    """Split a produce `records` blob into validated v2 batches (views, not copies).

    Raises KafkaError as Kafka's produce path does: CORRUPT_MESSAGE for bytes
    that cannot be a batch (ByteBufferLogInputStream, DefaultRecordBatch.ensureValid),
    INVALID_RECORD for a well-formed batch a client may not send
    (LogValidator.validateBatch, ProduceRequest.validateRecords). With
    `from_client=False` (the broker's own control batches) the client-only
    rules are skipped.

    Divergence: Kafka silently drops a partial trailing batch in a produce
    request (UnifiedLog.trimInvalidBytes); no stock client sends one, so we
    reject it rather than acknowledge bytes we did not store.
    """
    for fields, batch in iter_batch_fields(data, from_client=from_client):
        yield BatchHeader(*fields), batch


# Positions in the tuple iter_batch_fields yields (BATCH_HEADER's field order).
FIELD_CRC = 4
FIELD_ATTRIBUTES = 5
FIELD_LAST_OFFSET_DELTA = 6
FIELD_MAX_TIMESTAMP = 8
FIELD_PRODUCER_ID = 9


def iter_batch_fields(data: Buffer, *, from_client: bool = True) -> Iterator[tuple[tuple[int, ...], memoryview]]:
    """iter_batches for the append path: the same validation, the header as the raw
    13-field tuple (building a frozen BatchHeader costs as much as the CRC)."""
    view = memoryview(data)
    end = len(view)
    if end == 0:
        raise invalid("produce request must have at least one record batch")
    position = 0
    while position < end:
        remaining = end - position
        if remaining < LOG_OVERHEAD + 5:
            raise corrupt(f"truncated batch: {remaining} bytes at position {position}")
        (length,) = _BATCH_LENGTH.unpack_from(view, position + 8)
        if length < RECORD_OVERHEAD_V0:
            raise corrupt(f"batch length {length} is below the minimum record overhead")
        magic = view[position + MAGIC_OFFSET]
        if magic != 2:
            if magic in (0, 1):
                raise invalid(f"batch with magic {magic} among magic 2 batches")
            raise corrupt(f"unknown magic {magic}")
        size = length + LOG_OVERHEAD
        if size < BATCH_HEADER_SIZE:
            raise corrupt(f"batch length {length} is below the 61-byte batch header")
        if size > remaining:
            raise corrupt(f"batch of {size} bytes truncated to {remaining}")
        batch = view[position : position + size]
        fields = BATCH_HEADER.unpack_from(batch)
        if _crc32c(batch[ATTRIBUTES_OFFSET:]) != fields[FIELD_CRC]:
            raise corrupt(f"batch CRC mismatch at position {position}")
        codec = fields[FIELD_ATTRIBUTES] & COMPRESSION_MASK
        if codec > _MAX_CODEC:
            raise corrupt(f"unknown compression codec {codec}")
        if from_client:
            _check_client_batch(*fields)
        yield fields, batch
        position += size


def _check_client_batch(
    base_offset: int,
    batch_length: int,
    partition_leader_epoch: int,
    magic: int,
    crc: int,
    attributes: int,
    last_offset_delta: int,
    base_timestamp: int,
    max_timestamp: int,
    producer_id: int,
    producer_epoch: int,
    base_sequence: int,
    records_count: int,
) -> None:
    """The rules LogValidator.validateBatch applies to batches with AppendOrigin.CLIENT, and
    UnifiedLog.analyzeAndValidateRecords' base offset: a client's batch starts at 0."""
    if base_offset != 0:
        raise invalid(f"the base offset of a client's record batch should be 0, but it is {base_offset}")
    if last_offset_delta < 0:
        raise invalid(f"invalid offset range, last offset delta {last_offset_delta}")
    if records_count <= 0:
        raise invalid(f"invalid reported count for record batch: {records_count}")
    if last_offset_delta + 1 != records_count:
        raise invalid(f"last offset delta {last_offset_delta} inconsistent with {records_count} records")
    if attributes & CONTROL_BIT:
        raise invalid("clients are not allowed to write control records")
    if producer_id >= 0 and base_sequence < 0:
        raise invalid(f"invalid sequence number {base_sequence} for producer {producer_id}")


def scan_batches(data: Buffer, *, verify_crc: bool = False) -> Iterator[tuple[BatchHeader, memoryview]]:
    """Iterate stored or fetched v2 batches, stopping quietly at the first one
    that is incomplete (normal at the end of a fetch) or, with `verify_crc`,
    damaged (a torn tail found by recovery). Never raises KafkaError.

    The caller learns where valid data ends by summing `header.size`.
    """
    view = memoryview(data)
    end = len(view)
    position = 0
    while end - position >= BATCH_HEADER_SIZE:
        header = read_header(view, position)
        size = header.size
        if header.magic != 2 or size < BATCH_HEADER_SIZE or size > end - position:
            return
        batch = view[position : position + size]
        if verify_crc and compute_crc(batch) != header.crc:
            return
        yield header, batch
        position += size


def set_base_offset(buffer: bytearray | memoryview, position: int, offset: int) -> None:
    """Assign the batch its offset in place; bytes 0-7 are outside the CRC."""
    BASE_OFFSET.pack_into(buffer, position, offset)


def set_partition_leader_epoch(buffer: bytearray | memoryview, position: int, epoch: int) -> None:
    """Stamp the leader epoch in place; bytes 12-15 are outside the CRC."""
    PARTITION_LEADER_EPOCH.pack_into(buffer, position + PARTITION_LEADER_EPOCH_OFFSET, epoch)


def set_log_append_time(buffer: bytearray | memoryview, position: int, timestamp: int) -> None:
    """Mark the batch LogAppendTime with `timestamp` as its max timestamp and
    recompute the CRC, as DefaultRecordBatch.setMaxTimestamp does. Record
    timestamps stay as the producer wrote them; consumers take the batch's.
    """
    view = memoryview(buffer)
    (attributes,) = ATTRIBUTES.unpack_from(view, position + ATTRIBUTES_OFFSET)
    ATTRIBUTES.pack_into(view, position + ATTRIBUTES_OFFSET, attributes | TIMESTAMP_TYPE_BIT)
    MAX_TIMESTAMP.pack_into(view, position + MAX_TIMESTAMP_OFFSET, timestamp)
    length = int.from_bytes(view[position + 8 : position + 12], "big", signed=True)
    batch = view[position : position + length + LOG_OVERHEAD]
    CRC.pack_into(view, position + CRC_OFFSET, compute_crc(batch))


def batch_magic(data: Buffer) -> int:
    """The magic byte of the first batch (same position in v0, v1 and v2), -1 if too short."""
    return data[MAGIC_OFFSET] if len(data) > MAGIC_OFFSET else -1
