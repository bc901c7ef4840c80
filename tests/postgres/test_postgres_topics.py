"""Topic configs, DeleteRecords, CreatePartitions, retention and the console on PostgreSQL
topics: `ottla serve --storage postgresql://...` with kafka-python's and confluent-kafka's admin
clients, producers and consumers over real sockets, on a private PostgreSQL server."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, Consumer, KafkaError, Producer
from confluent_kafka import TopicPartition as ConfluentPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions, OffsetSpec
from confluent_kafka.admin import NewTopic as ConfluentNewTopic
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource as KafkaConfigResource
from kafka.admin import ConfigResourceType, NewTopic
from kafka.protocol.producer import ProduceRequest, ProduceResponse
from kafka_wire import RawClient, make

from compat.harness import OttlaBroker
from ottla.wire.records import Record, build_batch

pytestmark = pytest.mark.external

_START_TIMEOUT = 60.0
_WAIT = 30.0
_T0 = 1_700_000_000_000  # November 2023: past any retention.ms below a year


@contextmanager
def _serve(url: str, *settings: str) -> Iterator[tuple[str, str]]:
    """A broker on free ports over `url`, with `--set` settings: (bootstrap, console URL)."""
    configured = dict(setting.split("=", 1) for setting in ("group.initial.rebalance.delay.ms=0", *settings))
    with OttlaBroker(storage=url, settings=configured, serve_args=["--http-port", "0"], ready_timeout=_START_TIMEOUT, stop_timeout=30) as broker:
        yield broker.bootstrap, broker.http or ""


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


def _wait_for(condition: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + _WAIT
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _produce_batches(bootstrap: str, topic: str, values: list[bytes], partition: int = 0, timestamp: int = 0) -> list[Any]:
    """Each value in a batch of its own (flushed one by one); the delivery reports in order."""
    reports: list[Any] = []
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "enable.idempotence": False, "message.max.bytes": 100_000})
    for value in values:
        producer.produce(topic, value, partition=partition, timestamp=timestamp, on_delivery=lambda error, message: reports.append((error, message)))
        assert producer.flush(30) == 0
    return reports


def _earliest(admin: AdminClient, topic: str, partition: int = 0) -> int:
    found = admin.list_offsets({ConfluentPartition(topic, partition): OffsetSpec.earliest()})
    return int(found[ConfluentPartition(topic, partition)].result().offset)


def _described(admin: KafkaAdminClient, topic: str) -> dict[str, tuple[str, str]]:
    """kafka-python's DescribeConfigs of a topic: name -> (value, config source)."""
    described = admin.describe_configs([KafkaConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all")["topic"][topic]
    return {name: (entry["value"], entry["config_source"]) for name, entry in described.items()}


_DYNAMIC_TOPIC_CONFIG = "DYNAMIC_TOPIC_CONFIG"


def test_topic_configs_are_stored_in_postgresql_and_applied_to_appends(postgres_url: str) -> None:
    topic = "configured"
    with _serve(postgres_url) as (bootstrap, _):
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        confluent_admin = AdminClient({"bootstrap.servers": bootstrap})
        try:
            admin.create_topics([NewTopic(topic, 1, 1)])
            # AlterConfigs (kafka-python): the whole set of overrides replaced.
            overrides = {"max.message.bytes": "2000", "retention.ms": "86400000", "message.timestamp.before.max.ms": "86400000"}
            altered = admin.alter_configs([KafkaConfigResource(ConfigResourceType.TOPIC, topic, overrides)], incremental=False)
            assert altered == {"topic": {topic: "OK"}}
            assert _described(admin, topic)["max.message.bytes"] == ("2000", _DYNAMIC_TOPIC_CONFIG)
            refused = _produce_batches(bootstrap, topic, [b"x" * 5000])
            assert refused[0][0] is not None and refused[0][0].code() == KafkaError.MSG_SIZE_TOO_LARGE
            too_old = _produce_batches(bootstrap, topic, [b"from 2023"], timestamp=_T0)
            assert too_old[0][0] is not None and too_old[0][0].code() == KafkaError.INVALID_TIMESTAMP
            # IncrementalAlterConfigs (confluent-kafka): one key set, another deleted, the others
            # kept. Under LogAppendTime the broker's clock is the timestamp: _T0 is not judged.
            resource = ConfigResource(
                ConfigResource.Type.TOPIC, topic,
                incremental_configs=[
                    ConfigEntry("message.timestamp.type", "LogAppendTime", incremental_operation=AlterConfigOpType.SET),
                    ConfigEntry("max.message.bytes", None, incremental_operation=AlterConfigOpType.DELETE),
                ],
            )
            for future in confluent_admin.incremental_alter_configs([resource]).values():
                future.result(timeout=30)
            before = time.time_ns() // 1_000_000
            accepted = _produce_batches(bootstrap, topic, [b"y" * 5000], timestamp=_T0)
            assert accepted[0][0] is None and accepted[0][1].offset() == 0
        finally:
            admin.close()
    # The overrides are in the database: a new broker applies them.
    with _serve(postgres_url) as (bootstrap, _):
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            described = _described(admin, topic)
        finally:
            admin.close()
        assert described["message.timestamp.type"] == ("LogAppendTime", _DYNAMIC_TOPIC_CONFIG)
        assert described["retention.ms"] == ("86400000", _DYNAMIC_TOPIC_CONFIG)
        assert described["message.timestamp.before.max.ms"] == ("86400000", _DYNAMIC_TOPIC_CONFIG)
        assert described["max.message.bytes"][1] != _DYNAMIC_TOPIC_CONFIG
        _produce_batches(bootstrap, topic, [b"z"], timestamp=_T0)
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "configured-reader", "auto.offset.reset": "earliest", "enable.auto.commit": False})
        try:
            consumer.assign([ConfluentPartition(topic, 0, 0)])
            stamps = []
            while len(stamps) < 2:
                message = consumer.poll(10)
                assert message is not None and message.error() is None, message and message.error()
                stamps.append(message.timestamp())
        finally:
            consumer.close()
    # The broker stamped both batches with its clock, not the producer's _T0.
    assert all(kind == TIMESTAMP_LOG_APPEND_TIME and stamp >= before for kind, stamp in stamps), stamps


def test_delete_records_create_partitions_and_the_console_on_postgresql_topics(postgres_url: str) -> None:
    topic = "trimmed"
    with _serve(postgres_url) as (bootstrap, http):
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for future in admin.create_topics([ConfluentNewTopic(topic, 1, 1)]).values():
            future.result(timeout=30)
        _produce_batches(bootstrap, topic, [f"v{i}".encode() for i in range(10)])
        # DeleteRecords in the middle of the log: the batches below go, the start is exact.
        deleted = admin.delete_records([ConfluentPartition(topic, 0, 5)])
        assert next(iter(deleted.values())).result(timeout=30).low_watermark == 5
        assert _earliest(admin, topic) == 5
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "trimmed-reader", "auto.offset.reset": "earliest", "enable.auto.commit": False})
        try:
            consumer.subscribe([topic])
            message = _wait_for(lambda: consumer.poll(1), "the first record from earliest")
            assert message.error() is None and (message.offset(), message.value()) == (5, b"v5")
        finally:
            consumer.close()
        # CreatePartitions: the new partition takes records and gives them back.
        for future in admin.create_partitions([NewPartitions(topic, 3)]).values():
            future.result(timeout=30)
        reports = _produce_batches(bootstrap, topic, [b"in the new partition"], partition=2)
        assert reports[0][0] is None and (reports[0][1].partition(), reports[0][1].offset()) == (2, 0)
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "new-partition-reader", "enable.auto.commit": False})
        try:
            consumer.assign([ConfluentPartition(topic, 2, 0)])
            message = _wait_for(lambda: consumer.poll(1), "the record of the new partition")
            assert message.error() is None and message.value() == b"in the new partition"
        finally:
            consumer.close()
        # The console: the topic page and its message reads, from the database.
        page = _get(f"{http}/api/topics/{topic}")
        assert [(p["partition"], p["log_start_offset"], p["high_watermark"]) for p in page["partitions"]] == [(0, 5, 10), (1, 0, 0), (2, 0, 1)]
        read = _get(f"{http}/api/topics/{topic}/messages?partition=0&offset=0&limit=3")
        assert [(m["offset"], m["value"]) for m in read["messages"]] == [(5, "v5"), (6, "v6"), (7, "v7")]
        newest = _get(f"{http}/api/topics/{topic}/messages?newest=2")
        assert sorted(m["value"] for m in newest["messages"]) == ["in the new partition", "v9"]
        by_time = _get(f"{http}/api/topics/{topic}/messages?partition=2&timestamp=0")
        assert [m["offset"] for m in by_time["messages"]] == [0]


def _produce_untimed(bootstrap: str, topic: str) -> None:
    """A batch whose record carries no timestamp (-1), as a magic 0 client's does."""
    body = {"transactional_id": None, "acks": -1, "timeout_ms": 5000,
            "topic_data": [{"name": topic, "partition_data": [{"index": 0, "records": build_batch([Record(0, -1, b"k", b"untimed")])}]}]}
    with RawClient(bootstrap) as client:
        assert client.call(make(ProduceRequest, body), 9, ProduceResponse).responses[0].partition_responses[0].error_code == 0


def test_retention_times_a_batch_without_a_timestamp_from_when_it_was_stored(postgres_url: str) -> None:
    """Kafka's LogSegment.largestTimestamp falls back to the segment file's modification time
    for records without a timestamp: they stay retention.ms from when they were stored, neither
    deleted at the first pass nor kept for ever."""
    with _serve(postgres_url, "log.initial.task.delay.ms=0", "log.retention.check.interval.ms=100") as (bootstrap, _):
        admin = AdminClient({"bootstrap.servers": bootstrap})
        topics = [
            ConfluentNewTopic("untimed-kept", 1, 1, config={"retention.ms": "3600000"}),
            ConfluentNewTopic("untimed-expiring", 1, 1, config={"retention.ms": "1000"}),
            ConfluentNewTopic("passes", 1, 1, config={"retention.bytes": "2500"}),
        ]
        for future in admin.create_topics(topics).values():
            future.result(timeout=30)
        _produce_untimed(bootstrap, "untimed-kept")
        _produce_untimed(bootstrap, "untimed-expiring")
        _produce_batches(bootstrap, "passes", [bytes(1000)] * 5)
        _wait_for(lambda: _earliest(admin, "passes") == 2, "a retention pass after the untimed batches")
        _wait_for(lambda: _earliest(admin, "untimed-expiring") == 1, "retention.ms to pass from when the untimed batch was stored")
        assert _earliest(admin, "untimed-kept") == 0


def test_retention_deletes_whole_old_batches_from_postgresql(postgres_url: str) -> None:
    with _serve(postgres_url, "log.initial.task.delay.ms=0", "log.retention.check.interval.ms=100") as (bootstrap, _):
        admin = AdminClient({"bootstrap.servers": bootstrap})
        topics = [
            ConfluentNewTopic("by-time", 1, 1, config={"retention.ms": "3600000"}),
            ConfluentNewTopic("by-size", 1, 1, config={"retention.bytes": "2500"}),
            ConfluentNewTopic("compacted", 1, 1, config={"retention.ms": "3600000", "cleanup.policy": "compact"}),
        ]
        for future in admin.create_topics(topics).values():
            future.result(timeout=30)
        # Three batches from 2023, past retention.ms, then two from now.
        _produce_batches(bootstrap, "by-time", [b"old"] * 3, timestamp=_T0)
        _produce_batches(bootstrap, "by-time", [b"new"] * 2)
        # Five batches of about 1070 bytes: at least 2500 bytes are kept, so the newest three.
        _produce_batches(bootstrap, "by-size", [bytes(1000)] * 5)
        _produce_batches(bootstrap, "compacted", [b"old"] * 2, timestamp=_T0)
        _wait_for(lambda: _earliest(admin, "by-time") == 3, "retention.ms to move the log start past the old batches")
        _wait_for(lambda: _earliest(admin, "by-size") == 2, "retention.bytes to move the log start")
        # An old batch after a new one stays: retention takes a prefix of the log. A policy
        # without delete keeps everything. A pass ran after both once by-size moves again.
        _produce_batches(bootstrap, "by-time", [b"old"], timestamp=_T0)
        _produce_batches(bootstrap, "by-size", [bytes(1000)])
        _wait_for(lambda: _earliest(admin, "by-size") == 3, "another retention pass")
        assert _earliest(admin, "by-time") == 3
        assert _earliest(admin, "compacted") == 0
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "retention-reader", "auto.offset.reset": "earliest", "enable.auto.commit": False})
        try:
            consumer.assign([ConfluentPartition("by-time", 0, 3)])
            values = [_wait_for(lambda: consumer.poll(1), "a kept record").value() for _ in range(3)]
        finally:
            consumer.close()
        assert values == [b"new", b"new", b"old"]
