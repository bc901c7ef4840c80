"""Every file the broker replaces is replaced durably: the directory is fsynced after the rename.

A crash test cannot see this (a killed process loses no directory entry the kernel already
has; only a power loss does), so the system calls are recorded instead: each `os.replace`
or `os.rename` must be followed by an fsync of a descriptor opened on the target's
directory before the next rename. Renames for deletion (`.deleted`) are exempt: one that
is lost only brings back a file that is deleted again. Without it a power loss after the rename can bring the
old file back: a producer-id block already handed out, a checkpoint, a compacted segment."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable

import pytest
from conftest import batch

from ottla.server.txn.coordinator import ProducerIdManager
from ottla.storage import Storage
from ottla.wire.records import Record, build_batch

SEGMENT = "00000000000000000000"


class SyscallLog:
    """Renames (by target) and fsyncs of directories, in the order they happened."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.events: list[tuple[str, pathlib.Path]] = []
        opened: dict[int, pathlib.Path] = {}
        real_open, real_fsync, real_replace, real_rename = os.open, os.fsync, os.replace, os.rename

        def record_open(path: object, flags: int, *args: object, **kwargs: object) -> int:
            descriptor = real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]
            opened[descriptor] = pathlib.Path(os.fsdecode(path))  # type: ignore[arg-type]
            return descriptor

        def record_fsync(descriptor: int) -> None:
            path = opened.get(descriptor)
            if path is not None and path.is_dir():
                self.events.append(("fsync-dir", path))
            real_fsync(descriptor)

        def record_rename(real: Callable[[object, object], None]) -> Callable[[object, object], None]:
            def rename(source: object, target: object) -> None:
                real(source, target)
                self.events.append(("rename", pathlib.Path(os.fsdecode(target))))  # type: ignore[arg-type]
            return rename

        monkeypatch.setattr(os, "open", record_open)
        monkeypatch.setattr(os, "fsync", record_fsync)
        monkeypatch.setattr(os, "replace", record_rename(real_replace))
        monkeypatch.setattr(os, "rename", record_rename(real_rename))

    def renamed(self) -> list[pathlib.Path]:
        return [path for kind, path in self.events if kind == "rename"]

    def undurable_renames(self) -> list[pathlib.Path]:
        """Targets whose directory was not fsynced between their rename and the next one."""
        missing = []
        for slot, (kind, target) in enumerate(self.events):
            if kind != "rename" or target.name.endswith(".deleted"):
                continue
            following = self.events[slot + 1 :]
            until_next_rename = following[: next((i for i, (k, _) in enumerate(following) if k == "rename"), len(following))]
            if ("fsync-dir", target.parent) not in until_next_rename:
                missing.append(target)
        return missing


def keyed(*pairs: tuple[bytes, bytes]) -> bytes:
    return build_batch([Record(i, 1000, key, value) for i, (key, value) in enumerate(pairs)])


def one_topic(directory: pathlib.Path, configs: dict[str, str] | None = None) -> Storage:
    storage = Storage.open(directory)
    storage.create_topic("t", 1, {"index.interval.bytes": "100", **(configs or {})})
    return storage


def create_topic(directory: pathlib.Path) -> Callable[[], object]:
    storage = Storage.open(directory)
    return lambda: storage.create_topic("t", 1)


def delete_records(directory: pathlib.Path) -> Callable[[], object]:
    storage = one_topic(directory)
    log = storage.partition("t", 0)
    log.append(batch(3))
    return lambda: log.delete_records(2)


def producer_snapshot(directory: pathlib.Path) -> Callable[[], object]:
    storage = one_topic(directory)
    log = storage.partition("t", 0)
    log.append(build_batch([Record(0, 1000, b"k", b"v")], producer_id=7, producer_epoch=0, base_sequence=0))

    def roll_and_flush() -> None:
        # A roll leaves the snapshot's fsyncs to the flusher (storage/flusher.py); a flush waits for them.
        log.roll()
        log.flush()

    return roll_and_flush


def index_rebuild(directory: pathlib.Path) -> Callable[[], object]:
    storage = one_topic(directory)
    for n in range(20):
        storage.partition("t", 0).append(batch(1, value_size=60, timestamp=1000 + n))
    storage.close()
    index = directory / "t-0" / f"{SEGMENT}.index"
    index.write_bytes(index.read_bytes()[::-1])  # inconsistent: recovery rebuilds it
    return lambda: Storage.open(directory)


def compaction(directory: pathlib.Path) -> Callable[[], object]:
    storage = one_topic(directory, {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0"})
    log = storage.partition("t", 0)
    log.append(keyed((b"a", b"1"), (b"a", b"2"), (b"b", b"1")))
    log.roll()
    log.append(keyed((b"z", b"active")))
    return lambda: storage.compact(now_ms=1 << 42)


def producer_id_block(directory: pathlib.Path) -> Callable[[], object]:
    return ProducerIdManager(directory).generate


CASES = {
    # (prepare, the names that must be among the renamed targets)
    "topic file and partition.metadata": (create_topic, {"t.topic.json", "partition.metadata"}),
    "log start checkpoint": (delete_records, {"log-start-offset-checkpoint"}),
    "producer snapshot": (producer_snapshot, {f"{1:020d}.snapshot"}),
    "rebuilt index": (index_rebuild, {f"{SEGMENT}.index"}),
    "compacted segment and cleaner checkpoint": (compaction, {f"{SEGMENT}.log.swap", f"{SEGMENT}.log", "cleaner-offset-checkpoint"}),
    "producer-id block": (producer_id_block, {"producer-id-block"}),
}


@pytest.mark.parametrize("case", CASES)
def test_every_replacement_fsyncs_its_directory_after_the_rename(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    prepare, expected = CASES[case]
    operation = prepare(tmp_path)
    syscalls = SyscallLog(monkeypatch)
    operation()
    assert expected <= {path.name for path in syscalls.renamed()}, syscalls.events
    assert syscalls.undurable_renames() == []
