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


def test_a_group_list_starts_from_the_group_config_default(connection: _Connection) -> None:
    """GroupConfig's streams.rack.aware.assignment.tags defaults to empty, whatever the broker's group.* says."""
    _alter(connection, GROUP, "g", "streams.rack.aware.assignment.tags", APPEND, "rack")
    assert _value(connection, GROUP, "g", "streams.rack.aware.assignment.tags") == "rack"
