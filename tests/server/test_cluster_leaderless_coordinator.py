"""Cluster mode over real sockets: when the coordinator topics' partitions have one replica
and its node stops, a key of that partition has no coordinator. FindCoordinator says so
(COORDINATOR_NOT_AVAILABLE), while every group and transaction request for the key answers
NOT_COORDINATOR, as a three-node Kafka 4.4 answers them: no node's CoordinatorRuntime (nor
TransactionStateManager) holds the partition, the same answer as for a partition another node
leads, which sends the client back to FindCoordinator."""

from __future__ import annotations

from typing import Any

from ottla.server.admin.client import Connection
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

GROUPS = [f"group-{i}" for i in range(12)]
TRANSACTIONAL_IDS = [f"txn-{i}" for i in range(12)]
TOPIC = "leaderless-offsets"
STOPPED = 3
ONE_REPLICA = {"offsets_topic_replication_factor": 1, "offsets_topic_num_partitions": 3, "transaction_state_log_replication_factor": 1,
               "transaction_state_log_min_isr": 1, "transaction_state_log_num_partitions": 3}


def _call(cluster: ThreadedBroker, node: int, api: ApiKey, version: int, body: dict[str, Any]) -> dict[str, Any]:
    host, port = cluster.bootstrap_servers.split(",")[node - 1].rsplit(":", 1)
    connection = Connection(host, int(port), 10.0, "leaderless-coordinator")
    try:
        answer: dict[str, Any] = connection.request(api, version, body)
        return answer
    finally:
        connection.close()


def _key_on_stopped_node(cluster: ThreadedBroker, key_type: int, keys: list[str]) -> str:
    found = _call(cluster, 1, ApiKey.FIND_COORDINATOR, 4, {"key_type": key_type, "coordinator_keys": keys})["coordinators"]
    return next(entry["key"] for entry in found if entry["error_code"] == ErrorCode.NONE and entry["node_id"] == STOPPED)


def test_a_key_of_a_leaderless_partition_is_not_coordinated_by_any_node() -> None:
    with running_broker(nodes=3, data_dir=None, **ONE_REPLICA) as cluster:
        cluster.create_topic(TOPIC, partitions=1, replication_factor=1)
        group = _key_on_stopped_node(cluster, 0, GROUPS)
        transactional_id = _key_on_stopped_node(cluster, 1, TRANSACTIONAL_IDS)
        cluster.stop_node(STOPPED)
        offsets = [{"name": TOPIC, "partitions": [{"partition_index": 0, "committed_offset": 1, "committed_leader_epoch": -1, "committed_metadata": ""}]}]
        lookups = {
            "FindCoordinator group": _call(cluster, 1, ApiKey.FIND_COORDINATOR, 4, {"key_type": 0, "coordinator_keys": [group]})["coordinators"][0],
            "FindCoordinator v3 transaction": _call(cluster, 1, ApiKey.FIND_COORDINATOR, 3, {"key_type": 1, "key": transactional_id}),
        }
        errors = {
            "JoinGroup": _call(cluster, 1, ApiKey.JOIN_GROUP, 9, {
                "group_id": group, "session_timeout_ms": 10_000, "rebalance_timeout_ms": 10_000, "member_id": "", "group_instance_id": None,
                "protocol_type": "consumer", "protocols": [{"name": "range", "metadata": b""}], "reason": None})["error_code"],
            "Heartbeat": _call(cluster, 1, ApiKey.HEARTBEAT, 4, {"group_id": group, "generation_id": 1, "member_id": "m", "group_instance_id": None})["error_code"],
            "OffsetCommit": _call(cluster, 1, ApiKey.OFFSET_COMMIT, 9, {
                "group_id": group, "generation_id_or_member_epoch": -1, "member_id": "", "group_instance_id": None,
                "topics": offsets})["topics"][0]["partitions"][0]["error_code"],
            "OffsetFetch v9": _call(cluster, 1, ApiKey.OFFSET_FETCH, 9, {
                "groups": [{"group_id": group, "member_id": None, "member_epoch": -1, "topics": None}], "require_stable": False})["groups"][0]["error_code"],
            "DescribeGroups": _call(cluster, 1, ApiKey.DESCRIBE_GROUPS, 5, {"groups": [group], "include_authorized_operations": False})["groups"][0]["error_code"],
            "DeleteGroups": _call(cluster, 1, ApiKey.DELETE_GROUPS, 2, {"groups_names": [group]})["results"][0]["error_code"],
            "InitProducerId": _call(cluster, 1, ApiKey.INIT_PRODUCER_ID, 4, {
                "transactional_id": transactional_id, "transaction_timeout_ms": 60_000, "producer_id": -1, "producer_epoch": -1})["error_code"],
            "EndTxn": _call(cluster, 1, ApiKey.END_TXN, 3, {
                "transactional_id": transactional_id, "producer_id": 7, "producer_epoch": 0, "committed": True})["error_code"],
            "TxnOffsetCommit": _call(cluster, 1, ApiKey.TXN_OFFSET_COMMIT, 3, {
                "transactional_id": transactional_id, "group_id": group, "producer_id": 7, "producer_epoch": 0, "generation_id": -1, "member_id": "",
                "group_instance_id": None, "topics": offsets})["topics"][0]["partitions"][0]["error_code"],
            "DescribeTransactions": _call(cluster, 1, ApiKey.DESCRIBE_TRANSACTIONS, 0, {
                "transactional_ids": [transactional_id]})["transaction_states"][0]["error_code"],
        }
    assert {name: (found["error_code"], found["node_id"], found["error_message"]) for name, found in lookups.items()} == {
        "FindCoordinator group": (ErrorCode.COORDINATOR_NOT_AVAILABLE, -1, ""),
        "FindCoordinator v3 transaction": (ErrorCode.COORDINATOR_NOT_AVAILABLE, -1, "The coordinator is not available."),
    }
    assert errors == dict.fromkeys(errors, ErrorCode.NOT_COORDINATOR)
