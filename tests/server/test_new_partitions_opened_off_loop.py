"""CreateTopics, Metadata's auto-creation and CreatePartitions open the new partitions' logs on
the thread that writes their files (server/topic_creation.py), not on the event loop: creating
a partition's three segment files and opening 500 partitions held every other client for
0.5-0.7 s on a busy disk. The topic (or its new partitions) shows in Metadata only once every
partition's log is open, and then all at once; what was opened is read and written through the
broker as any partition."""

from __future__ import annotations

from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

import ottla.storage.engine as engine
from ottla.testing import running_broker
from tests.thread_gate import Gate, produce_to_every_partition


class _GatedLogs(Gate):
    """Holds each opening of a log of a topic named gated-*."""

    def __init__(self, monkeypatch) -> None:
        super().__init__()
        gate = self

        class GatedPartitionLog(engine.PartitionLog):
            def __init__(self, directory, *args, **kwargs) -> None:
                if directory is not None and directory.name.startswith("gated-") and gate.armed.is_set():
                    gate.hold()
                super().__init__(directory, *args, **kwargs)

        monkeypatch.setattr(engine, "PartitionLog", GatedPartitionLog)


def test_create_topics_opens_the_new_partitions_off_the_loop_and_shows_them_once_all_are_open(tmp_path, monkeypatch) -> None:
    gate = _GatedLogs(monkeypatch)
    with running_broker(data_dir=tmp_path / "data") as broker:
        creator = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        other = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        gate.armed.set()
        (created,) = creator.create_topics([NewTopic("gated-new", 8, 1)], operation_timeout=30).values()
        try:
            assert gate.entered.wait(10)
            # A log is being opened: another client is answered, and the topic is not there yet.
            assert "gated-new" not in other.list_topics(timeout=10).topics
            assert not created.done()
        finally:
            gate.released.set()
        assert created.result(timeout=10) is None
        assert gate.on_loop == [False] * 8
        assert len(other.list_topics(timeout=10).topics["gated-new"].partitions) == 8
        produce_to_every_partition(broker.bootstrap_servers, "gated-new", 8)


def test_create_partitions_opens_the_new_partitions_off_the_loop_and_shows_them_once_all_are_open(tmp_path, monkeypatch) -> None:
    gate = _GatedLogs(monkeypatch)
    with running_broker(data_dir=tmp_path / "data") as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        other = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        (created,) = admin.create_topics([NewTopic("gated-grow", 1, 1)], operation_timeout=30).values()
        assert created.result(timeout=10) is None
        gate.armed.set()
        (grown,) = admin.create_partitions([NewPartitions("gated-grow", 6)], operation_timeout=30).values()
        try:
            assert gate.entered.wait(10)
            assert len(other.list_topics(timeout=10).topics["gated-grow"].partitions) == 1
            assert not grown.done()
        finally:
            gate.released.set()
        assert grown.result(timeout=10) is None
        assert gate.on_loop == [False] * 5
        assert len(other.list_topics(timeout=10).topics["gated-grow"].partitions) == 6
        produce_to_every_partition(broker.bootstrap_servers, "gated-grow", 6)
