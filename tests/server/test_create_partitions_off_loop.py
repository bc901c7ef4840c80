"""CreatePartitions writes a topic's new files (the topic file, then a directory and a durable
partition.metadata per partition: two fsyncs each) on a thread (server/topic_creation.py), so
other clients are answered meanwhile: growing a topic to 500 partitions held every other
request for a second or more. The topic keeps its old count until the files are written; a
request changing the same topic meanwhile (DeleteTopics here) waits for them, so the topic
file is never written back to an older content, nor left behind a deleted topic."""

from __future__ import annotations

import threading

from confluent_kafka import KafkaError
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic
from kafka.protocol.metadata.api_versions import ApiVersionsRequest, ApiVersionsResponse

import ottla.storage.engine as engine
from ottla.testing import running_broker
from tests.kafka_wire import RawClient
from tests.thread_gate import Gate


class _Gate(Gate):
    """Holds, once armed, the writing of files (through engine.replace_file) of topics named gated-*."""

    def __init__(self, monkeypatch) -> None:
        super().__init__()
        real_replace_file = engine.replace_file

        def gated_replace_file(path, data, *args, **kwargs):
            if "gated-" in str(path) and self.armed.is_set():
                self.hold()
            return real_replace_file(path, data, *args, **kwargs)

        monkeypatch.setattr(engine, "replace_file", gated_replace_file)


def _created(admin: AdminClient, topic: NewTopic) -> None:
    (future,) = admin.create_topics([topic], operation_timeout=30).values()
    assert future.result(timeout=10) is None


def test_another_connection_is_answered_while_new_partitions_files_are_written(tmp_path, monkeypatch) -> None:
    gate = _Gate(monkeypatch)
    data_dir = tmp_path / "data"
    with running_broker(data_dir=data_dir) as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        _created(admin, NewTopic("gated-grow", 1, 1))
        gate.armed.set()
        (grown,) = admin.create_partitions([NewPartitions("gated-grow", 4)], operation_timeout=30).values()
        try:
            assert gate.entered.wait(10)
            # The files are held on their thread: another connection is answered all the same,
            # and sees the topic as it was.
            with RawClient(broker.bootstrap_servers) as other:
                answer = other.call(ApiVersionsRequest(client_software_name="t", client_software_version="1"), 3, ApiVersionsResponse)
            assert answer.error_code == 0
            other_admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
            assert len(other_admin.list_topics("gated-grow", timeout=10).topics["gated-grow"].partitions) == 1
            assert not grown.done()
        finally:
            gate.released.set()
        assert grown.result(timeout=10) is None
        assert len(admin.list_topics("gated-grow", timeout=10).topics["gated-grow"].partitions) == 4
        assert gate.on_loop and not any(gate.on_loop)
    for index in range(4):
        assert (data_dir / f"gated-grow-{index}" / "partition.metadata").is_file()
    # The growth survives a restart.
    with running_broker(data_dir=data_dir) as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        assert len(admin.list_topics("gated-grow", timeout=10).topics["gated-grow"].partitions) == 4


def test_a_topic_deleted_while_it_grows_is_deleted_whole(tmp_path, monkeypatch) -> None:
    gate = _Gate(monkeypatch)
    data_dir = tmp_path / "data"
    with running_broker(data_dir=data_dir) as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        _created(admin, NewTopic("gated-doomed", 2, 1))
        gate.armed.set()
        (grown,) = admin.create_partitions([NewPartitions("gated-doomed", 6)], operation_timeout=30).values()
        assert gate.entered.wait(10)
        (deleted,) = admin.delete_topics(["gated-doomed"], operation_timeout=30).values()
        gate.released.set()
        assert grown.result(timeout=10) is None
        assert deleted.result(timeout=10) is None
        assert "gated-doomed" not in admin.list_topics(timeout=10).topics
    assert not (data_dir / "gated-doomed.topic.json").exists()
    with running_broker(data_dir=data_dir) as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        assert "gated-doomed" not in admin.list_topics(timeout=10).topics


def test_a_growth_whose_files_cannot_be_written_is_a_storage_error_and_leaves_the_topic(tmp_path, monkeypatch) -> None:
    real_replace_file = engine.replace_file
    failing = threading.Event()

    def failing_replace_file(path, data, *args, **kwargs):
        if "broken-" in str(path) and failing.is_set():
            raise OSError(28, "No space left on device")
        return real_replace_file(path, data, *args, **kwargs)

    monkeypatch.setattr(engine, "replace_file", failing_replace_file)
    with running_broker(data_dir=tmp_path / "data") as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        _created(admin, NewTopic("broken-grow", 1, 1))
        failing.set()
        (refused,) = admin.create_partitions([NewPartitions("broken-grow", 3)], operation_timeout=30).values()
        assert refused.exception(timeout=10).args[0].code() == KafkaError.KAFKA_STORAGE_ERROR
        assert len(admin.list_topics("broken-grow", timeout=10).topics["broken-grow"].partitions) == 1
        failing.clear()
        (grown,) = admin.create_partitions([NewPartitions("broken-grow", 3)], operation_timeout=30).values()
        assert grown.result(timeout=10) is None
        assert len(admin.list_topics("broken-grow", timeout=10).topics["broken-grow"].partitions) == 3
