"""Cluster mode over real sockets: a partition whose only replica's node stopped has no leader.
Metadata answers it LEADER_NOT_AVAILABLE, while DescribeTopicPartitions describes it with no
error (leader -1, the stopped replica offline and eligible), as a three-node Kafka 4.4 does:
KRaftMetadataCache.partitionMetadataForDescribeTopicResponse sets no partition error."""

from __future__ import annotations

from typing import Any

from ottla.server.admin.client import Connection
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

TOPIC = "leaderless-described"


def _call(cluster: ThreadedBroker, api: ApiKey, version: int, body: dict[str, Any]) -> dict[str, Any]:
    host, port = cluster.bootstrap_servers.split(",")[0].rsplit(":", 1)
    connection = Connection(host, int(port), 10.0, "leaderless-describe")
    try:
        answer: dict[str, Any] = connection.request(api, version, body)
        return answer
    finally:
        connection.close()


def test_describe_topic_partitions_gives_a_leaderless_partition_no_error() -> None:
    with running_broker(nodes=3, data_dir=None) as cluster:
        created = _call(cluster, ApiKey.CREATE_TOPICS, 7, {"timeout_ms": 30_000, "validate_only": False, "topics": [{
            "name": TOPIC, "num_partitions": -1, "replication_factor": -1, "configs": [],
            "assignments": [{"partition_index": 0, "broker_ids": [3]}, {"partition_index": 1, "broker_ids": [1]}]}]})
        assert created["topics"][0]["error_code"] == ErrorCode.NONE
        cluster.stop_node(3)
        metadata = _call(cluster, ApiKey.METADATA, 12, {"topics": [{"name": TOPIC, "topic_id": bytes(16)}], "allow_auto_topic_creation": False,
                                                          "include_topic_authorized_operations": False})
        described = _call(cluster, ApiKey.DESCRIBE_TOPIC_PARTITIONS, 0, {"topics": [{"name": TOPIC}], "response_partition_limit": 100, "cursor": None})
    assert [(p["partition_index"], p["error_code"], p["leader_id"]) for p in metadata["topics"][0]["partitions"]] == [
        (0, ErrorCode.LEADER_NOT_AVAILABLE, -1), (1, ErrorCode.NONE, 1)]
    assert [(p["partition_index"], p["error_code"], p["leader_id"], p["isr_nodes"], p["offline_replicas"], p["eligible_leader_replicas"])
            for p in described["topics"][0]["partitions"]] == [(0, ErrorCode.NONE, -1, [], [3], [3]), (1, ErrorCode.NONE, 1, [1], [], [])]
