"""A node's own broker configs (Kafka 4.4's DynamicBrokerConfig.PER_BROKER_CONFIGS) may be set
on that node's resource but not on the cluster default (resource name ""): refused by
DynamicBrokerConfig.validateConfigs with perBrokerConfig false, after the value checks, as
INVALID_REQUEST (ConfigAdminManager wraps the ConfigException). Raw requests to a real broker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

BROKER = 4
SET = 0
PER_BROKER = "Cannot update these configs at default cluster level, broker id must be specified: "


@pytest.fixture
def connection() -> Iterator[_Connection]:
    with running_broker() as broker:
        yield _Connection(broker.bootstrap_servers)


def _incremental(connection: _Connection, name: str, configs: dict[str, str]) -> tuple[int, str | None]:
    answer = connection.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {"validate_only": False, "resources": [
        {"resource_type": BROKER, "resource_name": name, "configs": [{"name": k, "config_operation": SET, "value": v} for k, v in configs.items()]}]})
    (result,) = answer["responses"]
    return result["error_code"], result["error_message"]


def _legacy(connection: _Connection, name: str, configs: dict[str, str]) -> tuple[int, str | None]:
    answer = connection.call(ApiKey.ALTER_CONFIGS, 2, {"validate_only": False, "resources": [
        {"resource_type": BROKER, "resource_name": name, "configs": [{"name": k, "value": v} for k, v in configs.items()]}]})
    (result,) = answer["responses"]
    return result["error_code"], result["error_message"]


@pytest.mark.parametrize("alter", [_incremental, _legacy])
def test_the_cluster_default_refuses_a_nodes_own_configs(connection: _Connection, alter) -> None:
    assert alter(connection, "", {"sasl.enabled.mechanisms": "PLAIN", "cordoned.log.dirs": "/x"}) == (
        ErrorCode.INVALID_REQUEST, PER_BROKER + "[cordoned.log.dirs, sasl.enabled.mechanisms]")
    assert alter(connection, "", {"listener.name.plaintext.sasl.jaas.config": "x"}) == (
        ErrorCode.INVALID_REQUEST, PER_BROKER + "[listener.name.plaintext.sasl.jaas.config]")
    # A bad value is answered first; the cluster-level listener configs pass.
    code, message = alter(connection, "", {"sasl.kerberos.ticket.renew.window.factor": "abc"})
    assert code == ErrorCode.INVALID_REQUEST and message.startswith("Invalid value abc")
    # (The legacy form replaces the whole cluster default, which keeps min.insync.replicas while ELR is on.)
    assert alter(connection, "", {"listener.name.plaintext.max.connections": "100", "min.insync.replicas": "1"}) == (ErrorCode.NONE, None)
    assert alter(connection, "1", {"sasl.enabled.mechanisms": "PLAIN"}) == (ErrorCode.NONE, None)
