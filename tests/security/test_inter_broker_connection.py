"""A broker's connection to another broker (server/cluster/peers.py) on a SASL_SSL inter-broker
listener, against a real broker: TLS verified with the listener's truststore and the peer's
host name, a SCRAM-SHA-512 login as the user of the listener's JAAS config, and the peer's
authorizer deciding CLUSTER_ACTION for that principal (AddPartitionsToTxn v5, a broker's
request): allowed for a super user, CLUSTER_AUTHORIZATION_FAILED for anyone else. A wrong
password fails the connection with a message that names no secret."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ottla.server.cluster.peers import PeerConnection, inter_broker_security
from ottla.server.config import BrokerConfig
from ottla.server.security.certs import DevelopmentCertificates, write
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

_SECRET = "broker-over-tls-secret"


def _settings(certs: DevelopmentCertificates, password: str = _SECRET) -> dict[str, Any]:
    return {
        "listeners": "SASL_SSL://127.0.0.1:0",
        "security.inter.broker.protocol": "SASL_SSL",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(certs.broker_keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(certs.ca),
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config":
            f'org.apache.kafka.common.security.scram.ScramLoginModule required username="broker" password="{password}";',
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:admin",
    }


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> DevelopmentCertificates:
    return write(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def broker(certs: DevelopmentCertificates) -> Iterator[ThreadedBroker]:
    """The peer; `broker` is not a super user here, and `admin` is."""
    with running_broker(data_dir=None, add_scram=[f"SCRAM-SHA-512=[name={user},password={_SECRET}]" for user in ("broker", "admin")],
                        **_settings(certs)) as handle:
        yield handle


async def _verify(broker: ThreadedBroker, settings: dict[str, Any]) -> dict[str, Any]:
    """A verify-only AddPartitionsToTxn v5 sent as a broker with `settings` sends it."""
    security = inter_broker_security(BrokerConfig.from_settings(settings))
    assert security.problem is None and security.tls is not None and security.login is not None
    host, port = broker.bootstrap_servers.split(":")
    connection = PeerConnection(host, int(port), "peer-test", security)
    try:
        return await connection.request(ApiKey.ADD_PARTITIONS_TO_TXN, 5, {"transactions": [{
            "transactional_id": "nobody", "producer_id": 7, "producer_epoch": 0, "verify_only": True,
            "topics": [{"name": "t", "partitions": [0]}]}]}, timeout=15)
    finally:
        connection.close()


async def test_the_peer_authorizes_the_broker_principal_over_sasl_ssl(broker: ThreadedBroker, certs: DevelopmentCertificates) -> None:
    refused = await _verify(broker, _settings(certs))
    assert refused["error_code"] == ErrorCode.CLUSTER_AUTHORIZATION_FAILED
    as_admin = _settings(certs)
    as_admin["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"] = as_admin["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"].replace('username="broker"', 'username="admin"')
    allowed = await _verify(broker, as_admin)
    assert allowed["error_code"] == ErrorCode.NONE and allowed["results_by_transaction"][0]["transactional_id"] == "nobody"


async def test_a_wrong_password_fails_the_connection_naming_no_secret(broker: ThreadedBroker, certs: DevelopmentCertificates) -> None:
    with pytest.raises(ConnectionError) as failed:
        await _verify(broker, _settings(certs, password="wrong-guess-secret"))
    assert "SASL_AUTHENTICATION_FAILED" in str(failed.value) and "secret" not in str(failed.value)


def test_an_untrusted_peer_certificate_fails_the_connection(broker: ThreadedBroker, certs: DevelopmentCertificates, tmp_path: Path) -> None:
    other = write(tmp_path / "other")
    settings = {**_settings(certs), "ssl.truststore.location": str(other.ca)}
    with pytest.raises(ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        asyncio.run(_verify(broker, settings))
