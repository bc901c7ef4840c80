"""Controller-side admin APIs at their edges, against a running broker (three nodes where the
cluster matters): AlterReplicaLogDirs, UnregisterBroker, DescribeQuorum, UnregisterController,
ElectLeaders, DescribeProducers, UpdateFeatures, (Incremental)AlterConfigs and the feature
gate of the group heartbeats, each answered as Kafka 4 answers it."""

from __future__ import annotations

import os
import pathlib
import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ottla.server.admin.client import Connection
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode


@pytest.fixture
def cluster() -> Iterator[ThreadedBroker]:
    with running_broker(nodes=3, data_dir=None, group_initial_rebalance_delay_ms=0) as broker:
        yield broker


def _connect(broker: ThreadedBroker, node: int = 1) -> Connection:
    host, port = broker.bootstrap_servers.split(",")[node - 1].rsplit(":", 1)
    return Connection(host, int(port), 10.0, "edges-test")


def _ask(broker: ThreadedBroker, node: int, api: ApiKey, version: int, body: dict[str, Any]) -> dict[str, Any]:
    connection = _connect(broker, node)
    try:
        return connection.request(api, version, body)
    finally:
        connection.close()


# --- AlterReplicaLogDirs ---------------------------------------------------------------------


def _alter_dirs(broker: ThreadedBroker, node: int, moves: list[tuple[str, str, int]]) -> list[tuple[str, int, int]]:
    answer = _ask(broker, node, ApiKey.ALTER_REPLICA_LOG_DIRS, 2, {"dirs": [
        {"path": path, "topics": [{"name": topic, "partitions": [index]}]} for path, topic, index in moves]})
    return [(t["topic_name"], p["partition_index"], p["error_code"]) for t in answer["results"] for p in t["partitions"]]


def test_alter_replica_log_dirs_on_a_node_without_the_replica_moves_nothing(tmp_path: pathlib.Path) -> None:
    dirs = [tmp_path / "a", tmp_path / "b"]
    with running_broker(nodes=3, data_dir=",".join(map(str, dirs))) as broker:
        broker.create_topic("single", partitions=1, replication_factor=1)
        (holder,) = broker.partition_state("single", 0)["replicas"]
        other = next(node for node in (1, 2, 3) if node != holder)
        here = next(d for d in dirs if (d / "single-0").exists())
        there = next(d for d in dirs if d != here)
        assert _alter_dirs(broker, other, [(str(there.resolve()), "single", 0)]) == [("single", 0, ErrorCode.REPLICA_NOT_AVAILABLE)]
        time.sleep(0.5)
        assert (here / "single-0").exists() and not list(there.glob("single-0*"))
        assert _alter_dirs(broker, holder, [(str(there.resolve()), "single", 0)]) == [("single", 0, ErrorCode.NONE)]


def test_alter_replica_log_dirs_answers_a_partition_once_and_wants_absolute_paths(tmp_path: pathlib.Path) -> None:
    dirs = [tmp_path / "a", tmp_path / "b"]
    with running_broker(data_dir=",".join(map(str, dirs))) as broker:
        broker.create_topic("twice", partitions=1)
        here = next(d for d in dirs if (d / "twice-0").exists())
        there = next(d for d in dirs if d != here)
        # Named twice: one answer, and the last destination wins (a missing one here).
        assert _alter_dirs(broker, 1, [(str(there.resolve()), "twice", 0), (str(tmp_path / "nowhere"), "twice", 0)]) == [
            ("twice", 0, ErrorCode.LOG_DIR_NOT_FOUND)]
        assert _alter_dirs(broker, 1, [(os.path.relpath(there), "twice", 0)]) == [("twice", 0, ErrorCode.LOG_DIR_NOT_FOUND)]
        time.sleep(0.5)
        assert (here / "twice-0").exists() and not list(there.glob("twice-0*"))


def test_alter_replica_log_dirs_checks_the_destination_before_the_partition(tmp_path: pathlib.Path) -> None:
    dirs = [tmp_path / "a", tmp_path / "b"]
    with running_broker(data_dir=",".join(map(str, dirs))) as broker:
        broker.create_topic("kept", partitions=1)
        lost = str(dirs[1].resolve())
        shutil.rmtree(dirs[1])
        deadline = time.monotonic() + 10
        while True:
            described = _ask(broker, 1, ApiKey.DESCRIBE_LOG_DIRS, 4, {"topics": []})
            if {r["log_dir"]: r["error_code"] for r in described["results"]}.get(lost) == ErrorCode.KAFKA_STORAGE_ERROR:
                break
            assert time.monotonic() < deadline, described
            time.sleep(0.2)
        assert _alter_dirs(broker, 1, [(lost, "absent", 0)]) == [("absent", 0, ErrorCode.KAFKA_STORAGE_ERROR)]


# --- UnregisterBroker ------------------------------------------------------------------------


def test_unregister_broker_accepts_every_cluster_node_and_moves_its_leadership(cluster: ThreadedBroker) -> None:
    cluster.create_topic("led", partitions=1, replication_factor=3)
    before = cluster.partition_state("led", 0)
    answer = _ask(cluster, 1, ApiKey.UNREGISTER_BROKER, 0, {"broker_id": before["leader"]})
    assert (answer["error_code"], answer["error_message"]) == (ErrorCode.NONE, "")
    after = cluster.partition_state("led", 0)
    # Out of the ISR and its leadership, then registered again at once: caught up, not leading.
    assert after["leader"] != before["leader"] and after["leader_epoch"] > before["leader_epoch"]
    assert sorted(after["isr"]) == [1, 2, 3]
    cluster.stop_node(3)
    for node in (1, 2, 3):  # a fenced broker is still registered
        assert _ask(cluster, 1, ApiKey.UNREGISTER_BROKER, 0, {"broker_id": node})["error_code"] == ErrorCode.NONE
    unknown = _ask(cluster, 2, ApiKey.UNREGISTER_BROKER, 0, {"broker_id": 9})
    assert (unknown["error_code"], unknown["error_message"]) == (ErrorCode.BROKER_ID_NOT_REGISTERED, "Broker ID 9 is not currently registered")


# --- DescribeQuorum, UnregisterController ----------------------------------------------------

_METADATA_PARTITION = {"topics": [{"topic_name": "__cluster_metadata", "partitions": [{"partition_index": 0}]}]}


def test_every_node_describes_the_one_controller_quorum(cluster: ThreadedBroker) -> None:
    controller = _ask(cluster, 1, ApiKey.DESCRIBE_CLUSTER, 1, {"include_cluster_authorized_operations": False, "endpoint_type": 1})["controller_id"]
    host, port = cluster.bootstrap_servers.split(",")[controller - 1].rsplit(":", 1)
    for node in (1, 2, 3):
        answer = _ask(cluster, node, ApiKey.DESCRIBE_QUORUM, 2, _METADATA_PARTITION)
        (partition,) = answer["topics"][0]["partitions"]
        assert partition["leader_id"] == controller
        assert [voter["replica_id"] for voter in partition["current_voters"]] == [controller]
        assert sorted(observer["replica_id"] for observer in partition["observers"]) == sorted({1, 2, 3} - {controller})
        assert [(n["node_id"], n["listeners"][0]["host"], n["listeners"][0]["port"]) for n in answer["nodes"]] == [(controller, host, int(port))]
        refused = _ask(cluster, node, ApiKey.UNREGISTER_CONTROLLER, 0, {"controller_id": controller})
        assert (refused["error_code"], refused["error_message"]) == (ErrorCode.INVALID_REQUEST, "Controller cannot unregister itself while it is active.")
        for other in {1, 2, 3} - {controller}:
            assert _ask(cluster, node, ApiKey.UNREGISTER_CONTROLLER, 0, {"controller_id": other})["error_code"] == ErrorCode.CONTROLLER_ID_NOT_REGISTERED


# --- ElectLeaders ----------------------------------------------------------------------------


def _elect(broker: ThreadedBroker, election_type: int, partitions: list[dict[str, Any]] | None) -> dict[str, Any]:
    return _ask(broker, 1, ApiKey.ELECT_LEADERS, 2, {"election_type": election_type, "topic_partitions": partitions, "timeout_ms": 5000})


def test_elect_leaders_in_a_cluster_answers_as_kafkas_controller(cluster: ThreadedBroker) -> None:
    cluster.create_topic("spread", partitions=2, replication_factor=2)
    cluster.create_topic("alone", partitions=1, replication_factor=1)
    _ask(cluster, 1, ApiKey.FIND_COORDINATOR, 4, {"key_type": 0, "coordinator_keys": ["g"]})  # creates __consumer_offsets
    listed = _elect(cluster, 0, None)
    assert listed["error_code"] == ErrorCode.NONE
    every = {r["topic"]: r["partition_result"] for r in listed["replica_election_results"]}
    # Every topic, internal ones too, even when none of its partitions needed an election.
    assert {"spread", "alone", "__consumer_offsets"} <= set(every) and all(results == [] for results in every.values())
    assert _elect(cluster, 0, []) == {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "replica_election_results": []}
    assert _elect(cluster, 5, []) == {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "replica_election_results": []}
    assert _elect(cluster, 5, None) == {"throttle_time_ms": 0, "error_code": ErrorCode.INVALID_REQUEST, "replica_election_results": []}
    assert _elect(cluster, 5, [{"topic": "spread", "partitions": [0]}])["replica_election_results"] == [
        {"topic": "spread", "partition_result": [{"partition_id": 0, "error_code": ErrorCode.INVALID_REQUEST, "error_message": "Unknown election type 5"}]}]
    unknown = _elect(cluster, 0, [{"topic": "nope", "partitions": [0]}, {"topic": "spread", "partitions": [7]}])["replica_election_results"]
    assert [(r["topic"], p["error_code"], p["error_message"]) for r in unknown for p in r["partition_result"]] == [
        ("nope", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "No such topic as nope"),
        ("spread", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "No such partition as spread-7")]
    preferred, follower = cluster.partition_state("spread", 0)["replicas"]
    cluster.move_leader("spread", 0, follower)
    cluster.stop_node(preferred)
    alive = next(node for node in (1, 2, 3) if node != preferred)
    answer = _ask(cluster, alive, ApiKey.ELECT_LEADERS, 2, {"election_type": 0, "topic_partitions": [{"topic": "spread", "partitions": [0]}], "timeout_ms": 5000})
    (result,) = answer["replica_election_results"][0]["partition_result"]
    assert (result["error_code"], result["error_message"]) == (ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE, "The preferred leader was not available.")
    (holder,) = cluster.partition_state("alone", 0)["replicas"]
    if holder != preferred:
        cluster.stop_node(holder)
    alive = next(node for node in (1, 2, 3) if node not in (preferred, holder))
    answer = _ask(cluster, alive, ApiKey.ELECT_LEADERS, 2, {"election_type": 1, "topic_partitions": [{"topic": "alone", "partitions": [0]}], "timeout_ms": 5000})
    (result,) = answer["replica_election_results"][0]["partition_result"]
    assert (result["error_code"], result["error_message"]) == (ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE, "Eligible topic partition leaders are not available.")


def test_elect_leaders_on_one_node_refuses_an_unknown_election_type() -> None:
    with running_broker(data_dir=None) as broker:
        broker.create_topic("one", partitions=1)
        assert _elect(broker, 3, None) == {"throttle_time_ms": 0, "error_code": ErrorCode.INVALID_REQUEST, "replica_election_results": []}
        assert _elect(broker, 3, []) == {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "replica_election_results": []}
        listed = {r["topic"]: r["partition_result"] for r in _elect(broker, 0, None)["replica_election_results"]}
        assert listed["one"] == []


# --- DescribeProducers -----------------------------------------------------------------------


def test_describe_producers_on_a_node_without_the_replica(cluster: ThreadedBroker) -> None:
    cluster.create_topic("lone", partitions=1, replication_factor=1)
    (holder,) = cluster.partition_state("lone", 0)["replicas"]
    body = {"topics": [{"name": "lone", "partition_indexes": [0, 5]}, {"name": "absent", "partition_indexes": [0]}]}
    for node in (1, 2, 3):
        answer = _ask(cluster, node, ApiKey.DESCRIBE_PRODUCERS, 0, body)
        found = [(t["name"], p["partition_index"], p["error_code"], p["error_message"]) for t in answer["topics"] for p in t["partitions"]]
        here = ErrorCode.NONE if node == holder else ErrorCode.NOT_LEADER_FOR_PARTITION
        assert found == [("lone", 0, here, None), ("lone", 5, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, None),
                         ("absent", 0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "This server does not host this topic-partition.")], node


# --- UpdateFeatures --------------------------------------------------------------------------


def test_update_features_words_an_unknown_feature_at_level_0_as_kafka_4() -> None:
    with running_broker(data_dir=None) as broker:
        answer = _ask(broker, 1, ApiKey.UPDATE_FEATURES, 2, {"timeout_ms": 5000, "validate_only": True, "feature_updates": [
            {"feature": "no.such", "max_version_level": 0, "upgrade_type": 2}]})
        assert (answer["error_code"], answer["error_message"]) == (
            ErrorCode.INVALID_UPDATE_VERSION, "The update failed for all features since the following feature had an error: "
                                              "Invalid update version 0 for feature no.such. Feature no.such not found.")


# --- IncrementalAlterConfigs, AlterConfigs ---------------------------------------------------


def _iac(broker: ThreadedBroker, resources: list[tuple[int, str, list[tuple[str, int, str | None]]]]) -> list[tuple[int, str | None]]:
    answer = _ask(broker, 1, ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {"validate_only": True, "resources": [
        {"resource_type": kind, "resource_name": name, "configs": [{"name": k, "config_operation": op, "value": v} for k, op, v in configs]}
        for kind, name, configs in resources]})
    return [(r["error_code"], r["error_message"]) for r in answer["responses"]]


def _legacy(broker: ThreadedBroker, resources: list[tuple[int, str, list[tuple[str, str | None]]]]) -> list[tuple[int, str | None]]:
    answer = _ask(broker, 1, ApiKey.ALTER_CONFIGS, 2, {"validate_only": True, "resources": [
        {"resource_type": kind, "resource_name": name, "configs": [{"name": k, "value": v} for k, v in configs]} for kind, name, configs in resources]})
    return [(r["error_code"], r["error_message"]) for r in answer["responses"]]


def test_alter_configs_preprocess_as_kafkas_config_admin_manager() -> None:
    once = (ErrorCode.INVALID_REQUEST, "Each resource must appear at most once.")
    with running_broker(data_dir=None) as broker:
        broker.create_topic("conf", partitions=1)
        assert _iac(broker, [(4, "", [("log.cleaner.threads", 0, "2")]), (2, "conf", [("retention.ms", 0, "1000")]),
                             (4, "", [("log.cleaner.threads", 0, "3")])]) == [once, (ErrorCode.NONE, None), once]
        assert _legacy(broker, [(2, "conf", [("retention.ms", "1")]), (2, "conf", [("retention.ms", "2")])]) == [once, once]
        for kind, name in ((2, "conf"), (4, ""), (4, "1"), (8, "1"), (32, "g")):
            assert _iac(broker, [(kind, name, [("a.b", 1, None), ("retention.ms", 0, None), ("c.d", 2, None)])]) == [
                (ErrorCode.INVALID_REQUEST, "Null value not supported for : retention.ms, c.d")], kind
        assert _iac(broker, [(99, "x", [("a", 0, "b")])]) == [(ErrorCode.INVALID_REQUEST, "Unknown resource type 99")]
        assert _legacy(broker, [(8, "1", [("root", "INFO")])]) == [(ErrorCode.INVALID_REQUEST, "Unknown resource type 8")]
        assert _iac(broker, [(4, "1", [("log.cleaner.threads", 7, "2")])]) == [(ErrorCode.INVALID_REQUEST, "Unknown operations type 7")]
        assert _iac(broker, [(8, "1", [("root", 7, "INFO")])]) == [
            (ErrorCode.INVALID_REQUEST, "Unknown operation type 7 is not allowed for the BROKER_LOGGER resource")]
