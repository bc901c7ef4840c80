"""The connection layer as Kafka 4.x's Selector, SocketServer and SaslServerAuthenticator run it,
over raw sockets to a broker started here: a failed SASL login is answered only when
connection.failed.authentication.delay.ms has passed, just before the close; TLS handshakes in
progress count against max.connections.per.ip; max.connections.per.ip.overrides is enforced;
a too-new ApiVersions learns the versions of ApiVersions alone; a second ApiVersions before the
SASL handshake closes the connection; a slow reader of a large answer is not idle.

No assertion is timed: "not yet" is checked after round trips on another connection, which the
broker handles after whatever it read earlier, with a delay far longer than they take."""

from __future__ import annotations

import socket
import ssl
import struct
import time
from pathlib import Path

import pytest

from ottla.server.config import BrokerConfig
from ottla.server.security.certs import write as write_certs
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.protocol import decode_response, encode_request

JAAS = 'org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="alice-secret";'
DELAY_MS = 1500


def _sasl_config(**extra: str) -> BrokerConfig:
    settings = {
        "listeners": "SASL_PLAINTEXT://127.0.0.1:0,PLAINTEXT://127.0.0.1:0", "data.dir": None, "sasl.enabled.mechanisms": "PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS, "connection.failed.authentication.delay.ms": str(DELAY_MS),
    }
    settings.update(extra)
    return BrokerConfig.from_settings(settings)


def _connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    return sock


def _read_exact(sock: socket.socket, count: int) -> bytes | None:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _read_frame(sock: socket.socket) -> bytes | None:
    size = _read_exact(sock, 4)
    return None if size is None else _read_exact(sock, struct.unpack(">i", size)[0])


def _call(sock: socket.socket, api: int, version: int, body: dict, correlation_id: int = 1) -> dict:
    sock.sendall(encode_request(api, version, correlation_id, body, "test"))
    frame = _read_frame(sock)
    assert frame is not None, "closed unanswered"
    return decode_response(api, version, frame)[1]


def _api_versions(sock: socket.socket) -> dict:
    return _call(sock, ApiKey.API_VERSIONS, 0, {})


def _round_trips(port: int, source: str = "127.0.0.1", count: int = 2) -> None:
    """Requests on another connection, one after the other's answer: the broker has handled
    everything it was sent before them by the time the last is answered."""
    with _connect(port, source) as other:
        for _ in range(count):
            _api_versions(other)


def _pending(sock: socket.socket) -> bytes | None:
    """What `sock` holds now without waiting: bytes, b"" at its end, or None for nothing yet."""
    sock.setblocking(False)
    try:
        return sock.recv(1 << 16)
    except BlockingIOError:
        return None
    except ConnectionResetError:
        return b""
    finally:
        sock.setblocking(True)
        sock.settimeout(10)


def _at_end(sock: socket.socket) -> bool:
    try:
        return sock.recv(1 << 16) == b""
    except ConnectionResetError:
        return True


def _handshake(sock: socket.socket, mechanism: str, version: int = 1) -> dict:
    return _call(sock, ApiKey.SASL_HANDSHAKE, version, {"mechanism": mechanism})


def _failing_authenticate(sock: socket.socket) -> None:
    _handshake(sock, "PLAIN")
    sock.sendall(encode_request(ApiKey.SASL_AUTHENTICATE, 1, 2, {"auth_bytes": b"\0alice\0wrong"}, "test"))


def _unsupported_mechanism(sock: socket.socket) -> None:
    sock.sendall(encode_request(ApiKey.SASL_HANDSHAKE, 1, 1, {"mechanism": "GSSAPI"}, "test"))


def _illegal_state(sock: socket.socket) -> None:
    _handshake(sock, "PLAIN")
    sock.sendall(encode_request(ApiKey.API_VERSIONS, 0, 2, {}, "test"))


@pytest.mark.parametrize(
    ("fail", "api", "version", "error"),
    [
        (_failing_authenticate, ApiKey.SASL_AUTHENTICATE, 1, ErrorCode.SASL_AUTHENTICATION_FAILED),
        (_unsupported_mechanism, ApiKey.SASL_HANDSHAKE, 1, ErrorCode.UNSUPPORTED_SASL_MECHANISM),
        (_illegal_state, ApiKey.API_VERSIONS, 0, ErrorCode.ILLEGAL_SASL_STATE),
    ],
    ids=["bad-password", "unsupported-mechanism", "illegal-state"],
)
def test_a_failed_login_is_answered_only_when_the_delay_has_passed_just_before_the_close(fail, api, version, error) -> None:
    with running_broker(config=_sasl_config()) as broker:
        ports = broker.broker.bound_ports
        with _connect(ports["SASL_PLAINTEXT"]) as client:
            fail(client)
            client.sendall(encode_request(ApiKey.API_VERSIONS, 0, 9, {}, "test"))  # never read
            _round_trips(ports["PLAINTEXT"])
            assert _pending(client) is None, "answered before connection.failed.authentication.delay.ms"
            answer = _read_frame(client)
            assert answer is not None
            assert decode_response(api, version, answer)[1]["error_code"] == error
            assert _at_end(client), "the answer is the last thing sent, then the close"


def test_a_failed_raw_token_login_and_an_oversized_frame_close_only_after_the_delay() -> None:
    with running_broker(config=_sasl_config()) as broker:
        ports = broker.broker.bound_ports
        with _connect(ports["SASL_PLAINTEXT"]) as raw, _connect(ports["SASL_PLAINTEXT"]) as oversized:
            _handshake(raw, "PLAIN", version=0)
            token = b"\0alice\0wrong"
            raw.sendall(struct.pack(">i", len(token)) + token)
            oversized.sendall(struct.pack(">i", 524289) + b"\0" * 64)
            _round_trips(ports["PLAINTEXT"])
            assert _pending(raw) is None, "a failed raw-token login closed before the delay"
            assert _pending(oversized) is None, "an oversized frame before authentication closed before the delay"
            assert _at_end(raw)
            assert _at_end(oversized)


def test_a_second_api_versions_before_the_sasl_handshake_closes_the_connection_unanswered() -> None:
    with running_broker(config=_sasl_config()) as broker:
        with _connect(broker.broker.bound_ports["SASL_PLAINTEXT"]) as client:
            assert _call(client, ApiKey.API_VERSIONS, 3, {"client_software_name": "t", "client_software_version": "1"})["error_code"] == 0
            client.sendall(encode_request(ApiKey.API_VERSIONS, 0, 2, {}, "test"))
            assert _at_end(client)
        with _connect(broker.broker.bound_ports["SASL_PLAINTEXT"]) as client:
            # An answer with an error leaves the state as it was: the client may ask again.
            invalid = _call(client, ApiKey.API_VERSIONS, 3, {"client_software_name": "-", "client_software_version": "1"})
            assert invalid["error_code"] == ErrorCode.INVALID_REQUEST
            assert _api_versions(client)["error_code"] == 0
            assert _handshake(client, "PLAIN")["error_code"] == 0


def test_a_too_new_api_versions_learns_the_versions_of_api_versions_alone() -> None:
    with running_broker(data_dir=None) as broker:
        port = int(broker.bootstrap_servers.rsplit(":", 1)[1])
        with _connect(port) as client:
            # v99, header v2 (as a newer client's flexible header): answered in v0.
            header = struct.pack(">hhih", ApiKey.API_VERSIONS, 99, 7, 1) + b"c" + b"\0"
            client.sendall(struct.pack(">i", len(header)) + header)
            frame = _read_frame(client)
            assert frame is not None
            answer = decode_response(ApiKey.API_VERSIONS, 0, frame)[1]
            assert answer["error_code"] == ErrorCode.UNSUPPORTED_VERSION
            assert [(entry["api_key"], entry["min_version"]) for entry in answer["api_keys"]] == [(ApiKey.API_VERSIONS, 0)]
            assert answer["api_keys"][0]["max_version"] >= 3


def _stalled_handshake_refused(tls_port: int, plain_port: int, third_source: str) -> bool:
    """Two TLS sockets that never start their handshake, then a third: whether it is closed."""
    stalled = [_connect(tls_port) for _ in range(2)]
    third = _connect(tls_port, third_source)
    try:
        _round_trips(plain_port, "127.0.0.2")
        for sock in stalled:
            assert _pending(sock) is None, "a stalled handshake within the limit was closed"
        return _pending(third) == b""
    finally:
        for sock in (*stalled, third):
            sock.close()


def _tls_settings(tmp_path: Path) -> dict[str, str]:
    certs = write_certs(tmp_path)
    return {"listeners": "SSL://127.0.0.1:0,PLAINTEXT://127.0.0.1:0", "data.dir": None, "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(certs.broker_keystore), "max.connections.per.ip": "2"}


def test_tls_handshakes_in_progress_count_against_max_connections_per_ip(tmp_path) -> None:
    certs = write_certs(tmp_path)
    with running_broker(config=BrokerConfig.from_settings(_tls_settings(tmp_path))) as broker:
        ports = broker.broker.bound_ports
        assert _stalled_handshake_refused(ports["SSL"], ports["PLAINTEXT"], "127.0.0.1")
        # Failed handshakes give their count back: a TLS client from the address is served again.
        context = ssl.create_default_context(cafile=str(certs.ca))
        context.check_hostname = False
        deadline = time.monotonic() + 30
        while True:
            try:
                with context.wrap_socket(_connect(ports["SSL"])) as client:
                    assert _api_versions(client)["error_code"] == 0
                break
            except (ssl.SSLError, OSError, AssertionError):
                assert time.monotonic() < deadline, "the stalled handshakes' counts were never released"
                _round_trips(ports["PLAINTEXT"], "127.0.0.2")


def test_max_connections_per_ip_overrides_bound_the_addresses_they_name(tmp_path) -> None:
    settings = {**_tls_settings(tmp_path), "max.connections.per.ip": "5", "max.connections.per.ip.overrides": "127.0.0.1:2,localhost:2"}
    with running_broker(config=BrokerConfig.from_settings(settings)) as broker:
        ports = broker.broker.bound_ports
        assert _stalled_handshake_refused(ports["SSL"], ports["PLAINTEXT"], "127.0.0.1")
        # 127.0.0.3 is not named: max.connections.per.ip (5) bounds it.
        held = [_connect(ports["PLAINTEXT"], "127.0.0.3") for _ in range(5)]
        try:
            for sock in held:
                assert _api_versions(sock)["error_code"] == 0
        finally:
            for sock in held:
                sock.close()


@pytest.mark.parametrize("on_disk", [False, True], ids=["in-memory", "sendfile"])
def test_a_slow_reader_of_a_large_answer_is_not_closed_as_idle(tmp_path, on_disk) -> None:
    from confluent_kafka import Producer

    idle_ms = 600
    with running_broker(data_dir=tmp_path / "data" if on_disk else None, connections_max_idle_ms=idle_ms) as broker:
        broker.create_topic("large", partitions=1)
        producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "linger.ms": 50, "batch.size": 1 << 20})
        for index in range(400):
            producer.produce("large", bytes([65 + index % 26]) * 20000, partition=0)
        assert producer.flush(30) == 0
        port = int(broker.bootstrap_servers.rsplit(":", 1)[1])
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(10)
        sock.connect(("127.0.0.1", port))
        with sock:
            topic_id = _call(sock, ApiKey.METADATA, 12, {"topics": [{"name": "large", "topic_id": bytes(16)}], "allow_auto_topic_creation": False,
                                                        "include_topic_authorized_operations": False})["topics"][0]["topic_id"]
            partitions = [{"partition": 0, "current_leader_epoch": -1, "fetch_offset": 0, "last_fetched_epoch": -1, "log_start_offset": -1,
                           "partition_max_bytes": 64 << 20}]
            sock.sendall(encode_request(ApiKey.FETCH, 13, 5, {
                "replica_id": -1, "max_wait_ms": 0, "min_bytes": 1, "max_bytes": 64 << 20, "isolation_level": 0, "session_id": 0,
                "session_epoch": -1, "topics": [{"topic_id": topic_id, "partitions": partitions}], "forgotten_topics_data": [], "rack_id": "",
            }, "test"))
            size = struct.unpack(">i", _read_exact(sock, 4) or b"\0\0\0\0")[0]
            assert size > 4 << 20
            received = 0
            started = time.monotonic()
            # Taken slowly, over several idle periods: the broker writes all along.
            while received < size:
                chunk = sock.recv(min(1 << 16, size - received))
                assert chunk, f"closed after {received} of {size} bytes"
                received += len(chunk)
                if time.monotonic() - started < 3 * idle_ms / 1000:
                    time.sleep(0.02)
