"""Broker and group config checks answered as a reference Kafka 4.4 answered them: the
requirements KafkaConfig.validateValues puts on the new effective broker config (log times,
the cleaner's dedupe buffer), DynamicLogConfig's tiered retention checks, validators Kafka
applies to listener-prefixed values, GroupConfig.validate's order, and the order in which
Kafka's controller applies a resource's operations (a java.util.HashMap by name)."""

from __future__ import annotations

from typing import Any

import pytest

from compat.differential import _Connection
from raw_broker import connection  # noqa: F401  (the fixture, by name)
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

TOPIC, BROKER, GROUP = 2, 4, 32
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3
WRAPPED = "Invalid value org.apache.kafka.common.config.ConfigException: {} for configuration Invalid dynamic configuration"


def _alter(connection: _Connection, kind: int, name: str, configs: list[tuple[str, int, str | None]], validate_only: bool = True) -> tuple[int, Any]:
    answer = connection.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {"validate_only": validate_only, "resources": [
        {"resource_type": kind, "resource_name": name,
         "configs": [{"name": key, "config_operation": op, "value": value} for key, op, value in configs]}]})
    [resource] = answer["responses"]
    return resource["error_code"], resource["error_message"]


@pytest.mark.parametrize("node", ["1", ""])
@pytest.mark.parametrize("configs, message", [
    ([("log.retention.ms", "0")], "requirement failed: log.retention.ms must be unlimited (-1) or, greater than or equal to 1"),
    ([("log.roll.ms", "0")], "requirement failed: log.roll.ms must be greater than or equal to 1"),
    ([("log.roll.ms", "-1")], "requirement failed: log.roll.ms must be greater than or equal to 1"),
    ([("log.roll.jitter.ms", "-1")], "requirement failed: log.roll.jitter.ms must be greater than or equal to 0"),
    ([("log.cleaner.dedupe.buffer.size", "1048576")], "requirement failed: log.cleaner.dedupe.buffer.size must be at least 1MB per cleaner thread."),
    ([("log.cleaner.threads", "2"), ("log.cleaner.dedupe.buffer.size", "2097153")],
     "requirement failed: log.cleaner.dedupe.buffer.size must be at least 1MB per cleaner thread."),
    # validateValues' order, whatever the request's.
    ([("log.roll.jitter.ms", "-1"), ("log.roll.ms", "0")], "requirement failed: log.roll.ms must be greater than or equal to 1"),
    ([("log.cleaner.dedupe.buffer.size", "1000"), ("log.roll.ms", "0"), ("log.retention.ms", "0")],
     "requirement failed: log.roll.ms must be greater than or equal to 1"),
    ([("max.connections.per.ip", "0"), ("log.cleaner.dedupe.buffer.size", "1000"), ("log.retention.ms", "0")],
     "requirement failed: log.retention.ms must be unlimited (-1) or, greater than or equal to 1"),
    # A ConfigDef validator answers before any requirement.
    ([("log.retention.ms", "0"), ("max.connection.creation.rate", "-1")],
     "Invalid value -1 for configuration max.connection.creation.rate: Value must be at least 0"),
    ([("log.local.retention.ms", "-1")],
     WRAPPED.format("Invalid value -1 for configuration log.local.retention.ms: Value must not be -1 as log.retention.ms value is set as 604800000.")),
    ([("log.retention.ms", "1000"), ("log.local.retention.ms", "2000")],
     WRAPPED.format("Invalid value 2000 for configuration log.local.retention.ms: Value must not be more than log.retention.ms property value: 1000")),
    ([("log.retention.bytes", "1000"), ("log.local.retention.bytes", "-1")],
     WRAPPED.format("Invalid value -1 for configuration log.local.retention.bytes: Value must not be -1 as log.retention.bytes value is set as 1000.")),
    ([("log.retention.bytes", "1000"), ("log.local.retention.bytes", "2000")],
     WRAPPED.format("Invalid value 2000 for configuration log.local.retention.bytes: Value must not be more than log.retention.bytes property value: 1000")),
    ([("log.remote.copy.lag.ms", "1000"), ("log.retention.ms", "500")],
     WRAPPED.format("Invalid value 1000 for configuration log.remote.copy.lag.ms: Value must not exceed log.local.retention.ms (effective value: 500)")),
    ([("log.remote.copy.lag.bytes", "1000"), ("log.local.retention.bytes", "500")],
     WRAPPED.format("Invalid value 1000 for configuration log.remote.copy.lag.bytes: Value must not exceed log.local.retention.bytes (effective value: 500)")),
    # The thread pools and connection quotas are judged before the log's reconfiguration.
    ([("log.local.retention.ms", "-1"), ("num.io.threads", "100")], WRAPPED.format(
        "Dynamic thread count update validation failed for num.io.threads=100, value should not be greater than double the current value 8")),
    ([("max.connection.creation.rate", "-1")], "Invalid value -1 for configuration max.connection.creation.rate: Value must be at least 0"),
    ([("ssl.client.auth", "bogus")], "Invalid value bogus for configuration ssl.client.auth: String must be one of: required, requested, none"),
    ([("ssl.client.auth", "REQUIRED")], "Invalid value REQUIRED for configuration ssl.client.auth: String must be one of: required, requested, none"),
    ([("listener.name.plaintext.ssl.client.auth", "bogus")],
     "Invalid value bogus for configuration ssl.client.auth: String must be one of: required, requested, none"),
    ([("listener.name.plaintext.num.io.threads", "0")], "Invalid value 0 for configuration num.io.threads: Value must be at least 1"),
    ([("listener.name.plaintext.max.connection.creation.rate", "-1")],
     "Invalid value -1 for configuration max.connection.creation.rate: Value must be at least 0"),
])
def test_broker_configs_kafka_refuses(connection: _Connection, node: str, configs: list[tuple[str, str]], message: str) -> None:
    assert _alter(connection, BROKER, node, [(name, SET, value) for name, value in configs]) == (ErrorCode.INVALID_REQUEST, message)


@pytest.mark.parametrize("node", ["1", ""])
@pytest.mark.parametrize("configs", [
    [("log.cleaner.dedupe.buffer.size", "1048577")],
    [("log.retention.ms", "-1"), ("log.local.retention.ms", "-1")],
    [("log.retention.ms", "-1"), ("log.local.retention.ms", "5")],
    [("log.remote.copy.lag.ms", "1000")],
    [("log.local.retention.bytes", "-1")],
    [("log.cleaner.threads", "2"), ("log.cleaner.dedupe.buffer.size", "2097154")],
])
def test_broker_configs_kafka_takes(connection: _Connection, node: str, configs: list[tuple[str, str]]) -> None:
    assert _alter(connection, BROKER, node, [(name, SET, value) for name, value in configs]) == (ErrorCode.NONE, None)


def test_listener_overrides_without_a_validator_are_taken(connection: _Connection) -> None:
    """Kafka's ConfigDef has no validator on log.retention.ms or ssl.protocol: any value of
    theirs under a listener prefix is stored."""
    for name, value in (("listener.name.plaintext.log.retention.ms", "0"), ("listener.name.plaintext.ssl.client.auth", "requested"),
                        ("listener.name.plaintext.ssl.protocol", "bogus")):
        assert _alter(connection, BROKER, "1", [(name, SET, value)]) == (ErrorCode.NONE, None)


@pytest.mark.parametrize("configs, message", [
    ([("share.delivery.count.limit", "1")], "Invalid value 1 for configuration share.delivery.count.limit: Value must be at least 2"),
    ([("share.record.lock.duration.ms", "1000")], "share.record.lock.duration.ms must be in the range 15000 to 60000 inclusive."),
    # Names first, then every value parsed, then the broker's bounds, each in GroupConfig's order.
    ([("share.auto.offset.reset", "bogus"), ("no.such", "1")], "Unknown group config name: no.such"),
    ([("share.record.lock.duration.ms", "1000"), ("share.auto.offset.reset", "bogus")],
     "Invalid value bogus for configuration share.auto.offset.reset: Invalid value `bogus` for configuration share.auto.offset.reset. "
     "The value must be either 'earliest', 'latest' or of the format 'by_duration:<PnDTnHnMn.nS>'."),
    ([("consumer.session.timeout.ms", "1"), ("consumer.heartbeat.interval.ms", "1")],
     "consumer.heartbeat.interval.ms must be in the range 5000 to 15000 inclusive."),
    ([("streams.assignor.name", "bogus"), ("streams.num.standby.replicas", "99")], "streams.num.standby.replicas must be less than or equal to 2"),
    ([("errors.deadletterqueue.topic.name", "__x"), ("streams.assignor.name", "bogus")],
     "streams.assignor.name 'bogus' is not a registered task assignor. Registered assignors are: [sticky]."),
    ([("errors.deadletterqueue.topic.name", " __dlq")], "errors.deadletterqueue.topic.name: DLQ topic name must not start with '__'"),
    ([("streams.rack.aware.assignment.tags", "a, b ,a")], "streams.rack.aware.assignment.tags must not contain duplicate tag keys."),
    ([("streams.rack.aware.assignment.tags", "a,a"), ("share.auto.offset.reset", "bogus")],
     "streams.rack.aware.assignment.tags must not contain duplicate tag keys."),
])
def test_group_configs_are_judged_in_kafkas_order(connection: _Connection, configs: list[tuple[str, str]], message: str) -> None:
    assert _alter(connection, GROUP, "g1", [(name, SET, value) for name, value in configs]) == (ErrorCode.INVALID_CONFIG, message)


@pytest.mark.parametrize("kind, name, configs, message", [
    # What the differential fuzzer's cluster run sent (seed 5, inputs 141 and 443): the
    # controller walks the operations in HashMap order by name, answering the first refusal.
    (TOPIC, "", [("retention.ms", SUBTRACT, "delete"), ("\u0000.", -67, "x"), ("no.such.config", SUBTRACT, "compact")],
     "Can't SUBTRACT to key no.such.config because its type is not LIST."),
    (TOPIC, "topic", [("no.such.config", -1, ""), ("min.insync.replicas", -1, "compact"), ("", APPEND, "-\u0000\u0000-")],
     "Can't APPEND to key  because its type is not LIST."),
    (GROUP, "g1", [("share.auto.offset.reset", APPEND, "x"), ("consumer.session.timeout.ms", SUBTRACT, "y")],
     "Can't SUBTRACT to key consumer.session.timeout.ms because its type is not LIST."),
    (GROUP, "g1", [("share.auto.offset.reset", -1, "x"), ("", APPEND, "z")], "Can't APPEND to key  because its type is not LIST."),
    # A name a group does not define is refused as a key that is not a list, before its name is judged.
    (GROUP, "g1", [("zz.unknown", SUBTRACT, "x")], "Can't SUBTRACT to key zz.unknown because its type is not LIST."),
    (GROUP, "", [("zz.unknown", APPEND, "x")], "Can't APPEND to key zz.unknown because its type is not LIST."),
])
def test_operations_run_in_the_controllers_order(connection: _Connection, kind: int, name: str, configs: list[tuple[str, int, str]], message: str) -> None:
    assert _alter(connection, kind, name, configs) == (ErrorCode.INVALID_CONFIG, message)
