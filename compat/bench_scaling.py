"""The brokers' own scaling from one core to two, driven by a load generator too lean to bound it.

    python -m compat.bench_scaling [--brokers ottla,kafka] [--volume-mb N] [--repeat N] [--connections N]
                                   [--in-flight N] [--spy] [--tls] [--json FILE]

compat.bench's librdkafka client spends more CPU per MB than the brokers it drives (compat/SCALING.md),
so pinning a broker to one core or two changes nothing it can see. This generator speaks the
protocol on raw sockets from one thread (epoll, non-blocking sockets) and does next to nothing per
byte:
- produce: one Produce request v9 (acks=1) per partition, built once up front, each carrying one
  uncompressed RecordBatch v2 of 1,000 records of 1 KiB (~1.03 MB, producerId -1, its CRC valid:
  the broker rewrites the base offset, which the CRC does not cover), written to a file and sent
  from it with `sendfile`, `--in-flight` requests pipelined on each of `--connections`
  connections (a partition always on the same one, so its answers come in order); every answer's
  correlation id, error code and base offset is checked, and each partition's offsets must
  advance by one batch an answer;
- consume: Fetch v12 (read_uncommitted, max_wait 10 ms, 1 MiB a partition), one partition a
  request, from offset 0 to the end produce reached, one fetch in flight per partition (so
  partitions / connections in flight a connection), each next offset taken from the answer's
  last whole batch header (its base offset and lastOffsetDelta); only the headers are read,
  the records themselves are discarded in the kernel (`recv` with MSG_TRUNC, no copy: the copy a
  real consumer makes happens on its own machine, not the broker's).
Both brokers, Ottla (started as compat.bench starts it) and the reference Kafka (compat.kafka,
with compat.bench's settings), run for the whole of it; before each run the broker under test is
pinned (`taskset -a -p`, every thread) to CPU 0 (one core) or CPUs 0,1 (two cores), and the
generator is pinned to CPU 1 throughout: on one core the broker has a core and the generator the
other, on two the broker shares CPU 1 with the generator. Brokers start on both CPUs (a JVM sizes
its collector by the CPUs it finds at start), and each gets an untimed produce and consume
(`--warmup-mb`, a JVM compiling itself) before the timed passes.
Each run produces `--volume-mb` to a fresh 8-partition topic, then consumes all of it `--reads`
times (from the page cache: consume is several times faster than produce), after settling the disk (compat.bench's settle_disk) before each; it reports MB/s, the broker's CPU per
MB (all its threads, its busiest and each group of them, to the nanosecond from
/proc/PID/task/TID/schedstat), the generator's (time.process_time), the CPU others took meanwhile (all CPUs'
busy time in /proc/stat less those two: on one core a broker busy well under 1.0 with others
busy was short of its core, not of work), and the 1-minute load average. Before each run it waits
(`--wait-quiet`, up to 300 s) for a second with the machine nearly idle. `--repeat N`
runs N passes over every broker and core count, every other pass in reverse order; the best rate
of each, the spread of its passes, and the scaling (two cores' best over one core's) are printed.
`--brokers ottla-2proc` measures what one process per node would scale to at best: two independent
Ottla processes (each a one-node broker with the same 8-partition topic), the generator's
connections taking them in turn, so each serves half the partitions; their CPU is summed, and
their loops are one thread group. It stands for no product mode (cluster mode's nodes share one
process), only for the design compat/SCALING.md weighs.
`--spy` also samples Ottla under py-spy --native in its one-core produce runs and splits its event
loop's busy samples as compat.bench_cores --spy does, `pwrite`'s share apart (compat/SCALING.md:
on this VM's cold page cache it is most of produce).
`--tls` runs the same workloads over TLS to an SSL listener of Ottla's (`ottla certs`' development
certificates; TLS 1.3): the generator wraps its sockets in Python's ssl, handshakes before the
clock starts, sends produce requests from memory (sendfile cannot encrypt) and reads the records
it discards (MSG_TRUNC cannot skip encrypted bytes: each is decrypted, into a buffer that stays in
cache). With `--spy` its one-core consume runs are sampled too, and the loop's samples in OpenSSL's
encryption and decryption (which CPython runs with the GIL released) are split from its other
_ssl calls and asyncio's sslproto machinery (TLS_KINDS).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import select
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from compat import bench_cores, bench_workloads as work, procfs
from compat.bench import DELETE_AT_ONCE, settle_disk, start_kafka
from compat.harness import OttlaBroker
from ottla.wire.protocol import decode_response, encode_request
from ottla.wire.records import Record, build_batch

PARTITIONS = 8
RECORD_BYTES = 1024
RECORDS_PER_BATCH = 1000  # ~1.03 MB a batch: under message.max.bytes (1 MiB + 12), as librdkafka's batch.size 1 MiB
PRODUCE, FETCH = 0, 1
PRODUCE_VERSION, FETCH_VERSION = 9, 12  # flexible, topics by name: both brokers serve them
GENERATOR_CPU = 1
CORES = {1: "0", 2: "0,1"}
BROKER_CPUS = "0,1"
TIMEOUT = 600.0
QUIET_CORES = 0.2

_SIZE = struct.Struct(">i")
_OFFSET = struct.Struct(">q")
_ERROR = struct.Struct(">h")
# A batch's first 27 bytes: baseOffset, batchLength, partitionLeaderEpoch, magic, crc, attributes, lastOffsetDelta.
_BATCH_HEADER = struct.Struct(">qiibIhi")
_FETCH_SENTINEL = 0x0123456789ABCDEF
_DISCARD_BYTES = 8 << 20
_TLS_DISCARD_BYTES = 256 << 10

# What the parser of a connection's answers asks for next: `count` bytes read into the
# connection's buffer (and the view of them sent back), or discarded (None sent back).
Want = tuple[int, bool]
Parser = Generator[Want, "memoryview | None", None]


class _Connection:
    """One non-blocking broker connection of the generator: what is queued to send (file regions,
    sent with sendfile, or small buffers), and the parser its answers go through in order."""

    def __init__(self, address: str, file: int | None, tls: ssl.SSLContext | None = None) -> None:
        host, port = address.rsplit(":", 1)
        plain = socket.create_connection((host, int(port)))
        plain.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # TLS: the handshake blocking, before the run; then OpenSSL's non-blocking reads and
        # writes, whose "want read" and "want write" stand for EAGAIN.
        self.sock = plain if tls is None else tls.wrap_socket(plain, server_hostname=host)
        self.sock.setblocking(False)
        self.tls = tls is not None
        self.file = file
        self.out: collections.deque[list[Any]] = collections.deque()  # [offset, length] of `file`, or [memoryview]
        self.buffer = bytearray(1 << 16)
        self.view = memoryview(self.buffer)
        # What recv may discard in one call (MSG_TRUNC: the kernel copies nothing into it, so
        # its pages are never touched). Over TLS each record must be decrypted to be read, so
        # what is discarded is read into a small buffer that stays in cache, and dropped.
        self.scratch = bytearray(_TLS_DISCARD_BYTES if self.tls else _DISCARD_BYTES)
        self.writing = False
        self.parser: Parser | None = None
        self.want: Want = (0, False)
        self.filled = 0

    def start(self, parser: Parser) -> None:
        self.parser = parser
        self.want = next(parser)

    def queue_region(self, offset: int, length: int) -> None:
        self.out.append([offset, length])

    def queue_bytes(self, data: bytes) -> None:
        self.out.append([memoryview(data)])

    def flush(self) -> bool:
        """Send what is queued until the socket is full; whether anything is left."""
        out, fd = self.out, self.sock.fileno()
        while out:
            item = out[0]
            try:
                if len(item) == 2:
                    sent = os.sendfile(fd, self.file, item[0], item[1])  # type: ignore[arg-type]
                    item[0] += sent
                    item[1] -= sent
                    done = item[1] == 0
                else:
                    sent = self.sock.send(item[0])
                    item[0] = item[0][sent:]
                    done = not item[0]
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                return True
            if done:
                out.popleft()
        return False

    def receive(self) -> None:
        """Read what the socket holds into the parser, until it would block."""
        assert self.parser is not None
        recv_into, view, buffer, scratch = self.sock.recv_into, self.view, self.buffer, self.scratch
        # Over TLS, every read until "want read" also drains what OpenSSL holds decrypted,
        # which epoll cannot see.
        discard = (lambda n: recv_into(scratch, n)) if self.tls else (lambda n: recv_into(scratch, n, socket.MSG_TRUNC))
        while True:
            count, keep = self.want
            try:
                if keep:
                    if count > len(buffer):
                        self.buffer = buffer = bytearray(count)
                        self.view = view = memoryview(buffer)
                    got = recv_into(view[self.filled:count], count - self.filled)
                else:
                    got = discard(min(count - self.filled, len(scratch)))
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return
            if got == 0:
                raise ConnectionError("the broker closed the connection")
            self.filled += got
            if self.filled == count:
                self.filled = 0
                try:
                    self.want = self.parser.send(view[:count] if keep else None)
                except StopIteration:
                    self.parser = None
                    return

    def close(self) -> None:
        self.sock.close()


def _run(connections: list[_Connection], done: Callable[[], bool]) -> None:
    """Send and receive on every connection until `done()`: one thread, epoll."""
    poller = select.epoll()
    by_fd = {c.sock.fileno(): c for c in connections}
    try:
        for fd, connection in by_fd.items():
            connection.writing = connection.flush()
            poller.register(fd, select.EPOLLIN | (select.EPOLLOUT if connection.writing else 0))
        deadline = time.monotonic() + TIMEOUT
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the generator's run did not end in {TIMEOUT:.0f} s")
            for fd, events in poller.poll(1.0):
                connection = by_fd[fd]
                if events & (select.EPOLLERR | select.EPOLLHUP):
                    raise ConnectionError(f"connection to the broker failed (epoll events {events:#x})")
                if events & select.EPOLLIN:
                    connection.receive()
                writing = connection.flush() if connection.out else False
                if writing != connection.writing:
                    connection.writing = writing
                    poller.modify(fd, select.EPOLLIN | (select.EPOLLOUT if writing else 0))
    finally:
        poller.close()


def _drive(pool: list[_Connection], answers: Callable[[_Connection, list[int]], Parser], moved: Moved) -> Moved:
    """Run `answers` on each connection of `pool`, which owns every len(pool)-th partition,
    until all are done; `moved` with the seconds it took. The connections are closed after."""
    try:
        for number, connection in enumerate(pool):
            connection.start(answers(connection, list(range(number, PARTITIONS, len(pool)))))
        started = time.perf_counter()
        _run(pool, lambda: all(c.parser is None for c in pool))
        moved.seconds = time.perf_counter() - started
    finally:
        for connection in pool:
            connection.close()
    return moved


@dataclass(slots=True)
class Moved:
    """What one workload moved: bytes of whole batches, the wall seconds it took, and the next
    offset of each partition it reached (produce: its log end; consume: where reading stopped)."""

    bytes: int = 0
    seconds: float = 0.0
    answers: int = 0
    offsets: list[int] = field(default_factory=list)


def _batch() -> bytes:
    stamp = int(time.time() * 1000)
    return build_batch([Record(i, stamp, None, os.urandom(RECORD_BYTES)) for i in range(RECORDS_PER_BATCH)])


def produce(
    addresses: list[str], topic: str, *, megabytes: float, connections: int, in_flight: int, directory: Path, tls: ssl.SSLContext | None = None,
) -> Moved:
    """Send at least `megabytes` of 1 KiB records, as batches of RECORDS_PER_BATCH, evenly over the
    partitions of `topic` (empty at the start), and check every answer. The connections take
    `addresses` in turn; with `tls`, over TLS, each request sent from memory (OpenSSL encrypts
    it: no sendfile)."""
    batch = _batch()
    per_partition = max(1, round(megabytes * 1e6 / len(batch) / PARTITIONS))
    name = topic.encode()
    frames, offsets, encoded = [], [], []
    with open(directory / "produce-requests", "w+b") as file:
        for partition in range(PARTITIONS):
            body = {"transactional_id": None, "acks": 1, "timeout_ms": 30_000,
                    "topic_data": [{"name": topic, "partition_data": [{"index": partition, "records": batch}]}]}
            frame = encode_request(PRODUCE, PRODUCE_VERSION, partition, body, client_id="bench-scaling")
            offsets.append(file.tell())
            frames.append(len(frame))
            encoded.append(frame)
            file.write(frame)
        file.flush()
        # Where the answer's error code and base offset sit: correlation id, the header's tagged
        # fields, the responses' count, the topic's name, the partitions' count, the index.
        error_at = 4 + 1 + 1 + 1 + len(name) + 1 + 4
        next_offset = [0] * PARTITIONS
        moved = Moved(offsets=next_offset)
        pool = [_Connection(addresses[number % len(addresses)], file.fileno(), tls) for number in range(connections)]

        def answers(connection: _Connection, owned: list[int]) -> Parser:
            # The connection's requests, its partitions taking turns; in flight, in order.
            requests, pending = iter([p for _ in range(per_partition) for p in owned]), collections.deque[int]()

            def send_next() -> None:
                partition = next(requests, None)
                if partition is not None:
                    pending.append(partition)
                    if connection.tls:
                        connection.queue_bytes(encoded[partition])
                    else:
                        connection.queue_region(offsets[partition], frames[partition])

            for _ in range(in_flight):
                send_next()
            checked = False
            while pending:
                size = _SIZE.unpack((yield 4, True))[0]  # type: ignore[arg-type]
                frame = yield size, True
                assert frame is not None
                partition = pending.popleft()
                if not checked:
                    # The fixed positions read below against the schema's own decoding, once.
                    _, body = decode_response(PRODUCE, PRODUCE_VERSION, bytes(frame))
                    answer = body["responses"][0]["partition_responses"][0]
                    if (answer["error_code"], answer["base_offset"]) != (_ERROR.unpack_from(frame, error_at)[0], _OFFSET.unpack_from(frame, error_at + 2)[0]):
                        raise RuntimeError(f"Produce v{PRODUCE_VERSION} answer not laid out as expected: {body}")
                    checked = True
                correlation_id = _SIZE.unpack_from(frame)[0]
                error_code = _ERROR.unpack_from(frame, error_at)[0]
                base_offset = _OFFSET.unpack_from(frame, error_at + 2)[0]
                if correlation_id != partition or error_code != 0 or base_offset != next_offset[partition]:
                    raise RuntimeError(
                        f"partition {partition}: answer {correlation_id} with error code {error_code}, base offset {base_offset} "
                        f"(expected {next_offset[partition]})"
                    )
                next_offset[partition] += RECORDS_PER_BATCH
                moved.answers += 1
                moved.bytes += len(batch)
                send_next()

        return _drive(pool, answers, moved)


def consume(addresses: list[str], topic: str, *, ends: list[int], connections: int, tls: ssl.SSLContext | None = None) -> Moved:
    """Read every partition of `topic` from offset 0 to its end in `ends`, batch headers only,
    each from the address its connection took in produce (the connections take `addresses` in turn)."""
    name = topic.encode()
    templates, offset_at = [], []
    for partition in range(PARTITIONS):
        body = {
            "replica_id": -1, "max_wait_ms": 10, "min_bytes": 1, "max_bytes": 50 << 20, "isolation_level": 0,
            "session_id": 0, "session_epoch": -1, "forgotten_topics_data": [], "rack_id": "",
            "topics": [{"topic": topic, "partitions": [{
                "partition": partition, "current_leader_epoch": -1, "fetch_offset": _FETCH_SENTINEL, "last_fetched_epoch": -1,
                "log_start_offset": -1, "partition_max_bytes": 1 << 20,
            }]}],
        }
        frame = bytearray(encode_request(FETCH, FETCH_VERSION, partition, body, client_id="bench-scaling"))
        templates.append(frame)
        offset_at.append(frame.index(_OFFSET.pack(_FETCH_SENTINEL)))
    # An answer up to its records' length: correlation id, header tags, throttle_time_ms,
    # error_code, session_id, the responses' count, the topic, the partitions' count,
    # partition_index, error_code, high_watermark, last_stable_offset, log_start_offset,
    # aborted_transactions (null or empty: one byte), preferred_read_replica.
    prefix = 4 + 1 + 4 + 2 + 4 + 1 + 1 + len(name) + 1 + 4 + 2 + 8 + 8 + 8 + 1 + 4
    position = [0] * PARTITIONS
    moved = Moved(offsets=position)
    pool = [_Connection(addresses[number % len(addresses)], None, tls) for number in range(connections)]

    def request(connection: _Connection, partition: int) -> None:
        _OFFSET.pack_into(templates[partition], offset_at[partition], position[partition])
        connection.queue_bytes(bytes(templates[partition]))

    def answers(connection: _Connection, owned: list[int]) -> Parser:
        pending = collections.deque(p for p in owned if position[p] < ends[p])
        for partition in pending:
            request(connection, partition)
        while pending:
            size = _SIZE.unpack((yield 4, True))[0]  # type: ignore[arg-type]
            head = yield prefix, True
            assert head is not None
            partition = pending.popleft()
            correlation_id = _SIZE.unpack_from(head)[0]
            top_error = _ERROR.unpack_from(head, 9)[0]
            named = bytes(head[17:17 + len(name)])
            at = 17 + len(name) + 1
            index, error_code = struct.unpack_from(">ih", head, at)
            if (correlation_id, top_error, named, index, error_code) != (partition, 0, name, partition, 0):
                raise RuntimeError(f"partition {partition}: fetch answered {(correlation_id, top_error, named, index, error_code)}")
            records, shift, read = 0, 0, prefix
            while True:  # the records' length, an unsigned varint (length + 1; 0 for null)
                byte = (yield 1, True)[0]  # type: ignore[index]
                read += 1
                records |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
            left = max(records - 1, 0)
            if left == 0:
                raise RuntimeError(f"partition {partition}: no records at offset {position[partition]} (end {ends[partition]})")
            while left:
                if left < _BATCH_HEADER.size:
                    yield left, False  # a cut batch's first bytes (Kafka fills partition_max_bytes)
                    read, left = read + left, 0
                    break
                header = yield _BATCH_HEADER.size, True
                base_offset, length, _, magic, _, _, last_delta = _BATCH_HEADER.unpack(header)  # type: ignore[arg-type]
                whole = 12 + length
                if whole > left:
                    yield left - _BATCH_HEADER.size, False  # a cut batch
                    read, left = read + left, 0
                    break
                if magic != 2 or base_offset != position[partition]:
                    raise RuntimeError(f"partition {partition}: batch at {base_offset} (magic {magic}), expected {position[partition]}")
                yield whole - _BATCH_HEADER.size, False
                read, left = read + whole, left - whole
                position[partition] = base_offset + last_delta + 1
                moved.bytes += whole
            if size > read:
                yield size - read, False  # the tagged fields after the records
            moved.answers += 1
            if position[partition] < ends[partition]:
                pending.append(partition)
                request(connection, partition)

    return _drive(pool, answers, moved)


@dataclass(slots=True, frozen=True)
class Process:
    """One broker process: its bootstrap address, pid and data directory, and the address of its
    SSL listener when it has one (`--tls`)."""

    bootstrap: str
    pid: int
    data_dir: Path
    tls_address: str = ""


@dataclass(slots=True, frozen=True)
class Broker:
    """A broker under test: its processes (one, but for `ottla-2proc`), and whether it is CPython
    (whose thread names only py-spy can read). With several processes the generator's connections
    take them in turn, so each serves the partitions of its connections."""

    name: str
    processes: tuple[Process, ...]
    python: bool
    tls: ssl.SSLContext | None = None  # the generator's, when it speaks TLS to the processes' SSL listeners


def pin(broker: Broker, cpus: str) -> None:
    """Every thread of the broker's processes to `cpus`: threads started later inherit their creator's."""
    for process in broker.processes:
        subprocess.run(["taskset", "--all-tasks", "--pid", "--cpu-list", cpus, str(process.pid)], check=True, stdout=subprocess.DEVNULL)


def thread_cpu_seconds(broker: Broker) -> dict[int, float]:
    """CPU seconds of every thread of the broker's processes, by thread id (unique across them)."""
    return {tid: seconds for process in broker.processes for tid, seconds in procfs.thread_cpu_seconds(process.pid).items()}


def thread_groups(broker: Broker) -> dict[int, str]:
    """A group name for each thread of the broker: Ottla's event loop (its main thread; the loops
    of several processes are one group), its sendfile workers, its storage flusher, the rest; a
    JVM's threads by their names, numbers dropped (Kafka's request handlers, network threads, ...)."""
    groups = {}
    for process in broker.processes:
        pid = process.pid
        if not broker.python:
            groups.update({tid: name.rstrip("0123456789-") or name for tid, name in procfs.thread_names(pid).items()})
            continue
        py_spy = shutil.which("py-spy")
        dump = None if py_spy is None else subprocess.run([py_spy, "dump", "--json", "--pid", str(pid)], capture_output=True, text=True)
        if dump is None or dump.returncode != 0:
            # No py-spy, or no ptrace (a container without CAP_SYS_PTRACE): the main thread is still the loop.
            groups.update({tid: "loop" if tid == pid else "other" for tid in procfs.thread_names(pid)})
            continue
        for thread in json.loads(dump.stdout):
            name = thread["thread_name"] or ""
            groups[thread["os_thread_id"]] = (
                "loop" if thread["os_thread_id"] == pid else "sendfile workers" if name.startswith("ottla-sendfile")
                else "flusher" if name == "ottla-flusher" else "other"
            )
    return groups


@dataclass(slots=True, frozen=True)
class Run:
    """One timed workload on one broker at one core count."""

    broker: str
    workload: str
    cores: int
    megabytes: float
    seconds: float
    answers: int
    broker_cpu: float  # seconds, the process's threads (to the ns; a broker's threads outlive a run)
    process_cpu: list[float]  # seconds, each of the broker's processes (one, but for ottla-2proc)
    threads: dict[str, float]  # CPU seconds by thread group (/proc/PID/task/TID/schedstat)
    busiest_thread: str
    busiest_thread_cpu: float
    generator_cpu: float
    load: float
    others_cpu: float  # seconds the machine's CPUs were busy (/proc/stat) beyond the broker and the generator
    steal: float  # seconds the hypervisor held the machine's CPUs for others (/proc/stat's steal)
    split: dict[str, float] | None
    offsets: list[int]  # each partition's next offset when the run ended: its log end

    @property
    def mb_s(self) -> float:
        return self.megabytes / self.seconds

    def per_mb(self, seconds: float) -> float:
        return 1000 * seconds / self.megabytes


def _loop_kind(stack: list[str]) -> str:
    """compat.bench_cores' kind of a sample of the event loop's thread, pwrite apart; every other
    thread's samples count as idle, so that the split is the loop's alone (the serial part)."""
    if any(frame.startswith("Thread._bootstrap") for frame in stack):
        return "idle"
    return "pwrite" if stack[-1].startswith("pwrite") else bench_cores.kind(stack)


# The TLS split of the loop's busy samples (`--tls --spy`): OpenSSL's record encryption and
# decryption, which CPython's _ssl runs with the GIL released (what a second core could take);
# the rest of the _ssl calls (copies out of and into its memory BIOs, under the GIL); asyncio's
# sslproto machinery, with the copies it makes (the BIO's bytes into the socket transport's
# buffer); and the region read from the file before encryption (`read`, a kernel copy).
TLS_KINDS = ("SSL_write (encrypt)", "SSL_read (decrypt)", "_ssl other", "sslproto", "region read")


def _tls_loop_kind(stack: list[str]) -> str:
    """A loop sample's TLS kind (TLS_KINDS) by the frames it passes through, else _loop_kind's."""
    if any(frame.startswith("Thread._bootstrap") for frame in stack):
        return "idle"
    if any(frame.startswith(("SSL_write", "ssl3_write", "tls_write")) for frame in stack):
        return TLS_KINDS[0]
    if any(frame.startswith(("SSL_read", "ssl3_read", "tls_get_more_records")) for frame in stack):
        return TLS_KINDS[1]
    if any(frame.startswith(("_ssl_", "BIO_", "ssl_")) for frame in stack):
        return TLS_KINDS[2]
    if stack[-1].startswith("read") and any("_copy_region" in frame for frame in stack[-3:]):
        return TLS_KINDS[4]
    kind = _loop_kind(stack)
    if kind != bench_cores.GIL_HELD:
        return kind
    return TLS_KINDS[3] if any("sslproto.py" in frame for frame in stack[-4:]) else kind


@contextmanager
def _spied(pid: int, directory: Path, on: bool, tls: bool = False) -> Iterator[dict[str, float]]:
    """py-spy --native on `pid` while the block runs, when `on`: the shares of its event loop's
    busy samples by compat.bench_cores' kinds, pwrite (offloadable) apart; with `tls`, TLS_KINDS
    apart too (the raw samples are kept as tls-spy-*.txt beside the JSON, for a flame graph)."""
    shares: dict[str, float] = {}
    if not on:
        yield shares
        return
    output = directory / "spy.txt"
    sampler = subprocess.Popen(
        ["py-spy", "record", "--pid", str(pid), "--rate", "200", "--format", "raw", "--native", "--output", str(output)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        yield shares
    finally:
        sampler.send_signal(signal.SIGINT)
        sampler.communicate(timeout=60)
    raw = output.read_text() if output.exists() else ""
    counts = bench_cores.sample_counts(raw, _tls_loop_kind if tls else _loop_kind)
    busy = sum(count for name, count in counts.items() if name != "idle")
    for name in (bench_cores.GIL_HELD, bench_cores.LOOP_SYSCALLS, bench_cores.OFFLOADABLE, "pwrite", *(TLS_KINDS if tls else ())) if busy else ():
        shares[name] = counts[name] / busy
    if tls and raw:
        _SPY_KEPT.append(raw)


def _machine_cpu() -> tuple[float, float]:
    """Seconds all CPUs have been busy (user, nice, system, irq, softirq) and stolen, since boot."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    return (fields[0] + fields[1] + fields[2] + fields[5] + fields[6]) / tick, fields[7] / tick


def wait_quiet(limit: float, say: Callable[[str], None], most: float = QUIET_CORES) -> None:
    """Wait, at most `limit` seconds, for a second in which the machine's CPUs are busy less than
    `most` of a core: another's test or benchmark running beside a run takes a broker's core."""
    if limit <= 0:
        return
    deadline = time.monotonic() + limit
    while True:
        before = _machine_cpu()[0]
        time.sleep(1)
        busy = _machine_cpu()[0] - before
        if busy < most:
            return
        if time.monotonic() > deadline:
            say(f"the machine stayed busy ({busy:.2f} cores) for {limit:.0f} s: measuring anyway")
            return


_SPY_KEPT: list[str] = []  # `--tls --spy`'s raw py-spy samples, in the order taken


def measured(broker: Broker, workload: str, cores: int, directory: Path, spy: bool, move: Callable[[], Moved]) -> tuple[Run, Moved]:
    """`move()` timed with the CPU it cost the broker (all its threads, and by thread) and this process."""
    load = os.getloadavg()[0]
    busy, steal = _machine_cpu()
    threads = thread_cpu_seconds(broker)
    before = [procfs.thread_cpu_seconds(process.pid) for process in broker.processes]
    generator = time.process_time()
    with _spied(broker.processes[0].pid, directory, spy, broker.tls is not None) as shares:
        moved = move()
    generator = time.process_time() - generator
    busy, steal = (now - before for now, before in zip(_machine_cpu(), (busy, steal)))
    after = thread_cpu_seconds(broker)
    per_process = [sum(seconds - was.get(tid, 0.0) for tid, seconds in procfs.thread_cpu_seconds(process.pid).items())
                   for process, was in zip(broker.processes, before)]
    spent = {tid: seconds - threads.get(tid, 0.0) for tid, seconds in after.items()}
    # Not /proc/PID/stat's 10 ms ticks, which a run of a few milliseconds may not reach or may double.
    process = sum(spent.values())
    groups = thread_groups(broker)
    by_group: dict[str, float] = collections.defaultdict(float)
    for tid, seconds in spent.items():
        by_group[groups.get(tid, "other")] += seconds
    busiest = max(spent, key=lambda tid: spent[tid])
    busiest_name = groups.get(busiest, "other") + (f" ({busiest})" if groups.get(busiest) not in ("loop", "flusher") else "")
    run = Run(
        broker.name, workload, cores, moved.bytes / 1e6, moved.seconds, moved.answers, process, per_process,
        dict(sorted(by_group.items(), key=lambda item: -item[1])), busiest_name, spent[busiest], generator, load,
        max(0.0, busy - process - generator), steal, shares or None,
        list(moved.offsets),
    )
    return run, moved


def one_run(broker: Broker, cores: int, tag: str, args: argparse.Namespace, directory: Path, say: Callable[[str], None]) -> list[Run]:
    """Produce `args.volume_mb` to a fresh topic, then consume it `args.reads` times, the broker
    pinned to `cores`."""
    pin(broker, CORES[cores])
    topic = f"scaling-{tag}"
    addresses = []
    for process in broker.processes:
        work.create_topic(process.bootstrap, topic, PARTITIONS)
        addresses.append(process.tls_address if broker.tls else work.leader_address(process.bootstrap, topic))
    data_dirs = [process.data_dir for process in broker.processes]
    settle_disk(data_dirs)
    wait_quiet(args.wait_quiet, say)
    spy = args.spy and broker.python and cores == 1
    produced, wrote = measured(broker, "produce", cores, directory, spy, lambda: produce(
        addresses, topic, megabytes=args.volume_mb, connections=args.connections, in_flight=args.in_flight, directory=directory, tls=broker.tls,
    ))
    settle_disk(data_dirs)
    wait_quiet(args.wait_quiet, say)

    def read_all() -> Moved:
        total = Moved()
        for _ in range(args.reads):
            read = consume(addresses, topic, ends=wrote.offsets, connections=args.connections, tls=broker.tls)
            if read.offsets != wrote.offsets:
                raise RuntimeError(f"{broker.name}: consumed to {read.offsets}, produced to {wrote.offsets}")
            total.bytes, total.seconds, total.answers, total.offsets = total.bytes + read.bytes, total.seconds + read.seconds, total.answers + read.answers, read.offsets
        return total

    # Over TLS the consume is what encryption costs the loop most: sampled too.
    consumed, _ = measured(broker, "consume", cores, directory, spy and broker.tls is not None, read_all)
    for process in broker.processes:
        work.delete_topics(process.bootstrap, [topic])
    return [produced, consumed]


def line(run: Run) -> str:
    threads = ", ".join(f"{name} {run.per_mb(seconds):.3f}" for name, seconds in list(run.threads.items())[:4])
    return (
        f"{run.broker:6} {run.workload:8} {run.cores} core{'s' if run.cores > 1 else ' '}: {run.megabytes:7.0f} MB in {run.seconds:5.2f} s "
        f"= {run.mb_s:6.0f} MB/s; broker {run.per_mb(run.broker_cpu):.3f} ms/MB (busy {run.broker_cpu / run.seconds:.2f} cores), "
        f"busiest thread {run.busiest_thread} {run.per_mb(run.busiest_thread_cpu):.3f}; generator {run.per_mb(run.generator_cpu):.3f} ms/MB "
        f"(busy {run.generator_cpu / run.seconds:.2f}); others busy {run.others_cpu / run.seconds:.2f}, steal {run.steal / run.seconds:.2f}; load {run.load:.2f}\n        threads ms/MB: {threads}"
        + (f"\n        the loop's busy samples (py-spy): " + ", ".join(f"{k} {v:.0%}" for k, v in run.split.items()) if run.split else "")
    )


def summary(runs: list[Run]) -> list[dict[str, Any]]:
    """Per broker and workload: each core count's best rate and the spread of its passes, its
    best run's CPU per MB, and the scaling (two cores' best over one core's)."""
    rows = []
    for broker in dict.fromkeys(r.broker for r in runs):
        for workload in ("produce", "consume"):
            row: dict[str, Any] = {"broker": broker, "workload": workload}
            for cores in CORES:
                mine = [r for r in runs if (r.broker, r.workload, r.cores) == (broker, workload, cores)]
                if not mine:
                    continue
                rates = [r.mb_s for r in mine]
                top = max(mine, key=lambda r: r.mb_s)
                row[f"{cores}_core"] = {
                    "mb_s": top.mb_s, "spread": (max(rates) - min(rates)) / max(rates), "passes": rates,
                    "broker_ms_per_mb": top.per_mb(top.broker_cpu), "busiest_thread": top.busiest_thread,
                    "busiest_thread_ms_per_mb": top.per_mb(top.busiest_thread_cpu), "generator_ms_per_mb": top.per_mb(top.generator_cpu),
                    "broker_busy_cores": top.broker_cpu / top.seconds, "load": top.load,
                    "others_busy_cores": top.others_cpu / top.seconds,
                }
            if "1_core" in row and "2_core" in row:
                row["scaling"] = row["2_core"]["mb_s"] / row["1_core"]["mb_s"]
            rows.append(row)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    header = (f"{'broker':6} {'workload':8} {'1 core MB/s':>12} {'spread':>6} {'2 cores MB/s':>12} {'spread':>6} {'scaling':>7}   "
              f"broker ms/MB 1c/2c   busiest thread ms/MB 1c/2c   generator ms/MB 1c/2c   broker/others busy cores 1c/2c")
    lines = [header, "-" * len(header)]
    for row in rows:
        one, two = row.get("1_core", {}), row.get("2_core", {})

        def pair(key: str, digits: int = 3) -> str:
            return "/".join(f"{side[key]:.{digits}f}" if side else "-" for side in (one, two))

        lines.append(
            f"{row['broker']:6} {row['workload']:8} {one.get('mb_s', 0):12.0f} {one.get('spread', 0):6.0%} {two.get('mb_s', 0):12.0f} "
            f"{two.get('spread', 0):6.0%} {row.get('scaling', 0):6.2f}x   {pair('broker_ms_per_mb'):>18}   "
            f"{pair('busiest_thread_ms_per_mb'):>26}   {pair('generator_ms_per_mb'):>21}   "
            f"{pair('broker_busy_cores', 2):>11} / {pair('others_busy_cores', 2)}"
        )
    return "\n".join(lines)


def tls_setup(directory: Path) -> tuple[dict[str, str], ssl.SSLContext]:
    """An SSL listener beside the PLAINTEXT one (topics are made through that), with `ottla
    certs`' development certificates as a user makes them, and the generator's context trusting
    their CA (TLS 1.3, Python's and OpenSSL's defaults: AES-256-GCM)."""
    certs = directory / "certs"
    made = subprocess.run([sys.executable, "-m", "ottla", "certs", str(certs)], capture_output=True, text=True, timeout=60)
    if made.returncode != 0:
        raise RuntimeError(f"ottla certs exited {made.returncode}: {made.stderr}")
    settings = {
        "listeners": "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0", "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SSL:SSL",
        "ssl.keystore.type": "PEM", "ssl.keystore.location": str(certs / "broker-keystore.pem"),
    }
    return settings, ssl.create_default_context(cafile=str(certs / "ca.pem"))


def start_brokers(stack: ExitStack, names: list[str], say: Callable[[str], None], tls: tuple[dict[str, str], ssl.SSLContext] | None = None) -> list[Broker]:
    """Each named broker started as compat.bench starts it, on both CPUs; with `tls`
    (tls_setup's), Ottla's with an SSL listener the generator speaks to."""
    brokers = []
    for name in names:
        if name in ("ottla", "ottla-2proc"):
            processes = []
            for _ in range(2 if name == "ottla-2proc" else 1):
                settings = {"group.initial.rebalance.delay.ms": "0", **DELETE_AT_ONCE, **(tls[0] if tls else {})}
                ottla = stack.enter_context(OttlaBroker(settings=settings, cpus=BROKER_CPUS))
                processes.append(Process(ottla.bootstrap, ottla.pid, ottla.data_dir, ottla.listeners.get("SSL", "") if tls else ""))
            brokers.append(Broker(name, tuple(processes), True, tls[1] if tls else None))
        elif name == "kafka" and tls is None:
            kafka, _ = start_kafka(stack, say, BROKER_CPUS)
            brokers.append(Broker("kafka", (Process(kafka.bootstrap_servers, kafka.pid, kafka.dir / "data"),), False))
        else:
            raise ValueError(f"unknown broker {name!r}: ottla, ottla-2proc or kafka (not with --tls)")
    return brokers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compat.bench_scaling", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--brokers", default=None,
        help="comma-separated: ottla, kafka, ottla-2proc (two independent Ottla processes, each serving half the "
             "partitions: what one process per node would scale to at best; default ottla,kafka, with --tls ottla)",
    )
    parser.add_argument("--volume-mb", type=float, default=2500, help="MB each run produces, then consumes (default 2500)")
    parser.add_argument("--reads", type=int, default=3, help="times each run consumes what it produced (default 3: a consume is ~5x faster)")
    parser.add_argument("--warmup-mb", type=float, default=1000, help="MB of the untimed produce and consume on each broker first (default 1000)")
    parser.add_argument("--repeat", type=int, default=1, metavar="N", help="passes over every broker and core count")
    parser.add_argument(
        "--connections", type=int, default=4,
        help="generator connections (default 4: with 2 in flight on each, of 1x8 to 8x1 the one that kept Ottla busiest at the least generator CPU)",
    )
    parser.add_argument("--in-flight", type=int, default=2, help="Produce requests in flight on each connection (default 2)")
    parser.add_argument(
        "--wait-quiet", type=float, default=300, metavar="SECONDS",
        help=f"before each run, wait up to this long for a second with the machine under {QUIET_CORES} of a core busy (default 300)",
    )
    parser.add_argument(
        "--spy", action="store_true",
        help="py-spy --native on Ottla in its one-core produce runs (and consume runs with --tls: TLS_KINDS apart)",
    )
    parser.add_argument(
        "--tls", action="store_true",
        help="the generator speaks TLS to an SSL listener (ottla certs' certificates); Ottla only (default brokers: ottla)",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write every run and the summary as JSON")
    args = parser.parse_args(argv)
    args.brokers = args.brokers or ("ottla" if args.tls else "ottla,kafka")
    if args.tls and "kafka" in args.brokers.split(","):
        parser.error("--tls measures Ottla only: the reference Kafka is not given an SSL listener")
    if shutil.which("taskset") is None or args.spy and shutil.which("py-spy") is None:
        parser.error("needs taskset (util-linux), and py-spy for --spy (python -m pip install -e '.[test]')")
    if not {0, GENERATOR_CPU} <= os.sched_getaffinity(0):
        parser.error(f"needs CPUs 0 and {GENERATOR_CPU}")
    os.sched_setaffinity(0, {GENERATOR_CPU})
    started = time.monotonic()

    def say(text: str) -> None:
        print(f"  [{time.monotonic() - started:6.1f}s] {text}", file=sys.stderr, flush=True)

    print(f"1-min load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; generator on CPU {GENERATOR_CPU}, "
          f"brokers on CPU {CORES[1]} (1 core) or {CORES[2]} (2 cores)")
    runs: list[Run] = []
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="ottla-scaling-") as tmp:
        directory = Path(tmp)
        brokers = start_brokers(stack, args.brokers.split(","), say, tls_setup(directory) if args.tls else None)
        warm = argparse.Namespace(**{**vars(args), "volume_mb": args.warmup_mb, "spy": False, "wait_quiet": 0})
        for broker in brokers:
            if args.warmup_mb > 0:
                one_run(broker, 2, "warmup", warm, directory, say)
                say(f"{broker.name} warmed up (not counted)")
        order = [(broker, cores) for broker in brokers for cores in CORES]
        for i in range(args.repeat):
            for broker, cores in order[::-1] if i % 2 else order:
                for run in one_run(broker, cores, f"p{i}-{cores}", args, directory, say):
                    runs.append(run)
                    print(line(run), flush=True)
    rows = summary(runs)
    print(table(rows))
    print(f"ran {time.monotonic() - started:.0f} s, {args.repeat} pass(es); 1-min load average {min(r.load for r in runs):.2f}-"
          f"{max(r.load for r in runs):.2f} at the runs' starts, {os.getloadavg()[0]:.2f} at the end")
    print("rerun: python -m compat.bench_scaling " + " ".join(sys.argv[1:] if argv is None else argv))
    if args.json:
        for number, raw in enumerate(_SPY_KEPT):
            args.json.with_name(f"tls-spy-{number}.txt").write_text(raw)
        args.json.write_text(json.dumps({"runs": [asdict(r) | {"mb_s": r.mb_s} for r in runs], "summary": rows, "args": {
            k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
