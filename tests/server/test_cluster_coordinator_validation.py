"""Cluster mode over real sockets: the checks Kafka 4.4's coordinator services make before they
route a key to its coordinator answer on every node, as they do on the coordinator's.
GroupCoordinatorService answers an empty group id INVALID_GROUP_ID (JoinGroup, SyncGroup,
Heartbeat, LeaveGroup, OffsetDelete, TxnOffsetCommit) and a JoinGroup session timeout out of
range INVALID_SESSION_TIMEOUT; TransactionCoordinator.handleInitProducerId answers an empty
transactional id INVALID_REQUEST and a timeout out of (0, transaction.max.timeout.ms]
INVALID_TRANSACTION_TIMEOUT. Every request goes to all three nodes, two of which do not
coordinate its key; a valid one still answers NOT_COORDINATOR on those two."""

from __future__ import annotations

from typing import Any

from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from tests.server.test_cluster_coordinator_checks import NODES, _each, _errors, _look_up

TOPIC = "validated"


def _join(group_id: str, session_timeout_ms: int) -> dict[str, Any]:
    return {"group_id": group_id, "session_timeout_ms": session_timeout_ms, "rebalance_timeout_ms": 10_000, "member_id": "",
            "group_instance_id": None, "protocol_type": "consumer", "protocols": [{"name": "range", "metadata": b""}], "reason": None}


def _init(transactional_id: str, timeout_ms: int) -> dict[str, Any]:
    return {"transactional_id": transactional_id, "transaction_timeout_ms": timeout_ms, "producer_id": -1, "producer_epoch": -1}


def test_every_node_answers_the_group_checks_made_before_routing() -> None:
    sync = {"group_id": "", "generation_id": 1, "member_id": "m", "group_instance_id": None, "protocol_type": "consumer",
            "protocol_name": "range", "assignments": []}
    heartbeat = {"group_id": "", "generation_id": 1, "member_id": "m", "group_instance_id": None}
    leave = {"group_id": "", "members": [{"member_id": "m", "group_instance_id": None, "reason": None}]}
    delete = {"group_id": "", "topics": [{"name": TOPIC, "partitions": [{"partition_index": 0}]}]}
    commit = {"transactional_id": "validated-txn", "group_id": "", "producer_id": 7, "producer_epoch": 0, "generation_id": -1,
              "member_id": "", "group_instance_id": None,
              "topics": [{"name": TOPIC, "partitions": [{"partition_index": 0, "committed_offset": 1, "committed_leader_epoch": -1,
                                                          "committed_metadata": ""}]}]}
    with running_broker(nodes=3, data_dir=None) as cluster:
        cluster.create_topic(TOPIC, partitions=1, replication_factor=1)
        _look_up(cluster, 0, "validated")
        answers = {
            "join": _errors(_each(cluster, ApiKey.JOIN_GROUP, 9, _join("", 10_000))),
            "join timeout": _errors(_each(cluster, ApiKey.JOIN_GROUP, 9, _join("validated", 1))),
            "sync": _errors(_each(cluster, ApiKey.SYNC_GROUP, 5, sync)),
            "heartbeat": _errors(_each(cluster, ApiKey.HEARTBEAT, 4, heartbeat)),
            "leave": _errors(_each(cluster, ApiKey.LEAVE_GROUP, 5, leave)),
            "offset delete": _errors(_each(cluster, ApiKey.OFFSET_DELETE, 0, delete)),
            "txn offset commit": {node: answer["topics"][0]["partitions"][0]["error_code"]
                                  for node, answer in _each(cluster, ApiKey.TXN_OFFSET_COMMIT, 3, commit).items()},
        }
        routed = list(_errors(_each(cluster, ApiKey.HEARTBEAT, 4, {**heartbeat, "group_id": "validated"})).values())
    invalid = dict.fromkeys(NODES, ErrorCode.INVALID_GROUP_ID)
    assert answers == {"join": invalid, "join timeout": dict.fromkeys(NODES, ErrorCode.INVALID_SESSION_TIMEOUT), "sync": invalid,
                       "heartbeat": invalid, "leave": invalid, "offset delete": invalid, "txn offset commit": invalid}
    assert routed.count(ErrorCode.NOT_COORDINATOR) == 2


def test_every_node_answers_the_transaction_checks_made_before_routing() -> None:
    with running_broker(nodes=3, data_dir=None) as cluster:
        _look_up(cluster, 1, "validated-txn")
        answers = {
            "empty id": _errors(_each(cluster, ApiKey.INIT_PRODUCER_ID, 4, _init("", 60_000))),
            "no timeout": _errors(_each(cluster, ApiKey.INIT_PRODUCER_ID, 4, _init("validated-txn", 0))),
            "timeout above the maximum": _errors(_each(cluster, ApiKey.INIT_PRODUCER_ID, 4, _init("validated-txn", 900_001))),
        }
        routed = list(_errors(_each(cluster, ApiKey.INIT_PRODUCER_ID, 4, _init("validated-txn", 60_000))).values())
    invalid_timeout = dict.fromkeys(NODES, ErrorCode.INVALID_TRANSACTION_TIMEOUT)
    assert answers == {"empty id": dict.fromkeys(NODES, ErrorCode.INVALID_REQUEST), "no timeout": invalid_timeout,
                       "timeout above the maximum": invalid_timeout}
    assert sorted(routed) == sorted([ErrorCode.NONE, ErrorCode.NOT_COORDINATOR, ErrorCode.NOT_COORDINATOR])
