"""Hand-written codecs for the usual shape of the hottest messages: byte for byte what the
generated codec (wire.compiler) reads and writes for them, which still handles every other shape
(tests/wire/test_specialised.py holds the two to the same values and bytes).

ProduceRequest v9-v12 without a transactional id, of one topic and one partition, and its
answer without record errors, an error message or a leader hint: every acknowledged Produce of
one partition by an idempotent or plain producer. The generated code walks their arrays and
looks up or stores each field (about 21k instructions to read the request, 14k to write the
answer); these read and pack the fixed parts with one struct each.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from typing import Any

from ottla.wire.primitives import encode_uvarint

Encoder = Callable[[Mapping[str, Any]], bytes]
Decoder = Callable[[Any, int], tuple[dict[str, Any], int]]

# After the topic's name: one partition (count 2), index, error_code, base_offset,
# log_append_time_ms, log_start_offset, no record errors (count 1), a null error message, the
# partition's and the topic's empty tagged fields, throttle_time_ms, the answer's tagged fields.
_ONE_PARTITION = struct.Struct(">BihqqqBBBBiB")
_PRODUCE = 0
# A Produce request's acks and timeout_ms, and a partition's index.
_ACKS_TIMEOUT = struct.Struct(">hi")
_INDEX = struct.Struct(">i")
_SMALL = tuple(bytes((i,)) for i in range(128))


def request_decoder(api_key: int, version: int, generic: Decoder) -> Decoder:
    """The decoder of a request body: a specialised one falling back to `generic` where there
    is one, else `generic` itself."""
    if api_key == _PRODUCE and 9 <= version <= 12:
        return lambda data, pos: _produce_request_one_partition(data, pos) or generic(data, pos)
    return generic


def _produce_request_one_partition(data: Any, pos: int) -> tuple[dict[str, Any], int] | None:
    """The body and the offset past it, or None when it is not of the usual shape or not
    whole: the generated codec then reads it, or raises MalformedFrame."""
    try:
        size = len(data)
        if data[pos] != 0 or data[pos + 7] != 2:  # a null transactional id; one topic
            return None
        acks, timeout_ms = _ACKS_TIMEOUT.unpack_from(data, pos + 1)
        length = data[pos + 8] - 1
        start = pos + 9
        pos = start + length
        if not 0 <= length <= 126 or pos + 6 > size or data[pos] != 2:  # a one-byte name length; one partition
            return None
        name = str(data[start:pos], "utf-8")
        (index,) = _INDEX.unpack_from(data, pos + 1)
        length = data[pos + 5]
        pos += 6
        if length > 127:
            if data[pos] > 127:
                return None
            length += (data[pos] << 7) - 128
            pos += 1
        length -= 1
        if length < 0 or length > size - pos - 3:  # null records; not whole, with three tag sections after
            return None
        start = pos
        pos += length
        if data[pos] or data[pos + 1] or data[pos + 2]:  # the partition's, topic's and request's tagged fields
            return None
        records = memoryview(data)[start:pos]
    except Exception:
        return None
    return {"transactional_id": None, "acks": acks, "timeout_ms": timeout_ms, "topic_data": [{"name": name, "partition_data": [{"index": index, "records": records}]}]}, pos + 3


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
