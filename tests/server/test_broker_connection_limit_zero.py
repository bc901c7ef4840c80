"""A broker-wide max.connections or max.connection.creation.rate changed to 0 is refused with
Kafka 4.4's INVALID_REQUEST and message (ConnectionQuotas.ListenerConnectionQuota
.validateReconfiguration, wrapped by ConfigAdminManager.validateBrokerConfigChange), by
IncrementalAlterConfigs and AlterConfigs alike, per broker and at the cluster default; a
listener's prefixed max.connections of 0 is taken, as Kafka 4.4 takes it (asked of the real broker)."""

from __future__ import annotations

import pytest

from ottla.server.admin.client import KafkaClient
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode


def _refusal(name: str, value: str) -> tuple[int, str]:
    return ErrorCode.INVALID_REQUEST, f"Invalid value org.apache.kafka.common.config.ConfigException: Invalid {name} {value} for configuration Invalid dynamic configuration"


@pytest.mark.parametrize("resource", ["1", ""])
def test_zero_limits(resource: str) -> None:
    with running_broker(node_id=1) as handle, KafkaClient(handle.bootstrap_servers) as admin:
        def incremental(*configs: tuple[str, str]) -> tuple[int, str | None]:
            body = {"resources": [{"resource_type": 4, "resource_name": resource, "configs": [
                {"name": name, "config_operation": 0, "value": value} for name, value in configs]}], "validate_only": False}
            answer = admin.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, body)[1]["responses"][0]
            return answer["error_code"], answer["error_message"]

        def legacy(*configs: tuple[str, str]) -> tuple[int, str | None]:
            body = {"resources": [{"resource_type": 4, "resource_name": resource, "configs": [
                {"name": name, "value": value} for name, value in configs]}], "validate_only": True}
            answer = admin.call(ApiKey.ALTER_CONFIGS, body)[1]["responses"][0]
            return answer["error_code"], answer["error_message"]

        for alter in (incremental, legacy):
            assert alter(("max.connections", "0")) == _refusal("max.connections", "0")
            assert alter(("max.connection.creation.rate", "0")) == _refusal("max.connection.creation.rate", "0")
            assert alter(("max.connection.creation.rate", "0"), ("max.connections", "0")) == _refusal("max.connections", "0")
        assert incremental(("listener.name.PLAINTEXT.max.connections", "0")) == (ErrorCode.NONE, None)
        assert incremental(("max.connections", "100")) == (ErrorCode.NONE, None)
