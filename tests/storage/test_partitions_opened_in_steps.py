"""Partitions created in steps (Storage.reserve_topic / reserve_partitions), their files written
and their logs opened on another thread: that thread leaves the caller's descriptor cache alone
and holds no descriptor once done; each partition starts empty at offset 0, whatever checkpoints
still name a deleted partition of the same name (a crash before the deletion's checkpoints were
written), as one created in one step does; and the logs are filed under the topic's config as
it is when they are filed, not as it was when they were opened."""

from __future__ import annotations

import os
import pathlib
import threading

from conftest import batch

from ottla.storage import Storage


def _stale_checkpoints(data_dir: pathlib.Path) -> None:
    data_dir.mkdir(parents=True)
    for name in ("log-start-offset-checkpoint", "recovery-point-offset-checkpoint", "cleaner-offset-checkpoint"):
        (data_dir / name).write_text("0\n2\norders 0 50\norders 1 50\n")


def test_a_new_topic_ignores_checkpoints_of_a_deleted_one_of_the_same_name(tmp_path: pathlib.Path) -> None:
    _stale_checkpoints(tmp_path / "data")
    storage = Storage.open(tmp_path / "data")
    info = storage.reserve_topic("orders", 1)
    assert info is not None
    storage.write_topic_files([info])
    storage.open_reserved_topic(info)
    log = storage.partition("orders", 0)
    assert (log.log_start_offset, log.log_end_offset, log.segments[0].base_offset) == (0, 0, 0)
    assert log.append(batch()).base_offset == 0
    storage.close()


def test_new_partitions_ignore_checkpoints_of_a_deleted_topic_of_the_same_name(tmp_path: pathlib.Path) -> None:
    _stale_checkpoints(tmp_path / "data")
    storage = Storage.open(tmp_path / "data")
    storage.create_topic("orders", 1)
    growth = storage.reserve_partitions("orders", 2)
    assert growth is not None
    storage.write_partition_files(growth)
    storage.open_grown_partitions(growth)
    log = storage.partition("orders", 1)
    assert (log.log_start_offset, log.log_end_offset, log.segments[0].base_offset) == (0, 0, 0)
    assert log.append(batch()).base_offset == 0
    storage.close()


def test_logs_opened_on_the_thread_take_the_defaults_changed_meanwhile(tmp_path: pathlib.Path) -> None:
    storage = Storage.open(tmp_path / "data")
    info = storage.reserve_topic("orders", 2)
    assert info is not None
    storage.write_topic_files([info])
    storage.set_defaults({"retention.ms": "1234"})
    storage.open_reserved_topic(info)
    assert [storage.partition("orders", index).config.retention_ms for index in range(2)] == [1234, 1234]
    storage.close()


def _descriptors_under(directory: pathlib.Path) -> set[tuple[str, str]]:
    """This process's open descriptors on files under `directory`: other tests in the same worker
    (a deletion finishing on its own thread) open and close descriptors of their own meanwhile."""
    held = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except FileNotFoundError:
            continue
        if target.startswith(f"{directory}/"):
            held.add((fd, target))
    return held


def test_logs_opened_on_another_thread_leave_the_descriptor_cache_alone(tmp_path: pathlib.Path) -> None:
    storage = Storage.open(tmp_path / "data")
    storage.create_topic("cached", 1)
    assert storage.partition("cached", 0).append(batch()).base_offset == 0  # its log's descriptor is cached
    info = storage.reserve_topic("orders", 50)
    growth = storage.reserve_partitions("cached", 20)
    assert info is not None and growth is not None
    before = _descriptors_under(tmp_path)
    assert before  # the cached log's descriptor
    writers = [threading.Thread(target=storage.write_topic_files, args=([info],)), threading.Thread(target=storage.write_partition_files, args=(growth,))]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    assert _descriptors_under(tmp_path) == before
    storage.open_reserved_topic(info)
    storage.open_grown_partitions(growth)
    assert storage.partition("cached", 0).append(batch()).base_offset == 1
    assert [storage.partition("orders", index).append(batch()).base_offset for index in range(50)] == [0] * 50
    assert [storage.partition("cached", index).append(batch()).base_offset for index in range(1, 20)] == [0] * 19
    storage.close()
