"""Property tests for the primitive encodings and for how decoding fails.

Encodings are checked against kafka-python's codecs (`kafka.protocol.schemas.fields.codecs`),
not against our own decoder. Failure rules: whatever the bytes, `decode` either returns
a message or raises MalformedFrame; a count or length larger than the bytes present is
refused before anything is allocated. Every codec test runs twice: through the construct
structs as interpreted, and through the code `wire.compiler` generates from them.
"""

from __future__ import annotations

import io
import time
import tracemalloc
from typing import Any

import pytest
from construct import StreamError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka.protocol.schemas.fields.codecs import Bytes as KBytes
from kafka.protocol.schemas.fields.codecs import String as KString
from kafka.protocol.schemas.fields.codecs import UnsignedVarInt32

from ottla.wire.api import DECLARED_VERSIONS, message_name
from ottla.wire.errors import MalformedFrame
from ottla.wire.primitives import Array, Bool, Bytes, Fixed, String, Uuid, encode_uvarint, read_uvarint
from ottla.wire.schema import Message, NullableStruct, build_struct, encode_interpreted, message_struct

from wire_codecs import Codec, both_codecs

KSTRING = KString("utf-8")
UINT32 = st.integers(0, 2**32 - 1)


def _one_field(kind: str, flexible: bool, nullable: bool) -> Message:
    """A message holding a single field `value`, built the way definitions are."""
    field = {"name": "Value", "type": kind, "versions": "0+", "nullableVersions": "0+" if nullable else "none"}
    return build_struct([field], 0, flexible)


# Unsigned varints (KIP-482): 7 bits a byte, low group first, at most 5 bytes for 32 bits.


@given(UINT32)
def test_uvarint_matches_kafka_python_and_round_trips(value: int) -> None:
    data = encode_uvarint(value)
    assert data == UnsignedVarInt32.encode(value)
    stream = io.BytesIO(data)
    assert read_uvarint(stream) == value and stream.tell() == len(data)


@given(st.integers(0, 2**32 - 1), st.binary(max_size=8))
def test_uvarint_reads_only_its_own_bytes(value: int, tail: bytes) -> None:
    stream = io.BytesIO(encode_uvarint(value) + tail)
    assert read_uvarint(stream) == value
    assert stream.read() == tail


@both_codecs
@given(st.binary(min_size=5, max_size=5).map(lambda b: bytes(x | 0x80 for x in b)), st.binary(max_size=4))
def test_uvarint_longer_than_five_bytes_is_rejected(codec: Codec, continued: bytes, tail: bytes) -> None:
    with pytest.raises(StreamError):
        read_uvarint(io.BytesIO(continued + b"\x01" + tail))
    # Through a message: a compact string whose length varint never ends.
    with pytest.raises(MalformedFrame):
        codec.decode(_one_field("string", True, False), continued + b"\x01" + tail)


def test_uvarint_padding_is_accepted_up_to_five_bytes() -> None:
    # Kafka's ByteUtils.readUnsignedVarint accepts non-minimal forms within 5 bytes.
    assert read_uvarint(io.BytesIO(b"\x81\x80\x80\x80\x00")) == 1


def test_negative_uvarint_is_refused() -> None:
    with pytest.raises(ValueError):
        encode_uvarint(-1)


# Strings and bytes, classic (int16 / int32 length, -1 for null) and compact (uvarint n + 1).

TEXT = st.text(max_size=300)
NULLABLE_TEXT = st.none() | TEXT


@both_codecs
@given(NULLABLE_TEXT, st.booleans())
def test_nullable_string_matches_kafka_python(codec: Codec, value: str | None, compact: bool) -> None:
    struct = _one_field("string", compact, True)
    data = codec.encode(struct, {"value": value})
    assert data == KSTRING.encode(value, compact=compact) + (b"\x00" if compact else b"")
    assert codec.decode(struct, data) == ({"value": value}, len(data))


@both_codecs
@given(TEXT, st.booleans())
def test_string_matches_kafka_python(codec: Codec, value: str, compact: bool) -> None:
    struct = _one_field("string", compact, False)
    data = codec.encode(struct, {"value": value})
    assert data == KSTRING.encode(value, compact=compact) + (b"\x00" if compact else b"")
    assert codec.decode(struct, data)[0] == {"value": value}


@both_codecs
@given(st.none() | st.binary(max_size=300), st.booleans())
def test_nullable_bytes_match_kafka_python(codec: Codec, value: bytes | None, compact: bool) -> None:
    struct = _one_field("bytes", compact, True)
    data = codec.encode(struct, {"value": value})
    assert data == KBytes.encode(value, compact=compact) + (b"\x00" if compact else b"")
    assert codec.decode(struct, data)[0] == {"value": value}


@both_codecs
@pytest.mark.parametrize("kind", ["string", "bytes"])
@pytest.mark.parametrize("compact", [False, True])
def test_null_in_a_non_nullable_field_is_malformed(codec: Codec, kind: str, compact: bool) -> None:
    null = b"\x00" if compact else (b"\xff\xff" if kind == "string" else b"\xff\xff\xff\xff")
    with pytest.raises(MalformedFrame):
        codec.decode(_one_field(kind, compact, False), null + b"\x00")
    with pytest.raises(ValueError):
        codec.encode(_one_field(kind, compact, False), {"value": None})


@both_codecs
@pytest.mark.parametrize("compact", [False, True])
def test_impossible_lengths_are_malformed(codec: Codec, compact: bool) -> None:
    # Classic int16 -2; a compact length cannot be below -1, so one past the data instead.
    data = encode_uvarint(2**32 - 1) if compact else b"\xff\xfe"
    with pytest.raises(MalformedFrame):
        codec.decode(_one_field("string", compact, True), data + b"abc")


INVALID_UTF8 = st.sampled_from(
    [b"\xff", b"\xc3", b"\xc3\x28", b"\xe2\x82", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf"]
)


@both_codecs
@given(st.text(max_size=10), INVALID_UTF8, st.text(max_size=10), st.booleans())
def test_invalid_utf8_is_malformed(codec: Codec, before: str, bad: bytes, after: str, compact: bool) -> None:
    raw = before.encode() + bad + after.encode()
    prefix = encode_uvarint(len(raw) + 1) if compact else len(raw).to_bytes(2, "big")
    with pytest.raises(MalformedFrame):
        codec.decode(_one_field("string", compact, False), prefix + raw + b"\x00")


# Counts and lengths larger than the bytes left are refused before allocating.


def _refused_quickly(codec: Codec, struct: Message, data: bytes) -> None:
    struct.codec  # generated once per struct, not per frame: not part of the measure
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(MalformedFrame):
            codec.decode(struct, data)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 0.05, f"took {elapsed * 1e3:.1f} ms"
    assert peak < 64 * 1024, f"allocated {peak} bytes"


@both_codecs
@pytest.mark.parametrize("element", ["int8", "int32", "string", "bool"])
def test_huge_classic_array_count_is_refused_without_allocation(codec: Codec, element: str) -> None:
    _refused_quickly(codec, _one_field(f"[]{element}", False, False), b"\x7f\xff\xff\xff" + bytes(10))


@both_codecs
def test_huge_compact_array_count_is_refused_without_allocation(codec: Codec) -> None:
    _refused_quickly(codec, _one_field("[]int8", True, True), encode_uvarint(2**32 - 1) + bytes(10))


@both_codecs
def test_huge_struct_array_count_is_refused_without_allocation(codec: Codec) -> None:
    # MetadataResponse v12: brokers array claims 2**31 - 1 entries of at least 14 bytes.
    _refused_quickly(codec, message_struct("MetadataResponse", 12), bytes(4) + encode_uvarint(2**31) + bytes(10))


@both_codecs
@pytest.mark.parametrize("kind", ["string", "bytes", "records"])
def test_huge_lengths_are_refused_without_allocation(codec: Codec, kind: str) -> None:
    classic = (b"\x7f\xff" if kind == "string" else b"\x7f\xff\xff\xff") + bytes(10)
    _refused_quickly(codec, _one_field(kind, False, False), classic)
    _refused_quickly(codec, _one_field(kind, True, False), encode_uvarint(2**32 - 1) + bytes(10))


@both_codecs
@given(st.integers(1, 2**31 - 1), st.binary(max_size=64))
def test_array_counts_beyond_the_data_are_malformed(codec: Codec, extra: int, body: bytes) -> None:
    # Elements of int64 need 8 bytes each; any count the body cannot hold is refused.
    count = len(body) // 8 + extra
    with pytest.raises(MalformedFrame, match="array count"):
        codec.decode(_one_field("[]int64", False, False), count.to_bytes(4, "big") + body)


# Truncation and garbage: MalformedFrame, never another exception type.


def _values(con: Any) -> st.SearchStrategy[Any]:
    """A hypothesis strategy for values of one of our constructs."""
    if isinstance(con, Message):
        regular = st.fixed_dictionaries({name: _values(c) for name, c, _ in con.fields})
        tagged = st.fixed_dictionaries({}, optional={name: _values(c) for _, name, c, _ in con.tagged})
        return st.tuples(regular, tagged).map(lambda parts: {**parts[0], **parts[1]})
    if isinstance(con, NullableStruct):
        return st.none() | _values(con.struct)
    if isinstance(con, Array):
        items = st.lists(_values(con.element), max_size=2)
        return st.none() | items if con.nullable else items
    if isinstance(con, String):
        return st.none() | st.text(max_size=8) if con.nullable else st.text(max_size=8)
    if isinstance(con, Bytes):
        return st.none() | st.binary(max_size=8) if con.nullable else st.binary(max_size=8)
    if isinstance(con, Bool):
        return st.booleans()
    if isinstance(con, Uuid):
        return st.binary(min_size=16, max_size=16)
    if isinstance(con, Fixed):
        if con.type_name == "float64":
            return st.floats(allow_nan=False)
        bits = int(con.type_name.removeprefix("u").removeprefix("int"))
        signed = not con.type_name.startswith("u")
        return st.integers(-(2 ** (bits - 1)) if signed else 0, 2 ** (bits - 1 if signed else bits) - 1)
    raise AssertionError(f"no strategy for {con!r}")


MESSAGES = [
    f"{message_name(key)}{kind}/{version}"
    for key, (low, high) in DECLARED_VERSIONS.items()
    for kind in ("Request", "Response")
    for version in range(low, high + 1)
] + ["RequestHeader/1", "RequestHeader/2", "ResponseHeader/1"]


def _struct(spec: str) -> Message:
    name, version = spec.split("/")
    return message_struct(name, int(version))


@st.composite
def _encoded(draw: st.DrawFn) -> tuple[Message, bytes]:
    struct = _struct(draw(st.sampled_from(MESSAGES)))
    return struct, encode_interpreted(struct, draw(_values(struct)))


@both_codecs
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_encoded(), st.data())
def test_any_truncation_is_malformed(codec: Codec, message: tuple[Message, bytes], data: st.DataObject) -> None:
    struct, encoded = message
    if not encoded:
        return  # ApiVersionsRequest v0 has no fields, so it has no strict prefix either
    cut = data.draw(st.integers(0, len(encoded) - 1), label="cut")
    with pytest.raises(MalformedFrame):
        codec.decode(struct, encoded[:cut])


@both_codecs
@pytest.mark.parametrize("spec", ["ProduceRequest/9", "MetadataResponse/12", "FetchResponse/16", "ApiVersionsResponse/3"])
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_cut_point_of_a_message_is_malformed(codec: Codec, spec: str, data: st.DataObject) -> None:
    struct = _struct(spec)
    encoded = codec.encode(struct, data.draw(_values(struct)))
    for cut in range(len(encoded)):
        with pytest.raises(MalformedFrame):
            codec.decode(struct, encoded[:cut])
    assert codec.decode(struct, encoded)[1] == len(encoded)


@both_codecs
@settings(max_examples=500, deadline=None)
@given(st.sampled_from(MESSAGES), st.binary(max_size=200))
def test_garbage_decodes_or_is_malformed(codec: Codec, spec: str, garbage: bytes) -> None:
    try:
        codec.decode(_struct(spec), garbage)
    except MalformedFrame:
        pass
