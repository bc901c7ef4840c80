"""Broker CPU per MB and where it goes, the inputs of compat/SCALING.md's model of more cores.

    python -m compat.bench_cores [--seconds N] [--workload produce|consume|both|perftest] [--partitions N] [--spy] [--cpus LIST]
    python -m compat.bench_cores --handoff

Runs compat.bench's 8-partition 1 KiB workloads (librdkafka, acks=1, linger.ms=5, batch.size
1 MiB; consume from offset 0, assigned) against one `ottla serve` (compat.harness), and reads
around each the broker's user and system CPU time from /proc and this process's own (the client,
librdkafka's threads included). CPU per MB is what a shared machine measures well; the wall-clock
rate is printed only to show how busy the broker was, and a broker busy well under 100% of a
core was waiting for its client, which no broker-side parallelism can speed up. The client's
Python thread (the producer's produce() loop, the consumer's consume()) is serial: its CPU per
MB bounds what one client process can drive.

With --spy the broker also runs under py-spy --native (ptrace rights, as root has), and its busy
samples are split by the leaf of each stack into:
- GIL-held: the interpreter, and the copies and allocations it makes holding the GIL;
- loop syscalls: recv, send and epoll_ctl, which release the GIL but are made by the event
  loop's one thread, so only more event loops could overlap them;
- offloadable: pwrite, pread, fsync, sendfile, CRC-32C (the crc32c package releases the GIL
  for buffers of 32 KiB and more) and cramjam's codecs (which release it always): work a
  thread pool could take off the event loop.
and Amdahl's bound for each way of using more cores is printed beside it.
`--cpus 0` pins the broker to CPU 0 with taskset (the client stays unpinned).
`--partitions N` runs the librdkafka workloads over N partitions instead of 8. `--workload
perftest` runs compat.bench's kafka-producer-perf-test instead (300,000 records of 1 KiB to one
partition, acks=1, linger.ms=5, batch.size 1 MiB, in a JVM of its own): the client's CPU is then
that JVM's, its start and JIT compilation included, which compat.bench's perf-tool rows
leave out (their figures are the tool's steady state, after its warm-up records).

`--handoff` measures what handing one `pwrite` or `sendfile` to a worker thread costs the event
loop's thread (its `time.thread_time`, which the machine's load does not inflate) against making
the call inline, by size: offloading pays only above the size where the two cross.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import select
import socket
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from compat import bench_workloads as work
from compat.harness import OttlaBroker

PARTITIONS = 8
PERFTEST = "perftest"
PERFTEST_RECORDS = 300_000  # compat.bench's full plan's tool_warmup_records: the tool's JVM warming up
RECORD_BYTES = 1024
_CONSUME_RECORDS = 300_000
_SAMPLE_RATE = 200

GIL_HELD = "GIL-held"
LOOP_SYSCALLS = "loop syscalls"
OFFLOADABLE = "offloadable"
_IDLE = "idle"
_OFFLOADABLE_LEAVES = ("pwrite", "pread", "fsync", "fdatasync", "sendfile")
# Leaves of a thread blocked, not running: the loop in epoll, a worker polling its socket or
# waiting on its queue (a futex, under a lock, a condition or a semaphore), any thread waiting
# for the GIL. py-spy --native samples blocked threads too.
_IDLE_LEAVES = (
    "epoll_wait", "poll", "__poll", "ppoll", "futex", "__futex", "do_futex", "__lll_lock_wait",
    "pthread_cond", "__pthread_cond", "sem_", "__new_sem",
)
_LOOP_LEAVES = ("recv", "send", "epoll_ctl", "writev", "readv")


@dataclass(slots=True, frozen=True)
class Sample:
    """One workload's volume and the CPU seconds each side spent on it."""

    workload: str
    partitions: int
    megabytes: float
    seconds: float
    broker_user: float
    broker_system: float
    broker_loop: float  # of the broker's, the CPU seconds of its event loop's thread (the main one)
    client: float
    client_python: float  # of `client`, the CPU seconds of the client's Python thread alone
    split: dict[str, float] | None  # share of the broker's busy samples by kind, with --spy

    def broker_ms_per_mb(self) -> float:
        return 1000 * (self.broker_user + self.broker_system) / self.megabytes


def _broker_cpu(pid: int) -> tuple[float, float, float]:
    """User and system CPU seconds of process `pid`, and the CPU seconds of its main thread,
    where `ottla serve` runs its event loop (utime and stime of /proc/PID/stat and of
    /proc/PID/task/PID/stat)."""
    tick = os.sysconf("SC_CLK_TCK")
    process, main = (Path(path).read_text().rsplit(")", 1)[1].split() for path in (f"/proc/{pid}/stat", f"/proc/{pid}/task/{pid}/stat"))
    return int(process[11]) / tick, int(process[12]) / tick, (int(main[11]) + int(main[12])) / tick


def kind(stack: list[str]) -> str:
    """Which part of compat/SCALING.md's model one sampled stack (py-spy's frames, outermost
    first) belongs to, by its leaf; an unresolved libc address under Python is a memcpy or
    memset the interpreter makes holding the GIL."""
    leaf = stack[-1]
    if leaf.startswith(_IDLE_LEAVES):
        return _IDLE
    if leaf.startswith(_OFFLOADABLE_LEAVES) or any("crc32c" in frame or "cramjam" in frame for frame in stack[-4:]):
        return OFFLOADABLE
    if leaf.startswith(_LOOP_LEAVES):
        return LOOP_SYSCALLS
    return GIL_HELD


def sample_counts(raw: str, classify: Callable[[list[str]], str] = kind) -> collections.Counter[str]:
    """Samples in py-spy's raw (collapsed) output by what `classify` makes of each stack."""
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            counts[classify(stack.split(";"))] += int(count)
    return counts


def split(raw: str) -> dict[str, float]:
    """Shares of the busy samples in py-spy's raw (collapsed) output by `kind`."""
    counts = sample_counts(raw)
    busy = sum(count for name, count in counts.items() if name != _IDLE)
    return {name: counts[name] / busy for name in (GIL_HELD, LOOP_SYSCALLS, OFFLOADABLE)} if busy else {}


def measure(workload: str, seconds: float, *, spy: bool = False, cpus: str | None = None, partitions: int = PARTITIONS) -> Sample:
    """`workload` (produce or consume for about `seconds`, or perftest) against a fresh broker."""
    if workload == PERFTEST:
        partitions = 1
    py_spy = shutil.which("py-spy") if spy else None
    if spy and py_spy is None:
        raise RuntimeError("py-spy not found: python -m pip install -e '.[test]'")
    with tempfile.TemporaryDirectory(prefix="ottla-cores-") as tmp, OttlaBroker(Path(tmp) / "broker", cpus=cpus) as broker:
        work.create_topic(broker.bootstrap, workload, partitions)
        if workload == "consume":
            work.produce(broker.bootstrap, workload, partitions=partitions, size=RECORD_BYTES, acks="1", count=_CONSUME_RECORDS, seconds=120)
        samples = Path(tmp) / "samples.txt"
        sampler = None
        if py_spy is not None:
            sampler = subprocess.Popen(
                [py_spy, "record", "--pid", str(broker.pid), "--rate", str(_SAMPLE_RATE), "--format", "raw", "--native", "--output", str(samples)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            )
        user, system, loop = _broker_cpu(broker.pid)
        client, client_python = time.process_time(), time.thread_time()
        children = os.times()
        started = time.perf_counter()
        try:
            if workload == "produce":
                volume = work.produce(
                    broker.bootstrap, workload, partitions=partitions, size=RECORD_BYTES, acks="1", count=10**9, seconds=seconds
                ).bytes
            elif workload == PERFTEST:
                volume = _perftest(broker.bootstrap, workload)
            else:
                volume = 0
                while time.perf_counter() - started < seconds:
                    volume += work.consume(
                        broker.bootstrap, workload, partitions=partitions, records=_CONSUME_RECORDS, size=RECORD_BYTES, seconds=120
                    ).bytes
        finally:
            elapsed = time.perf_counter() - started
            client, client_python = time.process_time() - client, time.thread_time() - client_python
            # The perf tool's JVM, reaped by now: its CPU is this process's children's.
            client += sum(now - before for now, before in zip(os.times()[2:4], children[2:4]))
            user, system, loop = (now - before for now, before in zip(_broker_cpu(broker.pid), (user, system, loop)))
            if sampler is not None:
                # py-spy writes its output when interrupted, as on Ctrl-C.
                sampler.send_signal(signal.SIGINT)
                sampler.communicate(timeout=60)
        shares = split(samples.read_text()) if sampler is not None and samples.exists() else None
        return Sample(workload, partitions, volume / 1e6, elapsed, user, system, loop, client, client_python, shares)


def _perftest(bootstrap: str, topic: str) -> int:
    """compat.bench's kafka-producer-perf-test run; the bytes it sent."""
    from compat.kafka import run_tool

    ran = run_tool(
        "kafka-producer-perf-test", "--bootstrap-server", bootstrap, "--topic", topic, "--num-records", str(PERFTEST_RECORDS),
        "--record-size", str(RECORD_BYTES), "--throughput", "-1", "--command-property", "acks=1", "linger.ms=5", "batch.size=1048576",
        timeout=300,
    )
    if ran.returncode != 0:
        raise RuntimeError(f"kafka-producer-perf-test failed ({ran.returncode}):\n{ran.stdout[-2000:]}{ran.stderr[-2000:]}")
    print(ran.stdout.strip().splitlines()[-1])
    return PERFTEST_RECORDS * RECORD_BYTES


def report(sample: Sample) -> list[str]:
    """The sample's figures and, with a split, the bound on each way to more cores."""
    per_mb = sample.broker_ms_per_mb()
    busy = (sample.broker_user + sample.broker_system) / sample.seconds
    lines = [
        f"{sample.workload} 1 KiB x {sample.partitions} partitions: {sample.megabytes:.0f} MB in {sample.seconds:.1f} s, "
        f"broker busy {busy:.0%} of a core, client {sample.client / sample.seconds:.0%}",
        f"  broker CPU {per_mb:.2f} ms/MB (user {1000 * sample.broker_user / sample.megabytes:.2f}, "
        f"system {1000 * sample.broker_system / sample.megabytes:.2f}); client CPU {1000 * sample.client / sample.megabytes:.2f} ms/MB "
        f"(its Python thread {1000 * sample.client_python / sample.megabytes:.2f})",
        f"  of which the event loop's thread {1000 * sample.broker_loop / sample.megabytes:.2f} ms/MB: saturated, it would carry "
        f"{sample.megabytes / max(sample.broker_loop, 1e-3):.0f} MB/s; one core for the whole broker {1000 / per_mb:.0f} MB/s",
    ]
    if sample.split:
        held, loop, offload = (sample.split[name] for name in (GIL_HELD, LOOP_SYSCALLS, OFFLOADABLE))
        lines += [
            f"  busy samples: {held:.0%} {GIL_HELD}, {loop:.0%} {LOOP_SYSCALLS}, {offload:.0%} {OFFLOADABLE}",
            f"  bound on any number of cores: offloading to threads {1 / (held + loop):.2f}x; "
            f"an event loop per thread {1 / held:.2f}x; one process per node N x (to disk and partitions)",
        ]
    return lines


def _blocking_sendfile(sock: socket.socket, fd: int, offset: int, count: int) -> None:
    """All of `count` bytes from `offset` of `fd` to the non-blocking `sock`, polling it when full,
    as a worker thread would send a fetch's file region."""
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLOUT)
    while count:
        try:
            sent = os.sendfile(sock.fileno(), fd, offset, count)
        except BlockingIOError:
            poller.poll()
            continue
        offset, count = offset + sent, count - sent


def _drain(sock: socket.socket) -> None:
    buffer = bytearray(1 << 20)
    while sock.recv_into(buffer):
        pass


async def _handoff(directory: str) -> list[str]:
    loop = asyncio.get_running_loop()
    lines = []
    with ThreadPoolExecutor(1) as pool, tempfile.TemporaryFile(dir=directory) as file:
        fd = file.fileno()
        os.write(fd, os.urandom(8 << 20))
        for size in (16 << 10, 64 << 10, 256 << 10, 1 << 20):
            calls = max(40, (128 << 20) // size)
            data = os.urandom(size)
            for inline in (True, False):
                with tempfile.TemporaryFile(dir=directory) as target, socket.create_server(("127.0.0.1", 0)) as server:
                    # pwrite appends to a fresh file, as a segment's writes do.
                    started = time.thread_time()
                    for call in range(calls):
                        if inline:
                            os.pwrite(target.fileno(), data, call * size)
                        else:
                            await loop.run_in_executor(pool, os.pwrite, target.fileno(), data, call * size)
                    pwrite_us = (time.thread_time() - started) / calls * 1e6
                    with socket.create_connection(server.getsockname()) as client:
                        sender, _ = server.accept()
                        reader = threading.Thread(target=_drain, args=(client,), daemon=True)
                        reader.start()
                        with sender:
                            sender.setblocking(False)
                            started = time.thread_time()
                            for call in range(calls):
                                offset = call * size % ((8 << 20) - size)
                                if inline:
                                    with open(fd, "rb", closefd=False) as source:
                                        await loop.sock_sendfile(sender, source, offset, size)
                                else:
                                    await loop.run_in_executor(pool, _blocking_sendfile, sender, fd, offset, size)
                            sendfile_us = (time.thread_time() - started) / calls * 1e6
                        reader.join()
                how = "inline" if inline else "handed to a thread"
                lines.append(f"{size >> 10:>5} KiB {how:>18}: pwrite {pwrite_us:6.1f} us, sendfile {sendfile_us:6.1f} us of the loop's thread")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m compat.bench_cores", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each workload (default 8)")
    parser.add_argument("--workload", choices=("produce", "consume", "both", PERFTEST), default="both")
    parser.add_argument("--partitions", type=int, default=PARTITIONS, help=f"partitions of the librdkafka workloads (default {PARTITIONS})")
    parser.add_argument("--spy", action="store_true", help="sample the broker with py-spy --native and split its busy time")
    parser.add_argument("--cpus", metavar="LIST", help="pin the broker to these CPUs with taskset (\"0\" or \"0,1\")")
    parser.add_argument("--handoff", action="store_true", help="only the loop's CPU per pwrite and sendfile, inline and handed to a thread")
    args = parser.parse_args()
    print(f"1-min load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    if args.handoff:
        with tempfile.TemporaryDirectory(prefix="ottla-handoff-") as directory:
            print("\n".join(asyncio.run(_handoff(directory))))
        return
    for workload in ("produce", "consume") if args.workload == "both" else (args.workload,):
        print("\n".join(report(measure(workload, args.seconds, spy=args.spy, cpus=args.cpus, partitions=args.partitions))))


if __name__ == "__main__":
    main()
