"""Whole frames: the hand-written request header reader and response framing.

The header reader is checked against the RequestHeader struct Kafka's JSON defines
(interpreted, not generated), and response frames against bytes written out by hand
from the protocol guide (kafka.apache.org/protocol#protocol_messages).
"""

from __future__ import annotations

import random

import pytest

from ottla.wire.api import ApiKey
from ottla.wire.errors import MalformedFrame
from ottla.wire.header import RequestHeader, decode_request_header, request_header_version
from ottla.wire.primitives import Spliced
from ottla.wire.protocol import decode_request, encode_request, encode_response, encode_response_parts
from ottla.wire.schema import decode_interpreted, encode_interpreted, message_struct


@pytest.mark.parametrize("header_version", [0, 1, 2])
def test_request_header_reader_agrees_with_the_schema(header_version: int) -> None:
    struct = message_struct("RequestHeader", header_version)
    rng = random.Random(header_version)
    for _ in range(200):
        value = {
            "request_api_key": rng.randrange(-(2**15), 2**15),
            "request_api_version": rng.randrange(-(2**15), 2**15),
            "correlation_id": rng.randrange(-(2**31), 2**31),
            "client_id": rng.choice((None, "", "rdkafka", "é日本🙂" * rng.randrange(10))),
        }
        # Header v2 may carry tagged fields (none are defined yet): they are skipped.
        tags = rng.choice((b"\x00", b"\x01\x05\x02ab", b"\x02\x00\x00\x7f\x01z"))
        data = encode_interpreted(struct, value)
        if header_version == 2:
            data = data[:-1] + tags
        expected, end = decode_interpreted(struct, data + b"body")
        header, position = decode_request_header(data + b"body", header_version)
        assert position == end == len(data)
        client_id = expected.get("client_id")
        assert header == RequestHeader(
            expected["request_api_key"], expected["request_api_version"], expected["correlation_id"], client_id, header_version
        )
        for cut in range(len(data)):
            with pytest.raises(MalformedFrame):
                decode_request_header(data[:cut], header_version)


@pytest.mark.parametrize("bad", ["fffe", "0005 6162", "0002 c328"])
def test_request_header_with_a_bad_client_id_is_malformed(bad: str) -> None:
    frame = bytes.fromhex("0003 000c 00000007" + bad.replace(" ", "") + "00")
    with pytest.raises(MalformedFrame):
        decode_request_header(frame, 2)


def test_request_frame_round_trip() -> None:
    frame = encode_request(ApiKey.HEARTBEAT, 4, 9, {"group_id": "g", "generation_id": 3, "member_id": "m"}, "c")
    assert frame == bytes.fromhex("00000016 000c 0004 00000009 0001 63 00  02 67 00000003 02 6d 00 00".replace(" ", ""))
    header, body = decode_request(frame[4:], request_header_version(ApiKey.HEARTBEAT, 4))
    assert header == RequestHeader(ApiKey.HEARTBEAT, 4, 9, "c", 2)
    assert body == {"group_id": "g", "generation_id": 3, "member_id": "m", "group_instance_id": None}


def test_response_frames() -> None:
    # Heartbeat v4 is flexible: response header v1 ends with an empty tagged-field section.
    assert encode_response(ApiKey.HEARTBEAT, 4, 7, {"throttle_time_ms": 1, "error_code": 0}) == bytes.fromhex(
        "0000000c 00000007 00  00000001 0000 00".replace(" ", "")
    )
    assert encode_response(ApiKey.HEARTBEAT, 0, -1, {"error_code": 27}) == bytes.fromhex("00000006 ffffffff 001b")
    # ApiVersions answers with header v0 at every version (KIP-511).
    assert encode_response(ApiKey.API_VERSIONS, 3, 1, {"error_code": 35, "api_keys": [], "throttle_time_ms": 0}) == bytes.fromhex(
        "0000000c 00000001 0023 01 00000000 00".replace(" ", "")
    )


class _Region:
    length = 1000


def test_response_parts_count_file_regions_in_the_frame_size() -> None:
    region = _Region()
    body = {
        "responses": [
            {"topic": "t", "partitions": [{"partition_index": 0, "records": Spliced([b"ab", region, b"c"], 1003)}]}
        ]
    }
    parts = encode_response_parts(ApiKey.FETCH, 4, 5, body)
    assert parts[2] is region and len(parts) == 4
    assert int.from_bytes(parts[0][:4], "big") == len(parts[0]) - 4 + len(parts[1]) + 1000 + len(parts[3])
    assert parts[0][4:] == bytes.fromhex("00000005")
    assert parts[1].endswith(bytes.fromhex("000003eb") + b"ab") and parts[3] == b"c"
