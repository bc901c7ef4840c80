"""Directory entries are made durable where Kafka 4.4 makes them durable, and a new
partition's directory's entry in the log directory before any record reaches it.

A file's fsync does not make its name durable: its directory's fsync does. A killed process
loses no directory entry the kernel already has, only a power loss does, so no crash test can
see a missing one; the fsyncs are recorded instead (`os.fsync` wrapped, each descriptor
resolved to its path through /proc/self/fd) around real storage operations, in order with the
renames."""

from __future__ import annotations

import os
import pathlib
import stat
import threading

import pytest
from conftest import batch

from ottla.storage import Storage
from ottla.wire.records import Record, build_batch


class DirectoryEvents:
    """fsyncs of directories (with the thread that made them), directories made and renames,
    in order, on any thread."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.events: list[tuple[str, pathlib.Path, str]] = []
        self._lock = threading.Lock()
        real_fsync, real_rename, real_mkdir = os.fsync, os.rename, os.mkdir

        def record_fsync(descriptor: int) -> None:
            if stat.S_ISDIR(os.fstat(descriptor).st_mode):
                self._add("fsync-dir", pathlib.Path(os.readlink(f"/proc/self/fd/{descriptor}")))
            real_fsync(descriptor)

        def record_rename(source: object, target: object) -> None:
            real_rename(source, target)  # type: ignore[arg-type]
            self._add("rename", pathlib.Path(os.fsdecode(target)))  # type: ignore[arg-type]

        def record_mkdir(path: object, *args: object, **kwargs: object) -> None:
            real_mkdir(path, *args, **kwargs)  # type: ignore[arg-type]
            self._add("mkdir", pathlib.Path(os.fsdecode(path)))  # type: ignore[arg-type]

        monkeypatch.setattr(os, "fsync", record_fsync)
        monkeypatch.setattr(os, "rename", record_rename)
        monkeypatch.setattr(os, "mkdir", record_mkdir)

    def _add(self, kind: str, path: pathlib.Path) -> None:
        with self._lock:
            self.events.append((kind, path.resolve(), threading.current_thread().name))

    def directory_fsyncs(self, directory: pathlib.Path) -> list[str]:
        """The threads that fsynced `directory`, in order."""
        return [thread for kind, path, thread in self.events if kind == "fsync-dir" and path == directory.resolve()]

    def fsynced_after_last(self, kind: str, directory: pathlib.Path, changed_in: pathlib.Path) -> bool:
        """Whether `directory` was fsynced after the last event of `kind` ("rename", "mkdir")
        on an entry of `changed_in`."""
        changes = [slot for slot, (done, path, _) in enumerate(self.events) if done == kind and path.parent == changed_in.resolve()]
        assert changes, self.events
        return any(done == "fsync-dir" and path == directory.resolve() for done, path, _ in self.events[changes[-1] + 1 :])


def keyed(key: bytes, value: bytes) -> bytes:
    return build_batch([Record(0, 1000, key, value)])


@pytest.mark.parametrize("how", ["created", "added"])
def test_a_new_partition_directory_is_durable_in_its_log_directory_before_any_append(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """create_topic and CreatePartitions write the topic file (fsyncing the log directory)
    before the partitions' directories exist: the log directory is fsynced again after them,
    once, and never by the flushes that follow (nothing is added to the produce path)."""
    data = tmp_path / "data"
    storage = Storage.open(data)
    if how == "added":
        storage.create_topic("t", 1)
    events = DirectoryEvents(monkeypatch)
    if how == "added":
        storage.add_partitions("t", 3)
    else:
        storage.create_topic("t", 3)
    assert {path.name for kind, path, _ in events.events if kind == "mkdir"} >= {"t-1", "t-2"}
    assert events.fsynced_after_last("mkdir", data, data), events.events
    created = len(events.directory_fsyncs(data))
    log = storage.partition("t", 2)
    log.append(batch())
    log.flush()
    assert events.directory_fsyncs(data / "t-2")[-1] == "MainThread"
    assert len(events.directory_fsyncs(data)) == created, "a flush does not fsync the log directory"
    storage.close()


def test_a_log_directory_created_at_open_is_durable_in_its_parent(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As Kafka's LogManager.createAndValidateLogDirs: a log directory the broker creates has its parent fsynced."""
    events = DirectoryEvents(monkeypatch)
    storage = Storage.open(tmp_path / "disk" / "data")
    assert "MainThread" in events.directory_fsyncs(tmp_path / "disk"), events.events
    storage.close()


def test_a_deleted_topics_directory_rename_is_durable(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As Kafka's LocalLog.renameDir (Utils.atomicMoveWithFallback): the partition directory's
    rename to `-delete` is followed by an fsync of the log directory."""
    data = tmp_path / "data"
    storage = Storage.open(data)
    storage.create_topic("t", 1)
    storage.partition("t", 0).append(batch())
    events = DirectoryEvents(monkeypatch)
    storage.delete_topic("t")
    assert any(path.name.startswith("t-0.") and path.name.endswith("-delete") for kind, path, _ in events.events if kind == "rename")
    assert events.fsynced_after_last("rename", data, data), events.events
    storage.close()


def test_segments_compaction_empties_are_swapped_with_an_fsync_of_the_directory(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A segment compaction emptied has its log renamed `.deleted` for the empty one swapped in
    (kept, as Kafka keeps its cleaned segment), and the renames end with an fsync of the
    partition's directory, as Kafka's LocalLog.replaceSegments ends with Utils.flushDir."""
    data = tmp_path / "data"
    storage = Storage.open(data)
    # segment.bytes of one batch: each segment is cleaned on its own, none merged into another.
    storage.create_topic("t", 1, {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0", "segment.bytes": "75"})
    log = storage.partition("t", 0)
    for value in (b"1", b"2", b"3"):
        log.append(keyed(b"a", value))
        log.roll()
    log.append(keyed(b"z", b"active"))
    events = DirectoryEvents(monkeypatch)
    storage.compact(now_ms=1 << 42)
    partition = data / "t-0"
    assert [(segment.base_offset, segment.size) for segment in log.segments[:2]] == [(0, 0), (1, 0)]
    assert partition.resolve() / f"{1:020d}.log.deleted" in [path for kind, path, _ in events.events if kind == "rename"]
    assert events.fsynced_after_last("rename", partition, partition), events.events
    storage.close()
