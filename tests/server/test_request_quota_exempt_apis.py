"""Which requests count against request_percentage, as in Kafka 4.4's KafkaApis: WriteTxnMarkers
is answered with sendResponseExemptThrottle (handleWriteTxnMarkersRequest) and counts nothing
unless refused CLUSTER_AUTHORIZATION_FAILED; ApiVersions answered by KafkaApis (without SASL, or
after the login) is answered with sendResponseMaybeThrottle and counts.

Deterministic: the quota is tiny, so any handler time counted makes the client's measured usage
exceed it, and `ClientQuotas.record` of nothing more then answers a throttle time above 0; with
nothing counted it answers 0. The quota window is an hour, so nothing counted expires meanwhile."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from ottla.server.admin.client import KafkaClient
from ottla.server.admin.sasl import SaslLogin
from ottla.server.config import BrokerConfig
from ottla.server.security.authorizer import STANDARD_AUTHORIZER
from ottla.server.security.quotas import ClientQuotas, QuotaKind, make_entity
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.protocol import decode_response, encode_request

_CLIENT = "quota-exempt-probe"
_MARKER = {"producer_id": 1, "producer_epoch": 0, "transaction_result": True, "coordinator_epoch": 0,
           "topics": [{"name": "no-such-topic", "partition_indexes": [0]}]}


@pytest.fixture
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None, quota_window_size_seconds=3600) as handle:
        yield handle


def _quotas(broker: ThreadedBroker) -> ClientQuotas:
    assert broker.broker is not None and broker.broker.services is not None
    return broker.broker.services.quotas


def _counted(quotas: ClientQuotas) -> bool:
    """Whether any handler time of `_CLIENT` was counted (its usage now exceeds the tiny quota)."""
    return quotas.record(QuotaKind.REQUEST_PERCENTAGE, "User:ANONYMOUS", _CLIENT, 0) > 0


def _limit(admin: KafkaClient) -> None:
    entry = {"entity": [{"entity_type": "client-id", "entity_name": _CLIENT}], "ops": [{"key": "request_percentage", "value": 1e-9, "remove": False}]}
    assert admin.call(ApiKey.ALTER_CLIENT_QUOTAS, {"entries": [entry], "validate_only": False})[1]["entries"][0]["error_code"] == 0


def test_write_txn_markers_counts_nothing(broker: ThreadedBroker) -> None:
    with KafkaClient(broker.bootstrap_servers) as admin, KafkaClient(broker.bootstrap_servers, client_id=_CLIENT) as probe:
        probe.call(ApiKey.METADATA, {"topics": [], "allow_auto_topic_creation": False})  # connected before the quota
        _limit(admin)
        # Once: counted, it would mute the connection for the quota window (an hour).
        answer = probe.call(ApiKey.WRITE_TXN_MARKERS, {"markers": [_MARKER]})[1]
        assert answer["markers"][0]["topics"][0]["partitions"][0]["error_code"] == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        assert not _counted(_quotas(broker))


def test_api_versions_counts(broker: ThreadedBroker) -> None:
    with KafkaClient(broker.bootstrap_servers) as admin, KafkaClient(broker.bootstrap_servers, client_id=_CLIENT) as probe:
        probe.call(ApiKey.METADATA, {"topics": [], "allow_auto_topic_creation": False})
        _limit(admin)
        assert not _counted(_quotas(broker))
        probe.call(ApiKey.API_VERSIONS, {"client_software_name": "probe", "client_software_version": "1"})
        assert _counted(_quotas(broker))


def test_a_sasl_login_counts_nothing_and_what_follows_counts() -> None:
    """Kafka's SaslServerAuthenticator answers ApiVersions, SaslHandshake and SaslAuthenticate
    before KafkaApis sees the connection: none counts; once logged in, ApiVersions does."""
    config = BrokerConfig.from_settings({
        "listeners": "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0", "data.dir": None, "sasl.enabled.mechanisms": "PLAIN",
        "quota.window.size.seconds": "3600",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": 'org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="alice-secret";',
    })
    with running_broker(config=config) as handle, KafkaClient(handle.bootstrap_servers) as admin:
        assert handle.broker is not None
        _limit(admin)
        quotas = _quotas(handle)
        login = SaslLogin("PLAIN", "alice", "alice-secret")
        with KafkaClient(f"127.0.0.1:{handle.broker.bound_ports['SASL_PLAINTEXT']}", client_id=_CLIENT, sasl=login) as probe:
            assert not _counted(quotas)  # logged in as it connected: ApiVersions, SaslHandshake, SaslAuthenticate
            probe.call(ApiKey.API_VERSIONS, {"client_software_name": "probe", "client_software_version": "1"})
            assert _counted(quotas)


@pytest.mark.parametrize("topics", [_MARKER["topics"], []], ids=["a partition", "no partition"])
def test_write_txn_markers_refused_cluster_action_counts(tmp_path: Path, topics: list[object]) -> None:
    """Refused for want of CLUSTER_ACTION, KafkaApis throws and handleError answers with
    sendErrorResponseMaybeThrottle: counted, whether or not the request names a partition to
    carry the error. The quota is set before the start (no principal here may alter quotas) and
    the request is the connection's first, with no ApiVersions."""
    table = ClientQuotas.open(tmp_path)
    table.alter([(make_entity([("client-id", _CLIENT)]), {"request_percentage": 1e-9})])
    with running_broker(data_dir=tmp_path, authorizer_class_name=STANDARD_AUTHORIZER, quota_window_size_seconds=3600) as handle:
        host, port = handle.bootstrap_servers.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.sendall(encode_request(ApiKey.WRITE_TXN_MARKERS, 1, 7, {"markers": [{**_MARKER, "topics": topics}]}, client_id=_CLIENT))
            size = int.from_bytes(_read(sock, 4), "big")
            answer = decode_response(ApiKey.WRITE_TXN_MARKERS, 1, _read(sock, size))[1]
        errors = [p["error_code"] for topic in answer["markers"][0]["topics"] for p in topic["partitions"]]
        assert errors == [ErrorCode.CLUSTER_AUTHORIZATION_FAILED] * len(topics)
        assert _counted(_quotas(handle))


def _read(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        assert chunk, "the broker closed the connection"
        data += chunk
    return data
