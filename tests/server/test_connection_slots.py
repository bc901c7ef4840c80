"""max.connections as Kafka's Acceptor keeps it (ConnectionQuotas.waitForConnectionSlot): at
the limit a new socket waits, unread, until a connection closes, then is served; it is never
refused for it."""

from __future__ import annotations

import socket
import ssl
import time
from typing import Callable

import pytest
from kafka.protocol.metadata.api_versions import ApiVersionsRequest, ApiVersionsResponse

from kafka_wire import RawClient, read_frame
from unavailable import unavailable
from ottla.server.admin.client import KafkaClient
from ottla.server.security.certs import write
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey

BROKER, SET = 4, 0  # ConfigResource type, IncrementalAlterConfigs operation


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def _held_waiting(handle: ThreadedBroker, sock: socket.socket) -> None:
    """Return once the broker holds `sock` waiting for a place; fail as soon as it closes it."""

    def waiting() -> bool:
        try:
            closed = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            closed = False
        except ConnectionResetError:
            closed = True
        assert not closed, "the broker refused the connection instead of holding it"
        return len(getattr(handle.broker, "_slot_waiters", ())) == 1

    _until(waiting, "the connection past max.connections was not held waiting")


def _api_versions_frame() -> bytes:
    request = ApiVersionsRequest()
    request.with_header(correlation_id=7, client_id="late")
    return bytes(request.encode(version=0, header=True, framed=True))


def _answered(sock: socket.socket) -> bool:
    sock.settimeout(10)
    frame = read_frame(sock)
    return frame is not None and ApiVersionsResponse.decode(frame, version=0, header=True).error_code == 0


def _served(bootstrap: str) -> bool:
    with RawClient(bootstrap) as client:
        return client.call(ApiVersionsRequest(), 0, ApiVersionsResponse).error_code == 0


@pytest.mark.parametrize("event_loop", ["asyncio", "uvloop"])
def test_the_connection_past_max_connections_is_served_once_one_closes(event_loop: str) -> None:
    if event_loop == "uvloop":
        try:
            import uvloop  # noqa: F401
        except ImportError:
            unavailable("uvloop is not installed: python3 -m pip install -e '.[test]'")
    with running_broker(max_connections=2, event_loop=event_loop) as handle:
        bootstrap = handle.bootstrap_servers
        held = [RawClient(bootstrap), RawClient(bootstrap)]
        for client in held:
            assert client.call(ApiVersionsRequest(), 0, ApiVersionsResponse).error_code == 0
        late = socket.create_connection(bootstrap.rsplit(":", 1))
        # Its request is sent while it waits: uvloop reads it before the wait takes hold.
        late.sendall(_api_versions_frame())
        _held_waiting(handle, late)
        held[0].close()
        assert _answered(late)
        # The places stay counted: the waiting one took the freed place, so a fourth waits in turn.
        last = socket.create_connection(bootstrap.rsplit(":", 1))
        _held_waiting(handle, last)
        late.close()
        last.sendall(_api_versions_frame())
        assert _answered(last)
        held[1].close()
        assert _served(bootstrap)
        # A socket still waiting when the broker stops is reset with the others.
        blocker = RawClient(bootstrap)
        assert blocker.call(ApiVersionsRequest(), 0, ApiVersionsResponse).error_code == 0
        stranded = socket.create_connection(bootstrap.rsplit(":", 1))
        _held_waiting(handle, stranded)
    stranded.settimeout(10)
    try:
        assert stranded.recv(1) == b""
    except ConnectionResetError:
        pass
    stranded.close()
    blocker.close()
    last.close()


def test_raising_max_connections_lets_the_waiting_connection_in() -> None:
    with running_broker(max_connections=1) as handle:
        bootstrap = handle.bootstrap_servers
        with KafkaClient(bootstrap) as held:
            late = socket.create_connection(bootstrap.rsplit(":", 1))
            late.sendall(_api_versions_frame())
            _held_waiting(handle, late)
            body = {"resources": [{"resource_type": BROKER, "resource_name": "1", "configs": [
                {"name": "max.connections", "config_operation": SET, "value": "2"}]}], "validate_only": False}
            assert held.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, body)[1]["responses"][0]["error_code"] == 0
            assert _answered(late)
            late.close()


def test_a_lowered_max_connections_applies_to_the_next_connection() -> None:
    with running_broker() as handle:
        bootstrap = handle.bootstrap_servers
        with KafkaClient(bootstrap) as held:
            # Altered over the held connection: no other connection is open, or closing, meanwhile.
            body = {"resources": [{"resource_type": BROKER, "resource_name": "1", "configs": [
                {"name": "max.connections", "config_operation": SET, "value": "2"}]}], "validate_only": False}
            assert held.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, body)[1]["responses"][0]["error_code"] == 0
            with KafkaClient(bootstrap) as second:
                second.call(ApiKey.METADATA, {"topics": []})
                late = socket.create_connection(bootstrap.rsplit(":", 1))
                late.sendall(_api_versions_frame())
                _held_waiting(handle, late)
            assert _answered(late)
            late.close()


def test_a_tls_connection_past_max_connections_waits_for_its_handshake(tmp_path) -> None:
    certs = write(tmp_path)
    settings = {"listeners": "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0", "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SSL:SSL",
                "ssl.keystore.type": "PEM", "ssl.keystore.location": str(certs.broker_keystore), "max.connections": 1}
    with running_broker(**settings) as handle:
        held = RawClient(f"127.0.0.1:{handle.broker.bound_ports['PLAINTEXT']}")
        assert held.call(ApiVersionsRequest(), 0, ApiVersionsResponse).error_code == 0
        raw = socket.create_connection(("127.0.0.1", handle.broker.bound_ports["SSL"]))
        _held_waiting(handle, raw)
        held.close()
        context = ssl.create_default_context(cafile=str(certs.ca))
        context.check_hostname = False
        raw.settimeout(10)
        with context.wrap_socket(raw) as tls:
            tls.sendall(_api_versions_frame())
            assert _answered(tls)


def test_a_connection_past_max_connection_creation_rate_waits_out_the_throttle() -> None:
    """Kafka's Acceptor records the socket against the broker-wide rate and, over it, waits
    the throttle out (at most quota.window.size.seconds) before serving it."""
    with running_broker(max_connection_creation_rate=1, quota_window_num=2) as handle:
        bootstrap = handle.bootstrap_servers
        with RawClient(bootstrap) as first:
            assert first.call(ApiVersionsRequest(), 0, ApiVersionsResponse).error_code == 0
            late = socket.create_connection(bootstrap.rsplit(":", 1))
            late.sendall(_api_versions_frame())
            _held_waiting(handle, late)
            assert _answered(late)
            late.close()


def test_no_more_sockets_wait_than_a_listen_backlog_holds() -> None:
    """Waiting sockets hold descriptors: past the listen backlog (1024) Kafka takes no more
    in, and Ottla closes them, so max.connections still bounds what a flood costs."""
    from ottla.server.broker import _LISTEN_BACKLOG

    with running_broker(max_connections=0) as handle:
        address = handle.bootstrap_servers.rsplit(":", 1)
        waiting = [socket.create_connection(address) for _ in range(_LISTEN_BACKLOG)]
        try:
            _until(lambda: len(handle.broker._slot_waiters) == _LISTEN_BACKLOG, "the sockets did not all wait")
            extra = socket.create_connection(address)
            extra.settimeout(10)
            try:
                assert extra.recv(1) == b""
            except ConnectionResetError:
                pass
            extra.close()
            assert len(handle.broker._slot_waiters) == _LISTEN_BACKLOG
        finally:
            for sock in waiting:
                sock.close()
