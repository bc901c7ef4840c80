"""Dynamic broker configs Ottla only accepts are checked as Kafka 4.4 checks them: their
ConfigDef validators (num.io.threads at least 1, ...), and the split of SSL keys between those
taken only under a listener prefix (SslConfigs.RECONFIGURABLE_CONFIGS) and those a node may set
bare (NON_RECONFIGURABLE_CONFIGS, per broker only). Answers as the reference Kafka gave them."""

from __future__ import annotations

from typing import Any

import pytest

from compat.differential import _Connection
from kafka_wire import WireClient
from raw_broker import connection  # noqa: F401  (the fixture, by name)
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

BROKER = 4


def _validate(connection: _Connection, node: str, name: str, value: str) -> tuple[int, Any]:
    answer = connection.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {"validate_only": True, "resources": [
        {"resource_type": BROKER, "resource_name": node, "configs": [{"name": name, "config_operation": 0, "value": value}]}]})
    [resource] = answer["responses"]
    return resource["error_code"], resource["error_message"]


@pytest.mark.parametrize("node", ["1", ""])
@pytest.mark.parametrize("name, value, low, accepted", [
    ("num.io.threads", "0", "1", "4"),
    ("background.threads", "-1", "1", "5"),
    ("remote.log.reader.threads", "0", "1", "5"),
    ("log.cleaner.threads", "-1", "0", "2"),
    ("group.consumer.assignment.interval.ms", "-1", "0", "0"),
    ("share.coordinator.cached.buffer.max.bytes", "0", "524288", "524288"),
])
def test_inert_dynamic_settings_keep_kafkas_lower_bounds(connection: _Connection, node: str, name: str, value: str, low: str, accepted: str) -> None:
    assert _validate(connection, node, name, value) == (
        ErrorCode.INVALID_REQUEST, f"Invalid value {value} for configuration {name}: Value must be at least {low}")
    assert _validate(connection, node, name, accepted) == (ErrorCode.NONE, None)


@pytest.mark.parametrize("node", ["1", ""])
@pytest.mark.parametrize("name, value, problem", [
    ("num.io.threads", "3", "Dynamic thread count update validation failed for num.io.threads=3, value should be at least half the current value 8"),
    ("num.io.threads", "17", "Dynamic thread count update validation failed for num.io.threads=17, value should not be greater than double the current value 8"),
    ("num.replica.fetchers", "3", "Dynamic thread count update validation failed for num.replica.fetchers=3, value should not be greater than double the current value 1"),
    ("remote.log.manager.copier.thread.pool.size", "1",
     "Dynamic thread count update validation failed for remote.log.manager.copier.thread.pool.size=1, value should be at least half the current value 10"),
    ("num.network.threads", "7", "Dynamic thread count update validation failed for num.network.threads=7, value should not be greater than double the current value 3"),
    ("log.cleaner.threads", "5", "Log cleaner threads cannot be increased to more than double the current value 1"),
])
def test_thread_counts_change_by_at_most_a_factor_of_two(connection: _Connection, node: str, name: str, value: str, problem: str) -> None:
    assert _validate(connection, node, name, value) == (
        ErrorCode.INVALID_REQUEST, f"Invalid value org.apache.kafka.common.config.ConfigException: {problem} for configuration Invalid dynamic configuration")


def test_a_thread_count_judged_against_its_current_value(connection: _Connection) -> None:
    """Half of 3 rounds down: 1 passes; once 16 is set, 32 does."""
    assert _validate(connection, "1", "num.network.threads", "1") == (ErrorCode.NONE, None)
    answer = connection.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {"validate_only": False, "resources": [
        {"resource_type": BROKER, "resource_name": "1", "configs": [{"name": "num.io.threads", "config_operation": 0, "value": "16"}]}]})
    assert answer["responses"][0]["error_code"] == ErrorCode.NONE
    assert _validate(connection, "1", "num.io.threads", "32") == (ErrorCode.NONE, None)


def test_gzip_level_is_refused_with_kafkas_message(connection: _Connection) -> None:
    assert _validate(connection, "1", "compression.gzip.level", "0") == (
        ErrorCode.INVALID_REQUEST, "Invalid value 0 for configuration compression.gzip.level: Value must be between 1 and 9 or equal to -1")


@pytest.mark.parametrize("name", ["ssl.protocol", "ssl.cipher.suites", "ssl.enabled.protocols", "ssl.endpoint.identification.algorithm"])
def test_non_reconfigurable_ssl_keys_are_a_nodes_own_bare(connection: _Connection, name: str) -> None:
    assert _validate(connection, "1", name, "TLSv1.2") == (ErrorCode.NONE, None)
    assert _validate(connection, "", name, "TLSv1.2") == (
        ErrorCode.INVALID_REQUEST, f"Cannot update these configs at default cluster level, broker id must be specified: [{name}]")


def test_keystore_keys_still_need_a_listener_prefix(connection: _Connection) -> None:
    assert _validate(connection, "1", "ssl.keystore.location", "/x") == (
        ErrorCode.INVALID_REQUEST,
        "These security configs can be dynamically updated only per-listener using the listener prefix: [ssl.keystore.location]")


def test_the_authorizers_own_settings_are_listed_as_kafka_lists_unknown_originals() -> None:
    """super.users and allow.everyone.if.no.acl.found, given in the broker's properties, are
    described as Kafka describes names KafkaConfig does not define: no value, no type, sensitive,
    static; unset, they are not listed."""
    secured = {"authorizer_class_name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
               "super_users": "User:ANONYMOUS", "allow_everyone_if_no_acl_found": "false"}
    names = ["super.users", "allow.everyone.if.no.acl.found"]
    for settings, listed in ((secured, names), ({}, [])):
        with running_broker(data_dir=None, **settings) as broker:
            described = WireClient(broker.bootstrap_servers).call(ApiKey.DESCRIBE_CONFIGS, 4, {
                "resources": [{"resource_type": BROKER, "resource_name": "1", "configuration_keys": None}],
                "include_synonyms": True, "include_documentation": False})
        entries = {entry["name"]: entry for entry in described["results"][0]["configs"]}
        assert [name for name in names if name in entries] == listed
        for name in listed:
            assert {key: entries[name][key] for key in ("value", "read_only", "config_source", "is_sensitive", "synonyms", "config_type")} == {
                "value": None, "read_only": True, "config_source": 4, "is_sensitive": True,
                "synonyms": [{"name": name, "value": None, "source": 4}], "config_type": 0}


def test_a_listeners_override_of_a_kafka_key_is_described_with_that_keys_type(connection: _Connection) -> None:
    """listener.name.<l>.<key> of a key Kafka defines: the key's type and sensitivity, the
    key itself as a synonym, no documentation; of a name Kafka does not define: typeless and
    sensitive. As the reference Kafka 4.4 described these four."""
    changes = {"listener.name.plaintext.max.connections": "500", "listener.name.plaintext.log.retention.ms": "77",
               "listener.name.plaintext.ssl.keystore.password": "pw", "listener.name.plaintext.foo.bar": "x"}
    altered = connection.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {"validate_only": False, "resources": [
        {"resource_type": BROKER, "resource_name": "1",
         "configs": [{"name": name, "config_operation": 0, "value": value} for name, value in changes.items()]}]})
    assert altered["responses"][0]["error_code"] == ErrorCode.NONE
    described = connection.call(ApiKey.DESCRIBE_CONFIGS, 4, {
        "resources": [{"resource_type": BROKER, "resource_name": "1", "configuration_keys": sorted(changes)}],
        "include_synonyms": True, "include_documentation": True})
    entries = sorted(described["results"][0]["configs"], key=lambda entry: entry["name"])

    def entry(name: str, value: str | None, config_type: int, *default: tuple[str, str]) -> dict[str, Any]:
        synonyms = [{"name": name, "value": value, "source": 2}, *({"name": n, "value": v, "source": 5} for n, v in default)]
        return {"name": name, "value": value, "read_only": True, "config_source": 2, "is_sensitive": value is None,
                "synonyms": synonyms, "config_type": config_type, "documentation": None}

    assert entries == [
        entry("listener.name.plaintext.foo.bar", None, 0),
        entry("listener.name.plaintext.log.retention.ms", "77", 5),
        entry("listener.name.plaintext.max.connections", "500", 3, ("max.connections", "2147483647")),
        entry("listener.name.plaintext.ssl.keystore.password", None, 9),
    ]


@pytest.mark.parametrize("node", ["1", ""])
def test_max_connections_per_ip_of_zero_needs_overrides(connection: _Connection, node: str) -> None:
    """As Kafka 4.4 refuses it (KafkaConfig.validateValues); taken, it would refuse every client."""
    assert _validate(connection, node, "max.connections.per.ip", "0") == (
        ErrorCode.INVALID_REQUEST,
        "requirement failed: max.connections.per.ip can be set to zero only if max.connections.per.ip.overrides property is set.")
    answer = connection.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {"validate_only": True, "resources": [
        {"resource_type": BROKER, "resource_name": node, "configs": [
            {"name": "max.connections.per.ip", "config_operation": 0, "value": "0"},
            {"name": "max.connections.per.ip.overrides", "config_operation": 0, "value": "127.0.0.1:100"}]}]})
    assert answer["responses"][0]["error_code"] == ErrorCode.NONE
