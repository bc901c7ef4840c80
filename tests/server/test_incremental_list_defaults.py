"""IncrementalAlterConfigs APPEND and SUBTRACT on a LIST config the resource does not set:
Kafka 4.4 starts from the config definition's static default (the controller's
ConfigurationControlManager.getParts via KafkaConfigSchema.getDefault; the broker's
ConfigAdminManager.prepareIncrementalConfigs on the resource's own persistent props), never
from the value the broker runs with. Raw requests to a real broker whose static settings
differ from those defaults."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

TOPIC, BROKER, GROUP = 2, 4, 32
SET, APPEND, SUBTRACT = 0, 2, 3


@pytest.fixture
def connection() -> Iterator[_Connection]:
    with running_broker(log_cleanup_policy="compact", group_streams_rack_aware_assignment_tags="zone") as broker:
        broker.create_topic("appended")
        broker.create_topic("subtracted")
        yield _Connection(broker.bootstrap_servers)


def _alter(connection: _Connection, kind: int, name: str, key: str, op: int, value: str) -> None:
    answer = connection.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {"validate_only": False, "resources": [
        {"resource_type": kind, "resource_name": name, "configs": [{"name": key, "config_operation": op, "value": value}]}]})
    (result,) = answer["responses"]
    assert (result["error_code"], result["error_message"]) == (ErrorCode.NONE, None)


def _value(connection: _Connection, kind: int, name: str, key: str) -> str | None:
    answer = connection.call(ApiKey.DESCRIBE_CONFIGS, 4, {"include_synonyms": False, "include_documentation": False, "resources": [
        {"resource_type": kind, "resource_name": name, "configuration_keys": [key]}]})
    (result,) = answer["results"]
    assert result["error_code"] == ErrorCode.NONE, result["error_message"]
    (entry,) = result["configs"]
    return entry["value"]


def test_a_topic_list_starts_from_the_static_default_not_the_brokers(connection: _Connection) -> None:
    """cleanup.policy's default is delete whatever log.cleanup.policy says."""
    _alter(connection, TOPIC, "appended", "cleanup.policy", APPEND, "compact")
    assert _value(connection, TOPIC, "appended", "cleanup.policy") == "delete,compact"
    _alter(connection, TOPIC, "subtracted", "cleanup.policy", SUBTRACT, "delete")
    assert _value(connection, TOPIC, "subtracted", "cleanup.policy") == ""


def test_a_broker_list_starts_from_its_scopes_own_value_else_the_static_default(connection: _Connection) -> None:
    """The cluster default ignores the static setting; the node's scope ignores the cluster default."""
    _alter(connection, BROKER, "", "log.cleanup.policy", APPEND, "delete")
    assert _value(connection, BROKER, "", "log.cleanup.policy") == "delete"
    _alter(connection, BROKER, "", "log.cleanup.policy", SET, "compact")
    _alter(connection, BROKER, "1", "log.cleanup.policy", APPEND, "delete")
    assert _value(connection, BROKER, "1", "log.cleanup.policy") == "delete"


def test_a_group_config_takes_no_append_even_its_list(connection: _Connection) -> None:
    """A reference Kafka 4.4 refuses APPEND on streams.rack.aware.assignment.tags, though
    DescribeConfigs shows it as a LIST: its controller does not know group configs as lists."""
    answer = connection.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {"validate_only": False, "resources": [
        {"resource_type": GROUP, "resource_name": "g", "configs": [
            {"name": "streams.rack.aware.assignment.tags", "config_operation": APPEND, "value": "rack"}]}]})
    (result,) = answer["responses"]
    assert (result["error_code"], result["error_message"]) == (
        ErrorCode.INVALID_CONFIG, "Can't APPEND to key streams.rack.aware.assignment.tags because its type is not LIST.")


def test_a_node_may_cordon_only_its_own_log_dirs(tmp_path) -> None:
    """KafkaConfig.validateCordonedLogDirs, as a reference Kafka 4.4 answers a node's
    cordoned.log.dirs naming a directory it does not have: INVALID_REQUEST."""
    with running_broker(data_dir=tmp_path / "a") as broker:
        connection = _Connection(broker.bootstrap_servers)
        try:
            def cordon(value: str) -> tuple[int, str | None]:
                answer = connection.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {"validate_only": True, "resources": [
                    {"resource_type": BROKER, "resource_name": "1", "configs": [
                        {"name": "cordoned.log.dirs", "config_operation": SET, "value": value}]}]})
                (result,) = answer["responses"]
                return result["error_code"], result["error_message"]

            assert cordon(str(tmp_path / "a")) == (ErrorCode.NONE, None)
            assert cordon("*") == (ErrorCode.NONE, None)
            assert cordon("/x,/y") == (ErrorCode.INVALID_REQUEST, "requirement failed: All entries in cordoned.log.dirs must be present "
                                                                  "in log.dirs or log.dir. Missing entries : /x,/y")
            assert cordon(f"*,{tmp_path / 'a'}") == (ErrorCode.INVALID_REQUEST,
                                                     "requirement failed: When cordoned.log.dirs is set to *, it must not contain other values")
        finally:
            connection.close()
