"""DeleteTopics takes a deleted topic's descriptors out of the cache on the event loop, and closes
them on the thread that renames its directories (Storage.begin_deletion with
FileHandles.closes_deferred, then TopicDeletion.run): 500 closes are a millisecond of the loop's."""

from __future__ import annotations

import os

from confluent_kafka.admin import AdminClient, NewTopic

from ottla.storage.engine import TopicDeletion
from ottla.testing import running_broker
from tests.thread_gate import Gate, produce_to_every_partition

TOPIC = "gated-fds"
PARTITIONS = 8

_real_run = TopicDeletion.run


def _open_files_of(topic: str) -> list[str]:
    """The files of the topic's partitions this process holds a descriptor of."""
    found = []
    for descriptor in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{descriptor}")
        except OSError:
            continue  # closed meanwhile
        if f"/{topic}-" in target:
            found.append(target)
    return found


def test_a_deleted_topics_descriptors_are_closed_by_the_deletions_thread(tmp_path, monkeypatch) -> None:
    gate = Gate()

    def run(deletion):
        if gate.armed.is_set() and deletion.name == TOPIC and not gate.entered.is_set():  # its first run: the work
            gate.hold()
        return _real_run(deletion)

    monkeypatch.setattr(TopicDeletion, "run", run)
    with running_broker(data_dir=tmp_path / "data") as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        (created,) = admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)], operation_timeout=30).values()
        assert created.result(timeout=10) is None
        produce_to_every_partition(broker.bootstrap_servers, TOPIC, PARTITIONS)
        assert len(_open_files_of(TOPIC)) >= PARTITIONS  # each partition's log, appended to
        gate.armed.set()
        (deleted,) = admin.delete_topics([TOPIC], operation_timeout=30).values()
        try:
            assert gate.entered.wait(10)
            # The topic is gone, its descriptors not yet closed: that is the thread's work.
            # (Asked on a connection of its own: the DeleteTopics' holds its answers in order.)
            other = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
            assert TOPIC not in other.list_topics(timeout=10).topics
            assert len(_open_files_of(TOPIC)) >= PARTITIONS
        finally:
            gate.released.set()
        assert deleted.result(timeout=10) is None
        assert gate.on_loop == [False]
        assert _open_files_of(TOPIC) == []
