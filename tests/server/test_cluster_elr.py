"""Eligible leader replicas (KIP-966) over real sockets: a three-node Ottla cluster answers
DescribeTopicPartitions with each partition's ELR and last-known ELR as a three-node Kafka 4.4
answered `kafka-topics --describe` (the reference, compat.kafka.ReferenceKafkaCluster, for a
topic of replication 3 and min.insync.replicas 3: "Isr: 1,2  Elr: 3  LastKnownElr: " once node 3
stopped; min.insync.replicas 2: no ELR), and UpdateFeatures turns the feature off and on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from compat.differential import _Connection
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

ELR = "eligible.leader.replicas.version"
UPGRADE, SAFE_DOWNGRADE = 1, 2


@pytest.fixture
def cluster() -> Iterator[ThreadedBroker]:
    with running_broker(nodes=3, data_dir=None) as threaded:
        yield threaded


def _partition(connection: _Connection, topic: str) -> dict[str, Any]:
    answer = connection.call(ApiKey.DESCRIBE_TOPIC_PARTITIONS, 0, {"topics": [{"name": topic}], "response_partition_limit": 10, "cursor": None})
    (described,) = answer["topics"]
    assert described["error_code"] == ErrorCode.NONE
    (partition,) = described["partitions"]
    return {key: partition[key] for key in ("leader_id", "isr_nodes", "eligible_leader_replicas", "last_known_elr")}


def _update_elr(connection: _Connection, level: int, upgrade_type: int) -> int:
    answer = connection.call(ApiKey.UPDATE_FEATURES, 1, {
        "timeout_ms": 30000, "feature_updates": [{"feature": ELR, "max_version_level": level, "upgrade_type": upgrade_type}], "validate_only": False})
    return int(answer["error_code"])


def _finalized_elr(connection: _Connection) -> list[Any]:
    answer = connection.call(ApiKey.API_VERSIONS, 3, {"client_software_name": "t", "client_software_version": "1"})
    return [f["max_version_level"] for f in answer["finalized_features"] if f["name"] == ELR]


def test_a_stopped_follower_below_min_isr_is_described_as_eligible(cluster: ThreadedBroker) -> None:
    cluster.create_topic("elr3", replication_factor=3, min_insync_replicas=3)
    cluster.create_topic("elr2", replication_factor=3, min_insync_replicas=2)
    leader = cluster.leader_of("elr3", 0)
    follower = next(node for node in cluster.partition_state("elr3", 0)["replicas"] if node != leader)
    running = next(address for node, address in enumerate(cluster.bootstrap_servers.split(","), 1) if node != follower)
    connection = _Connection(running)
    try:
        assert _finalized_elr(connection) == [1], "a new cluster finalizes ELR as Kafka 4.4 formats one"
        assert _partition(connection, "elr3")["eligible_leader_replicas"] == []
        cluster.stop_node(follower)
        described = _partition(connection, "elr3")
        assert described == {"leader_id": leader, "isr_nodes": described["isr_nodes"], "eligible_leader_replicas": [follower], "last_known_elr": []}
        assert sorted(described["isr_nodes"]) == sorted({1, 2, 3} - {follower})
        assert _partition(connection, "elr2")["eligible_leader_replicas"] == [], "an ISR at min.insync.replicas keeps no ELR"
        cluster.start_node(follower)
        assert _partition(connection, "elr3") == {"leader_id": leader, "isr_nodes": [1, 2, 3], "eligible_leader_replicas": [], "last_known_elr": []}
    finally:
        connection.close()


def test_update_features_turns_eligible_leader_replicas_off_and_on(cluster: ThreadedBroker) -> None:
    cluster.create_topic("elr3", replication_factor=3, min_insync_replicas=3)
    leader = cluster.leader_of("elr3", 0)
    first, second = [node for node in cluster.partition_state("elr3", 0)["replicas"] if node != leader]
    connection = _Connection(cluster.bootstrap_servers.split(",")[leader - 1])
    try:
        assert _update_elr(connection, 0, SAFE_DOWNGRADE) == ErrorCode.NONE
        assert _finalized_elr(connection) == []
        cluster.stop_node(first)
        assert _partition(connection, "elr3")["eligible_leader_replicas"] == [], "no ELR while the feature is off"
        assert _update_elr(connection, 1, UPGRADE) == ErrorCode.NONE
        assert _finalized_elr(connection) == [1]
        cluster.stop_node(second)
        # The ISR lost `second` below min.insync.replicas; `first` had left before, with the feature off.
        assert _partition(connection, "elr3") == {"leader_id": leader, "isr_nodes": [leader], "eligible_leader_replicas": [second], "last_known_elr": []}
    finally:
        connection.close()


def test_a_single_node_describes_no_eligible_replicas() -> None:
    with running_broker(data_dir=None) as broker:
        broker.create_topic("one", min_insync_replicas=2)
        connection = _Connection(broker.bootstrap_servers)
        try:
            assert _finalized_elr(connection) == [1]
            assert _partition(connection, "one") == {"leader_id": 1, "isr_nodes": [1], "eligible_leader_replicas": [], "last_known_elr": []}
        finally:
            connection.close()
