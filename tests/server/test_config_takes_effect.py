"""Topic configs, and the dynamic broker configs topics without an override take, altered at
runtime change what the log does, without a restart: retention deletes old segments at the next
check (log.retention.check.interval.ms; the first from the start, log.initial.task.delay.ms=0)."""

from __future__ import annotations

import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import AlterConfigOp, ConfigResource, ConfigResourceType

from ottla.testing import running_broker

CHECK_INTERVAL_MS = 50


def _earliest(bootstrap: str, tp: TopicPartition) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        return consumer.beginning_offsets([tp])[tp]
    finally:
        consumer.close()


def test_retention_altered_at_runtime_deletes_old_segments():
    with running_broker(data_dir=None, log_initial_task_delay_ms=0, log_retention_check_interval_ms=CHECK_INTERVAL_MS) as broker:
        # One batch per segment (the embedding API takes segment sizes below Kafka's 1 MiB floor).
        broker.create_topic("aging", partitions=1, segment_bytes=100)
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)
        for i in range(5):
            producer.send("aging", f"record-{i}".encode() * 4, partition=0).get(timeout=10)
        producer.close()
        tp = TopicPartition("aging", 0)
        time.sleep(CHECK_INTERVAL_MS * 6 / 1000)
        assert _earliest(broker.bootstrap_servers, tp) == 0  # a week's retention keeps everything

        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        try:
            change = ConfigResource(ConfigResourceType.TOPIC, "aging", configs={"retention.ms": (AlterConfigOp.SET, "1")})
            assert admin.alter_configs([change], incremental=True) == {"topic": {"aging": "OK"}}
        finally:
            admin.close()
        deadline = time.monotonic() + 10
        while _earliest(broker.bootstrap_servers, tp) == 0:
            assert time.monotonic() < deadline, "retention.ms=1 deleted nothing"
            time.sleep(CHECK_INTERVAL_MS / 1000)
        # Every segment has expired, the active one too (Kafka rolls it so retention can
        # delete it): the log is empty from offset 5, where it ended.
        assert _earliest(broker.bootstrap_servers, tp) == 5


def test_a_broker_retention_altered_at_runtime_applies_to_topics_without_their_own():
    with running_broker(data_dir=None, log_initial_task_delay_ms=0, log_retention_check_interval_ms=CHECK_INTERVAL_MS) as broker:
        broker.create_topic("aging-default", partitions=1, segment_bytes=100)
        broker.create_topic("aging-own", partitions=1, segment_bytes=100, retention_ms=-1)
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)
        for topic in ("aging-default", "aging-own"):
            for i in range(5):
                producer.send(topic, f"record-{i}".encode() * 4, partition=0).get(timeout=10)
        producer.close()
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        try:
            change = ConfigResource(ConfigResourceType.BROKER, "1", configs={"log.retention.ms": (AlterConfigOp.SET, "1")})
            assert admin.alter_configs([change], incremental=True) == {"broker": {"1": "OK"}}
        finally:
            admin.close()
        default, own = TopicPartition("aging-default", 0), TopicPartition("aging-own", 0)
        deadline = time.monotonic() + 10
        while _earliest(broker.bootstrap_servers, default) == 0:
            assert time.monotonic() < deadline, "log.retention.ms=1 deleted nothing"
            time.sleep(CHECK_INTERVAL_MS / 1000)
        assert _earliest(broker.bootstrap_servers, default) == 5
        # A topic's own retention.ms still wins over the broker's.
        assert _earliest(broker.bootstrap_servers, own) == 0
