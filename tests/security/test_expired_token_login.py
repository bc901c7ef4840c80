"""A SCRAM login with a delegation token that has expired but is not yet swept, as the reference
Kafka 4.4 answers it (checked against it over SASL_PLAINTEXT with SCRAM-SHA-512): the login
succeeds, since ScramServerCallbackHandler takes the token's credential from the cache without
looking at its expiry; SaslAuthenticate answers session_lifetime_ms 0, the credential's expiry
being past (SaslServerAuthenticator.ReauthInfo.calcCompletionTimesAndReturnSessionLifetimeMs);
and the next request closes the connection unanswered (SocketServer's Processor closes a
channel whose serverAuthenticationSessionExpired), so the expired credential runs nothing.
Once swept, the token is unknown and the login fails."""

from __future__ import annotations

import base64
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ottla.server.admin.client import Connection, KafkaClient
from ottla.server.admin.sasl import SaslLogin, ScramClient
from ottla.server.config import BrokerConfig
from ottla.server.security.tokens import now_ms
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.protocol import encode_request

MECHANISM = "SCRAM-SHA-512"


def _config(**extra: str) -> BrokerConfig:
    return BrokerConfig.from_settings(
        {
            "listeners": "SASL_PLAINTEXT://127.0.0.1:0",
            "data.dir": None,
            "sasl.enabled.mechanisms": MECHANISM,
            "delegation.token.secret.key": "the-secret",
            **extra,
        }
    )


def _running(config: BrokerConfig) -> Any:
    return running_broker(config=config, add_scram=[f"{MECHANISM}=[name=alice,password=alice-secret]"])


@pytest.fixture(scope="module")
def broker() -> Iterator[ThreadedBroker]:
    with _running(_config()) as handle:
        yield handle


class _TokenScramClient(ScramClient):
    """Kafka's client side of a token login: the `tokenauth=true` extension in client-first."""

    def first(self) -> bytes:
        self._bare = f"n={self._username},r={self._nonce},tokenauth=true"
        return f"n,,{self._bare}".encode()


def _port(broker: ThreadedBroker) -> int:
    assert broker.broker is not None
    return int(broker.broker.bound_ports["SASL_PLAINTEXT"])


def _token(broker: ThreadedBroker, expired: bool) -> dict[str, Any]:
    """A token of alice's; `expired`: expired at once (period 0) and the clock past its expiry."""
    with KafkaClient(f"127.0.0.1:{_port(broker)}", timeout=10, sasl=SaslLogin(MECHANISM, "alice", "alice-secret")) as alice:
        token = alice.call(ApiKey.CREATE_DELEGATION_TOKEN, {"renewers": [], "max_lifetime_ms": -1})[1]
        assert token["error_code"] == 0
        if expired:
            answer = alice.call(ApiKey.EXPIRE_DELEGATION_TOKEN, {"hmac": token["hmac"], "expiry_time_period_ms": 0})[1]
            assert answer["error_code"] == 0
            while now_ms() <= answer["expiry_timestamp_ms"]:  # expired once the clock has passed its expiry
                time.sleep(0.001)
    return token


def _token_login(broker: ThreadedBroker, token: dict[str, Any], version: int) -> tuple[Connection, dict[str, Any]]:
    """A raw SaslHandshake v1 and SaslAuthenticate `version` exchange; the last answer."""
    conn = Connection("127.0.0.1", _port(broker), 10, "expired-token-test")
    assert conn.request(ApiKey.SASL_HANDSHAKE, 1, {"mechanism": MECHANISM})["error_code"] == 0
    client = _TokenScramClient(MECHANISM, token["token_id"], base64.b64encode(token["hmac"]).decode())
    first = conn.request(ApiKey.SASL_AUTHENTICATE, version, {"auth_bytes": client.first()})
    if first["error_code"]:
        return conn, first
    final = conn.request(ApiKey.SASL_AUTHENTICATE, version, {"auth_bytes": client.final(bytes(first["auth_bytes"]))})
    if final["error_code"] == 0:
        client.verify(bytes(final["auth_bytes"]))
    return conn, final


def _closed_unanswered(conn: Connection) -> bool:
    """Send a Metadata request: True when the broker closes the connection without an answer."""
    conn.correlation_id += 1
    conn.sock.sendall(encode_request(ApiKey.METADATA, 1, conn.correlation_id, {"topics": []}, client_id=conn.client_id))
    try:
        return conn.sock.recv(4) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


@pytest.mark.parametrize("version", [0, 2])
def test_an_expired_unswept_token_logs_in_for_a_session_already_over(broker: ThreadedBroker, version: int) -> None:
    conn, answer = _token_login(broker, _token(broker, expired=True), version)
    try:
        assert answer["error_code"] == 0
        if version >= 1:
            assert answer["session_lifetime_ms"] == 0
        assert _closed_unanswered(conn)
    finally:
        conn.close()


def test_a_live_token_logs_in_for_its_remaining_lifetime(broker: ThreadedBroker) -> None:
    token = _token(broker, expired=False)
    conn, answer = _token_login(broker, token, 2)
    try:
        assert answer["error_code"] == 0
        assert 0 < answer["session_lifetime_ms"] <= token["expiry_timestamp_ms"] - token["issue_timestamp_ms"]
        assert conn.request(ApiKey.METADATA, 1, {"topics": []})["brokers"]
    finally:
        conn.close()


def test_a_swept_token_is_unknown() -> None:
    """With a sweep due at every use, the expired token is gone before the login looks it up."""
    with _running(_config(**{"delegation.token.expiry.check.interval.ms": "1"})) as handle:
        conn, answer = _token_login(handle, _token(handle, expired=True), 2)
        conn.close()
    assert answer["error_code"] == ErrorCode.SASL_AUTHENTICATION_FAILED
