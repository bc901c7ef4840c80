"""Hand-written encoders for the usual shape of the hottest answers: byte for byte what the
generated codec (wire.compiler) writes for them, which still encodes every other shape
(tests/wire/test_specialised.py holds the two to the same bytes).

ProduceResponse v9-v12 of one topic and one partition, without record errors, an error message
or a leader hint: the answer to every acknowledged Produce of one partition. The generated
build looks up twelve fields with their defaults and joins thirteen pieces (about 14k
instructions); this one packs one struct.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from typing import Any

from ottla.wire.primitives import encode_uvarint

Encoder = Callable[[Mapping[str, Any]], bytes]

# After the topic's name: one partition (count 2), index, error_code, base_offset,
# log_append_time_ms, log_start_offset, no record errors (count 1), a null error message, the
# partition's and the topic's empty tagged fields, throttle_time_ms, the answer's tagged fields.
_ONE_PARTITION = struct.Struct(">BihqqqBBBBiB")
_PRODUCE = 0
_SMALL = tuple(bytes((i,)) for i in range(128))


def response_encoder(api_key: int, version: int, generic: Encoder) -> Encoder:
    """The encoder of a response body: a specialised one falling back to `generic` where there
    is one, else `generic` itself."""
    if api_key == _PRODUCE and 9 <= version <= 12:
        return lambda value: _produce_one_partition(value, version >= 10) or generic(value)
    return generic


def _produce_one_partition(value: Mapping[str, Any], tagged: bool) -> bytes | None:
    """The body, or None when it is not of the usual shape (a field left to its default, one of
    the optional ones set) or not valid: the generated codec then encodes it, or raises what it
    raises."""
    try:
        responses = value["responses"]
        if len(responses) != 1 or (tagged and "node_endpoints" in value):
            return None
        topic = responses[0]
        partitions = topic["partition_responses"]
        if len(partitions) != 1:
            return None
        partition = partitions[0]
        if "record_errors" in partition or "error_message" in partition or (tagged and "current_leader" in partition):
            return None
        name = topic["name"].encode("utf-8")
        fixed = _ONE_PARTITION.pack(
            2,
            partition["index"],
            partition["error_code"],
            partition["base_offset"],
            partition["log_append_time_ms"],
            partition["log_start_offset"],
            1, 0, 0, 0,
            value["throttle_time_ms"],
            0,
        )
    except Exception:
        return None
    length = len(name) + 1
    return b"".join((b"\x02", _SMALL[length] if length < 128 else encode_uvarint(length), name, fixed))
