"""SASL over a real SASL_PLAINTEXT listener: stock Python clients (kafka-python, aiokafka,
confluent-kafka) with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512; and raw frames for what a
client would not do: requests before authentication, a wrong password, v0 raw tokens, an
exchange that stops half way."""

from __future__ import annotations

import asyncio
import base64
import socket
import struct
import time
from collections.abc import Iterator

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.protocol.metadata import FindCoordinatorRequest, FindCoordinatorResponse, MetadataRequest, MetadataResponse
from kafka.protocol.metadata.api_versions import ApiVersionsRequest, ApiVersionsResponse
from kafka.protocol.sasl import SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse

from compat.sockets import read_frame
from kafka_wire import RawClient
from ottla.server.config import BrokerConfig
from ottla.server.security.sasl import ScramMechanism
from ottla.testing import ThreadedBroker, running_broker

JAAS = (
    "org.apache.kafka.common.security.plain.PlainLoginModule required "
    'username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";'
)
USERS = {"PLAIN": ("alice", "alice-secret"), "SCRAM-SHA-256": ("carol", "carol-secret"), "SCRAM-SHA-512": ("dave", "dave-secret")}
ADD_SCRAM = ["SCRAM-SHA-256=[name=carol,password=carol-secret]", "SCRAM-SHA-512=[name=dave,password=dave-secret,iterations=8192]"]


def sasl_config(**extra: str | None) -> BrokerConfig:
    settings: dict[str, str | None] = {
        "listeners": "SASL_PLAINTEXT://127.0.0.1:0,PLAINTEXT://127.0.0.1:0",
        "data.dir": None,
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
        **extra,
    }
    return BrokerConfig.from_settings(settings)


@pytest.fixture(scope="module")
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(config=sasl_config(), add_scram=ADD_SCRAM) as handle:
        yield handle


@pytest.mark.parametrize("mechanism", list(USERS))
def test_kafka_python(broker: ThreadedBroker, mechanism: str) -> None:
    user, password = USERS[mechanism]
    producer = KafkaProducer(
        bootstrap_servers=broker.bootstrap_servers,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism=mechanism,
        sasl_plain_username=user,
        sasl_plain_password=password,
    )
    try:
        assert producer.send("sasl-kafka-python", b"hello").get(timeout=10).offset >= 0
    finally:
        producer.close()


@pytest.mark.parametrize("mechanism", list(USERS))
def test_confluent_kafka(broker: ThreadedBroker, mechanism: str) -> None:
    from confluent_kafka import Producer

    user, password = USERS[mechanism]
    producer = Producer(
        {
            "bootstrap.servers": broker.bootstrap_servers,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": mechanism,
            "sasl.username": user,
            "sasl.password": password,
        }
    )
    delivered = []
    producer.produce("sasl-confluent", b"hello", on_delivery=lambda err, msg: delivered.append(err))
    assert producer.flush(15) == 0
    assert delivered == [None]


def test_confluent_kafka_wrong_password_is_an_authentication_error(broker: ThreadedBroker) -> None:
    from confluent_kafka import KafkaError, Producer

    errors = []
    producer = Producer(
        {
            "bootstrap.servers": broker.bootstrap_servers,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-256",
            "sasl.username": "carol",
            "sasl.password": "wrong",
            "error_cb": errors.append,
        }
    )
    deadline = time.monotonic() + 15
    while not errors and time.monotonic() < deadline:
        producer.poll(0.2)
    assert errors and errors[0].code() == KafkaError._AUTHENTICATION
    assert "wrong" not in errors[0].str()


@pytest.mark.parametrize("mechanism", list(USERS))
def test_aiokafka(broker: ThreadedBroker, mechanism: str) -> None:
    from aiokafka import AIOKafkaProducer

    user, password = USERS[mechanism]

    async def produce() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=broker.bootstrap_servers,
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism=mechanism,
            sasl_plain_username=user,
            sasl_plain_password=password,
        )
        await producer.start()
        try:
            await producer.send_and_wait("sasl-aiokafka", b"hello")
        finally:
            await producer.stop()

    asyncio.run(produce())


def _closed(sock: socket.socket) -> bool:
    sock.settimeout(10)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_a_request_before_authentication_closes_the_connection(broker: ThreadedBroker) -> None:
    with RawClient(broker.bootstrap_servers) as client:
        assert client.call(ApiVersionsRequest(), 0, ApiVersionsResponse).error_code == 0
        client.send(MetadataRequest(topics=[]), 1)
        assert _closed(client.sock)


@pytest.mark.parametrize("version", [1, 3])
def test_a_request_where_a_sasl_token_was_due_is_answered_then_closed(broker: ThreadedBroker, version: int) -> None:
    """After a v1 handshake Kafka's SaslServerAuthenticator answers any other request with
    ILLEGAL_SASL_STATE (the request's error response), then closes the connection."""
    with RawClient(broker.bootstrap_servers) as client:
        assert client.call(SaslHandshakeRequest(mechanism="PLAIN"), 1, SaslHandshakeResponse).error_code == 0
        answer = client.call(FindCoordinatorRequest(key="g", key_type=0), version, FindCoordinatorResponse)
        assert answer.error_code == 34  # ILLEGAL_SASL_STATE
        assert answer.error_message == "Unexpected Kafka request of type FIND_COORDINATOR during SASL authentication."
        assert _closed(client.sock)


def test_wrong_password_is_answered_then_closed(broker: ThreadedBroker) -> None:
    with RawClient(broker.bootstrap_servers) as client:
        handshake = client.call(SaslHandshakeRequest(mechanism="PLAIN"), 1, SaslHandshakeResponse)
        assert handshake.error_code == 0 and set(handshake.mechanisms) == set(USERS)
        answer = client.call(SaslAuthenticateRequest(auth_bytes=b"\0alice\0wrong"), 2, SaslAuthenticateResponse)
        assert answer.error_code == 58  # SASL_AUTHENTICATION_FAILED
        assert answer.error_message == "Authentication failed: Invalid username or password"
        assert _closed(client.sock)


def _scram_final(client: RawClient, final: str) -> str:
    """Log in as carol (SCRAM-SHA-256) up to the client-final message: `final` without its
    proof (`{nonce}`: the server-first's nonce), signed as the RFC 5802 AuthMessage; the message."""
    mechanism = ScramMechanism.SCRAM_SHA_256
    assert client.call(SaslHandshakeRequest(mechanism=mechanism.mechanism_name), 1, SaslHandshakeResponse).error_code == 0
    server_first = client.call(SaslAuthenticateRequest(auth_bytes=b"n,,n=carol,r=cnonce"), 2, SaslAuthenticateResponse).auth_bytes.decode()
    fields = dict(item.split("=", 1) for item in server_first.split(","))
    final = final.format(nonce=fields["r"])
    salted = mechanism.salted_password("carol-secret", base64.b64decode(fields["s"]), int(fields["i"]))
    client_key = mechanism.hmac(salted, b"Client Key")
    signature = mechanism.hmac(mechanism.hash(client_key), f"n=carol,r=cnonce,{server_first},{final}".encode())
    return f"{final},p={base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature))).decode()}"


def test_a_scram_nonce_that_only_ends_with_the_servers_is_refused_then_closed(broker: ThreadedBroker) -> None:
    """kcat 1.7.1 (librdkafka before 2.6.1) sends its own nonce, then the server-first's, and
    signs that: Kafka 4.4 answers invalid credentials and closes (test_scram_differential)."""
    with RawClient(broker.bootstrap_servers) as client:
        final = _scram_final(client, "c=biws,r=cnonce{nonce}")
        answer = client.call(SaslAuthenticateRequest(auth_bytes=final.encode()), 2, SaslAuthenticateResponse)
        assert answer.error_code == 58  # SASL_AUTHENTICATION_FAILED
        assert answer.error_message == "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"
        assert _closed(client.sock)
    with RawClient(broker.bootstrap_servers) as client:  # the same login, its nonce as sent
        final = _scram_final(client, "c=biws,r={nonce}")
        assert client.call(SaslAuthenticateRequest(auth_bytes=final.encode()), 2, SaslAuthenticateResponse).error_code == 0


def test_a_scram_proof_of_the_wrong_length_is_closed_unanswered(broker: ThreadedBroker) -> None:
    """Kafka's ScramFormatter.xor throws an exception its SASL layers do not catch: no answer."""
    with RawClient(broker.bootstrap_servers) as client:
        final = _scram_final(client, "c=biws,r={nonce}")
        client.send(SaslAuthenticateRequest(auth_bytes=final[: final.index(",p=")].encode() + b",p=AAAA"), 2)
        assert _closed(client.sock)


def test_unsupported_mechanism_is_answered_then_closed(broker: ThreadedBroker) -> None:
    with RawClient(broker.bootstrap_servers) as client:
        handshake = client.call(SaslHandshakeRequest(mechanism="GSSAPI"), 1, SaslHandshakeResponse)
        assert handshake.error_code == 33  # UNSUPPORTED_SASL_MECHANISM
        assert _closed(client.sock)


def test_raw_tokens_after_handshake_v0(broker: ThreadedBroker) -> None:
    with RawClient(broker.bootstrap_servers) as client:
        assert client.call(SaslHandshakeRequest(mechanism="PLAIN"), 0, SaslHandshakeResponse).error_code == 0
        token = b"\0alice\0alice-secret"
        client.sock.sendall(struct.pack(">i", len(token)) + token)
        assert read_frame(client.sock) == b""  # PLAIN's empty answer, size-prefixed
        metadata = client.call(MetadataRequest(topics=[]), 1, MetadataResponse)
        assert metadata.brokers


def test_sasl_apis_on_a_plaintext_listener_are_illegal(broker: ThreadedBroker) -> None:
    plaintext = broker.broker.bound_ports["PLAINTEXT"]
    with RawClient(f"127.0.0.1:{plaintext}") as client:
        assert client.call(SaslHandshakeRequest(mechanism="PLAIN"), 1, SaslHandshakeResponse).error_code == 34  # ILLEGAL_SASL_STATE


def test_half_done_exchanges_are_closed_and_disturb_no_one() -> None:
    config = sasl_config(**{"connections.max.idle.ms": "1500"})
    with running_broker(config=config, add_scram=ADD_SCRAM) as broker:
        stalled = []
        for _ in range(20):
            client = RawClient(broker.bootstrap_servers)
            client.call(SaslHandshakeRequest(mechanism="SCRAM-SHA-256"), 1, SaslHandshakeResponse)
            answer = client.call(SaslAuthenticateRequest(auth_bytes=b"n,,n=carol,r=abcdef"), 2, SaslAuthenticateResponse)
            assert answer.error_code == 0 and answer.auth_bytes.startswith(b"r=abcdef")
            stalled.append(client)
        garbage = RawClient(broker.bootstrap_servers)
        garbage.call(SaslHandshakeRequest(mechanism="SCRAM-SHA-512"), 1, SaslHandshakeResponse)
        answer = garbage.call(SaslAuthenticateRequest(auth_bytes=b"\xff\x00not scram"), 2, SaslAuthenticateResponse)
        assert answer.error_code == 58
        assert answer.error_message == "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"
        assert _closed(garbage.sock)
        test_kafka_python(broker, "SCRAM-SHA-512")  # served while the others stall
        for client in stalled:
            assert _closed(client.sock)
            client.close()


def test_scram_credentials_altered_over_the_protocol_survive_a_restart(tmp_path) -> None:
    from kafka.admin import ScramMechanism, UserScramCredentialDeletion, UserScramCredentialUpsertion

    config = sasl_config(**{"data.dir": str(tmp_path)})
    with running_broker(config=config) as broker:
        plaintext = f"127.0.0.1:{broker.broker.bound_ports['PLAINTEXT']}"
        admin = KafkaAdminClient(bootstrap_servers=plaintext)
        try:
            admin.alter_user_scram_credentials([UserScramCredentialUpsertion("erin", ScramMechanism.SCRAM_SHA_256, "erin-secret", iterations=4096)])
            admin.alter_user_scram_credentials(
                [
                    UserScramCredentialUpsertion("frank", ScramMechanism.SCRAM_SHA_512, "x", iterations=4096),
                    UserScramCredentialDeletion("frank", ScramMechanism.SCRAM_SHA_512),
                ]
            )
            described = admin.describe_user_scram_credentials()
        finally:
            admin.close()
        assert "erin" in str(described) and "frank" not in str(described)
        broker.restart()
        producer = KafkaProducer(
            bootstrap_servers=broker.bootstrap_servers,
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="SCRAM-SHA-256",
            sasl_plain_username="erin",
            sasl_plain_password="erin-secret",
        )
        try:
            assert producer.send("sasl-restart", b"x").get(timeout=10).offset >= 0
        finally:
            producer.close()
    assert b"erin-secret" not in (tmp_path / "scram-credentials.json").read_bytes()
