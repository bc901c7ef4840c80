"""Codec cost of the hot requests and responses, beside a loopback round trip.

    python -m compat.bench_codec

For each message the broker decodes or encodes on the hot path, the cost through the
construct structs as interpreted, through the code wire.compiler generates from them
(what the broker runs), and through kafka-python's codec for comparison; then whole
frames as the broker handles them (request header and response framing included).
The yardstick, measured in the same run, is the round trip of a plain asyncio
ping-pong over loopback, client and echo server in separate processes as a client
and the broker are. Codec figures are this process's CPU time, best of several runs;
the round trip is wall time, which a loaded machine stretches: the load is printed.
"""

from __future__ import annotations

import asyncio
import os
import platform
import subprocess
import sys
import time
import timeit
from dataclasses import dataclass
from typing import Any, Callable

from kafka.protocol.consumer import FetchRequest, FetchResponse
from kafka.protocol.metadata import MetadataRequest, MetadataResponse
from kafka.protocol.producer import ProduceRequest, ProduceResponse

from ottla.wire.api import ApiKey
from ottla.wire.header import request_header_version
from ottla.wire.primitives import Spliced
from ottla.wire.protocol import decode_request, encode_request, encode_response, encode_response_parts
from ottla.wire.schema import (
    decode,
    decode_interpreted,
    encode,
    encode_interpreted,
    encode_parts,
    encode_parts_interpreted,
    message_struct,
)

TOPIC_ID = bytes(range(16))

# One topic, one partition, a 100-byte batch: a single-record produce (STYLE.md §3).
PRODUCE = {
    "transactional_id": None,
    "acks": 1,
    "timeout_ms": 30000,
    "topic_data": [{"name": "my-topic", "partition_data": [{"index": 0, "records": bytes(100)}]}],
}
PRODUCE_RESPONSE = {
    "responses": [
        {
            "name": "my-topic",
            "partition_responses": [
                {"index": 0, "error_code": 0, "base_offset": 41, "log_append_time_ms": -1, "log_start_offset": 0}
            ],
        }
    ],
    "throttle_time_ms": 0,
}
# librdkafka's steady-state fetch: one topic by id, one partition, no session.
FETCH = {
    "max_wait_ms": 500,
    "min_bytes": 1,
    "max_bytes": 52428800,
    "isolation_level": 0,
    "session_id": 0,
    "session_epoch": -1,
    "topics": [
        {
            "topic_id": TOPIC_ID,
            "partitions": [
                {
                    "partition": 0,
                    "current_leader_epoch": 0,
                    "fetch_offset": 1000,
                    "last_fetched_epoch": -1,
                    "log_start_offset": -1,
                    "partition_max_bytes": 1048576,
                }
            ],
        }
    ],
    "forgotten_topics_data": [],
    "rack_id": "",
}


class _Region:
    """A stand-in for storage's FileRegion: 64 KiB of segment the broker will sendfile."""

    length = 65536


def _fetch_response(records: Any) -> dict[str, Any]:
    return {
        "throttle_time_ms": 0,
        "error_code": 0,
        "session_id": 0,
        "responses": [
            {
                "topic_id": TOPIC_ID,
                "partitions": [
                    {
                        "partition_index": 0,
                        "error_code": 0,
                        "high_watermark": 2000,
                        "last_stable_offset": 2000,
                        "log_start_offset": 0,
                        "aborted_transactions": None,
                        "preferred_read_replica": -1,
                        "records": records,
                    }
                ],
            }
        ],
    }


METADATA = {
    "topics": [{"topic_id": bytes(16), "name": "my-topic"}],
    "allow_auto_topic_creation": True,
    "include_topic_authorized_operations": False,
}
# One broker, one topic of three partitions: what a client asks for on every refresh.
METADATA_RESPONSE = {
    "throttle_time_ms": 0,
    "brokers": [{"node_id": 1, "host": "localhost", "port": 9092, "rack": None}],
    "cluster_id": "ottla-cluster",
    "controller_id": 1,
    "topics": [
        {
            "error_code": 0,
            "name": "my-topic",
            "topic_id": TOPIC_ID,
            "is_internal": False,
            "partitions": [
                {
                    "error_code": 0,
                    "partition_index": p,
                    "leader_id": 1,
                    "leader_epoch": 0,
                    "replica_nodes": [1],
                    "isr_nodes": [1],
                    "offline_replicas": [],
                }
                for p in range(3)
            ],
            "topic_authorized_operations": -(2**31),
        }
    ],
}


def best_us(*stmts: Callable[[], Any]) -> list[float]:
    """Microseconds of CPU per call of each statement: the best of seven runs of ~0.1 s,
    interleaved. CPU time of this process, not wall time, so that the time other
    processes hold the CPU is not counted; interleaved, so that what they do to caches
    falls on all statements alike."""
    timers = [timeit.Timer(stmt, timer=time.process_time) for stmt in stmts]
    numbers = [max(timer.autorange()[0] // 2, 1) for timer in timers]  # autorange: >= 0.2 s
    best = [float("inf")] * len(stmts)
    for _ in range(7):
        for index, (timer, number) in enumerate(zip(timers, numbers)):
            best[index] = min(best[index], timer.timeit(number) / number * 1e6)
    return best


@dataclass
class Row:
    label: str
    size: int
    interpreted: float | None
    compiled: float
    kafka_python: float | None


def _parse_row(name: str, version: int, value: dict[str, Any], theirs: Any) -> Row:
    struct = message_struct(name, version)
    data = encode(struct, value)
    interpreted, compiled, kafka_python = best_us(
        lambda: decode_interpreted(struct, data),
        lambda: decode(struct, data),
        lambda: theirs.decode(data, version=version),
    )
    return Row(f"{name} v{version} parse", len(data), interpreted, compiled, kafka_python)


def _kafka_python_build(theirs: Any, data: bytes, version: int) -> Callable[[], Any]:
    parsed = theirs.decode(data, version=version)
    parsed._header = None  # decode() leaves it unset and encode() reads it
    return lambda: parsed.encode(version=version)


def _build_row(name: str, version: int, value: dict[str, Any], theirs: Any) -> Row:
    struct = message_struct(name, version)
    data = encode(struct, value)
    interpreted, compiled, kafka_python = best_us(
        lambda: encode_interpreted(struct, value),
        lambda: encode(struct, value),
        _kafka_python_build(theirs, data, version),
    )
    return Row(f"{name} v{version} build", len(data), interpreted, compiled, kafka_python)


def _fetch_response_row(version: int) -> Row:
    """Built as the broker builds it: records as a file region, kept apart (encode_parts)."""
    struct = message_struct("FetchResponse", version)
    spliced = _fetch_response(Spliced([_Region()], _Region.length))
    plain = encode(struct, _fetch_response(bytes(_Region.length)))
    interpreted, compiled, kafka_python = best_us(
        lambda: encode_parts_interpreted(struct, spliced),
        lambda: encode_parts(struct, spliced),
        _kafka_python_build(FetchResponse, plain, version),
    )
    return Row(f"FetchResponse v{version} build (64 KiB by reference)", len(plain) - _Region.length, interpreted, compiled, kafka_python)


def _frame_rows() -> list[Row]:
    """Whole frames, the broker's way: request header + body; body + response framing."""
    rows = []
    for key, version, request, response in (
        (ApiKey.PRODUCE, 9, PRODUCE, PRODUCE_RESPONSE),
        (ApiKey.METADATA, 12, METADATA, METADATA_RESPONSE),
    ):
        frame = encode_request(key, version, 7, request, "rdkafka")[4:]
        header_version = request_header_version(key, version)
        name = key.name.capitalize()
        (decoded,) = best_us(lambda: decode_request(frame, header_version))
        rows.append(Row(f"{name} v{version} request frame: header + body", len(frame), None, decoded, None))
        size = len(encode_response(key, version, 7, response))
        (encoded,) = best_us(lambda: encode_response(key, version, 7, response))
        rows.append(Row(f"{name} v{version} response frame: body + framing", size, None, encoded, None))
    fetch = _fetch_response(Spliced([_Region()], _Region.length))
    size = sum(len(part) for part in encode_response_parts(ApiKey.FETCH, 16, 7, fetch) if isinstance(part, bytes))
    (encoded,) = best_us(lambda: encode_response_parts(ApiKey.FETCH, 16, 7, fetch))
    rows.append(Row("Fetch v16 response frame: parts + framing", size, None, encoded, None))
    return rows


# The yardstick: a plain asyncio echo server in its own process, and a client that sends
# a produce-sized frame and waits for it to come back.


class _Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[attr-defined]


async def _serve_echo() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Echo, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await loop.run_in_executor(None, sys.stdin.read)  # serve until the parent closes stdin
    server.close()


class _PingPong(asyncio.Protocol):
    def __init__(self, message: bytes, count: int, done: asyncio.Future[float]) -> None:
        self.message, self.left, self.done = message, count, done
        self.pending = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.started = time.perf_counter()
        self._send()

    def _send(self) -> None:
        self.pending = len(self.message)
        self.transport.write(self.message)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.pending -= len(data)
        if self.pending:
            return
        self.left -= 1
        if self.left:
            self._send()
        else:
            self.done.set_result(time.perf_counter() - self.started)
            self.transport.close()


async def _ping_pong(port: int, message: bytes, count: int) -> float:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[float] = loop.create_future()
    await loop.create_connection(lambda: _PingPong(message, count, done), "127.0.0.1", port)
    return await done


def round_trip_us(message: bytes, count: int = 5000, runs: int = 5) -> float:
    server = subprocess.Popen([sys.executable, "-m", "compat.bench_codec", "--echo"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        return min(asyncio.run(_ping_pong(port, message, count)) for _ in range(runs)) / count * 1e6
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(10)


def _cell(value: float | None) -> str:
    return f"{value:8.2f}" if value is not None else " " * 8


def main() -> None:
    started = time.perf_counter()
    print(f"CPython {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    request = encode_request(ApiKey.PRODUCE, 9, 7, PRODUCE, "rdkafka")
    rtt = round_trip_us(request)
    print(f"asyncio ping-pong over loopback, {len(request)}-byte frames: {rtt:.1f} us per round trip\n")
    rows = [
        _parse_row("ProduceRequest", 3, PRODUCE, ProduceRequest),
        _parse_row("ProduceRequest", 9, PRODUCE, ProduceRequest),
        _build_row("ProduceResponse", 9, PRODUCE_RESPONSE, ProduceResponse),
        _parse_row("FetchRequest", 16, FETCH, FetchRequest),
        _fetch_response_row(16),
        _parse_row("MetadataRequest", 12, METADATA, MetadataRequest),
        _build_row("MetadataResponse", 12, METADATA_RESPONSE, MetadataResponse),
        *_frame_rows(),
    ]
    width = max(len(row.label) for row in rows)
    print("bytes: encoded size, records sent by reference left out")
    print(f"{'us per message':{width}}  bytes  interpr. compiled  speedup  kafka-py  compiled/round trip")
    for row in rows:
        speedup = f"{row.interpreted / row.compiled:6.1f}x" if row.interpreted is not None else " " * 7
        print(
            f"{row.label:{width}}  {row.size:5d}  {_cell(row.interpreted)} {_cell(row.compiled)}  {speedup}  "
            f"{_cell(row.kafka_python)}  {row.compiled / rtt:6.1%}"
        )
    print(f"\nran {time.perf_counter() - started:.0f} s; rerun: python -m compat.bench_codec")


if __name__ == "__main__":
    if sys.argv[1:] == ["--echo"]:
        asyncio.run(_serve_echo())
    else:
        main()
