"""A topic grown in three steps (Storage.reserve_partitions, write_partition_files on any
thread, open_grown_partitions), as CreatePartitions grows one so that its fsyncs leave the
event loop: the topic keeps its old count until the last step, a change to the same topic
meanwhile first finishes the growth (so the topic file never goes back to an older content),
and files written but never opened give the new partitions, empty, at the next open."""

from __future__ import annotations

import pathlib
import threading

import pytest
from conftest import batch

from ottla.storage import Storage
from ottla.wire.errors import ErrorCode, KafkaError


def test_a_grown_topic_has_its_new_partitions_once_opened(tmp_path: pathlib.Path) -> None:
    storage = Storage.open(tmp_path)
    info = storage.create_topic("orders", 2)
    storage.partition("orders", 1).append(batch())
    growth = storage.reserve_partitions("orders", 5)
    assert growth is not None
    storage.write_partition_files(growth)
    assert storage.topic("orders") == info
    with pytest.raises(KafkaError):
        storage.partition("orders", 4)
    grown = storage.open_grown_partitions(growth)
    assert grown is not None and grown.partitions == 5 and storage.topic("orders") == grown
    assert storage.open_grown_partitions(growth) == grown  # applied once
    assert storage.partition("orders", 4).append(batch()).base_offset == 0
    storage.close()
    reopened = Storage.open(tmp_path)
    assert reopened.topic("orders") == grown
    assert reopened.partition("orders", 1).log_end_offset == 1
    assert reopened.partition("orders", 4).log_end_offset == 1
    reopened.close()


def test_files_written_but_never_opened_give_empty_partitions_after_a_restart(tmp_path: pathlib.Path) -> None:
    storage = Storage.open(tmp_path)
    storage.create_topic("orders", 1)
    storage.partition("orders", 0).append(batch())
    growth = storage.reserve_partitions("orders", 3)
    assert growth is not None
    storage.write_partition_files(growth)
    storage.close()
    reopened = Storage.open(tmp_path)
    assert reopened.topic("orders") == growth.grown
    assert [reopened.partition("orders", index).log_end_offset for index in range(3)] == [1, 0, 0]
    reopened.close()


def test_a_change_to_a_growing_topic_waits_for_the_growth_and_keeps_it(tmp_path: pathlib.Path) -> None:
    storage = Storage.open(tmp_path)
    storage.create_topic("orders", 1)
    growth = storage.reserve_partitions("orders", 4)
    assert growth is not None
    writer = threading.Thread(target=storage.write_partition_files, args=(growth,))
    writer.start()
    updated = storage.set_topic_configs("orders", {"retention.ms": "60000"})
    writer.join()
    assert growth.written.is_set()
    assert updated.partitions == 4 and updated.configs == {"retention.ms": "60000"}
    assert storage.open_grown_partitions(growth) == growth.grown
    assert storage.topic("orders") == updated
    with pytest.raises(KafkaError) as refused:
        storage.reserve_partitions("orders", 4)
    assert refused.value.code == ErrorCode.INVALID_PARTITIONS
    storage.close()
    reopened = Storage.open(tmp_path)
    assert reopened.topic("orders") == updated
    reopened.close()


def test_a_growth_whose_files_fail_leaves_the_topic_as_it_was(tmp_path: pathlib.Path) -> None:
    storage = Storage.open(tmp_path)
    info = storage.create_topic("orders", 1)
    growth = storage.reserve_partitions("orders", 3)
    assert growth is not None
    (tmp_path / "orders-1").write_bytes(b"")  # a file where a partition's directory goes
    with pytest.raises(OSError):
        storage.write_partition_files(growth)
    with pytest.raises(KafkaError) as failed:
        storage.open_grown_partitions(growth)
    assert failed.value.code == ErrorCode.KAFKA_STORAGE_ERROR
    assert storage.topic("orders") == info
    storage.close()


def test_in_memory_topics_grow_directly() -> None:
    storage = Storage.open(None)
    storage.create_topic("orders", 1)
    assert storage.reserve_partitions("orders", 2) is None
    assert storage.add_partitions("orders", 2).partitions == 2
    storage.close()
