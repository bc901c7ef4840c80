"""Storage engine benchmark: append and read throughput beside the disk's own speed.

    python -m compat.bench_storage [--size-mb 512] [--dir PATH] [--partitions 2000] [--rounds 3]

Appends 16 KiB batches of 1 KiB records (issue 3's shape) through
PartitionLog.append, then reads them back with 1 MiB fetches, and measures
in the same run, on the same directory, a raw sequential write and read of
the same number of bytes in the same chunk size. Writes end with an fsync on
both sides so neither is measured against the page cache alone. Finally it
times a restart (Storage.open) of a data directory with `--partitions`
partitions. Not a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import sys
import tempfile
import time

from ottla.storage import FileRegion, Storage
from ottla.wire.records import Record, build_batch

RECORD_SIZE = 1024
FETCH_SIZE = 1 << 20


def _mb_per_s(size: int, seconds: float) -> float:
    return size / seconds / 1e6


def raw_write(path: pathlib.Path, chunk: bytes, count: int) -> float:
    start = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for _ in range(count):
            os.write(fd, chunk)
        os.fsync(fd)
    finally:
        os.close(fd)
    return time.perf_counter() - start


def raw_read(path: pathlib.Path) -> tuple[int, float]:
    start = time.perf_counter()
    total = 0
    fd = os.open(path, os.O_RDONLY)
    try:
        while data := os.pread(fd, FETCH_SIZE, total):
            total += len(data)
    finally:
        os.close(fd)
    return total, time.perf_counter() - start


def storage_append(directory: pathlib.Path, batch: bytes, count: int) -> tuple[Storage, float, float]:
    """The storage, wall seconds, and CPU seconds of this process (which a busy machine
    inflates far less than wall time)."""
    storage = Storage.open(directory)
    storage.create_topic("bench", 1)
    log = storage.partition("bench", 0)
    start, start_cpu = time.perf_counter(), time.process_time()
    for _ in range(count):
        log.append(batch)
    log.flush()
    return storage, time.perf_counter() - start, time.process_time() - start_cpu


def storage_read(storage: Storage, batch_size: int, records_per_batch: int) -> tuple[int, float, float]:
    """Bytes read, seconds to copy them into memory, seconds to only locate them (sendfile's share)."""
    log = storage.partition("bench", 0)
    timings = []
    total = 0
    for materialize in (True, False):
        offset = 0
        start = time.perf_counter()
        while offset < log.high_watermark:
            result = log.read(offset, FETCH_SIZE)
            if materialize:
                total += sum(len(chunk.read() if isinstance(chunk, FileRegion) else chunk) for chunk in result.chunks)
            offset += result.size // batch_size * records_per_batch
        timings.append(time.perf_counter() - start)
    return total, timings[0], timings[1]


def restart(directory: pathlib.Path, partitions: int) -> tuple[float, float]:
    """Seconds to create and fill `partitions` partitions, then seconds to reopen them."""
    start = time.perf_counter()
    storage = Storage.open(directory)
    storage.create_topic("many", partitions)
    small = build_batch([Record(i, 1000 + i, None, b"x" * 100) for i in range(10)])
    for index in range(partitions):
        storage.partition("many", index).append(small)
    storage.close()
    created = time.perf_counter() - start
    start = time.perf_counter()
    reopened = Storage.open(directory)
    ready = time.perf_counter() - start
    assert all(reopened.partition("many", index).high_watermark == 10 for index in range(partitions))
    reopened.close()
    return created, ready


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=512, help="bytes to append (MiB)")
    parser.add_argument("--dir", type=pathlib.Path, default=None, help="directory on the disk to measure")
    parser.add_argument("--partitions", type=int, default=2000, help="partitions for the restart measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating raw/storage rounds; the best of each counts")
    args = parser.parse_args(argv)

    root = pathlib.Path(tempfile.mkdtemp(prefix="ottla-bench-", dir=args.dir))
    try:
        records = [Record(i, 1_700_000_000_000, None, os.urandom(RECORD_SIZE - 20)) for i in range(16)]
        batch = build_batch(records)
        count = args.size_mb * (1 << 20) // len(batch)
        size = count * len(batch)
        print(f"{count} batches of {len(batch)} bytes (16 records of ~1 KiB), {size / 1e6:.0f} MB, in {root}")

        # Alternate raw and storage runs and keep each one's best, so neither pays for
        # the other's page-cache writeback; each run's files are deleted after it.
        best: dict[str, float] = {}
        read_total = raw_total = 0
        for round_number in range(args.rounds):
            raw_path = root / f"raw-{round_number}.bin"
            best["raw_write"] = min(best.get("raw_write", 1e9), raw_write(raw_path, batch, count))
            raw_total, seconds = raw_read(raw_path)
            best["raw_read"] = min(best.get("raw_read", 1e9), seconds)
            raw_path.unlink()
            storage, seconds, cpu_seconds = storage_append(root / f"data-{round_number}", batch, count)
            best["append"] = min(best.get("append", 1e9), seconds)
            best["append_cpu"] = min(best.get("append_cpu", 1e9), cpu_seconds)
            read_total, seconds, locate_seconds = storage_read(storage, len(batch), len(records))
            best["read"] = min(best.get("read", 1e9), seconds)
            best["locate"] = min(best.get("locate", 1e9), locate_seconds)
            storage.close()
            shutil.rmtree(root / f"data-{round_number}")
        assert read_total == raw_total == size

        raw, append = _mb_per_s(size, best["raw_write"]), _mb_per_s(size, best["append"])
        raw_r, read = _mb_per_s(raw_total, best["raw_read"]), _mb_per_s(read_total, best["read"])
        print(f"raw sequential write + fsync  {raw:9.1f} MB/s")
        print(f"storage append + fsync        {append:9.1f} MB/s   {append / raw:6.1%} of raw  ({count / best['append']:,.0f} batches/s)")
        print(f"  append CPU per batch        {best['append_cpu'] / count * 1e6:9.1f} us   (validation, offsets, write syscall, indexes)")
        print(f"raw sequential read (pread)   {raw_r:9.1f} MB/s")
        print(f"storage read, copied          {read:9.1f} MB/s   {read / raw_r:6.1%} of raw")
        print(f"storage read, located only    {_mb_per_s(read_total, best['locate']):9.1f} MB/s   (what sendfile leaves to Python)")

        created, ready = restart(root / "restart", args.partitions)
        print(f"restart with {args.partitions} partitions      {ready:9.3f} s to ready   (created and filled in {created:.2f} s)")
        print("rerun: python -m compat.bench_storage " + " ".join(sys.argv[1:]))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
