"""Dynamic broker configs over one PostgreSQL, as Kafka's metadata log keeps them for a cluster:
two `ottla serve --storage postgresql://...` brokers, confluent-kafka's AdminClient, and
IncrementalAlterConfigs by hand for the cluster default (confluent-kafka takes no empty name). A cluster
default (resource name "") set through broker 1 is applied by broker 2, which describes it as
DYNAMIC_DEFAULT_BROKER_CONFIG, and its deletion through broker 2 reaches broker 1; broker 2's own
config (name "2", which the client sends to broker 2) is in the database, so broker 2 started
afresh, with nothing on its disk, still describes it as DYNAMIC_BROKER_CONFIG, and broker 1 does
not have it. A broker refuses another broker's id as Kafka 4.4 does (asked by hand: KRaft
brokers do not forward a broker resource; the client sends it to that broker)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource, ResourceType

from compat.harness import PostgresBrokers
from ottla.server.admin.client import KafkaClient
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

pytestmark = [pytest.mark.external, pytest.mark.slow]

_DEADLINE = 60.0
_DEFAULT_KEY, _DEFAULT_VALUE = "log.retention.ms", "3600000"
_NODE_KEY, _NODE_VALUE = "message.max.bytes", "2000000"
_BROKER = 4  # ConfigResource type, on the wire

T = TypeVar("T")


def _until(check: Callable[[], T], what: str) -> T:
    """`check()` once it is truthy (an exception counts as not yet), polled until the deadline."""
    deadline = time.monotonic() + _DEADLINE
    last: object = None
    while True:
        try:
            value = check()
            if value:
                return value
            last = value
        except Exception as exc:  # noqa: BLE001 - a broker restarting: not yet
            last = exc
        assert time.monotonic() < deadline, f"never: {what} (last: {last!r})"
        time.sleep(0.2)


def _alter_default(bootstrap: str, key: str, value: str | None) -> None:
    """The cluster default of `key` set (or deleted: None) through the broker at `bootstrap`."""
    operation = 0 if value is not None else 1  # SET, DELETE
    with KafkaClient(bootstrap) as client:
        answer = client.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, {"resources": [{"resource_type": _BROKER, "resource_name": "", "configs": [
            {"name": key, "config_operation": operation, "value": value}]}], "validate_only": False})[1]["responses"][0]
    assert answer["error_code"] == ErrorCode.NONE, answer


def _alter_node(admin: AdminClient, node: str, key: str, value: str) -> None:
    resource = ConfigResource(ResourceType.BROKER, node, incremental_configs=[ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([resource])[resource].result(timeout=30)


def _described(admin: AdminClient, node: str, key: str) -> tuple[str | None, ConfigSource]:
    """Broker `node`'s value of `key` and its source, as that broker describes it."""
    resource = ConfigResource(ResourceType.BROKER, node)
    entry = admin.describe_configs([resource])[resource].result(timeout=30)[key]
    return entry.value, ConfigSource(entry.source)


def test_dynamic_broker_configs_are_the_clusters(postgres_url: str, tmp_path: Path) -> None:
    with PostgresBrokers(tmp_path, storage=postgres_url, nodes=2) as brokers:
        first, second = brokers.brokers
        admin_1 = AdminClient({"bootstrap.servers": first.bootstrap})
        admin_2 = AdminClient({"bootstrap.servers": second.bootstrap})

        _alter_default(first.bootstrap, _DEFAULT_KEY, _DEFAULT_VALUE)
        applied = (_DEFAULT_VALUE, ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG)
        _until(lambda: _described(admin_2, "2", _DEFAULT_KEY) == applied, "broker 2 runs with the default set through broker 1")

        _alter_node(admin_2, "2", _NODE_KEY, _NODE_VALUE)
        assert _described(admin_2, "2", _NODE_KEY) == (_NODE_VALUE, ConfigSource.DYNAMIC_BROKER_CONFIG)
        with KafkaClient(first.bootstrap) as client:
            refused = client.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, {"resources": [{"resource_type": _BROKER, "resource_name": "2", "configs": [
                {"name": _NODE_KEY, "config_operation": 0, "value": "3000000"}]}], "validate_only": False})[1]["responses"][0]
        assert (refused["error_code"], refused["error_message"]) == (ErrorCode.INVALID_REQUEST, "Unexpected broker id, expected 1, but received 2")

        second.stop()
        shutil.rmtree(second.data_dir)
        second.start()
        admin_2 = AdminClient({"bootstrap.servers": second.bootstrap})
        assert _until(lambda: _described(admin_2, "2", _NODE_KEY), "broker 2 answers again") == (_NODE_VALUE, ConfigSource.DYNAMIC_BROKER_CONFIG)
        assert _described(admin_2, "2", _DEFAULT_KEY) == applied
        assert _described(admin_1, "1", _NODE_KEY)[1] is not ConfigSource.DYNAMIC_BROKER_CONFIG

        _alter_default(second.bootstrap, _DEFAULT_KEY, None)
        _until(lambda: _described(admin_1, "1", _DEFAULT_KEY)[1] is ConfigSource.DEFAULT_CONFIG, "broker 1 drops the default deleted through broker 2")
