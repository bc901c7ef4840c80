"""The legacy AlterConfigs on a group and on a client metrics subscription, as a reference Kafka
4.4 answers it: ConfigurationControlManager.legacyAlterConfigResource takes both, the given set
replacing every override the resource had."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

CLIENT_METRICS, GROUP = 16, 32


@pytest.fixture(scope="module")
def admin() -> Iterator[_Connection]:
    with running_broker() as handle:
        connection = _Connection(handle.bootstrap_servers)
        yield connection
        connection.close()


def _alter(admin: _Connection, resources: list[tuple[int, str, dict[str, str]]], validate_only: bool = False) -> list[tuple[int, str | None]]:
    answer = admin.call(ApiKey.ALTER_CONFIGS, 2, {"validate_only": validate_only, "resources": [
        {"resource_type": kind, "resource_name": name, "configs": [{"name": k, "value": v} for k, v in configs.items()]}
        for kind, name, configs in resources]})
    return [(r["error_code"], r["error_message"]) for r in answer["responses"]]


def _described(admin: _Connection) -> dict[str, dict[str, tuple[Any, int]]]:
    answer = admin.call(ApiKey.DESCRIBE_CONFIGS, 4, {"include_synonyms": False, "include_documentation": False, "resources": [
        {"resource_type": GROUP, "resource_name": "g", "configuration_keys": ["consumer.session.timeout.ms", "consumer.heartbeat.interval.ms"]},
        {"resource_type": CLIENT_METRICS, "resource_name": "m", "configuration_keys": ["interval.ms", "metrics"]}]})
    return {r["resource_name"]: {c["name"]: (c["value"], c["config_source"]) for c in r["configs"]} for r in answer["results"]}


def test_the_given_set_replaces_a_group_and_a_subscription_overrides(admin):
    ok = (ErrorCode.NONE, None)
    assert _alter(admin, [(GROUP, "g", {"consumer.session.timeout.ms": "50000"}),
                          (CLIENT_METRICS, "m", {"interval.ms": "60000", "metrics": "org.apache"})]) == [ok, ok]
    assert _described(admin) == {
        "g": {"consumer.session.timeout.ms": ("50000", 8), "consumer.heartbeat.interval.ms": ("5000", 5)},
        "m": {"interval.ms": ("60000", 7), "metrics": ("org.apache", 7)}}
    assert _alter(admin, [(GROUP, "g", {"consumer.heartbeat.interval.ms": "6000"}), (CLIENT_METRICS, "m", {"metrics": "x"})]) == [ok, ok]
    assert _described(admin) == {
        "g": {"consumer.session.timeout.ms": ("45000", 5), "consumer.heartbeat.interval.ms": ("6000", 8)},
        "m": {"interval.ms": ("300000", 5), "metrics": ("x", 7)}}


def test_refusals_are_the_incremental_forms(admin):
    assert _alter(admin, [(GROUP, "g2", {"no.such": "1"}), (CLIENT_METRICS, "m2", {"no.such": "1"}),
                          (GROUP, "", {"consumer.session.timeout.ms": "50000"}), (CLIENT_METRICS, "", {"interval.ms": "60000"})], True) == [
        (ErrorCode.INVALID_CONFIG, "Unknown group config name: no.such"),
        (ErrorCode.INVALID_REQUEST, "Unknown client metrics configuration: no.such"),
        (ErrorCode.INVALID_REQUEST, "Default group resources are not allowed."),
        (ErrorCode.INVALID_REQUEST, "Subscription name can't be empty"),
    ]
