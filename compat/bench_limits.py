"""What this machine allows, measured in the same run as the broker: the ceilings of compat.bench.

- disk: raw sequential write + fsync of the data dir's disk (compat.bench_storage.raw_write).
- sink: loopback TCP into a plain asyncio Protocol that only counts bytes.
- echo: a plain asyncio Protocol that writes back what it reads; compat.bench drives it with the
  same client and the same request frames it sends the broker, so the ratio is the broker's own cost.

The two servers run in their own process (`python -m compat.bench_limits sink|echo`, which prints
its port and serves until stdin closes), as the broker does, so client and server each get a core.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from compat.bench_storage import raw_write

CHUNK = 1 << 20
_COUNT = struct.Struct(">q")


def disk_write_mb_s(directory: Path, size_mb: int, rounds: int = 2) -> float:
    """Best of `rounds` raw sequential writes of `size_mb` MiB in 1 MiB chunks, ending with fsync."""
    chunk = os.urandom(CHUNK)
    path = directory / "raw-disk.bin"
    try:
        best = min(raw_write(path, chunk, size_mb) for _ in range(rounds))
    finally:
        path.unlink(missing_ok=True)
    return size_mb * CHUNK / best / 1e6


@contextmanager
def limit_server(kind: str, cpus: str | None = None) -> Iterator[tuple[str, int]]:
    """A `sink` or `echo` server process on a free loopback port; stopped by closing its stdin."""
    with server_process("compat.bench_limits", kind, cpus=cpus) as address:
        yield address


@contextmanager
def server_process(module: str, *args: str, cpus: str | None = None) -> Iterator[tuple[str, int]]:
    """`python -m module args` serving on the loopback port it prints first, until its stdin
    closes; pinned to `cpus` (taskset's list) when given, as the brokers it stands beside are."""
    command = [*(["taskset", "--cpu-list", cpus] if cpus else []), sys.executable, "-m", module, *args]
    with spawned_server(command) as (_, host, port):
        yield host, port


@contextmanager
def spawned_server(command: list[str], stop_seconds: float = 10) -> Iterator[tuple[int, str, int]]:
    """`command` serving on the loopback port it prints first: its pid, host and port. Stopped by
    closing its stdin, killed if it has not ended `stop_seconds` later."""
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.strip().isdigit():
            raise RuntimeError(f"{shlex.join(command)} did not start: {line!r}")
        yield proc.pid, "127.0.0.1", int(line)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(stop_seconds)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def sink_mb_s(address: tuple[str, int], size_mb: int, rounds: int = 2) -> float:
    """Best of `rounds` blocking sends of `size_mb` MiB to the sink, timed until it confirms the count."""
    chunk = os.urandom(CHUNK)
    best = float("inf")
    for _ in range(rounds):
        with socket.create_connection(address, timeout=60) as sock:
            started = time.perf_counter()
            for _ in range(size_mb):
                sock.sendall(chunk)
            sock.shutdown(socket.SHUT_WR)
            reply = b""
            while len(reply) < _COUNT.size:
                data = sock.recv(_COUNT.size - len(reply))
                if not data:
                    raise ConnectionError("sink closed before confirming the byte count")
                reply += data
            best = min(best, time.perf_counter() - started)
        (received,) = _COUNT.unpack(reply)
        if received != size_mb * CHUNK:
            raise RuntimeError(f"sink received {received} of {size_mb * CHUNK} bytes")
    return size_mb * CHUNK / best / 1e6


class _Sink(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.received = 0

    def data_received(self, data: bytes) -> None:
        self.received += len(data)

    def eof_received(self) -> bool:
        self.transport.write(_COUNT.pack(self.received))  # type: ignore[attr-defined]
        self.transport.close()
        return False


class _Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[attr-defined]


async def _serve(kind: str) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server({"sink": _Sink, "echo": _Echo}[kind], "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    # Serve until the parent closes our stdin (or dies).
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1]))
