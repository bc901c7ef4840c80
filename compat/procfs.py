"""What Linux's /proc says about a broker process, for the benchmarks and the soak: its memory,
its CPU time, its open-file limit, and the connections it holds."""

from __future__ import annotations

import os
from pathlib import Path


def rss_bytes(pid: int) -> int:
    """Resident set size of process `pid`."""
    return _status_field(pid, "VmRSS:") * 1024


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time process `pid` has used (utime and stime of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def on_cpu_seconds(pid: int) -> float:
    """CPU time the threads of process `pid` now running have used, to the nanosecond (the first
    field of each /proc/PID/task/TID/schedstat): `cpu_seconds` counts in clock ticks (10 ms),
    too coarse for a step that costs the broker a few milliseconds. Threads that ended are not
    counted, so it suits processes whose threads live as long as they do (a broker's)."""
    return sum(thread_cpu_seconds(pid).values())


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds, to the nanosecond, each thread of process `pid` now running has used, by
    thread id (the first field of /proc/PID/task/TID/schedstat)."""
    seconds = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            seconds[int(task.name)] = int((task / "schedstat").read_text().split()[0]) / 1e9
        except (FileNotFoundError, ProcessLookupError):
            continue
    return seconds


def thread_names(pid: int) -> dict[int, str]:
    """The kernel's name (comm, 15 characters at most) of each thread of process `pid` now
    running: a JVM names its threads there; CPython 3.11 does not (every thread keeps the
    process's name)."""
    names = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            names[int(task.name)] = (task / "comm").read_text().strip()
        except (FileNotFoundError, ProcessLookupError):
            continue
    return names


def open_file_limit(pid: int) -> int:
    """The soft RLIMIT_NOFILE of process `pid`."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise RuntimeError(f"no open-file limit in /proc/{pid}/limits")


def established(port: int) -> int:
    """Established TCP connections whose local port is `port`: the server side of each."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    count += 1
    return count


def _status_field(pid: int, name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name):
            return int(line.split()[1])
    raise RuntimeError(f"no {name} in /proc/{pid}/status")
