"""Issue 8, isolation: a bystander's latency while other connections abuse the broker.

    python -m compat.bench_isolation [--seconds N] [--against kafka] [--quick] [--json FILE]

A bystander holds ONE connection and, for `--seconds` per scenario, makes sequential round
trips: ApiVersions v3, Metadata v12 of its topic, Produce v9 acks=1 of one 100-byte record, and
Fetch v12 (max_wait_ms 0) of that record. Each request's latency is timed from the first byte
sent to the last byte of its answer. Beside it a newcomer opens a fresh connection every 0.5 s
and makes one ApiVersions: what a client arriving during the abuse sees. The abusers run in a
child process of their own (`python -m compat.bench_isolation abuse SCENARIO BOOTSTRAP`, which
prints `ready` and keeps up the abuse until its stdin closes), so their work never holds the
bystander's interpreter.

  baseline      no abuse: the floor the other rows compare with
  idle          1,000 connections opened and held, silent
  half-frame    100 connections each send a size prefix promising 1 MiB (what a broker that
                allocates ahead would hold) and the first 12 bytes of a request, then nothing
  never-reader  8 connections pipeline requests as fast as the broker takes them and read
                no answer: 4 send ApiVersions, 4 send Fetches of the huge partition
  huge-fetch    3 connections fetch the huge partition (~1 GiB on disk, 1 MiB records) from
                offset 0 with max_bytes 2^31-1 over and over, reading ~25 MB/s; a 4th sends
                4 such fetches and reads nothing

Before the first scenario the huge partition is filled, by raw acks=1 Produce requests of
4 MiB batches, and the bystander runs `--warmup` seconds untimed. `held` counts the broker's
established connections (its side, from /proc/net/tcp) besides the bystander's, when the
bystander starts and when it stops: the abusers it still holds. The broker is `ottla serve`
(compat.harness) or, with `--against kafka`, the reference Kafka (compat.kafka), both with
their defaults, one after the other, never both at once. Loopback only; every wait is bounded.

Reading the figures: Kafka takes one request at a time per connection (SocketServer's
Processor mutes a channel from REQUEST_RECEIVED until RESPONSE_SENT), so a flooding connection
gets one request's turn like any other. Ottla takes a few requests (up to 64 KiB of them) per
connection per turn of its event loop (server/connection.py FRAMES_PER_TURN) and stops taking
a client's requests while that client is backlogged; with Kafka's 100 KiB
socket.send.buffer.bytes a never-reader is backlogged after a few hundred KiB of answers. With the OS's autotuned buffers (-1) it is given
megabytes first, and costs the bystander throughput (one loop serves both) but not latency.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import select
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka.admin import KafkaAdminClient, NewTopic

from compat import procfs
from compat.harness import OttlaBroker, wait_for
from compat.kafka import ReferenceKafka, fetch
from compat.sockets import read_frame
from ottla.wire.framing import SIZE
from ottla.wire.protocol import decode_response, encode_request
from ottla.wire.records import Record, build_batch

API_VERSIONS, METADATA, PRODUCE, FETCH = 18, 3, 0, 1
# Versions both Ottla and Kafka 4 serve, flexible (KIP-482) as current clients send them.
VERSIONS = {API_VERSIONS: 3, METADATA: 12, PRODUCE: 9, FETCH: 12}
NAMES = {API_VERSIONS: "ApiVersions", METADATA: "Metadata", PRODUCE: "Produce", FETCH: "Fetch"}
BYSTANDER_TOPIC, HUGE_TOPIC = "bystander", "huge"
MIB = 1 << 20
RECORD_BYTES = MIB
RECORDS_PER_BATCH = 4
HUGE_MAX_MESSAGE_BYTES = 8 * MIB  # a 4 MiB batch is over the 1 MiB default of message.max.bytes
REQUEST_TIMEOUT_S = 5.0  # a bystander request this late counts as failed, and it reconnects
NEWCOMER_EVERY_S = 0.5
SLOW_S = 0.1  # a bystander request this slow is counted: a stall a user notices

IDLE_CONNECTIONS = 1000
HALF_FRAME_CONNECTIONS = 100
HALF_FRAME_PROMISE = MIB
NEVER_READERS = 8
PIPELINED_FETCHES = 4
SLOW_READERS = 3
SLOW_CHUNK, SLOW_PAUSE_S = 256 * 1024, 0.01  # about 25 MB/s per slow reader
SCENARIOS = ("baseline", "idle", "half-frame", "never-reader", "huge-fetch")


# ---- request frames -------------------------------------------------------------------------

def _api_versions(correlation_id: int) -> bytes:
    body = {"client_software_name": "ottla-bench", "client_software_version": "1"}
    return encode_request(API_VERSIONS, VERSIONS[API_VERSIONS], correlation_id, body, client_id="bystander")


def _metadata(correlation_id: int) -> bytes:
    body = {"topics": [{"topic_id": bytes(16), "name": BYSTANDER_TOPIC}], "allow_auto_topic_creation": False,
            "include_topic_authorized_operations": False}
    return encode_request(METADATA, VERSIONS[METADATA], correlation_id, body, client_id="bystander")


def _produce(correlation_id: int, topic: str, batch: bytes, client_id: str = "bystander") -> bytes:
    body = {"transactional_id": None, "acks": 1, "timeout_ms": 30_000,
            "topic_data": [{"name": topic, "partition_data": [{"index": 0, "records": batch}]}]}
    return encode_request(PRODUCE, VERSIONS[PRODUCE], correlation_id, body, client_id=client_id)


def _fetch(correlation_id: int, topic: str, offset: int, max_bytes: int, client_id: str = "bystander") -> bytes:
    partition = {"partition": 0, "current_leader_epoch": -1, "fetch_offset": offset, "last_fetched_epoch": -1,
                 "log_start_offset": -1, "partition_max_bytes": max_bytes}
    body = {"replica_id": -1, "max_wait_ms": 0, "min_bytes": 1, "max_bytes": max_bytes, "isolation_level": 0,
            "session_id": 0, "session_epoch": -1, "topics": [{"topic": topic, "partitions": [partition]}],
            "forgotten_topics_data": [], "rack_id": ""}
    return encode_request(FETCH, VERSIONS[FETCH], correlation_id, body, client_id=client_id)


def _receive(sock: socket.socket) -> bytes:
    frame = read_frame(sock)
    if frame is None:
        raise ConnectionError("broker closed the connection")
    return frame


def _round_trip(sock: socket.socket, frame: bytes) -> bytes:
    sock.sendall(frame)
    return _receive(sock)


# ---- the bystander and the newcomer ---------------------------------------------------------

@dataclass
class Samples:
    """Latencies in seconds of the answered requests, per API; and of the requests that
    failed or timed out, with what happened."""

    by_api: dict[int, list[float]] = field(default_factory=lambda: {api: [] for api in NAMES})
    failed: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    newcomer: list[float] = field(default_factory=list)
    newcomer_failures: int = 0

    def all(self) -> list[float]:
        """Every attempt's latency, a failure's included: a timeout is a latency too."""
        return sorted([s for samples in self.by_api.values() for s in samples] + self.failed)


def _error_codes(api: int, body: dict[str, Any]) -> list[int]:
    if api == API_VERSIONS:
        return [body["error_code"]]
    if api == METADATA:
        return [t["error_code"] for t in body["topics"]]
    partitions = [p for t in body["responses"] for p in (t["partition_responses"] if api == PRODUCE else t["partitions"])]
    return [body.get("error_code", 0)] * bool(body.get("error_code")) + [p["error_code"] for p in partitions]


def _check(api: int, frame: bytes) -> int:
    """-1 if the answer carries an error; else 0, or for Produce the base offset."""
    _, body = decode_response(api, VERSIONS[api], frame)
    if _error_codes(api, body) != [0]:
        return -1
    return int(body["responses"][0]["partition_responses"][0]["base_offset"]) if api == PRODUCE else 0


def bystander(bootstrap: str, seconds: float, samples: Samples) -> None:
    """Sequential round trips on one connection until `seconds` have passed."""
    host, port = bootstrap.rsplit(":", 1)
    batch = build_batch([Record(0, int(time.time() * 1000), None, bytes(100))])
    sock: socket.socket | None = None
    correlation_id, offset, turn = 0, 0, 0
    deadline = time.perf_counter() + seconds
    try:
        while time.perf_counter() < deadline:
            api = (API_VERSIONS, METADATA, PRODUCE, FETCH)[turn % 4]
            turn += 1
            correlation_id += 1
            frame = {API_VERSIONS: lambda: _api_versions(correlation_id), METADATA: lambda: _metadata(correlation_id),
                     PRODUCE: lambda: _produce(correlation_id, BYSTANDER_TOPIC, batch),
                     FETCH: lambda: _fetch(correlation_id, BYSTANDER_TOPIC, offset, MIB)}[api]()
            began = time.perf_counter()
            try:
                if sock is None:
                    sock = socket.create_connection((host, int(port)), timeout=REQUEST_TIMEOUT_S)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    began = time.perf_counter()  # the connect is the newcomer's to time
                answer = _round_trip(sock, frame)
            except OSError as exc:
                samples.failed.append(time.perf_counter() - began)
                samples.failures.append(f"{NAMES[api]}: {exc!r}")
                if sock is not None:
                    sock.close()
                sock = None
                continue
            samples.by_api[api].append(time.perf_counter() - began)
            code = _check(api, answer)
            if code < 0:
                samples.failures.append(f"{NAMES[api]}: error in answer")
            elif api == PRODUCE:
                offset = code
    finally:
        if sock is not None:
            sock.close()


def newcomer(bootstrap: str, stop: threading.Event, samples: Samples) -> None:
    """Every NEWCOMER_EVERY_S: connect, one ApiVersions, close; timed from the connect."""
    host, port = bootstrap.rsplit(":", 1)
    while not stop.wait(NEWCOMER_EVERY_S):
        began = time.perf_counter()
        try:
            with socket.create_connection((host, int(port)), timeout=REQUEST_TIMEOUT_S) as sock:
                _check(API_VERSIONS, _round_trip(sock, _api_versions(1)))
            samples.newcomer.append(time.perf_counter() - began)
        except OSError:
            samples.newcomer_failures += 1


# ---- the abusers (run in their own process) -------------------------------------------------

@dataclass
class Traffic:
    """What the abusers moved, summed over their threads (each adds under `lock`)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: int = 0
    received: int = 0
    answers: int = 0
    closed_by_broker: int = 0

    def add(self, sent: int = 0, received: int = 0, answers: int = 0) -> None:
        with self.lock:
            self.sent += sent
            self.received += received
            self.answers += answers


def _flood(sock: socket.socket, burst: bytes, stop: threading.Event, traffic: Traffic) -> None:
    """Send whole frames whenever the broker takes them; read nothing."""
    sock.setblocking(False)
    pending = memoryview(burst)
    while not stop.is_set():
        try:
            sent = sock.send(pending)
        except BlockingIOError:
            stop.wait(0.05)
            continue
        except OSError:
            with traffic.lock:
                traffic.closed_by_broker += 1
            return
        traffic.add(sent=sent)
        pending = pending[sent:] or memoryview(burst)


def _recv_until(sock: socket.socket, size: int, stop: threading.Event, chunk: int, pause: float) -> int:
    """Read `size` bytes, `chunk` at a time with `pause` between, or until `stop`; bytes read."""
    done = 0
    while done < size and not stop.is_set():
        try:
            data = sock.recv(min(chunk, size - done))
        except TimeoutError:
            continue
        if not data:
            raise ConnectionError("broker closed the connection")
        done += len(data)
        if pause:
            stop.wait(pause)
    return done


def _slow_fetcher(sock: socket.socket, frame: bytes, stop: threading.Event, traffic: Traffic) -> None:
    """Fetch everything from offset 0, read the answer slowly, and again."""
    sock.settimeout(0.5)
    try:
        while not stop.is_set():
            sock.sendall(frame)
            traffic.add(sent=len(frame))
            prefix = bytearray()
            while len(prefix) < 4 and not stop.is_set():
                prefix += sock.recv(4 - len(prefix)) if _readable(sock) else b""
            if stop.is_set():
                return
            (size,) = SIZE.unpack(prefix)
            got = _recv_until(sock, size, stop, SLOW_CHUNK, SLOW_PAUSE_S)
            traffic.add(received=4 + got, answers=int(got == size))
    except OSError:
        with traffic.lock:
            traffic.closed_by_broker += 1


def _readable(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 0.5)[0])


def _raise_open_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


def abuse(scenario: str, bootstrap: str) -> None:
    """Keep `scenario`'s abuse up until stdin closes; then print what it moved, as JSON."""
    host, port = bootstrap.rsplit(":", 1)
    address = (host, int(port))
    _raise_open_file_limit(IDLE_CONNECTIONS + 200)
    stop, traffic = threading.Event(), Traffic()
    sockets: list[socket.socket] = []
    threads: list[threading.Thread] = []

    def connect() -> socket.socket:
        sock = socket.create_connection(address, timeout=10)
        sockets.append(sock)
        return sock

    try:
        if scenario == "idle":
            for _ in range(IDLE_CONNECTIONS):
                connect()
        elif scenario == "half-frame":
            header = _api_versions(1)[4:16]
            for _ in range(HALF_FRAME_CONNECTIONS):
                connect().sendall(SIZE.pack(HALF_FRAME_PROMISE) + header)
                traffic.add(sent=4 + len(header))
        elif scenario == "never-reader":
            for i in range(NEVER_READERS):
                if i % 2:
                    frame = _fetch(i, HUGE_TOPIC, 0, 2**31 - 1, client_id="never-reader")
                else:
                    frame = _api_versions(i)
                threads.append(threading.Thread(target=_flood, args=(connect(), frame * 64, stop, traffic)))
        elif scenario == "huge-fetch":
            frame = _fetch(1, HUGE_TOPIC, 0, 2**31 - 1, client_id="huge-fetch")
            for _ in range(SLOW_READERS):
                threads.append(threading.Thread(target=_slow_fetcher, args=(connect(), frame, stop, traffic)))
            connect().sendall(frame * PIPELINED_FETCHES)
            traffic.add(sent=len(frame) * PIPELINED_FETCHES)
        else:
            raise ValueError(f"unknown scenario {scenario!r}")
        for thread in threads:
            thread.start()
        print(f"ready {len(sockets)}", flush=True)
        sys.stdin.read()  # until the parent closes our stdin (or dies)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        for sock in sockets:
            sock.close()
    print(json.dumps({"sent": traffic.sent, "received": traffic.received, "answers": traffic.answers,
                      "closed_by_broker": traffic.closed_by_broker}), flush=True)


@contextmanager
def abusers(scenario: str, bootstrap: str, timeout: float = 60) -> Iterator[dict[str, Any]]:
    """The abuse process, up and abusing; on leaving, stopped, with its traffic in the dict."""
    stats: dict[str, Any] = {"connections": 0}
    if scenario == "baseline":
        yield stats
        return
    proc = subprocess.Popen([sys.executable, "-m", "compat.bench_isolation", "abuse", scenario, bootstrap],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        line = proc.stdout.readline() if ready else ""
        if not line.startswith("ready"):
            raise RuntimeError(f"{scenario} abusers did not start within {timeout:.0f} s: {line!r}")
        stats["connections"] = int(line.split()[1])
        yield stats
    finally:
        try:
            out, _ = proc.communicate(input="", timeout=30)  # closing its stdin ends the abuse
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        last = out.strip().splitlines()[-1:] if out else []
        if last and last[0].startswith("{"):
            stats.update(json.loads(last[0]))


# ---- brokers --------------------------------------------------------------------------------

@dataclass
class Target:
    name: str
    bootstrap: str
    pid: int

    @property
    def port(self) -> int:
        return int(self.bootstrap.rsplit(":", 1)[1])

    def rss_mib(self) -> float:
        return procfs.rss_bytes(self.pid) / MIB

    def open_file_limit(self) -> int:
        return procfs.open_file_limit(self.pid)

    def established(self) -> int:
        return procfs.established(self.port)


def prepare(target: Target, huge_bytes: int, say: Callable[[str], None]) -> dict[str, float]:
    """The two topics, and the huge partition filled with `huge_bytes` of 1 MiB records."""
    admin = KafkaAdminClient(bootstrap_servers=target.bootstrap, request_timeout_ms=30_000)
    try:
        admin.create_topics([
            NewTopic(BYSTANDER_TOPIC, 1, 1),
            NewTopic(HUGE_TOPIC, 1, 1, topic_configs={"max.message.bytes": str(HUGE_MAX_MESSAGE_BYTES)}),
        ])
    finally:
        admin.close()
    _wait_writable(target, [BYSTANDER_TOPIC, HUGE_TOPIC])
    batch = build_batch([Record(i, int(time.time() * 1000), None, os.urandom(RECORD_BYTES)) for i in range(RECORDS_PER_BATCH)])
    batches = max(1, huge_bytes // len(batch))
    frame = _produce(1, HUGE_TOPIC, batch, client_id="filler")
    window = 4
    started = time.perf_counter()
    host, port = target.bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        # `window` requests in flight; their answers are small and read as they come.
        in_flight = 0
        for sent in range(batches):
            sock.sendall(frame)
            in_flight += 1
            while in_flight == window or (sent == batches - 1 and in_flight):
                if _check(PRODUCE, _receive(sock)) < 0:
                    raise RuntimeError(f"{target.name} refused a {len(batch)}-byte batch to {HUGE_TOPIC}")
                in_flight -= 1
    elapsed = time.perf_counter() - started
    filled = batches * len(batch)
    say(f"{target.name}: filled {HUGE_TOPIC} with {filled / MIB:.0f} MiB in {elapsed:.1f} s ({filled / elapsed / 1e6:.0f} MB/s)")
    return {"huge_mib": filled / MIB, "fill_s": elapsed}


def _wait_writable(target: Target, topics: list[str], timeout: float = 30) -> None:
    """Until a one-record Produce to each topic is acknowledged: Kafka's new partitions answer
    NOT_LEADER_OR_FOLLOWER until the controller's metadata reaches the broker."""
    host, port = target.bootstrap.rsplit(":", 1)
    batch = build_batch([Record(0, int(time.time() * 1000), None, b"ready")])
    deadline = time.monotonic() + timeout
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        for topic in topics:
            while True:
                _, body = decode_response(PRODUCE, VERSIONS[PRODUCE], _round_trip(sock, _produce(1, topic, batch, client_id="filler")))
                codes = _error_codes(PRODUCE, body)
                if codes == [0]:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{target.name}: produce to {topic} still answers error codes {codes} after {timeout:.0f} s")
                time.sleep(0.1)


def run_scenario(target: Target, scenario: str, seconds: float) -> dict[str, Any]:
    samples = Samples()
    before = target.established()
    with abusers(scenario, target.bootstrap) as stats:
        wait_for(lambda: target.established() >= before + stats["connections"], 10)
        held_start = target.established() - before
        stop = threading.Event()
        arriving = threading.Thread(target=newcomer, args=(target.bootstrap, stop, samples))
        arriving.start()
        try:
            bystander(target.bootstrap, seconds, samples)
        finally:
            stop.set()
            arriving.join(REQUEST_TIMEOUT_S + 5)
        time.sleep(0.1)  # the bystander's close reaches the broker's side
        held_end = target.established() - before
        rss = target.rss_mib()
    counted_back = wait_for(lambda: target.established() <= before, 15)
    latencies = samples.all()
    return {
        "scenario": scenario,
        "abusers": stats["connections"],
        "held_start": held_start,
        "held_end": held_end,
        "requests": len(latencies) - len(samples.failed),
        "p50_ms": _quantile(latencies, 0.50) * 1000,
        "p99_ms": _quantile(latencies, 0.99) * 1000,
        "max_ms": (latencies[-1] if latencies else 0.0) * 1000,
        "slow": sum(1 for latency in latencies if latency >= SLOW_S),
        "by_api_p99_ms": {NAMES[api]: _quantile(sorted(s), 0.99) * 1000 for api, s in samples.by_api.items()},
        "failures": len(samples.failures),
        "failure_examples": samples.failures[:3],
        "newcomer_median_ms": (statistics.median(samples.newcomer) if samples.newcomer else 0.0) * 1000,
        "newcomer_max_ms": (max(samples.newcomer) if samples.newcomer else 0.0) * 1000,
        "newcomer_failures": samples.newcomer_failures,
        "rss_mib": rss,
        "abuser_traffic": {k: v for k, v in stats.items() if k != "connections"},
        "counted_back": counted_back,
    }


def _quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def run_broker(target: Target, args: argparse.Namespace, say: Callable[[str], None]) -> dict[str, Any]:
    result: dict[str, Any] = {"open_file_limit": target.open_file_limit(), **prepare(target, args.huge_mib * MIB, say)}
    # Untimed round trips first: a fresh JVM runs the request path interpreted until the JIT
    # has compiled it, and that warm-up is not what the scenarios compare.
    bystander(target.bootstrap, args.warmup, Samples())
    result["scenarios"] = []
    for scenario in args.scenarios:
        row = run_scenario(target, scenario, args.seconds)
        say(f"{target.name} {scenario}: {row['requests']} requests, p99 {row['p99_ms']:.2f} ms, max {row['max_ms']:.1f} ms")
        result["scenarios"].append(row)
    return result


# ---- report ---------------------------------------------------------------------------------

COLUMNS = ("broker", "scenario", "held", "requests", "p50 ms", "p99 ms", "max ms", ">=100ms", "failed", "newcomer med/max ms", "RSS MiB")


def _cells(name: str, row: dict[str, Any]) -> tuple[str, ...]:
    held = f"{row['held_start']}->{row['held_end']}" if row["abusers"] else "-"
    failed = str(row["failures"]) + (f" +{row['newcomer_failures']}n" if row["newcomer_failures"] else "")
    return (name, row["scenario"], held, str(row["requests"]), f"{row['p50_ms']:.2f}", f"{row['p99_ms']:.2f}",
            f"{row['max_ms']:.1f}", str(row["slow"]), failed, f"{row['newcomer_median_ms']:.1f} / {row['newcomer_max_ms']:.1f}", f"{row['rss_mib']:.0f}")


def table(results: dict[str, dict[str, Any]]) -> str:
    rows = [COLUMNS]
    scenarios = [r["scenario"] for r in next(iter(results.values()))["scenarios"]]
    for index, _ in enumerate(scenarios):
        rows += [_cells(name, result["scenarios"][index]) for name, result in results.items()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))) for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    for name, result in results.items():
        notes = [f"{name}: open-file soft limit {result['open_file_limit']}, huge partition {result['huge_mib']:.0f} MiB "
                 f"filled in {result['fill_s']:.1f} s"]
        if result["open_file_limit"] < IDLE_CONNECTIONS + 100:
            notes.append(f"{name}: its open-file limit is too low to hold {IDLE_CONNECTIONS} idle connections")
        for row in result["scenarios"]:
            traffic = row["abuser_traffic"]
            if traffic:
                notes.append(f"{name} {row['scenario']}: abusers sent {traffic.get('sent', 0) / MIB:.1f} MiB, read "
                             f"{traffic.get('received', 0) / MIB:.1f} MiB in {traffic.get('answers', 0)} whole answers, "
                             f"{traffic.get('closed_by_broker', 0)} closed by the broker")
            if row["failures"]:
                notes.append(f"{name} {row['scenario']}: bystander failures, e.g. {row['failure_examples']}")
            if not row["counted_back"]:
                notes.append(f"{name} {row['scenario']}: connections still established 15 s after the abusers closed")
        lines += notes
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["abuse"]:
        abuse(argv[1], argv[2])
        return 0
    parser = argparse.ArgumentParser(prog="python -m compat.bench_isolation", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10, help="bystander run per scenario")
    parser.add_argument("--warmup", type=float, default=5, help="untimed bystander seconds before the first scenario")
    parser.add_argument("--huge-mib", type=int, default=1024, help="size of the huge partition")
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--against", choices=["kafka"])
    parser.add_argument("--quick", action="store_true", help="2 s per scenario and a 64 MiB partition: a smoke run")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.huge_mib, args.warmup = 2, 64, 1

    def say(text: str) -> None:
        print(f"  [{time.monotonic() - started:6.1f}s] {text}", file=sys.stderr, flush=True)

    started = time.monotonic()
    _raise_open_file_limit(IDLE_CONNECTIONS + 200)  # the brokers inherit it
    results: dict[str, dict[str, Any]] = {}
    with OttlaBroker() as broker:
        results["ottla"] = run_broker(Target("ottla", broker.bootstrap, broker.pid), args, say)
    if args.against:
        fetch()
        with ReferenceKafka() as kafka:
            results["kafka"] = run_broker(Target("kafka", kafka.bootstrap_servers, kafka.pid), args, say)
    print(table(results))
    print(f"bystander: one connection, ApiVersions/Metadata/Produce(acks=1)/Fetch(max_wait 0) in turn, {args.seconds:g} s "
          f"per scenario; newcomer: connect + ApiVersions every {NEWCOMER_EVERY_S} s; failed = over {REQUEST_TIMEOUT_S:.0f} s "
          f"or an error (+n: newcomers)")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores; {sys.version.split()[0]}")
    print("rerun: python -m compat.bench_isolation " + " ".join(argv))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
