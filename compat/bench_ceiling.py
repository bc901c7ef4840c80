"""The ceiling any broker faces here: a minimal Kafka responder for compat.bench's clients.

compat.bench runs its librdkafka workloads against this responder in the same run as against
Ottla, and prints each Ottla figure as a share of the responder's. Unlike the machine limits
(compat.bench_limits), these figures include the client, which shares the machine's cores, and
the least protocol work a broker cannot skip. The responder does that and nothing more:

- ApiVersions; Metadata naming itself as the one broker and the leader of every partition of
  the topics asked for (created on first sight with one partition; CreateTopics only records
  the partition count); FindCoordinator naming itself; DeleteTopics closing and removing the
  topic's files.
- Produce appends each partition's batches to one file (page cache, no fsync) and answers unless
  acks=0. It sets each batch's base offset on the way, outside the CRC as Kafka's LogValidator
  does, since consumers check offsets; nothing is validated and no index is written.
- Fetch answers from the batch holding the fetch offset, whole batches up to the partition's
  limit, sent from the file with sendfile. Finding nothing, it waits for an append or
  max_wait_ms. ListOffsets answers 0 for earliest and the next offset for anything else.

Each partition keeps, in memory, the base offset and file position of its batches: the least
a fetch by offset needs. Leader epochs are unknown (-1), so clients skip offset validation
(KIP-320). Requests on a connection are answered one at a time, in order, as Kafka does.

Runs as its own process (`python -m compat.bench_ceiling DIR`, which prints its port and
serves until stdin closes), as the broker does, so client and responder each get a core.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import struct
import sys
import traceback
from bisect import bisect_right
from collections import deque
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from compat.bench_limits import server_process
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.framing import FrameReader
from ottla.wire.header import peek_api, request_header_version
from ottla.wire.primitives import Spliced
from ottla.wire.protocol import decode_request, encode_response, encode_response_parts

NODE_ID = 1
MAX_FRAME = 100 * 1024 * 1024
# The versions served; the highest of each are those Ottla serves, so librdkafka picks the same.
# The lowest are where the shapes handled here begin (record batches v2 from Produce v3 and
# Fetch v4).
VERSIONS: dict[ApiKey, tuple[int, int]] = {
    ApiKey.PRODUCE: (3, 11),
    ApiKey.FETCH: (4, 17),
    ApiKey.LIST_OFFSETS: (1, 10),
    ApiKey.METADATA: (1, 12),
    ApiKey.API_VERSIONS: (0, 4),
    ApiKey.CREATE_TOPICS: (2, 7),
    ApiKey.FIND_COORDINATOR: (0, 6),
    ApiKey.DELETE_TOPICS: (1, 5),
}
EARLIEST_TIMESTAMP = -2

_INT32 = struct.Struct(">i")
_INT64 = struct.Struct(">q")
# Record batch v2: baseOffset int64, batchLength int32 (bytes after it), ..., lastOffsetDelta
# int32 at byte 23 (DefaultRecordBatch.java).
_BATCH_LENGTH_AT, _LAST_OFFSET_DELTA_AT, _LOG_OVERHEAD = 8, 23, 12

Reply = bytes | Coroutine[Any, Any, list[Any]] | None


@dataclass(slots=True, frozen=True)
class FileRegion:
    """Bytes of a partition's file that a Fetch response carries, sent with sendfile."""

    file: BinaryIO
    offset: int
    length: int


class PartitionLog:
    """One partition's batches, appended to one file.

    Invariant: `bases[i]` is the offset of the i-th batch, `positions[i]` where it starts in
    the file, both ascending; `size` is the file's length and `next_offset` the offset after
    the last batch.
    """

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND)
        self.reader = open(path, "rb")  # every Fetch sends from it, for as long as the process serves
        self.bases: list[int] = []
        self.positions: list[int] = []
        self.size = 0
        self.next_offset = 0
        self.waiters: set[asyncio.Future[None]] = set()

    def append(self, records: bytes | memoryview) -> int:
        """Writes the batches with their base offsets set; returns the first one's."""
        first = self.next_offset
        pieces: list[bytes | memoryview] = []
        position = 0
        while position < len(records):
            (length,) = _INT32.unpack_from(records, position + _BATCH_LENGTH_AT)
            (last_offset_delta,) = _INT32.unpack_from(records, position + _LAST_OFFSET_DELTA_AT)
            end = position + _LOG_OVERHEAD + length
            self.bases.append(self.next_offset)
            self.positions.append(self.size + position)
            pieces += (_INT64.pack(self.next_offset), memoryview(records)[position + _BATCH_LENGTH_AT : end])
            self.next_offset += last_offset_delta + 1
            position = end
        written = os.writev(self.fd, pieces)
        if written != position:
            raise OSError(f"wrote {written} of {position} bytes")
        self.size += position
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(None)
        self.waiters.clear()
        return first

    def close(self) -> None:
        os.close(self.fd)
        self.reader.close()

    def read(self, offset: int, max_bytes: int) -> FileRegion | None:
        """Whole batches from the one holding `offset`, at most `max_bytes` unless the first
        alone is larger (KIP-74: a consumer must always make progress)."""
        if offset >= self.next_offset or not self.bases:
            return None
        first = max(0, bisect_right(self.bases, offset) - 1)
        start = self.positions[first]
        limit = start + max_bytes
        if self.size <= limit:
            end = self.size
        else:
            last = bisect_right(self.positions, limit) - 1  # the last batch starting within the limit
            end = self.positions[last] if last > first else (self.positions[first + 1] if first + 1 < len(self.positions) else self.size)
        return FileRegion(self.reader, start, end - start)


def topic_id(name: str) -> bytes:
    """A stable 16-byte topic id per name (Fetch v13+ names topics by id, KIP-516)."""
    return hashlib.md5(name.encode()).digest()


class Responder:
    """The topics, their partition files, and an answer for each request frame."""

    def __init__(self, directory: Path, host: str, port: int) -> None:
        self.directory = directory
        self.host = host
        self.port = port
        self.partition_counts: dict[str, int] = {}
        self.names: dict[bytes, str] = {}
        self.logs: dict[tuple[str, int], PartitionLog] = {}

    def topic(self, name: str, partitions: int = 1) -> int:
        if name not in self.partition_counts:
            self.partition_counts[name] = partitions
            self.names[topic_id(name)] = name
        return self.partition_counts[name]

    def log(self, name: str, partition: int) -> PartitionLog:
        log = self.logs.get((name, partition))
        if log is None:
            log = self.logs[name, partition] = PartitionLog(self.directory / f"{name}-{partition}.log")
        return log

    def answer(self, frame: bytes) -> Reply:
        """The response frame, a coroutine giving its parts (Fetch), or None (acks=0)."""
        api_key, version, _ = peek_api(frame)
        low, high = VERSIONS.get(ApiKey(api_key), (0, -1))
        if api_key == ApiKey.API_VERSIONS and version > high:
            # KIP-511: a newer client (Kafka's Java client asks v5) learns the versions from a v0 answer.
            keys = [{"api_key": key, "min_version": low, "max_version": high} for key, (low, high) in VERSIONS.items()]
            return encode_response(ApiKey.API_VERSIONS, 0, peek_api(frame)[2], {"error_code": ErrorCode.UNSUPPORTED_VERSION, "api_keys": keys})
        if not low <= version <= high:
            raise ValueError(f"{ApiKey(api_key).name} v{version} is not served")
        header, body = decode_request(frame, request_header_version(api_key, version))
        handler = _HANDLERS[ApiKey(api_key)]
        return handler(self, version, header.correlation_id, body)

    def api_versions(self, version: int, correlation_id: int, body: dict[str, Any]) -> Reply:
        keys = [{"api_key": key, "min_version": low, "max_version": high} for key, (low, high) in VERSIONS.items()]
        return encode_response(ApiKey.API_VERSIONS, version, correlation_id, {"error_code": 0, "api_keys": keys})

    def metadata(self, version: int, correlation_id: int, body: dict[str, Any]) -> Reply:
        names = list(self.partition_counts) if body["topics"] is None else [t["name"] for t in body["topics"]]
        topics = [
            {
                "name": name, "topic_id": topic_id(name),
                "partitions": [
                    {"partition_index": index, "leader_id": NODE_ID, "leader_epoch": -1, "replica_nodes": [NODE_ID], "isr_nodes": [NODE_ID]}
                    for index in range(self.topic(name))
                ],
            }
            for name in names
        ]
        brokers = [{"node_id": NODE_ID, "host": self.host, "port": self.port}]
        response = {"brokers": brokers, "cluster_id": "bench-ceiling", "controller_id": NODE_ID, "topics": topics}
        return encode_response(ApiKey.METADATA, version, correlation_id, response)

    def create_topics(self, version: int, correlation_id: int, body: dict[str, Any]) -> Reply:
        topics = []
        for topic in body["topics"]:
            name, partitions = topic["name"], max(1, topic["num_partitions"])
            error = ErrorCode.TOPIC_ALREADY_EXISTS if name in self.partition_counts else ErrorCode.NONE
            topics.append({"name": name, "topic_id": topic_id(name), "error_code": error, "num_partitions": self.topic(name, partitions), "replication_factor": 1})
        return encode_response(ApiKey.CREATE_TOPICS, version, correlation_id, {"topics": topics})

    def delete_topics(self, version: int, correlation_id: int, body: dict[str, Any]) -> Reply:
        """Forgets each topic and removes its files: compat.bench deletes each step's topics once
        read, on every broker, so that a run's disk use is a step's, not the run's."""
        responses = []
        for name in body["topic_names"]:
            error = ErrorCode.NONE if self.partition_counts.pop(name, None) is not None else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            self.names.pop(topic_id(name), None)
            for key in [key for key in self.logs if key[0] == name]:
                self.logs.pop(key).close()
                (self.directory / f"{name}-{key[1]}.log").unlink()
            responses.append({"name": name, "error_code": error})
        return encode_response(ApiKey.DELETE_TOPICS, version, correlation_id, {"responses": responses})

    def find_coordinator(self, version: int, correlation_id: int, body: dict[str, Any]) -> Reply:
        itself = {"node_id": NODE_ID, "host": self.host, "port": self.port}
        # v4 (KIP-699) asks for a list of keys; earlier versions for one.
        response = {"coordinators": [{"key": key, **itself} for key in body["coordinator_keys"]]} if version >= 4 else itself
        return encode_response(ApiKey.FIND_COORDINATOR, version, correlation_id, response)

    def produce(self, version: int, correlation_id: int, body: dict[str, Any]) -> Reply:
        responses = []
        for topic in body["topic_data"]:
            name = topic["name"]
            self.topic(name)
            partitions = [{"index": p["index"], "base_offset": self.log(name, p["index"]).append(p["records"] or b"")} for p in topic["partition_data"]]
            responses.append({"name": name, "partition_responses": partitions})
        if body["acks"] == 0:
            return None
        return encode_response(ApiKey.PRODUCE, version, correlation_id, {"responses": responses})

    def list_offsets(self, version: int, correlation_id: int, body: dict[str, Any]) -> Reply:
        topics = []
        for topic in body["topics"]:
            name = topic["name"]
            self.topic(name)
            partitions = [
                {"partition_index": p["partition_index"], "offset": 0 if p["timestamp"] == EARLIEST_TIMESTAMP else self.log(name, p["partition_index"]).next_offset}
                for p in topic["partitions"]
            ]
            topics.append({"name": name, "partitions": partitions})
        return encode_response(ApiKey.LIST_OFFSETS, version, correlation_id, {"topics": topics})

    async def fetch(self, version: int, correlation_id: int, body: dict[str, Any]) -> list[Any]:
        responses, found = self._read(body)
        if found < body["min_bytes"] and body["max_wait_ms"] > 0:
            await self._wait(body, body["max_wait_ms"] / 1000)
            responses, found = self._read(body)
        return encode_response_parts(ApiKey.FETCH, version, correlation_id, {"responses": responses})

    def _requested(self, body: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str | None]]:
        for topic in body["topics"]:
            yield topic, topic.get("topic") or self.names.get(topic.get("topic_id", b""))

    def _read(self, body: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
        budget = body["max_bytes"]
        responses = []
        for topic, name in self._requested(body):
            partitions = []
            for p in topic["partitions"]:
                index = p["partition"]
                if name is None or index >= self.partition_counts[name]:
                    partitions.append({"partition_index": index, "error_code": ErrorCode.UNKNOWN_TOPIC_ID if name is None else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "records": b""})
                    continue
                log = self.log(name, index)
                region = log.read(p["fetch_offset"], min(budget, p["partition_max_bytes"])) if budget > 0 else None
                records: bytes | Spliced = b""
                if region is not None:
                    budget -= region.length
                    records = Spliced([region], region.length)
                partitions.append({"partition_index": index, "high_watermark": log.next_offset, "last_stable_offset": log.next_offset, "log_start_offset": 0, "records": records})
            responses.append({"topic": topic.get("topic", name), "topic_id": topic.get("topic_id", b""), "partitions": partitions})
        return responses, body["max_bytes"] - budget

    async def _wait(self, body: dict[str, Any], seconds: float) -> None:
        """Until an append to any partition fetched, or `seconds`."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        logs = [self.log(name, p["partition"]) for topic, name in self._requested(body) if name is not None for p in topic["partitions"] if p["partition"] < self.partition_counts[name]]
        for log in logs:
            log.waiters.add(waiter)
        timer = asyncio.get_running_loop().call_later(seconds, _settle, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            for log in logs:
                log.waiters.discard(waiter)


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


_HANDLERS = {
    ApiKey.API_VERSIONS: Responder.api_versions,
    ApiKey.METADATA: Responder.metadata,
    ApiKey.CREATE_TOPICS: Responder.create_topics,
    ApiKey.FIND_COORDINATOR: Responder.find_coordinator,
    ApiKey.DELETE_TOPICS: Responder.delete_topics,
    ApiKey.PRODUCE: Responder.produce,
    ApiKey.LIST_OFFSETS: Responder.list_offsets,
    ApiKey.FETCH: Responder.fetch,
}


class Connection(asyncio.BufferedProtocol):
    """One client socket. Frames are answered in order; while a Fetch waits or is being sent,
    later frames queue behind it. Anything the responder cannot answer closes the connection."""

    def __init__(self, responder: Responder) -> None:
        self.responder = responder
        self.frames = FrameReader(MAX_FRAME)
        self.pending: deque[bytes] = deque()
        self.sending: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        # A Fetch response goes out in several writes around its sendfile; with Nagle on, the
        # last waits for the client's delayed ACK (40 ms). Kafka's SocketServer sets it too;
        # asyncio does only for sockets whose proto says TCP, which accepted ones may not.
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.frames.get_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        self.frames.buffer_updated(nbytes)
        while (frame := self.frames.next_frame()) is not None:
            self.pending.append(frame)
        self._answer_pending()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.sending is not None:
            self.sending.cancel()

    def _answer_pending(self) -> None:
        while self.pending and self.sending is None and not self.transport.is_closing():
            try:
                reply = self.responder.answer(self.pending.popleft())
            except Exception:
                self._fail()
                return
            if isinstance(reply, bytes):
                self.transport.write(reply)
            elif reply is not None:
                self.sending = asyncio.ensure_future(self._send(reply))

    async def _send(self, reply: Coroutine[Any, Any, list[Any]]) -> None:
        loop = asyncio.get_running_loop()
        try:
            for part in await reply:
                if isinstance(part, FileRegion):
                    # No fallback: the ceiling is measured with sendfile or not at all.
                    await loop.sendfile(self.transport, part.file, part.offset, part.length, fallback=False)
                else:
                    self.transport.write(part)
        except asyncio.CancelledError:
            raise
        except ConnectionError:
            self.transport.close()  # the client hung up mid-answer, as consumers at their end do
            return
        except Exception:
            self._fail()
            return
        self.sending = None
        self._answer_pending()

    def _fail(self) -> None:
        """Report what went wrong and close, unless the client had gone already."""
        if not self.transport.is_closing():
            traceback.print_exc(file=sys.stderr)
            self.transport.close()


@contextmanager
def responder(directory: Path, cpus: str | None = None) -> Iterator[tuple[str, int]]:
    """A responder process on a free loopback port, keeping its partition files in `directory`;
    pinned to `cpus` (taskset's list) when given."""
    directory.mkdir(parents=True, exist_ok=True)
    with server_process("compat.bench_ceiling", str(directory), cpus=cpus) as address:
        yield address


async def _serve(directory: Path) -> None:
    loop = asyncio.get_running_loop()
    sock = socket.create_server(("127.0.0.1", 0))
    host, port = sock.getsockname()[:2]
    state = Responder(directory, host, port)
    server = await loop.create_server(lambda: Connection(state), sock=sock)
    print(port, flush=True)
    # Serve until the parent closes our stdin (or dies).
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    asyncio.run(_serve(Path(sys.argv[1])))
