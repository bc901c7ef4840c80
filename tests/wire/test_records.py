"""RecordBatch v2 and legacy MessageSet: hand-computed vectors from Kafka's format spec
(https://kafka.apache.org/documentation/#recordbatch), interop with kafka-python's own
record builders and readers, and corrupt input that must fail as a KafkaError."""

from __future__ import annotations

import struct

import cramjam
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.record import MemoryRecords, MemoryRecordsBuilder

from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.records import (
    BatchHeader,
    Compression,
    Record,
    TimestampType,
    build_batch,
    compress,
    convert_legacy,
    iter_batches,
    iter_records,
    read_varint,
    scan_batches,
    set_base_offset,
    set_log_append_time,
    set_partition_leader_epoch,
    write_varint,
)


def crc32c_reference(data: bytes) -> int:
    """Bit-by-bit CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), independent of
    the C library under test."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def crc32_reference(data: bytes) -> int:
    """Bit-by-bit CRC-32 (IEEE, reflected polynomial 0xEDB88320) for legacy messages."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def test_reference_crcs_match_published_check_values() -> None:
    assert crc32c_reference(b"123456789") == 0xE3069283
    assert crc32_reference(b"123456789") == 0xCBF43926


# Two records written out byte by byte from the spec (varints are zigzag):
# record 0: length 8, attributes 0, timestampDelta 0, offsetDelta 0,
#           keyLength 1 "k", valueLength 1 "v", 0 headers
RECORD_0 = bytes.fromhex("10" "00" "00" "00" "02" "6b" "02" "76" "00")
# record 1: length 15, attributes 0, timestampDelta 5, offsetDelta 1, key null (-1),
#           valueLength 5 "hello", 1 header: keyLength 1 "h", valueLength 1 "x"
RECORD_1 = bytes.fromhex("1e" "00" "0a" "02" "01" "0a" "68656c6c6f" "02" "02" "68" "02" "78")
BASE_TIMESTAMP = 1_600_000_000_000


def hand_batch(
    records: bytes = RECORD_0 + RECORD_1,
    *,
    base_offset: int = 0,
    attributes: int = 0,
    last_offset_delta: int = 1,
    records_count: int = 2,
    producer_id: int = -1,
    base_sequence: int = -1,
    magic: int = 2,
    length_adjust: int = 0,
) -> bytes:
    """A batch assembled field by field, its CRC from the reference implementation."""
    after_crc = struct.pack(
        ">hiqqqhii",
        attributes,
        last_offset_delta,
        BASE_TIMESTAMP,
        BASE_TIMESTAMP + 5,
        producer_id,
        -1,
        base_sequence,
        records_count,
    ) + records
    batch_length = 4 + 1 + 4 + len(after_crc)  # partitionLeaderEpoch, magic, crc, rest
    return (
        struct.pack(">qiib", base_offset, batch_length + length_adjust, 0, magic)
        + struct.pack(">I", crc32c_reference(after_crc))
        + after_crc
    )


HAND_BATCH = hand_batch()


def test_hand_batch_header_fields() -> None:
    [(header, view)] = list(iter_batches(HAND_BATCH))
    assert header == BatchHeader(
        base_offset=0,
        batch_length=74,
        partition_leader_epoch=0,
        magic=2,
        crc=crc32c_reference(HAND_BATCH[21:]),
        attributes=0,
        last_offset_delta=1,
        base_timestamp=BASE_TIMESTAMP,
        max_timestamp=BASE_TIMESTAMP + 5,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        records_count=2,
    )
    assert header.size == len(HAND_BATCH) == 86
    assert header.last_offset == 1
    assert bytes(view) == HAND_BATCH


def test_hand_batch_records() -> None:
    records = list(iter_records(HAND_BATCH))
    assert [(r.offset, r.timestamp, r.key, r.value, r.headers) for r in records] == [
        (0, BASE_TIMESTAMP, b"k", b"v", ()),
        (1, BASE_TIMESTAMP + 5, None, b"hello", (("h", b"x"),)),
    ]


def test_build_batch_writes_the_hand_computed_bytes() -> None:
    records = [
        Record(0, BASE_TIMESTAMP, b"k", b"v"),
        Record(1, BASE_TIMESTAMP + 5, None, b"hello", (("h", b"x"),)),
    ]
    assert build_batch(records, partition_leader_epoch=0) == HAND_BATCH


@pytest.mark.parametrize(
    ("attributes", "codec", "timestamp_type", "transactional", "control"),
    [
        (0b000000, Compression.NONE, TimestampType.CREATE_TIME, False, False),
        (0b000100, Compression.ZSTD, TimestampType.CREATE_TIME, False, False),
        (0b001011, Compression.LZ4, TimestampType.LOG_APPEND_TIME, False, False),
        (0b010010, Compression.SNAPPY, TimestampType.CREATE_TIME, True, False),
        (0b110001, Compression.GZIP, TimestampType.CREATE_TIME, True, True),
    ],
)
def test_attribute_bits(
    attributes: int, codec: Compression, timestamp_type: TimestampType, transactional: bool, control: bool
) -> None:
    [(header, _)] = list(iter_batches(hand_batch(attributes=attributes), from_client=False))
    assert header.compression is codec
    assert header.timestamp_type is timestamp_type
    assert header.is_transactional is transactional
    assert header.is_control is control


def test_offset_and_leader_epoch_rewrite_in_place_keeps_the_crc() -> None:
    buffer = bytearray(b"\xff" * 7 + HAND_BATCH)
    set_base_offset(buffer, 7, 0x0102030405060708)
    set_partition_leader_epoch(buffer, 7, 9)
    assert buffer[7:15] == bytes.fromhex("0102030405060708")
    assert buffer[19:23] == bytes.fromhex("00000009")
    assert buffer[15:19] == HAND_BATCH[8:12] and buffer[23:] == HAND_BATCH[16:]
    [(header, _)] = list(iter_batches(buffer[7:], from_client=False))  # a stored batch: its offsets assigned
    assert (header.base_offset, header.partition_leader_epoch) == (0x0102030405060708, 9)
    assert [r.offset for r in iter_records(buffer[7:])] == [0x0102030405060708, 0x0102030405060709]


def test_log_append_time_sets_attributes_max_timestamp_and_crc() -> None:
    buffer = bytearray(HAND_BATCH)
    set_log_append_time(buffer, 0, 1_700_000_000_000)
    assert struct.unpack_from(">h", buffer, 21)[0] == 0b1000
    assert struct.unpack_from(">q", buffer, 35)[0] == 1_700_000_000_000
    assert struct.unpack_from(">I", buffer, 17)[0] == crc32c_reference(bytes(buffer[21:]))
    assert [r.timestamp for r in iter_records(buffer)] == [1_700_000_000_000] * 2


# --- interop with kafka-python's record builders and readers ---------------------


def kafka_python_batch(magic: int, compression: int, count: int = 5, **producer: int) -> bytes:
    builder = MemoryRecordsBuilder(magic=magic, compression_type=compression, batch_size=1 << 20)
    if producer:
        builder.set_producer_state(is_transactional=False, **producer)
    for index in range(count):
        builder.append(
            timestamp=1000 + index,
            key=None if index % 2 else f"key-{index}".encode(),
            value=f"value-{index}".encode() * index,
            headers=[("trace", b"t%d" % index)] if magic == 2 else [],
        )
    builder.close()
    return bytes(builder.buffer())


@pytest.mark.parametrize("compression", [0, 1])
def test_kafka_python_batches_decode(compression: int) -> None:
    data = kafka_python_batch(2, compression, producer_id=7, producer_epoch=1, base_sequence=40)
    [(header, batch)] = list(iter_batches(data))
    assert header.compression == compression
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (7, 1, 40)
    assert header.records_count == 5
    decoded = [(r.offset, r.timestamp, r.key, r.value, r.headers) for r in iter_records(batch)]
    assert decoded == [
        (i, 1000 + i, None if i % 2 else f"key-{i}".encode(), f"value-{i}".encode() * i, (("trace", b"t%d" % i),))
        for i in range(5)
    ]


@pytest.mark.parametrize("codec", [Compression.NONE, Compression.GZIP])
def test_our_batches_decode_in_kafka_python(codec: Compression) -> None:
    records = [Record(100 + i, 5000 + i, b"k%d" % i, None if i == 2 else b"v" * i, (("a", b"b"),)) for i in range(4)]
    data = build_batch(records, base_offset=100, compression=codec, producer_id=3, producer_epoch=0, base_sequence=0)
    batch = MemoryRecords(data).next_batch()
    assert batch.validate_crc()
    assert batch.compression_type == codec
    assert [(r.offset, r.timestamp, r.key, r.value, r.headers) for r in batch] == [
        (100 + i, 5000 + i, b"k%d" % i, None if i == 2 else b"v" * i, [("a", b"b")]) for i in range(4)
    ]


@pytest.mark.parametrize("codec", list(Compression))
def test_every_codec_round_trips(codec: Compression) -> None:
    records = [Record(i, 10 + i, None, b"payload %d " % i * 50) for i in range(20)]
    data = build_batch(records, compression=codec)
    [(header, batch)] = list(iter_batches(data))
    assert header.compression is codec
    assert [(r.offset, r.timestamp, bytes(r.value or b"")) for r in iter_records(batch)] == [
        (r.offset, r.timestamp, r.value) for r in records
    ]


def test_snappy_in_xerial_framing_written_by_hand() -> None:
    """Kafka's Java producer wraps snappy in xerial's SnappyOutputStream framing:
    magic 82 'SNAPPY' 00, version 1, compatible version 1, then length-prefixed blocks."""
    body = RECORD_0 + RECORD_1
    half = len(body) // 2
    blocks = [bytes(cramjam.snappy.compress_raw(part)) for part in (body[:half], body[half:])]
    framed = b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1) + b"".join(struct.pack(">i", len(b)) + b for b in blocks)
    data = hand_batch(framed, attributes=Compression.SNAPPY)
    assert [r.value for r in iter_records(data)] == [b"v", b"hello"]
    raw = hand_batch(bytes(cramjam.snappy.compress_raw(body)), attributes=Compression.SNAPPY)
    assert [r.value for r in iter_records(raw)] == [b"v", b"hello"]


def test_lz4_frames_are_written_as_kafka_writes_them() -> None:
    """Kafka's KafkaLZ4BlockInputStream inflates each block alone: our frames must carry its
    header (FLG 0x60: independent blocks; BD 0x40: 64 KiB) and blocks that decode alone."""
    body = b"".join(b"record %06d " % i for i in range(20_000))  # 280 KB: several blocks
    data = build_batch([Record(0, 1, None, body)], compression=Compression.LZ4)
    frame = data[61:]
    assert frame[:7] == bytes.fromhex("04224d18604082")
    position, inflated = 7, b""
    while (length := int.from_bytes(frame[position : position + 4], "little")) != 0:
        block = frame[position + 4 : position + 4 + (length & 0x7FFFFFFF)]
        raw = length & 0x80000000
        inflated += block if raw else bytes(cramjam.lz4.decompress_block(block, output_len=64 * 1024))
        position += 4 + (length & 0x7FFFFFFF)
    assert position + 4 == len(frame)
    [record] = list(iter_records(data))
    assert record.value == body and len(inflated) > 4 * 64 * 1024


# --- corrupt and invalid input -----------------------------------------------------


def error_code(data: bytes) -> ErrorCode:
    with pytest.raises(KafkaError) as raised:
        list(iter_batches(data))
    return raised.value.code


def test_corrupt_crc() -> None:
    damaged = bytearray(HAND_BATCH)
    damaged[-1] ^= 0x01
    assert error_code(bytes(damaged)) is ErrorCode.CORRUPT_MESSAGE


def test_crc_covers_attributes_onwards_only() -> None:
    damaged = bytearray(HAND_BATCH)
    damaged[21] ^= 0x01  # first byte under the CRC
    assert error_code(bytes(damaged)) is ErrorCode.CORRUPT_MESSAGE


@pytest.mark.parametrize("keep", [0, 1, 11, 16, 60, 61, 85])
def test_truncated_batch(keep: int) -> None:
    if keep == 0:
        assert error_code(b"") is ErrorCode.INVALID_RECORD
    else:
        assert error_code(HAND_BATCH[:keep]) is ErrorCode.CORRUPT_MESSAGE


def test_partial_batch_after_a_whole_one() -> None:
    assert error_code(HAND_BATCH + HAND_BATCH[:30]) is ErrorCode.CORRUPT_MESSAGE


@pytest.mark.parametrize("adjust", [1, 1000, 2**31 - 1 - 74, -1, -30, -74, -75 - 2**20])
def test_lying_batch_length(adjust: int) -> None:
    assert error_code(hand_batch(length_adjust=adjust)) is ErrorCode.CORRUPT_MESSAGE


@pytest.mark.parametrize(("magic", "code"), [(3, ErrorCode.CORRUPT_MESSAGE), (-1, ErrorCode.CORRUPT_MESSAGE), (1, ErrorCode.INVALID_RECORD)])
def test_bad_magic(magic: int, code: ErrorCode) -> None:
    assert error_code(hand_batch(magic=magic)) is code


@pytest.mark.parametrize(
    "fields",
    [
        {"records_count": 3},  # count disagrees with lastOffsetDelta
        {"records_count": 0, "last_offset_delta": -1},
        {"last_offset_delta": -5},
        {"attributes": 0b100000},  # control batch from a client
        {"producer_id": 12, "base_sequence": -1},  # idempotent batch without a sequence
    ],
)
def test_client_batch_rules(fields: dict[str, int]) -> None:
    assert error_code(hand_batch(**fields)) is ErrorCode.INVALID_RECORD


def test_broker_may_write_control_batches() -> None:
    [(header, _)] = list(iter_batches(hand_batch(attributes=0b110000), from_client=False))
    assert header.is_control


def test_unknown_codec() -> None:
    assert error_code(hand_batch(attributes=0b111)) is ErrorCode.CORRUPT_MESSAGE


def test_undecompressable_body() -> None:
    data = hand_batch(b"not gzip at all", attributes=Compression.GZIP)
    with pytest.raises(KafkaError) as raised:
        list(iter_records(data))
    assert raised.value.code is ErrorCode.CORRUPT_MESSAGE


def test_scan_batches_stops_quietly_at_a_partial_or_damaged_tail() -> None:
    second = bytearray(hand_batch(base_offset=2))
    assert [h.base_offset for h, _ in scan_batches(HAND_BATCH + second[:40])] == [0]
    second[-1] ^= 0xFF
    assert [h.base_offset for h, _ in scan_batches(HAND_BATCH + second)] == [0, 2]
    assert [h.base_offset for h, _ in scan_batches(HAND_BATCH + second, verify_crc=True)] == [0]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_kafka_errors(data: bytes) -> None:
    try:
        for _, batch in iter_batches(data):
            list(iter_records(batch))
    except KafkaError as error:
        assert error.code in (ErrorCode.CORRUPT_MESSAGE, ErrorCode.INVALID_RECORD)


@settings(max_examples=300, deadline=None)
@given(st.integers(61, len(HAND_BATCH) - 1), st.integers(0, 255), st.sampled_from(list(Compression)))
def test_damaged_records_under_a_valid_crc_raise_only_kafka_errors(position: int, byte: int, codec: Compression) -> None:
    """The CRC guards transport; record parsing must still survive a producer that wrote garbage:
    CORRUPT_MESSAGE, or INVALID_RECORD for records left past the declared count (Kafka's
    DefaultRecordBatch iterators: "Incorrect declared batch size")."""
    data = bytearray(build_batch([Record(0, 1, b"k", b"v" * 30), Record(1, 2, None, b"w", (("h", b"x"),))], compression=codec))
    data[position % len(data)] = byte
    struct.pack_into(">I", data, 17, crc32c_reference(bytes(data[21:])))
    try:
        for _, batch in iter_batches(data, from_client=False):
            list(iter_records(batch))
    except KafkaError as error:
        assert error.code is ErrorCode.CORRUPT_MESSAGE or (
            error.code is ErrorCode.INVALID_RECORD and error.message == "Incorrect declared batch size, records still remaining in file"
        ), error


# --- varints -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "encoded"),
    [  # zigzag varints, as Kafka's ByteUtilsTest spells them
        (0, "00"),
        (-1, "01"),
        (1, "02"),
        (63, "7e"),
        (-64, "7f"),
        (64, "8001"),
        (-65, "8101"),
        (2**31 - 1, "feffffff0f"),
        (-(2**31), "ffffffff0f"),
        (2**63 - 1, "feffffffffffffffff01"),
        (-(2**63), "ffffffffffffffffff01"),
    ],
)
def test_varint_vectors(value: int, encoded: str) -> None:
    out = bytearray()
    write_varint(value, out)
    assert out.hex() == encoded
    assert read_varint(bytes.fromhex(encoded), 0) == (value, len(encoded) // 2)


@given(st.integers(-(2**63), 2**63 - 1))
def test_varint_round_trip(value: int) -> None:
    out = bytearray()
    write_varint(value, out)
    assert read_varint(bytes(out), 0) == (value, len(out))


# --- legacy MessageSet v0/v1 -----------------------------------------------------------


def legacy_message(magic: int, key: bytes | None, value: bytes | None, *, offset: int = 0, attributes: int = 0, timestamp: int = 0) -> bytes:
    """offset int64, size int32, crc uint32, magic int8, attributes int8, [timestamp int64], key, value."""
    def field(data: bytes | None) -> bytes:
        return struct.pack(">i", -1) if data is None else struct.pack(">i", len(data)) + data

    body = struct.pack(">bb", magic, attributes) + (struct.pack(">q", timestamp) if magic == 1 else b"") + field(key) + field(value)
    return struct.pack(">qiI", offset, len(body) + 4, crc32_reference(body)) + body


def test_legacy_v0_hand_vector_converts() -> None:
    # magic 0, attributes 0, key length 1 "a", value length 3 "one"
    body = bytes.fromhex("00" "00" "00000001" "61" "00000003" "6f6e65")
    first = bytes.fromhex("0000000000000000" "00000012") + struct.pack(">I", crc32_reference(body)) + body
    assert legacy_message(0, b"a", b"one") == first
    message_set = first + legacy_message(0, None, b"two", offset=1)
    records = list(iter_records(convert_legacy(message_set)))
    assert [(r.offset, r.timestamp, r.key, r.value) for r in records] == [(0, -1, b"a", b"one"), (1, -1, None, b"two")]


def test_legacy_v1_hand_vector_converts_with_timestamps() -> None:
    message_set = legacy_message(1, b"a", b"one", timestamp=77) + legacy_message(1, b"b", None, offset=1, timestamp=99)
    data = convert_legacy(message_set)
    [(header, batch)] = list(iter_batches(data))
    assert (header.base_timestamp, header.max_timestamp, header.records_count) == (77, 99, 2)
    assert [(r.offset, r.timestamp, r.key, r.value) for r in iter_records(batch)] == [(0, 77, b"a", b"one"), (1, 99, b"b", None)]


@pytest.mark.parametrize("magic", [0, 1])
@pytest.mark.parametrize("compression", [0, 1])
def test_kafka_python_legacy_message_sets_convert(magic: int, compression: int) -> None:
    data = convert_legacy(kafka_python_batch(magic, compression))
    [(header, batch)] = list(iter_batches(data))
    assert header.compression == compression
    assert [(r.offset, r.key, r.value) for r in iter_records(batch)] == [
        (i, None if i % 2 else f"key-{i}".encode(), f"value-{i}".encode() * i) for i in range(5)
    ]
    if magic == 1:
        assert [r.timestamp for r in iter_records(batch)] == [1000 + i for i in range(5)]


@pytest.mark.parametrize("codec", [Compression.GZIP, Compression.SNAPPY, Compression.LZ4])
def test_compressed_legacy_wrapper_with_nothing_inside(codec: Compression) -> None:
    wrapper = legacy_message(1, None, compress(codec, b""), attributes=codec)
    with pytest.raises(KafkaError) as raised:
        convert_legacy(wrapper)
    assert raised.value.code is ErrorCode.INVALID_RECORD


def test_legacy_magic_0_lz4_with_the_pre_kip_57_header_checksum() -> None:
    """Kafka before 0.10 checksummed the LZ4 frame header including its magic number;
    magic 0 messages keep that checksum. The frame here is the one Kafka writes for the
    inner message set, with the header checksum computed the old, wrong way."""
    inner = legacy_message(0, b"k", b"compressed value")
    frame = bytearray(compress(Compression.LZ4, inner))
    assert frame[6] == 0x82  # the right one, as in every frame Kafka writes: 04 22 4d 18 60 40 82
    frame[6] = 0x1A  # (xxh32(04 22 4d 18 60 40) >> 8) & 0xff: the magic number included
    wrapper = legacy_message(0, None, bytes(frame), attributes=Compression.LZ4)
    [record] = list(iter_records(convert_legacy(wrapper)))
    assert (record.key, record.value) == (b"k", b"compressed value")
    # From magic 1 on the checksum must be right, as Kafka's reader then checks it.
    inner_v1 = legacy_message(1, b"k", b"compressed value")
    frame_v1 = bytearray(compress(Compression.LZ4, inner_v1))
    frame_v1[6] = 0x1A
    with pytest.raises(KafkaError) as raised:
        convert_legacy(legacy_message(1, None, bytes(frame_v1), attributes=Compression.LZ4))
    assert raised.value.code is ErrorCode.CORRUPT_MESSAGE


@pytest.mark.parametrize(
    "damage",
    [
        lambda m: m[:-1],  # truncated
        lambda m: m[:16] + bytes([m[16] ^ 1]) + m[17:],  # CRC mismatch (magic flipped)
        lambda m: m[:20] + b"\x00\x00\x00\x09" + m[24:],  # key length past the end (CRC fixed below)
        lambda m: m[:8] + b"\x00\x00\x00\x02" + m[12:],  # message size below the minimum
    ],
)
def test_damaged_legacy_messages_are_corrupt(damage: object) -> None:
    message = damage(legacy_message(0, b"key", b"value"))  # type: ignore[operator]
    if len(message) > 16 and message[16] == 0:
        message = message[:12] + struct.pack(">I", crc32_reference(message[16:])) + message[16:]
    with pytest.raises(KafkaError) as raised:
        convert_legacy(message)
    assert raised.value.code is ErrorCode.CORRUPT_MESSAGE


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120), st.integers(0, 119), st.integers(0, 255))
def test_arbitrary_legacy_bytes_raise_only_kafka_errors(noise: bytes, position: int, byte: int) -> None:
    """Random bytes, valid messages with one byte changed under a recomputed CRC, and
    compressed wrappers around random bytes."""
    message = bytearray(legacy_message(1, b"key", b"value", timestamp=5))
    message[position % len(message)] = byte
    if len(message) > 16:
        message[12:16] = struct.pack(">I", crc32_reference(bytes(message[16:])))
    codec = [Compression.GZIP, Compression.SNAPPY, Compression.LZ4][byte % 3]
    wrapper = legacy_message(byte % 2, None, compress(codec, noise), attributes=codec)
    for data in (noise, bytes(message), wrapper):
        try:
            list(iter_records(convert_legacy(data)))
        except KafkaError as error:
            assert error.code in (ErrorCode.CORRUPT_MESSAGE, ErrorCode.INVALID_RECORD, ErrorCode.UNSUPPORTED_COMPRESSION_TYPE)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([c for c in Compression if c is not Compression.NONE]), st.booleans())
def test_random_compressed_bodies_raise_only_kafka_errors(body: bytes, codec: Compression, xerial: bool) -> None:
    """A body under a valid CRC that is not what its codec claims, including a fake
    xerial snappy header with random block lengths."""
    if xerial and codec is Compression.SNAPPY:
        body = b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1) + body
    try:
        list(iter_records(hand_batch(body, attributes=codec)))
    except KafkaError as error:
        assert error.code is ErrorCode.CORRUPT_MESSAGE


@given(st.lists(st.binary(max_size=20), min_size=1, max_size=30), st.integers(0, 40), st.integers(0, 1000))
def test_records_below_from_offset_are_stepped_over(values: list[bytes], skipped: int, base_offset: int) -> None:
    batch = build_batch([Record(i, 1_700_000_000_000 + i, b"k", v, (("h", v),)) for i, v in enumerate(values)], base_offset=base_offset)
    every = list(iter_records(batch))
    assert list(iter_records(batch, from_offset=base_offset + skipped)) == [r for r in every if r.offset >= base_offset + skipped]
