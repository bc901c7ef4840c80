"""Legacy MessageSet v0/v1 (magic 0 and 1), Kafka's `LegacyRecord.java`: read only, to
up-convert what Produce v0-2 sends into one v2 batch, as Kafka's LogValidator does.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.records.batch import (
    COMPRESSION_MASK,
    LOG_OVERHEAD,
    NO_TIMESTAMP,
    RECORD_OVERHEAD_V0,
    TIMESTAMP_TYPE_BIT,
    TimestampType,
    corrupt,
    invalid,
)
from ottla.wire.records.compression import Buffer, Compression, decompress, repair_lz4_header_checksum
from ottla.wire.records.record import Record, build_batch

# offset, messageSize, crc, magic, attributes
LEGACY_HEADER = struct.Struct(">qiIbb")
LEGACY_TIMESTAMP = struct.Struct(">q")
LEGACY_LENGTH = struct.Struct(">i")
_LEGACY_CRC_START = 16  # the CRC covers magic to the end of the message


def _iter_legacy(data: memoryview, wrapper_timestamp_type: TimestampType | None) -> Iterator[tuple[int, Record, Compression, TimestampType]]:
    """Yield (magic, record, codec, timestamp type) for each legacy message,
    inflating compressed wrappers (whose value is itself a message set)."""
    position = 0
    end = len(data)
    while position < end:
        if end - position < LEGACY_HEADER.size:
            raise corrupt(f"truncated legacy message at position {position}")
        offset, size, crc, magic, attributes = LEGACY_HEADER.unpack_from(data, position)
        if size < RECORD_OVERHEAD_V0 or magic not in (0, 1) or (magic == 1 and size < RECORD_OVERHEAD_V0 + 8):
            raise corrupt(f"legacy message of {size} bytes with magic {magic}")
        message_end = position + LOG_OVERHEAD + size
        if message_end > end:
            raise corrupt(f"legacy message of {size} bytes truncated")
        if zlib.crc32(data[position + _LEGACY_CRC_START : message_end]) != crc:
            raise corrupt(f"legacy message CRC mismatch at position {position}")
        cursor = position + LEGACY_HEADER.size
        timestamp = NO_TIMESTAMP
        timestamp_type = TimestampType(bool(attributes & TIMESTAMP_TYPE_BIT)) if magic == 1 else TimestampType.CREATE_TIME
        if magic == 1:
            (timestamp,) = LEGACY_TIMESTAMP.unpack_from(data, cursor)
            cursor += 8
        message = data[:message_end]
        key, cursor = _read_legacy_bytes(message, cursor)
        value, cursor = _read_legacy_bytes(message, cursor)
        if cursor != message_end:
            raise corrupt(f"legacy message size {size} disagrees with its fields")
        codec = Compression(attributes & COMPRESSION_MASK) if attributes & COMPRESSION_MASK < 5 else None
        if codec is None:
            raise corrupt(f"unknown legacy compression codec {attributes & COMPRESSION_MASK}")
        if codec is Compression.ZSTD:
            # Kafka refuses zstd below magic 2 (KIP-110): UNSUPPORTED_COMPRESSION_TYPE.
            raise KafkaError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, "zstd needs record batch v2")
        if codec is not Compression.NONE:
            if wrapper_timestamp_type is not None:
                raise corrupt("nested compressed legacy message")
            if value is None:
                raise corrupt("compressed legacy wrapper without a value")
            if magic == 0 and codec is Compression.LZ4:
                value = memoryview(repair_lz4_header_checksum(value))
            for inner_magic, inner, _, _ in _iter_legacy(decompress(codec, value), timestamp_type):
                # KIP-32: with LogAppendTime the wrapper's timestamp applies to every inner message.
                inner_timestamp = timestamp if timestamp_type is TimestampType.LOG_APPEND_TIME else inner.timestamp
                yield inner_magic, Record(inner.offset, inner_timestamp, inner.key, inner.value), codec, timestamp_type
        else:
            yield magic, Record(offset, timestamp, key, value), codec, wrapper_timestamp_type or timestamp_type
        position = message_end


def _read_legacy_bytes(data: memoryview, position: int) -> tuple[memoryview | None, int]:
    if position + 4 > len(data):
        raise corrupt("legacy message field runs past its end")
    (length,) = LEGACY_LENGTH.unpack_from(data, position)
    position += 4
    if length < 0:
        return None, position
    if position + length > len(data):
        raise corrupt("legacy message field runs past its end")
    return data[position : position + length], position + length


def convert_legacy(data: Buffer) -> bytes:
    """Convert a produce MessageSet v0/v1 (Produce v0-2) into one v2 batch, as
    Kafka's LogValidator.convertAndAssignOffsetsNonCompressed does on up-conversion.

    Inner offsets are replaced by 0..n-1 (the log assigns real ones); a
    compressed wrapper's codec is kept (compression.type=producer). v0
    messages carry no timestamp: NO_TIMESTAMP (-1), as in Kafka.
    """
    view = memoryview(data)
    if len(view) == 0:
        raise invalid("produce request must have at least one message")
    converted = list(_iter_legacy(view, None))
    if not converted:
        # AbstractLegacyRecordBatch: "Found invalid compressed record set with no inner records".
        raise invalid("compressed message set with no inner messages")
    codec = max((item[2] for item in converted), default=Compression.NONE)
    timestamp_type = converted[0][3]
    records = [Record(index, record.timestamp, record.key, record.value) for index, (_, record, _, _) in enumerate(converted)]
    return build_batch(records, compression=codec, timestamp_type=timestamp_type)
