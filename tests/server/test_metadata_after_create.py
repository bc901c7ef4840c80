"""Metadata about a topic around its creation, as Kafka 4.4 answers it (checked on the reference
Kafka with these requests). While another request creates the topic (its files still being
written on a thread, server/topic_creation.py) it is UNKNOWN_TOPIC_OR_PARTITION, whether or not
the request allows auto-creation: Kafka's DefaultAutoTopicCreationManager answers every topic it
does not have yet so, one already in flight included, and whatever its controller says of it
(TOPIC_ALREADY_EXISTS here); never LEADER_NOT_AVAILABLE. Once CreateTopics has answered, the
topic is listed with all its partitions at the versions kafka-go sends (v1, v6, v8).

kafka-go's own tests log "topic with 0 partitions" after a CreateTopics on either broker: their
Client.Metadata answers from its Transport's cached listing of all topics (refreshed every 0-6
s) and makes UNKNOWN_TOPIC_OR_PARTITION of a topic not in it, without asking the broker."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import ottla.storage.engine as engine
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from tests.kafka_wire import WireClient


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


def _metadata(client: WireClient, version: int, name: str, allow_auto_creation: bool = False) -> dict[str, Any]:
    (topic,) = client.call(ApiKey.METADATA, version, {
        "topics": [{"name": name}], "allow_auto_topic_creation": allow_auto_creation,
        "include_cluster_authorized_operations": False, "include_topic_authorized_operations": False,
    })["topics"]
    return topic


def _create(bootstrap: str, name: str, partitions: int, answers: list[dict[str, Any]]) -> threading.Thread:
    """CreateTopics v2 (kafka-go's) of `name` on a connection of its own, in a thread; its answer's topic into `answers`."""
    def create() -> None:
        client = WireClient(bootstrap, timeout=30)
        try:
            answers.extend(client.call(ApiKey.CREATE_TOPICS, 2, {
                "topics": [{"name": name, "num_partitions": partitions, "replication_factor": 1, "assignments": [], "configs": []}],
                "timeout_ms": 5000, "validate_only": False,
            })["topics"])
        finally:
            client.close()

    creating = threading.Thread(target=create)
    creating.start()
    return creating


@pytest.mark.parametrize(("version", "allow_auto_creation"), [(1, True), (8, True), (8, False), (12, True)])
def test_a_topic_being_created_is_unknown_to_metadata(tmp_path, monkeypatch, version: int, allow_auto_creation: bool) -> None:
    entered, gate = _gate_topic_files(monkeypatch)
    with running_broker(data_dir=tmp_path / "data", auto_create_topics_enable="true") as broker:
        created: list[dict[str, Any]] = []
        creating = _create(broker.bootstrap_servers, "gated-topic", 3, created)
        client = WireClient(broker.bootstrap_servers)
        try:
            assert entered.wait(10)
            during = _metadata(client, version, "gated-topic", allow_auto_creation)
        finally:
            gate.set()
            creating.join(30)
        after = _metadata(client, version, "gated-topic")
        client.close()
    assert (during["error_code"], during["partitions"]) == (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, [])
    assert [(topic["name"], topic["error_code"]) for topic in created] == [("gated-topic", ErrorCode.NONE)]
    assert after["error_code"] == ErrorCode.NONE
    assert sorted(partition["partition_index"] for partition in after["partitions"]) == [0, 1, 2]


def test_a_topic_another_metadata_is_auto_creating_is_unknown(tmp_path, monkeypatch) -> None:
    """The first request's auto-creation answers the topic with its partitions (a README
    deviation); the second, arriving while its files are written, is told it is unknown."""
    entered, gate = _gate_topic_files(monkeypatch)
    with running_broker(data_dir=tmp_path / "data", auto_create_topics_enable="true", num_partitions=2) as broker:
        first: list[dict[str, Any]] = []
        creating_client = WireClient(broker.bootstrap_servers, timeout=30)
        creating = threading.Thread(target=lambda: first.append(_metadata(creating_client, 8, "gated-auto", True)))
        creating.start()
        client = WireClient(broker.bootstrap_servers)
        try:
            assert entered.wait(10)
            second = _metadata(client, 8, "gated-auto", True)
        finally:
            gate.set()
            creating.join(30)
        creating_client.close()
        client.close()
    assert (second["error_code"], second["partitions"]) == (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, [])
    (answer,) = first
    assert answer["error_code"] == ErrorCode.NONE and len(answer["partitions"]) == 2


@pytest.mark.parametrize("version", [1, 6, 8])
def test_a_topic_is_listed_whole_once_create_topics_answered(tmp_path, version: int) -> None:
    with running_broker(data_dir=tmp_path / "data") as broker:
        created: list[dict[str, Any]] = []
        _create(broker.bootstrap_servers, "kafka-go-topic", 4, created).join(30)
        client = WireClient(broker.bootstrap_servers)
        topic = _metadata(client, version, "kafka-go-topic")
        client.close()
    assert [entry["error_code"] for entry in created] == [ErrorCode.NONE]
    assert topic["error_code"] == ErrorCode.NONE
    assert [(p["partition_index"], p["error_code"]) for p in topic["partitions"]] == [(index, ErrorCode.NONE) for index in range(4)]
