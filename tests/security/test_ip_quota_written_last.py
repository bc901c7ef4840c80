"""Two `ip` quota entities that name one address (an address and a host name resolving to it):
the connection_creation_rate written last applies, as Kafka's broker applies each quota change
to the address it resolves to (ClientQuotaMetadataManager.handleIpQuota,
ConnectionQuotas.updateIpConnectionRateQuota keyed by InetAddress)."""

from __future__ import annotations

import socket

import pytest

from ottla.server.admin.client import KafkaClient
from ottla.testing import running_broker
from ottla.wire.api import ApiKey


def _set_rate(client: KafkaClient, ip: str, rate: float) -> None:
    entry = {"entity": [{"entity_type": "ip", "entity_name": ip}], "ops": [{"key": "connection_creation_rate", "value": rate, "remove": False}]}
    assert client.call(ApiKey.ALTER_CLIENT_QUOTAS, {"entries": [entry], "validate_only": False})[1]["entries"][0]["error_code"] == 0


def test_of_two_names_of_one_address_the_one_written_last_applies() -> None:
    if socket.getaddrinfo("localhost", None, type=socket.SOCK_STREAM)[0][4][0] != "127.0.0.1":
        pytest.skip("localhost does not resolve to 127.0.0.1 first here")
    with running_broker() as handle:
        with KafkaClient(handle.bootstrap_servers) as admin:
            _set_rate(admin, "127.0.0.1", 50)
            _set_rate(admin, "localhost", 100)
            assert handle.broker is not None and handle.broker.services is not None
            quotas = handle.broker.services.quotas
            assert quotas.ip_quota("127.0.0.1") == 100
            _set_rate(admin, "127.0.0.1", 7)
            assert quotas.ip_quota("127.0.0.1") == 7
            _set_rate(admin, "localhost", 9)
            assert quotas.ip_quota("127.0.0.1") == 9
