"""What Kafka 4.4's ConnectionQuotas.inc records of a socket it refuses: it records the socket
against its IP's connection_creation_rate before it checks max.connections.per.ip, so a socket
over the per-address limit stays counted in that rate; a socket over the rate is taken back
out of it and out of the broker-wide max.connection.creation.rate
(recordIpConnectionMaybeThrottle, updateListenerMetrics).

The rates are measured over quota.window.num (11) windows of a second, at least 10 s: a quota
of 1 connection a second lets 10 in and refuses the 11th however slowly the test runs (its
samples last 11 s). A socket over the rate is held, unread, for its throttle time (at most a
window) and only then closed, as Kafka's Acceptor holds it in throttledSockets."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable

import pytest

from kafka.protocol.admin import AlterClientQuotasRequest, AlterClientQuotasResponse
from kafka.protocol.metadata.api_versions import ApiVersionsRequest, ApiVersionsResponse

from kafka_wire import RawClient, make
from ottla.testing import ThreadedBroker, running_broker


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def _limit_localhost(client: RawClient, rate: int) -> None:
    op = dict(key="connection_creation_rate", value=float(rate), remove=False)
    request = make(AlterClientQuotasRequest, dict(entries=[dict(entity=[dict(entity_type="ip", entity_name="127.0.0.1")], ops=[op])], validate_only=False))
    assert client.call(request, 1, AlterClientQuotasResponse).entries[0].error_code == 0


def _served(bootstrap: str) -> bool:
    with RawClient(bootstrap) as client:
        try:
            return client.call(ApiVersionsRequest(), 0, ApiVersionsResponse).error_code == 0
        except ConnectionError:
            return False


def _broker_rate_total(handle: ThreadedBroker) -> float:
    assert handle.broker is not None and handle.broker._creation_rate is not None
    return sum(handle.broker._creation_rate._values)


def test_a_socket_over_its_ip_rate_is_taken_out_of_the_broker_rate() -> None:
    with running_broker(max_connection_creation_rate=1000) as handle:
        with RawClient(handle.bootstrap_servers) as admin:
            _limit_localhost(admin, 1)
        admitted = 0
        while _served(handle.bootstrap_servers):
            admitted += 1
            assert admitted <= 10, "the connection_creation_rate refused none"
        assert admitted == 10
        assert _broker_rate_total(handle) == 1 + admitted  # the admin's and the admitted, not the refused


def test_a_socket_over_max_connections_per_ip_stays_in_its_ip_rate() -> None:
    with running_broker(**{"max.connections.per.ip": "1"}) as handle:
        with RawClient(handle.bootstrap_servers) as admin:
            _limit_localhost(admin, 1)
            # The admin's connection holds 127.0.0.1's one place: each of these is refused,
            # and recorded against the rate first.
            assert not any(_served(handle.bootstrap_servers) for _ in range(10))
        _until(lambda: handle.broker is not None and not handle.broker._connections_per_ip, "the admin's connection was not released")
        assert not _served(handle.bootstrap_servers)  # the 11th in the rate: over 1 a second


def test_a_socket_over_its_ip_rate_is_held_for_its_throttle_then_closed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ottla.connection")
    with running_broker() as handle:
        with RawClient(handle.bootstrap_servers) as admin:
            _limit_localhost(admin, 1)
        assert all(_served(handle.bootstrap_servers) for _ in range(10))
        held = socket.create_connection(handle.bootstrap_servers.rsplit(":", 1))
        try:
            _until(lambda: "connection_creation_rate quota" in caplog.text, "the 11th connection was not refused")
            try:
                closed = held.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
            except BlockingIOError:
                closed = False
            assert not closed, "the refused socket was closed at once, not held for its throttle time"
            held.settimeout(10)
            assert held.recv(1) == b""  # closed once the throttle time has passed
        finally:
            held.close()
