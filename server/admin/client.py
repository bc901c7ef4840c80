"""A blocking Kafka client over plain sockets, coded by `wire/`.

One connection per broker node, opened on first use. Versions are negotiated as Kafka's
NetworkClient does: ApiVersions first (v3, falling back to v0 on UNSUPPORTED_VERSION, KIP-511),
then each request goes at the highest version both sides know.
"""

from __future__ import annotations

import socket
import struct
import time
from typing import Any, Callable, TypeVar

from ottla.server.admin.sasl import MECHANISMS, SCRAM, SaslError, SaslLogin, ScramClient
from ottla.wire.api import DECLARED_VERSIONS, ApiKey
from ottla.wire.errors import ErrorCode, MalformedFrame
from ottla.wire.protocol import decode_response, encode_request

_SIZE = struct.Struct(">i")
T = TypeVar("T")


class ClientError(Exception):
    """Anything that ends a command: the message is the one line the user sees."""


class RetriableError(ClientError):
    """A Kafka error that goes away by itself, such as a group coordinator still loading."""


# Errors Kafka marks RetriableException that a one-shot tool meets: the offsets topic is
# created and loaded on first use of a group; an auto-created topic has no leader at first.
_RETRIABLE = {
    ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
    ErrorCode.COORDINATOR_NOT_AVAILABLE,
    ErrorCode.NOT_COORDINATOR,
    ErrorCode.LEADER_NOT_AVAILABLE,
}
_RETRY_BACKOFF = 0.1


def kafka_error(code: int, message: str | None = None, subject: str = "") -> ClientError:
    """A ClientError naming Kafka's error (e.g. TOPIC_ALREADY_EXISTS) and the broker's message."""
    try:
        name = ErrorCode(code).name
    except ValueError:
        name = f"error {code}"
    text = f"{subject}: {name}" if subject else name
    kind = RetriableError if code in _RETRIABLE else ClientError
    return kind(f"{text} ({message})" if message else text)


def retrying(timeout: float, attempt: Callable[[], T]) -> T:
    """`attempt()` again after each RetriableError, until `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return attempt()
        except RetriableError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(_RETRY_BACKOFF)


def parse_address(address: str) -> tuple[str, int]:
    host, _, port = address.strip().rpartition(":")
    if not host or not port.isdigit():
        raise ClientError(f"bad broker address {address!r}, expected host:port")
    return host.strip("[]"), int(port)


class Connection:
    def __init__(self, host: str, port: int, timeout: float, client_id: str, sasl: SaslLogin | None = None) -> None:
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise ClientError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from None
        self.address = f"{host}:{port}"
        self.client_id = client_id
        self.correlation_id = 0
        self.versions = self._negotiate()
        if sasl is not None:
            self._authenticate(sasl)

    def _authenticate(self, login: SaslLogin) -> None:
        """SaslHandshake v1, then SaslAuthenticate for each token, as Kafka's
        SaslClientAuthenticator sends them; a refusal is a ClientError naming no secret."""
        if login.mechanism not in MECHANISMS:
            raise ClientError(f"SASL mechanism {login.mechanism} is not one this client speaks ({', '.join(MECHANISMS)})")
        handshake = self.request(ApiKey.SASL_HANDSHAKE, self.version(ApiKey.SASL_HANDSHAKE, 1), {"mechanism": login.mechanism})
        if handshake["error_code"]:
            enabled = ", ".join(handshake["mechanisms"]) or "none"
            raise kafka_error(handshake["error_code"], f"the listener's mechanisms: {enabled}", f"SASL {login.mechanism} at {self.address}")
        version = self.version(ApiKey.SASL_AUTHENTICATE)
        if login.mechanism not in SCRAM:
            self._sasl_token(version, f"\0{login.username}\0{login.password}".encode())
            return
        client = ScramClient(login.mechanism, login.username, login.password)
        try:
            client.verify(self._sasl_token(version, client.final(self._sasl_token(version, client.first()))))
        except SaslError as exc:
            raise ClientError(f"SASL {login.mechanism} at {self.address}: {exc}") from None

    def _sasl_token(self, version: int, token: bytes) -> bytes:
        response = self.request(ApiKey.SASL_AUTHENTICATE, version, {"auth_bytes": token})
        if response["error_code"]:
            raise kafka_error(response["error_code"], response["error_message"], f"SASL login at {self.address}")
        return bytes(response["auth_bytes"])

    def _negotiate(self) -> dict[int, tuple[int, int]]:
        body = {"client_software_name": "ottla-cli", "client_software_version": "1"}
        response = self.request(ApiKey.API_VERSIONS, 3, body)
        if response["error_code"] == ErrorCode.UNSUPPORTED_VERSION:
            response = self.request(ApiKey.API_VERSIONS, 0, {})
        if response["error_code"]:
            raise kafka_error(response["error_code"], subject=f"ApiVersions to {self.address}")
        return {entry["api_key"]: (entry["min_version"], entry["max_version"]) for entry in response["api_keys"]}

    def version(self, api: ApiKey, highest: int | None = None) -> int:
        """The highest version both sides speak (capped at `highest`)."""
        ours_low, ours_high = DECLARED_VERSIONS[api]
        if highest is not None:
            ours_high = min(ours_high, highest)
        theirs = self.versions.get(api)
        if theirs is None or max(ours_low, theirs[0]) > min(ours_high, theirs[1]):
            raise ClientError(f"the broker at {self.address} does not support {api.name}")
        return min(ours_high, theirs[1])

    def request(self, api: ApiKey, version: int, body: dict[str, Any]) -> dict[str, Any]:
        self.correlation_id += 1
        try:
            self.sock.sendall(encode_request(api, version, self.correlation_id, body, client_id=self.client_id))
            (size,) = _SIZE.unpack(self._read(4))
            frame = self._read(size)
        except (OSError, ConnectionError) as exc:
            raise ClientError(f"{api.name} to {self.address} failed: {exc}") from None
        try:
            correlation_id, response = decode_response(api, version, frame)
        except MalformedFrame as exc:
            raise ClientError(f"cannot decode {self.address}'s answer to {api.name} v{version}: {exc}") from None
        if correlation_id != self.correlation_id:
            raise ClientError(f"{self.address} answered correlation id {correlation_id}, expected {self.correlation_id}")
        return response

    def _read(self, size: int) -> bytes:
        chunks = []
        while size:
            chunk = self.sock.recv(min(size, 1 << 20))
            if not chunk:
                raise ConnectionError("connection closed by the broker")
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        self.sock.close()


class KafkaClient:
    """Talks to a cluster through its bootstrap address; `node(id)` reaches a given broker."""

    def __init__(self, bootstrap: str, timeout: float = 30.0, client_id: str = "ottla-cli", sasl: SaslLogin | None = None) -> None:
        self.timeout = timeout
        self.client_id = client_id
        self.sasl = sasl
        addresses = [parse_address(a) for a in bootstrap.split(",") if a.strip()]
        if not addresses:
            raise ClientError("no bootstrap address given")
        failure: ClientError | None = None
        for host, port in addresses:
            try:
                self.bootstrap = Connection(host, port, timeout, client_id, sasl)
                break
            except ClientError as exc:
                failure = exc
        else:
            assert failure is not None
            raise failure
        self._nodes: dict[int, Connection] = {}
        self._addresses: dict[int, tuple[str, int]] = {}

    def __enter__(self) -> "KafkaClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.bootstrap.close()
        for connection in self._nodes.values():
            connection.close()

    def call(self, api: ApiKey, body: dict[str, Any], *, node: int | None = None, highest: int | None = None) -> tuple[int, dict[str, Any]]:
        """Send to the bootstrap broker (or node `node`); returns (version used, response)."""
        connection = self.bootstrap if node is None else self.node(node)
        version = connection.version(api, highest)
        return version, connection.request(api, version, body)

    def node(self, node_id: int) -> Connection:
        connection = self._nodes.get(node_id)
        if connection is None:
            if node_id not in self._addresses:
                self.metadata([])
            if node_id not in self._addresses:
                raise ClientError(f"broker {node_id} is not in the cluster metadata")
            connection = Connection(*self._addresses[node_id], self.timeout, self.client_id, self.sasl)
            self._nodes[node_id] = connection
        return connection

    def metadata(self, topics: list[str] | None, allow_auto_topic_creation: bool = False) -> dict[str, Any]:
        """Metadata for `topics` (None: all); remembers broker addresses."""
        version = self.bootstrap.version(ApiKey.METADATA)
        wanted: list[dict[str, Any]] | None
        if topics is None:
            wanted = None if version >= 1 else []
        else:
            wanted = [{"name": name, "topic_id": bytes(16)} for name in topics]
        body = {"topics": wanted, "allow_auto_topic_creation": allow_auto_topic_creation, "include_topic_authorized_operations": False}
        response = self.bootstrap.request(ApiKey.METADATA, version, body)
        for broker in response["brokers"]:
            self._addresses[broker["node_id"]] = (broker["host"], broker["port"])
        return response

    def coordinator(self, group: str) -> int:
        """The node id of `group`'s coordinator (FindCoordinator; v4+ is batched, KIP-699)."""
        return retrying(self.timeout, lambda: self._find_coordinator(group))

    def _find_coordinator(self, group: str) -> int:
        version = self.bootstrap.version(ApiKey.FIND_COORDINATOR)
        if version >= 4:
            response = self.bootstrap.request(ApiKey.FIND_COORDINATOR, version, {"key_type": 0, "coordinator_keys": [group]})
            entry = response["coordinators"][0]
        else:
            entry = self.bootstrap.request(ApiKey.FIND_COORDINATOR, version, {"key": group, "key_type": 0})
        if entry["error_code"]:
            raise kafka_error(entry["error_code"], entry.get("error_message"), f"coordinator of group {group}")
        self._addresses[entry["node_id"]] = (entry["host"], entry["port"])
        return entry["node_id"]
