"""The records inside a v2 batch: Kafka's `DefaultRecord.java`, decoded lazily and encoded
into whole batches (`build_batch`, as its MemoryRecordsBuilder does).

Records are decoded only where a feature needs them; the produce path stops at the batch
header (batch.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ottla.wire.records.batch import (
    BATCH_HEADER,
    BATCH_HEADER_SIZE,
    CONTROL_BIT,
    DELETE_HORIZON_BIT,
    CRC,
    CRC_OFFSET,
    LOG_OVERHEAD,
    NO_PRODUCER_ID,
    TIMESTAMP_TYPE_BIT,
    TRANSACTIONAL_BIT,
    TimestampType,
    compute_crc,
    corrupt,
    invalid,
    read_header,
)
from ottla.wire.records.compression import Buffer, Compression, compress, decompress


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
            raise corrupt("varint runs past the end of the batch")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), position
        shift += 7
        if shift > 63:
            raise corrupt("varint longer than 10 bytes")


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
        raise corrupt("record field runs past the end of the batch")
    return data[position : position + length], position + length


def iter_records(batch: Buffer, max_record_bytes: int | None = None, from_offset: int = 0) -> Iterator[Record]:
    """Decode the records of one v2 batch (as yielded by iter_batches/scan_batches).

    A batch marked LogAppendTime reports its max timestamp for every record, as
    Kafka's DefaultRecord does. `max_record_bytes` is a topic's max.decompressed.message.bytes:
    a record of a compressed batch whose declared body is larger is INVALID_RECORD, as
    Kafka 4.4's DefaultRecord.readFrom refuses it; uncompressed records are bounded by
    max.message.bytes instead. Records below `from_offset` are stepped over, not decoded: a
    reader that wants the end of a large batch pays only for their lengths. Bytes left after
    the batch's declared count of records make it INVALID_RECORD once that count is read, as
    Kafka's DefaultRecordBatch iterators refuse it (a batch that hides records from its count).
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
            raise corrupt(f"record length {length} runs past the end of the batch")
        if max_record_bytes is not None and length > max_record_bytes:
            raise invalid(f"record of {length} bytes exceeds max.decompressed.message.bytes {max_record_bytes}")
        position += 1  # record attributes: unused since magic 2
        timestamp_delta, position = read_varint(body, position)
        offset_delta, position = read_varint(body, position)
        if header.base_offset + offset_delta < from_offset:
            position = end
            continue
        key, position = _read_bytes(body, position)
        value, position = _read_bytes(body, position)
        header_count, position = read_varint(body, position)
        if header_count < 0:
            raise corrupt(f"invalid number of record headers: {header_count}")
        headers = []
        for _ in range(header_count):
            name, position = _read_bytes(body, position)
            if name is None:
                raise corrupt("record header with a null key")
            header_value, position = _read_bytes(body, position)
            headers.append((str(name, "utf-8", "replace"), header_value))  # as Java's new String(bytes, UTF_8)
        if position != end:
            raise corrupt(f"record declares {length} bytes but its fields take {length + position - end}")
        yield Record(
            offset=header.base_offset + offset_delta,
            timestamp=header.max_timestamp if log_append_time else header.base_timestamp + timestamp_delta,
            key=key,
            value=value,
            headers=tuple(headers),
        )
    if position != len(body):
        raise invalid("Incorrect declared batch size, records still remaining in file")


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
    delete_horizon_ms: int | None = None,
) -> bytes:
    """Encode one v2 batch. Offset deltas come from each record's `offset`
    minus `base_offset`; baseTimestamp is the first record's, as Kafka's
    MemoryRecordsBuilder does, or `delete_horizon_ms` with the delete-horizon
    flag (KIP-534, the log cleaner's). `last_offset` overrides the last record's
    offset for lastOffsetDelta, as compaction does to keep a producer's last
    sequence (Kafka's MemoryRecordsBuilder.overrideLastOffset)."""
    if not records:
        raise ValueError("a batch needs at least one record")
    base_timestamp = records[0].timestamp if delete_horizon_ms is None else delete_horizon_ms
    body = bytearray()
    for record in records:
        body += _encode_record(record, record.offset - base_offset, record.timestamp - base_timestamp)
    payload = compress(compression, body)
    attributes = (
        compression
        | (TIMESTAMP_TYPE_BIT if timestamp_type is TimestampType.LOG_APPEND_TIME else 0)
        | (TRANSACTIONAL_BIT if transactional else 0)
        | (CONTROL_BIT if control else 0)
        | (DELETE_HORIZON_BIT if delete_horizon_ms is not None else 0)
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
