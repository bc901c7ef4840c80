"""KIP-368 re-authentication as Kafka's KafkaChannel and SaslServerAuthenticator bound it, over
raw sockets to a broker started here: one re-authentication may start per second
(KafkaChannel.maybeBeginServerReauthentication), and its tokens are read as a login's, bounded
by sasl.server.max.receive.size (SaslServerAuthenticator.authenticate).

No assertion is timed: "less than a second" is asserted only when the client's own clock,
which spans the broker's, saw less; "a second later" only after the client waited one."""

from __future__ import annotations

import socket
import time

from compat.sockets import read_frame
from ottla.server.config import BrokerConfig
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.protocol import decode_response, encode_request

JAAS = 'org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="alice-secret";'
TOKEN = b"\0alice\0alice-secret"


def _config(**extra: str) -> BrokerConfig:
    settings = {
        "listeners": "SASL_PLAINTEXT://127.0.0.1:0", "data.dir": None, "sasl.enabled.mechanisms": "PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS, "connections.max.reauth.ms": "60000",
    }
    settings.update(extra)
    return BrokerConfig.from_settings(settings)


def _call(sock: socket.socket, api: int, version: int, body: dict) -> dict | None:
    """The answer, or None when the broker closed the connection without one."""
    sock.sendall(encode_request(api, version, 1, body, "test"))
    frame = read_frame(sock)
    return None if frame is None else decode_response(api, version, frame)[1]


def _handshake(sock: socket.socket) -> dict | None:
    return _call(sock, ApiKey.SASL_HANDSHAKE, 1, {"mechanism": "PLAIN"})


def _authenticate(sock: socket.socket, token: bytes = TOKEN) -> dict | None:
    return _call(sock, ApiKey.SASL_AUTHENTICATE, 2, {"auth_bytes": token})


def _logged_in(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    assert _handshake(sock)["error_code"] == ErrorCode.NONE
    answer = _authenticate(sock)
    assert (answer["error_code"], answer["session_lifetime_ms"]) == (ErrorCode.NONE, 60000)
    return sock


def _big_metadata(sock: socket.socket) -> dict | None:
    """A Metadata request of ~4 KiB: over the SASL frame bound the tests set, under socket.request.max.bytes."""
    topics = [{"name": f"{index:04d}-" + "t" * 60} for index in range(64)]
    return _call(sock, ApiKey.METADATA, 4, {"topics": topics, "allow_auto_topic_creation": False})


def test_a_reauthentication_starts_at_most_once_a_second() -> None:
    with running_broker(config=_config()) as broker:
        port = broker.broker.bound_ports["SASL_PLAINTEXT"]
        for _ in range(5):
            sock = _logged_in(port)
            started = time.monotonic()
            assert _handshake(sock)["error_code"] == ErrorCode.NONE  # the first re-authentication: at any time
            accepted = time.monotonic()
            assert _authenticate(sock)["error_code"] == ErrorCode.NONE
            again = _handshake(sock)
            if time.monotonic() - started < 1.0:
                # KafkaApis answers it, as any SaslHandshake on an authenticated connection; the session goes on.
                assert again == {"error_code": ErrorCode.ILLEGAL_SASL_STATE, "mechanisms": []}
                assert _call(sock, ApiKey.API_VERSIONS, 0, {})["error_code"] == ErrorCode.NONE
                break
            sock.close()  # this machine was too slow to tell: try again
        else:
            raise AssertionError("five tries each took a second: the rule could not be checked")
        # A second after the first started, another may start.
        time.sleep(max(accepted + 1.0 - time.monotonic(), 0) + 0.01)
        assert _handshake(sock)["error_code"] == ErrorCode.NONE
        assert _authenticate(sock)["error_code"] == ErrorCode.NONE
        sock.close()


def test_a_handshake_too_soon_on_an_expired_session_closes_the_connection() -> None:
    """Kafka's Processor: a SaslHandshake that cannot start a re-authentication is a request
    like any other, and an expired session's request closes the connection unanswered."""
    with running_broker(config=_config(**{"connections.max.reauth.ms": "200"})) as broker:
        port = broker.broker.bound_ports["SASL_PLAINTEXT"]
        for _ in range(5):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            assert _handshake(sock)["error_code"] == ErrorCode.NONE
            assert _authenticate(sock)["session_lifetime_ms"] == 200
            started = time.monotonic()
            assert _handshake(sock)["error_code"] == ErrorCode.NONE
            assert _authenticate(sock)["error_code"] == ErrorCode.NONE
            time.sleep(0.25)  # past the session the re-authentication gave: 200 ms from its end
            again = _handshake(sock)
            if time.monotonic() - started < 1.0:
                assert again is None
                break
            sock.close()
        else:
            raise AssertionError("five tries each took a second: the rule could not be checked")
        sock.close()


def test_reauthentication_tokens_are_bounded_by_sasl_server_max_receive_size() -> None:
    with running_broker(config=_config(**{"sasl.server.max.receive.size": "1024"})) as broker:
        port = broker.broker.bound_ports["SASL_PLAINTEXT"]
        # Authenticated, a client's requests are bounded by socket.request.max.bytes alone, also
        # once a re-authentication has ended.
        with _logged_in(port) as sock:
            assert _big_metadata(sock) is not None
            assert _handshake(sock)["error_code"] == ErrorCode.NONE
            assert _authenticate(sock)["error_code"] == ErrorCode.NONE
            assert _big_metadata(sock) is not None
        # While it re-authenticates, a token over sasl.server.max.receive.size fails it: the
        # connection closes unanswered (after connection.failed.authentication.delay.ms).
        with _logged_in(port) as sock:
            assert _handshake(sock)["error_code"] == ErrorCode.NONE
            assert _authenticate(sock, b"\0alice\0" + b"x" * 2048) is None
