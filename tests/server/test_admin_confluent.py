"""Admin scenarios through confluent-kafka's AdminClient (librdkafka) against a live broker."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, ElectionType, KafkaException, Producer, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource, NewPartitions, NewTopic, ResourceType

TIMEOUT = 15


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def admin(ottla_broker):
    return AdminClient({"bootstrap.servers": ottla_broker.bootstrap_servers})


def _create(admin: AdminClient, name: str, partitions: int = 1, config: dict[str, str] | None = None) -> None:
    (future,) = admin.create_topics([NewTopic(name, partitions, 1, config=config or {})], operation_timeout=TIMEOUT).values()
    future.result(TIMEOUT)


def _configs(admin: AdminClient, name: str) -> dict:
    (future,) = admin.describe_configs([ConfigResource(ResourceType.TOPIC, name)]).values()
    return future.result(TIMEOUT)


def _produce(bootstrap: str, topic: str, count: int, partition: int = 0) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(count):
        producer.produce(topic, key=f"k{i}".encode(), value=f"v{i}".encode(), partition=partition)
    assert producer.flush(TIMEOUT) == 0


def test_create_with_configs_and_describe(admin):
    name = _name("cf-create")
    _create(admin, name, 2, {"retention.ms": "60000", "message.timestamp.type": "LogAppendTime"})
    configs = _configs(admin, name)
    assert configs["retention.ms"].value == "60000"
    assert configs["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert set(configs["retention.ms"].synonyms) == {"retention.ms"}  # as Kafka: no log.retention.hours
    assert configs["message.timestamp.type"].value == "LogAppendTime"
    assert configs["segment.bytes"].source == ConfigSource.DEFAULT_CONFIG.value


def test_create_with_a_bad_config_fails_with_invalid_config(admin):
    (future,) = admin.create_topics([NewTopic(_name("cf-bad"), 1, 1, config={"cleanup.policy": "shred"})], operation_timeout=TIMEOUT).values()
    with pytest.raises(KafkaException) as raised:
        future.result(TIMEOUT)
    assert raised.value.args[0].name() == "INVALID_CONFIG"


def test_incremental_and_legacy_alter(admin):
    name = _name("cf-alter")
    _create(admin, name, 1, {"retention.ms": "60000"})
    change = ConfigResource(
        ResourceType.TOPIC,
        name,
        incremental_configs=[
            ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND),
            ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
        ],
    )
    for future in admin.incremental_alter_configs([change]).values():
        future.result(TIMEOUT)
    configs = _configs(admin, name)
    assert configs["cleanup.policy"].value == "delete,compact"
    assert configs["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value

    # Legacy AlterConfigs replaces the whole set of overrides.
    for future in admin.alter_configs([ConfigResource(ResourceType.TOPIC, name, set_config={"segment.ms": "600000"})]).values():
        future.result(TIMEOUT)
    configs = _configs(admin, name)
    assert configs["segment.ms"].value == "600000"
    assert configs["cleanup.policy"].source == ConfigSource.DEFAULT_CONFIG.value


def test_create_partitions_delete_records_and_offsets(admin, ottla_broker):
    name = _name("cf-grow")
    _create(admin, name, 1)
    for future in admin.create_partitions([NewPartitions(name, 3)]).values():
        future.result(TIMEOUT)
    (future,) = admin.describe_topics(TopicCollection([name])).values()
    assert [p.id for p in future.result(TIMEOUT).partitions] == [0, 1, 2]

    _produce(ottla_broker.bootstrap_servers, name, 10, partition=2)
    (future,) = admin.delete_records([TopicPartition(name, 2, 7)]).values()
    assert future.result(TIMEOUT).low_watermark == 7
    consumer = Consumer({"bootstrap.servers": ottla_broker.bootstrap_servers, "group.id": _name("cf-reader"), "enable.auto.commit": False})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(name, 2), timeout=TIMEOUT)
        assert (low, high) == (7, 10)
    finally:
        consumer.close()


def test_describe_cluster_and_elect_leaders(admin, ottla_broker):
    cluster = admin.describe_cluster().result(TIMEOUT)
    port = int(ottla_broker.bootstrap_servers.rsplit(":", 1)[1])
    assert cluster.controller.id == 1
    assert [(node.id, node.port) for node in cluster.nodes] == [(1, port)]

    name = _name("cf-elect")
    _create(admin, name, 1)
    results = admin.elect_leaders(ElectionType.PREFERRED, [TopicPartition(name, 0)]).result(TIMEOUT)
    (error,) = results.values()
    assert error.name() == "ELECTION_NOT_NEEDED"


def test_groups_list_describe_and_delete(admin, ottla_broker):
    topic, group = _name("cf-groups"), _name("cf-group")
    _create(admin, topic, 1)
    _produce(ottla_broker.bootstrap_servers, topic, 3)
    consumer = Consumer({"bootstrap.servers": ottla_broker.bootstrap_servers, "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        consumer.subscribe([topic])
        seen = []
        while len(seen) < 3:
            message = consumer.poll(TIMEOUT)
            assert message is not None and message.error() is None
            seen.append(message.value())
        consumer.commit(asynchronous=False)
        listed = admin.list_consumer_groups().result(TIMEOUT)
        assert group in {g.group_id for g in listed.valid}
        (future,) = admin.describe_consumer_groups([group]).values()
        described = future.result(TIMEOUT)
        assert described.state.name == "STABLE" and len(described.members) == 1
    finally:
        consumer.close()
    (future,) = admin.delete_consumer_groups([group]).values()
    future.result(TIMEOUT)
    assert group not in {g.group_id for g in admin.list_consumer_groups().result(TIMEOUT).valid}
