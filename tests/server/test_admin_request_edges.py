"""Admin requests at their edges, answered as Kafka answers them, over raw requests to a real
broker: ListOffsets checks the leader epoch a client names on a single broker too."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode


@pytest.fixture
def connection() -> Iterator[_Connection]:
    with running_broker(data_dir=None) as broker:
        broker.create_topic("paged", partitions=3)
        yield _Connection(broker.bootstrap_servers)


@pytest.mark.parametrize("epoch, error", [(-1, ErrorCode.NONE), (0, ErrorCode.NONE), (5, ErrorCode.UNKNOWN_LEADER_EPOCH)])
def test_list_offsets_checks_the_leader_epoch_a_client_names(connection: _Connection, epoch: int, error: ErrorCode) -> None:
    answer = connection.call(ApiKey.LIST_OFFSETS, 9, {"replica_id": -1, "isolation_level": 0, "topics": [
        {"name": "paged", "partitions": [{"partition_index": 0, "current_leader_epoch": epoch, "timestamp": -1}]}]})
    assert answer["topics"][0]["partitions"][0]["error_code"] == error


def _create(connection: _Connection, name: str, configs: dict[str, str]) -> tuple[int, str | None]:
    answer = connection.call(ApiKey.CREATE_TOPICS, 7, {"topics": [{"name": name, "num_partitions": 1, "replication_factor": 1, "assignments": [],
                                                                 "configs": [{"name": k, "value": v} for k, v in configs.items()]}],
                                                      "timeout_ms": 5000, "validate_only": False})
    topic = answer["topics"][0]
    return topic["error_code"], topic["error_message"]


def test_compaction_lags_are_checked_against_each_other(connection: _Connection) -> None:
    """LogConfig.validateValues: min.compaction.lag.ms may not exceed max.compaction.lag.ms,
    whether both are set together or one against the other already there."""
    error, message = _create(connection, "lagged", {"min.compaction.lag.ms": "100", "max.compaction.lag.ms": "10"})
    assert (error, message) == (ErrorCode.INVALID_CONFIG, "conflict topic config setting min.compaction.lag.ms (100) > max.compaction.lag.ms (10)")
    assert _create(connection, "lagged", {"max.compaction.lag.ms": "10"})[0] == ErrorCode.NONE
    altered = connection.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {"validate_only": False, "resources": [
        {"resource_type": 2, "resource_name": "lagged", "configs": [{"name": "min.compaction.lag.ms", "config_operation": 0, "value": "100"}]}]})
    assert altered["responses"][0]["error_code"] == ErrorCode.INVALID_CONFIG


def test_config_resources_with_illegal_topic_names_are_refused_as_kafka_refuses_them(connection: _Connection) -> None:
    described = connection.call(ApiKey.DESCRIBE_CONFIGS, 4, {"resources": [
        {"resource_type": 2, "resource_name": name, "configuration_keys": None} for name in ("a b", "")],
        "include_synonyms": False, "include_documentation": False})
    assert [r["error_code"] for r in described["results"]] == [ErrorCode.INVALID_TOPIC] * 2
    altered = connection.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {"validate_only": False, "resources": [
        {"resource_type": 2, "resource_name": "", "configs": [{"name": "retention.ms", "config_operation": 0, "value": "1000"}]}]})
    assert altered["responses"][0]["error_code"] == ErrorCode.INVALID_REQUEST


def _create_with(connection: _Connection, name: str, **fields: Any) -> int:
    topic = {"name": name, "num_partitions": 1, "replication_factor": 1, "assignments": [], "configs": [], **fields}
    answer = connection.call(ApiKey.CREATE_TOPICS, 7, {"topics": [topic], "timeout_ms": 5000, "validate_only": False})
    return int(answer["topics"][0]["error_code"])


def test_create_topics_judges_name_and_existence_first_as_kafka_does(connection: _Connection) -> None:
    """ReplicationControlManager's order: an existing topic is TOPIC_ALREADY_EXISTS whatever
    else the request asks (an app that creates its topics at start and ignores that error), an
    illegal name INVALID_TOPIC, and the replication factor is judged before the partitions."""
    already = ErrorCode.TOPIC_ALREADY_EXISTS
    assert _create_with(connection, "paged", configs=[{"name": "retention.ms", "value": "-7"}]) == already
    assert _create_with(connection, "paged", num_partitions=0) == already
    assert _create_with(connection, "bad name", replication_factor=3) == ErrorCode.INVALID_TOPIC
    assert _create_with(connection, "zeros", replication_factor=0, num_partitions=0) == ErrorCode.INVALID_REPLICATION_FACTOR


def test_a_name_given_twice_is_answered_once_and_not_created(connection: _Connection) -> None:
    """ControllerApis.createTopics: one INVALID_REQUEST per duplicated name, after the others."""
    topic = {"num_partitions": 1, "replication_factor": 1, "assignments": [], "configs": []}
    answer = connection.call(ApiKey.CREATE_TOPICS, 7, {"topics": [{"name": n, **topic} for n in ("twice", "once", "twice")],
                                                      "timeout_ms": 5000, "validate_only": False})
    assert [(t["name"], t["error_code"], t["error_message"]) for t in answer["topics"]] == [
        ("once", ErrorCode.NONE, None), ("twice", ErrorCode.INVALID_REQUEST, "Duplicate topic name.")]
    assert _create_with(connection, "twice") == ErrorCode.NONE


def test_a_name_differing_from_a_topic_only_by_dot_and_underscore_collides(connection: _Connection) -> None:
    assert _create_with(connection, "a.b") == ErrorCode.NONE
    assert _create_with(connection, "a_b") == ErrorCode.INVALID_TOPIC
    assert _create_with(connection, "a_b", num_partitions=-1, replication_factor=-1) == ErrorCode.INVALID_TOPIC


@pytest.mark.parametrize("indexes", [[0, 5], [0, 0]])
def test_manual_assignments_name_partitions_from_0_each_once(connection: _Connection, indexes: list[int]) -> None:
    assignments = [{"partition_index": index, "broker_ids": [1]} for index in indexes]
    assert _create_with(connection, "assigned", num_partitions=-1, replication_factor=-1, assignments=assignments) == ErrorCode.INVALID_REPLICATION_ASSIGNMENT
