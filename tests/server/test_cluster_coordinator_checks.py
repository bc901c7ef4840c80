"""Cluster mode over real sockets: a node that does not coordinate a request's group or
transactional id answers NOT_COORDINATOR only where Kafka 4.4 does, once the checks its
KafkaApis makes before handing the request to the coordinator have passed: the feature
(UNSUPPORTED_VERSION), the authorizations (GROUP_ / TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
and the topics (an OffsetCommit naming only unknown topics never reaches the coordinator),
and, for the describe APIs, the coordinator service's check of an empty id, made before it
routes each id. Every request goes to all three nodes, at least two of which do not
coordinate its key."""

from __future__ import annotations

import uuid
from typing import Any

from ottla.server.admin.client import Connection
from ottla.server.security.authorizer import STANDARD_AUTHORIZER
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

SAFE_DOWNGRADE = 2
NODES = (1, 2, 3)


def _each(cluster: ThreadedBroker, api: ApiKey, version: int, body: dict[str, Any], nodes: tuple[int, ...] = NODES) -> dict[int, dict[str, Any]]:
    """The answer of each node to the same request."""
    addresses = dict(zip(NODES, (address.rsplit(":", 1) for address in cluster.bootstrap_servers.split(","))))
    connections = {node: Connection(addresses[node][0], int(addresses[node][1]), 10.0, "coordinator-checks") for node in nodes}
    try:
        return {node: connection.request(api, version, body) for node, connection in connections.items()}
    finally:
        for connection in connections.values():
            connection.close()


def _look_up(cluster: ThreadedBroker, key_type: int, key: str) -> None:
    """FindCoordinator, as a client asks before it sends the key's requests: it creates the
    coordinator's topic, whose partition leaders then coordinate (before that, Kafka's
    coordinators own no key on any node)."""
    (found,) = _each(cluster, ApiKey.FIND_COORDINATOR, 4, {"key_type": key_type, "coordinator_keys": [key]}, nodes=(1,))[1]["coordinators"]
    assert found["error_code"] == ErrorCode.NONE, found


def _errors(answers: dict[int, dict[str, Any]]) -> dict[int, int]:
    return {node: answer["error_code"] for node, answer in answers.items()}


def _committed(answers: dict[int, dict[str, Any]]) -> dict[int, int]:
    """The error of the one partition each node's OffsetCommit answer carries."""
    return {node: answer["topics"][0]["partitions"][0]["error_code"] for node, answer in answers.items()}


def _commit(topic: str) -> dict[str, Any]:
    return {"group_id": "checked", "generation_id_or_member_epoch": -1, "member_id": "", "group_instance_id": None,
            "topics": [{"name": topic, "partitions": [{"partition_index": 0, "committed_offset": 1, "committed_leader_epoch": -1,
                                                      "committed_metadata": ""}]}]}


def _consumer_heartbeat() -> dict[str, Any]:
    return {"group_id": "checked", "member_id": str(uuid.uuid4()), "member_epoch": 0, "instance_id": None, "rack_id": None,
            "rebalance_timeout_ms": 30_000, "subscribed_topic_names": ["t"], "server_assignor": None, "topic_partitions": []}


def test_every_node_refuses_an_unauthorized_request_before_routing_it() -> None:
    """Without an ACL the anonymous principal may use no group and no transactional id: every
    node says so, the coordinator or not, as KafkaApis authorizes before routing."""
    heartbeat = {"group_id": "checked", "generation_id": 1, "member_id": "m", "group_instance_id": None}
    join = {"group_id": "checked", "session_timeout_ms": 10_000, "rebalance_timeout_ms": 10_000, "member_id": "",
            "group_instance_id": None, "protocol_type": "consumer", "protocols": [{"name": "range", "metadata": b""}], "reason": None}
    init = {"transactional_id": "checked-txn", "transaction_timeout_ms": 60_000, "producer_id": -1, "producer_epoch": -1}
    end = {"transactional_id": "checked-txn", "producer_id": 7, "producer_epoch": 0, "committed": True}
    with running_broker(nodes=3, data_dir=None, authorizer_class_name=STANDARD_AUTHORIZER) as cluster:
        answers = {
            "heartbeat": _errors(_each(cluster, ApiKey.HEARTBEAT, 4, heartbeat)),
            "join": _errors(_each(cluster, ApiKey.JOIN_GROUP, 9, join)),
            "consumer heartbeat": _errors(_each(cluster, ApiKey.CONSUMER_GROUP_HEARTBEAT, 0, _consumer_heartbeat())),
            "commit": _committed(_each(cluster, ApiKey.OFFSET_COMMIT, 8, _commit("t"))),
            "init producer id": _errors(_each(cluster, ApiKey.INIT_PRODUCER_ID, 4, init)),
            "end txn": _errors(_each(cluster, ApiKey.END_TXN, 4, end)),
        }
    group_refused = dict.fromkeys(NODES, ErrorCode.GROUP_AUTHORIZATION_FAILED)
    txn_refused = dict.fromkeys(NODES, ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    assert answers == {"heartbeat": group_refused, "join": group_refused, "consumer heartbeat": group_refused, "commit": group_refused,
                       "init producer id": txn_refused, "end txn": txn_refused}


def test_every_node_answers_the_feature_and_topic_checks_before_routing() -> None:
    """With `group.version` finalized at 0 every node refuses ConsumerGroupHeartbeat as
    unsupported; an OffsetCommit of an unknown topic only is answered without the coordinator;
    an authorized heartbeat still reaches it, NOT_COORDINATOR on the other nodes."""
    heartbeat = {"group_id": "checked", "generation_id": 1, "member_id": "m", "group_instance_id": None}
    downgrade = {"timeout_ms": 10_000, "validate_only": False,
                 "feature_updates": [{"feature": "group.version", "max_version_level": 0, "upgrade_type": SAFE_DOWNGRADE}]}
    with running_broker(nodes=3, data_dir=None) as cluster:
        _look_up(cluster, 0, "checked")
        routed = list(_errors(_each(cluster, ApiKey.HEARTBEAT, 4, heartbeat)).values()).count(ErrorCode.NOT_COORDINATOR)
        committed = _committed(_each(cluster, ApiKey.OFFSET_COMMIT, 8, _commit("never-created")))
        assert _each(cluster, ApiKey.UPDATE_FEATURES, 1, downgrade, nodes=(1,))[1]["error_code"] == ErrorCode.NONE
        unsupported = _errors(_each(cluster, ApiKey.CONSUMER_GROUP_HEARTBEAT, 0, _consumer_heartbeat()))
    assert (routed, committed, unsupported) == (2, dict.fromkeys(NODES, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION),
                                                dict.fromkeys(NODES, ErrorCode.UNSUPPORTED_VERSION))


def test_every_node_refuses_an_empty_id_to_describe_before_routing_it() -> None:
    """GroupCoordinatorService answers INVALID_GROUP_ID for an empty group id, and
    TransactionCoordinator.handleDescribeTransactions INVALID_REQUEST for an empty
    transactional id, before they look for the key's coordinator; with `share.version`
    finalized at 0 KafkaApis answers every ShareGroupDescribe group UNSUPPORTED_VERSION."""
    describe = {"group_ids": [""], "include_authorized_operations": False}
    downgrade = {"timeout_ms": 10_000, "validate_only": False,
                 "feature_updates": [{"feature": "share.version", "max_version_level": 0, "upgrade_type": SAFE_DOWNGRADE}]}
    with running_broker(nodes=3, data_dir=None) as cluster:
        answers = {
            "consumer": _described(_each(cluster, ApiKey.CONSUMER_GROUP_DESCRIBE, 1, describe), "groups"),
            "share": _described(_each(cluster, ApiKey.SHARE_GROUP_DESCRIBE, 1, describe), "groups"),
            "streams": _described(_each(cluster, ApiKey.STREAMS_GROUP_DESCRIBE, 0, describe), "groups"),
            "transaction": _described(_each(cluster, ApiKey.DESCRIBE_TRANSACTIONS, 0, {"transactional_ids": [""]}), "transaction_states"),
        }
        assert _each(cluster, ApiKey.UPDATE_FEATURES, 1, downgrade, nodes=(1,))[1]["error_code"] == ErrorCode.NONE
        answers["share off"] = _described(_each(cluster, ApiKey.SHARE_GROUP_DESCRIBE, 1, describe), "groups")
    invalid_group = dict.fromkeys(NODES, ErrorCode.INVALID_GROUP_ID)
    assert answers == {"consumer": invalid_group, "share": invalid_group, "streams": invalid_group,
                       "transaction": dict.fromkeys(NODES, ErrorCode.INVALID_REQUEST), "share off": dict.fromkeys(NODES, ErrorCode.UNSUPPORTED_VERSION)}


def _described(answers: dict[int, dict[str, Any]], entries: str) -> dict[int, int]:
    """The error of the one entry each node's describe answer carries."""
    return {node: answer[entries][0]["error_code"] for node, answer in answers.items()}
