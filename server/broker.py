"""The broker: a listener, the log, and what connections share.

`Broker` is also the embedding API: `async with Broker(port=0, data_dir=None) as b:`
runs one in the current event loop, with settings under Kafka's names.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import socket
import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from ottla.server.broker_configs import BrokerConfigs
from ottla.server.config import BrokerConfig
from ottla.server.connection import Connection
from ottla.server.context import ANONYMOUS, BrokerServices, Node
from ottla.server.features import FinalizedFeatures
from ottla.server.fetch_sessions import FetchSessionCache
from ottla.server.dispatch import Dispatcher
from ottla.server.faults import Faults
from ottla.server.groups import GroupCoordinator, open_coordinator
from ottla.server.handlers import HANDLERS
from ottla.server.hooks import TestHooks
from ottla.server.log_maintenance import LogMaintenance
from ottla.server.memory import MemoryRelease
from ottla.server.metrics import BrokerMetrics
from ottla.server.security.authorizer import Authorizer
from ottla.server.security.quotas import ClientQuotas, ConnectionRates
from ottla.server.security.tokens import DelegationTokens
from ottla.server.security.listeners import Listener, ListenerError, check_served, configured_listeners
from ottla.server.security.tls import HANDSHAKE_TIMEOUT_S, PrincipalMapper, TlsAcceptor, tls_acceptance
from ottla.server.security.sasl import SaslAuthenticator, SaslConfigError, SaslSettings, ScramCredentialStore, listener_sasl_settings, parse_add_scram
from ottla.server.share import ShareCoordinator, open_share_coordinator
from ottla.server.txn import TransactionCoordinator, open_transaction_coordinator
from ottla.storage import Storage

if TYPE_CHECKING:
    from ottla.server.http import HttpListener

log = logging.getLogger("ottla.broker")

_UNSET = object()


def _ignore_sendfile_close_race(loop: asyncio.AbstractEventLoop) -> None:
    """Keep asyncio's selector transport from logging a traceback whenever a client goes away
    during a sendfile: its `_call_connection_lost` sets the sendfile's already-settled waiter
    again and raises InvalidStateError, after it has closed the socket and told the protocol.
    Nothing is left undone, so the traceback is noise; every other exception passes on."""
    previous = loop.get_exception_handler()
    if getattr(previous, "ignores_sendfile_close_race", False):
        return

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        callback = getattr(context.get("handle"), "_callback", None)
        if isinstance(context.get("exception"), asyncio.InvalidStateError) and getattr(callback, "__name__", "") == "_call_connection_lost":
            log.debug("client gone during a sendfile: %s", context.get("message"))
            return
        if previous is None:
            loop.default_exception_handler(context)
        else:
            previous(loop, context)

    handler.ignores_sendfile_close_race = True  # type: ignore[attr-defined]
    loop.set_exception_handler(handler)


class Broker:
    def __init__(
        self,
        config: BrokerConfig | None = None,
        *,
        port: int | None = None,
        data_dir: Any = _UNSET,
        test_hooks: TestHooks | None = None,
        add_scram: Iterable[str] = (),
        **settings: Any,
    ) -> None:
        """Settings by Kafka name (`num_partitions=3` may be spelt with underscores);
        `test_hooks` only from `ottla.testing`."""
        # A name given with dots is taken as it is: listener names hold underscores (SASL_SSL).
        overrides = {name if "." in name else name.replace("_", "."): value for name, value in settings.items()}
        if port is not None:
            overrides["port"] = port
        if data_dir is not _UNSET:
            overrides["data.dir"] = None if data_dir is None else str(data_dir)
        if config is None:
            config = BrokerConfig.from_settings(overrides)
        else:
            config = config.updated(overrides)
        # The settings given at start-up; `config` is what runs: them and the dynamic broker configs.
        self.static_config = config
        self.config = config
        self.broker_configs: BrokerConfigs | None = None
        self.node_id = config.node_id
        self.test_hooks = test_hooks or TestHooks()
        # SCRAM credentials set at each start, as `kafka-storage format --add-scram` writes them.
        self._add_scram = [parse_add_scram(item) for item in add_scram]
        self._sasl_settings: dict[str, SaslSettings] = {}
        self.connections: set[Connection] = set()
        self._connections_per_ip: dict[str, int] = {}
        self._idle_sweep: asyncio.TimerHandle | None = None
        self._memory_release = MemoryRelease()
        self.storage: Storage | None = None
        self.maintenance: LogMaintenance | None = None
        self.groups: GroupCoordinator | None = None
        self.txn: TransactionCoordinator | None = None
        self.share: ShareCoordinator | None = None
        # Connections accepted per second against max.connection.creation.rate and IP quotas.
        self._connection_rates: ConnectionRates | None = None
        # The first listener's bound port (what `bootstrap_servers` names) and every listener's.
        self.port: int | None = None
        self.bound_ports: dict[str, int] = {}
        self.listeners: tuple[Listener, ...] = ()
        self._servers: list[asyncio.Server] = []
        # Per TLS listener, its SSLContext and, on SSL listeners, the certificate principal mapper.
        self._tls: dict[str, tuple[ssl.SSLContext, PrincipalMapper | None]] = {}
        self._handshakes: set[asyncio.Task[None]] = set()
        self._data_waiters: dict[tuple[str, int], set[asyncio.Future[None]]] = {}
        # Counts notify_data calls: a fetch compares it across its read and its park.
        self.data_version = 0
        # Counters of this process, kept across restarts; /metrics reads them (server/http/).
        self.metrics = BrokerMetrics()
        self.dispatcher = Dispatcher(HANDLERS, self.metrics)
        # Faults on demand (ottla.server.faults), kept across restarts.
        self.faults = Faults()
        self.faults.arm(self.dispatcher)
        self.test_hooks.set_faults(self.faults)
        self.http: HttpListener | None = None
        self.services: BrokerServices | None = None

    @property
    def data_dir(self) -> Path | None:
        value = self.config.data_dir
        return None if value is None else Path(value)

    @property
    def advertised_host(self) -> str:
        return self.config.advertised_host or self.config.host

    @property
    def bootstrap_servers(self) -> str:
        """The first listener's advertised address."""
        return f"{self.advertised_host}:{self.port}"

    def advertised_listeners(self) -> str:
        """Every listener as Kafka writes them, NAME://HOST:PORT with the bound ports."""
        return ",".join(f"{name}://{node.host}:{node.port}" for name, node in self._listener_nodes().items())

    def _listener_nodes(self) -> dict[str, Node]:
        return {
            listener.name: Node(self.node_id, listener.advertised_host, listener.advertised_port or self.bound_ports[listener.name])
            for listener in self.listeners
        }

    async def start(self) -> None:
        """Listen and serve; ListenerError (before anything is opened) for listeners that
        cannot be served as configured, OSError for an address or a directory that cannot be used."""
        listeners = configured_listeners(self.static_config)
        check_served(listeners)
        self._tls = {listener.name: tls_acceptance(self.static_config, listener) for listener in listeners if listener.protocol.uses_tls}
        try:
            self._sasl_settings = {
                listener.name: listener_sasl_settings(functools.partial(self.static_config.listener_value, listener.name), listener.name)
                for listener in listeners
                if listener.protocol.uses_sasl
            }
        except SaslConfigError as exc:
            raise ListenerError(str(exc)) from None
        data_dir = self.data_dir
        if data_dir is not None:
            data_dir.mkdir(parents=True, exist_ok=True)
        self.broker_configs = BrokerConfigs(self.static_config, data_dir)
        self.broker_configs.on_change = self._reconfigure
        self.config = self.broker_configs.config
        config = self.config
        authorizer = Authorizer.from_settings(
            config.value("authorizer.class.name") or "", config.value("super.users"), config.value("allow.everyone.if.no.acl.found"), data_dir
        )
        self.storage = Storage.open(data_dir, defaults=self.broker_configs.topic_defaults())
        self.metrics.topic_by_id = self.storage.topic_by_id
        self.maintenance = LogMaintenance(self.storage, self.config)
        self.maintenance.start()
        self.groups = open_coordinator(self.storage, self.config, asyncio.get_running_loop())
        self.txn = open_transaction_coordinator(self.storage, self.groups, self.config, asyncio.get_running_loop(), self.notify_data)
        self.share = open_share_coordinator(self.storage, self.config, asyncio.get_running_loop(), self.notify_data,
                                            self.groups.configs.value)
        loop = asyncio.get_running_loop()
        _ignore_sendfile_close_race(loop)
        self.listeners = listeners
        for listener in listeners:
            # A restart keeps the ports a first start picked for port 0.
            port = self.bound_ports.get(listener.name) or listener.port
            server = await loop.create_server(
                self._protocol_factory(listener), listener.host, port, reuse_address=True, backlog=1024, start_serving=False
            )
            self._servers.append(server)
            for sock in server.sockets:
                self._set_buffer_sizes(sock)
            self.bound_ports[listener.name] = server.sockets[0].getsockname()[1]
        self.port = self.bound_ports[listeners[0].name]
        listener_nodes = self._listener_nodes()
        self.services = BrokerServices(
            node=listener_nodes[listeners[0].name],
            listener_nodes=listener_nodes,
            config=self.config,
            data_dir=data_dir,
            storage=self.storage,
            features=FinalizedFeatures.open(data_dir),
            groups=self.groups,
            txn=self.txn,
            share=self.share,
            wakeups=self,
            broker_configs=self.broker_configs,
            fetch_sessions=FetchSessionCache(self.config.max_incremental_fetch_session_cache_slots),
            supported_apis=self.dispatcher.supported(),
            drop_produce_response=None,
            authorizer=authorizer,
            scram_credentials=self._open_scram_credentials(data_dir),
            quotas=self._open_quotas(data_dir),
            tokens=DelegationTokens.open(
                data_dir,
                config.value("delegation.token.secret.key"),
                config.value("delegation.token.max.lifetime.ms"),
                config.value("delegation.token.expiry.time.ms"),
            ),
        )
        for server in self._servers:
            await server.start_serving()
        self.metrics.start_lag_probe(loop)
        if self.config.http_port >= 0:
            from ottla.server.http import HttpListener

            self.http = HttpListener(self)
            self.http.start()
        self._schedule_idle_sweep()
        self._memory_release.start()
        for listener in listeners:
            log.info("listening on %s:%s (listener %s, %s)", listener.host, self.bound_ports[listener.name], listener.name, listener.protocol.value)

    def _protocol_factory(self, listener: Listener) -> Callable[[], asyncio.BaseProtocol]:
        """What serves a new socket of `listener`: its Connection, behind a TLS handshake on
        SSL and SASL_SSL listeners."""
        tls = self._tls.get(listener.name)
        if tls is None:
            return functools.partial(self._accept, listener)
        context, mapper = tls
        idle = self.static_config.connections_max_idle_ms / 1000
        timeout = min(HANDSHAKE_TIMEOUT_S, idle) if idle > 0 else HANDSHAKE_TIMEOUT_S
        accept = functools.partial(self._accept, listener)
        return lambda: TlsAcceptor(context, timeout, mapper, accept, ANONYMOUS, self._handshakes)

    def _accept(self, listener: Listener, principal: str = ANONYMOUS) -> Connection:
        assert self.services is not None, "connections are accepted only while the broker runs"
        sasl_settings = self._sasl_settings.get(listener.name)
        sasl = None if sasl_settings is None else SaslAuthenticator(sasl_settings, self.services.scram_credentials, self.services.tokens.scram)
        return Connection(self.dispatcher, self.services, self, listener.name, listener.protocol, principal, sasl=sasl)

    def _open_quotas(self, data_dir: Path | None) -> ClientQuotas:
        """The client quotas, enforced by the dispatcher while any is set and by `admit`."""
        quotas = ClientQuotas.open(data_dir, self.config.value("quota.window.num"), self.config.value("quota.window.size.seconds"))
        quotas.on_change = self._quotas_changed
        self._quotas_changed(quotas)
        self._connection_rates = ConnectionRates(quotas, self.config.value("max.connection.creation.rate"))
        return quotas

    def _quotas_changed(self, quotas: ClientQuotas) -> None:
        self.dispatcher.quotas = quotas if quotas.active else None

    def _open_scram_credentials(self, data_dir: Path | None) -> ScramCredentialStore:
        store = ScramCredentialStore.open(data_dir)
        if self._add_scram:
            store.apply([], self._add_scram)
        return store

    def _set_buffer_sizes(self, listener: socket.socket) -> None:
        """Kafka's socket.send/receive.buffer.bytes, on the listener so that every connection
        has them from its handshake on (the receive window is scaled to the buffer then). A
        client that stops reading is backlogged once ~this much is in flight, not megabytes."""
        for option, size in ((socket.SO_SNDBUF, self.config.socket_send_buffer_bytes), (socket.SO_RCVBUF, self.config.socket_receive_buffer_bytes)):
            if size != -1:
                listener.setsockopt(socket.SOL_SOCKET, option, size)

    async def stop(self) -> None:
        if self._idle_sweep is not None:
            self._idle_sweep.cancel()
            self._idle_sweep = None
        self._memory_release.stop()
        self.metrics.stop_lag_probe()
        if self.http is not None:
            await self.http.stop()
            self.http = None
        for handshake in list(self._handshakes):
            handshake.cancel()
        if self._servers:
            for server in self._servers:
                server.close()
            for connection in list(self.connections):
                if connection.transport is not None:
                    connection.transport.abort()
            for server in self._servers:
                await server.wait_closed()
            self._servers = []
        self.services = None
        for waiters in self._data_waiters.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.cancel()
        self._data_waiters.clear()
        if self.share is not None:
            self.share.close()
            self.share = None
        if self.txn is not None:
            self.txn.close()
            self.txn = None
        if self.groups is not None:
            self.groups.close()
            self.groups = None
        if self.maintenance is not None:
            self.maintenance.stop()
            self.maintenance = None
        if self.storage is not None:
            self.storage.close()
            self.storage = None

    async def restart(self) -> None:
        """Stop and start again on the same ports (`bound_ports`) with the same data."""
        await self.stop()
        await self.start()

    def _reconfigure(self, config: BrokerConfig) -> None:
        """Run with changed dynamic broker configs from now on, without a restart: new
        connections and every open one see them, topics without an override take the new
        defaults, and the log tasks and the transaction coordinator their new settings."""
        self.config = config
        if self.services is not None:
            self.services = dataclasses.replace(self.services, config=config)
            for connection in self.connections:
                connection.reconfigure(self.services)
        if self.storage is not None and self.broker_configs is not None:
            self.storage.set_defaults(self.broker_configs.topic_defaults())
        if self._connection_rates is not None:
            self._connection_rates.broker_rate = config.value("max.connection.creation.rate")
        if self.maintenance is not None:
            self.maintenance.reconfigure(config)
        if self.txn is not None:
            self.txn.config = dataclasses.replace(self.txn.config, producer_id_expiration_ms=config.producer_id_expiration_ms)

    def create_topic(self, name: str, partitions: int = 1, **configs: Any) -> None:
        """Create a topic; configs by Kafka name, underscores for dots (`retention_ms=1000`)."""
        assert self.storage is not None, "the broker is not running"
        self.storage.create_topic(name, partitions, {key.replace("_", "."): str(value) for key, value in configs.items()})

    async def __aenter__(self) -> "Broker":
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def admit(self, connection: Connection) -> str | None:
        """Count a new connection in, or say which limit refuses it (Kafka closes it at once)."""
        if len(self.connections) >= self.config.max_connections:
            return f"max.connections ({self.config.max_connections}) reached"
        per_ip = self._connections_per_ip.get(connection.ip, 0)
        if per_ip >= self.config.max_connections_per_ip:
            return f"max.connections.per.ip ({self.config.max_connections_per_ip}) reached for {connection.ip}"
        if self._connection_rates is not None:
            refusal = self._connection_rates.refusal(connection.ip)
            if refusal is not None:
                return refusal
        self.connections.add(connection)
        self._connections_per_ip[connection.ip] = per_ip + 1
        accepted = self.metrics.connections_accepted
        accepted[connection.listener] = accepted.get(connection.listener, 0) + 1
        if self.services is not None and connection.services is not self.services:
            connection.reconfigure(self.services)  # accepted just before a dynamic config changed
        return None

    def release(self, connection: Connection) -> None:
        self.connections.discard(connection)
        if self.share is not None:
            self.share.connection_closed(connection.peer)
        remaining = self._connections_per_ip.get(connection.ip, 1) - 1
        if remaining:
            self._connections_per_ip[connection.ip] = remaining
        else:
            self._connections_per_ip.pop(connection.ip, None)

    def _schedule_idle_sweep(self) -> None:
        # One sweep for all connections, a few times per idle period, instead of a
        # timer per connection re-armed on every request.
        interval = min(max(self.config.connections_max_idle_ms / 4000, 0.01), 30.0)
        self._idle_sweep = asyncio.get_running_loop().call_later(interval, self._close_idle_connections)

    def _close_idle_connections(self) -> None:
        limit = self.config.connections_max_idle_ms / 1000
        now = asyncio.get_running_loop().time()
        for connection in list(self.connections):
            if not connection.pending and now - connection.last_active > limit:
                connection.abort(f"idle for more than connections.max.idle.ms ({self.config.connections_max_idle_ms})", logging.INFO)
        self._schedule_idle_sweep()

    def notify_data(self, topic: str, partition: int) -> None:
        """Wake every fetch parked on this partition: new records, or the partition is gone."""
        self.data_version += 1
        waiters = self._data_waiters.pop((topic, partition), None)
        if waiters:
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def wait_for_data(self, keys: Iterable[tuple[str, int]], timeout: float, seen_version: int) -> None:
        """Return when any of `keys` gets data or `timeout` seconds pass, whichever is first.

        `seen_version` is `data_version` as it was before the caller last read: data that
        arrived since then, while no waiter was registered yet (a parked fetch starts on a
        later turn of the loop than the read that found too little), returns at once instead
        of being waited for until the timeout."""
        if self.data_version != seen_version:
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        keys = list(keys)
        for key in keys:
            self._data_waiters.setdefault(key, set()).add(waiter)
        timer = loop.call_later(timeout, _resolve, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            for key in keys:
                waiters = self._data_waiters.get(key)
                if waiters is not None:
                    waiters.discard(waiter)
                    if not waiters:
                        del self._data_waiters[key]


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
