"""Admin scenarios through kafka-python's KafkaAdminClient against a live broker: what a person
or a tool does to inspect and change a cluster, checked by what the broker then does."""

from __future__ import annotations

import uuid

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import AlterConfigOp, ConfigResource, ConfigResourceType, NewPartitions, NewTopic
from kafka.errors import InvalidConfigurationError, InvalidPartitionsError, KafkaError, MessageSizeTooLargeError, PolicyViolationError


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def admin(ottla_broker):
    client = KafkaAdminClient(bootstrap_servers=ottla_broker.bootstrap_servers)
    yield client
    client.close()


def _topic_configs(admin: KafkaAdminClient, topic: str) -> dict:
    return admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)], include_synonyms=True, config_filter="all")["topic"][topic]


def test_create_with_configs_then_describe_shows_value_source_and_synonyms(admin):
    topic = _name("kp-create")
    result = admin.create_topics([NewTopic(topic, 2, 1, topic_configs={"retention.ms": "60000", "cleanup.policy": "compact"})])
    (created,) = result["topics"]
    assert created["error_code"] == 0 and created["num_partitions"] == 2
    # CreateTopics v5+ returns the new topic's configs (KIP-525).
    assert created["configs"]["retention.ms"]["value"] == "60000"
    assert created["configs"]["segment.bytes"]["config_source"] == "DEFAULT_CONFIG"

    configs = _topic_configs(admin, topic)
    assert configs["retention.ms"]["value"] == "60000"
    assert configs["retention.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"
    assert [s["name"] for s in configs["retention.ms"]["synonyms"]] == ["retention.ms"]  # as Kafka: no log.retention.hours
    assert configs["cleanup.policy"]["value"] == "compact"
    assert configs["max.message.bytes"] == {
        "value": "1048588",
        "read_only": False,
        "config_source": "DEFAULT_CONFIG",
        "is_sensitive": False,
        "synonyms": [{"name": "message.max.bytes", "value": "1048588", "source": "DEFAULT_CONFIG"}],
        "config_type": "INT",
        "documentation": None,
    }
    assert len(configs) == 37  # Kafka 4.4's topic configs


@pytest.mark.parametrize(
    "configs, message",
    [
        ({"retention.ms": "soon"}, "Invalid value soon for configuration retention.ms: Not a number of type LONG"),
        ({"no.such.config": "1"}, "Unknown topic config name: no.such.config"),
        ({"cleanup.policy": "compact,shred"}, "Invalid value shred for configuration cleanup.policy: String must be one of: compact, delete"),
        ({"segment.bytes": "1024"}, "Invalid value 1024 for configuration segment.bytes: Value must be at least 1048576"),
        ({"message.timestamp.type": "WallClock"}, "String must be one of: CreateTime, LogAppendTime"),
        ({"min.cleanable.dirty.ratio": "1.5"}, "Value must be no more than 1"),
    ],
)
def test_create_with_a_bad_config_is_invalid_config_and_creates_nothing(admin, ottla_broker, configs, message):
    topic = _name("kp-bad")
    with pytest.raises(InvalidConfigurationError) as raised:
        admin.create_topics([NewTopic(topic, 1, 1, topic_configs=configs)])
    assert message in str(raised.value)
    assert topic not in admin.list_topics()


def test_alter_configs_takes_effect_at_once(admin, ottla_broker):
    topic = _name("kp-alter")
    admin.create_topics([NewTopic(topic, 1, 1, topic_configs={"retention.ms": "60000", "max.message.bytes": "100000"})])
    producer = KafkaProducer(bootstrap_servers=ottla_broker.bootstrap_servers, max_request_size=1 << 20)
    try:
        producer.send(topic, b"x" * 50_000).get(timeout=10)
        change = ConfigResource(ConfigResourceType.TOPIC, topic, configs={"max.message.bytes": "1000"})
        assert admin.alter_configs([change], incremental=False) == {"topic": {topic: "OK"}}
        configs = _topic_configs(admin, topic)
        # Legacy AlterConfigs resets what it does not name; kafka-python re-sends the other
        # overrides it described first, so retention.ms survives.
        assert configs["retention.ms"]["value"] == "60000"
        assert configs["max.message.bytes"]["value"] == "1000"
        with pytest.raises(MessageSizeTooLargeError):
            producer.send(topic, b"x" * 50_000).get(timeout=10)
    finally:
        producer.close()


def test_incremental_alter_sets_deletes_appends_and_subtracts(admin):
    topic = _name("kp-incr")
    admin.create_topics([NewTopic(topic, 1, 1, topic_configs={"retention.ms": "60000", "segment.ms": "3600000"})])
    change = {
        "retention.ms": (AlterConfigOp.DELETE, None),
        "cleanup.policy": (AlterConfigOp.APPEND, "compact"),
        "retention.bytes": (AlterConfigOp.SET, "1048576"),
    }
    assert admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs=change)], incremental=True) == {"topic": {topic: "OK"}}
    configs = _topic_configs(admin, topic)
    assert configs["retention.ms"]["config_source"] == "DEFAULT_CONFIG"
    assert configs["segment.ms"]["value"] == "3600000"  # untouched
    assert configs["cleanup.policy"]["value"] == "delete,compact"
    assert configs["retention.bytes"]["value"] == "1048576"

    subtract = {"cleanup.policy": (AlterConfigOp.SUBTRACT, "delete")}
    admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs=subtract)], incremental=True)
    assert _topic_configs(admin, topic)["cleanup.policy"]["value"] == "compact"

    not_a_list = {"retention.ms": (AlterConfigOp.APPEND, "1")}
    refused = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs=not_a_list)], incremental=True)
    assert "InvalidConfigurationError" in refused["topic"][topic]
    assert "Can't APPEND to key retention.ms because its type is not LIST" in refused["topic"][topic]


def test_broker_settings_are_described_and_static_ones_refused(admin, ottla_broker):
    described = admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, "1")], config_filter="all")["broker"]["1"]
    assert described["num.partitions"]["value"] == "1"
    assert described["log.retention.hours"]["value"] == "168"
    assert described["log.retention.ms"]["value"] is None
    assert (described["num.partitions"]["read_only"], described["log.retention.ms"]["read_only"]) == (True, False)
    change = ConfigResource(ConfigResourceType.BROKER, "1", configs={"num.partitions": "4"})
    refused = admin.alter_configs([change], raise_on_unknown=False)["broker"]["1"]
    assert "InvalidRequestError" in refused and "Cannot update these configs dynamically: [num.partitions]" in refused


def test_create_partitions_grows_the_topic_and_keeps_the_data(admin, ottla_broker):
    topic = _name("kp-grow")
    admin.create_topics([NewTopic(topic, 1, 1)])
    producer = KafkaProducer(bootstrap_servers=ottla_broker.bootstrap_servers)
    producer.send(topic, b"before", partition=0).get(timeout=10)
    producer.close()
    admin.create_partitions({topic: NewPartitions(3)})
    with pytest.raises(InvalidPartitionsError, match="Topic already has 3 partition"):
        admin.create_partitions({topic: NewPartitions(3)})
    producer = KafkaProducer(bootstrap_servers=ottla_broker.bootstrap_servers)
    consumer = KafkaConsumer(bootstrap_servers=ottla_broker.bootstrap_servers, consumer_timeout_ms=3000)
    try:
        assert consumer.partitions_for_topic(topic) == {0, 1, 2}
        producer.send(topic, b"after", partition=2).get(timeout=10)
        consumer.assign([TopicPartition(topic, 0), TopicPartition(topic, 2)])
        consumer.seek_to_beginning()
        assert sorted((m.partition, m.value) for m in consumer) == [(0, b"before"), (2, b"after")]
    finally:
        consumer.close()
        producer.close()


def test_delete_records_moves_the_low_watermark(admin, ottla_broker):
    topic = _name("kp-delrec")
    admin.create_topics([NewTopic(topic, 1, 1)])
    producer = KafkaProducer(bootstrap_servers=ottla_broker.bootstrap_servers)
    for i in range(5):
        producer.send(topic, str(i).encode(), partition=0).get(timeout=10)
    producer.close()
    tp = TopicPartition(topic, 0)
    assert admin.delete_records({tp: 3})[tp]["low_watermark"] == 3
    consumer = KafkaConsumer(bootstrap_servers=ottla_broker.bootstrap_servers, consumer_timeout_ms=3000)
    try:
        consumer.assign([tp])
        consumer.seek_to_beginning()
        assert [m.value for m in consumer] == [b"3", b"4"]
    finally:
        consumer.close()
    with pytest.raises(KafkaError):
        admin.delete_records({tp: 99})


@pytest.mark.parametrize(("policy", "deletes"), [("compact", False), ("compact,delete", True), ("delete", True)])
def test_delete_records_needs_a_cleanup_policy_with_delete(admin, ottla_broker, policy, deletes):
    # Kafka's Partition.deleteRecordsOnLeader: a compact-only log keeps its records until compaction.
    topic = _name("kp-delrec-policy")
    admin.create_topics([NewTopic(topic, 1, 1, topic_configs={"cleanup.policy": policy})])
    producer = KafkaProducer(bootstrap_servers=ottla_broker.bootstrap_servers)
    for i in range(3):
        producer.send(topic, str(i).encode(), key=b"k", partition=0).get(timeout=10)
    producer.close()
    tp = TopicPartition(topic, 0)
    if deletes:
        assert admin.delete_records({tp: 2})[tp]["low_watermark"] == 2
    else:
        with pytest.raises(PolicyViolationError):
            admin.delete_records({tp: 2})


def test_describe_cluster_log_dirs_and_topic_partitions(admin, ottla_broker):
    topic = _name("kp-describe")
    admin.create_topics([NewTopic(topic, 2, 1)])
    producer = KafkaProducer(bootstrap_servers=ottla_broker.bootstrap_servers)
    producer.send(topic, b"x" * 1000, partition=1).get(timeout=10)
    producer.close()
    cluster = admin.describe_cluster()
    port = int(ottla_broker.bootstrap_servers.rsplit(":", 1)[1])
    assert cluster["controller_id"] == 1
    assert [(b["broker_id"], b["port"]) for b in cluster["brokers"]] == [(1, port)]

    (broker,) = admin.describe_log_dirs()
    (log_dir,) = broker["log_dirs"]
    sizes = {p["partition_index"]: p["partition_size"] for t in log_dir["topics"] if t["name"] == topic for p in t["partitions"]}
    assert sizes[0] == 0 and sizes[1] > 1000

    described = admin.describe_topic_partitions([topic])
    (entry,) = described["topics"]
    assert [p["partition_index"] for p in entry["partitions"]] == [0, 1]
    assert all(p["leader_id"] == 1 and p["isr_nodes"] == [1] for p in entry["partitions"])


def test_elect_leaders_and_reassignments_tell_the_single_node_truth(admin):
    topic = _name("kp-elect")
    admin.create_topics([NewTopic(topic, 1, 1)])
    response = admin.elect_leaders(0, {topic: [0]}, raise_errors=False)
    (result,) = response.replica_election_results[0].partition_result
    assert result.error_code == 84  # ELECTION_NOT_NEEDED
    assert admin.list_partition_reassignments() == {}
    assert admin.alter_partition_reassignments({TopicPartition(topic, 0): [1]}) == {TopicPartition(topic, 0): None}
