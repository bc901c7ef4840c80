"""Requests one broker sends another, as Kafka's inter-broker NetworkClient does: one
connection per destination broker, requests pipelined on it and matched to their answers by
correlation id. Only brokers in separate processes (over one database) need it; an
in-process cluster calls its shared coordinators instead.

A broker is reached on the inter-broker listener, as Kafka picks it: `inter.broker.listener.name`,
else the listener named by `security.inter.broker.protocol` (PLAINTEXT by default), else the
first listener. The connection speaks that listener's protocol: TLS from the listener's own
ssl.* settings (ottla.server.security.tls.client_context), and on a SASL listener a
SaslHandshake and SaslAuthenticate exchange with `sasl.mechanism.inter.broker.protocol` as the
user of the listener's JAAS config for it (ottla.server.security.sasl.client), before any
request. The peer's authorizer then checks that principal as Kafka's does (CLUSTER_ACTION: a
super user, or an ACL). Settings a broker cannot log in with fail each request as a refused
connection would, with one error logged that names the settings.

A connection that fails fails every request waiting on it (ConnectionError); the next
request opens a new one, so a peer that restarts is reached again without any bookkeeping.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import ssl
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.framing import SIZE
from ottla.wire.protocol import decode_response, encode_request

if TYPE_CHECKING:
    from ottla.server.cluster.state import ClusterState
    from ottla.server.config import BrokerConfig
    from ottla.server.security.sasl.client import SaslLogin

log = logging.getLogger(__name__)

# The client id a broker's requests carry, as Kafka's "broker-N-txn-marker-sender"-style ids.
_CLIENT_ID = "ottla-broker"
# A peer that does not answer within this is taken for gone (Kafka's request.timeout.ms default).
REQUEST_TIMEOUT_S = 30.0
# A SASL session the peer bounds (connections.max.reauth.ms) is left for a new connection once
# this share of its lifetime has passed, before the peer would close it under a request.
_SESSION_SHARE = 0.85
# Kafka's SaslHandshake and SaslAuthenticate versions a broker's own client sends.
_HANDSHAKE_VERSION, _AUTHENTICATE_VERSION = 1, 2


@dataclass(slots=True, frozen=True)
class PeerSecurity:
    """How this broker's connections to the others are made: on which listener, with which TLS
    context (None: plain TCP) and SASL login (None: no SASL exchange); `problem`, when set,
    says why no connection can be made (settings the broker cannot log in with)."""

    listener: str | None
    tls: ssl.SSLContext | None = None
    login: SaslLogin | None = None
    problem: str | None = None


def inter_broker_security(config: BrokerConfig) -> PeerSecurity:
    """The inter-broker listener of `config` and what connecting to it takes."""
    from ottla.server.security.listeners import ListenerError, configured_listeners, inter_broker_listener

    try:
        listener = inter_broker_listener(config, configured_listeners(config))
    except ListenerError as exc:
        return PeerSecurity(None, problem=str(exc))
    if listener is None:
        name = str(config.value("inter.broker.listener.name")).upper()
        return PeerSecurity(name, problem=f"the inter-broker listener {name} is not among the listeners")
    try:
        tls = None
        if listener.protocol.uses_tls:
            from ottla.server.security.tls import client_context

            tls = client_context(config, listener)
        login = None
        if listener.protocol.uses_sasl:
            from ottla.server.security.sasl.client import inter_broker_login

            login = inter_broker_login(lambda setting: config.listener_value(listener.name, setting), listener.name)
    except ValueError as exc:  # TlsConfigError, LoginConfigError: messages name settings, never values
        return PeerSecurity(listener.name, problem=str(exc))
    return PeerSecurity(listener.name, tls, login)


class PeerConnection:
    """One connection to one broker: requests written in order, answers read by one task and
    handed to the request awaiting each correlation id."""

    def __init__(self, host: str, port: int, client_id: str, security: PeerSecurity | None = None) -> None:
        self.host = host
        self.port = port
        self._client_id = client_id
        self._security = security or PeerSecurity(None)
        # When the SASL session of the open connection is to be left (monotonic; inf: never).
        self._session_ends = float("inf")
        # The last TLS or login failure logged, so that one failing alike is logged once.
        self._refusal: str | None = None
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
            if time.monotonic() < self._session_ends:
                return self._writer
            self._writer.close()  # its session ends soon: requests already sent are answered, or fail and are retried
            self._writer = None
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
        connecting = self._connecting
        try:
            return await asyncio.shield(connecting)
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None

    async def _connect(self) -> asyncio.StreamWriter:
        security = self._security
        if security.problem is not None:
            raise ConnectionError(security.problem)
        reader, writer = await asyncio.wait_for(self._open(security), REQUEST_TIMEOUT_S)
        self._writer = writer
        self._reading = asyncio.ensure_future(self._read(reader, writer))
        return writer

    async def _open(self, security: PeerSecurity) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection through TLS and the SASL login `security` asks for. A TLS handshake or
        a login that fails is logged (once while it keeps failing alike): it is a setting to
        fix, not a peer away."""
        tls = security.tls
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port, ssl=tls, server_hostname=self.host if tls is not None else None)
        except ssl.SSLError as exc:
            raise self._refused(f"TLS with {self.host}:{self.port} failed: {exc}") from None
        self._session_ends = float("inf")
        if security.login is not None:
            try:
                await self._authenticate(reader, writer, security.login)
            except BaseException:
                writer.close()
                raise
        self._refusal = None
        return reader, writer

    def _refused(self, message: str) -> ConnectionError:
        if message != self._refusal:
            log.warning("cannot connect to broker at %s:%d: %s", self.host, self.port, message)
            self._refusal = message
        return ConnectionError(message)

    async def _authenticate(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, login: SaslLogin) -> None:
        """SaslHandshake, then SaslAuthenticate until the exchange is done, as Kafka's
        SaslClientAuthenticator sends them; ConnectionError (naming no secret) when refused."""
        from ottla.server.security.sasl.errors import AuthenticationFailed

        where = f"{self.host}:{self.port}"
        handshake = await self._exchange(reader, writer, ApiKey.SASL_HANDSHAKE, _HANDSHAKE_VERSION, {"mechanism": login.mechanism})
        if handshake["error_code"]:
            raise self._refused(
                f"{where} refused SASL {login.mechanism} ({ErrorCode(handshake['error_code']).name}); "
                f"it enables {', '.join(handshake['mechanisms']) or 'none'}"
            )
        exchange = login.exchange()
        try:
            token = exchange.respond(None)
            while token is not None:
                answer = await self._exchange(reader, writer, ApiKey.SASL_AUTHENTICATE, _AUTHENTICATE_VERSION, {"auth_bytes": token})
                if answer["error_code"]:
                    raise self._refused(
                        f"{where} refused the login of {login.username} with {login.mechanism} "
                        f"({ErrorCode(answer['error_code']).name}: {answer['error_message']})"
                    )
                if answer["session_lifetime_ms"] > 0:
                    self._session_ends = time.monotonic() + answer["session_lifetime_ms"] / 1000 * _SESSION_SHARE
                token = exchange.respond(bytes(answer["auth_bytes"]))
        except AuthenticationFailed as exc:
            raise self._refused(f"the SASL {login.mechanism} login to {where}: {exc}") from None

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, api_key: int, version: int, body: dict[str, Any]) -> dict[str, Any]:
        """One request and its answer on a connection no reading task serves yet."""
        correlation_id = next(self._correlation) & 0x7FFFFFFF
        writer.write(encode_request(api_key, version, correlation_id, body, self._client_id))
        (size,) = SIZE.unpack(await reader.readexactly(4))
        answered, answer = decode_response(api_key, version, await reader.readexactly(size))
        if answered != correlation_id:
            raise ConnectionError(f"{self.host}:{self.port} answered correlation id {answered} to {correlation_id}")
        return answer

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
    """This broker's connections to the others, opened on first use, one per broker, each on
    the inter-broker listener as `security` says."""

    def __init__(self, cluster: ClusterState, security: PeerSecurity, node_id: int) -> None:
        self._cluster = cluster
        self._security = security
        self._client_id = f"{_CLIENT_ID}-{node_id}"
        self._connections: dict[int, PeerConnection] = {}
        if security.problem is not None:
            log.error("this broker cannot connect to the other brokers, so cannot verify transactions they coordinate: %s", security.problem)

    def connection(self, node_id: int) -> PeerConnection:
        """The connection to `node_id`; ConnectionError when the cluster has no endpoint for it
        on the inter-broker listener."""
        endpoints = self._cluster.endpoints.get(node_id)
        if not endpoints:
            raise ConnectionError(f"broker {node_id} is not live")
        endpoint = endpoints.get(self._security.listener or "")
        if endpoint is None:
            raise ConnectionError(f"broker {node_id} has no listener {self._security.listener}")
        known = self._connections.get(node_id)
        if known is not None and (known.host, known.port) == (endpoint.host, endpoint.port):
            return known
        if known is not None:
            known.close()
        connection = self._connections[node_id] = PeerConnection(endpoint.host, endpoint.port, self._client_id, self._security)
        return connection


# One Peers per cluster state (a broker run has one), made when first asked.
_PEERS: weakref.WeakKeyDictionary[ClusterState, Peers] = weakref.WeakKeyDictionary()


def peers_of(cluster: ClusterState, config: BrokerConfig, node_id: int) -> Peers:
    peers = _PEERS.get(cluster)
    if peers is None:
        peers = _PEERS[cluster] = Peers(cluster, inter_broker_security(config), node_id)
    return peers
