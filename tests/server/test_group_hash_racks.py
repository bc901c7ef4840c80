"""KIP-1101's group metadata hash in a cluster, of consumer, streams and share groups alike: each
partition is hashed with the racks of its replicas (Utils.computeTopicHash over
KRaftCoordinatorMetadataImage.partitionRacks: every replica's broker.rack, duplicates kept,
sorted), not with the coordinator's own rack.

A reference Kafka 4.4 cluster of three brokers on racks r2, r1, r2 (nodes 1, 2, 3), given topic
"t" with the replicas of LAYOUT, wrote REFERENCE_VALUE as group "g"'s ConsumerGroupMetadataValue
after its first member's heartbeat."""

from __future__ import annotations

import struct
import time
from typing import Any

from ottla.server.coordinator.log import java_string_hash
from ottla.server.groups import share_records
from ottla.server.java_hashing import kafka_group_hash, kafka_topic_hash
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.records import iter_records, scan_batches
from tests.kafka_wire import WireClient

RACKS = {1: "r2", 2: "r1", 3: "r2"}
LAYOUT = {0: [1, 2], 1: [3, 1], 2: [2, 3]}
REFERENCE_TOPIC_ID = bytes.fromhex("6665823850bc48c78271594263a4c39a")
REFERENCE_VALUE = bytes.fromhex("0000000000020100088a2aba9741c5fa49")
# The ConsumerGroupMetadata and StreamsGroupMetadata record types.
CONSUMER_GROUP_METADATA, STREAMS_GROUP_METADATA = 3, 17


def _expected_hash(topic_id: bytes) -> int:
    return kafka_group_hash({"t": kafka_topic_hash(topic_id, "t", len(LAYOUT), lambda partition: [RACKS[node] for node in LAYOUT[partition]])})


def test_the_layout_hashes_to_what_the_reference_cluster_wrote() -> None:
    assert REFERENCE_VALUE == struct.pack(">hi", 0, 2) + b"\x01\x00\x08" + struct.pack(">q", _expected_hash(REFERENCE_TOPIC_ID))


def _signed(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value


def _coordinator(client: WireClient, addresses: dict[int, str], group_id: str, key_type: int = 0) -> WireClient:
    for _ in range(50):
        found = client.call(ApiKey.FIND_COORDINATOR, 4, {"key_type": key_type, "coordinator_keys": [group_id]})["coordinators"][0]
        if found["error_code"] == ErrorCode.NONE:
            return WireClient(addresses[found["node_id"]])
        time.sleep(0.1)
    raise AssertionError(f"no coordinator for {group_id}: {found}")


def _group_records(coordinator: WireClient, group_id: str, record_type: int) -> list[bytes]:
    """The values of `group_id`'s records of `record_type` in its `__consumer_offsets` partition."""
    index = abs(_signed(java_string_hash(group_id))) % 50
    fetched = coordinator.call(ApiKey.FETCH, 12, {
        "replica_id": -1, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1 << 20, "isolation_level": 0, "session_id": 0,
        "session_epoch": -1, "forgotten_topics_data": [], "rack_id": "",
        "topics": [{"topic": "__consumer_offsets", "partitions": [{"partition": index, "current_leader_epoch": -1, "fetch_offset": 0,
                                                                   "last_fetched_epoch": -1, "log_start_offset": -1, "partition_max_bytes": 1 << 20}]}]})
    partition = fetched["responses"][0]["partitions"][0]
    assert partition["error_code"] == ErrorCode.NONE
    marker = struct.pack(">hh", record_type, len(group_id)) + group_id.encode()
    return [bytes(record.value) for _, batch in scan_batches(bytes(partition["records"] or b"")) for record in iter_records(batch)
            if record.key is not None and record.value is not None and bytes(record.key).startswith(marker)]


def _cluster_with_topic(broker: Any) -> tuple[WireClient, dict[int, str], bytes]:
    client = WireClient(broker.bootstrap_servers)
    metadata = client.call(ApiKey.METADATA, 12, {"topics": None, "allow_auto_topic_creation": False, "include_topic_authorized_operations": False})
    assert {b["node_id"]: b["rack"] for b in metadata["brokers"]} == RACKS
    created = client.call(ApiKey.CREATE_TOPICS, 7, {"topics": [{"name": "t", "num_partitions": -1, "replication_factor": -1, "configs": [],
                                                                "assignments": [{"partition_index": p, "broker_ids": r} for p, r in LAYOUT.items()]}],
                                                    "timeout_ms": 5000, "validate_only": False})
    assert created["topics"][0]["error_code"] == ErrorCode.NONE
    return client, {b["node_id"]: f"{b['host']}:{b['port']}" for b in metadata["brokers"]}, bytes(created["topics"][0]["topic_id"])


def _three_racked_nodes() -> Any:
    return running_broker(nodes=3, racks=tuple(RACKS[node] for node in sorted(RACKS)), data_dir=None, offsets_topic_replication_factor=3,
                          group_streams_initial_rebalance_delay_ms=0)


def test_a_consumer_groups_hash_covers_each_partitions_replicas_racks() -> None:
    with _three_racked_nodes() as broker:
        client, addresses, topic_id = _cluster_with_topic(broker)
        coordinator = _coordinator(client, addresses, "g")
        answer = coordinator.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 1, {
            "group_id": "g", "member_id": "m1", "member_epoch": 0, "instance_id": None, "rack_id": None, "rebalance_timeout_ms": 30_000,
            "subscribed_topic_names": ["t"], "subscribed_topic_regex": None, "server_assignor": None, "topic_partitions": []})
        assert answer["error_code"] == ErrorCode.NONE
        written = _group_records(coordinator, "g", CONSUMER_GROUP_METADATA)
        coordinator.close()
        client.close()
    assert written == [struct.pack(">hi", 0, 2) + b"\x01\x00\x08" + struct.pack(">q", _expected_hash(topic_id))]


def test_a_streams_groups_hash_covers_each_partitions_replicas_racks() -> None:
    topology = {"epoch": 0, "subtopologies": [{"subtopology_id": "0", "source_topics": ["t"], "source_topic_regex": [], "state_changelog_topics": [],
                                               "repartition_sink_topics": [], "repartition_source_topics": [], "copartition_groups": []}]}
    with _three_racked_nodes() as broker:
        client, addresses, topic_id = _cluster_with_topic(broker)
        coordinator = _coordinator(client, addresses, "sg")
        answer = coordinator.call(ApiKey.STREAMS_GROUP_HEARTBEAT, 0, {
            "group_id": "sg", "member_id": "sm1", "member_epoch": 0, "endpoint_information_epoch": 0, "instance_id": None, "rack_id": None,
            "rebalance_timeout_ms": 30_000, "topology": topology, "active_tasks": [], "standby_tasks": [], "warmup_tasks": [], "process_id": "p1",
            "user_endpoint": None, "client_tags": [], "task_offsets": None, "task_end_offsets": None, "shutdown_application": False})
        assert answer["error_code"] == ErrorCode.NONE
        written = _group_records(coordinator, "sg", STREAMS_GROUP_METADATA)
        coordinator.close()
        client.close()
    assert written and written[-1][6:14] == struct.pack(">q", _expected_hash(topic_id))


def test_a_share_groups_hash_covers_each_partitions_replicas_racks() -> None:
    with _three_racked_nodes() as broker:
        client, addresses, topic_id = _cluster_with_topic(broker)
        coordinator = _coordinator(client, addresses, "shg")
        answer = coordinator.call(ApiKey.SHARE_GROUP_HEARTBEAT, 1, {"group_id": "shg", "member_id": "shm1", "member_epoch": 0, "rack_id": None,
                                                                    "subscribed_topic_names": ["t"]})
        assert answer["error_code"] == ErrorCode.NONE
        written = _group_records(coordinator, "shg", share_records.GROUP_METADATA)
        coordinator.close()
        client.close()
    assert written and share_records.parse_group_metadata_value(written[-1])[1] == _expected_hash(topic_id)
