"""Two `ip` quota entities naming one address (an address and a host name resolving to it):
Kafka 4.4's broker applies each recorded change to the address
(ClientQuotaMetadataManager.handleIpQuota -> ConnectionQuotas.updateIpConnectionRateQuota,
keyed by InetAddress). Removing either name's connection_creation_rate removes the address's
limit even while the other name keeps a value in the table, which DescribeClientQuotas still
shows; setting a value a name already has records no change
(ClientQuotaControlManager.alterClientQuotaEntity) and so applies nothing."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from ottla.server.admin.client import KafkaClient
from ottla.testing import running_broker
from ottla.wire.api import ApiKey

_RATE = "connection_creation_rate"


def _alter(client: KafkaClient, ip: str | None, rate: float | None) -> None:
    op: dict[str, Any] = {"key": _RATE, "value": 0.0 if rate is None else rate, "remove": rate is None}
    entry = {"entity": [{"entity_type": "ip", "entity_name": ip}], "ops": [op]}
    assert client.call(ApiKey.ALTER_CLIENT_QUOTAS, {"entries": [entry], "validate_only": False})[1]["entries"][0]["error_code"] == 0


def _described(client: KafkaClient) -> dict[str | None, float]:
    response = client.call(ApiKey.DESCRIBE_CLIENT_QUOTAS, {"components": [{"entity_type": "ip", "match_type": 2, "match": None}], "strict": False})[1]
    assert response["error_code"] == 0
    return {entry["entity"][0]["entity_name"]: value["value"] for entry in response["entries"] for value in entry["values"] if value["key"] == _RATE}


@pytest.fixture
def localhost_is_loopback() -> None:
    if socket.getaddrinfo("localhost", None, type=socket.SOCK_STREAM)[0][4][0] != "127.0.0.1":
        pytest.skip("localhost does not resolve to 127.0.0.1 first here")


@pytest.mark.usefixtures("localhost_is_loopback")
@pytest.mark.parametrize("removed, kept", [("localhost", "127.0.0.1"), ("127.0.0.1", "localhost")])
def test_removing_either_name_removes_the_address_limit(removed: str, kept: str) -> None:
    with running_broker() as handle:
        assert handle.broker is not None and handle.broker.services is not None
        quotas = handle.broker.services.quotas
        with KafkaClient(handle.bootstrap_servers) as admin:
            _alter(admin, kept, 50)
            _alter(admin, removed, 100)
            assert quotas.ip_quota("127.0.0.1") == 100
            _alter(admin, removed, None)
            assert quotas.ip_quota("127.0.0.1") is None
            assert _described(admin) == {kept: 50}
            # Once no name of it is limited, a `<default>` IP rate applies to the address.
            _alter(admin, None, 30)
            assert quotas.ip_quota("127.0.0.1") == 30


@pytest.mark.usefixtures("localhost_is_loopback")
def test_setting_the_value_a_name_has_applies_nothing() -> None:
    with running_broker() as handle:
        assert handle.broker is not None and handle.broker.services is not None
        quotas = handle.broker.services.quotas
        with KafkaClient(handle.bootstrap_servers) as admin:
            _alter(admin, "127.0.0.1", 50)
            _alter(admin, "localhost", 100)
            _alter(admin, "127.0.0.1", 50)
            assert quotas.ip_quota("127.0.0.1") == 100
            assert _described(admin) == {"127.0.0.1": 50, "localhost": 100}
