"""The broker's instructions per small request, counted by callgrind: `python -m compat.bench_instructions`.

A rate on this shared machine moves 1.5-2x with its load; the number of instructions the broker
executes per request does not, so a change to the per-request path is judged by this count
(before and after, same command) and its rates only in alternating runs.

Starts `ottla serve` under `valgrind --tool=callgrind` with instrumentation off (so it starts in
seconds), creates a one-partition topic, and for each kind of request of compat.bench's `small`
row (compat.bench_workloads.small_requests: a single-record acks=1 Produce v9, a Metadata v12 for
that topic) sends `--warmup` of them over `--connections` connections with one in flight each,
turns instrumentation on and zeroes the counters (`callgrind_control`), sends `--count` more the
same way, and dumps: the dump's instructions (Ir, every thread of the broker, the event loop's
wake-ups included) over `--count`. The clients outrun a broker under valgrind, so each turn of its
loop finds every connection's request waiting: the saturated case the benchmark measures.

`--responder` counts compat.bench_ceiling's minimal responder the same way instead: the least a
Python asyncio server answering these requests executes, the floor for Ottla's count.
`--keep DIR` keeps the dumps, for `callgrind_annotate DIR/callgrind.out.produce`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from compat import bench_workloads as work
from compat.bench_limits import spawned_server
from compat.harness import OttlaBroker

_SIZE = struct.Struct(">i")
_TOTALS = re.compile(r"^(?:summary|totals): (\d+)", re.M)


def _valgrind(out_dir: Path) -> list[str]:
    """Callgrind with instrumentation off until `_control(pid, "--instr=on")`."""
    return ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out_dir}/callgrind.out.%p"]


def _control(pid: int, *args: str) -> None:
    """A callgrind_control command to a server under callgrind; it acts on the server's next wake-up."""
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True, timeout=120)


class _CallgrindBroker(OttlaBroker):
    """`ottla serve` under callgrind."""

    def __init__(self, out_dir: Path, **kwargs: object) -> None:
        super().__init__(ready_timeout=300, stop_timeout=120, **kwargs)  # type: ignore[arg-type]
        self.out_dir = out_dir

    def _command(self, port: int) -> list[str]:
        return _valgrind(self.out_dir) + super()._command(port)


@contextmanager
def _broker(out_dir: Path, event_loop: str | None) -> Iterator[tuple[int, str, int]]:
    """Ottla on `event_loop` under callgrind: its pid, host and port."""
    with _CallgrindBroker(out_dir, event_loop=event_loop) as broker:
        yield broker.pid, broker.host, broker.port


@contextmanager
def _responder(out_dir: Path) -> Iterator[tuple[int, str, int]]:
    """compat.bench_ceiling's responder under callgrind, serving until its stdin closes."""
    (out_dir / "responder").mkdir(exist_ok=True)
    command = [*_valgrind(out_dir), sys.executable, "-m", "compat.bench_ceiling", str(out_dir / "responder")]
    with spawned_server(command, stop_seconds=120) as server:
        yield server


async def _send(host: str, port: int, frame: bytes, connections: int, count: int) -> bytes:
    """`count` requests over `connections` connections, one in flight each; the first answer."""

    async def one(requests: int) -> bytes:
        reader, writer = await asyncio.open_connection(host, port)
        first = b""
        try:
            for _ in range(requests):
                writer.write(frame)
                size = _SIZE.unpack(await reader.readexactly(4))[0]
                answer = await reader.readexactly(size)
                first = first or answer
        finally:
            writer.close()
        return first

    shares = [count // connections + (i < count % connections) for i in range(connections)]
    answers = await asyncio.gather(*(one(n) for n in shares if n))
    return answers[0]


def _count(server: tuple[int, str, int], out_dir: Path, name: str, frame: bytes, connections: int, warmup: int, count: int) -> tuple[int, float]:
    """Instructions of `count` requests of `frame` after `warmup` of them, and the seconds taken."""
    pid, host, port = server
    asyncio.run(_send(host, port, frame, connections, warmup))
    _control(pid, "--instr=on")
    _control(pid, "--zero")
    started = time.perf_counter()
    first = asyncio.run(_send(host, port, frame, connections, count))
    seconds = time.perf_counter() - started
    _control(pid, "--dump")
    _control(pid, "--instr=off")
    (name == "produce" and work.check_produce_response or work.check_metadata_response)(first)
    latest = max(out_dir.glob(f"callgrind.out.{pid}.*"), key=lambda path: path.stat().st_mtime)
    kept = latest.rename(out_dir / f"callgrind.out.{name}")
    match = _TOTALS.search(kept.read_text(errors="replace"))
    if match is None:
        raise RuntimeError(f"no totals in callgrind dump {latest}")
    return int(match[1]), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2000)
    parser.add_argument("--count", type=int, default=4000)
    parser.add_argument("--only", choices=("produce", "metadata"), action="append")
    parser.add_argument("--event-loop", choices=("asyncio", "uvloop"), help="the broker's (`ottla serve --event-loop`)")
    parser.add_argument("--responder", action="store_true", help="count compat.bench_ceiling's minimal responder instead")
    parser.add_argument("--keep", type=Path, help="keep the callgrind dumps in this directory")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed")
    out_dir = Path(args.keep or tempfile.mkdtemp(prefix="ottla-callgrind-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    topic = "instructions"
    with (_responder(out_dir) if args.responder else _broker(out_dir, args.event_loop)) as server:
        work.create_topic(f"{server[1]}:{server[2]}", topic, 1)
        frames = {"produce": work.produce_frame(topic), "metadata": work.metadata_frame(topic)}
        for name in args.only or frames:
            instructions, seconds = _count(server, out_dir, name, frames[name], args.connections, args.warmup, args.count)
            print(f"{name}: {instructions / args.count / 1000:.1f}k instructions per request "
                  f"({instructions} over {args.count}, {args.connections} connections, {seconds:.0f} s under callgrind)", flush=True)
    if args.keep is None:
        shutil.rmtree(out_dir)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
