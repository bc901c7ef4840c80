"""Client quotas, kept and enforced as Kafka 4.4's ClientQuotaManager keeps and enforces them.

A quota binds a key (`producer_byte_rate`, `consumer_byte_rate`, `request_percentage`,
`controller_mutation_rate`; `connection_creation_rate` for an IP) to an entity: a user, a
client id, a user and a client id, or an IP, each name possibly `<default>` (None here).
The quota that applies to a request is the first one set along Kafka's precedence
(ClientQuotaManager.DefaultQuotaCallback):

    /users/<user>/clients/<client-id>     /users/<default>/clients/<client-id>
    /users/<user>/clients/<default>       /users/<default>/clients/<default>
    /users/<user>                         /users/<default>
                                          /clients/<client-id>
                                          /clients/<default>

read down the left column, then the right. Usage is counted per the entity that quota was
found at, a default standing for each user or client id on its own: every client of user
alice shares alice's `/users/alice` quota, while `/clients/<default>` gives each client id
a budget of its own.

Usage is a Kafka `Rate`: a sum over `quota.window.num` + 1 samples of
`quota.window.size.seconds` each, divided by the time they span (never less than
`quota.window.num` - 1 whole windows, so a first burst is not measured over a few
milliseconds). A request that takes the rate over the bound is throttled for
`(rate - bound) / bound × window` ms (QuotaUtils.throttleTime): the time the client must
stay quiet for the rate to fall back to the bound. Byte-rate throttles are unbounded;
request-percentage ones are capped at one window (ClientRequestQuotaManager).

The quotas live in `<data dir>/client-quotas.json`, replaced whole and durably on each
change (`storage.files.replace_file`), as the ACLs and SCRAM credentials are: Kafka keeps
them as records in its metadata log; they are a small table an operator alters now and
then, and every decision reads the in-memory one. Over PostgreSQL the quotas are the
database's, shared by every broker on it (server/security/database.py): `record_change` then
takes each change instead of the file, and `reset` puts the table as another broker left it.

An IP entity is named by an address or by a host name, kept as given; a host name's quota
applies to the address it resolves to, as Kafka's ClientQuotaMetadataManager.handleIpQuota
applies it to InetAddress.getByName(name). Resolving can take seconds (a resolver that does
not answer), so it is never done on the event loop: AlterClientQuotas resolves a name before
it accepts it (`resolve_host`), and a name read from the file or the database is resolved in
the background, its quota applying once it has.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import math
import socket
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from ottla.server.java_hashing import default_capacity, java_order, string_hash, table_size_for
from ottla.storage.files import replace_file
from ottla.wire.errors import ErrorCode, KafkaError

log = logging.getLogger("ottla.quotas")

FILE_NAME = "client-quotas.json"
_FORMAT_VERSION = 1

USER = "user"
CLIENT_ID = "client-id"
IP = "ip"
ENTITY_TYPES = (USER, CLIENT_ID, IP)

# An entity: its (entity type, name) pairs sorted by type; a None name is `<default>`.
Entity = tuple[tuple[str, str | None], ...]


class QuotaKind(Enum):
    """The quota keys Kafka 4.4 defines (QuotaConfig), with the type each value must have: a
    DOUBLE (no integral type), else a LONG or an INT and its largest value."""

    PRODUCER_BYTE_RATE = ("producer_byte_rate", "a LONG")
    CONSUMER_BYTE_RATE = ("consumer_byte_rate", "a LONG")
    REQUEST_PERCENTAGE = ("request_percentage", None)
    CONTROLLER_MUTATION_RATE = ("controller_mutation_rate", None)
    CONNECTION_CREATION_RATE = ("connection_creation_rate", "an INT")

    def __init__(self, key: str, integral_type: str | None) -> None:
        self.key = key
        self.integral_type = integral_type
        # As Java compares: the bound converted to a double (2**63 for a LONG).
        self.integral_max = float(2**63 - 1 if integral_type == "a LONG" else 2**31 - 1)


_BY_KEY = {kind.key: kind for kind in QuotaKind}
_IP_KEYS = frozenset({QuotaKind.CONNECTION_CREATION_RATE.key})
_CLIENT_KEYS = frozenset(_BY_KEY) - _IP_KEYS


class QuotaError(Exception):
    """A request Kafka refuses: its error code and message."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def ip_address_of(name: str) -> str | None:
    """The address an IP entity's name spells, in its canonical form (an IPv6 one possibly in
    brackets, as InetAddress.getByName reads it); None for a host name."""
    try:
        if len(name) > 2 and name[0] == "[" and name[-1] == "]":
            return str(ipaddress.IPv6Address(name[1:-1]))
        return str(ipaddress.ip_address(name))
    except ValueError:
        return None


def _first_address(infos: Sequence[tuple[int, int, int, str, tuple[Any, ...]]]) -> str | None:
    """The address InetAddress.getByName takes of a name's: the first IPv4 one, else the first
    (java.net.preferIPv6Addresses is false by default)."""
    for family, _, _, _, address in infos:
        if family == socket.AF_INET:
            return str(address[0])
    return str(infos[0][4][0]) if infos else None


async def resolve_host(name: str) -> str | None:
    """The address host name `name` resolves to, or None when it does not resolve. Asked in
    the loop's executor: a lookup may wait out the resolver's timeouts (glibc: 5 s a try)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError):
        return None
    return _first_address(infos)


def make_entity(pairs: Iterable[tuple[str, str | None]], addresses: Mapping[str, str] | None = None) -> Entity:
    """An entity from its (type, name) pairs, checked as ClientQuotaControlManager checks it.
    A type named twice keeps its last name, as AlterClientQuotasRequest.entries() builds a map.
    An IP entity's host name must be in `addresses`, resolved beforehand (`resolve_host`)."""
    entries = dict(pairs)
    if not entries:
        raise QuotaError(ErrorCode.INVALID_REQUEST, "Invalid empty client quota entity")
    for entity_type, name in entries.items():
        if entity_type not in ENTITY_TYPES:
            raise QuotaError(ErrorCode.INVALID_REQUEST, f"Unhandled client quota entity type: {entity_type}")
        if name == "":
            raise QuotaError(ErrorCode.INVALID_REQUEST, f"Empty {entity_type} not supported")
    if IP in entries:
        if len(entries) > 1:
            raise QuotaError(ErrorCode.INVALID_REQUEST, "Invalid quota entity combination, IP entity shouldnot be combined with User or ClientId")  # sic, Kafka 4.4
        ip = entries[IP]
        # ClientQuotaControlManager.isValidIpEntity: whatever InetAddress.getByName resolves.
        if ip is not None and ip_address_of(ip) is None and (addresses is None or ip not in addresses):
            raise QuotaError(ErrorCode.INVALID_REQUEST, f"{ip} is not a valid IP or resolvable host.")
    return tuple(sorted(entries.items()))


def usable(value: float) -> bool:
    """A bound the throttle computation can divide by: finite, not zero, not denormal. Kafka
    lets NaN through (its Java cast makes it harmless); Ottla refuses every unusable bound."""
    return math.isfinite(value) and abs(value) >= sys.float_info.min


def check_value(entity: Entity, key: str, value: float) -> None:
    """Refuse a key the entity cannot have, or a value Kafka refuses
    (ClientQuotaControlManager.validateQuotaKeyValue), or one that is not `usable`."""
    allowed = _IP_KEYS if entity[0][0] == IP else _CLIENT_KEYS
    if key not in allowed:
        raise QuotaError(ErrorCode.INVALID_REQUEST, f"Invalid configuration key {key}")
    if not math.isfinite(value):
        raise QuotaError(ErrorCode.INVALID_REQUEST, f"Quota {key} must be a finite number")
    if value <= 0:
        raise QuotaError(ErrorCode.INVALID_REQUEST, f"Quota {key} must be greater than 0")
    if not usable(value):
        raise QuotaError(ErrorCode.INVALID_REQUEST, f"Quota {key} must be at least {sys.float_info.min}")
    kind = _BY_KEY[key]
    if kind.integral_type is not None:
        if value > kind.integral_max:
            raise QuotaError(ErrorCode.INVALID_REQUEST, f"Proposed value for {key} is too large for {kind.integral_type}.")
        # getErrorForIntegralQuotaValue: a fractional part up to 1e-6 passes.
        if math.fmod(value, 1.0) > 1e-6:
            raise QuotaError(ErrorCode.INVALID_REQUEST, f"{key} cannot be a fractional value.")


@dataclass(slots=True, frozen=True)
class Refusal:
    """Why a new socket is refused, and how long it is held, unread, before it is closed.
    Kafka closes a socket over its IP's connection_creation_rate only once the throttle time
    has passed (its Acceptor's throttledSockets), so that the client does not come straight
    back; every other refusal closes at once."""

    reason: str
    close_after_ms: int = 0

    def close(self, transport: asyncio.BaseTransport) -> None:
        if self.close_after_ms <= 0:
            transport.close()
            return
        if isinstance(transport, asyncio.ReadTransport):
            transport.pause_reading()
        asyncio.get_running_loop().call_later(self.close_after_ms / 1000, transport.close)


@dataclass(slots=True, frozen=True)
class FilterComponent:
    """One DescribeClientQuotas filter component: `match` None with `exact` False is "any"."""

    entity_type: str
    match: str | None
    exact: bool


def entity_matches(entity: Entity, components: Iterable[FilterComponent], strict: bool) -> bool:
    """ClientQuotasImage.entityMatches: exact names (a default is the name None), "any" needs
    the type only, and a strict filter names every type the entity has."""
    entries = dict(entity)
    count = 0
    for component in components:
        count += 1
        if component.entity_type not in entries:
            return False
        if component.exact and entries[component.entity_type] != component.match:
            return False
    return not strict or count == len(entries)


def entity_hash(entity: Entity) -> int:
    """ClientQuotaEntity.hashCode: Objects.hash of its map of type to name (a default's null
    hashing to 0), as an unsigned 32-bit int."""
    return (31 + sum(string_hash(kind) ^ (0 if name is None else string_hash(name)) for kind, name in entity)) & 0xFFFFFFFF


def image_order(image: Sequence[Entity], changed: Sequence[Entity], present: Iterable[Entity]) -> list[Entity]:
    """The order in which Kafka 4.4's ClientQuotasImage holds its entities after a delta
    (ClientQuotasDelta.apply): a `new HashMap<>(old size)` given the old image's entities still
    set, in their order, then the delta's new ones in its own HashMap's order; `changed` are
    the entities a change touched, first touch first, `present` those set after it."""
    kept = set(present)
    old = set(image)
    new = [entity for entity in java_order(list(dict.fromkeys(changed)), entity_hash, default_capacity(len(changed))) if entity in kept and entity not in old]
    entities = [entity for entity in image if entity in kept] + new
    capacity = table_size_for(len(image))
    while len(entities) > int(capacity * 0.75):
        capacity *= 2
    return java_order(entities, entity_hash, capacity)


class Rate:
    """Kafka's `Rate` over a `SampledStat`: values summed in samples of `window_ms`, at most
    `samples` + 1 of them kept, the sum divided by the time they span."""

    __slots__ = ("samples", "window_ms", "_starts", "_values", "_current", "last_record_ms")

    def __init__(self, samples: int, window_ms: int) -> None:
        self.samples = samples
        self.window_ms = window_ms
        self._starts: list[float] = []
        self._values: list[float] = []
        self._current = 0
        self.last_record_ms = 0.0

    def record(self, value: float, now_ms: float) -> None:
        if not self._starts:
            self._starts.append(now_ms)
            self._values.append(0.0)
        elif now_ms - self._starts[self._current] >= self.window_ms:
            self._current = (self._current + 1) % (self.samples + 1)
            if self._current >= len(self._starts):
                self._starts.append(now_ms)
                self._values.append(0.0)
            else:
                self._starts[self._current] = now_ms
                self._values[self._current] = 0.0
        self._values[self._current] += value
        self.last_record_ms = now_ms

    def _purge(self, now_ms: float) -> None:
        expire_age = self.samples * self.window_ms
        for index, start in enumerate(self._starts):
            if now_ms - start >= expire_age:
                self._starts[index] = now_ms
                self._values[index] = 0.0

    def window_size_ms(self, now_ms: float) -> float:
        """The time the samples span (Rate.windowSize), purging samples too old to count."""
        self._purge(now_ms)
        elapsed = now_ms - min(self._starts, default=now_ms)
        full_windows = int(elapsed // self.window_ms)
        if full_windows < self.samples - 1:
            elapsed += (self.samples - 1 - full_windows) * self.window_ms
        return max(elapsed, 1.0)

    def measure(self, now_ms: float) -> float:
        """The rate per second now."""
        window = self.window_size_ms(now_ms)
        return sum(self._values) / (window / 1000)

    def throttle_time_ms(self, bound: float, now_ms: float) -> int:
        """QuotaUtils.throttleTime: how long the client must be quiet for the rate to fall to `bound`."""
        window = self.window_size_ms(now_ms)
        value = sum(self._values) / (window / 1000)
        if value <= bound:
            return 0
        throttle = (value - bound) / bound * window
        # Never raise on the request path: what does not fit (an overflow, a bound no longer
        # usable) is one window; the wire's throttle_time_ms is an INT32.
        return min(round(throttle), 2**31 - 1) if math.isfinite(throttle) else round(window)


class TokenBucket:
    """Kafka's TokenBucket (KIP-599): credits refilled at the quota's rate per second up to a
    burst of samples x window seconds x rate, full at first; the quota is exhausted below zero."""

    __slots__ = ("tokens", "last_ms")

    def __init__(self) -> None:
        self.tokens = math.inf  # the first refill fills it
        self.last_ms = 0.0

    def measure(self, rate: float, burst: float, now_ms: float) -> float:
        self.tokens = min(burst, self.tokens + rate * (now_ms - self.last_ms) / 1000)
        self.last_ms = now_ms
        return self.tokens

    def record(self, permits: float, rate: float, burst: float, now_ms: float) -> None:
        self.tokens = min(burst, self.measure(rate, burst, now_ms) - permits)


class MutationQuota:
    """One request's `controller_mutation_rate` (ControllerMutationQuotaManager), counted in
    partitions created or deleted. Strict from the versions whose answers carry
    THROTTLING_QUOTA_EXCEEDED: a mutation is refused while the bucket is below zero (one
    accepted may take it below). Permissive before them: every mutation is accepted and the
    request throttled once the bucket is below zero. `throttle_time_ms` is the time for the
    bucket to refill to zero, as it stood at the last refusal or throttle."""

    def __init__(self, bucket: TokenBucket, rate: float, burst: float, strict: bool) -> None:
        self._bucket = bucket
        self._rate = rate
        self._burst = burst
        self._strict = strict
        self.throttle_time_ms = 0

    def record(self, permits: int, now_ms: float | None = None) -> None:
        """Count one topic's partitions; KafkaError THROTTLING_QUOTA_EXCEEDED when refused."""
        now = time.monotonic() * 1000 if now_ms is None else now_ms
        bucket = self._bucket
        if self._strict:
            if bucket.measure(self._rate, self._burst, now) < 0:
                self._throttled(bucket.tokens)
                raise KafkaError(ErrorCode.THROTTLING_QUOTA_EXCEEDED, "The throttling quota has been exceeded.")
            bucket.record(permits, self._rate, self._burst, now)
            return
        bucket.record(permits, self._rate, self._burst, now)
        if bucket.tokens < 0:
            self._throttled(bucket.tokens)

    def _throttled(self, tokens: float) -> None:
        self.throttle_time_ms = min(round(-tokens / self._rate * 1000), 2**31 - 1)


def _user_of(principal: str) -> str:
    """The user a quota names for a principal: its name, whatever its type (Session.sanitizedUser)."""
    return principal.partition(":")[2]


# Kafka's precedence, each level (user part, client part): "name" is the request's own,
# None the default, "" the part not in the entity.
_LEVELS: tuple[tuple[str | None, str | None], ...] = (
    ("name", "name"),
    ("name", None),
    ("name", ""),
    (None, "name"),
    (None, None),
    (None, ""),
    ("", "name"),
    ("", None),
)

# The throttles a quota's usage is counted for: (kind, tags) -> Rate.
SensorKey = tuple[QuotaKind, str, str]


def _usable_only(quotas: dict[Entity, dict[str, float]]) -> dict[Entity, dict[str, float]]:
    """`quotas` without the values no request may set (non-finite, denormal: written by an
    older Ottla), each dropped with a log line."""
    kept: dict[Entity, dict[str, float]] = {}
    for entity, values in quotas.items():
        for key, value in values.items():
            if not usable(value):
                log.warning("Ignoring the client quota %s=%r of %s: not a usable bound", key, value, entity)
        usable_values = {key: value for key, value in values.items() if usable(value)}
        if usable_values:
            kept[entity] = usable_values
    return kept


class ClientQuotas:
    """The quotas set, and the usage counted against them.

    `active` is what the hot path checks: False while no user or client-id quota is set,
    and then nothing is looked up or counted."""

    # Drop the usage of entities idle for this long once there are this many of them.
    _SENSOR_IDLE_MS = 3_600_000
    _SENSORS_BEFORE_SWEEP = 10_000

    def __init__(
        self, path: Path | None, quotas: dict[Entity, dict[str, float]], samples: int = 11, window_seconds: int = 1,
        controller_samples: int = 11, controller_window_seconds: int = 1,
    ) -> None:
        self._path = path
        self._quotas = quotas
        # The entities in Kafka's image order, which DescribeClientQuotas walks: as a broker
        # loads them, one delta from an empty image.
        self._image = image_order([], list(quotas), quotas)
        self.samples = samples
        self.window_ms = window_seconds * 1000
        # controller.quota.window.*: a mutation bucket's burst is this many seconds of its rate.
        self.controller_burst_seconds = controller_samples * controller_window_seconds
        self._sensors: dict[SensorKey, Rate] = {}
        self._buckets: dict[SensorKey, TokenBucket] = {}
        self._resolved: dict[tuple[QuotaKind, str, str], tuple[float, str, str] | None] = {}
        self.active = False
        self.on_change: Callable[[ClientQuotas], None] | None = None
        # Over PostgreSQL: what records each change (the altered entities' quotas as they now
        # are, empty for none) instead of the file.
        self.record_change: Callable[[dict[Entity, dict[str, float]]], None] | None = None
        # The addresses of the IP entities named by a host name; the connection_creation_rate
        # of each address, and the `<default>` IP's (`ip_quota`); the names being resolved.
        self._addresses: dict[str, str] = {}
        self._ip_bounds: dict[str, float] = {}
        self._default_ip_bound: float | None = None
        self._resolving: dict[str, asyncio.Task[None]] = {}
        # Closed with the broker that ran it: no name is resolved any more.
        self._closed = False
        # As a broker replays its metadata image: each entity's rate applied in table order.
        key = QuotaKind.CONNECTION_CREATION_RATE.key
        self._changed([(entity[0][1], values[key]) for entity, values in quotas.items() if entity[0][0] == IP and key in values])

    @classmethod
    def open(
        cls, data_dir: Path | None, samples: int = 11, window_seconds: int = 1, controller_samples: int = 11, controller_window_seconds: int = 1,
    ) -> ClientQuotas:
        path = None if data_dir is None else data_dir / FILE_NAME
        quotas: dict[Entity, dict[str, float]] = {}
        if path is not None and path.exists():
            for row in json.loads(path.read_text(encoding="utf-8"))["quotas"]:
                entity: Entity = tuple(sorted((entity_type, name) for entity_type, name in row["entity"]))
                quotas[entity] = {key: float(value) for key, value in row["values"].items()}
        return cls(path, _usable_only(quotas), samples, window_seconds, controller_samples, controller_window_seconds)

    # The table: what DescribeClientQuotas shows and AlterClientQuotas changes.

    def entities(self) -> Mapping[Entity, Mapping[str, float]]:
        """Every entity's quotas, in Kafka's image order (`image_order`)."""
        return {entity: self._quotas[entity] for entity in self._image}

    def alter(self, changes: Iterable[tuple[Entity, Mapping[str, float | None]]], addresses: Mapping[str, str] | None = None) -> None:
        """Set (a value) or remove (None) each key of each entity, then write the whole table once.
        `addresses`: what the IP entities' host names resolved to (`resolve_host`)."""
        self._addresses.update(addresses or {})
        altered: list[Entity] = []
        rates: list[tuple[str | None, float | None]] = []
        for entity, values in changes:
            altered.append(entity)
            current = self._quotas.setdefault(entity, {})
            for key, value in values.items():
                # As ClientQuotaControlManager records a change: only what differs from the table.
                if current.get(key) == value or (value is None and key not in current):
                    continue
                if entity[0][0] == IP and key == QuotaKind.CONNECTION_CREATION_RATE.key:
                    rates.append((entity[0][1], value))
                if value is None:
                    del current[key]
                else:
                    current[key] = value
            if not current:
                del self._quotas[entity]
        self._image = image_order(self._image, altered, self._quotas)
        if self.record_change is not None:
            self.record_change({entity: dict(self._quotas.get(entity, {})) for entity in altered})
        else:
            self._write()
        self._changed(rates)

    def reset(self, quotas: dict[Entity, dict[str, float]]) -> None:
        """The table replaced by `quotas`, as the database now has it: the connection_creation_rate
        of each IP entity that differs is applied as a change (`_apply_ip_rate`)."""
        key = QuotaKind.CONNECTION_CREATION_RATE.key
        before = {entity[0][1]: values[key] for entity, values in self._quotas.items() if entity[0][0] == IP and key in values}
        self._quotas = _usable_only(quotas)
        self._image = image_order([], list(self._quotas), self._quotas)
        after = {entity[0][1]: values[key] for entity, values in self._quotas.items() if entity[0][0] == IP and key in values}
        rates: list[tuple[str | None, float | None]] = [(name, value) for name, value in after.items() if before.get(name) != value]
        rates += [(name, None) for name in before if name not in after]
        self._changed(rates)

    def _write(self) -> None:
        if self._path is None:
            return
        rows = [{"entity": [list(pair) for pair in entity], "values": dict(sorted(values.items()))} for entity, values in sorted(self._quotas.items(), key=lambda item: repr(item[0]))]
        replace_file(self._path, json.dumps({"version": _FORMAT_VERSION, "quotas": rows}, indent=1).encode())

    def _changed(self, rates: Iterable[tuple[str | None, float | None]]) -> None:
        """After a change of the table, `rates` the IP entities' connection_creation_rate changes in it."""
        # Only which quota applies may have changed: the usage measured so far stays, as
        # ClientQuotaManager.updateQuota keeps its sensors and changes their bounds.
        self._resolved.clear()
        self.active = any(entity[0][0] != IP for entity in self._quotas)
        for name, value in rates:
            self._apply_ip_rate(name, value)
        if self.on_change is not None:
            self.on_change(self)

    # Enforcement.

    def quota(self, kind: QuotaKind, principal: str, client_id: str) -> tuple[float, str, str] | None:
        """The bound that applies to `principal` and `client_id`, with the (user, client id) its
        usage is counted under; None when no quota applies."""
        user = _user_of(principal)
        cache_key = (kind, user, client_id)
        try:
            return self._resolved[cache_key]
        except KeyError:
            pass
        found: tuple[float, str, str] | None = None
        for user_part, client_part in _LEVELS:
            pairs: list[tuple[str, str | None]] = []
            if user_part != "":
                pairs.append((USER, user if user_part == "name" else None))
            if client_part != "":
                pairs.append((CLIENT_ID, client_id if client_part == "name" else None))
            values = self._quotas.get(tuple(sorted(pairs)))
            if values is not None and kind.key in values:
                # A default counts each user or client id on its own (DefaultQuotaCallback.quotaMetricTags).
                found = (values[kind.key], user if user_part != "" else "", client_id if client_part != "" else "")
                break
        self._resolved[cache_key] = found
        return found

    def record(self, kind: QuotaKind, principal: str, client_id: str, value: float, now_ms: float | None = None) -> int:
        """Count `value` (bytes, or request-time percent-seconds) and return the throttle time
        in ms it earns: 0 within the quota or without one."""
        found = self.quota(kind, principal, client_id)
        if found is None:
            return 0
        bound, user, client = found
        now = time.monotonic() * 1000 if now_ms is None else now_ms
        key = (kind, user, client)
        rate = self._sensors.get(key)
        if rate is None:
            if len(self._sensors) >= self._SENSORS_BEFORE_SWEEP:
                self._sweep(now)
            rate = self._sensors[key] = Rate(self.samples, self.window_ms)
        rate.record(value, now)
        throttle = rate.throttle_time_ms(bound, now)
        if kind is QuotaKind.REQUEST_PERCENTAGE:
            throttle = min(throttle, self.window_ms)
        return throttle

    def mutation_quota(self, principal: str, client_id: str, strict: bool) -> MutationQuota | None:
        """The `controller_mutation_rate` a CreateTopics, CreatePartitions or DeleteTopics
        request counts its partitions against; None when none applies."""
        if not self.active:
            return None
        found = self.quota(QuotaKind.CONTROLLER_MUTATION_RATE, principal, client_id)
        if found is None:
            return None
        rate, user, client = found
        key = (QuotaKind.CONTROLLER_MUTATION_RATE, user, client)
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._SENSORS_BEFORE_SWEEP:
                now = time.monotonic() * 1000
                self._buckets = {k: b for k, b in self._buckets.items() if now - b.last_ms <= self._SENSOR_IDLE_MS}
            bucket = self._buckets[key] = TokenBucket()
        return MutationQuota(bucket, rate, rate * self.controller_burst_seconds, strict)

    def unrecord(self, kind: QuotaKind, principal: str, client_id: str, value: float, now_ms: float | None = None) -> None:
        """Take back what `record` counted (a throttled Fetch answers no data)."""
        found = self.quota(kind, principal, client_id)
        if found is not None:
            rate = self._sensors.get((kind, found[1], found[2]))
            if rate is not None:
                rate.record(-value, time.monotonic() * 1000 if now_ms is None else now_ms)

    def _sweep(self, now_ms: float) -> None:
        for key, rate in list(self._sensors.items()):
            if now_ms - rate.last_record_ms > self._SENSOR_IDLE_MS:
                del self._sensors[key]

    # Connection-creation rates (KIP-612).

    def ip_quota(self, ip: str) -> float | None:
        """`connection_creation_rate` for address `ip`: its own, else the `<default>` IP's."""
        bound = self._ip_bounds.get(ip)
        return self._default_ip_bound if bound is None else bound

    def _apply_ip_rate(self, name: str | None, value: float | None) -> None:
        """One change of an IP entity's connection_creation_rate applied to its address, as
        ClientQuotaMetadataManager.handleIpQuota applies each change it replays
        (ConnectionQuotas.updateIpConnectionRateQuota, keyed by InetAddress): setting a value
        replaces the address's, and removing one removes the address's even when another name
        of that address still has one in the table (the table, which DescribeClientQuotas
        shows, keeps it). A host name not resolved yet is resolved in the background, its
        value applied then."""
        if name is None:
            self._default_ip_bound = value
            return
        address = ip_address_of(name) or self._addresses.get(name)
        if value is None:
            # A name removed is resolved again should it come back, as Kafka resolves each change.
            self._addresses.pop(name, None)
        elif address is None:
            address = self._resolve_later(name)
        if address is None:
            return
        if value is None:
            self._ip_bounds.pop(address, None)
        else:
            self._ip_bounds[address] = value

    def close(self) -> None:
        """Stop resolving host names (the broker stops): the lookups still running are
        cancelled, so that none outlives the broker's event loop."""
        self._closed = True
        for task in list(self._resolving.values()):
            task.cancel()

    def _resolve_later(self, name: str) -> str | None:
        """Start resolving host name `name` on the running loop; without one (a table opened
        outside the broker) nothing waits on it, so resolve it now and return its address."""
        if name in self._resolving or self._closed:
            return None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            try:
                address = _first_address(socket.getaddrinfo(name, None, type=socket.SOCK_STREAM))
            except (OSError, UnicodeError, ValueError):
                address = None
            return self._resolved_to(name, address)
        task = self._resolving[name] = loop.create_task(self._resolve(name))
        task.add_done_callback(lambda _: self._resolving.pop(name, None))
        return None

    async def _resolve(self, name: str) -> None:
        address = self._resolved_to(name, await resolve_host(name))
        value = self._quotas.get(((IP, name),), {}).get(QuotaKind.CONNECTION_CREATION_RATE.key)
        if address is not None and value is not None:
            self._ip_bounds[address] = value

    def _resolved_to(self, name: str, address: str | None) -> str | None:
        """Keep what `name` resolved to while its quota is set; None when it is not to apply."""
        if address is None:
            # As Kafka's broker does when getByName fails on a quota it replays: log, apply nothing.
            log.warning("Not applying the connection_creation_rate of ip %s: %s is not a valid IP or resolvable host.", name, name)
            return None
        if ((IP, name),) not in self._quotas:
            return None
        self._addresses[name] = address
        return address


class ConnectionRates:
    """Connections accepted per second per IP (a `connection_creation_rate` quota), measured as
    Kafka's ConnectionQuotas measures them. The broker-wide max.connection.creation.rate delays
    a socket instead of refusing it: the broker keeps that one (`Broker._creation_delay_ms`)."""

    def __init__(self, quotas: ClientQuotas) -> None:
        self.quotas = quotas
        self._per_ip: dict[str, Rate] = {}

    def refusal(self, ip: str, now_ms: float | None = None) -> Refusal | None:
        """Count a new connection from `ip`, or refuse it, held for its throttle time (at most
        a quota window: ConnectionQuotas.recordIpConnectionMaybeThrottle's boundedThrottleTime)."""
        now = time.monotonic() * 1000 if now_ms is None else now_ms
        bound = self.quotas.ip_quota(ip)
        if bound is None:
            return None
        rate = self._per_ip.get(ip)
        if rate is None:
            if len(self._per_ip) >= ClientQuotas._SENSORS_BEFORE_SWEEP:
                self._per_ip = {key: value for key, value in self._per_ip.items() if now - value.last_record_ms <= ClientQuotas._SENSOR_IDLE_MS}
            rate = self._per_ip[ip] = Rate(self.quotas.samples, self.quotas.window_ms)
        rate.record(1, now)
        if rate.measure(now) > bound:
            throttle_ms = min(rate.throttle_time_ms(bound, now), rate.window_ms)
            rate.record(-1, now)
            return Refusal(f"connection_creation_rate quota ({bound:g}/s) exceeded for {ip}", int(throttle_ms))
        return None
