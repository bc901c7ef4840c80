"""wire.specialised's codecs read and write exactly what the generated codec reads and writes,
for the shapes they take and the ones they leave to it, and fail where it fails."""

from __future__ import annotations

import random
from typing import Any

import pytest

from ottla.wire.errors import MalformedFrame
from ottla.wire.protocol import request_decoder, request_struct, response_encoder, response_struct
from ottla.wire.records import Record, build_batch
from ottla.wire.schema import decode, encode

PRODUCE = 0
# The versions with a specialised encoder, and the ones around them without.
VERSIONS = range(8, 14)


def _partition(rng: random.Random) -> dict[str, Any]:
    partition: dict[str, Any] = {
        "index": rng.choice([0, 1, 7, 2**31 - 1]),
        "error_code": rng.choice([0, 0, 0, 6, 87]),
        "base_offset": rng.choice([-1, 0, 1, 2**40, 2**63 - 1]),
        "log_append_time_ms": rng.choice([-1, 1_700_000_000_000]),
        "log_start_offset": rng.choice([-1, 0, 12345]),
    }
    if rng.random() < 0.15:
        del partition[rng.choice(list(partition))]  # left to its default
    if rng.random() < 0.1:
        partition["error_message"] = rng.choice([None, "", "too large"])
    if rng.random() < 0.1:
        partition["record_errors"] = rng.choice([[], [{"batch_index": 3, "batch_index_error_message": "bad"}]])
    if rng.random() < 0.1:
        partition["current_leader"] = rng.choice([{}, {"leader_id": 2, "leader_epoch": 5}])
    return partition


def _answer(rng: random.Random) -> dict[str, Any]:
    topics = [
        {
            "name": rng.choice(["t", "", "ü-topic", "x" * 126, "y" * 127, "z" * 300]),
            "topic_id": bytes(16),
            "partition_responses": [_partition(rng) for _ in range(rng.choice([1, 1, 1, 0, 2]))],
        }
        for _ in range(rng.choice([1, 1, 1, 0, 2]))
    ]
    answer: dict[str, Any] = {"responses": topics, "throttle_time_ms": rng.choice([0, 0, 250, 2**31 - 1])}
    if rng.random() < 0.1:
        del answer["throttle_time_ms"]
    if rng.random() < 0.1:
        answer["node_endpoints"] = rng.choice([[], [{"node_id": 2, "host": "h", "port": 9092, "rack": None}]])
    return answer


@pytest.mark.parametrize("version", VERSIONS)
def test_produce_answers_are_the_generated_bytes(version: int) -> None:
    rng = random.Random(version)
    encoder = response_encoder(PRODUCE, version)
    struct = response_struct(PRODUCE, version)
    for _ in range(3000):
        answer = _answer(rng)
        assert encoder(answer) == encode(struct, answer), answer


@pytest.mark.parametrize("version", VERSIONS)
def test_produce_answers_that_cannot_be_encoded_fail_as_the_generated_codec_does(version: int) -> None:
    encoder = response_encoder(PRODUCE, version)
    struct = response_struct(PRODUCE, version)
    good = {"index": 0, "error_code": 0, "base_offset": 5, "log_append_time_ms": -1, "log_start_offset": 0}
    for bad in ({"base_offset": 2**63}, {"index": "0"}, {"error_code": None}):
        answer = {"responses": [{"name": "t", "partition_responses": [{**good, **bad}]}], "throttle_time_ms": 0}
        with pytest.raises(Exception) as generated:
            encode(struct, answer)
        with pytest.raises(generated.type):
            encoder(answer)
    if version < 13:  # v13 names topics by id alone
        answer = {"responses": [{"name": b"bytes", "partition_responses": [good]}], "throttle_time_ms": 0}
        with pytest.raises(Exception) as generated:
            encode(struct, answer)
        with pytest.raises(generated.type):
            encoder(answer)


def _request(rng: random.Random, version: int) -> dict[str, Any]:
    def partition() -> dict[str, Any]:
        size = rng.choice([0, 20, 100, 126, 127, 128, 1000, 16_300, 16_400])
        records = None if rng.random() < 0.05 else build_batch([Record(0, 1, None, bytes(size))])
        return {"index": rng.choice([0, 3, 2**31 - 1]), "records": records}

    def topic() -> dict[str, Any]:
        named = {"topic_id": bytes(range(16))} if version >= 13 else {"name": rng.choice(["t", "", "ü", "n" * 126, "n" * 127, "n" * 200])}
        return {**named, "partition_data": [partition() for _ in range(rng.choice([1, 1, 1, 0, 2]))]}

    return {
        "transactional_id": rng.choice([None, None, None, "", "txn"]),
        "acks": rng.choice([-1, 0, 1, 7]),
        "timeout_ms": rng.choice([0, 30_000, -5]),
        "topic_data": [topic() for _ in range(rng.choice([1, 1, 1, 0, 2]))],
    }


def _read(decoder: Any, data: bytes) -> Any:
    """What a decoder makes of `data`: the value (records as bytes) and where it stopped, or the refusal."""
    try:
        body, end = decoder(data, 0)
    except MalformedFrame:
        return "malformed"
    for topic in body["topic_data"]:
        for partition in topic["partition_data"]:
            if partition["records"] is not None:
                partition["records"] = bytes(partition["records"])
    return body, end


@pytest.mark.parametrize("version", VERSIONS)
def test_produce_requests_read_as_the_generated_codec_reads_them(version: int) -> None:
    rng = random.Random(version)
    decoder = request_decoder(PRODUCE, version)
    struct = request_struct(PRODUCE, version)

    def generic(data: bytes, pos: int) -> Any:
        return decode(struct, data, pos)

    for _ in range(300):
        data = encode(struct, _request(rng, version)) + rng.choice([b"", b"\x00", b"trailing"])
        assert _read(decoder, data) == _read(generic, data)
        for _ in range(20):
            cut = bytearray(data[: rng.randrange(len(data) + 1)])
            if cut and rng.random() < 0.5:
                cut[rng.randrange(len(cut))] = rng.choice([0, 1, 2, 3, 127, 128, 255])
            assert _read(decoder, bytes(cut)) == _read(generic, bytes(cut))
