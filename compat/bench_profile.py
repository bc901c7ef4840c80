"""Where the broker's time goes under one workload: `python -m compat.bench --profile WORKLOAD`.

Starts `ottla serve` (compat.harness), attaches py-spy (a sampling profiler that reads the
process from outside, so the broker runs unmodified; it needs ptrace rights, which root has) for
the length of the workload, and prints the functions with the most samples: by own time (the
leaf of the stack) and by time including callees, for Ottla's own code. Idle time in the event
loop's select is not sampled, so shares are of the time the broker was busy.

- produce: librdkafka producing 1 KiB records, acks=1, linger.ms=5, one partition.
- produce-8p: the same over eight partitions.
- fetch: librdkafka consumers reading a 1-partition topic of 1 KiB records from offset 0, over
  and over (filled before sampling starts).
- small: single-record acks=1 Produce requests, then Metadata requests, over 8 connections.
"""

from __future__ import annotations

import collections
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from compat import bench_workloads as work
from compat.harness import REPO_ROOT, OttlaBroker

SAMPLE_RATE = 200
_FILL_RECORDS = 100_000


def _produce(bootstrap: str, seconds: float) -> None:
    work.create_topic(bootstrap, "profile", 1)
    work.produce(bootstrap, "profile", partitions=1, size=1024, acks="1", count=10**9, seconds=seconds)


def _produce_8_partitions(bootstrap: str, seconds: float) -> None:
    work.create_topic(bootstrap, "profile-8p", 8)
    work.produce(bootstrap, "profile-8p", partitions=8, size=1024, acks="1", count=10**9, seconds=seconds)


def _fill(bootstrap: str) -> None:
    work.create_topic(bootstrap, "profile", 1)
    work.produce(bootstrap, "profile", partitions=1, size=1024, acks="1", count=_FILL_RECORDS, seconds=120)


def _fetch(bootstrap: str, seconds: float) -> None:
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        work.consume(bootstrap, "profile", partitions=1, records=_FILL_RECORDS, size=1024, seconds=120)


def _small(bootstrap: str, seconds: float) -> None:
    work.create_topic(bootstrap, "profile", 1)
    for frame in (work.produce_frame("profile"), work.metadata_frame("profile")):
        work.request_rate(bootstrap, frame, connections=8, seconds=seconds / 2)


# name -> (set-up that is not sampled, the sampled workload)
WORKLOADS: dict[str, tuple[Callable[[str], None] | None, Callable[[str, float], None]]] = {
    "produce": (None, _produce),
    "produce-8p": (None, _produce_8_partitions),
    "fetch": (_fill, _fetch),
    "small": (None, _small),
}


def profile(
    workload: str, seconds: float, top: int = 15, *, event_loop: str | None = None, cpus: str | None = None, storage: str | None = None,
) -> str:
    """`workload` against a broker on `event_loop`, pinned to `cpus`, on `storage` (OttlaBroker's), under py-spy."""
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        raise RuntimeError("py-spy not found: python -m pip install -e '.[test]'")
    prepare, run = WORKLOADS[workload]
    with tempfile.TemporaryDirectory(prefix="ottla-profile-") as tmp, OttlaBroker(Path(tmp) / "broker", event_loop=event_loop, cpus=cpus, storage=storage) as broker:
        if prepare is not None:
            prepare(broker.bootstrap)
        output = Path(tmp) / "samples.txt"
        spy = subprocess.Popen(
            [py_spy, "record", "--pid", str(broker.pid), "--rate", str(SAMPLE_RATE), "--format", "raw", "--function", "--full-filenames",
             "--output", str(output)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        started = time.perf_counter()
        try:
            run(broker.bootstrap, seconds)
        finally:
            sampled = time.perf_counter() - started
            # py-spy writes its output when interrupted, as on Ctrl-C.
            spy.send_signal(signal.SIGINT)
            _, errors = spy.communicate(timeout=60)
        if not output.exists():
            raise RuntimeError(f"py-spy wrote no samples ({spy.returncode}): {errors.strip()}")
        return report(output.read_text(), workload, sampled, top)


def _short(frame: str) -> str:
    """'func (/abs/path/file.py:12)' -> 'func (server/file.py:12)' for our code, else the library path."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")")
    root = str(REPO_ROOT) + "/"
    if path.startswith(root):
        path = path[len(root):]
    else:
        for marker in ("site-packages/", "/lib/python3.11/", "/lib/python3."):
            if marker in path:
                path = path.split(marker, 1)[1]
                break
    return f"{name} ({path})"


def _ours(frame: str) -> bool:
    return any(f"({package}/" in frame for package in ("server", "storage", "wire"))


def report(raw: str, workload: str, seconds: float, top: int) -> str:
    """Top functions by own and by inclusive samples, from py-spy's raw (collapsed) stacks."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_short(frame) for frame in stack.split(";")]
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
    title = f"profile {workload}: {seconds:.0f} s sampled at {SAMPLE_RATE}/s"
    if not total:
        return f"{title}: the broker was never busy"
    # A share well under 100% means the broker waited on its clients: something else bounds the workload.
    busy = total / (seconds * SAMPLE_RATE)
    lines = [f"{title}: {total} busy samples, the broker busy {busy:.0%} of the time", "", "own time (leaf of the stack):"]
    lines += [f"  {count / total:6.1%}  {frame}" for frame, count in own.most_common(top)]
    lines += ["", "including callees, Ottla's code only:"]
    lines += [f"  {count / total:6.1%}  {frame}" for frame, count in [(f, c) for f, c in inclusive.most_common() if _ours(f)][:top]]
    return "\n".join(lines)
