"""Shared by the codec tests: both codec paths as a parameter, and seeded sample values."""

from __future__ import annotations

import random
from typing import Any, Callable, NamedTuple

import pytest

from ottla.wire.primitives import Array, Bool, Bytes, Fixed, String, Uuid
from ottla.wire.schema import Message, NullableStruct, decode, decode_interpreted, encode, encode_interpreted


class Codec(NamedTuple):
    decode: Callable[..., tuple[dict[str, Any], int]]
    encode: Callable[[Message, dict[str, Any]], bytes]


# The construct structs as interpreted, and the code wire.compiler generates from them.
both_codecs = pytest.mark.parametrize(
    "codec",
    [
        pytest.param(Codec(decode_interpreted, encode_interpreted), id="interpreted"),
        pytest.param(Codec(decode, encode), id="compiled"),
    ],
)

_RANGES = {
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
}
# Multi-byte UTF-8 on purpose: lengths on the wire count bytes, not characters.
_ALPHABET = "abcxyz-._é日本🙂"


def sample(con: Any, rng: random.Random) -> Any:
    """Seeded values for every field of `con`, including nulls and edge numbers."""
    if isinstance(con, Message):
        out = {name: sample(c, rng) for name, c, _ in con.fields}
        for _, name, c, _ in con.tagged:
            if rng.random() < 0.6:
                out[name] = sample(c, rng)
        return out
    if isinstance(con, NullableStruct):
        return None if rng.random() < 0.3 else sample(con.struct, rng)
    if isinstance(con, Array):
        if con.nullable and rng.random() < 0.2:
            return None
        return [sample(con.element, rng) for _ in range(rng.choice((0, 1, 2, 3)))]
    if isinstance(con, String):
        if con.nullable and rng.random() < 0.3:
            return None
        return "".join(rng.choice(_ALPHABET) for _ in range(rng.choice((0, 1, 5, 40))))
    if isinstance(con, Bytes):
        if con.nullable and rng.random() < 0.3:
            return None
        return rng.randbytes(rng.choice((0, 1, 61, 200)))
    if isinstance(con, Bool):
        return rng.random() < 0.5
    if isinstance(con, Uuid):
        return rng.randbytes(16)
    if isinstance(con, Fixed):
        if con.type_name == "float64":
            return rng.choice((0.0, -1.5, 1e300, rng.uniform(-1e9, 1e9)))
        low, high = _RANGES[con.type_name]
        return rng.choice((low, high, max(low, -1), 0, 1, rng.randint(low, high)))
    raise AssertionError(f"no sampler for {con!r}")
