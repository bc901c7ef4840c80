"""Connection limits per listener, as Kafka's SocketServer keeps them: each listening socket's
backlog is socket.listen.backlog.size (Acceptor.openServerSocket); a listener's own
`listener.name.<name>.max.connections`, static or dynamic, holds its sockets waiting without
holding up the other listeners (ConnectionQuotas.connectionSlotAvailable, one Acceptor per
listener); the inter-broker listener is exempt from the broker-wide max.connections, and a
connection it takes over that limit closes the least recently active connection of another
listener, as a lowered max.connections closes the excess (ConnectionQuotas.protectedListener,
maxConnectionsExceeded, Processor.closeExcessConnections)."""

from __future__ import annotations

import socket
import struct
import sys
import time
from typing import Callable

import pytest
from kafka.protocol.metadata.api_versions import ApiVersionsRequest, ApiVersionsResponse

from kafka_wire import RawClient, read_frame
from ottla.server.admin.client import KafkaClient
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey

BROKER, SET = 4, 0  # ConfigResource type, IncrementalAlterConfigs operation
TWO_LISTENERS = {"listeners": "PLAINTEXT://127.0.0.1:0,EXTERNAL://127.0.0.1:0", "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT"}


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def _address(handle: ThreadedBroker, listener: str) -> str:
    assert handle.broker is not None
    return f"127.0.0.1:{handle.broker.bound_ports[listener]}"


def _api_versions_frame() -> bytes:
    request = ApiVersionsRequest()
    request.with_header(correlation_id=7, client_id="late")
    return bytes(request.encode(version=0, header=True, framed=True))


def _waiting(handle: ThreadedBroker, count: int) -> None:
    _until(lambda: handle.broker is not None and len(handle.broker._slot_waiters) == count, f"{count} socket(s) did not wait")


def _answered(sock: socket.socket) -> bool:
    sock.settimeout(10)
    frame = read_frame(sock)
    return frame is not None and ApiVersionsResponse.decode(frame, version=0, header=True).error_code == 0


def _served(client: RawClient) -> bool:
    return client.call(ApiVersionsRequest(), 0, ApiVersionsResponse).error_code == 0


def _closed_by_broker(sock: socket.socket) -> bool:
    sock.settimeout(10)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def _set_broker_config(client: KafkaClient, name: str, value: str) -> int:
    body = {"resources": [{"resource_type": BROKER, "resource_name": "1", "configs": [
        {"name": name, "config_operation": SET, "value": value}]}], "validate_only": False}
    return client.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, body)[1]["responses"][0]["error_code"]


@pytest.mark.skipif(sys.platform != "linux", reason="reads the backlog from Linux's TCP_INFO of a listening socket")
@pytest.mark.parametrize(("settings", "backlog"), [({}, 50), ({"socket.listen.backlog.size": "7"}, 7)])
def test_each_listening_socket_has_socket_listen_backlog_size(settings: dict[str, str], backlog: int) -> None:
    with running_broker(**TWO_LISTENERS, **settings) as handle:
        assert handle.broker is not None
        sockets = [sock for servers in handle.broker._servers.values() for server in servers for sock in server.sockets]
        assert len(sockets) == 2
        for sock in sockets:
            # For a listening socket Linux's tcp_info holds the backlog's bound in tcpi_sacked.
            info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
            assert struct.unpack_from("I", info, 28)[0] == backlog


def test_a_listeners_max_connections_holds_its_sockets_and_no_other_listeners() -> None:
    with running_broker(**TWO_LISTENERS, **{"listener.name.external.max.connections": 1}) as handle:
        external = _address(handle, "EXTERNAL")
        first = RawClient(external)
        assert _served(first)
        late = socket.create_connection(external.rsplit(":", 1))
        late.sendall(_api_versions_frame())
        _waiting(handle, 1)
        later = socket.create_connection(external.rsplit(":", 1))
        later.sendall(_api_versions_frame())
        _waiting(handle, 2)
        # The other listener is served meanwhile: its Acceptor is not the blocked one.
        with KafkaClient(_address(handle, "PLAINTEXT")) as admin:
            first.close()
            assert _answered(late)
            _waiting(handle, 1)
            # Raised at run time (a cluster-level listener config, so the default may set it too).
            assert _set_broker_config(admin, "listener.name.external.max.connections", "2") == 0
            assert _answered(later)
        late.close()
        later.close()


def test_a_listeners_max_connections_is_checked_as_max_connections_is() -> None:
    with running_broker(**TWO_LISTENERS) as handle:
        with KafkaClient(_address(handle, "PLAINTEXT")) as admin:
            assert _set_broker_config(admin, "listener.name.external.max.connections", "many") != 0


def test_the_inter_broker_listener_takes_a_connection_past_max_connections_and_closes_the_least_recently_used() -> None:
    # PLAINTEXT is the inter-broker listener: security.inter.broker.protocol's default names it.
    with running_broker(**TWO_LISTENERS, max_connections=2) as handle:
        external = _address(handle, "EXTERNAL")
        older, recent = RawClient(external), RawClient(external)
        assert _served(older) and _served(recent)
        assert _served(older)  # `recent` is now the least recently active
        with RawClient(_address(handle, "PLAINTEXT")) as peer:
            assert _served(peer)
            assert _closed_by_broker(recent.sock)
            assert _served(older)
        older.close()
        recent.close()


def test_a_client_listener_past_max_connections_still_waits_with_an_inter_broker_one() -> None:
    with running_broker(**TWO_LISTENERS, max_connections=1) as handle:
        with RawClient(_address(handle, "PLAINTEXT")) as peer:
            assert _served(peer)
            late = socket.create_connection(_address(handle, "EXTERNAL").rsplit(":", 1))
            late.sendall(_api_versions_frame())
            _waiting(handle, 1)
        assert _answered(late)
        late.close()


def test_a_lowered_max_connections_closes_the_least_recently_active_connections() -> None:
    with running_broker() as handle:
        bootstrap = handle.bootstrap_servers
        idle = [RawClient(bootstrap), RawClient(bootstrap)]
        for client in idle:
            assert _served(client)
        with KafkaClient(bootstrap) as admin:
            assert _set_broker_config(admin, "max.connections", "1") == 0
            for client in idle:
                assert _closed_by_broker(client.sock)
                client.close()
            assert _set_broker_config(admin, "max.connections", "3") == 0
