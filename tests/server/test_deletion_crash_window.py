"""A crash anywhere in DeleteTopics' file work (Storage.begin_deletion, then TopicDeletion.run
on a thread) leaves the topic either deleted or back exactly as it was, its log start offset
included: the log start checkpoint keeps a deleted topic's entries until its topic file is
gone, as Kafka's LogManager.asyncDelete checkpoints only after renaming the log `-delete`.

The deletion's thread is held at each of its steps in turn; at each, the data directory is
copied as a crash there would leave it, and a broker started on the copy."""

from __future__ import annotations

import os
import pathlib
import shutil
import threading

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import ottla.storage.engine as engine
from ottla.testing import running_broker
from tests.thread_gate import on_a_loop

TOPIC = "gated-crash"
RECORDS = 10
LOG_START = 4  # partition 0's, moved by DeleteRecords; partition 1's stays 0

_real_unlink = pathlib.Path.unlink
_real_rename = os.rename
_real_fsync_directory = engine.fsync_directory


class _Steps:
    """Holds the deletion's thread once at each named step: `reached[step]` is set when it
    gets there, and it goes on when `go[step]` is."""

    STEPS = ("unlink", "rename", "renamed")

    def __init__(self) -> None:
        self.armed = threading.Event()
        self.reached = {step: threading.Event() for step in self.STEPS}
        self.go = {step: threading.Event() for step in self.STEPS}

    def hold(self, step: str) -> None:
        if self.armed.is_set() and not on_a_loop() and not self.reached[step].is_set():
            self.reached[step].set()
            self.go[step].wait(30)


def _gate(monkeypatch, data: pathlib.Path) -> _Steps:
    """Steps: its topic file's unlink, its first directory's rename, and the fsync once every
    directory is renamed (the checkpoints not yet told)."""
    steps = _Steps()

    def unlink(self, *args, **kwargs):
        if self.name == TOPIC + ".topic.json":
            steps.hold("unlink")
        return _real_unlink(self, *args, **kwargs)

    def rename(source, destination, *args, **kwargs):
        if os.path.basename(source).startswith(TOPIC + "-") and str(destination).endswith("-delete"):
            steps.hold("rename")
        return _real_rename(source, destination, *args, **kwargs)

    def fsync_directory(directory):
        if not any(data.glob(TOPIC + "-[0-9]")):
            steps.hold("renamed")
        return _real_fsync_directory(directory)

    monkeypatch.setattr(pathlib.Path, "unlink", unlink)
    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(engine, "fsync_directory", fsync_directory)
    return steps


def _copy(data: pathlib.Path, to: pathlib.Path) -> pathlib.Path:
    """The directory as a crash now would leave it (the lock dies with the process, and a
    start removes half-written replacements)."""
    shutil.copytree(data, to, ignore=shutil.ignore_patterns(".lock", "*.tmp"))
    return to


def _partitions(bootstrap: str) -> list[tuple[int, list[bytes]]] | None:
    """The topic's partitions, each its log start offset and records; None if it is gone."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    if TOPIC not in admin.list_topics(timeout=10).topics:
        return None
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader", "enable.auto.commit": False})
    try:
        found = []
        for partition in range(2):
            low, high = consumer.get_watermark_offsets(TopicPartition(TOPIC, partition), timeout=10)
            consumer.assign([TopicPartition(TOPIC, partition, low)])
            values: list[bytes] = []
            while len(values) < high - low:
                message = consumer.poll(10)
                assert message is not None and message.error() is None
                values.append(message.value())
            found.append((low, values))
        return found
    finally:
        consumer.close()


def _produce(bootstrap: str, partition: int, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for value in values:
        producer.produce(TOPIC, value, partition=partition)
    assert producer.flush(30) == 0


def test_a_crash_at_any_step_of_a_deletion_leaves_the_topic_gone_or_whole(tmp_path, monkeypatch) -> None:
    data = tmp_path / "data"
    steps = _gate(monkeypatch, data)
    values = [b"v%d" % number for number in range(RECORDS)]
    crashed: dict[str, pathlib.Path] = {}
    with running_broker(data_dir=data) as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        (created,) = admin.create_topics([NewTopic(TOPIC, 2, 1)], operation_timeout=30).values()
        assert created.result(timeout=10) is None
        for partition in range(2):
            _produce(broker.bootstrap_servers, partition, values)
        for future in admin.delete_records([TopicPartition(TOPIC, 0, LOG_START)]).values():
            future.result(timeout=10)
        before = _partitions(broker.bootstrap_servers)
        assert before == [(LOG_START, values[LOG_START:]), (0, values)]
        steps.armed.set()
        (deleted,) = admin.delete_topics([TOPIC], operation_timeout=30).values()
        for step in steps.STEPS:
            assert steps.reached[step].wait(10), step
            crashed[step] = _copy(data, tmp_path / step)
            steps.go[step].set()
        assert deleted.result(timeout=10) is None
        crashed["done"] = _copy(data, tmp_path / "done")
    steps.armed.clear()
    # Before its topic file goes, the topic comes back as it was; from then on, it stays gone.
    expected = {"unlink": before, "rename": None, "renamed": None, "done": None}
    for step, directory in crashed.items():
        with running_broker(data_dir=directory) as broker:
            assert _partitions(broker.bootstrap_servers) == expected[step], step


def test_a_topic_created_again_after_such_a_crash_starts_at_offset_zero(tmp_path, monkeypatch) -> None:
    """A crash after the topic file went, before the checkpoints forgot the topic, leaves its
    old log start in them: the next start forgets it, or a topic created under the name would
    start there after a restart."""
    data = tmp_path / "data"
    steps = _gate(monkeypatch, data)
    values = [b"v%d" % number for number in range(RECORDS)]
    with running_broker(data_dir=data) as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        (created,) = admin.create_topics([NewTopic(TOPIC, 2, 1)], operation_timeout=30).values()
        assert created.result(timeout=10) is None
        _produce(broker.bootstrap_servers, 0, values)
        for future in admin.delete_records([TopicPartition(TOPIC, 0, LOG_START)]).values():
            future.result(timeout=10)
        steps.armed.set()
        (deleted,) = admin.delete_topics([TOPIC], operation_timeout=30).values()
        steps.go["unlink"].set()
        assert steps.reached["rename"].wait(10)
        crashed = _copy(data, tmp_path / "crashed")
        for step in steps.STEPS:
            steps.go[step].set()
        assert deleted.result(timeout=10) is None
    steps.armed.clear()
    with running_broker(data_dir=crashed) as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        assert _partitions(broker.bootstrap_servers) is None
        (created,) = admin.create_topics([NewTopic(TOPIC, 2, 1)], operation_timeout=30).values()
        assert created.result(timeout=10) is None
        _produce(broker.bootstrap_servers, 0, [b"new"])
    with running_broker(data_dir=crashed) as broker:
        assert _partitions(broker.bootstrap_servers) == [(0, [b"new"]), (0, [])]
