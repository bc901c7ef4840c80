"""SASL and delegation-token answers as the reference Kafka 4.4 gives them over a
SASL_PLAINTEXT listener with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 enabled (in that order):
SaslHandshake lists the mechanisms in the order of the HashSet SaslServerAuthenticator keeps
them in; a SaslAuthenticate that succeeds carries the message "" (the generated default), not
null; a re-authentication (KIP-368) started with a SaslHandshake v0 goes on with raw tokens,
whatever the first login used, as Kafka's new SaslServerAuthenticator for it expects them;
a v3 CreateDelegationToken naming an owner with a null type fails in KafkaPrincipal's
constructor: UNKNOWN_SERVER_ERROR, with ANONYMOUS as owner and requester, and no token."""

from __future__ import annotations

from collections.abc import Iterator

import struct

import pytest
from kafka.protocol.metadata import MetadataRequest, MetadataResponse
from kafka.protocol.sasl import SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse

from compat.sockets import read_frame
from kafka_wire import RawClient
from ottla.server.admin.client import KafkaClient
from ottla.server.admin.sasl import SaslLogin, ScramClient
from ottla.server.config import BrokerConfig
from ottla.server.security.sasl.authenticator import handshake_mechanisms
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

SCRAM_JAAS = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
PLAIN_JAAS = (
    "org.apache.kafka.common.security.plain.PlainLoginModule required "
    'username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";'
)
# What Kafka 4.4 answered for sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512.
KAFKA_ORDER = ["PLAIN", "SCRAM-SHA-512", "SCRAM-SHA-256"]


@pytest.fixture(scope="module")
def broker() -> Iterator[ThreadedBroker]:
    config = BrokerConfig.from_settings(
        {
            "listeners": "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
            "data.dir": None,
            "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": PLAIN_JAAS,
            "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config": SCRAM_JAAS,
            "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config": SCRAM_JAAS,
            "listener.name.sasl_plaintext.scram-sha-512.connections.max.reauth.ms": "600000",
            "delegation.token.secret.key": "the-secret",
        }
    )
    add_scram = [f"{m}=[name={user},password={user}-secret]" for m in ("SCRAM-SHA-256", "SCRAM-SHA-512") for user in ("admin", "alice")]
    with running_broker(config=config, add_scram=add_scram) as handle:
        yield handle


def _sasl_address(broker: ThreadedBroker) -> str:
    assert broker.broker is not None
    return f"127.0.0.1:{broker.broker.bound_ports['SASL_PLAINTEXT']}"


# `new ArrayList<>(new HashSet<>(Arrays.asList(...)))` as Java 17 printed each list.
JAVA_HASH_SET_ORDERS = [
    (("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"), ["PLAIN", "SCRAM-SHA-512", "SCRAM-SHA-256"]),
    (("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN", "OAUTHBEARER"), ["SCRAM-SHA-512", "PLAIN", "SCRAM-SHA-256", "OAUTHBEARER"]),
    (("OAUTHBEARER", "PLAIN"), ["PLAIN", "OAUTHBEARER"]),
    (("SCRAM-SHA-256", "SCRAM-SHA-512"), ["SCRAM-SHA-512", "SCRAM-SHA-256"]),
    (("GSSAPI", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"), ["PLAIN", "SCRAM-SHA-512", "GSSAPI", "SCRAM-SHA-256", "OAUTHBEARER"]),
]


@pytest.mark.parametrize(("enabled", "java"), JAVA_HASH_SET_ORDERS)
def test_mechanisms_come_in_a_java_hash_sets_order(enabled: tuple[str, ...], java: list[str]) -> None:
    assert handshake_mechanisms(enabled) == java


@pytest.mark.parametrize("mechanism", ["PLAIN", "UNKNOWN"])
def test_handshake_lists_the_mechanisms_in_kafkas_order(broker: ThreadedBroker, mechanism: str) -> None:
    with RawClient(_sasl_address(broker)) as client:
        answer = client.call(SaslHandshakeRequest(mechanism=mechanism), 1, SaslHandshakeResponse)
    assert answer.error_code == (ErrorCode.NONE if mechanism == "PLAIN" else ErrorCode.UNSUPPORTED_SASL_MECHANISM)
    assert answer.mechanisms == KAFKA_ORDER


@pytest.mark.parametrize("version", [0, 1, 2])
def test_a_plain_login_answers_an_empty_message(broker: ThreadedBroker, version: int) -> None:
    with RawClient(_sasl_address(broker)) as client:
        assert client.call(SaslHandshakeRequest(mechanism="PLAIN"), 1, SaslHandshakeResponse).error_code == 0
        answer = client.call(SaslAuthenticateRequest(auth_bytes=b"\0alice\0alice-secret"), version, SaslAuthenticateResponse)
    assert (answer.error_code, answer.error_message) == (0, "")


def test_every_scram_step_answers_an_empty_message(broker: ThreadedBroker) -> None:
    scram = ScramClient("SCRAM-SHA-512", "alice", "alice-secret")
    with RawClient(_sasl_address(broker)) as client:
        assert client.call(SaslHandshakeRequest(mechanism="SCRAM-SHA-512"), 1, SaslHandshakeResponse).error_code == 0
        first = client.call(SaslAuthenticateRequest(auth_bytes=scram.first()), 2, SaslAuthenticateResponse)
        final = client.call(SaslAuthenticateRequest(auth_bytes=scram.final(first.auth_bytes)), 2, SaslAuthenticateResponse)
    scram.verify(final.auth_bytes)
    assert [(a.error_code, a.error_message) for a in (first, final)] == [(0, ""), (0, "")]


def test_an_owner_with_a_null_type_is_an_unknown_server_error(broker: ThreadedBroker) -> None:
    body = {"owner_principal_type": None, "owner_principal_name": "bob", "renewers": [], "max_lifetime_ms": -1}
    with KafkaClient(_sasl_address(broker), timeout=10, sasl=SaslLogin("SCRAM-SHA-512", "admin", "admin-secret")) as admin:
        version, created = admin.call(ApiKey.CREATE_DELEGATION_TOKEN, body, highest=3)
        listed = admin.call(ApiKey.DESCRIBE_DELEGATION_TOKEN, {"owners": None})[1]["tokens"]
    assert (version, created["error_code"]) == (3, ErrorCode.UNKNOWN_SERVER_ERROR)
    owner = (created["principal_type"], created["principal_name"])
    requester = (created["token_requester_principal_type"], created["token_requester_principal_name"])
    assert owner == requester == ("User", "ANONYMOUS")
    assert (created["issue_timestamp_ms"], created["expiry_timestamp_ms"], created["max_timestamp_ms"]) == (-1, -1, -1)
    assert (created["token_id"], bytes(created["hmac"])) == ("", b"")
    assert listed == []


def _raw_token(client: RawClient, token: bytes) -> bytes:
    client.sock.sendall(struct.pack(">i", len(token)) + token)
    answer = read_frame(client.sock)
    assert answer is not None, "the broker closed the connection"
    return answer


def test_a_reauthentication_after_a_v0_handshake_takes_raw_tokens(broker: ThreadedBroker) -> None:
    login = ScramClient("SCRAM-SHA-512", "alice", "alice-secret")
    with RawClient(_sasl_address(broker)) as client:
        assert client.call(SaslHandshakeRequest(mechanism="SCRAM-SHA-512"), 1, SaslHandshakeResponse).error_code == 0
        first = client.call(SaslAuthenticateRequest(auth_bytes=login.first()), 2, SaslAuthenticateResponse)
        final = client.call(SaslAuthenticateRequest(auth_bytes=login.final(first.auth_bytes)), 2, SaslAuthenticateResponse)
        assert (final.error_code, final.session_lifetime_ms) == (0, 600_000)
        again = ScramClient("SCRAM-SHA-512", "alice", "alice-secret")
        assert client.call(SaslHandshakeRequest(mechanism="SCRAM-SHA-512"), 0, SaslHandshakeResponse).error_code == 0
        again.verify(_raw_token(client, again.final(_raw_token(client, again.first()))))
        assert client.call(MetadataRequest(topics=[]), 1, MetadataResponse).brokers
