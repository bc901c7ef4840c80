"""`python -m compat.bench_cores` (compat/SCALING.md's measurements) runs end to end and its
py-spy split puts each kind of call where the model needs it. Figures on a shared CI machine
say nothing, so none is asserted beyond being measured at all."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from compat.bench_cores import GIL_HELD, LOOP_SYSCALLS, OFFLOADABLE, split

REPO = Path(__file__).resolve().parents[2]


def test_bench_cores_measures_broker_and_client_cpu_per_mb() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "compat.bench_cores", "--workload", "produce", "--seconds", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    figures = re.search(r"broker CPU ([\d.]+) ms/MB .* client CPU ([\d.]+) ms/MB \(its Python thread ([\d.]+)\)", run.stdout)
    assert figures is not None, run.stdout
    broker, client, client_python = (float(value) for value in figures.groups())
    assert broker > 0 and client >= client_python > 0, run.stdout


def test_bench_cores_measures_the_perf_tool_and_its_jvm() -> None:
    """compat.bench's kafka-producer-perf-test run: the client's CPU is the tool's JVM's."""
    run = subprocess.run(
        [sys.executable, "-m", "compat.bench_cores", "--workload", "perftest"], cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    figures = re.search(r"perftest 1 KiB x 1 partitions: .* broker CPU ([\d.]+) ms/MB .* client CPU ([\d.]+) ms/MB", run.stdout, re.DOTALL)
    assert figures is not None, run.stdout
    broker, client = (float(value) for value in figures.groups())
    assert broker > 0 and client > 0, run.stdout


def test_split_sorts_calls_by_whether_they_can_leave_the_event_loop() -> None:
    """py-spy's raw lines (stack;frames count): idle (the loop in epoll, a worker blocked on its
    queue or polling its socket) is left out of the shares; pwrite and
    CRC-32C may go to a thread; recv is the loop's own; the interpreter holds the GIL."""
    raw = "\n".join([
        "main (cli.py:1);_run_once (base_events.py:1);epoll_wait (libc.so.6) 50",
        "main (cli.py:1);append (storage/segment.py:103);pwrite64 (libc.so.6) 30",
        "main (cli.py:1);iter_batch_fields (wire/records/batch.py:202);_crc32c_hw_adler (/crc32c/ext/crc32c_adler.c:260) 10",
        "main (cli.py:1);_read_ready (selector_events.py:1);recv (libc.so.6) 20",
        "main (cli.py:1);handle (server/handlers/produce.py:113) 40",
        "_bootstrap (threading.py:1);_sendfile_worker (server/connection.py:1);__futex_abstimed_wait_common (libc.so.6) 70",
        "_bootstrap (threading.py:1);_send_parts (server/connection.py:1);poll (libc.so.6) 5",
    ])
    assert split(raw) == {GIL_HELD: 0.4, LOOP_SYSCALLS: 0.2, OFFLOADABLE: 0.4}
