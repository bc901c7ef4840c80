"""CreateTopics and Metadata's auto-creation write a new topic's files (a durable
partition.metadata per partition, the topic file: two fsyncs each) on a thread
(server/topic_creation.py), so other clients are answered meanwhile: an 8-partition topic took
10-20 ms of fsyncs, which every other request waited out. The topic exists for Metadata only
once its files are written, and the creating request is answered with it."""

from __future__ import annotations

import threading

from confluent_kafka import KafkaError
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaProducer

import ottla.storage.engine as engine
from ottla.testing import running_broker


def _gate_topic_files(monkeypatch) -> tuple[threading.Event, threading.Event]:
    """Hold the writing of files of topics named gated-*: (set when it is held, set to release)."""
    entered, gate = threading.Event(), threading.Event()
    real_replace_file = engine.replace_file

    def gated_replace_file(path, data, *args, **kwargs):
        if "gated-" in str(path):
            entered.set()
            gate.wait(30)
        return real_replace_file(path, data, *args, **kwargs)

    monkeypatch.setattr(engine, "replace_file", gated_replace_file)
    return entered, gate


def test_other_clients_are_answered_while_a_new_topics_files_are_written(tmp_path, monkeypatch) -> None:
    entered, gate = _gate_topic_files(monkeypatch)
    with running_broker(data_dir=tmp_path / "data") as broker:
        creator = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        other = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        try:
            (created,) = creator.create_topics([NewTopic("gated-topic", 8, 1)], operation_timeout=30).values()
            assert entered.wait(10)
            # The files are still being written: the broker answers another client all the same.
            topics = other.list_topics(timeout=10).topics
            assert "gated-topic" not in topics
            assert not created.done()
        finally:
            gate.set()
        assert created.result(timeout=10) is None
        assert len(other.list_topics(timeout=10).topics["gated-topic"].partitions) == 8


def test_a_producer_auto_creating_a_topic_holds_no_other_client(tmp_path, monkeypatch) -> None:
    entered, gate = _gate_topic_files(monkeypatch)
    with running_broker(data_dir=tmp_path / "data", num_partitions=3) as broker:
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, max_block_ms=30000)
        other = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        found: list[set[int] | None] = []
        asking = threading.Thread(target=lambda: found.append(producer.partitions_for("gated-auto")))
        asking.start()
        try:
            assert entered.wait(10)
            topics = other.list_topics(timeout=10).topics
            assert "gated-auto" not in topics
            assert not found
        finally:
            gate.set()
        asking.join(30)
        producer.close()
        assert found == [{0, 1, 2}]


def test_a_topic_whose_files_cannot_be_written_is_a_storage_error_and_leaves_its_name_free(tmp_path, monkeypatch) -> None:
    real_replace_file = engine.replace_file
    failing = threading.Event()
    failing.set()

    def failing_replace_file(path, data, *args, **kwargs):
        if "broken-" in str(path) and failing.is_set():
            raise OSError(28, "No space left on device")
        return real_replace_file(path, data, *args, **kwargs)

    monkeypatch.setattr(engine, "replace_file", failing_replace_file)
    with running_broker(data_dir=tmp_path / "data") as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        (refused,) = admin.create_topics([NewTopic("broken-topic", 2, 1)], operation_timeout=30).values()
        assert refused.exception(timeout=10).args[0].code() == KafkaError.KAFKA_STORAGE_ERROR
        assert "broken-topic" not in admin.list_topics(timeout=10).topics
        failing.clear()
        (created,) = admin.create_topics([NewTopic("broken-topic", 2, 1)], operation_timeout=30).values()
        assert created.result(timeout=10) is None
        assert len(admin.list_topics(timeout=10).topics["broken-topic"].partitions) == 2
