"""Requests one broker sends another, as Kafka's inter-broker NetworkClient does: one
connection per destination broker, requests pipelined on it and matched to their answers by
correlation id. Only brokers in separate processes (over one database) need it; an
in-process cluster calls its shared coordinators instead.

A broker is reached on the inter-broker listener (`inter.broker.listener.name`, else the
PLAINTEXT listener, else its first). The connection carries no SASL handshake or TLS yet: a
cluster whose inter-broker listener needs them cannot ask its peers, and its transactional
writes to a partition another broker's coordinator does not hold are answered with the
retriable NOT_ENOUGH_REPLICAS until it can.

A connection that fails fails every request waiting on it (ConnectionError); the next
request opens a new one, so a peer that restarts is reached again without any bookkeeping.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import weakref
from typing import TYPE_CHECKING, Any

from ottla.wire.framing import SIZE
from ottla.wire.protocol import decode_response, encode_request

if TYPE_CHECKING:
    from ottla.server.cluster.state import ClusterState
    from ottla.server.config import BrokerConfig

log = logging.getLogger(__name__)

# The client id a broker's requests carry, as Kafka's "broker-N-txn-marker-sender"-style ids.
_CLIENT_ID = "ottla-broker"
# A peer that does not answer within this is taken for gone (Kafka's request.timeout.ms default).
REQUEST_TIMEOUT_S = 30.0


class PeerConnection:
    """One connection to one broker: requests written in order, answers read by one task and
    handed to the request awaiting each correlation id."""

    def __init__(self, host: str, port: int, client_id: str) -> None:
        self.host = host
        self.port = port
        self._client_id = client_id
        self._writer: asyncio.StreamWriter | None = None
        self._connecting: asyncio.Task[asyncio.StreamWriter] | None = None
        self._reading: asyncio.Task[None] | None = None
        # correlation id -> (api key, version, the future its answer resolves)
        self._waiting: dict[int, tuple[int, int, asyncio.Future[dict[str, Any]]]] = {}
        self._correlation = itertools.count(1)

    async def request(self, api_key: int, version: int, body: dict[str, Any], timeout: float = REQUEST_TIMEOUT_S) -> dict[str, Any]:
        """The peer's answer to one request; ConnectionError when the connection fails first,
        TimeoutError when no answer comes within `timeout`."""
        writer = await asyncio.wait_for(self._connected(), timeout)
        correlation_id = next(self._correlation) & 0x7FFFFFFF
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[correlation_id] = (api_key, version, answer)
        try:
            writer.write(encode_request(api_key, version, correlation_id, body, self._client_id))
            return await asyncio.wait_for(asyncio.shield(answer), timeout)
        finally:
            self._waiting.pop(correlation_id, None)

    async def _connected(self) -> asyncio.StreamWriter:
        if self._writer is not None and not self._writer.is_closing():
            return self._writer
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
        connecting = self._connecting
        try:
            return await asyncio.shield(connecting)
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None

    async def _connect(self) -> asyncio.StreamWriter:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self._writer = writer
        self._reading = asyncio.ensure_future(self._read(reader, writer))
        return writer

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        failure: BaseException = ConnectionError(f"the connection to {self.host}:{self.port} closed")
        try:
            while True:
                (size,) = SIZE.unpack(await reader.readexactly(4))
                frame = await reader.readexactly(size)
                (correlation_id,) = SIZE.unpack_from(frame)
                waiting = self._waiting.get(correlation_id)
                if waiting is None:
                    continue  # its request timed out and left
                api_key, version, answer = waiting
                if not answer.done():
                    answer.set_result(decode_response(api_key, version, frame)[1])
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            failure = ConnectionError(f"the connection to {self.host}:{self.port} failed: {exc!r}")
        finally:
            if self._writer is writer:
                self._writer = None
            writer.close()
            for _, _, answer in list(self._waiting.values()):
                if not answer.done():
                    answer.set_exception(failure)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._reading is not None:
            self._reading.cancel()


class Peers:
    """This broker's connections to the others, opened on first use, one per broker."""

    def __init__(self, cluster: ClusterState, listener: str | None, node_id: int) -> None:
        self._cluster = cluster
        self._listener = listener
        self._client_id = f"{_CLIENT_ID}-{node_id}"
        self._connections: dict[int, PeerConnection] = {}

    def connection(self, node_id: int) -> PeerConnection:
        """The connection to `node_id`; ConnectionError when the cluster has no endpoint for it."""
        endpoints = self._cluster.endpoints.get(node_id)
        if not endpoints:
            raise ConnectionError(f"broker {node_id} is not live")
        endpoint = endpoints.get(self._listener or "PLAINTEXT") or endpoints.get("PLAINTEXT") or next(iter(endpoints.values()))
        known = self._connections.get(node_id)
        if known is not None and (known.host, known.port) == (endpoint.host, endpoint.port):
            return known
        if known is not None:
            known.close()
        connection = self._connections[node_id] = PeerConnection(endpoint.host, endpoint.port, self._client_id)
        return connection


# One Peers per cluster state (a broker run has one), made when first asked.
_PEERS: weakref.WeakKeyDictionary[ClusterState, Peers] = weakref.WeakKeyDictionary()


def peers_of(cluster: ClusterState, config: BrokerConfig, node_id: int) -> Peers:
    peers = _PEERS.get(cluster)
    if peers is None:
        listener = config.value("inter.broker.listener.name")
        peers = _PEERS[cluster] = Peers(cluster, None if listener is None else str(listener).upper(), node_id)
    return peers
