"""The request decoder cannot be crashed (issue 8, item 1), for every API version the broker
advertises: generated requests round-trip through encode_request/decode_request, and
corrupted ones end in MalformedFrame (record batches: KafkaError), never another exception.

Examples are bounded so the suite stays fast; `python -m compat.fuzz` runs millions.
"""

from __future__ import annotations

import struct
import tracemalloc
import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compat.fuzz import declared_targets
from ottla.server.broker import Broker
from ottla.server.handlers import SERVED
from ottla.wire.errors import ErrorCode, KafkaError, MalformedFrame
from ottla.wire.header import RequestHeader, encode_request_header, request_header_version
from ottla.wire.primitives import Array, Bool, Bytes, Fixed, String, Uuid, encode_uvarint
from ottla.wire.protocol import decode_request, encode_request, request_struct
from ottla.wire.records import CRC, CRC_OFFSET, Compression, Record, batch_magic, build_batch, compute_crc, convert_legacy, iter_batches, iter_records
from ottla.wire.schema import Message, NullableStruct

ADVERTISED = [
    (int(key), version) for key, low, high in Broker(port=0, data_dir=None).dispatcher.supported() for version in range(low, high + 1)
]
FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _edge_ints(kind: str) -> st.SearchStrategy[int]:
    bits = int(kind.removeprefix("u").removeprefix("int"))
    low, high = (0, 2**bits - 1) if kind.startswith("u") else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return st.sampled_from([low, high, -1 if low else 1, 0]) | st.integers(low, high)


TEXT = st.text(st.characters(codec="utf-8"), max_size=12)


@st.composite
def record_batches(draw: st.DrawFn) -> bytes:
    """One or two valid RecordBatch v2, as a producer sends them."""
    batches = []
    for _ in range(draw(st.integers(1, 2))):
        count = draw(st.integers(1, 3))
        records = [
            Record(
                offset=index,
                timestamp=draw(st.integers(0, 2**41)),
                key=draw(st.none() | st.binary(max_size=8)),
                value=draw(st.none() | st.binary(max_size=16)),
                headers=tuple(draw(st.lists(st.tuples(TEXT, st.none() | st.binary(max_size=4)), max_size=2))),
            )
            for index in range(count)
        ]
        batches.append(build_batch(records, compression=draw(st.sampled_from(Compression))))
    return b"".join(batches)


def values(con: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    """Every value a field of this construct may hold, nulls and tagged fields included."""
    if isinstance(con, Message):
        regular = st.fixed_dictionaries({name: values(c, depth + 1) for name, c, _ in con.fields})
        # A tagged field equal to its default is left off the wire and decodes to the default.
        tagged = st.fixed_dictionaries({name: st.just(default) | values(c, depth + 1) for _, name, c, default in con.tagged})
        return st.tuples(regular, tagged).map(lambda parts: {**parts[0], **parts[1]})
    if isinstance(con, NullableStruct):
        return st.none() | values(con.struct, depth)
    if isinstance(con, Array):
        items = st.lists(values(con.element, depth + 1), max_size=2 if depth < 3 else 0)
        return st.none() | items if con.nullable else items
    if isinstance(con, String):
        return st.none() | TEXT if con.nullable else TEXT
    if isinstance(con, Bytes):
        data = record_batches() if con.zero_copy else st.binary(max_size=16)
        return st.none() | data if con.nullable else data
    if isinstance(con, Bool):
        return st.booleans()
    if isinstance(con, Uuid):
        return st.just(bytes(16)) | st.binary(min_size=16, max_size=16)
    if isinstance(con, Fixed):
        if con.type_name == "float64":
            return st.floats(allow_nan=False)
        return _edge_ints(con.type_name)
    raise AssertionError(f"no strategy for {con!r}")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return bytes(value) if isinstance(value, memoryview) else value


@st.composite
def requests(draw: st.DrawFn, targets: list[tuple[int, int]] = ADVERTISED) -> tuple[int, int, dict[str, Any], bytes]:
    """(api_key, version, body, frame without its size prefix) of a valid request."""
    api_key, version = draw(st.sampled_from(targets))
    body = draw(values(request_struct(api_key, version)))
    correlation_id = draw(_edge_ints("int32"))
    client_id = draw(st.none() | TEXT)
    return api_key, version, body, encode_request(api_key, version, correlation_id, body, client_id)[4:]


def decode_as_broker(frame: bytes, api_key: int, version: int) -> dict[str, Any]:
    return decode_request(frame, request_header_version(api_key, version))[1]


def test_every_advertised_version_has_a_schema() -> None:
    assert len(ADVERTISED) > 50  # the handler table is not empty by accident
    for api_key, version in ADVERTISED:
        request_struct(api_key, version)


def test_the_properties_and_the_fuzzer_cover_every_api_served() -> None:
    """Every API of the handler table, at every version, gets the properties below (they run over
    ADVERTISED) and `python -m compat.fuzz`'s in-process run (it runs over what wire/ declares)."""
    served = {(int(key), version) for key, (low, high) in SERVED.items() for version in range(low, high + 1)}
    assert set(ADVERTISED) == served
    assert served <= set(declared_targets())


@FAST
@given(requests())
def test_generated_requests_round_trip(request: tuple[int, int, dict[str, Any], bytes]) -> None:
    api_key, version, body, frame = request
    assert _plain(decode_as_broker(frame, api_key, version)) == _plain(body)


@pytest.mark.parametrize("api_key, version", ADVERTISED)
def test_every_truncation_of_an_advertised_request_is_malformed(api_key: int, version: int) -> None:
    body = {name: default for name, _, default in request_struct(api_key, version).fields}
    frame = encode_request(api_key, version, 1, body)[4:]
    assert decode_as_broker(frame, api_key, version) is not None
    for cut in range(len(frame)):
        with pytest.raises(MalformedFrame):
            decode_as_broker(frame[:cut], api_key, version)


def test_hostile_counts_anywhere_are_refused_without_allocating() -> None:
    """Each position of each advertised request overwritten with a huge count (int32
    2**31 - 1; varint 2**32 - 1 in flexible versions): refused or decoded, never allocated for."""
    tracemalloc.start()
    try:
        for api_key, version in ADVERTISED:
            body = {name: default for name, _, default in request_struct(api_key, version).fields}
            frame = encode_request(api_key, version, 1, body)[4:]
            # Warm up: the codec, and what reports its failures, are built on first use.
            decode_as_broker(frame, api_key, version)
            with pytest.raises(MalformedFrame):
                decode_as_broker(frame[:-1], api_key, version)
            # Counts are int32 in classic versions, varints in flexible ones.
            hostile = encode_uvarint(2**32 - 1) if request_header_version(api_key, version) >= 2 else struct.pack(">i", 2**31 - 1)
            for at in range(8, len(frame)):
                hostile_frame = frame[:at] + hostile + frame[at + len(hostile) :]
                tracemalloc.reset_peak()
                before = tracemalloc.get_traced_memory()[0]
                try:
                    decode_as_broker(hostile_frame, api_key, version)
                except MalformedFrame:
                    pass
                grown = tracemalloc.get_traced_memory()[1] - before
                assert grown < 64 * 1024, f"api {api_key} v{version}: {grown} bytes for a count at {at}"
    finally:
        tracemalloc.stop()


# Corruptions: each takes the frame and hypothesis' draw, and returns new bytes.

BAD_UTF8 = st.sampled_from([b"\xff", b"\x80", b"\xc3\x28", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82"])


def _at(draw: st.DrawFn, frame: bytes) -> int:
    # After the 8 bytes of api key, version and correlation id: the request stays one we serve.
    return draw(st.integers(min(8, len(frame)), len(frame)), label="position")


def flip_bits(draw: st.DrawFn, frame: bytes) -> bytes:
    data = bytearray(frame)
    for position in draw(st.lists(st.integers(8, len(data) - 1), min_size=1, max_size=4)) if len(data) > 8 else ():
        data[position] ^= 1 << draw(st.integers(0, 7))
    return bytes(data)


def truncate(draw: st.DrawFn, frame: bytes) -> bytes:
    return frame[: _at(draw, frame)]


def insert_bytes(draw: st.DrawFn, frame: bytes) -> bytes:
    at = _at(draw, frame)
    return frame[:at] + draw(st.binary(min_size=1, max_size=16)) + frame[at:]


def delete_bytes(draw: st.DrawFn, frame: bytes) -> bytes:
    at = _at(draw, frame)
    return frame[:at] + frame[at + draw(st.integers(1, 16)) :]


def hostile_length(draw: st.DrawFn, frame: bytes) -> bytes:
    """An int16 or int32 (a classic length or count) set negative, huge, or just past the end."""
    at = _at(draw, frame)
    fmt = draw(st.sampled_from([">h", ">i"]))
    top = 2 ** (struct.calcsize(fmt) * 8 - 1) - 1
    past_end = min(len(frame) - at + 1, top)
    value = draw(st.sampled_from([-1, -2, -top - 1, top, past_end]))
    return frame[:at] + struct.pack(fmt, value) + frame[at + struct.calcsize(fmt) :]


def long_varint(draw: st.DrawFn, frame: bytes) -> bytes:
    """A varint of 6 to 11 bytes (or a 5-byte one holding more than 32 bits) in place of a byte."""
    at = _at(draw, frame)
    length = draw(st.integers(5, 11))
    varint = b"\xff" * (length - 1) + bytes([draw(st.integers(1, 0x7F))])
    return frame[:at] + varint + frame[at + 1 :]


def invalid_utf8(draw: st.DrawFn, frame: bytes) -> bytes:
    at = _at(draw, frame)
    bad = draw(BAD_UTF8)
    return frame[:at] + bad + frame[at + len(bad) :]


def unknown_tagged_fields(draw: st.DrawFn, frame: bytes) -> bytes:
    """The body's trailing tagged-field count (0) replaced by fields we do not know, some lying."""
    fields = b""
    count = draw(st.integers(1, 3))
    for _ in range(count):
        payload = draw(st.binary(max_size=8))
        size = draw(st.sampled_from([len(payload), len(payload) + 1, 2**31, 2**32 - 1]))
        fields += encode_uvarint(draw(st.sampled_from([3, 17, 1000, 2**31 - 1]))) + encode_uvarint(size) + payload
    count = draw(st.sampled_from([count, count + 1, 2**31]))
    return frame[:-1] + encode_uvarint(count) + fields


MUTATIONS = [flip_bits, truncate, insert_bytes, delete_bytes, hostile_length, long_varint, invalid_utf8, unknown_tagged_fields]


@FAST
@given(requests(), st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=3), st.data())
def test_mutated_requests_decode_or_are_malformed(request: tuple[int, int, dict[str, Any], bytes], mutations: list[Any], data: st.DataObject) -> None:
    api_key, version, _, frame = request
    for mutate in mutations:
        frame = mutate(data.draw, frame)
    try:
        decode_as_broker(frame, api_key, version)
    except MalformedFrame:
        pass


@pytest.mark.parametrize("mutate", MUTATIONS, ids=lambda mutate: mutate.__name__)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(request=requests(), data=st.data())
def test_each_mutation_alone_decodes_or_is_malformed(mutate: Any, request: tuple[int, int, dict[str, Any], bytes], data: st.DataObject) -> None:
    api_key, version, _, frame = request
    try:
        decode_as_broker(mutate(data.draw, frame), api_key, version)
    except MalformedFrame:
        pass


@FAST
@given(st.sampled_from(ADVERTISED), st.binary(max_size=300))
def test_garbage_after_a_valid_header_decodes_or_is_malformed(target: tuple[int, int], garbage: bytes) -> None:
    api_key, version = target
    header = encode_request_header(RequestHeader(api_key, version, 1, "garbage", request_header_version(api_key, version)))
    try:
        decode_as_broker(header + garbage, api_key, version)
    except MalformedFrame:
        pass


PRODUCE_VERSIONS = [version for api_key, version in ADVERTISED if api_key == 0]


@pytest.mark.parametrize("version", PRODUCE_VERSIONS)
def test_a_records_length_that_lies_is_malformed(version: int) -> None:
    batch = build_batch([Record(0, 0, b"k", b"v")])
    body = {"transactional_id": None, "acks": 1, "timeout_ms": 1000, "topic_data": [{"name": "t", "partition_data": [{"index": 0, "records": batch}]}]}
    frame = encode_request(0, version, 1, body)[4:]
    start = frame.index(batch)
    compact = request_header_version(0, version) >= 2
    prefix = len(encode_uvarint(len(batch) + 1)) if compact else 4
    lies = [len(batch) + 1, 2**31 - 1, 2**32 - 2] if compact else [len(batch) + 1, 2**31 - 1, -2, -(2**31)]
    for lie in lies:
        length = encode_uvarint(lie + 1) if compact else struct.pack(">i", lie)
        with pytest.raises(MalformedFrame):
            decode_as_broker(frame[: start - prefix] + length + frame[start:], 0, version)


def test_an_unknown_tagged_field_is_skipped() -> None:
    # KIP-482: a reader skips tags it does not know. Metadata v12: flexible, ends in the tag count.
    frame = encode_request(3, 12, 1, {"topics": None})[4:]
    padded = frame[:-1] + encode_uvarint(1) + encode_uvarint(999) + encode_uvarint(3) + b"xyz"
    assert decode_as_broker(padded, 3, 12) == decode_as_broker(frame, 3, 12)


# Record batches: whatever the bytes, storage's path raises only KafkaError.


def _storage_path(records: bytes) -> int:
    """What the produce path does with a partition's records, then a walk of every record."""
    data = convert_legacy(records) if batch_magic(records) in (0, 1) else records
    return sum(1 for _, batch in iter_batches(data) for _ in iter_records(batch))


@st.composite
def lying_batches(draw: st.DrawFn) -> bytes:
    """Valid batches with one field made to lie: length, magic, attributes, counts, CRC, or a
    body byte (with the CRC recomputed, so the records inside lie and the batch does not)."""
    data = bytearray(draw(record_batches()))
    lie = draw(st.sampled_from(["field", "field+crc", "body+crc", "crc", "cut"]))
    if lie.startswith("field"):
        offset, fmt = draw(st.sampled_from([(8, ">i"), (16, ">b"), (21, ">h"), (23, ">i"), (53, ">i"), (57, ">i")]))
        top = 2 ** (struct.calcsize(fmt) * 8 - 1) - 1
        struct.pack_into(fmt, data, offset, draw(st.sampled_from([-1, 0, 1, top, -top - 1]) | st.integers(-top - 1, top)))
    elif lie == "body+crc" and len(data) > 61:
        data[draw(st.integers(61, len(data) - 1))] = draw(st.integers(0, 255))
    elif lie == "crc":
        data[CRC_OFFSET + draw(st.integers(0, 3))] ^= 1 << draw(st.integers(0, 7))
    elif lie == "cut":
        del data[draw(st.integers(0, len(data) - 1)) :]
    if lie.endswith("+crc"):
        CRC.pack_into(data, CRC_OFFSET, compute_crc(data))
    return bytes(data)


def _legacy_message(magic: int, key: bytes | None, value: bytes | None) -> bytes:
    def field(data: bytes | None) -> bytes:
        return struct.pack(">i", -1) if data is None else struct.pack(">i", len(data)) + data

    body = struct.pack(">bb", magic, 0) + (struct.pack(">q", 0) if magic else b"") + field(key) + field(value)
    return struct.pack(">qiI", 0, len(body) + 4, zlib.crc32(body)) + body


@FAST
@given(lying_batches() | st.binary(max_size=120))
def test_lying_record_batches_raise_only_kafka_errors(records: bytes) -> None:
    try:
        _storage_path(records)
    except KafkaError as error:
        assert error.code in (ErrorCode.CORRUPT_MESSAGE, ErrorCode.INVALID_RECORD)


@FAST
@given(st.integers(0, 1), st.binary(max_size=8), st.integers(0, 40), st.binary(min_size=1, max_size=4))
def test_lying_legacy_message_sets_raise_only_kafka_errors(magic: int, value: bytes, position: int, patch: bytes) -> None:
    data = bytearray(_legacy_message(magic, b"k", value))
    data[position : position + len(patch)] = patch
    try:
        _storage_path(bytes(data))
    except KafkaError as error:
        assert error.code in (ErrorCode.CORRUPT_MESSAGE, ErrorCode.INVALID_RECORD, ErrorCode.UNSUPPORTED_COMPRESSION_TYPE)


def test_a_legacy_set_too_short_for_its_header_is_corrupt() -> None:
    # 17 bytes with magic 1 at offset 16: too short for the 18-byte legacy header
    # (found by compat.fuzz: struct.error escaped the produce path).
    with pytest.raises(KafkaError) as caught:
        convert_legacy(bytes(16) + b"\x01")
    assert caught.value.code == ErrorCode.CORRUPT_MESSAGE


def test_a_record_header_key_that_is_not_utf8_is_read_as_kafka_reads_it() -> None:
    # DefaultRecord.readFrom decodes header keys with new String(bytes, UTF_8): bad bytes
    # become U+FFFD, nothing is thrown (found by compat.fuzz: UnicodeDecodeError escaped).
    batch = bytearray(build_batch([Record(0, 0, None, b"v", headers=(("\u00e9", b"x"),))]))
    key = batch.index("\u00e9".encode())
    batch[key : key + 2] = b"\xff\xfe"
    CRC.pack_into(batch, CRC_OFFSET, compute_crc(batch))
    [(_, view)] = iter_batches(bytes(batch))
    [record] = iter_records(view)
    assert record.headers[0][0] == "\ufffd\ufffd" and bytes(record.value) == b"v"
