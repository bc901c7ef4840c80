"""cordoned.log.dirs (KIP-1066) acted on as a reference Kafka 4.4 (metadata.version 4.4-IV2,
log.dirs of two directories) acts on it: DescribeLogDirs v5 reports `is_cordoned`, a new
topic's partitions go to the directories not cordoned, AlterReplicaLogDirs into a cordoned
directory answers INVALID_REPLICATION_ASSIGNMENT, and with every directory cordoned the node
takes no new replica (the controller's StripedReplicaPlacer and manual-assignment check).
Raw requests to a real broker, the setting changed at run time by IncrementalAlterConfigs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

BROKER, SET, DELETE = 4, 0, 1
NO_PLACE = "All brokers are currently fenced, or have all their log directories cordoned."


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[_Connection, Path, Path]]:
    a, b = tmp_path / "a", tmp_path / "b"
    with running_broker(data_dir=f"{a},{b}", node_id=1) as broker:
        connection = _Connection(broker.bootstrap_servers)
        try:
            yield connection, a, b
        finally:
            connection.close()


def _cordon(connection: _Connection, value: str | None) -> None:
    operation = {"name": "cordoned.log.dirs", "config_operation": SET if value is not None else DELETE, "value": value}
    answer = connection.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {"validate_only": False, "resources": [
        {"resource_type": BROKER, "resource_name": "1", "configs": [operation]}]})
    assert [(r["error_code"], r["error_message"]) for r in answer["responses"]] == [(ErrorCode.NONE, None)]


def _log_dirs(connection: _Connection) -> dict[str, tuple[bool, dict[str, list[int]]]]:
    """Each directory: whether cordoned, and the partitions of each user topic in it."""
    answer = connection.call(ApiKey.DESCRIBE_LOG_DIRS, 5, {"topics": None})
    return {
        result["log_dir"]: (result["is_cordoned"], {t["name"]: sorted(p["partition_index"] for p in t["partitions"]) for t in result["topics"]})
        for result in answer["results"]
    }


def _create(connection: _Connection, name: str, partitions: int = -1, assignments: list[Any] | None = None) -> tuple[int, str | None]:
    answer = connection.call(ApiKey.CREATE_TOPICS, 7, {"topics": [
        {"name": name, "num_partitions": partitions, "replication_factor": -1, "assignments": assignments or [], "configs": []}],
        "timeout_ms": 10000, "validate_only": False})
    (topic,) = answer["topics"]
    return topic["error_code"], topic["error_message"]


def _move(connection: _Connection, path: Path, topic: str, index: int) -> int:
    answer = connection.call(ApiKey.ALTER_REPLICA_LOG_DIRS, 2, {"dirs": [{"path": str(path), "topics": [{"name": topic, "partitions": [index]}]}]})
    ((code,),) = [[p["error_code"] for p in t["partitions"]] for t in answer["results"]]
    return code


def test_a_cordoned_directory_is_reported_and_takes_no_new_partition(node: tuple[_Connection, Path, Path]) -> None:
    """The reference put all 4 partitions of a topic created after cordoning a in b."""
    connection, a, b = node
    _cordon(connection, str(a))
    assert {path: cordoned for path, (cordoned, _) in _log_dirs(connection).items()} == {str(a.resolve()): True, str(b.resolve()): False}
    assert _create(connection, "t", 4) == (ErrorCode.NONE, None)
    dirs = _log_dirs(connection)
    assert "t" not in dirs[str(a.resolve())][1] and dirs[str(b.resolve())][1]["t"] == [0, 1, 2, 3]
    _cordon(connection, None)
    assert [cordoned for cordoned, _ in _log_dirs(connection).values()] == [False, False]


def test_no_partition_moves_into_a_cordoned_directory(node: tuple[_Connection, Path, Path]) -> None:
    connection, a, b = node
    assert _create(connection, "t", 2) == (ErrorCode.NONE, None)
    _cordon(connection, str(a))
    in_b = _log_dirs(connection)[str(b.resolve())][1]["t"][0]
    assert _move(connection, a, "t", in_b) == ErrorCode.INVALID_REPLICATION_ASSIGNMENT
    assert _move(connection, b, "t", in_b) == ErrorCode.NONE  # already there: nothing to do


def test_with_every_directory_cordoned_the_node_takes_no_new_replica(node: tuple[_Connection, Path, Path]) -> None:
    """The reference's answers with cordoned.log.dirs=*, word for word."""
    connection, _, b = node
    assert _create(connection, "grown", 1) == (ErrorCode.NONE, None)
    _cordon(connection, "*")
    assert [cordoned for cordoned, _ in _log_dirs(connection).values()] == [True, True]
    assert _create(connection, "t", 2) == (ErrorCode.INVALID_REPLICATION_FACTOR, f"Unable to replicate the partition 1 time(s): {NO_PLACE}")
    assert _create(connection, "manual", assignments=[{"partition_index": 0, "broker_ids": [1]}]) == (
        ErrorCode.INVALID_REPLICATION_ASSIGNMENT, "The manual partition assignment includes broker 1, but all its log directories are cordoned.")
    answer = connection.call(ApiKey.CREATE_PARTITIONS, 3, {"topics": [{"name": "grown", "count": 2, "assignments": None}], "timeout_ms": 10000, "validate_only": False})
    assert [(r["error_code"], r["error_message"]) for r in answer["results"]] == [(ErrorCode.INVALID_REPLICATION_FACTOR, NO_PLACE)]
    assert _move(connection, b, "grown", 0) == ErrorCode.INVALID_REPLICATION_ASSIGNMENT
    _cordon(connection, None)
    assert _create(connection, "t", 2) == (ErrorCode.NONE, None)


@pytest.mark.parametrize(("level", "expected"), [
    (29, (ErrorCode.INVALID_CONFIG, "The cordoned.log.dirs configuration value cannot be set because it requires metadata.version >= 4.3-IV0")),
    (30, (ErrorCode.NONE, None)),
])
def test_cordoning_needs_metadata_version_4_3(tmp_path: Path, level: int, expected: tuple[int, str | None]) -> None:
    """ConfigurationControlManager.validateAlterConfig refuses any change of the key below
    4.3-IV0, validate-only too (the reference Kafka 4.4
    formatted at 4.2-IV1 answered so, and took the change once upgraded)."""
    a = tmp_path / "a"
    a.mkdir()
    (a / "finalized-features.json").write_text(json.dumps({"epoch": 0, "levels": {"metadata.version": level}}))
    with running_broker(data_dir=str(a), node_id=1) as broker:
        connection = _Connection(broker.bootstrap_servers)
        try:
            for validate_only in (True, False):
                answer = connection.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {"validate_only": validate_only, "resources": [
                    {"resource_type": BROKER, "resource_name": "1", "configs": [{"name": "cordoned.log.dirs", "config_operation": SET, "value": "*"}]}]})
                assert [(r["error_code"], r["error_message"]) for r in answer["responses"]] == [expected]
            answer = connection.call(ApiKey.ALTER_CONFIGS, 2, {"validate_only": True, "resources": [
                {"resource_type": BROKER, "resource_name": "1", "configs": [{"name": "cordoned.log.dirs", "value": "*"}]}]})
            assert [(r["error_code"], r["error_message"]) for r in answer["responses"]] == [expected]
        finally:
            connection.close()
