"""Kafka record batches: RecordBatch v2 (magic 2) and legacy MessageSet v0/v1.

Format: https://kafka.apache.org/documentation/#recordbatch and Kafka's
`DefaultRecordBatch.java` / `DefaultRecord.java` / `LegacyRecord.java`.

The produce path only ever looks at the 61-byte batch header: `iter_batches`
(and `iter_batch_fields`, its allocation-free twin for the log's append)
checks each batch whole (length, magic, CRC-32C, record count) and hands back
a memoryview of it; `set_base_offset` and `set_partition_leader_epoch` then
rewrite fields that lie outside the CRC, in place. Records are decoded
(`iter_records`) only where a feature needs them.

Divergence from Kafka's LogValidator: it walks every record of every batch
(timestamps, consecutive offset deltas); we trust the batch header (its max
timestamp answers the future-timestamp rule), as the batch CRC already
guarantees the producer's bytes arrived intact.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum

import cramjam
import crc32c

from ottla.wire.errors import ErrorCode, KafkaError

Buffer = bytes | bytearray | memoryview

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
# Kafka's ByteBufferLogInputStream rejects anything shorter than a v0 message.
_MIN_LENGTH_FIELD = 14

_COMPRESSION_MASK = 0x07
_MAX_CODEC = 4  # zstd
_BATCH_LENGTH = struct.Struct(">i")
_TIMESTAMP_TYPE_BIT = 0x08
_TRANSACTIONAL_BIT = 0x10
_CONTROL_BIT = 0x20

NO_TIMESTAMP = -1
NO_PRODUCER_ID = -1


class Compression(IntEnum):
    NONE = 0
    GZIP = 1
    SNAPPY = 2
    LZ4 = 3
    ZSTD = 4


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
        return Compression(self.attributes & _COMPRESSION_MASK)

    @property
    def timestamp_type(self) -> TimestampType:
        return TimestampType.LOG_APPEND_TIME if self.attributes & _TIMESTAMP_TYPE_BIT else TimestampType.CREATE_TIME

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & _TRANSACTIONAL_BIT)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & _CONTROL_BIT)

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


def _corrupt(message: str) -> KafkaError:
    return KafkaError(ErrorCode.CORRUPT_MESSAGE, message)


def _invalid(message: str) -> KafkaError:
    return KafkaError(ErrorCode.INVALID_RECORD, message)


def compute_crc(batch: Buffer) -> int:
    """The CRC-32C a batch's crc field must hold: over attributes to the end."""
    view = memoryview(batch)
    return crc32c.crc32c(view[ATTRIBUTES_OFFSET:])


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
        raise _invalid("produce request must have at least one record batch")
    position = 0
    while position < end:
        remaining = end - position
        if remaining < LOG_OVERHEAD + 5:
            raise _corrupt(f"truncated batch: {remaining} bytes at position {position}")
        (length,) = _BATCH_LENGTH.unpack_from(view, position + 8)
        if length < _MIN_LENGTH_FIELD:
            raise _corrupt(f"batch length {length} is below the minimum record overhead")
        magic = view[position + MAGIC_OFFSET]
        if magic != 2:
            if magic in (0, 1):
                raise _invalid(f"batch with magic {magic} among magic 2 batches")
            raise _corrupt(f"unknown magic {magic}")
        size = length + LOG_OVERHEAD
        if size < BATCH_HEADER_SIZE:
            raise _corrupt(f"batch length {length} is below the 61-byte batch header")
        if size > remaining:
            raise _corrupt(f"batch of {size} bytes truncated to {remaining}")
        batch = view[position : position + size]
        fields = BATCH_HEADER.unpack_from(batch)
        if crc32c.crc32c(batch[ATTRIBUTES_OFFSET:]) != fields[FIELD_CRC]:
            raise _corrupt(f"batch CRC mismatch at position {position}")
        codec = fields[FIELD_ATTRIBUTES] & _COMPRESSION_MASK
        if codec > _MAX_CODEC:
            raise _corrupt(f"unknown compression codec {codec}")
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
    """The rules LogValidator.validateBatch applies to batches with AppendOrigin.CLIENT."""
    if last_offset_delta < 0:
        raise _invalid(f"invalid offset range, last offset delta {last_offset_delta}")
    if records_count <= 0:
        raise _invalid(f"invalid reported count for record batch: {records_count}")
    if last_offset_delta + 1 != records_count:
        raise _invalid(f"last offset delta {last_offset_delta} inconsistent with {records_count} records")
    if attributes & _CONTROL_BIT:
        raise _invalid("clients are not allowed to write control records")
    if producer_id >= 0 and base_sequence < 0:
        raise _invalid(f"invalid sequence number {base_sequence} for producer {producer_id}")


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
    ATTRIBUTES.pack_into(view, position + ATTRIBUTES_OFFSET, attributes | _TIMESTAMP_TYPE_BIT)
    MAX_TIMESTAMP.pack_into(view, position + MAX_TIMESTAMP_OFFSET, timestamp)
    length = int.from_bytes(view[position + 8 : position + 12], "big", signed=True)
    batch = view[position : position + length + LOG_OVERHEAD]
    CRC.pack_into(view, position + CRC_OFFSET, compute_crc(batch))


# --- Records -------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class Record:
    """One decoded record; key, value and header values are views into the batch
    (or into its decompressed body)."""

    offset: int
    timestamp: int
    key: Buffer | None
    value: Buffer | None
    headers: tuple[tuple[str, Buffer | None], ...] = ()


def read_varint(data: Buffer, position: int) -> tuple[int, int]:
    """Decode a zigzag varint (Kafka's ByteUtils.readVarlong); returns (value, next position)."""
    result = 0
    shift = 0
    while True:
        if position >= len(data):
            raise _corrupt("varint runs past the end of the batch")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), position
        shift += 7
        if shift > 63:
            raise _corrupt("varint longer than 10 bytes")


def write_varint(value: int, out: bytearray) -> None:
    """Encode a zigzag varint (Kafka's ByteUtils.writeVarlong)."""
    encoded = (value << 1) ^ (value >> 63)
    while encoded > 0x7F:
        out.append((encoded & 0x7F) | 0x80)
        encoded >>= 7
    out.append(encoded)


def _read_bytes(data: memoryview, position: int) -> tuple[memoryview | None, int]:
    length, position = read_varint(data, position)
    if length < 0:
        return None, position
    if position + length > len(data):
        raise _corrupt("record field runs past the end of the batch")
    return data[position : position + length], position + length


_XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER_SIZE = 16
_XERIAL_BLOCK_LENGTH = struct.Struct(">i")


def _snappy_decompress(data: memoryview) -> bytes:
    """Raw snappy, or the xerial-snappy framing Kafka's Java producer writes
    (SnappyOutputStream: 16-byte header, then int32-length-prefixed raw blocks)."""
    if data[: len(_XERIAL_MAGIC)] != _XERIAL_MAGIC:
        return bytes(cramjam.snappy.decompress_raw(data))
    out = bytearray()
    position = _XERIAL_HEADER_SIZE
    while position < len(data):
        (length,) = _XERIAL_BLOCK_LENGTH.unpack_from(data, position)
        position += 4
        out += cramjam.snappy.decompress_raw(data[position : position + length])
        position += length
    return bytes(out)


# The most a batch body may inflate to. Kafka streams records out of a compressed batch;
# we inflate whole bodies, so a bound keeps a small request (zstd reaches ~30,000:1) from
# exhausting memory. The buffer starts small and grows only while the codec says it is
# too small, so a corrupt body costs one small attempt.
MAX_DECOMPRESSED_BYTES = 256 * 1024 * 1024
_FIRST_DECOMPRESS_GUESS = 1024 * 1024
_INTO = {
    Compression.GZIP: cramjam.gzip.decompress_into,
    Compression.LZ4: cramjam.lz4.decompress_into,
    Compression.ZSTD: cramjam.zstd.decompress_into,
}


def _output_too_small(error: Exception) -> bool:
    text = str(error)
    return "failed to write whole buffer" in text or "smaller than required" in text


def _inflate_bounded(codec: Compression, data: memoryview, limit: int) -> memoryview:
    size = min(limit, max(_FIRST_DECOMPRESS_GUESS, 8 * len(data)))
    while True:
        out = bytearray(size)
        try:
            written = _INTO[codec](data, out)
        except cramjam.DecompressionError as error:
            if not _output_too_small(error):
                raise
            if size >= limit:
                raise _corrupt(f"{codec.name} batch inflates past {limit} bytes") from error
            size = min(limit, size * 4)
            continue
        return memoryview(out)[:written]


def decompress(codec: Compression, data: memoryview, limit: int = MAX_DECOMPRESSED_BYTES) -> memoryview:
    """Inflate a batch body; a body the codec cannot read, or one that inflates past
    `limit`, is CORRUPT_MESSAGE."""
    try:
        if codec is Compression.SNAPPY:
            # Snappy cannot expand more than about 21:1, so a frame bounds its output.
            return memoryview(_snappy_decompress(data))
        if codec in _INTO:
            return _inflate_bounded(codec, data, limit)
    except (cramjam.DecompressionError, struct.error, ValueError) as error:
        raise _corrupt(f"cannot decompress {codec.name} batch: {error}") from error
    return data


def _repair_lz4_header_checksum(frame: memoryview) -> bytes:
    """Kafka before 0.10 computed the LZ4 frame's header checksum over the magic number
    too (KIP-57), so magic 0 messages carry a wrong one, which Kafka's reader ignores
    for them. Put in the right one: xxh32 of the descriptor, second byte."""
    if len(frame) < 7 or frame[:4] != _LZ4_FRAME_HEADER[:4]:
        return bytes(frame)
    flags = frame[4]
    end = 6 + (8 if flags & 0x08 else 0) + (4 if flags & 0x01 else 0)  # content size, dictionary id
    if len(frame) <= end:
        return bytes(frame)
    repaired = bytearray(frame)
    repaired[end] = (_xxh32(bytes(frame[4:end])) >> 8) & 0xFF
    return bytes(repaired)


_XXH_PRIME1, _XXH_PRIME2, _XXH_PRIME3, _XXH_PRIME4, _XXH_PRIME5 = 2654435761, 2246822519, 3266489917, 668265263, 374761393
_U32 = 0xFFFFFFFF


def _xxh32(data: bytes) -> int:
    """XXH32 with seed 0 for inputs under 16 bytes (an LZ4 frame descriptor is at most 14)."""

    def rotate(value: int, bits: int) -> int:
        return ((value << bits) | (value >> (32 - bits))) & _U32

    state = (_XXH_PRIME5 + len(data)) & _U32
    position = 0
    while position + 4 <= len(data):
        state = (state + int.from_bytes(data[position : position + 4], "little") * _XXH_PRIME3) & _U32
        state = (rotate(state, 17) * _XXH_PRIME4) & _U32
        position += 4
    for byte in data[position:]:
        state = (state + byte * _XXH_PRIME5) & _U32
        state = (rotate(state, 11) * _XXH_PRIME1) & _U32
    state ^= state >> 15
    state = (state * _XXH_PRIME2) & _U32
    state ^= state >> 13
    state = (state * _XXH_PRIME3) & _U32
    return state ^ (state >> 16)


# The LZ4 frame header Kafka's KafkaLZ4BlockOutputStream writes: magic, FLG 0x60
# (version 1, independent blocks, no checksums, no content size), BD 0x40 (64 KiB
# blocks) and their header checksum. Its reader decompresses each block on its own,
# so linked blocks (what a default LZ4 frame encoder writes) would not survive it.
_LZ4_FRAME_HEADER = bytes.fromhex("04224d18604082")
_LZ4_BLOCK_SIZE = 64 * 1024
_LZ4_UNCOMPRESSED_BLOCK = 0x80000000
_LZ4_BLOCK_LENGTH = struct.Struct("<I")


def _lz4_frame(data: Buffer) -> bytes:
    view = memoryview(data)
    out = bytearray(_LZ4_FRAME_HEADER)
    for start in range(0, len(view), _LZ4_BLOCK_SIZE):
        chunk = view[start : start + _LZ4_BLOCK_SIZE]
        block = bytes(cramjam.lz4.compress_block(chunk, store_size=False))
        if len(block) < len(chunk):
            out += _LZ4_BLOCK_LENGTH.pack(len(block)) + block
        else:
            out += _LZ4_BLOCK_LENGTH.pack(len(chunk) | _LZ4_UNCOMPRESSED_BLOCK) + chunk
    out += _LZ4_BLOCK_LENGTH.pack(0)  # end mark
    return bytes(out)


def compress(codec: Compression, data: Buffer) -> bytes:
    if codec is Compression.GZIP:
        return bytes(cramjam.gzip.compress(data))
    if codec is Compression.SNAPPY:
        # xerial framing, as Kafka's Java producer writes it, so every consumer reads it.
        body = cramjam.snappy.compress_raw(data)
        return b"".join(
            (_XERIAL_MAGIC, struct.pack(">ii", 1, 1), _XERIAL_BLOCK_LENGTH.pack(len(body)), bytes(body))
        )
    if codec is Compression.LZ4:
        return _lz4_frame(data)
    if codec is Compression.ZSTD:
        return bytes(cramjam.zstd.compress(data))
    return bytes(data)


def iter_records(batch: Buffer, max_record_bytes: int | None = None) -> Iterator[Record]:
    """Decode the records of one v2 batch (as yielded by iter_batches/scan_batches).

    A batch marked LogAppendTime reports its max timestamp for every record, as
    Kafka's DefaultRecord does. `max_record_bytes` is a topic's max.decompressed.message.bytes:
    a record of a compressed batch whose declared body is larger is INVALID_RECORD, as
    Kafka 4.4's DefaultRecord.readFrom refuses it; uncompressed records are bounded by
    max.message.bytes instead.
    """
    view = memoryview(batch)
    header = read_header(view)
    body = decompress(header.compression, view[BATCH_HEADER_SIZE:])
    if header.compression is Compression.NONE:
        max_record_bytes = None
    log_append_time = header.timestamp_type is TimestampType.LOG_APPEND_TIME
    position = 0
    for _ in range(header.records_count):
        length, position = read_varint(body, position)
        end = position + length
        if length < 0 or end > len(body):
            raise _corrupt(f"record length {length} runs past the end of the batch")
        if max_record_bytes is not None and length > max_record_bytes:
            raise _invalid(f"record of {length} bytes exceeds max.decompressed.message.bytes {max_record_bytes}")
        position += 1  # record attributes: unused since magic 2
        timestamp_delta, position = read_varint(body, position)
        offset_delta, position = read_varint(body, position)
        key, position = _read_bytes(body, position)
        value, position = _read_bytes(body, position)
        header_count, position = read_varint(body, position)
        if header_count < 0:
            raise _corrupt(f"invalid number of record headers: {header_count}")
        headers = []
        for _ in range(header_count):
            name, position = _read_bytes(body, position)
            if name is None:
                raise _corrupt("record header with a null key")
            header_value, position = _read_bytes(body, position)
            headers.append((str(name, "utf-8", "replace"), header_value))  # as Java's new String(bytes, UTF_8)
        if position != end:
            raise _corrupt(f"record declares {length} bytes but its fields take {length + position - end}")
        yield Record(
            offset=header.base_offset + offset_delta,
            timestamp=header.max_timestamp if log_append_time else header.base_timestamp + timestamp_delta,
            key=key,
            value=value,
            headers=tuple(headers),
        )


def _write_nullable(data: Buffer | None, out: bytearray) -> None:
    if data is None:
        write_varint(-1, out)
    else:
        write_varint(len(data), out)
        out += data


def _encode_record(record: Record, offset_delta: int, timestamp_delta: int) -> bytearray:
    body = bytearray(b"\x00")  # attributes
    write_varint(timestamp_delta, body)
    write_varint(offset_delta, body)
    _write_nullable(record.key, body)
    _write_nullable(record.value, body)
    write_varint(len(record.headers), body)
    for name, value in record.headers:
        _write_nullable(name.encode(), body)
        _write_nullable(value, body)
    out = bytearray()
    write_varint(len(body), out)
    out += body
    return out


def build_batch(
    records: Sequence[Record],
    base_offset: int = 0,
    compression: Compression = Compression.NONE,
    producer_id: int = NO_PRODUCER_ID,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    transactional: bool = False,
    control: bool = False,
    timestamp_type: TimestampType = TimestampType.CREATE_TIME,
    partition_leader_epoch: int = -1,
    last_offset: int | None = None,
) -> bytes:
    """Encode one v2 batch. Offset deltas come from each record's `offset`
    minus `base_offset`; baseTimestamp is the first record's, as Kafka's
    MemoryRecordsBuilder does. `last_offset` overrides the last record's
    offset for lastOffsetDelta, as compaction does to keep a producer's last
    sequence (Kafka's MemoryRecordsBuilder.overrideLastOffset)."""
    if not records:
        raise ValueError("a batch needs at least one record")
    base_timestamp = records[0].timestamp
    body = bytearray()
    for record in records:
        body += _encode_record(record, record.offset - base_offset, record.timestamp - base_timestamp)
    payload = compress(compression, body)
    attributes = (
        compression
        | (_TIMESTAMP_TYPE_BIT if timestamp_type is TimestampType.LOG_APPEND_TIME else 0)
        | (_TRANSACTIONAL_BIT if transactional else 0)
        | (_CONTROL_BIT if control else 0)
    )
    batch = bytearray(BATCH_HEADER_SIZE + len(payload))
    BATCH_HEADER.pack_into(
        batch,
        0,
        base_offset,
        len(batch) - LOG_OVERHEAD,
        partition_leader_epoch,
        2,
        0,
        attributes,
        (records[-1].offset if last_offset is None else last_offset) - base_offset,
        base_timestamp,
        max(record.timestamp for record in records),
        producer_id,
        producer_epoch,
        base_sequence,
        len(records),
    )
    batch[BATCH_HEADER_SIZE:] = payload
    CRC.pack_into(batch, CRC_OFFSET, compute_crc(batch))
    return bytes(batch)


# --- Legacy MessageSet v0/v1 ---------------------------------------------------------

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
            raise _corrupt(f"truncated legacy message at position {position}")
        offset, size, crc, magic, attributes = LEGACY_HEADER.unpack_from(data, position)
        if size < _MIN_LENGTH_FIELD or magic not in (0, 1) or (magic == 1 and size < _MIN_LENGTH_FIELD + 8):
            raise _corrupt(f"legacy message of {size} bytes with magic {magic}")
        message_end = position + LOG_OVERHEAD + size
        if message_end > end:
            raise _corrupt(f"legacy message of {size} bytes truncated")
        if zlib.crc32(data[position + _LEGACY_CRC_START : message_end]) != crc:
            raise _corrupt(f"legacy message CRC mismatch at position {position}")
        cursor = position + LEGACY_HEADER.size
        timestamp = NO_TIMESTAMP
        timestamp_type = TimestampType(bool(attributes & _TIMESTAMP_TYPE_BIT)) if magic == 1 else TimestampType.CREATE_TIME
        if magic == 1:
            (timestamp,) = LEGACY_TIMESTAMP.unpack_from(data, cursor)
            cursor += 8
        message = data[:message_end]
        key, cursor = _read_legacy_bytes(message, cursor)
        value, cursor = _read_legacy_bytes(message, cursor)
        if cursor != message_end:
            raise _corrupt(f"legacy message size {size} disagrees with its fields")
        codec = Compression(attributes & _COMPRESSION_MASK) if attributes & _COMPRESSION_MASK < 5 else None
        if codec is None:
            raise _corrupt(f"unknown legacy compression codec {attributes & _COMPRESSION_MASK}")
        if codec is Compression.ZSTD:
            # Kafka refuses zstd below magic 2 (KIP-110): UNSUPPORTED_COMPRESSION_TYPE.
            raise KafkaError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, "zstd needs record batch v2")
        if codec is not Compression.NONE:
            if wrapper_timestamp_type is not None:
                raise _corrupt("nested compressed legacy message")
            if value is None:
                raise _corrupt("compressed legacy wrapper without a value")
            if magic == 0 and codec is Compression.LZ4:
                value = memoryview(_repair_lz4_header_checksum(value))
            for inner_magic, inner, _, _ in _iter_legacy(decompress(codec, value), timestamp_type):
                # KIP-32: with LogAppendTime the wrapper's timestamp applies to every inner message.
                inner_timestamp = timestamp if timestamp_type is TimestampType.LOG_APPEND_TIME else inner.timestamp
                yield inner_magic, Record(inner.offset, inner_timestamp, inner.key, inner.value), codec, timestamp_type
        else:
            yield magic, Record(offset, timestamp, key, value), codec, wrapper_timestamp_type or timestamp_type
        position = message_end


def _read_legacy_bytes(data: memoryview, position: int) -> tuple[memoryview | None, int]:
    if position + 4 > len(data):
        raise _corrupt("legacy message field runs past its end")
    (length,) = LEGACY_LENGTH.unpack_from(data, position)
    position += 4
    if length < 0:
        return None, position
    if position + length > len(data):
        raise _corrupt("legacy message field runs past its end")
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
        raise _invalid("produce request must have at least one message")
    converted = list(_iter_legacy(view, None))
    if not converted:
        # AbstractLegacyRecordBatch: "Found invalid compressed record set with no inner records".
        raise _invalid("compressed message set with no inner messages")
    codec = max((item[2] for item in converted), default=Compression.NONE)
    timestamp_type = converted[0][3]
    records = [Record(index, record.timestamp, record.key, record.value) for index, (_, record, _, _) in enumerate(converted)]
    return build_batch(records, compression=codec, timestamp_type=timestamp_type)


def batch_magic(data: Buffer) -> int:
    """The magic byte of the first batch (same position in v0, v1 and v2), -1 if too short."""
    return data[MAGIC_OFFSET] if len(data) > MAGIC_OFFSET else -1
