"""What a request handler works with: the seam between the broker and its handlers.

A handler is `handle(context, header, request)`: a `RequestContext` holding who sent the
request (`ClientIdentity`) and what the broker shares with every request (`BrokerServices`,
built once per run: storage, coordinators, configuration, this node, the data
wake-ups), the request's header, and its body as its API's generated TypedDict.
Handlers import this module, never the broker, the dispatcher or the connection; the
broker builds the services and each connection its context.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TYPE_CHECKING, TypeAlias, TypeVar

from ottla.server.security.listeners import SecurityProtocol
from ottla.wire.errors import ErrorCode

# The services' types, for annotations only: importing this module (every handler does)
# loads none of the rooms behind them, so a broker loads a room only when it opens it.
if TYPE_CHECKING:
    from ottla.server.broker_configs import BrokerConfigs
    from ottla.server.cluster.state import ClusterState
    from ottla.server.config import BrokerConfig
    from ottla.server.sendfile import SendfileWorkers
    from ottla.server.features import FinalizedFeatures
    from ottla.server.fetch_sessions import FetchSessionCache
    from ottla.server.groups import GroupCoordinator
    from ottla.server.metrics import BrokerMetrics
    from ottla.server.security.authorizer import AclOperation, Authorizer, ResourceType
    from ottla.server.security.quotas import ClientQuotas
    from ottla.server.security.sasl import SaslAuthenticator
    from ottla.server.security.sasl.credentials import ScramCredentialStore
    from ottla.server.security.tokens import DelegationTokens
    from ottla.server.share import ShareCoordinator
    from ottla.server.telemetry import ClientMetrics
    from ottla.server.txn import TransactionCoordinator
    from ottla.storage import Storage, TopicInfo
    from ottla.wire.api import ApiKey
    from ottla.wire.messages.types import ApiVersionsResponse

# Kafka's principal for a connection that has not authenticated (KafkaPrincipal.ANONYMOUS).
ANONYMOUS = "User:ANONYMOUS"

Body = TypeVar("Body")
# A handler's answer: the response body, or a coroutine that gives it once a parked
# request (a long-poll Fetch, a JoinGroup waiting for its group) can be answered.
Answer: TypeAlias = Body | Coroutine[Any, Any, Body]


class DropConnection(Exception):
    """A request to close a connection without answering (faults on demand, a failed SASL login)."""


class CloseWhenAnswered(Exception):
    """A request with no answer whose failure closes its connection once the requests before
    it are answered: an acks=0 Produce that met an error, which its client learns of only by
    the close (KafkaApis closes the connection, so the client refreshes its metadata)."""


class DataWakeups(Protocol):
    """Fetches parked for data, and the appends that wake them (the broker keeps both)."""

    @property
    def data_version(self) -> int:
        """Counts appends: a fetch reads it before it reads the log, then parks with it."""

    def notify_data(self, topic: str, partition: int) -> None:
        """Wake the fetches parked on this partition: new records, or the partition is gone."""

    async def wait_for_data(self, keys: Iterable[tuple[str, int]], timeout: float, seen_version: int) -> None:
        """Return when one of `keys` gets data after `seen_version`, or after `timeout` seconds."""


class Rooms(Protocol):
    """The services a broker opens on first use rather than at start (the broker is this): a
    broker whose clients use no share groups, SCRAM, delegation tokens or telemetry never
    imports them. Each opens with its state as it was at start, so when it opens is invisible
    to a client."""

    def share_room(self) -> ShareCoordinator: ...

    def scram_room(self) -> ScramCredentialStore: ...

    def tokens_room(self) -> DelegationTokens: ...

    def telemetry_room(self) -> ClientMetrics: ...


class Node:
    """The node a request arrived at, as clients are told to reach it. A plain class: a
    dataclass costs every broker's start most of a millisecond to create."""

    __slots__ = ("node_id", "host", "port")

    def __init__(self, node_id: int, host: str, port: int) -> None:
        self.node_id = node_id
        self.host = host
        self.port = port


@dataclass(slots=True, frozen=True)
class ClientIdentity:
    """Who is at the other end of a connection: fixed when it opens (and when it authenticates).
    `principal` is Kafka's "User:name" form: ANONYMOUS, the subject of a TLS client certificate
    on an SSL listener, or the authenticated user."""

    principal: str
    listener: str  # the name of the listener it connected through (PLAINTEXT, SSL, ...)
    address: str  # "host:port" of the client
    security_protocol: SecurityProtocol = SecurityProtocol.PLAINTEXT


@dataclass(slots=True, frozen=True)
class BrokerServices:
    """What every request of one broker run shares; a restart builds new ones."""

    node: Node
    config: BrokerConfig
    data_dir: Path | None
    storage: Storage
    # The finalized feature levels (KIP-584): ApiVersions reports them, UpdateFeatures changes them.
    features: FinalizedFeatures
    groups: GroupCoordinator
    txn: TransactionCoordinator
    wakeups: DataWakeups
    # The static settings and the dynamic broker configs over them; `config` is their effect.
    broker_configs: BrokerConfigs
    fetch_sessions: FetchSessionCache
    # (api key, lowest, highest version) of every API served: what ApiVersions advertises.
    supported_apis: tuple[tuple[ApiKey, int, int], ...]
    # The rooms opened on first use (the broker keeps them): read through the properties below.
    rooms: Rooms
    # The threads that send large answers; the broker stops them when it stops.
    sendfile_workers: SendfileWorkers
    # The ACLs and their decisions; None when `authorizer.class.name` is empty: no authorization.
    authorizer: Authorizer | None = None
    # Client quotas (Describe/AlterClientQuotas; the dispatcher and the broker enforce them).
    quotas: ClientQuotas = field(default_factory=lambda: _empty_quotas())
    # The topology of a cluster of several nodes in this process (server/cluster/), shared by
    # every node's services; None for a single node, which leads every partition alone.
    cluster: ClusterState | None = None
    # This node as each listener advertises it, by listener name: a client is told the
    # endpoints of the listener it came through, as Kafka does. `node` is the first listener's.
    listener_nodes: Mapping[str, Node] = field(default_factory=dict)
    # The process's counters (server/metrics/): the produce path counts each topic's bytes and
    # messages in where it has them; None counts nothing.
    metrics: BrokerMetrics | None = None
    # Metadata answers by request, each with the topics it is valid for (server/handlers/metadata.py).
    metadata_answers: dict[tuple[Any, ...], tuple[tuple[TopicInfo, ...], Mapping[str, Any]]] = field(default_factory=dict)

    @property
    def share(self) -> ShareCoordinator:
        """The share group coordinator (KIP-932)."""
        return self.rooms.share_room()

    @property
    def scram_credentials(self) -> ScramCredentialStore:
        """SCRAM credentials (the Describe/AlterUserScramCredentials APIs, SCRAM logins)."""
        return self.rooms.scram_room()

    @property
    def tokens(self) -> DelegationTokens:
        """Delegation tokens (KIP-48): disabled without `delegation.token.secret.key`."""
        return self.rooms.tokens_room()

    @property
    def telemetry(self) -> ClientMetrics:
        """Client telemetry (KIP-714): CLIENT_METRICS subscriptions and the client instances' pushes."""
        return self.rooms.telemetry_room()

    def api_versions_body(self) -> ApiVersionsResponse:
        """What ApiVersions answers: every API served, with its versions."""
        return {
            "error_code": ErrorCode.NONE,
            "api_keys": [{"api_key": key, "min_version": low, "max_version": high} for key, low, high in self.supported_apis],
            "throttle_time_ms": 0,
        }


def _empty_quotas() -> ClientQuotas:
    from ottla.server.security.quotas import ClientQuotas

    return ClientQuotas(None, {})


class Encoded(dict[str, Any]):
    """A response body that carries its own encoding (`body`, for the request's version), which
    is sent instead of encoding it again: what a handler that gives the same answer many times
    over keeps (Metadata for topics that did not change). It reads as the dict it is everywhere
    else; a copy made to change it (a throttled or faulted answer) is a plain dict, encoded afresh.
    Shared by the requests it answers, so nothing may change it in place."""

    __slots__ = ("body",)

    def __init__(self, answer: Mapping[str, Any], body: bytes) -> None:
        super().__init__(answer)
        self.body = body


class RequestContext:
    """What a handler works with besides its request and that request's header: who the
    client is and the services of the broker's run.

    Nothing in it changes between one connection's requests, so each connection builds
    one and a request costs no allocation; the services handlers use are copied to plain
    attributes, one lookup away on the hot path (Produce, Fetch, Metadata).

    Authorization is `authorize` (one resource), `authorized` (a batch of names) and
    `authorized_operations` (the bitfields); all allow everything when no authorizer is
    configured. A hot handler reads `context.authorizer` once and skips the calls when it is
    None, so a broker without one pays a single attribute check per request."""

    __slots__ = ("client", "services", "node", "config", "storage", "groups", "txn", "wakeups", "fetch_sessions", "authorizer", "sasl")

    def __init__(self, services: BrokerServices, client: ClientIdentity, sasl: SaslAuthenticator | None = None) -> None:
        self.client = client
        self.services = services
        self.node = services.listener_nodes.get(client.listener, services.node)
        self.config = services.config
        self.storage = services.storage
        self.groups = services.groups
        self.txn = services.txn
        self.wakeups = services.wakeups
        self.fetch_sessions = services.fetch_sessions
        self.authorizer = services.authorizer
        # The connection's SASL exchange on a SASL listener (the SASL handlers drive it), else None.
        self.sasl = sasl

    @property
    def client_host(self) -> str:
        """The client's address without its port, as an ACL's host is compared with it."""
        return acl_host(self.client.address.rpartition(":")[0])

    def authorize(self, operation: AclOperation, resource_type: ResourceType, name: str) -> bool:
        """Whether this connection's principal may do `operation` on the named resource."""
        authorizer = self.authorizer
        return authorizer is None or authorizer.authorize(self.client.principal, self.client_host, operation, resource_type, name)

    def authorized(self, operation: AclOperation, resource_type: ResourceType, names: Iterable[str]) -> set[str]:
        """The names among `names` this principal may do `operation` on (AuthHelper.filterByAuthorized)."""
        authorizer = self.authorizer
        if authorizer is None:
            return set(names)
        principal, host = self.client.principal, self.client_host
        return {name for name in set(names) if authorizer.authorize(principal, host, operation, resource_type, name)}

    def authorized_operations(self, resource_type: ResourceType, name: str) -> int:
        """The authorized-operations bitfield of a resource; every supported operation without an authorizer."""
        authorizer = self.authorizer
        if authorizer is None:
            from ottla.server.security.authorizer import all_operations_bits

            return all_operations_bits(resource_type)
        return authorizer.authorized_operations(self.client.principal, self.client_host, resource_type, name)


@functools.lru_cache(maxsize=4096)
def acl_host(host: str) -> str:
    """A client's address as Kafka compares it with an ACL's host (InetAddress.getHostAddress):
    IPv6 uncompressed, each group without leading zeros (`2001:db8:0:0:0:0:0:1`, a zone kept),
    an IPv4-mapped one as its IPv4 address (Java's dual-stack sockets give an Inet4Address).
    ACLs copied from a Kafka cluster then match as they do there. Anything else is unchanged."""
    address, percent, zone = host.strip("[]").partition("%")
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return host
    if isinstance(parsed, ipaddress.IPv4Address):
        return str(parsed)
    if parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return ":".join(f"{int(group, 16):x}" for group in parsed.exploded.split(":")) + percent + zone
