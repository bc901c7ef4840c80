"""Deletion as Kafka does it: a deleted segment's files are renamed `.deleted`, a deleted
topic's partition directories `<topic>-<partition>.<uuid>-delete`, and both are removed
only file.delete.delay.ms later, so a file region a fetch answer was cut from stays
readable (UnifiedLog.deleteSegmentFiles, LogManager.asyncDelete). Restarts remove leftovers."""

from __future__ import annotations

import pathlib
import re

import pytest
from conftest import batch, read_base_offsets, read_bytes

from ottla.storage import FileRegion, Storage
from ottla.storage.files import remove_paths
from ottla.wire.records import Record, build_batch, iter_records

DELAY_MS = 60_000  # Kafka's default file.delete.delay.ms


def region_of(storage: Storage, topic: str, offset: int) -> FileRegion:
    [region] = storage.partition(topic, 0).read(offset, 1 << 20).chunks
    assert isinstance(region, FileRegion)
    return region


def names(directory: pathlib.Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir() if path.name not in ("meta.properties", ".lock"))


def three_segments(storage: Storage, configs: dict[str, str] | None = None) -> None:
    """Offsets 0, 1, 2 in a segment each, stamped 1, 2 and 4950."""
    storage.create_topic("t", 1, {"segment.bytes": str(len(batch(1, value_size=100))), **(configs or {})})
    for timestamp in (1, 2, 4950):
        storage.partition("t", 0).append(batch(1, value_size=100, timestamp=timestamp))


def test_a_deleted_segment_is_renamed_then_removed_after_the_delay(tmp_path: pathlib.Path) -> None:
    storage = Storage.open(tmp_path)
    three_segments(storage)
    region = region_of(storage, "t", 0)
    before = region.read()
    storage.partition("t", 0).delete_records(2, now_ms=1000)
    assert region.path == tmp_path / "t-0" / f"{0:020d}.log.deleted"
    assert region.read() == before, "a region cut before the deletion reads the same bytes"
    assert [name for name in names(tmp_path / "t-0") if name.endswith(".deleted")] == [
        f"{base:020d}.{kind}.deleted" for base in (0, 1) for kind in ("index", "log", "timeindex")
    ]
    assert storage.delete_expired_files(now_ms=1000 + DELAY_MS - 1) == 0
    assert region.read() == before
    assert storage.delete_expired_files(now_ms=1000 + DELAY_MS) == 2
    assert not [name for name in names(tmp_path / "t-0") if name.endswith(".deleted")]
    with pytest.raises(FileNotFoundError):
        region.read()
    assert read_base_offsets(storage.partition("t", 0).read(2, 1 << 20)) == [2]
    storage.close()


def test_retention_waits_for_the_topics_own_delay(tmp_path: pathlib.Path) -> None:
    storage = Storage.open(tmp_path)
    three_segments(storage, {"retention.ms": "100", "file.delete.delay.ms": "10"})
    region = region_of(storage, "t", 0)
    before = region.read()
    assert storage.enforce_retention(now_ms=5000) == 2
    assert region.read() == before
    assert storage.delete_expired_files(now_ms=5009) == 0
    assert storage.delete_expired_files(now_ms=5010) == 2
    assert not any(name.endswith(".deleted") for name in names(tmp_path / "t-0"))
    storage.close()


def test_a_region_cut_before_compaction_reads_the_old_contents(tmp_path: pathlib.Path) -> None:
    storage = Storage.open(tmp_path)
    storage.create_topic("c", 1, {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0"})
    log = storage.partition("c", 0)
    log.append(build_batch([Record(i, 1000, b"k", b"v%d" % i) for i in range(3)]))
    log.roll()
    log.append(build_batch([Record(0, 1000, b"z", b"active")]))
    region = region_of(storage, "c", 0)
    before = region.read()
    assert storage.compact(now_ms=1 << 42) == 2
    assert read_bytes(log.read(0, 1 << 20)) != before
    assert region.read() == before, "compaction swapped in a new file; the old one waits out the delay"
    assert storage.delete_expired_files(now_ms=(1 << 42) + DELAY_MS) == 1
    assert not any(name.endswith(".deleted") for name in names(tmp_path / "c-0"))
    storage.close()


def test_a_deleted_topic_is_set_aside_and_its_name_reusable_at_once(tmp_path: pathlib.Path) -> None:
    storage = Storage.open(tmp_path)
    storage.create_topic("t", 2)
    storage.partition("t", 0).append(batch(3, value_size=50))
    region = region_of(storage, "t", 0)
    before = region.read()
    storage.delete_topic("t", now_ms=1000)
    set_aside = names(tmp_path)
    assert [re.fullmatch(r"t-([01])\.[0-9a-f]{32}-delete", name) is not None for name in set_aside] == [True, True]
    assert region.path.parent.name in set_aside and region.read() == before

    # Kafka lets a deleted topic's name be used again at once: the new one starts empty, and
    # the descriptor cache does not hand it the old files, whose names it takes over.
    storage.create_topic("t", 1)
    new = storage.partition("t", 0)
    assert new.log_end_offset == 0
    new.append(batch(1, value_size=7))
    assert [record.value for record in iter_records(read_bytes(new.read(0, 1 << 20)))] == [b"x" * 7]
    assert region.read() == before

    assert storage.delete_expired_files(now_ms=1000 + DELAY_MS - 1) == 0
    assert storage.delete_expired_files(now_ms=1000 + DELAY_MS) == 2
    assert names(tmp_path) == ["t-0", "t.topic.json"]
    storage.close()


def test_a_restart_removes_what_deletions_set_aside(tmp_path: pathlib.Path) -> None:
    storage = Storage.open(tmp_path)
    three_segments(storage)
    storage.create_topic("gone", 1)
    storage.partition("t", 0).delete_records(2, now_ms=0)
    storage.delete_topic("gone", now_ms=0)
    storage.close()
    assert any(name.endswith("-delete") for name in names(tmp_path))
    assert any(name.endswith(".deleted") for name in names(tmp_path / "t-0"))
    reopened = Storage.open(tmp_path)
    assert not any(name.endswith("-delete") for name in names(tmp_path))
    assert not any(name.endswith(".deleted") for name in names(tmp_path / "t-0"))
    log = reopened.partition("t", 0)
    assert (log.log_start_offset, log.log_end_offset) == (2, 3)
    reopened.close()


def test_memory_storage_drops_at_once(storage: Storage) -> None:
    """Either engine: a deletion returns at once and a re-created topic starts empty; in
    memory nothing waits (views handed out keep their buffers), so nothing is left to expire."""
    storage.create_topic("t", 1)
    storage.partition("t", 0).append(batch(2))
    storage.delete_topic("t", now_ms=0)
    storage.create_topic("t", 1)
    assert storage.partition("t", 0).log_end_offset == 0
    assert storage.delete_expired_files(now_ms=DELAY_MS) == (1 if storage.data_dir is not None else 0)


def _open_descriptors_on(paths: list[pathlib.Path]) -> list[str]:
    targets = {str(path) for path in paths}
    found = []
    for entry in pathlib.Path("/proc/self/fd").iterdir():
        try:
            target = str(entry.readlink())
        except OSError:
            continue
        if target in targets:
            found.append(target)
    return found


def test_what_is_due_is_taken_first_and_removed_by_anyone_later(tmp_path: pathlib.Path) -> None:
    """The broker takes what is due on its event loop (the storage's books and descriptors are
    that thread's) and removes the files on another: taking leaves the files in place with no
    descriptor of the storage's open on them, and a path list is all the removal needs."""
    storage = Storage.open(tmp_path)
    three_segments(storage)
    storage.create_topic("gone", 1)
    storage.partition("gone", 0).append(batch(1))
    storage.partition("t", 0).delete_records(2, now_ms=1000)
    storage.delete_topic("gone", now_ms=1000)
    storage.flush()  # the rolled segments' fsyncs on the flusher hold descriptors until they end
    assert storage.take_expired_files(now_ms=1000 + DELAY_MS - 1) == []
    taken = storage.take_expired_files(now_ms=1000 + DELAY_MS)
    paths = [path for group in taken for path in group]
    assert len(taken) == 3, "two segments and one topic's directory"
    assert all(path.exists() for path in paths)
    assert _open_descriptors_on(paths) == []
    assert storage.take_expired_files(now_ms=1000 + DELAY_MS) == [], "taken once"
    for group in taken:
        remove_paths(group)
    assert not any(path.exists() for path in paths)
    assert not [name for name in names(tmp_path) if name.endswith("-delete")]
