"""A topic created in three steps (Storage.reserve_topic, write_topic_files on any thread,
open_reserved_topic), as CreateTopics creates one so that its fsyncs leave the event loop: the
name is taken from the first step, the topic exists only from the last, and a storage closed
meanwhile waits for the files and leaves the topic to the next open."""

from __future__ import annotations

import pathlib
import threading

import pytest
from conftest import batch

from ottla.storage import Storage
from ottla.wire.errors import ErrorCode, KafkaError


def test_a_reserved_name_is_taken_and_the_topic_exists_once_opened(tmp_path: pathlib.Path) -> None:
    storage = Storage.open(tmp_path)
    info = storage.reserve_topic("orders", 3, {"retention.ms": "60000"})
    assert info is not None
    with pytest.raises(KafkaError) as taken:
        storage.create_topic("orders", 1)
    assert taken.value.code == ErrorCode.TOPIC_ALREADY_EXISTS
    with pytest.raises(KafkaError):
        storage.reserve_topic("orders", 1)
    assert storage.topic("orders") is None
    storage.write_topic_files([info])
    assert storage.topic("orders") is None
    assert storage.open_reserved_topic(info) is info
    assert storage.topic("orders") == info
    assert storage.partition("orders", 2).append(batch()).base_offset == 0
    storage.close()
    reopened = Storage.open(tmp_path)
    assert reopened.topic("orders") == info
    assert reopened.partition("orders", 2).log_end_offset == 1
    reopened.close()


def test_a_released_name_is_free_again(tmp_path: pathlib.Path) -> None:
    storage = Storage.open(tmp_path)
    info = storage.reserve_topic("orders", 1)
    assert info is not None
    storage.release_topic(info)
    assert storage.create_topic("orders", 2).partitions == 2
    storage.close()


def test_the_steps_check_the_topic_as_create_topic_does(tmp_path: pathlib.Path) -> None:
    storage = Storage.open(tmp_path)
    storage.create_topic("orders", 1)
    for name, partitions, configs, code in [
        ("orders", 1, None, ErrorCode.TOPIC_ALREADY_EXISTS),
        ("bad/name", 1, None, ErrorCode.INVALID_TOPIC),
        ("fresh", 0, None, ErrorCode.INVALID_PARTITIONS),
        ("fresh", 1, {"cleanup.policy": "sometimes"}, ErrorCode.INVALID_CONFIG),
    ]:
        with pytest.raises(KafkaError) as refused:
            storage.reserve_topic(name, partitions, configs)
        assert refused.value.code == code
    assert storage.topic("fresh") is None
    storage.close()


def test_memory_and_several_directories_create_in_one_step(tmp_path: pathlib.Path) -> None:
    assert Storage.open(None).reserve_topic("orders", 1) is None
    storage = Storage.open(tmp_path / "a", more_dirs=[tmp_path / "b"])
    assert storage.reserve_topic("orders", 1) is None
    assert storage.create_topic("orders", 1).name == "orders"
    storage.close()


def test_close_waits_for_files_being_written_and_the_next_open_has_the_topic(tmp_path: pathlib.Path) -> None:
    storage = Storage.open(tmp_path)
    info = storage.reserve_topic("orders", 2)
    assert info is not None
    writer = threading.Thread(target=storage.write_topic_files, args=([info],))
    writer.start()
    storage.close()
    writer.join()
    assert storage.open_reserved_topic(info) is None  # closed: the topic is the next open's
    reopened = Storage.open(tmp_path)
    assert reopened.topic("orders") == info
    assert reopened.partition("orders", 1).append(batch()).base_offset == 0
    reopened.close()
    with pytest.raises(KafkaError) as closed:
        storage.write_topic_files([info])
    assert closed.value.code == ErrorCode.KAFKA_STORAGE_ERROR
