"""DeleteTopics renames the deleted partitions' directories on a thread (server/topic_creation.py
rename_deleted), not on the event loop: 500 renames and two directory fsyncs held every other
client for 30-60 ms. The topic is gone from Metadata at once; the answer waits for the renames;
a topic created under the same name meanwhile waits for them too, and starts empty."""

from __future__ import annotations

import os

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from ottla.testing import running_broker
from tests.thread_gate import Gate, produce_to_every_partition

_real_rename = os.rename


class _GatedRenames(Gate):
    """Holds each rename of a directory of a topic named gated-* to its `-delete` name."""

    def __init__(self, monkeypatch) -> None:
        super().__init__()

        def gated(source, destination, *args, **kwargs):
            if self.armed.is_set() and os.path.basename(source).startswith("gated-") and str(destination).endswith("-delete"):
                self.hold()
            return _real_rename(source, destination, *args, **kwargs)

        monkeypatch.setattr(os, "rename", gated)


def _values(bootstrap: str, topic: str, partitions: int) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader", "enable.auto.commit": False})
    try:
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)}
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        values: list[bytes] = []
        while len(values) < sum(ends.values()):
            message = consumer.poll(10)
            assert message is not None and message.error() is None
            values.append(message.value())
        return values
    finally:
        consumer.close()


def test_delete_topics_renames_off_the_loop_and_the_topic_is_gone_at_once(tmp_path, monkeypatch) -> None:
    gate = _GatedRenames(monkeypatch)
    with running_broker(data_dir=tmp_path / "data") as broker:
        deleter = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        other = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        (created,) = deleter.create_topics([NewTopic("gated-doomed", 8, 1)], operation_timeout=30).values()
        assert created.result(timeout=10) is None
        produce_to_every_partition(broker.bootstrap_servers, "gated-doomed", 8, b"old")
        gate.armed.set()
        (deleted,) = deleter.delete_topics(["gated-doomed"], operation_timeout=30).values()
        try:
            assert gate.entered.wait(10)
            # A directory is being renamed: another client is answered, and the topic is gone.
            assert "gated-doomed" not in other.list_topics(timeout=10).topics
            assert not deleted.done()
        finally:
            gate.released.set()
        assert deleted.result(timeout=10) is None
        assert gate.on_loop == [False] * 8
        names = os.listdir(tmp_path / "data")
        assert not [name for name in names if name.startswith("gated-doomed") and not name.endswith("-delete")]
        assert len([name for name in names if name.endswith("-delete")]) == 8


def test_a_topic_created_under_the_name_meanwhile_waits_for_the_renames_and_starts_empty(tmp_path, monkeypatch) -> None:
    gate = _GatedRenames(monkeypatch)
    with running_broker(data_dir=tmp_path / "data") as broker:
        deleter = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        creator = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        # A connection of its own: a broker answers a connection's requests in order, so one sent
        # behind the parked CreateTopics on the creator's connection would wait for it.
        observer = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        (created,) = deleter.create_topics([NewTopic("gated-reused", 4, 1)], operation_timeout=30).values()
        assert created.result(timeout=10) is None
        produce_to_every_partition(broker.bootstrap_servers, "gated-reused", 4, b"old")
        gate.armed.set()
        (deleted,) = deleter.delete_topics(["gated-reused"], operation_timeout=30).values()
        try:
            assert gate.entered.wait(10)
            (again,) = creator.create_topics([NewTopic("gated-reused", 2, 1)], operation_timeout=30).values()
            # Its files wait for the old directories to be renamed.
            assert "gated-reused" not in observer.list_topics(timeout=10).topics
            assert not again.done()
        finally:
            gate.released.set()
        assert deleted.result(timeout=10) is None
        assert again.result(timeout=10) is None
        assert len(creator.list_topics(timeout=10).topics["gated-reused"].partitions) == 2
        produce_to_every_partition(broker.bootstrap_servers, "gated-reused", 2, b"new")
        assert _values(broker.bootstrap_servers, "gated-reused", 2) == [b"new", b"new"]
