"""Console connections are bounded in time and number: one that sends nothing, or only part
of its headers, is closed; past the cap a new one is refused, while Kafka clients go on."""

from __future__ import annotations

import socket
from typing import Iterator

import pytest

from compat.sockets import read_frame
from ottla.server.http import app, routes
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.protocol import decode_response, encode_request

GET = b"GET /api/csrf HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def _address(broker: ThreadedBroker) -> tuple[str, int]:
    assert broker.broker is not None and broker.broker.http is not None
    return broker.broker.http.host, broker.broker.http.port


def _answer(conn: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    answer = b""
    while chunk := conn.recv(65536):
        answer += chunk
    return answer


def _request(address: tuple[str, int]) -> bytes:
    with socket.create_connection(address, timeout=60) as conn:
        conn.sendall(GET)
        return _answer(conn)


def _kafka_answers(broker: ThreadedBroker) -> bool:
    host, port = broker.bootstrap_servers.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=60) as conn:
        conn.sendall(encode_request(ApiKey.API_VERSIONS, 0, 1, {}))
        frame = read_frame(conn)
        return frame is not None and decode_response(ApiKey.API_VERSIONS, 0, frame)[1]["error_code"] == 0


@pytest.fixture
def capped(monkeypatch: pytest.MonkeyPatch) -> Iterator[ThreadedBroker]:
    monkeypatch.setattr(app, "MAX_CONNECTIONS", 3)
    with running_broker(data_dir=None, http_port=0) as broker:
        yield broker


def test_a_silent_or_half_sent_connection_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app, "IDLE_TIMEOUT_SECONDS", 0.2)
    with running_broker(data_dir=None, http_port=0) as broker:
        address = _address(broker)
        assert _request(address).startswith(b"HTTP/1.1 200")
        # The socket timeout only keeps a failing run from hanging: the server must close first.
        with socket.create_connection(address, timeout=60) as silent, socket.create_connection(address, timeout=60) as partial:
            partial.sendall(b"GET /api/csrf HTTP/1.1\r\nHost: localhost\r\n")
            assert _answer(silent) == b""
            assert _answer(partial) == b""
        with socket.create_connection(address, timeout=60) as kept_alive:
            kept_alive.sendall(b"GET /api/csrf HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert _answer(kept_alive).startswith(b"HTTP/1.1 200")  # answered, then closed once idle


def test_a_body_that_does_not_arrive_is_answered_408(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routes, "BODY_TIMEOUT_SECONDS", 0.2)
    with running_broker(data_dir=None, http_port=0) as broker:
        assert broker.broker is not None and broker.broker.http is not None
        token = broker.broker.http.csrf_token.encode()
        with socket.create_connection(_address(broker), timeout=60) as slow:
            slow.sendall(b"POST /api/topics HTTP/1.1\r\nHost: localhost\r\nX-CSRF-Token: " + token + b"\r\nContent-Length: 100\r\n\r\n{\"na")
            answer = b""
            while b"\r\n\r\n" not in answer and (chunk := slow.recv(65536)):  # aiohttp lingers for the body's rest
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 408")


def test_connections_past_the_cap_are_refused_and_kafka_goes_on(capped: ThreadedBroker) -> None:
    address = _address(capped)
    held = [socket.create_connection(address, timeout=60) for _ in range(3)]
    try:
        assert _request(address).startswith(b"HTTP/1.1 503")
        assert _kafka_answers(capped)
        held.pop().close()
        while (answer := _request(address)).startswith(b"HTTP/1.1 503"):
            pass  # the closed connection's slot is freed once the server has seen it go
        assert answer.startswith(b"HTTP/1.1 200")
    finally:
        for conn in held:
            conn.close()
