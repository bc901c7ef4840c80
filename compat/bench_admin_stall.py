"""How long other clients wait while an admin request does file work on Ottla.

    python -m compat.bench_admin_stall [--partitions 500] [--rounds 3]

One connection (a raw socket, in its own thread) sends ApiVersions v0 back to back and
records each round trip; meanwhile an AdminClient (confluent-kafka) runs, one after the
other: CreateTopics of a topic with `--partitions` partitions, CreatePartitions growing a
1-partition topic to `--partitions`, and DeleteTopics of a `--partitions`-partition topic.
For each operation it prints the operation's own duration and the probe's round trips that
overlapped it (count, p99, max), plus the probe's baseline with no admin work. Every
round of the probe that straddles an operation is counted in it, so a stalled event loop shows as
a max near the operation's duration. The probe's thread shares this process (and the
machine's cores) with the AdminClient: an operation shorter than a scheduling hiccup may
show few or no round trips. Runs on one broker (compat.harness.OttlaBroker, its data
dir under `--work-dir`, default a temporary directory); the load average is printed at the end.
"""

from __future__ import annotations

import argparse
import os
import socket
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from compat.harness import OttlaBroker
from compat.sockets import read_frame

# ApiVersions v0: api_key 18, version 0, correlation id, client id "probe"; no body.
_HEADER = struct.Struct(">hhih")
_CLIENT_ID = b"probe"


class Probe:
    """ApiVersions round trips, back to back, each as (start, end) in time.monotonic()."""

    def __init__(self, host: str, port: int) -> None:
        self._sock = socket.create_connection((host, port))
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        self._sock.close()

    def _run(self) -> None:
        correlation = 0
        while not self._stop.is_set():
            correlation += 1
            body = _HEADER.pack(18, 0, correlation, len(_CLIENT_ID)) + _CLIENT_ID
            began = time.monotonic()
            self._sock.sendall(struct.pack(">i", len(body)) + body)
            frame = read_frame(self._sock)
            ended = time.monotonic()
            if frame is None or struct.unpack_from(">i", frame)[0] != correlation:
                raise RuntimeError("the probe's connection broke")
            self.samples.append((began, ended))

    def between(self, start: float, end: float) -> list[float]:
        """Round trips (ms) of the requests that overlapped [start, end]. Waits first for a
        round trip begun after `end`: the one in flight when the operation was answered may
        be the one that waited out a stall, and ends only after the operation's own answer."""
        deadline = time.monotonic() + 10
        while not (self.samples and self.samples[-1][0] > end) and time.monotonic() < deadline:
            time.sleep(0.001)
        return [(e - b) * 1000 for b, e in list(self.samples) if e >= start and b <= end]


def _summary(name: str, duration_ms: float, trips: list[float]) -> str:
    trips = sorted(trips)
    if not trips:
        return f"{name:<28} {duration_ms:9.1f} ms   probe: no round trip"
    p99 = trips[min(len(trips) - 1, int(len(trips) * 0.99))]
    return f"{name:<28} {duration_ms:9.1f} ms   probe: n={len(trips):<6} p99 {p99:8.2f} ms   max {trips[-1]:8.2f} ms"


def _timed(operation: Callable[[], None]) -> tuple[float, float]:
    start = time.monotonic()
    operation()
    return start, time.monotonic()


def run_round(admin: AdminClient, probe: Probe, partitions: int, round_index: int, say: Callable[[str], None]) -> None:
    grown, created, deleted = f"grow-{round_index}", f"create-{round_index}", f"delete-{round_index}"
    # Setup outside any measured window: the topic to grow and the one to delete.
    for future in admin.create_topics([NewTopic(grown, 1, 1), NewTopic(deleted, partitions, 1)], operation_timeout=120).values():
        future.result(120)
    time.sleep(0.5)
    start = time.monotonic()
    time.sleep(0.5)
    say(_summary("idle (baseline)", (time.monotonic() - start) * 1000, probe.between(start, time.monotonic())))

    def create() -> None:
        for future in admin.create_topics([NewTopic(created, partitions, 1)], operation_timeout=120).values():
            future.result(120)

    def grow() -> None:
        for future in admin.create_partitions([NewPartitions(grown, partitions)], operation_timeout=120).values():
            future.result(120)

    def delete() -> None:
        for future in admin.delete_topics([deleted], operation_timeout=120).values():
            future.result(120)

    for name, operation in ((f"CreateTopics 1x{partitions}", create), (f"CreatePartitions 1->{partitions}", grow), (f"DeleteTopics {partitions}", delete)):
        start, end = _timed(operation)
        say(_summary(name, (end - start) * 1000, probe.between(start, end)))
        time.sleep(0.3)
    for future in admin.delete_topics([grown, created], operation_timeout=120).values():
        future.result(120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--partitions", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work-dir", type=Path, default=None)
    args = parser.parse_args()
    with OttlaBroker(args.work_dir) as broker:
        host, port = broker.bootstrap.split(",")[0].rsplit(":", 1)
        admin = AdminClient({"bootstrap.servers": broker.bootstrap, "log_level": 3})
        probe = Probe(host, int(port))
        probe.start()
        try:
            for round_index in range(args.rounds):
                print(f"round {round_index + 1}", flush=True)
                run_round(admin, probe, args.partitions, round_index, lambda line: print("  " + line, flush=True))
        finally:
            probe.stop()
    print("load average: " + " ".join(f"{value:.2f}" for value in os.getloadavg()))


if __name__ == "__main__":
    main()
