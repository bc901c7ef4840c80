"""The generated codec (wire.compiler) against the construct structs it is generated from.

Over every declared API and version, and the headers, seeded samples must encode to the
same bytes and decode to the same values (down to the types: memoryview records, bytes
uuids, bools), from bytes and from a memoryview, at an offset inside a larger buffer.
Corrupted frames must meet the same fate on both paths: the same value, or MalformedFrame.
kafka-python's bytes are checked for both paths in test_golden, and the property tests
of test_primitives (truncation at every cut, hostile counts) run against both.
"""

from __future__ import annotations

import random
import struct as pystruct
from typing import Any

import pytest

from ottla.wire.api import DECLARED_VERSIONS, ApiKey, message_name
from ottla.wire.errors import MalformedFrame
from ottla.wire.primitives import Spliced
from ottla.wire.schema import (
    Message,
    decode,
    decode_interpreted,
    encode,
    encode_interpreted,
    encode_parts,
    encode_parts_interpreted,
    message_struct,
)

from wire_codecs import sample

SEEDS = range(8)
SPECS = [
    f"{message_name(key)}{kind}/{version}"
    for key, (low, high) in DECLARED_VERSIONS.items()
    for kind in ("Request", "Response")
    for version in range(low, high + 1)
] + ["RequestHeader/0", "RequestHeader/1", "RequestHeader/2", "ResponseHeader/0", "ResponseHeader/1"]


def _struct(spec: str) -> Message:
    name, version = spec.split("/")
    return message_struct(name, int(version))


def _typed(value: Any) -> Any:
    """`value` with each leaf tagged by its type, so `1 == True` or bytes == memoryview
    cannot hide a difference; floats by their bits, so a decoded NaN equals itself."""
    if isinstance(value, dict):
        return {key: _typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_typed(item) for item in value]
    if isinstance(value, memoryview):
        return ("memoryview", value.tobytes())
    if isinstance(value, float):
        return ("float", pystruct.pack(">d", value))
    return (type(value).__name__, value)


def _outcome(decoder: Any, struct: Message, data: Any, offset: int = 0) -> Any:
    try:
        value, end = decoder(struct, data, offset)
    except MalformedFrame as exc:
        assert "{" not in str(exc), f"generated message left unformatted: {exc}"
        return MalformedFrame
    return _typed(value), end


@pytest.mark.parametrize("spec", SPECS)
def test_same_bytes_and_values_as_the_interpreted_struct(spec: str) -> None:
    struct = _struct(spec)
    for seed in SEEDS:
        value = sample(struct, random.Random(f"{spec}/{seed}"))
        data = encode_interpreted(struct, value)
        assert encode(struct, value) == data, f"seed {seed}"
        assert encode_parts(struct, value) == encode_parts_interpreted(struct, value), f"seed {seed}"
        expected = _outcome(decode_interpreted, struct, data)
        assert expected[1] == len(data)
        assert _outcome(decode, struct, data) == expected, f"seed {seed}"
        assert _outcome(decode, struct, memoryview(data)) == expected, f"seed {seed}"
        # Inside a larger frame: lengths are checked against the whole buffer, as interpreted.
        framed = b"\x07" * 5 + data + b"\x00\xff"
        shifted = (expected[0], expected[1] + 5)
        assert _outcome(decode, struct, framed, 5) == shifted == _outcome(decode_interpreted, struct, framed, 5)


def _corruptions(data: bytes, rng: random.Random) -> list[bytes]:
    """Frames a broken or hostile client could send: flipped bytes, lengths and counts
    set to edge values, bytes inserted and removed, the tail cut off."""
    out = []
    for _ in range(12):
        frame = bytearray(data)
        for _ in range(rng.choice((1, 1, 2, 4))):
            if not frame:
                break
            at = rng.randrange(len(frame))
            frame[at] = rng.choice((0x00, 0x01, 0x7F, 0x80, 0xFF, rng.randrange(256)))
        out.append(bytes(frame))
    if data:
        at = rng.randrange(len(data))
        out.append(data[:at] + data[at + 1 :])
        out.append(data[:at] + bytes([rng.randrange(256)]) + data[at:])
        out.append(data[: rng.randrange(len(data))])
    out.append(data + rng.randbytes(rng.choice((1, 5, 20))))
    return out


@pytest.mark.parametrize("spec", SPECS)
def test_corrupted_frames_meet_the_same_fate(spec: str) -> None:
    struct = _struct(spec)
    for seed in SEEDS:
        rng = random.Random(f"corrupt/{spec}/{seed}")
        data = encode_interpreted(struct, sample(struct, rng))
        for frame in _corruptions(data, rng):
            expected = _outcome(decode_interpreted, struct, frame)
            assert _outcome(decode, struct, frame) == expected, f"seed {seed}: {frame.hex()}"


class _Region:
    """Stands in for a file region: something with a length that is not a buffer."""

    def __init__(self, length: int) -> None:
        self.length = length

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Region) and other.length == self.length


def _splice_records(value: Any, rng: random.Random) -> Any:
    """Replace every `records` value by a Spliced mix of buffers and file regions."""
    if isinstance(value, list):
        return [_splice_records(item, rng) for item in value]
    if not isinstance(value, dict):
        return value
    out = {key: _splice_records(item, rng) for key, item in value.items()}
    if out.get("records") is not None:
        parts: list[Any] = [rng.choice((b"", b"head", memoryview(b"view"))), _Region(100)]
        parts += rng.choice(([], [b"tail"], [_Region(7), bytearray(b"x")]))
        size = sum(part.length if isinstance(part, _Region) else len(part) for part in parts)
        out["records"] = Spliced(parts, size)
    return out


@pytest.mark.parametrize("version", range(DECLARED_VERSIONS[ApiKey.FETCH][0], DECLARED_VERSIONS[ApiKey.FETCH][1] + 1))
def test_spliced_fetch_responses_keep_their_parts(version: int) -> None:
    struct = message_struct("FetchResponse", version)
    for seed in SEEDS:
        rng = random.Random(f"splice/{version}/{seed}")
        value = _splice_records(sample(struct, rng), rng)
        assert encode_parts(struct, value) == encode_parts_interpreted(struct, value), f"seed {seed}"


def test_build_errors_name_the_rule() -> None:
    """Generated build code skips type checks; the interpreted struct's error is raised."""
    struct = message_struct("MetadataResponse", 12)
    with pytest.raises(ValueError, match="not nullable"):
        encode(struct, {"brokers": [{"node_id": 1, "host": None, "port": 1}]})
    with pytest.raises(ValueError, match="uuid is 16 bytes"):
        encode(struct, {"topics": [{"name": "t", "topic_id": b"short"}]})


@pytest.mark.parametrize("decoder", [decode, decode_interpreted], ids=["compiled", "interpreted"])
def test_a_tagged_fields_default_is_fresh_in_every_decoded_message(decoder: Any) -> None:
    """Changing one decoded message's absent tagged struct (Fetch v16's replica_state) must not
    change the next one's: each gets its own copy of the default."""
    struct = message_struct("FetchRequest", 16)
    data = encode(struct, {"replica_id": -1, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1, "isolation_level": 0, "session_id": 0,
                           "session_epoch": -1, "topics": [], "forgotten_topics_data": [], "rack_id": ""})
    first, _ = decoder(struct, data, 0)
    first["replica_state"]["replica_id"] = 7
    second, _ = decoder(struct, data, 0)
    assert second["replica_state"] == {}
