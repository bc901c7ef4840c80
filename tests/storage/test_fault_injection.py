"""A crash at every step of a segment roll, an index write, a compaction, a topic creation (in
one step and in three), a topic metadata write, a producer snapshot write and a topic deletion
leaves a directory that `Storage.open` recovers.

Each operation runs in a forked child whose file-system calls (open for writing, write,
pwrite, ftruncate, fsync, rename/replace, unlink) are counted; at step k the child dies
with os._exit, before the call or halfway through a write. Unflushed user-space buffers
are lost and nothing is cleaned up, as in a real crash. The parent then reopens the
directory: it must open, hold every record appended before the operation, and take appends."""

from __future__ import annotations

import builtins
import io
import os
import pathlib
import shutil
import traceback
from collections.abc import Callable

import pytest
from conftest import read_bytes

from ottla.storage import Storage
from ottla.wire.records import Record, build_batch, iter_records, scan_batches

CRASHED, FINISHED, NOT_A_WRITE = 17, 18, 19
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class _Steps:
    """Counts file-system steps; dies at step `crash_at` (`half`: after half of a write)."""

    def __init__(self, crash_at: int, half: bool) -> None:
        self.crash_at, self.half, self.count = crash_at, half, 0

    def step(self, write: Callable[[int], object] | None = None, size: int = 0) -> None:
        if self.count == self.crash_at:
            if not self.half:
                os._exit(CRASHED)
            if write is None:
                os._exit(NOT_A_WRITE)
            write(size // 2)
            os._exit(CRASHED)
        self.count += 1

    def install(self) -> None:
        real = {name: getattr(os, name) for name in ("open", "write", "pwrite", "ftruncate", "fsync", "replace", "rename", "unlink")}
        real_open = builtins.open
        steps = self

        def counted(name: str) -> Callable[..., object]:
            def call(*args: object, **kwargs: object) -> object:
                steps.step()
                return real[name](*args, **kwargs)
            return call

        def os_open(path: object, flags: int, *args: object, **kwargs: object) -> int:
            if flags & _WRITE_FLAGS:
                steps.step()
            return real["open"](path, flags, *args, **kwargs)

        def os_write(fd: int, data: bytes) -> int:
            steps.step(lambda n: real["write"](fd, bytes(data)[:n]), len(data))
            return real["write"](fd, data)

        def os_pwrite(fd: int, data: bytes, position: int) -> int:
            steps.step(lambda n: real["pwrite"](fd, bytes(data)[:n], position), len(data))
            return real["pwrite"](fd, data, position)

        class CountedFile:
            """A file opened for writing whose writes are steps (buffered: lost at a crash)."""

            def __init__(self, file: io.BufferedWriter) -> None:
                self._file = file

            def write(self, data: bytes) -> int:
                steps.step(lambda n: self._file.write(bytes(data)[:n]) and self._file.flush(), len(data))
                return self._file.write(data)

            def __getattr__(self, name: str) -> object:
                return getattr(self._file, name)

            def __enter__(self) -> "CountedFile":
                return self

            def __exit__(self, *exc: object) -> None:
                self._file.close()

        def open_(file: object, mode: str = "r", *args: object, **kwargs: object) -> object:
            opened = real_open(file, mode, *args, **kwargs)
            if set(mode) & set("wax+"):
                steps.step()
                return CountedFile(opened)
            return opened

        for name in ("ftruncate", "fsync", "replace", "rename", "unlink"):
            setattr(os, name, counted(name))
        os.open, os.write, os.pwrite = os_open, os_write, os_pwrite
        builtins.open = io.open = open_


def crash_during(directory: pathlib.Path, operation: Callable[[Storage], object], crash_at: int, half: bool) -> int:
    """Run `operation` on the reopened directory in a child that dies at step `crash_at`."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            storage = Storage.open(directory)
            _Steps(crash_at, half).install()
            operation(storage)
            code = FINISHED
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def records(storage: Storage, topic: str, partition: int = 0) -> list[tuple[int, bytes | None, bytes | None]]:
    log = storage.partition(topic, partition)
    out: list[tuple[int, bytes | None, bytes | None]] = []
    offset = log.log_start_offset
    while offset < log.log_end_offset:
        batches = list(scan_batches(read_bytes(log.read(offset, 1 << 20)), verify_crc=True))
        for _, batch in batches:
            out.extend((r.offset, None if r.key is None else bytes(r.key), None if r.value is None else bytes(r.value)) for r in iter_records(batch))
        offset = batches[-1][0].next_offset
    return out


def keyed(pairs: list[tuple[bytes, bytes]], producer_id: int = -1, sequence: int = -1) -> bytes:
    return build_batch([Record(i, 1000, k, v) for i, (k, v) in enumerate(pairs)],
                       producer_id=producer_id, producer_epoch=0 if producer_id >= 0 else -1, base_sequence=sequence)


def fill(directory: pathlib.Path) -> None:
    """Topic `t` (small index interval, idempotent producer 7) and compacted `c` with three closed segments."""
    storage = Storage.open(directory)
    storage.create_topic("t", 1, {"index.interval.bytes": "100"})
    storage.create_topic("c", 1, {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0", "index.interval.bytes": "100"})
    t, c = storage.partition("t", 0), storage.partition("c", 0)
    for n in range(10):
        t.append(keyed([(b"k%d" % n, b"v%d-" % n + b"x" * 60)], producer_id=7, sequence=n))
    for n in range(4):
        if n:
            c.roll()
        c.append(keyed([(b"a", b"a%d" % n), (b"b%d" % n, b"b"), (b"c", b"c%d" % n)]))
    c.roll()
    c.append(keyed([(b"z", b"active")]))
    storage.close()


def roll(storage: Storage) -> None:
    """An append first, so the roll also flushes the old segment and writes a producer snapshot."""
    log = storage.partition("t", 0)
    log.append(keyed([(b"k10", b"late")], producer_id=7, sequence=10))
    log.roll()


def index_writes(storage: Storage) -> None:
    log = storage.partition("t", 0)
    for n in range(10, 14):
        log.append(keyed([(b"k%d" % n, b"v%d-" % n + b"x" * 60)], producer_id=7, sequence=n))
    storage.flush()


def compaction(storage: Storage) -> None:
    assert storage.compact(now_ms=1 << 42) > 0


def create_topic(storage: Storage) -> None:
    storage.create_topic("u", 2)


def create_topic_in_steps(storage: Storage) -> None:
    """Reserved, its files written (on a thread in the broker), then opened."""
    info = storage.reserve_topic("u", 2)
    assert info is not None
    storage.write_topic_files([info])
    storage.open_reserved_topic(info)


def set_configs(storage: Storage) -> None:
    storage.set_topic_configs("t", {"index.interval.bytes": "100", "retention.ms": "123456"})


def add_partitions(storage: Storage) -> None:
    storage.add_partitions("t", 3)


def snapshot_at_close(storage: Storage) -> None:
    storage.partition("t", 0).append(keyed([(b"k10", b"late")], producer_id=7, sequence=10))
    storage.close()


def delete_topic(storage: Storage) -> None:
    """Created, deleted (its directories set aside), then removed after the delay."""
    storage.create_topic("u", 2)
    storage.partition("u", 0).append(keyed([(b"u", b"doomed")]))
    storage.delete_topic("u", now_ms=0)
    storage.delete_expired_files(now_ms=1 << 42)


OPERATIONS = [roll, index_writes, compaction, create_topic, create_topic_in_steps, set_configs, add_partitions, snapshot_at_close, delete_topic]


def check_recovered(directory: pathlib.Path, before: dict[str, list[tuple[int, bytes | None, bytes | None]]], operation: Callable[[Storage], object]) -> None:
    storage = Storage.open(directory)
    assert not [path for path in directory.rglob("*") if path.name.endswith((".deleted", "-delete"))], "deletions' leftovers stay"
    after_t = records(storage, "t")
    assert after_t[: len(before["t"])] == before["t"]
    assert [offset for offset, _, _ in after_t] == list(range(len(after_t)))
    after_c = records(storage, "c")
    if operation is compaction:
        # Either cleaned or not: offsets kept, only superseded records gone, the latest per key kept.
        assert set(after_c) <= set(before["c"])
        latest = {key: (offset, key, value) for offset, key, value in before["c"]}
        assert set(latest.values()) <= set(after_c)
    else:
        assert after_c == before["c"]
    if storage.topic("u") is not None:
        for partition in range(2):
            storage.partition("u", partition).append(keyed([(b"u", b"u")]))
            assert records(storage, "u", partition)[-1][2] == b"u"
    info = storage.topic("t")
    assert info is not None
    for partition in range(1, info.partitions):
        storage.partition("t", partition).append(keyed([(b"new", b"new")]))
        assert records(storage, "t", partition) == [(0, b"new", b"new")]
    # The producer's state survived: a retry of its last batch is a duplicate, the next is appended.
    log = storage.partition("t", 0)
    end = log.log_end_offset
    assert log.append(keyed([after_t[-1][1:]], producer_id=7, sequence=end - 1)).base_offset == end - 1
    assert log.log_end_offset == end
    assert log.append(keyed([(b"next", b"next")], producer_id=7, sequence=end)).base_offset == end
    storage.partition("c", 0).append(keyed([(b"z", b"after")]))
    storage.close()
    reopened = Storage.open(directory)
    assert records(reopened, "t")[-1] == (end, b"next", b"next")
    assert records(reopened, "c")[-1][1:] == (b"z", b"after")
    reopened.close()


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda f: f.__name__)
def test_a_crash_at_every_step_recovers(tmp_path: pathlib.Path, operation: Callable[[Storage], object]) -> None:
    pristine = tmp_path / "pristine"
    fill(pristine)
    opened = Storage.open(pristine)
    before = {"t": records(opened, "t"), "c": records(opened, "c")}
    opened.close()
    crashes = 0
    for half in (False, True):
        for crash_at in range(500):
            directory = tmp_path / f"{half}-{crash_at}"
            shutil.copytree(pristine, directory)
            code = crash_during(directory, operation, crash_at, half)
            if code == FINISHED:
                break
            assert code in (CRASHED, NOT_A_WRITE), f"child failed at step {crash_at} (half={half}): exit {code}"
            if code == CRASHED:
                crashes += 1
                check_recovered(directory, before, operation)
        else:
            pytest.fail("the operation never finished")
    assert crashes >= 2
