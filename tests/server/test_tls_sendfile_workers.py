"""A large fetch answer on a TLS listener is read, encrypted and sent whole by a worker thread
(server/sendfile.py's TlsThreadSend) with the connection's own SSL object, which asyncio's SSL
transport is kept from meanwhile: a TLS consumer still reads every record in order, byte for
byte; answers pipelined behind one another, and the small ones behind them, leave whole and in
order and stay readable after (the TLS stream's record sequence unbroken); a client reading
slowly gets its answer whole; a client gone in the middle leaves no descriptor open and the
broker serving the next; and a broker stops while a worker holds a stalled answer."""

from __future__ import annotations

import os
import socket
import ssl
import struct
import threading
from pathlib import Path

import pytest
from kafka.protocol.metadata.api_versions import ApiVersionsRequest, ApiVersionsResponse

from compat.harness import wait_for
from kafka_wire import RawClient
from ottla.server.connection import THREAD_SENDFILE_BYTES
from ottla.server.security.certs import DevelopmentCertificates, write
from ottla.testing import running_broker
from tests.server.test_sendfile_workers import (
    FETCH_VERSION,
    PARTITIONS,
    RECORDS_PER_PARTITION,
    VALUE_BYTES,
    _fetch_everything,
    _fill,
    _value,
    consume_everything,
)



@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> DevelopmentCertificates:
    return write(tmp_path_factory.mktemp("certs"))


def _settings(certs: DevelopmentCertificates, directory: Path) -> dict[str, object]:
    """An SSL listener beside the PLAINTEXT one; the log on disk (file regions: a memory log's
    answers are buffers, which the loop writes)."""
    return {"data_dir": directory / "data", "listeners": "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0", "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SSL:SSL",
            "ssl.keystore.type": "PEM", "ssl.keystore.location": str(certs.broker_keystore)}


def _filled(broker) -> str:
    """The topic filled through the PLAINTEXT listener; the SSL listener's address."""
    broker.create_topic("large", partitions=PARTITIONS)
    _fill(f"127.0.0.1:{broker.broker.bound_ports['PLAINTEXT']}", "large")
    return f"127.0.0.1:{broker.broker.bound_ports['SSL']}"


def _tls_client(address: str, certs: DevelopmentCertificates, receive_buffer: int | None = None) -> RawClient:
    client = RawClient(address)
    if receive_buffer is not None:
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    client.sock = ssl.create_default_context(cafile=str(certs.ca)).wrap_socket(client.sock, server_hostname="localhost")
    return client


def _pipelined(requests: list) -> bytes:
    data = b""
    for correlation_id, (request, version) in enumerate(requests, start=1):
        request.with_header(correlation_id=correlation_id, client_id="pipelining")
        data += bytes(request.encode(version=version, header=True, framed=True))
    return data


def _all_values_in_order(frame: bytes) -> None:
    assert len(frame) > PARTITIONS * RECORDS_PER_PARTITION * VALUE_BYTES
    for partition in range(PARTITIONS):
        positions = [frame.find(_value(partition, index)) for index in range(RECORDS_PER_PARTITION)]
        assert -1 not in positions and positions == sorted(positions), partition


def test_a_tls_consumer_reads_answers_encrypted_by_worker_threads_whole_and_in_order(certs, tmp_path) -> None:
    assert RECORDS_PER_PARTITION * VALUE_BYTES > 3 * THREAD_SENDFILE_BYTES
    with running_broker(**_settings(certs, tmp_path)) as broker:
        address = _filled(broker)
        consume_everything({"bootstrap.servers": address, "security.protocol": "SSL", "ssl.ca.location": str(certs.ca),
                            "group.id": "tls-workers"})


def test_pipelined_tls_answers_leave_whole_and_in_order_to_a_slow_reader(certs, tmp_path) -> None:
    """Two large fetches and an ApiVersions in one turn, read through a small window a little at
    a time (the socket stays full past a worker's wait, which goes back to the loop and on again):
    each answer whole, in request order, and the connection still speaks TLS after."""
    with running_broker(**_settings(certs, tmp_path), socket_send_buffer_bytes=64 * 1024) as broker:
        address = _filled(broker)
        requests = [(_fetch_everything("large"), FETCH_VERSION), (_fetch_everything("large"), FETCH_VERSION), (ApiVersionsRequest(), 0)]
        with _tls_client(address, certs, receive_buffer=64 * 1024) as client:
            client.sock.sendall(_pipelined(requests))
            frames = []
            for _ in requests:
                (size,) = struct.unpack(">i", client.sock.recv(4))
                frame = bytearray()
                while len(frame) < size:
                    chunk = client.sock.recv(min(size - len(frame), 16 << 10))
                    assert chunk, f"the broker closed with {size - len(frame)} of {size} bytes unsent"
                    frame += chunk
                frames.append(bytes(frame))
            client.correlation_id = len(requests)
            # The stream's records went on in sequence: a request after them is answered.
            assert client.call(ApiVersionsRequest(), 0, ApiVersionsResponse).error_code == 0
    assert [struct.unpack_from(">i", frame)[0] for frame in frames] == [1, 2, 3]
    assert frames[0][4:] == frames[1][4:]
    _all_values_in_order(frames[0])
    assert ApiVersionsResponse.decode(frames[2], version=0, header=True).error_code == 0


def _open_sockets() -> int:
    """Socket descriptors open in this process, where the broker runs (a thread of it)."""
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{name}").startswith("socket:")
        except FileNotFoundError:
            pass  # closed meanwhile
    return count


def test_a_tls_client_gone_in_the_middle_of_an_answer_leaves_no_descriptor_open(certs, tmp_path) -> None:
    with running_broker(**_settings(certs, tmp_path), socket_send_buffer_bytes=64 * 1024) as broker:
        address = _filled(broker)
        before = _open_sockets()
        with _tls_client(address, certs, receive_buffer=64 * 1024) as client:
            # Only the size prefix read: the answer stalls in the worker's hands, and closing
            # with unread bytes resets the connection.
            client.send(_fetch_everything("large"), FETCH_VERSION)
            (size,) = struct.unpack(">i", client.sock.recv(4))
            assert size > PARTITIONS * RECORDS_PER_PARTITION * VALUE_BYTES
        # The broker answers the next TLS client whole.
        with _tls_client(address, certs) as client:
            client.send(_fetch_everything("large"), FETCH_VERSION)
            _all_values_in_order(client.receive_frame())
        assert wait_for(lambda: _open_sockets() <= before, timeout=30), (before, _open_sockets())



def test_a_broker_stops_while_a_worker_holds_a_stalled_tls_answer(certs, tmp_path) -> None:
    """The client reads nothing past the size: the answer waits on a full socket, the SSL object
    lent to the send; the broker's stop aborts the connection and ends the workers all the same."""
    clients: list[RawClient] = []
    try:
        with running_broker(**_settings(certs, tmp_path), socket_send_buffer_bytes=64 * 1024) as broker:
            address = _filled(broker)
            clients.append(_tls_client(address, certs, receive_buffer=64 * 1024))
            clients[0].send(_fetch_everything("large"), FETCH_VERSION)
            (size,) = struct.unpack(">i", clients[0].sock.recv(4))
            assert size > PARTITIONS * RECORDS_PER_PARTITION * VALUE_BYTES
            assert any(thread.name.startswith("ottla-sendfile") for thread in threading.enumerate())
        assert not any(thread.name.startswith("ottla-sendfile") for thread in threading.enumerate())
    finally:
        for client in clients:
            client.close()
