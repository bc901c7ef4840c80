"""Start-up cost of Ottla: in-process (Broker.start) and as a process (`ottla serve --memory`).

    python -m compat.bench_startup [--runs N]

In-process time excludes importing the package (reported on its own line, from a fresh
interpreter); the subprocess time runs from launching the interpreter to the ready line.

Measured as a user's installed package starts: `pip install` compiles the bytecode, so the
package's is compiled first. Without that (an editable checkout run with
PYTHONDONTWRITEBYTECODE=1, as some sandboxes set) every start compiles the whole package
from source, which costs more than the start itself and grows with the code, not the work.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import os
import re
import signal
import statistics
import subprocess
import sys
import time


def _import_ms() -> float:
    code = "import time; t = time.perf_counter(); import ottla.server.broker; print((time.perf_counter() - t) * 1000)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout)


# Run in a fresh interpreter: compat reaches the broker only from outside, never by import.
_IN_PROCESS = """
import asyncio, time
from ottla.server.broker import Broker

async def main():
    started = time.perf_counter()
    broker = Broker(port=0, data_dir=None)
    await broker.start()
    elapsed = (time.perf_counter() - started) * 1000
    await broker.stop()
    print(elapsed)

asyncio.run(main())
"""


def _in_process_ms() -> float:
    out = subprocess.run([sys.executable, "-c", _IN_PROCESS], capture_output=True, text=True, check=True)
    return float(out.stdout)


def _cpu_ms(pid: int) -> float:
    """The process's own user+system CPU so far (Linux /proc): unlike the wall time, barely
    moved by other work on a loaded machine."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def _subprocess_ms() -> tuple[float, float]:
    """Wall time to the ready line, and the CPU the process spent getting there."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "ottla", "serve", "--port", "0", "--memory"],
        stderr=subprocess.PIPE,
        text=True,
    )
    line = process.stderr.readline()
    elapsed = (time.perf_counter() - started) * 1000
    cpu = _cpu_ms(process.pid)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=10)
    if not line.startswith("ottla ready"):
        raise RuntimeError(f"unexpected first line: {line!r}")
    return elapsed, cpu


def _summary(samples: list[float]) -> str:
    return f"median {statistics.median(samples):7.1f} ms   min {min(samples):7.1f} ms   max {max(samples):7.1f} ms"


def _compile_package() -> None:
    """Write the package's bytecode, as pip does when it installs a wheel."""
    spec = importlib.util.find_spec("ottla")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("ottla is not importable: install it first (pip install -e .)")
    root = list(spec.submodule_search_locations)[0]
    compileall.compile_dir(root, quiet=1, rx=re.compile(r"[/\\](node_modules|\.cache|\.git)[/\\]"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    _compile_package()
    imports = [_import_ms() for _ in range(args.runs)]
    in_process = [_in_process_ms() for _ in range(args.runs)]
    processes, cpu = zip(*(_subprocess_ms() for _ in range(args.runs)))
    print(f"import ottla.server.broker (fresh interpreter): {_summary(imports)}")
    print(f"in-process Broker.start to listening:     {_summary(in_process)}   target <= 50 ms")
    print(f"ottla serve --memory to ready line:        {_summary(list(processes))}   target <= 500 ms")
    print(f"  CPU it spent to get there:               {_summary(list(cpu))}")
    print(f"bytecode compiled first; PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r}; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"rerun: python -m compat.bench_startup --runs {args.runs}")


if __name__ == "__main__":
    main()
