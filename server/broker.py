"""The broker: a listener, the log, and what connections share.

`Broker` is also the embedding API: `async with Broker(port=0, data_dir=None) as b:`
runs one in the current event loop, with settings under Kafka's names.

`Broker(nodes=3)` runs a cluster in the same process (server/cluster/): one storage and one
set of coordinators, and per node its own listeners (node k of a listener on a fixed port
listens on that port + k), connections and `BrokerServices` (its `node`, its fetch
sessions). `stop_node`, `crash_node`, `start_node`, `isolate_node` and `move_leader` make the
outages and leader moves clients must survive. With one node (the default) there is no cluster state
and every answer is as it has always been.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import functools
import logging
import socket
import ssl
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence, cast

from ottla.server.broker_configs import BrokerConfigs, cordoned_log_dirs
from ottla.server.config import BrokerConfig, connections_per_ip_overrides
from ottla.server.connection import Connection
from ottla.server.handover import feed_received
from ottla.server.sendfile import SendfileWorkers
from ottla.server.context import ANONYMOUS, BrokerServices, Node
from ottla.server.coordinator.topics import INTERNAL_TOPICS, OFFSETS, OFFSETS_TOPIC, SHARE_GROUP_STATE, TRANSACTION_STATE
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
from ottla.server.security.quotas import ClientQuotas, ConnectionRates, Rate, Refusal
from ottla.server.security.listeners import Listener, ListenerError, check_served, configured_listeners, inter_broker_listener
from ottla.server.txn import TransactionCoordinator, open_transaction_coordinator
from ottla.server.txn.coordinator import PRODUCER_ID_BLOCK_SIZE, ProducerIds
from ottla.storage import Storage
from ottla.wire.errors import KafkaError

# What only some brokers use (cluster mode, TLS, SASL, ACLs, share groups, delegation tokens,
# telemetry) is imported where it is first used: a broker's start pays only for what it serves.
if TYPE_CHECKING:
    from collections.abc import Coroutine

    from ottla.server.cluster.database import DatabaseCluster
    from ottla.server.cluster.state import ClusterState, PartitionState
    from ottla.server.coordinator.database import Journals
    from ottla.server.http import HttpListener
    from ottla.server.security.database import DatabaseMetadata
    from ottla.server.security.sasl import SaslSettings, ScramCredential, ScramCredentialStore, ScramMechanism
    from ottla.server.security.tls import PrincipalMapper
    from ottla.server.security.tokens import DelegationTokens
    from ottla.server.share import ShareCoordinator
    from ottla.server.telemetry import ClientMetrics
    from ottla.storage.engine import TopicInfo

log = logging.getLogger("ottla.broker")

_UNSET = object()
# The coordinators' topics, sized as Kafka sizes them in a cluster (offsets.topic.num.partitions...).
_SPREAD_COORDINATORS = ("offsets.topic.num.partitions", "transaction.state.log.num.partitions")
# How long a stop waits for the coordinators' records still queued for the database.
_JOURNAL_DRAIN_S = 5.0
# Accepted sockets that may wait for max.connections or max.connection.creation.rate at once
# (`_SlotGate`): where Kafka's blocked Acceptor leaves them in the listen backlog
# (socket.listen.backlog.size), they hold a descriptor here, so their number is bounded.
_LISTEN_BACKLOG = 1024


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
        nodes: int = 1,
        racks: Sequence[str] = (),
        storage_url: str | None = None,
        **settings: Any,
    ) -> None:
        """Settings by Kafka name (`num_partitions=3` may be spelt with underscores);
        `test_hooks` only from `ottla.testing`. `nodes` > 1 runs a cluster whose node ids
        follow `node.id`, in `racks` (one per node) when given. `storage_url`
        (postgresql://...) keeps client topics in PostgreSQL (storage/postgresql/engine.py)."""
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
        if nodes > 1 or storage_url is not None:
            # Kafka's 50 partitions each, so that coordinators spread over the nodes (one node
            # needs one; brokers over one database are a cluster); a topic that exists already keeps its count.
            config = config.with_values({key: 50 for key in _SPREAD_COORDINATORS if key not in config.explicit})
        # The settings given at start-up; `config` is what runs: them and the dynamic broker configs.
        self.static_config = config
        self.config = config
        self.broker_configs: BrokerConfigs | None = None
        self.node_id = config.node_id
        if nodes < 1 or (racks and len(racks) != nodes):
            raise ValueError(f"a cluster of {nodes} node(s) takes one rack per node or none, not {len(racks)}")
        if storage_url is not None and nodes > 1:
            raise ValueError("the PostgreSQL engine runs one node per process")
        self.storage_url = storage_url
        self.node_ids = tuple(range(config.node_id, config.node_id + nodes))
        self.racks: tuple[str | None, ...] = tuple(racks) or (None,) * nodes
        # The topology while a cluster of more than one node runs; None for a single node.
        self.cluster: ClusterState | None = None
        self._node_services: dict[int, BrokerServices] = {}
        # Other nodes' bound ports by listener (the first node's are `bound_ports`).
        self._other_ports: dict[int, dict[str, int]] = {}
        # The sockets of isolated nodes, held open and never read or answered.
        self._unanswered: dict[int, set[asyncio.Transport]] = {}
        # Crashed nodes' session timeouts, each fencing its node when it fires.
        self._session_expiries: dict[int, asyncio.TimerHandle] = {}
        self.test_hooks = test_hooks or TestHooks()
        # SCRAM credentials set at each start, as `kafka-storage format --add-scram` writes them.
        self._add_scram: list[tuple[str, ScramMechanism, ScramCredential]] = []
        if add_scram:
            from ottla.server.security.sasl import parse_add_scram

            self._add_scram = [parse_add_scram(item) for item in add_scram]
        self._sasl_settings: dict[str, SaslSettings] = {}
        self.connections: set[Connection] = set()
        self._connections_per_ip: dict[str, int] = {}
        # Sockets counted against max.connections: connections, and TLS handshakes in progress;
        # and per listener, against its listener.name.<name>.max.connections.
        self._admitted = 0
        self._listener_counts: dict[str, int] = {}
        # The inter-broker listener where the broker has others: exempt from the broker-wide
        # max.connections (ConnectionQuotas.protectedListener). None with one listener.
        self._protected_listener: str | None = None
        # Sockets accepted while max.connections is reached or max.connection.creation.rate
        # throttles, oldest first (`_admit_waiting`).
        self._slot_waiters: collections.deque[_SlotGate] = collections.deque()
        # Sockets let in per second, broker-wide (ConnectionQuotas' broker connection-rate
        # sensor), and the throttle of max.connection.creation.rate while it runs.
        self._creation_rate: Rate | None = None
        self._creation_throttle: asyncio.TimerHandle | None = None
        self._idle_sweep: asyncio.TimerHandle | None = None
        self._memory_release = MemoryRelease()
        self.storage: Storage | None = None
        self.maintenance: LogMaintenance | None = None
        self.groups: GroupCoordinator | None = None
        self.txn: TransactionCoordinator | None = None
        self.share: ShareCoordinator | None = None
        # The rooms opened on first use (`context.Rooms`), None until then and after a stop.
        self._scram_credentials: ScramCredentialStore | None = None
        self._tokens: DelegationTokens | None = None
        self._telemetry: ClientMetrics | None = None
        # What the rooms open with: the settings and the event loop of the current run.
        self._start_config = config
        self._loop: asyncio.AbstractEventLoop | None = None
        # Connections accepted per second per IP, against their `connection_creation_rate` quotas.
        self._connection_rates: ConnectionRates | None = None
        # The first listener's bound port (what `bootstrap_servers` names) and every listener's.
        self.port: int | None = None
        self.bound_ports: dict[str, int] = {}
        self.listeners: tuple[Listener, ...] = ()
        # Each node's listening servers (one node: just this node's).
        self._servers: dict[int, list[asyncio.Server]] = {}
        self._sendfile_workers: SendfileWorkers | None = None
        # Per TLS listener, its SSLContext and, on SSL listeners, the certificate principal mapper.
        self._tls: dict[str, tuple[ssl.SSLContext, PrincipalMapper | None]] = {}
        self._handshakes: set[asyncio.Task[None]] = set()
        self._data_waiters: dict[tuple[str, int], set[asyncio.Future[None]]] = {}
        # Counts notify_data calls: a fetch compares it across its read and its park.
        self.data_version = 0
        # Counters of this process, kept across restarts; /metrics reads them (server/http/).
        self.metrics = BrokerMetrics()
        if nodes > 1 or storage_url is not None:
            from ottla.server.cluster.coordinators import gated

            self.dispatcher = Dispatcher(gated(HANDLERS), self.metrics)
        else:
            self.dispatcher = Dispatcher(HANDLERS, self.metrics)
        # The coordinators' topics' journals while a broker over PostgreSQL runs: the coordinator
        # APIs' answers wait for their records to be written (server/coordinator/database.py).
        self._journals: Journals | None = None
        if storage_url is not None:
            from ottla.server.coordinator.database import durable_coordinator_writes

            from ottla.server.security.database import durable_metadata_writes

            self.dispatcher.handlers = durable_coordinator_writes(self.dispatcher.handlers, lambda: self._journals)
            self.dispatcher.handlers = durable_metadata_writes(self.dispatcher.handlers, lambda: self._database_metadata)
        # SCRAM credentials, ACLs, client quotas and group configs in the database while a
        # broker over PostgreSQL runs (server/security/database.py).
        self._database_metadata: DatabaseMetadata | None = None
        # Faults on demand (ottla.server.faults), kept across restarts.
        self.faults = Faults()
        self.faults.arm(self.dispatcher)
        self.test_hooks.set_faults(self.faults)
        self.http: HttpListener | None = None
        self.services: BrokerServices | None = None
        # With the PostgreSQL engine: this broker's membership of the cluster on its database
        # (server/cluster/database.py), the topology handlers see as `services.cluster`.
        self.database_cluster: DatabaseCluster | None = None

    @property
    def data_dir(self) -> Path | None:
        """The first log directory, where the broker keeps its own state (Kafka's metadata.log.dir)."""
        log_dirs = self.config.log_dirs
        return log_dirs[0] if log_dirs else None

    @property
    def advertised_host(self) -> str:
        return self.config.advertised_host or self.config.host

    @property
    def bootstrap_servers(self) -> str:
        """The first listener's advertised address; in a cluster, every node's, comma-separated."""
        if len(self.node_ids) == 1:
            return f"{self.advertised_host}:{self.port}"
        return ",".join(f"{node.host}:{node.port}" for node in (self._listener_nodes(node_id)[self.listeners[0].name] for node_id in self.node_ids))

    def advertised_listeners(self) -> str:
        """Every listener as Kafka writes them, NAME://HOST:PORT with the bound ports."""
        return ",".join(f"{name}://{node.host}:{node.port}" for name, node in self._listener_nodes().items())

    def _ports_of(self, node_id: int) -> dict[str, int]:
        return self.bound_ports if node_id == self.node_id else self._other_ports.setdefault(node_id, {})

    def _listener_nodes(self, node_id: int | None = None) -> dict[str, Node]:
        node_id = self.node_id if node_id is None else node_id
        ports, offset = self._ports_of(node_id), node_id - self.node_id
        return {
            listener.name: Node(node_id, listener.advertised_host, listener.advertised_port + offset if listener.advertised_port else ports[listener.name])
            for listener in self.listeners
        }

    async def start(self) -> None:
        """Listen and serve; ListenerError (before anything is opened) for listeners that
        cannot be served as configured, OSError for an address or a directory that cannot be
        used. A start that fails stops what it had opened (storage, listeners, coordinators)
        before raising, so nothing outlives it: `async with Broker(...)` never reaches
        __aexit__ when its start raises."""
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        listeners = configured_listeners(self.static_config)
        check_served(listeners)
        self._tls = {}
        if any(listener.protocol.uses_tls for listener in listeners):
            if not isinstance(asyncio.get_running_loop(), asyncio.BaseEventLoop):
                # uvloop starts reading a connection after connection_made even when it paused
                # it there, so the TLS acceptor loses the client's hello before start_tls runs.
                raise ListenerError("TLS listeners (SSL, SASL_SSL) need asyncio's event loop, not --event-loop uvloop")
            from ottla.server.security.tls import tls_acceptance

            self._tls = {listener.name: tls_acceptance(self.static_config, listener) for listener in listeners if listener.protocol.uses_tls}
        self._sasl_settings = {}
        if any(listener.protocol.uses_sasl for listener in listeners):
            from ottla.server.security.sasl import SaslConfigError, listener_sasl_settings

            try:
                self._sasl_settings = {
                    listener.name: listener_sasl_settings(functools.partial(self.static_config.listener_value, listener.name), listener.name)
                    for listener in listeners
                    if listener.protocol.uses_sasl
                }
            except SaslConfigError as exc:
                raise ListenerError(str(exc)) from None
        data_dir = self.data_dir
        # A directory with nothing in it is formatted now; Kafka writes some records only then.
        new_directory = data_dir is None or not data_dir.exists() or not any(data_dir.iterdir())
        if data_dir is not None:
            data_dir.mkdir(parents=True, exist_ok=True)
        self.broker_configs = BrokerConfigs(self.static_config, data_dir)
        self.broker_configs.on_change = self._reconfigure
        self.config = self.broker_configs.config
        config = self._start_config = self.config
        authorizer = None
        if (config.value("authorizer.class.name") or "").strip():
            from ottla.server.security.authorizer import Authorizer

            authorizer = Authorizer.from_settings(
                config.value("authorizer.class.name"), config.value("super.users"), config.value("allow.everyone.if.no.acl.found"), data_dir
            )
        meta_properties = {"node.id": str(self.config.node_id), "cluster.id": self.config.cluster_id}
        producer_ids: ProducerIds | None = None
        if self.storage_url is None:
            self.storage = Storage.open(
                data_dir, defaults=self.broker_configs.topic_defaults(), more_dirs=self.config.log_dirs[1:], meta_properties=meta_properties,
                producer_expiration_ms=config.producer_id_expiration_ms,
            )
        else:
            from ottla.storage.postgresql.engine import PostgresStorage

            self.storage = await PostgresStorage.connect(
                self.storage_url, asyncio.Lock, data_dir, defaults=self.broker_configs.topic_defaults(), more_dirs=self.config.log_dirs[1:], meta_properties=meta_properties,
                producer_expiration_ms=config.producer_id_expiration_ms,
            )
            log.warning(
                "the PostgreSQL engine is incomplete: it stores topics (those share and streams groups create too), partitions, "
                "record batches, producer state, group offsets, the transaction coordinator's and the share coordinator's state, "
                "SCRAM credentials, ACLs, client quotas, group configs, delegation tokens, finalized features and dynamic broker configs"
            )
            producer_ids = await self._open_journals(self.storage)
            from ottla.server.security.database import DatabaseMetadata

            self._database_metadata = await DatabaseMetadata.open(self.storage.pool, self.node_id)
            await self._database_metadata.attach_broker_configs(self.broker_configs)
            config = self._start_config = self.config  # with the database's dynamic broker configs
            if authorizer is not None:
                await self._database_metadata.attach_authorizer(authorizer)
        self.storage.set_cordoned_log_dirs(cordoned_log_dirs(self.config))
        self.metrics.topic_by_id = self.storage.topic_by_id
        self.maintenance = LogMaintenance(self.storage, self.config)
        self.maintenance.start()
        self.groups = open_coordinator(self.storage, self.config, asyncio.get_running_loop())
        if self._database_metadata is not None:
            await self._database_metadata.attach_group_configs(self.groups.configs)
        features = FinalizedFeatures.open(data_dir if self._database_metadata is None else None)
        if self._database_metadata is not None:
            await self._database_metadata.attach_features(features)
        if new_directory and features.level("eligible.leader.replicas.version") >= 1:
            # Kafka 4.4's first controller activation on an empty log (ActivationRecordsGenerator);
            # an upgraded cluster gets it only when UpdateFeatures turns ELR on.
            self.broker_configs.keep_min_insync_replicas()
        self.txn = open_transaction_coordinator(self.storage, self.groups, self.config, asyncio.get_running_loop(), self.notify_data,
                                                lambda: features.level("transaction.version"), producer_ids)
        loop = asyncio.get_running_loop()
        self._loop = loop
        if self._add_scram:
            self.scram_room()  # written at each start, as `kafka-storage format --add-scram` does
        if self.storage.topic(SHARE_GROUP_STATE.name) is not None or self.groups.share_records:
            self.share_room()  # share groups with state: loaded at start, as their offsets are
        _ignore_sendfile_close_race(loop)
        self.listeners = listeners
        protected = inter_broker_listener(self.static_config, listeners) if len(listeners) > 1 else None
        self._protected_listener = None if protected is None else protected.name
        self._sendfile_workers = SendfileWorkers()
        for node_id in self.node_ids:
            await self._bind_node(node_id)
        self.port = self.bound_ports[listeners[0].name]
        listener_nodes = self._listener_nodes()
        self.services = BrokerServices(
            node=listener_nodes[listeners[0].name],
            listener_nodes=listener_nodes,
            config=self.config,
            data_dir=data_dir,
            storage=self.storage,
            features=features,
            groups=self.groups,
            txn=self.txn,
            wakeups=self,
            broker_configs=self.broker_configs,
            fetch_sessions=FetchSessionCache.for_slots(self.config.max_incremental_fetch_session_cache_slots),
            supported_apis=self.dispatcher.supported(),
            rooms=self,
            sendfile_workers=self._sendfile_workers,
            authorizer=authorizer,
            quotas=self._open_quotas(data_dir),
            metrics=self.metrics,
        )
        if self._database_metadata is not None:
            await self._database_metadata.attach_quotas(self.services.quotas)
        if len(self.node_ids) > 1:
            self._open_cluster(data_dir)
        if self.storage_url is not None:
            await self._join_database_cluster()
        for servers in self._servers.values():
            for server in servers:
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

    # --- the rooms opened on first use (context.Rooms), with the settings of the start ------

    def _running_storage(self) -> Storage:
        if self.storage is None:
            raise RuntimeError("the broker is not running")
        return self.storage

    def share_room(self) -> ShareCoordinator:
        if self.share is None:
            from ottla.server.share import open_share_coordinator

            storage = self._running_storage()
            assert self.groups is not None and self._loop is not None
            self.share = open_share_coordinator(storage, self._start_config, self._loop, self.notify_data, self.groups.configs.value,
                                                lambda: 0 if self.services is None else self.services.features.level("share.version"),
                                                self.groups.take_share_records())
            if self.cluster is not None:
                self.share.partition_racks = self._replica_racks
        return self.share

    def scram_room(self) -> ScramCredentialStore:
        if self._scram_credentials is None:
            from ottla.server.security.sasl.credentials import ScramCredentialStore

            self._running_storage()
            store = ScramCredentialStore.open(self.data_dir) if self._database_metadata is None else self._database_metadata.scram
            if self._add_scram:
                store.apply([], self._add_scram)
            self._scram_credentials = store
        return self._scram_credentials

    def tokens_room(self) -> DelegationTokens:
        if self._tokens is None:
            from ottla.server.security.tokens import DelegationTokens

            self._running_storage()
            config = self._start_config
            self._tokens = DelegationTokens.open(
                self.data_dir if self._database_metadata is None else None,
                config.value("delegation.token.secret.key"),
                config.value("delegation.token.max.lifetime.ms"),
                config.value("delegation.token.expiry.time.ms"),
                config.value("delegation.token.expiry.check.interval.ms"),
            )
            if self._database_metadata is not None:
                self._database_metadata.attach_tokens(self._tokens)
        return self._tokens

    def telemetry_room(self) -> ClientMetrics:
        if self._telemetry is None:
            from ottla.server.telemetry import ClientMetrics

            self._running_storage()
            self._telemetry = ClientMetrics.open(self.data_dir)
        return self._telemetry

    async def _bind_node(self, node_id: int) -> None:
        """Bind `node_id`'s listeners (not serving yet). A restart keeps the ports a first start
        picked for port 0; node k of a cluster takes the port + k of a listener on a fixed one."""
        loop = asyncio.get_running_loop()
        ports, offset = self._ports_of(node_id), node_id - self.node_id
        servers = self._servers.setdefault(node_id, [])
        for listener in self.listeners:
            port = ports.get(listener.name) or (listener.port + offset if listener.port else 0)
            server = await loop.create_server(
                self._protocol_factory(listener, node_id), listener.host, port, reuse_address=True,
                backlog=self.static_config.socket_listen_backlog_size, start_serving=False,
            )
            servers.append(server)
            for sock in server.sockets:
                self._set_buffer_sizes(sock)
            ports[listener.name] = server.sockets[0].getsockname()[1]

    def _open_cluster(self, data_dir: Path | None) -> None:
        """The cluster state and each node's services: the first node's with a node and fetch
        sessions of its own for every other node."""
        assert self.services is not None and self.storage is not None
        from ottla.server.cluster.routing import eligible_leader_replicas
        from ottla.server.cluster.state import ClusterState

        elr = eligible_leader_replicas(self.storage, lambda: self.config, self.services.features)
        self.cluster = ClusterState(self.node_ids, self.racks, data_dir, self._log_end_offset, self._leader_changed, self.notify_data, elr)
        shared = dataclasses.replace(self.services, cluster=self.cluster)
        for node_id in self.node_ids:
            listener_nodes = self._listener_nodes(node_id)
            self.cluster.endpoints[node_id] = listener_nodes
            self._node_services[node_id] = dataclasses.replace(
                shared,
                node=listener_nodes[self.listeners[0].name],
                listener_nodes=listener_nodes,
                fetch_sessions=shared.fetch_sessions if node_id == self.node_id else FetchSessionCache.for_slots(self.config.max_incremental_fetch_session_cache_slots),
            )
        self.services = self._node_services[self.node_id]
        # KIP-1101: the groups' metadata hash covers the racks of each partition's replicas.
        assert self.groups is not None
        self.groups.partition_racks = self._replica_racks
        if self.share is not None:
            self.share.partition_racks = self._replica_racks

    def _replica_racks(self, name: str, topic_id: bytes, partitions: int) -> tuple[tuple[str, ...], ...]:
        """Each partition's replicas' racks, those that have one (Kafka's partitionRacks), the
        partitions placed on first use as a request places them."""
        from ottla.server.cluster.routing import replication_factor_for

        assert self.cluster is not None
        cluster, factor = self.cluster, replication_factor_for(self.config, name)
        return tuple(
            tuple(rack for node in cluster.partition(name, topic_id, partitions, index, factor).replicas if (rack := cluster.nodes[node].rack) is not None)
            for index in range(partitions)
        )

    async def _join_database_cluster(self) -> None:
        """Register in the database's brokers table and serve the topology it gives."""
        assert self.services is not None and self.storage_url is not None
        from ottla.server.cluster.database import DatabaseCluster
        from ottla.storage.postgresql.engine import PostgresStorage

        assert isinstance(self.storage, PostgresStorage)
        self.database_cluster = DatabaseCluster(
            self.storage,
            self.storage_url,
            self.node_id,
            self.racks[0],
            self._listener_nodes(),
            int(self.config.value("broker.session.timeout.ms")),
            int(self.config.value("broker.heartbeat.interval.ms")),
            self.notify_data,
            self._leader_changed,
        )
        if self._database_metadata is not None:
            self.database_cluster.metadata_changed = self._database_metadata.heard
        try:
            await self.database_cluster.start()
        except BaseException:
            self.database_cluster = None
            await self.stop()
            raise
        self.services = dataclasses.replace(self.services, cluster=self.database_cluster.state)
        from ottla.server.cluster.routing import replication_factor_for
        from ottla.server.txn.marker_channel import OffsetsMarkerChannel

        assert self.txn is not None and self.groups is not None
        # A transaction's offsets are pending at their group's coordinator: its marker goes there.
        self.txn.offsets_marker_channel = OffsetsMarkerChannel(
            self.database_cluster.state, self.storage, self.config, self.node_id, replication_factor_for(self.config, OFFSETS.name),
            self.groups.log.loading,
        )

    async def _open_journals(self, storage: Storage) -> ProducerIds:
        """The coordinators' topics in the database, read for their load, and the producer-id
        blocks reserved there: what the coordinators then open over."""
        from ottla.server.coordinator.database import Journals
        from ottla.storage.postgresql.engine import PostgresStorage

        assert isinstance(storage, PostgresStorage)
        journals = Journals(
            storage, self.notify_data, self._leads, int(self.config.value("offsets.commit.timeout.ms")), self.node_id, self._leader_epoch,
            self.config.value,
        )
        await journals.open(OFFSETS, self.config.value(OFFSETS.partitions_setting))
        await journals.open(TRANSACTION_STATE, self.config.transaction_state_log_num_partitions)
        # Each broker writes the share state it owns (Journal.owners_write), and reads its share
        # groups again within each load of their `__consumer_offsets` partition.
        await journals.open(SHARE_GROUP_STATE, self.config.value(SHARE_GROUP_STATE.partitions_setting), owners_write=True, loaded_with=OFFSETS.name)
        self._journals = journals
        return await journals.open_producer_ids(PRODUCER_ID_BLOCK_SIZE)

    def _leads(self, topic: str, index: int) -> bool:
        """Whether this broker leads a partition: always, but among brokers over one database,
        where it leads none until it has joined them."""
        if self.database_cluster is None or self.storage is None:
            return self.storage_url is None
        state = self._database_partition(topic, index)
        return state is None or state.leader == self.node_id

    def _leader_epoch(self, topic: str, index: int) -> int | None:
        """A partition's leader epoch as this broker last read it from the database it shares
        with other brokers; None alone, or for a topic it does not know."""
        state = self._database_partition(topic, index)
        return None if state is None else state.leader_epoch

    def _database_partition(self, topic: str, index: int) -> PartitionState | None:
        cluster, storage = self.database_cluster, self.storage
        if cluster is None or storage is None:
            return None
        from ottla.server.cluster.routing import replication_factor_for

        info = storage.topic(topic)
        if info is None:
            return None
        return cluster.state.partition(topic, info.topic_id, info.partitions, index, replication_factor_for(self.config, topic))

    def _log_end_offset(self, topic: str, index: int) -> int:
        assert self.storage is not None
        try:
            return self.storage.partition(topic, index).log_end_offset
        except KafkaError:
            return 0

    def _leader_changed(self, topic: str, index: int, epoch: int) -> None:
        """A new leader epoch: appends stamp it into their batches, fetches parked on the
        partition answer now (Kafka completes delayed fetches when leadership moves), and a
        coordinator partition's new leader takes its groups (and transactions) over."""
        assert self.storage is not None
        try:
            self.storage.partition(topic, index).leader_epoch = epoch
        except KafkaError:
            return  # a topic deleted since the state was written
        self.notify_data(topic, index)
        if self._journals is not None:
            # Over a shared database the moved partition's records are read again.
            self._journals.leader_changed(topic, index, self._replay_coordinator_partition(topic))
            self._share_leader_changed(topic, index)
        elif topic == OFFSETS_TOPIC and self.groups is not None:
            self.groups.on_partition_moved(index)
            if self.share is not None:
                groups = self.groups
                self.share.rearm_sessions(lambda group_id: groups.offsets_partition(group_id) == index)

    def _replay_coordinator_partition(self, topic: str) -> Callable[[int], None]:
        """What rebuilds a coordinator's state of one partition of `topic`, read again."""
        def replay(index: int) -> None:
            if topic == OFFSETS_TOPIC and self.groups is not None:
                self.groups.reload_partition(index)
                self._share_groups_moved(self.groups, index)
            elif topic == TRANSACTION_STATE.name and self.txn is not None:
                self.txn.reload_partition(index)

        return replay

    def _share_groups_moved(self, groups: GroupCoordinator, index: int) -> None:
        """This broker now coordinates the share groups of `__consumer_offsets` partition
        `index`: they are rebuilt from their records, read again within the partition's load
        (Journals.open's `loaded_with`), so no request changed them in between."""
        records = groups.take_share_records()
        if self.share is None and records:
            self.share_room()
        if self.share is not None:
            self.share.reload_groups(lambda group_id: groups.offsets_partition(group_id) == index, records)

    def _share_leader_changed(self, topic: str, index: int) -> None:
        """Over a shared database a topic partition's leader owns its share-partitions: one
        that became it reads their state again (ShareCoordinator.leader_moved). A broker that
        no longer leads a `__consumer_offsets` partition forgets its share groups: their next
        coordinator keeps them."""
        share, journals, storage, groups = self.share, self._journals, self.storage, self.groups
        if share is None or journals is None or storage is None:
            return
        if topic == OFFSETS_TOPIC:
            if groups is not None and not self._leads(topic, index):
                share.forget_groups(lambda group_id: groups.offsets_partition(group_id) == index)
            return
        info = None if topic in INTERNAL_TOPICS else storage.topic(topic)
        if info is None:
            return
        if share.leader_moved(info.topic_id, index, self._leads(topic, index)):
            journals.read_again(SHARE_GROUP_STATE.name, 0, lambda _: share.partition_loaded(info.topic_id, index), owned=(info.topic_id, index))

    def _protocol_factory(self, listener: Listener, node_id: int) -> Callable[[], asyncio.BaseProtocol]:
        """What serves a new socket of `listener` on node `node_id`: its Connection, behind a
        TLS handshake on SSL and SASL_SSL listeners, once max.connections has a place for it
        and max.connection.creation.rate lets it in."""
        accept = functools.partial(self._accept, listener, node_id=node_id)
        tls = self._tls.get(listener.name)
        if tls is None:
            return lambda: _SlotGate(self, node_id, listener.name, accept)
        from ottla.server.security.tls import HANDSHAKE_TIMEOUT_S, TlsAcceptor

        context, mapper = tls
        idle = self.static_config.connections_max_idle_ms / 1000
        timeout = min(HANDSHAKE_TIMEOUT_S, idle) if idle > 0 else HANDSHAKE_TIMEOUT_S
        return lambda: _SlotGate(self, node_id, listener.name, lambda: TlsAcceptor(context, timeout, mapper, accept, ANONYMOUS, self._handshakes, self, listener.name))

    def _accept(self, listener: Listener, principal: str = ANONYMOUS, *, node_id: int | None = None) -> asyncio.BufferedProtocol:
        """A connection to node `node_id` (default: the first node) through `listener`."""
        node_id = self.node_id if node_id is None else node_id
        services = self.services if self.cluster is None else self._node_services[node_id]
        assert services is not None, "connections are accepted only while the broker runs"
        if self.cluster is not None:
            from ottla.server.cluster.state import NodeState

            if self.cluster.nodes[node_id].state is NodeState.ISOLATED:
                return _Unanswered(self._unanswered.setdefault(node_id, set()))
        sasl_settings = self._sasl_settings.get(listener.name)
        sasl = None
        if sasl_settings is not None:
            from ottla.server.security.sasl import SaslAuthenticator

            sasl = SaslAuthenticator(sasl_settings, services.scram_credentials, services.tokens.scram)
        return Connection(self.dispatcher, services, self, listener.name, listener.protocol, principal, sasl=sasl)

    def _open_quotas(self, data_dir: Path | None) -> ClientQuotas:
        """The client quotas, enforced by the dispatcher while any is set and by `admit`."""
        quotas = ClientQuotas.open(
            data_dir, self.config.value("quota.window.num"), self.config.value("quota.window.size.seconds"),
            self.config.value("controller.quota.window.num"), self.config.value("controller.quota.window.size.seconds"),
        )
        quotas.on_change = self._quotas_changed
        self._quotas_changed(quotas)
        # The broker-wide rate delays sockets (`_creation_delay_ms`); ConnectionRates keeps the per-IP ones.
        self._connection_rates = ConnectionRates(quotas)
        self._creation_rate = Rate(quotas.samples, quotas.window_ms)
        return quotas

    def _quotas_changed(self, quotas: ClientQuotas) -> None:
        self.dispatcher.quotas = quotas if quotas.active else None

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
        if self.database_cluster is not None:
            await self.database_cluster.stop()
            self.database_cluster = None
        if self.http is not None:
            await self.http.stop()
            self.http = None
        for handshake in list(self._handshakes):
            handshake.cancel()
        if self._servers:
            servers = [server for node_servers in self._servers.values() for server in node_servers]
            for server in servers:
                server.close()
            for connection in list(self.connections):
                if connection.transport is not None:
                    connection.transport.abort()
            self._drop_slot_waiters(lambda gate: True)
            if self._creation_throttle is not None:
                self._creation_throttle.cancel()
                self._creation_throttle = None
            for server in servers:
                await server.wait_closed()
            self._servers = {}
        for transports in self._unanswered.values():
            for transport in list(transports):
                transport.abort()
        self._unanswered = {}
        if self._sendfile_workers is not None:
            self._sendfile_workers.stop()
            self._sendfile_workers = None
        for expiry in self._session_expiries.values():
            expiry.cancel()
        self._session_expiries = {}
        if self.services is not None:
            self.services.quotas.close()
        self.services = None
        self.cluster = None
        self._node_services = {}
        for waiters in self._data_waiters.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.cancel()
        self._data_waiters.clear()
        if self.share is not None:
            self.share.close()
            self.share = None
        self._scram_credentials = self._tokens = self._telemetry = None
        self._loop = None
        if self.txn is not None:
            self.txn.close()
            self.txn = None
        if self.groups is not None:
            self.groups.close()
            self.groups = None
        if self.maintenance is not None:
            self.maintenance.stop()
            self.maintenance = None
        if self._database_metadata is not None:
            await self._database_metadata.close(_JOURNAL_DRAIN_S)
            self._database_metadata = None
        if self._journals is not None:
            await self._journals.close(_JOURNAL_DRAIN_S)
            self._journals = None
        if self.storage is not None:
            self.storage.close()
            if self.storage.is_async:
                await self.storage.close_database()  # type: ignore[attr-defined]
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
            self._node_services = {node_id: dataclasses.replace(services, config=config) for node_id, services in self._node_services.items()}
            if self._node_services:
                self.services = self._node_services[self.node_id]
            for connection in self.connections:
                connection.reconfigure(self._services_of(connection))
        if self.storage is not None and self.broker_configs is not None:
            self.storage.set_defaults(self.broker_configs.topic_defaults())
            self.storage.set_cordoned_log_dirs(cordoned_log_dirs(config))
        if self.maintenance is not None:
            self.maintenance.reconfigure(config)
        if self.txn is not None:
            self.txn.config = dataclasses.replace(self.txn.config, producer_id_expiration_ms=config.producer_id_expiration_ms)
        # A raised max.connections lets waiting sockets in; a lowered one closes the excess.
        self._admit_waiting()
        self._close_excess_connections()

    def create_topic(
        self, name: str, partitions: int = 1, replication_factor: int | None = None, **configs: Any
    ) -> Coroutine[Any, Any, TopicInfo] | None:
        """Create a topic; configs by Kafka name, underscores for dots (`retention_ms=1000`);
        in a cluster, with `replication_factor` replicas (default.replication.factor if None).
        On the local engine it is created at once and None returned. Over PostgreSQL the
        coroutine returned, awaited on the broker's loop, creates it in the database as
        CreateTopics does (its configs validated as CreateTopics validates them, the replication
        factor checked against the live brokers), so that it outlives a restart and every broker
        on the database has it; this call checks the factor and configs."""
        assert self.storage is not None, "the broker is not running"
        overrides = {key.replace("_", "."): str(value) for key, value in configs.items()}
        if self.storage.is_async:
            from ottla.server.topic_config import check_together, validate_configs
            from ottla.storage.postgresql.engine import PostgresStorage

            assert isinstance(self.storage, PostgresStorage)
            if self.database_cluster is not None:
                factor = int(self.config.value("default.replication.factor")) if replication_factor is None else replication_factor
                self.database_cluster.state.check_replication_factor(factor)
            overrides = validate_configs(overrides)
            check_together(overrides, self.storage.defaults)
            return self.storage.create_database_topic(name, partitions, overrides)
        if replication_factor is not None and self.cluster is not None:
            self.cluster.check_replication_factor(replication_factor)
        info = self.storage.create_topic(name, partitions, overrides)
        if replication_factor is not None and self.cluster is not None:
            self.cluster.assign(name, info.topic_id, range(partitions), replication_factor)
        return None

    # --- cluster mode: the outages and leader moves of server/cluster/ ---------------------

    def _running_cluster(self, node_id: int) -> ClusterState:
        if self.cluster is None:
            raise ValueError("node controls need a running cluster of more than one node (nodes=N)")
        if node_id not in self.cluster.nodes:
            raise ValueError(f"no node {node_id}: the nodes are {list(self.cluster.nodes)}")
        return self.cluster

    def _unclean_allowed(self, topic: str) -> bool:
        from ottla.server.cluster.routing import unclean_allowed

        assert self.storage is not None
        return unclean_allowed(self.storage, self.config, topic)

    def _drop_node_connections(self, node_id: int) -> None:
        """Reset every connection to `node_id`, the unanswered ones of an isolation too."""
        for connection in list(self.connections):
            if connection.services.node.node_id == node_id and connection.transport is not None:
                connection.transport.abort()
        for transport in list(self._unanswered.pop(node_id, ())):
            transport.abort()
        self._drop_slot_waiters(lambda gate: gate.node_id == node_id)

    async def _close_node(self, node_id: int) -> None:
        """Close a node's listeners and reset its connections."""
        servers = self._servers.pop(node_id, [])
        for server in servers:
            server.close()
        self._drop_node_connections(node_id)
        for server in servers:
            await server.wait_closed()

    async def stop_node(self, node_id: int) -> None:
        """Stop a node as Kafka's controlled shutdown does (ops.html, "Graceful shutdown"): each
        partition it led elects a new leader from the ISR it leaves, at once, while the node
        stays listed and answering, so what a client asks of it there is refused with
        NOT_LEADER_OR_FOLLOWER or NOT_COORDINATOR and the client looks again; one
        `broker.heartbeat.interval.ms` later (the heartbeat on which Kafka's controller lets a
        shutting-down broker go) its listeners close and its connections reset. A crashed or
        isolated node, which has nothing to hand over, stops at once."""
        from ottla.server.cluster.state import NodeState

        cluster = self._running_cluster(node_id)
        state = cluster.nodes[node_id].state
        if state is NodeState.STOPPED or state is NodeState.SHUTTING_DOWN:
            return
        self._cancel_session_expiry(node_id)
        if state is NodeState.RUNNING:
            cluster.set_node_state(node_id, NodeState.SHUTTING_DOWN, self._unclean_allowed)
            log.info("node %s shutting down: its leadership moved", node_id)
            await asyncio.sleep(int(self.config.value("broker.heartbeat.interval.ms")) / 1000)
            if self.cluster is not cluster or cluster.nodes[node_id].state is not NodeState.SHUTTING_DOWN:
                return  # started again, or the broker stopped, meanwhile
        await self._close_node(node_id)
        cluster.set_node_state(node_id, NodeState.STOPPED, self._unclean_allowed)
        log.info("node %s stopped", node_id)

    async def crash_node(self, node_id: int) -> None:
        """Crash a running node as a killed Kafka broker crashes: its listeners close and its
        connections reset, but it stays registered, leading and in every ISR until
        `broker.session.timeout.ms` passes without the heartbeats it no longer sends; then it
        is fenced as stop_node fences it, and its partitions elect new leaders."""
        from ottla.server.cluster.state import NodeState

        cluster = self._running_cluster(node_id)
        if cluster.nodes[node_id].state is not NodeState.RUNNING:
            raise ValueError(f"node {node_id} is {cluster.nodes[node_id].state.value}, not running")
        await self._close_node(node_id)
        cluster.set_node_state(node_id, NodeState.CRASHED, self._unclean_allowed)
        timeout_s = int(self.config.value("broker.session.timeout.ms")) / 1000
        self._session_expiries[node_id] = asyncio.get_running_loop().call_later(timeout_s, self._session_expired, node_id)
        log.info("node %s crashed; fenced in %.1f s (broker.session.timeout.ms)", node_id, timeout_s)

    def _session_expired(self, node_id: int) -> None:
        from ottla.server.cluster.state import NodeState

        self._session_expiries.pop(node_id, None)
        if self.cluster is not None and self.cluster.nodes[node_id].state is NodeState.CRASHED:
            self.cluster.set_node_state(node_id, NodeState.STOPPED, self._unclean_allowed)
            log.info("node %s fenced: its session timed out", node_id)

    def _cancel_session_expiry(self, node_id: int) -> None:
        expiry = self._session_expiries.pop(node_id, None)
        if expiry is not None:
            expiry.cancel()

    async def start_node(self, node_id: int) -> None:
        """Start a stopped, crashed or shutting-down node (on its former ports), or reconnect an
        isolated one (its held connections reset): it rejoins every ISR at once and leads what
        had no leader."""
        from ottla.server.cluster.state import NodeState

        cluster = self._running_cluster(node_id)
        state = cluster.nodes[node_id].state
        if state is NodeState.RUNNING:
            return
        self._cancel_session_expiry(node_id)
        if state is NodeState.ISOLATED:
            self._drop_node_connections(node_id)
        cluster.set_node_state(node_id, NodeState.RUNNING, self._unclean_allowed)
        if node_id not in self._servers:
            await self._bind_node(node_id)
            for server in self._servers[node_id]:
                await server.start_serving()
        log.info("node %s started", node_id)

    def isolate_node(self, node_id: int) -> None:
        """Cut a node off as a network partition would: its sockets accept connections and
        never answer, the open ones fall silent, and the cluster fences it (its partitions
        elect new leaders) at once, where Kafka's controller waits broker.session.timeout.ms."""
        from ottla.server.cluster.state import NodeState

        cluster = self._running_cluster(node_id)
        if cluster.nodes[node_id].state is not NodeState.RUNNING:
            raise ValueError(f"node {node_id} is {cluster.nodes[node_id].state.value}, not running")
        held = self._unanswered.setdefault(node_id, set())
        for connection in list(self.connections):
            if connection.services.node.node_id == node_id and connection.transport is not None:
                connection.closed = True  # reads nothing more, writes nothing more
                connection.transport.pause_reading()
                held.add(connection.transport)
        cluster.set_node_state(node_id, NodeState.ISOLATED, self._unclean_allowed)
        log.info("node %s isolated", node_id)

    def move_leader(self, topic: str, partition: int, node_id: int) -> None:
        """Make `node_id` (a running, in-sync replica) lead the partition, in a new epoch."""
        from ottla.server.cluster.routing import replication_factor_for

        cluster = self._running_cluster(node_id)
        assert self.storage is not None
        info = self.storage.topic(topic)
        if info is None or not 0 <= partition < info.partitions:
            raise ValueError(f"no partition {topic}-{partition}")
        cluster.partition(topic, info.topic_id, info.partitions, partition, replication_factor_for(self.config, topic))
        cluster.move_leader(topic, partition, node_id)

    def partition_state(self, topic: str, partition: int) -> dict[str, Any]:
        """A partition's replicas, leader, leader epoch and ISR, and its running replicas."""
        from ottla.server.cluster.routing import replication_factor_for

        assert self.storage is not None
        info = self.storage.topic(topic)
        if info is None or not 0 <= partition < info.partitions:
            raise ValueError(f"no partition {topic}-{partition}")
        if self.cluster is None:
            return {"replicas": [self.node_id], "leader": self.node_id, "leader_epoch": 0, "isr": [self.node_id], "offline": []}
        state = self.cluster.partition(topic, info.topic_id, info.partitions, partition, replication_factor_for(self.config, topic))
        offline = [node for node in state.replicas if not self.cluster.nodes[node].running]
        return {"replicas": list(state.replicas), "leader": state.leader, "leader_epoch": state.leader_epoch, "isr": list(state.isr), "offline": offline}

    def _services_of(self, connection: Connection) -> BrokerServices:
        """The services of the node `connection` came to."""
        assert self.services is not None
        return self._node_services.get(connection.services.node.node_id, self.services) if self._node_services else self.services

    async def __aenter__(self) -> "Broker":
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def admit(self, ip: str, listener: str) -> Refusal | None:
        """Count a new socket from `ip` to `listener` in, or say which limit refuses it, in
        Kafka's order (ConnectionQuotas.inc). It has a place under max.connections and its
        listener's already: `_SlotGate` waited for one. First its IP's
        connection_creation_rate, which records it: a socket over that rate is taken back out
        of it and out of max.connection.creation.rate's (ConnectionQuotas.
        recordIpConnectionMaybeThrottle, updateListenerMetrics). Then its per-address limit,
        max.connections.per.ip or its entry in max.connections.per.ip.overrides: a socket over
        it stays recorded in both rates. One taken on the inter-broker listener past the
        broker-wide limit closes others (`_close_excess_connections`)."""
        if self._connection_rates is not None:
            refusal = self._connection_rates.refusal(ip)
            if refusal is not None:
                # As `_creation_delay_ms` recorded it when the socket came first, under this bound.
                if self._creation_rate is not None and self.config.value("max.connection.creation.rate") < 2**31 - 1:
                    self._creation_rate.record(-1, time.monotonic() * 1000)
                return refusal
        per_ip = self._connections_per_ip.get(ip, 0)
        limit = connections_per_ip_overrides(self.config.value("max.connections.per.ip.overrides")).get(ip, self.config.max_connections_per_ip)
        if per_ip >= limit:
            return Refusal(f"max.connections.per.ip ({limit}) reached for {ip}")
        self._admitted += 1
        self._listener_counts[listener] = self._listener_counts.get(listener, 0) + 1
        self._connections_per_ip[ip] = per_ip + 1
        accepted = self.metrics.connections_accepted
        accepted[listener] = accepted.get(listener, 0) + 1
        if listener == self._protected_listener:
            self._close_excess_connections()
        return None

    def enrol(self, connection: Connection) -> None:
        self.connections.add(connection)
        if self.services is not None:
            current = self._services_of(connection)
            if connection.services is not current:
                connection.reconfigure(current)  # accepted just before a dynamic config changed

    def release(self, ip: str, listener: str, connection: Connection | None) -> None:
        self._admitted -= 1
        self._listener_counts[listener] -= 1
        if connection is not None:
            self.connections.discard(connection)
            if self.share is not None:
                self.share.connection_closed(connection.peer)
        remaining = self._connections_per_ip.get(ip, 1) - 1
        if remaining:
            self._connections_per_ip[ip] = remaining
        else:
            self._connections_per_ip.pop(ip, None)
        self._admit_waiting()

    def _admit_waiting(self) -> None:
        """Serve the waiting sockets in order of arrival, as Kafka's Acceptors take them on
        (ConnectionQuotas.waitForConnectionSlot), one Acceptor per listener: each is recorded
        against max.connection.creation.rate when it comes first, waits out the throttle that
        gives, then waits for a place under its listener's max.connections and the broker's
        (ConnectionQuotas.dec wakes it). The sockets behind it on its listener wait, unrecorded,
        as those behind a blocked Acceptor do; those of other listeners go on."""
        while self._creation_throttle is None:
            blocked: set[str] = set()
            for gate in self._slot_waiters:
                if gate.listener in blocked:
                    continue
                if not gate.rated:
                    gate.rated = True
                    delay_ms = self._creation_delay_ms()
                    if delay_ms > 0:
                        self._creation_throttle = asyncio.get_running_loop().call_later(delay_ms / 1000, self._creation_throttle_over)
                        return
                if self._slot_available(gate.listener):
                    break
                blocked.add(gate.listener)
            else:
                return
            self._slot_waiters.remove(gate)
            gate.enter()

    def _slot_available(self, listener: str) -> bool:
        """ConnectionQuotas.connectionSlotAvailable: a place under the listener's
        max.connections (`listener.name.<name>.max.connections`, else the broker's), and under
        the broker-wide one unless the listener is the protected inter-broker one."""
        if self._listener_counts.get(listener, 0) >= self.config.listener_value(listener, "max.connections"):
            return False
        return listener == self._protected_listener or self._admitted < self.config.max_connections

    def _close_excess_connections(self) -> None:
        """Past the broker-wide max.connections (the inter-broker listener took a connection
        over it, or the limit was lowered), close the least recently active connections of the
        other listeners until it holds again, as each of their Processors closes its Selector's
        lowestPriorityChannel while ConnectionQuotas.maxConnectionsExceeded. A closed connection
        counts until its socket is gone, so it is not closed twice over."""
        open_ = [connection for connection in self.connections if not connection.closed]
        excess = self._admitted - (len(self.connections) - len(open_)) - self.config.max_connections
        if excess <= 0:
            return
        candidates = sorted((c for c in open_ if c.listener != self._protected_listener), key=lambda c: c.last_active)
        for connection in candidates[:excess]:
            connection.abort(f"max.connections ({self.config.max_connections}) exceeded: least recently active connection closed", logging.INFO)

    def _creation_delay_ms(self) -> int:
        """Record a socket against max.connection.creation.rate; how long it waits, at most one
        quota window (ConnectionQuotas.recordAndGetThrottleTimeMs). The record stays, as Kafka's does."""
        bound = self.config.value("max.connection.creation.rate")
        if self._creation_rate is None or bound >= 2**31 - 1:
            return 0
        now_ms = time.monotonic() * 1000
        self._creation_rate.record(1, now_ms)
        return min(self._creation_rate.throttle_time_ms(bound, now_ms), self._creation_rate.window_ms)

    def _creation_throttle_over(self) -> None:
        self._creation_throttle = None
        self._admit_waiting()

    def _drop_slot_waiters(self, which: Callable[[_SlotGate], bool]) -> None:
        """Reset the waiting sockets `which` picks (their listener closed)."""
        dropped = [gate for gate in self._slot_waiters if which(gate)]
        self._slot_waiters = collections.deque(gate for gate in self._slot_waiters if not which(gate))
        for gate in dropped:
            gate.transport.abort()

    def _schedule_idle_sweep(self) -> None:
        # One sweep for all connections, a few times per idle period, instead of a
        # timer per connection re-armed on every request.
        interval = min(max(self.config.connections_max_idle_ms / 4000, 0.01), 30.0)
        self._idle_sweep = asyncio.get_running_loop().call_later(interval, self._close_idle_connections)

    def _close_idle_connections(self) -> None:
        limit = self.config.connections_max_idle_ms / 1000
        now = time.monotonic()
        for connection in list(self.connections):
            if not connection.pending and connection.idle_for(now) > limit:
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


class _Unanswered(asyncio.BufferedProtocol):
    """A socket of an isolated node: held open, read into a scratch buffer and never answered."""

    def __init__(self, held: set[asyncio.Transport]) -> None:
        self.held = held
        self.transport: asyncio.Transport | None = None
        self._scratch = bytearray(4096)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it
        self.transport = transport
        self.held.add(transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        return memoryview(self._scratch)

    def buffer_updated(self, nbytes: int) -> None:
        """Dropped: what a partitioned network does to a request."""

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.held.discard(self.transport)


class _SlotGate(asyncio.Protocol):
    """A new socket until max.connections has a place for it and max.connection.creation.rate
    lets it in. There Kafka's Acceptor blocks before it takes the next socket on
    (ConnectionQuotas.waitForConnectionSlot): a client past either is served late, not refused.
    Here the socket is accepted but not read while it waits, in order of arrival
    (`Broker._admit_waiting`); then the protocol `make` gives takes it over as if it had just
    been accepted, and counts it (`Broker.admit`)."""

    def __init__(self, broker: Broker, node_id: int, listener: str, make: Callable[[], asyncio.BaseProtocol]) -> None:
        self.broker = broker
        self.node_id = node_id
        self.listener = listener
        self.make = make
        self.transport: asyncio.Transport
        # Recorded against max.connection.creation.rate; paused, waiting; handed over.
        self.rated = False
        self.waiting = False
        self.entered = False
        # What uvloop read before the pause took hold: it starts reading after connection_made.
        self.early = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it
        if len(self.broker._slot_waiters) >= _LISTEN_BACKLOG:
            # Past a full backlog Kafka's clients are not taken in at all; here they are closed.
            log.info("refusing connection from %s: %s sockets wait already", self.transport.get_extra_info("peername"), _LISTEN_BACKLOG)
            self.transport.abort()
            return
        self.broker._slot_waiters.append(self)
        self.broker._admit_waiting()
        if self.entered:
            return
        self.waiting = True
        self.transport.pause_reading()
        log.debug("connection from %s waits for max.connections or max.connection.creation.rate", self.transport.get_extra_info("peername"))

    def data_received(self, data: bytes) -> None:
        self.early += data
        self.transport.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiting:
            try:
                self.broker._slot_waiters.remove(self)
            except ValueError:
                pass  # dropped by the broker already

    def enter(self) -> None:
        """Hand the socket, and what was read of it, to its protocol."""
        self.entered = True
        protocol = self.make()
        self.transport.set_protocol(protocol)
        if self.waiting:
            self.waiting = False
            self.transport.resume_reading()
        protocol.connection_made(self.transport)
        if not self.early:
            return
        if isinstance(protocol, asyncio.BufferedProtocol):
            feed_received(protocol, self.early)
        else:
            cast(asyncio.Protocol, protocol).data_received(bytes(self.early))


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
