"""Admin requests at their edges, answered as Kafka answers them, over raw requests to a real
broker: ListOffsets checks the leader epoch a client names on a single broker too."""

from __future__ import annotations

from collections.abc import Iterator

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
