"""Every version of every admin API over a real socket, encoded and decoded by kafka-python's
generated protocol classes (an independent codec), against a live broker; plus the answers to
bad input, which must be Kafka's error codes and never a closed connection."""

from __future__ import annotations

import uuid

import pytest
from kafka import KafkaProducer
from kafka.protocol.admin.cluster import DescribeClusterRequest, DescribeClusterResponse, DescribeLogDirsRequest, DescribeLogDirsResponse
from kafka.protocol.admin.configs import (
    AlterConfigsRequest,
    AlterConfigsResponse,
    DescribeConfigsRequest,
    DescribeConfigsResponse,
    IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
)
from kafka.protocol.admin.topics import (
    AlterPartitionReassignmentsRequest,
    AlterPartitionReassignmentsResponse,
    CreatePartitionsRequest,
    CreatePartitionsResponse,
    CreateTopicsRequest,
    CreateTopicsResponse,
    DeleteRecordsRequest,
    DeleteRecordsResponse,
    DescribeTopicPartitionsRequest,
    DescribeTopicPartitionsResponse,
    ElectLeadersRequest,
    ElectLeadersResponse,
    ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsResponse,
)
from kafka.protocol.consumer.offsets import OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse
from kafka.protocol.metadata.api_versions import ApiVersionsRequest, ApiVersionsResponse

from kafka_wire import RawClient, make

TOPIC, BROKER = 2, 4
ADMIN = {21: (0, 2), 23: (0, 4), 32: (0, 4), 33: (0, 2), 34: (0, 2), 35: (0, 5), 37: (0, 3), 43: (0, 2), 44: (0, 1), 45: (0, 1), 46: (0, 0),
         48: (0, 1), 49: (0, 1), 60: (0, 2), 75: (0, 0)}


@pytest.fixture
def client(ottla_broker):
    with RawClient(ottla_broker.bootstrap_servers) as raw:
        yield raw


def _topic(client: RawClient, partitions: int = 1, configs: dict[str, str] | None = None) -> str:
    name = f"adm-{uuid.uuid4().hex[:8]}"
    topic = dict(name=name, num_partitions=partitions, replication_factor=1, assignments=[], configs=[dict(name=k, value=v) for k, v in (configs or {}).items()])
    response = client.call(make(CreateTopicsRequest, dict(topics=[topic], timeout_ms=5000)), 4, CreateTopicsResponse)
    assert response.topics[0].error_code == 0
    return name


def _produce(bootstrap: str, topic: str, count: int, partition: int = 0) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for i in range(count):
        producer.send(topic, f"record-{i}".encode() * 10, partition=partition)
    producer.flush(10)
    producer.close()


def _describe(client: RawClient, name: str, version: int = 4, keys: list[str] | None = None, synonyms: bool = False, docs: bool = False):
    resource = dict(resource_type=TOPIC, resource_name=name, configuration_keys=keys)
    request = make(DescribeConfigsRequest, dict(resources=[resource], include_synonyms=synonyms, include_documentation=docs))
    (result,) = client.call(request, version, DescribeConfigsResponse).results
    return result


def test_api_versions_advertises_the_admin_apis(client):
    response = client.call(ApiVersionsRequest(client_software_name="t", client_software_version="1"), 3, ApiVersionsResponse)
    advertised = {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}
    assert {key: advertised.get(key) for key in ADMIN} == ADMIN


@pytest.mark.parametrize("version", range(0, 5))
def test_describe_configs(client, version):
    name = _topic(client, configs={"retention.ms": "5000"})
    result = _describe(client, name, version, keys=["retention.ms", "segment.bytes", "not.a.config"], synonyms=True, docs=True)
    assert result.error_code == 0
    entries = {entry.name: entry for entry in result.configs}
    assert sorted(entries) == ["retention.ms", "segment.bytes"]
    assert entries["retention.ms"].value == "5000"
    if version == 0:
        assert entries["retention.ms"].is_default is False and entries["segment.bytes"].is_default is True
    else:
        assert entries["retention.ms"].config_source == 1 and entries["segment.bytes"].config_source == 5
        # Kafka lists no broker synonym under retention.ms unless log.retention.ms is set (ConfigHelper.configSynonyms).
        assert [(s.name, s.value) for s in entries["retention.ms"].synonyms] == [("retention.ms", "5000")]
        assert [(s.name, s.value) for s in entries["segment.bytes"].synonyms] == [("log.segment.bytes", "1073741824")]
    if version >= 3:
        assert entries["segment.bytes"].config_type == 3  # INT
        assert "roll" in entries["segment.bytes"].documentation


def test_describe_configs_errors(client):
    missing = _describe(client, "no-such-topic")
    assert missing.error_code == 3
    other_broker = make(DescribeConfigsRequest, dict(resources=[dict(resource_type=BROKER, resource_name="9", configuration_keys=None)]))
    (result,) = client.call(other_broker, 4, DescribeConfigsResponse).results
    assert (result.error_code, result.error_message) == (42, "Unexpected broker id, expected 1 or empty string, but received 9")


@pytest.mark.parametrize("version", range(0, 3))
def test_alter_configs_replaces_all_overrides(client, version):
    name = _topic(client, configs={"retention.ms": "5000", "cleanup.policy": "compact"})
    resource = dict(resource_type=TOPIC, resource_name=name, configs=[dict(name="segment.ms", value="60000")])
    checked = client.call(make(AlterConfigsRequest, dict(resources=[resource], validate_only=True)), version, AlterConfigsResponse)
    assert checked.responses[0].error_code == 0
    assert {e.name for e in _describe(client, name).configs if e.config_source == 1} == {"retention.ms", "cleanup.policy"}
    done = client.call(make(AlterConfigsRequest, dict(resources=[resource], validate_only=False)), version, AlterConfigsResponse)
    assert done.responses[0].error_code == 0
    overrides = {e.name: e.value for e in _describe(client, name).configs if e.config_source == 1}
    assert overrides == {"segment.ms": "60000"}


@pytest.mark.parametrize(
    "configs, code, message",
    [
        ([dict(name="retention.ms", value="x")], 40, "Invalid value x for configuration retention.ms: Not a number of type LONG"),
        ([dict(name="retention.ms", value=None)], 42, "Null value not supported for : retention.ms"),
        ([dict(name="nope", value="1")], 40, "Unknown topic config name: nope"),
        ([dict(name="retention.ms", value="1"), dict(name="retention.ms", value="2")], 42, "Error due to duplicate config keys"),
    ],
)
def test_alter_configs_refusals(client, configs, code, message):
    name = _topic(client, configs={"retention.ms": "5000"})
    resource = dict(resource_type=TOPIC, resource_name=name, configs=configs)
    response = client.call(make(AlterConfigsRequest, dict(resources=[resource], validate_only=False)), 2, AlterConfigsResponse)
    assert (response.responses[0].error_code, response.responses[0].error_message) == (code, message)
    assert {e.name: e.value for e in _describe(client, name).configs if e.config_source == 1} == {"retention.ms": "5000"}


@pytest.mark.parametrize("version", range(0, 2))
def test_incremental_alter_configs(client, version):
    name = _topic(client, configs={"retention.ms": "5000"})
    operations = [
        dict(name="retention.ms", config_operation=1, value=None),
        dict(name="cleanup.policy", config_operation=2, value="compact"),
        dict(name="segment.ms", config_operation=0, value="60000"),
    ]
    request = make(IncrementalAlterConfigsRequest, dict(resources=[dict(resource_type=TOPIC, resource_name=name, configs=operations)], validate_only=False))
    assert client.call(request, version, IncrementalAlterConfigsResponse).responses[0].error_code == 0
    overrides = {e.name: e.value for e in _describe(client, name).configs if e.config_source == 1}
    assert overrides == {"cleanup.policy": "delete,compact", "segment.ms": "60000"}
    bad = [dict(name="segment.ms", config_operation=9, value="1")]
    request = make(IncrementalAlterConfigsRequest, dict(resources=[dict(resource_type=TOPIC, resource_name=name, configs=bad)], validate_only=False))
    assert client.call(request, version, IncrementalAlterConfigsResponse).responses[0].error_code == 42


def test_alter_broker_configs_refuses_a_static_key(client):
    resource = dict(resource_type=BROKER, resource_name="1", configs=[dict(name="log.retention.hours", value="1")])
    response = client.call(make(AlterConfigsRequest, dict(resources=[resource], validate_only=False)), 2, AlterConfigsResponse)
    assert (response.responses[0].error_code, response.responses[0].error_message) == (42, "Cannot update these configs dynamically: [log.retention.hours]")


@pytest.mark.parametrize("version", range(0, 4))
def test_create_partitions(client, version):
    name = _topic(client)
    grow = make(CreatePartitionsRequest, dict(topics=[dict(name=name, count=3, assignments=None)], timeout_ms=5000, validate_only=False))
    assert client.call(grow, version, CreatePartitionsResponse).results[0].error_code == 0
    shrink = make(CreatePartitionsRequest, dict(topics=[dict(name=name, count=2, assignments=None)], timeout_ms=5000, validate_only=False))
    (result,) = client.call(shrink, version, CreatePartitionsResponse).results
    assert (result.error_code, result.error_message) == (37, f"The topic {name} currently has 3 partition(s); 2 would not be an increase.")
    elsewhere = make(CreatePartitionsRequest, dict(topics=[dict(name=name, count=4, assignments=[dict(broker_ids=[2])])], timeout_ms=5000, validate_only=False))
    assert client.call(elsewhere, version, CreatePartitionsResponse).results[0].error_code == 39
    unknown = make(CreatePartitionsRequest, dict(topics=[dict(name="no-such-topic", count=4, assignments=None)], timeout_ms=5000, validate_only=False))
    assert client.call(unknown, version, CreatePartitionsResponse).results[0].error_code == 3


@pytest.mark.parametrize("version", range(0, 2))
def test_describe_cluster(client, ottla_broker, version):
    request = make(DescribeClusterRequest, dict(include_cluster_authorized_operations=False, endpoint_type=1))
    response = client.call(request, version, DescribeClusterResponse)
    port = int(ottla_broker.bootstrap_servers.rsplit(":", 1)[1])
    assert (response.error_code, response.controller_id) == (0, 1)
    assert [(b.broker_id, b.host, b.port) for b in response.brokers] == [(1, "127.0.0.1", port)]
    if version == 1:
        controllers = make(DescribeClusterRequest, dict(include_cluster_authorized_operations=False, endpoint_type=2))
        assert client.call(controllers, 1, DescribeClusterResponse).error_code == 114  # MISMATCHED_ENDPOINT_TYPE


@pytest.mark.parametrize("version", range(0, 6))
def test_describe_log_dirs_reports_sizes(client, ottla_broker, version):
    name = _topic(client, partitions=2)
    _produce(ottla_broker.bootstrap_servers, name, 20, partition=1)
    request = make(DescribeLogDirsRequest, dict(topics=[dict(topic=name, partitions=[0, 1, 7])]))
    (log_dir,) = client.call(request, version, DescribeLogDirsResponse).results
    (topic,) = log_dir.topics
    sizes = {p.partition_index: p.partition_size for p in topic.partitions}
    assert sizes.keys() == {0, 1} and sizes[0] == 0 and sizes[1] > 20 * 80


@pytest.mark.ottla_disk
def test_describe_log_dirs_on_disk_names_the_directory_and_its_capacity(ottla_broker_fn):
    with RawClient(ottla_broker_fn.bootstrap_servers) as client:
        name = _topic(client)
        _produce(ottla_broker_fn.bootstrap_servers, name, 5)
        (log_dir,) = client.call(make(DescribeLogDirsRequest, dict(topics=None)), 4, DescribeLogDirsResponse).results
    assert log_dir.log_dir == str(ottla_broker_fn.broker.data_dir.resolve())
    assert log_dir.total_bytes > log_dir.usable_bytes > 0
    (topic,) = [t for t in log_dir.topics if t.name == name]
    on_disk = (ottla_broker_fn.broker.data_dir / f"{name}-0").glob("*.log")
    assert topic.partitions[0].partition_size == sum(path.stat().st_size for path in on_disk) > 0


@pytest.mark.parametrize("version", range(0, 5))
def test_offset_for_leader_epoch(client, ottla_broker, version):
    name = _topic(client)
    _produce(ottla_broker.bootstrap_servers, name, 3)
    partitions = [
        dict(partition=0, current_leader_epoch=-1, leader_epoch=0),
        dict(partition=0, current_leader_epoch=-1, leader_epoch=5),
        dict(partition=9, current_leader_epoch=-1, leader_epoch=0),
    ]
    request = make(OffsetForLeaderEpochRequest, dict(replica_id=-1, topics=[dict(topic=name, partitions=partitions)]))
    answers = client.call(request, version, OffsetForLeaderEpochResponse).topics[0].partitions
    assert [(a.error_code, a.end_offset) for a in answers] == [(0, 3), (0, -1), (3, -1)]
    if version >= 1:
        assert [a.leader_epoch for a in answers] == [0, -1, -1]
    if version >= 2:
        ahead = [dict(partition=0, current_leader_epoch=4, leader_epoch=0)]
        request = make(OffsetForLeaderEpochRequest, dict(replica_id=-1, topics=[dict(topic=name, partitions=ahead)]))
        assert client.call(request, version, OffsetForLeaderEpochResponse).topics[0].partitions[0].error_code == 75  # UNKNOWN_LEADER_EPOCH


@pytest.mark.parametrize("version", range(0, 3))
def test_elect_leaders(client, version):
    name = _topic(client)
    body = dict(election_type=0, topic_partitions=[dict(topic=name, partitions=[0, 5])], timeout_ms=5000)
    response = client.call(make(ElectLeadersRequest, body), version, ElectLeadersResponse)
    results = response.replica_election_results[0].partition_result
    assert [(r.partition_id, r.error_code) for r in results] == [(0, 84), (5, 3)]
    if version >= 1:
        body["election_type"] = 7
        assert client.call(make(ElectLeadersRequest, body), version, ElectLeadersResponse).error_code == 42


@pytest.mark.parametrize("version", range(0, 2))
def test_partition_reassignments(client, version):
    name = _topic(client, partitions=2)
    listed = client.call(make(ListPartitionReassignmentsRequest, dict(timeout_ms=5000, topics=None)), 0, ListPartitionReassignmentsResponse)
    assert (listed.error_code, listed.topics) == (0, [])
    partitions = [dict(partition_index=0, replicas=[1]), dict(partition_index=1, replicas=None), dict(partition_index=1, replicas=[2]), dict(partition_index=4, replicas=[1])]
    request = make(AlterPartitionReassignmentsRequest, dict(timeout_ms=5000, allow_replication_factor_change=False, topics=[dict(name=name, partitions=partitions)]))
    response = client.call(request, version, AlterPartitionReassignmentsResponse)
    assert [(p.partition_index, p.error_code) for p in response.responses[0].partitions] == [(0, 0), (1, 85), (1, 39), (4, 3)]
    if version >= 1:  # KIP-860: the answer echoes whether the replication factor could change
        assert response.allow_replication_factor_change is False


def test_describe_topic_partitions_pages_with_a_cursor(client):
    counts = {_topic(client, partitions=3): 3, _topic(client, partitions=2): 2}
    first, second = sorted(counts)
    seen = []
    cursor = None
    pages = 0
    while True:
        body = dict(topics=[dict(name=first), dict(name=second)], response_partition_limit=2, cursor=cursor)
        response = client.call(make(DescribeTopicPartitionsRequest, body), 0, DescribeTopicPartitionsResponse)
        pages += 1
        for topic in response.topics:
            assert topic.error_code == 0
            seen += [(topic.name, p.partition_index, p.leader_id) for p in topic.partitions]
        if response.next_cursor is None:
            break
        cursor = dict(topic_name=response.next_cursor.topic_name, partition_index=response.next_cursor.partition_index)
    assert pages == 3
    assert seen == [(name, index, 1) for name in (first, second) for index in range(counts[name])]
    unknown = make(DescribeTopicPartitionsRequest, dict(topics=[dict(name="no-such-topic")], response_partition_limit=10, cursor=None))
    assert client.call(unknown, 0, DescribeTopicPartitionsResponse).topics[0].error_code == 3
    # A negative cursor index is INVALID_REQUEST, as Kafka 4.4 answers it.
    backwards = dict(topics=[dict(name=first)], response_partition_limit=10, cursor=dict(topic_name=first, partition_index=-2))
    (topic,) = client.call(make(DescribeTopicPartitionsRequest, backwards), 0, DescribeTopicPartitionsResponse).topics
    assert (topic.error_code, topic.partitions) == (42, [])


@pytest.mark.parametrize("version", range(0, 3))
def test_delete_records(client, ottla_broker, version):
    name = _topic(client)
    _produce(ottla_broker.bootstrap_servers, name, 6)
    partitions = [dict(partition_index=0, offset=4), dict(partition_index=3, offset=0)]
    request = make(DeleteRecordsRequest, dict(topics=[dict(name=name, partitions=partitions)], timeout_ms=5000))
    answers = client.call(request, version, DeleteRecordsResponse).topics[0].partitions
    assert [(a.partition_index, a.low_watermark, a.error_code) for a in answers] == [(0, 4, 0), (3, -1, 3)]
    beyond = make(DeleteRecordsRequest, dict(topics=[dict(name=name, partitions=[dict(partition_index=0, offset=99)])], timeout_ms=5000))
    assert client.call(beyond, version, DeleteRecordsResponse).topics[0].partitions[0].error_code == 1  # OFFSET_OUT_OF_RANGE


@pytest.mark.ottla_disk
def test_altered_configs_and_added_partitions_survive_a_restart(ottla_broker_fn):
    with RawClient(ottla_broker_fn.bootstrap_servers) as client:
        name = _topic(client, configs={"retention.ms": "5000"})
        operations = [dict(name="max.message.bytes", config_operation=0, value="4096")]
        request = make(IncrementalAlterConfigsRequest, dict(resources=[dict(resource_type=TOPIC, resource_name=name, configs=operations)], validate_only=False))
        assert client.call(request, 1, IncrementalAlterConfigsResponse).responses[0].error_code == 0
        grow = make(CreatePartitionsRequest, dict(topics=[dict(name=name, count=2, assignments=None)], timeout_ms=5000, validate_only=False))
        assert client.call(grow, 3, CreatePartitionsResponse).results[0].error_code == 0
    ottla_broker_fn.restart()
    with RawClient(ottla_broker_fn.bootstrap_servers) as client:
        overrides = {e.name: e.value for e in _describe(client, name).configs if e.config_source == 1}
        request = make(DescribeTopicPartitionsRequest, dict(topics=[dict(name=name)], response_partition_limit=10, cursor=None))
        partitions = client.call(request, 0, DescribeTopicPartitionsResponse).topics[0].partitions
    assert overrides == {"retention.ms": "5000", "max.message.bytes": "4096"}
    assert [p.partition_index for p in partitions] == [0, 1]
