"""Cluster mode over real sockets: where a group request is routed to its coordinator, as a
three-node Kafka 4.4 routes it (each answer below was asked of the reference cluster).
GroupCoordinatorService checks a KIP-848 or KIP-1071 heartbeat before it schedules the write,
so every node answers an invalid one; before the first FindCoordinator creates
`__consumer_offsets` / `__transaction_state` no node coordinates anything, so every node
answers NOT_COORDINATOR; DescribeShareGroupOffsets reads named topics on any node, and the
share-offset APIs word their NOT_COORDINATOR "This is not the correct coordinator."; a follower
answers a debugging ListOffsets."""

from __future__ import annotations

from typing import Any

from ottla.server.admin.client import Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from tests.server.test_cluster_coordinator_checks import NODES, _each, _errors, _look_up

GROUP = "routed"
TOPIC = "routed-events"
NOT_COORDINATOR_MESSAGE = "This is not the correct coordinator."


def _join(group_id: str) -> dict[str, Any]:
    return {"group_id": group_id, "session_timeout_ms": 10_000, "rebalance_timeout_ms": 10_000, "member_id": "",
            "group_instance_id": None, "protocol_type": "consumer", "protocols": [{"name": "range", "metadata": b""}], "reason": None}


def _consumer_heartbeat(**fields: Any) -> dict[str, Any]:
    return {"group_id": GROUP, "member_id": "member", "member_epoch": 0, "instance_id": None, "rack_id": None,
            "rebalance_timeout_ms": 30_000, "subscribed_topic_names": [TOPIC], "server_assignor": None, "topic_partitions": [], **fields}


def _streams_heartbeat(**fields: Any) -> dict[str, Any]:
    topology = {"epoch": 0, "subtopologies": [{"subtopology_id": "0", "source_topics": [TOPIC], "source_topic_regex": [],
                                               "state_changelog_topics": [], "repartition_sink_topics": [], "repartition_source_topics": [],
                                               "copartition_groups": []}]}
    return {"group_id": GROUP, "member_id": "member", "member_epoch": 0, "endpoint_information_epoch": 0, "instance_id": None,
            "rack_id": None, "rebalance_timeout_ms": 30_000, "topology": topology, "active_tasks": [], "standby_tasks": [],
            "warmup_tasks": [], "process_id": "process", "user_endpoint": None, "client_tags": None, "task_offsets": None,
            "task_end_offsets": None, "shutdown_application": False, **fields}


def _answered(answers: dict[int, dict[str, Any]]) -> dict[int, tuple[int, str | None]]:
    return {node: (answer["error_code"], answer["error_message"]) for node, answer in answers.items()}


def test_every_node_answers_an_invalid_heartbeat_before_routing_it() -> None:
    with running_broker(nodes=3, data_dir=None) as cluster:
        cluster.create_topic(TOPIC, partitions=1, replication_factor=1)
        _look_up(cluster, 0, GROUP)
        answers = {
            "no rebalance timeout": _answered(_each(cluster, ApiKey.CONSUMER_GROUP_HEARTBEAT, 0, _consumer_heartbeat(rebalance_timeout_ms=-1))),
            "unknown assignor": _answered(_each(cluster, ApiKey.CONSUMER_GROUP_HEARTBEAT, 1, _consumer_heartbeat(server_assignor="nope"))),
            "streams without member id": _answered(_each(cluster, ApiKey.STREAMS_GROUP_HEARTBEAT, 0, _streams_heartbeat(member_id=""))),
            "streams changelog partitions": _answered(_each(cluster, ApiKey.STREAMS_GROUP_HEARTBEAT, 0, _streams_heartbeat(topology={
                "epoch": 0, "subtopologies": [{"subtopology_id": "0", "source_topics": [TOPIC], "source_topic_regex": [],
                                               "state_changelog_topics": [{"name": "changelog", "partitions": 3, "replication_factor": 1,
                                                                           "topic_configs": []}],
                                               "repartition_sink_topics": [], "repartition_source_topics": [], "copartition_groups": []}]}))),
        }
        routed = sorted(_errors(_each(cluster, ApiKey.CONSUMER_GROUP_HEARTBEAT, 1, _consumer_heartbeat())).values())
    assert answers == {
        "no rebalance timeout": dict.fromkeys(NODES, (ErrorCode.INVALID_REQUEST, "RebalanceTimeoutMs must be provided in first request.")),
        "unknown assignor": dict.fromkeys(NODES, (ErrorCode.UNSUPPORTED_ASSIGNOR,
                                                  "ServerAssignor nope is not supported. Supported assignors: uniform, range.")),
        "streams without member id": dict.fromkeys(NODES, (ErrorCode.INVALID_REQUEST, "MemberId can't be empty.")),
        "streams changelog partitions": dict.fromkeys(NODES, (
            ErrorCode.STREAMS_INVALID_TOPOLOGY, "Changelog topic changelog must have an undefined partition count, but it is set to 3.")),
    }
    assert routed == [ErrorCode.NONE, ErrorCode.NOT_COORDINATOR, ErrorCode.NOT_COORDINATOR]


def test_no_node_coordinates_before_the_coordinator_topics_exist() -> None:
    """A client then looks the coordinator up, which creates the topic: its coordinator serves it."""
    heartbeat = {"group_id": GROUP, "generation_id": 1, "member_id": "m", "group_instance_id": None}
    init = {"transactional_id": "routed-txn", "transaction_timeout_ms": 60_000, "producer_id": -1, "producer_epoch": -1}
    with running_broker(nodes=3, data_dir=None) as cluster:
        answers = {
            "join": _errors(_each(cluster, ApiKey.JOIN_GROUP, 9, _join(GROUP))),
            "heartbeat": _errors(_each(cluster, ApiKey.HEARTBEAT, 4, heartbeat)),
            "offset fetch": _errors(_each(cluster, ApiKey.OFFSET_FETCH, 7, {"group_id": GROUP, "topics": None, "require_stable": False})),
            "describe groups": {node: answer["groups"][0]["error_code"] for node, answer in _each(
                cluster, ApiKey.DESCRIBE_GROUPS, 5, {"groups": [GROUP], "include_authorized_operations": False}).items()},
            "init producer id": _errors(_each(cluster, ApiKey.INIT_PRODUCER_ID, 4, init)),
            "listed": {node: answer["groups"] for node, answer in _each(cluster, ApiKey.LIST_GROUPS, 4, {"states_filter": []}).items()},
        }
        _look_up(cluster, 0, GROUP)
        joined = sorted(_errors(_each(cluster, ApiKey.JOIN_GROUP, 9, _join(GROUP))).values())
    refused = dict.fromkeys(NODES, ErrorCode.NOT_COORDINATOR)
    assert answers == {"join": refused, "heartbeat": refused, "offset fetch": refused, "describe groups": refused,
                       "init producer id": refused, "listed": dict.fromkeys(NODES, [])}
    assert joined == [ErrorCode.NOT_COORDINATOR, ErrorCode.NOT_COORDINATOR, ErrorCode.MEMBER_ID_REQUIRED]


def test_a_single_node_serves_groups_before_any_lookup() -> None:
    with running_broker(data_dir=None) as broker:
        host, port = broker.bootstrap_servers.rsplit(":", 1)
        connection = Connection(host, int(port), 10.0, "routing")
        try:
            assert connection.request(ApiKey.JOIN_GROUP, 9, _join(GROUP))["error_code"] == ErrorCode.MEMBER_ID_REQUIRED
        finally:
            connection.close()


def test_share_group_apis_are_routed_as_kafka_routes_them() -> None:
    def described(topics: list[dict[str, Any]] | None) -> dict[int, dict[str, Any]]:
        answers = _each(cluster, ApiKey.DESCRIBE_SHARE_GROUP_OFFSETS, 1, {"groups": [{"group_id": GROUP, "topics": topics}]})
        return {node: answer["groups"][0] for node, answer in answers.items()}

    alter = {"group_id": GROUP, "topics": [{"topic_name": TOPIC, "partitions": [{"partition_index": 0, "start_offset": 0}]}]}
    delete = {"group_id": GROUP, "topics": [{"topic_name": TOPIC}]}
    with running_broker(nodes=3, data_dir=None) as cluster:
        cluster.create_topic(TOPIC, partitions=1, replication_factor=3)
        _look_up(cluster, 0, GROUP)
        _each(cluster, ApiKey.JOIN_GROUP, 9, _join(GROUP))  # a classic group takes the id
        named = described([{"topic_name": TOPIC, "partitions": [0]}, {"topic_name": "routed-missing", "partitions": [0]}])
        every = described(None)
        altered = _answered(_each(cluster, ApiKey.ALTER_SHARE_GROUP_OFFSETS, 0, alter))
        deleted = _answered(_each(cluster, ApiKey.DELETE_SHARE_GROUP_OFFSETS, 0, delete))
        share_described = {node: (answer["groups"][0]["error_code"], answer["groups"][0]["error_message"]) for node, answer in _each(
            cluster, ApiKey.SHARE_GROUP_DESCRIBE, 1, {"group_ids": [GROUP], "include_authorized_operations": False}).items()}
    assert {node: (group["error_code"], [(t["topic_name"], [p["start_offset"] for p in t["partitions"]]) for t in group["topics"]])
            for node, group in named.items()} == dict.fromkeys(NODES, (ErrorCode.NONE, [(TOPIC, [-1]), ("routed-missing", [-1])]))
    coordinator = next(node for node, group in every.items() if group["error_code"] == ErrorCode.NONE)
    others = [node for node in NODES if node != coordinator]
    assert {node: (group["error_code"], group["error_message"]) for node, group in every.items() if node != coordinator} == dict.fromkeys(
        others, (ErrorCode.NOT_COORDINATOR, NOT_COORDINATOR_MESSAGE))
    routed = {**dict.fromkeys(others, (ErrorCode.NOT_COORDINATOR, NOT_COORDINATOR_MESSAGE)),
              coordinator: (ErrorCode.GROUP_ID_NOT_FOUND, f"Group {GROUP} is not a share group.")}
    assert (altered, deleted) == (routed, routed)
    assert {node: answer for node, answer in share_described.items() if node != coordinator} == dict.fromkeys(
        others, (ErrorCode.NOT_COORDINATOR, NOT_COORDINATOR_MESSAGE))


def test_a_follower_answers_a_debugging_list_offsets() -> None:
    """ReplicaManager.fetchOffset asks for the leader unless the replica id is -2 (a debugging
    read): then the follower answers too; a node holding no replica refuses either."""
    created = {"timeout_ms": 10_000, "validate_only": False, "topics": [
        {"name": TOPIC, "num_partitions": -1, "replication_factor": -1, "assignments": [{"partition_index": 0, "broker_ids": [1, 2]}],
         "configs": []}]}

    def listed(replica_id: int) -> dict[int, tuple[int, int]]:
        answers = _each(cluster, ApiKey.LIST_OFFSETS, 7, {"replica_id": replica_id, "isolation_level": 0, "topics": [
            {"name": TOPIC, "partitions": [{"partition_index": 0, "current_leader_epoch": -1, "timestamp": -1}]}]})
        return {node: (answer["topics"][0]["partitions"][0]["error_code"], answer["topics"][0]["partitions"][0]["offset"])
                for node, answer in answers.items()}

    with running_broker(nodes=3, data_dir=None) as cluster:
        assert _each(cluster, ApiKey.CREATE_TOPICS, 5, created, nodes=(1,))[1]["topics"][0]["error_code"] == ErrorCode.NONE
        answers = {"client": listed(-1), "debugging": listed(-2)}
    refused = (ErrorCode.NOT_LEADER_FOR_PARTITION, -1)
    assert answers == {"client": {1: (ErrorCode.NONE, 0), 2: refused, 3: refused},
                       "debugging": {1: (ErrorCode.NONE, 0), 2: (ErrorCode.NONE, 0), 3: refused}}
