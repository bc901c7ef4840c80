"""Client telemetry (KIP-714): subscriptions, the client instances that ask for them, and the
metrics those clients push.

A subscription is a CLIENT_METRICS config resource (type 16), set with IncrementalAlterConfigs
as `kafka-client-metrics --alter` does: `metrics` (name prefixes; `*` is all), `interval.ms`
(100..3600000, default 5 minutes) and `match` (`selector=regex` pairs over client_instance_id,
client_id, client_software_name, client_software_version, client_source_address and
client_source_port; none matches every client). Subscriptions are kept in
`client-metrics.json` in the data directory, written whole on each change.

A client instance is what GetTelemetrySubscriptions answers: the union of the matching
subscriptions' metrics, their shortest interval, and a subscription id derived from both (a
CRC32C of them XORed with the instance id's hash, as Kafka's ClientMetricsManager does). A
subscription change re-evaluates every instance on its next request. Instances are kept in an
LRU of MAX_INSTANCES, dropped after three push intervals (at least a minute) without a request.

Pushed metrics (OTLP MetricsData, decoded with `opentelemetry-proto`) keep their latest value
per metric and attributes; the client sends sums as deltas (DeltaTemporality is true), added up
here into totals. Only the metrics the instance's subscription requested are kept (the selector
a Kafka client applies before pushing: a name prefix, or `*`), and only names a Prometheus
family can carry: any client may push, so what it pushes must not reach `/metrics` unasked.
`/metrics` exposes them labelled by client id and instance id.

Ottla does not keep a connection's client software name and version (ApiVersions carries them),
so a `match` on either sees an empty string.
"""

from __future__ import annotations

import json
import re
import struct
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import crc32c

from ottla.storage.files import replace_file
from ottla.wire.errors import ErrorCode
from ottla.wire.records.compression import Compression, decompress

FILE_NAME = "client-metrics.json"
METRICS, INTERVAL_MS, MATCH = "metrics", "interval.ms", "match"
CONFIG_NAMES = (INTERVAL_MS, MATCH, METRICS)
# ClientMetricsConfigs' ConfigDef documentation, which DescribeConfigs gives when asked.
DOCUMENTATION = {METRICS: "Telemetry metric name prefix list", INTERVAL_MS: "Metrics push interval in milliseconds", MATCH: "Client match criteria"}
ALL_METRICS = "*"
DEFAULT_INTERVAL_MS = 5 * 60 * 1000
MIN_INTERVAL_MS, MAX_INTERVAL_MS = 100, 3_600_000
SELECTORS = ("client_instance_id", "client_id", "client_software_name", "client_software_version", "client_source_address", "client_source_port")
# The codecs offered to clients, in Kafka's order of preference (ClientMetricsManager).
ACCEPTED_COMPRESSION = (Compression.ZSTD, Compression.LZ4, Compression.GZIP, Compression.SNAPPY)
MAX_INSTANCES = 16384
MIN_EXPIRY_MS = 60_000
# Most distinct series one instance keeps, and all instances together: a client pushing more is
# cut, not the broker's memory or the size of a /metrics scrape.
MAX_SERIES_PER_INSTANCE = 2000
MAX_SERIES = 100_000
_FORMAT_VERSION = 1
# ConfigSource and ConfigType codes (DescribeConfigsResponse), and AlterConfigOp.OpType.
_CLIENT_METRICS_CONFIG, _DEFAULT_CONFIG = 7, 5
_TYPES = {INTERVAL_MS: 3, MATCH: 7, METRICS: 7}  # INT, LIST
_SET, _DELETE, _APPEND, _SUBTRACT = 0, 1, 2, 3


class ClientMetricsError(Exception):
    """A refused subscription change, with the Kafka error it is answered with."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True, frozen=True)
class Subscription:
    name: str
    metrics: frozenset[str]
    interval_ms: int
    match: tuple[tuple[str, re.Pattern[str]], ...]


@dataclass(slots=True, frozen=True)
class ClientInfo:
    """What a subscription can match a client on."""

    client_id: str
    source_address: str
    source_port: str
    software_name: str = ""
    software_version: str = ""


@dataclass(slots=True)
class Series:
    kind: str  # "gauge" or "counter"
    value: float


@dataclass(slots=True)
class ClientInstance:
    instance_id: bytes
    client: ClientInfo
    version: int
    subscription_id: int
    metrics: tuple[str, ...]
    push_interval_ms: int
    last_get_ms: int = 0
    last_push_ms: int = 0
    last_seen_ms: int = 0
    terminating: bool = False
    last_error: ErrorCode = ErrorCode.NONE
    pushes: int = 0
    series: dict[tuple[str, tuple[tuple[str, str], ...]], Series] = field(default_factory=dict)

    @property
    def expiry_ms(self) -> int:
        return max(MIN_EXPIRY_MS, 3 * self.push_interval_ms)

    def may_get(self, now_ms: int) -> bool:
        """ClientMetricsInstance.maybeUpdateGetRequestTimestamp: one GetTelemetrySubscriptions per interval."""
        if now_ms - max(self.last_get_ms, self.last_push_ms) >= self.push_interval_ms:
            self.last_get_ms = now_ms
            return True
        return False

    def may_push(self, now_ms: int) -> bool:
        """ClientMetricsInstance.maybeUpdatePushRequestTimestamp: the first push after a Get is
        taken early (clients jitter the interval by +-50%), later ones one interval apart."""
        accepted = self.last_get_ms > self.last_push_ms or now_ms - self.last_push_ms >= self.push_interval_ms
        if accepted:
            self.last_push_ms = now_ms
        return accepted


def parse_subscription(name: str, values: Mapping[str, str]) -> Subscription:
    """A subscription from its configs as given, or ClientMetricsError as Kafka refuses them."""
    if not name:
        raise ClientMetricsError(ErrorCode.INVALID_REQUEST, "Subscription name can't be empty")
    for key in values:
        if key not in CONFIG_NAMES:
            raise ClientMetricsError(ErrorCode.INVALID_REQUEST, f"Unknown client metrics configuration: {key}")
    interval = DEFAULT_INTERVAL_MS
    if INTERVAL_MS in values:
        try:
            interval = int(values[INTERVAL_MS].strip())
        except ValueError:
            raise ClientMetricsError(ErrorCode.INVALID_CONFIG, f"Invalid value {values[INTERVAL_MS]} for configuration {INTERVAL_MS}: Not a number of type INT") from None
        if not MIN_INTERVAL_MS <= interval <= MAX_INTERVAL_MS:
            raise ClientMetricsError(
                ErrorCode.INVALID_REQUEST, f"Invalid value {interval} for {INTERVAL_MS}, interval must be between 100 and 3600000 (1 hour)"
            )
    patterns = []
    for pattern in _list(values.get(MATCH, "")):
        selector, equals, expression = pattern.partition("=")
        if not equals or "=" in expression or selector.strip() not in SELECTORS:
            raise ClientMetricsError(ErrorCode.INVALID_CONFIG, f"Illegal client matching pattern: {pattern}")
        try:
            patterns.append((selector.strip(), re.compile(expression.strip())))
        except re.error:
            raise ClientMetricsError(ErrorCode.INVALID_CONFIG, f"Illegal client matching pattern: {pattern}") from None
    return Subscription(name, frozenset(_list(values.get(METRICS, ""))), interval, tuple(patterns))


def _list(value: str) -> list[str]:
    """A Kafka LIST config: comma-separated, items trimmed, an empty value no items."""
    return [item.strip() for item in value.split(",")] if value.strip() else []


class ClientMetrics:
    """The broker's subscriptions and client instances. Runs on the event loop only."""

    def __init__(self, path: Path | None, configs: dict[str, dict[str, str]]) -> None:
        self._path = path
        self._configs = configs
        self.subscriptions = {name: parse_subscription(name, values) for name, values in configs.items()}
        self.version = 0
        self.instances: OrderedDict[bytes, ClientInstance] = OrderedDict()
        self.series_count = 0
        self.telemetry_max_bytes = 1 << 20

    @classmethod
    def open(cls, data_dir: Path | None) -> ClientMetrics:
        if data_dir is None:
            return cls(None, {})
        path = Path(data_dir) / FILE_NAME
        if not path.exists():
            return cls(path, {})
        stored = json.loads(path.read_text())
        return cls(path, {name: dict(values) for name, values in stored["subscriptions"].items()})

    # --- the CLIENT_METRICS config resource -------------------------------------------

    def names(self) -> list[str]:
        return sorted(self._configs)

    def configs(self, name: str) -> dict[str, str]:
        """The configs set on subscription `name` (none: it does not exist)."""
        return dict(self._configs.get(name, {}))

    def describe(self, name: str) -> list[tuple[str, str, int, int]]:
        """(name, value, ConfigSource, ConfigType) of each config of subscription `name`, as
        Kafka's ConfigHelper describes a CLIENT_METRICS resource: its own values
        (CLIENT_METRICS_CONFIG) over the defaults (DEFAULT_CONFIG); any name, existing or not."""
        if not name:
            raise ClientMetricsError(ErrorCode.INVALID_REQUEST, "Client metrics subscription name must not be empty")
        values = self._configs.get(name, {})
        defaults = {INTERVAL_MS: str(DEFAULT_INTERVAL_MS), MATCH: "", METRICS: ""}
        return [
            (key, ",".join(_list(values[key])) if key in values and key != INTERVAL_MS else values.get(key, defaults[key]).strip(), _CLIENT_METRICS_CONFIG if key in values else _DEFAULT_CONFIG, _TYPES[key])
            for key in CONFIG_NAMES
        ]

    def apply(self, name: str, operations: list[tuple[str, int, str | None]], validate_only: bool) -> None:
        """IncrementalAlterConfigs on subscription `name`: (config, SET|DELETE|APPEND|SUBTRACT, value)."""
        values: dict[str, str | None] = dict(self.configs(name))
        for key, operation, value in operations:
            if key not in CONFIG_NAMES:
                raise ClientMetricsError(ErrorCode.INVALID_REQUEST, f"Unknown client metrics configuration: {key}")
            if operation == _SET:
                values[key] = value
            elif operation == _DELETE:
                values[key] = None
            elif operation in (_APPEND, _SUBTRACT):
                if key == INTERVAL_MS:
                    raise ClientMetricsError(ErrorCode.INVALID_CONFIG, f"Config value {'append' if operation == _APPEND else 'subtract'} is not allowed for config key: {key}")
                items = _list(values.get(key) or "")
                given = _list(value or "")
                items = items + [item for item in given if item not in items] if operation == _APPEND else [item for item in items if item not in given]
                values[key] = ",".join(items)
            else:
                raise ClientMetricsError(ErrorCode.INVALID_REQUEST, f"Unknown config operation {operation} for {key}")
        self.alter(name, values, validate_only)

    def alter(self, name: str, changes: Mapping[str, str | None], validate_only: bool = False) -> None:
        """Set (a value) or delete (None) configs of subscription `name`; with none left it goes."""
        values = self.configs(name)
        for key, value in changes.items():
            if value is None:
                values.pop(key, None)
            else:
                values[key] = value
        subscription = parse_subscription(name, values)
        for key in changes:
            if key not in CONFIG_NAMES:
                raise ClientMetricsError(ErrorCode.INVALID_REQUEST, f"Unknown client metrics configuration: {key}")
        if validate_only:
            return
        if values:
            self._configs[name] = values
            self.subscriptions[name] = subscription
        else:
            self._configs.pop(name, None)
            self.subscriptions.pop(name, None)
        self.version += 1
        self._write()

    def _write(self) -> None:
        if self._path is not None:
            replace_file(self._path, json.dumps({"version": _FORMAT_VERSION, "subscriptions": self._configs}, indent=1, sort_keys=True).encode())

    # --- GetTelemetrySubscriptions and PushTelemetry ----------------------------------------

    def get_subscriptions(self, instance_id: bytes, client: ClientInfo, now_ms: int) -> dict[str, Any]:
        """The GetTelemetrySubscriptions answer for `instance_id` (zero: a new one is assigned)."""
        self._expire(now_ms)
        if not any(instance_id):
            instance_id = self._new_instance_id()
        instance = self._instance(instance_id, client, now_ms)
        if not instance.may_get(now_ms) and instance.last_error not in (ErrorCode.UNKNOWN_SUBSCRIPTION_ID, ErrorCode.UNSUPPORTED_COMPRESSION_TYPE):
            return _get_error(ErrorCode.THROTTLING_QUOTA_EXCEEDED)
        instance.last_error = ErrorCode.NONE
        return {
            "throttle_time_ms": 0,
            "error_code": ErrorCode.NONE,
            "client_instance_id": instance_id,
            "subscription_id": instance.subscription_id,
            "accepted_compression_types": [int(codec) for codec in ACCEPTED_COMPRESSION],
            "push_interval_ms": instance.push_interval_ms,
            "telemetry_max_bytes": self.telemetry_max_bytes,
            "delta_temporality": True,
            "requested_metrics": list(instance.metrics),
        }

    def push(self, instance_id: bytes, subscription_id: int, terminating: bool, compression: int, metrics: bytes | None, client: ClientInfo, now_ms: int) -> ErrorCode:
        """Check a PushTelemetry as Kafka's ClientMetricsManager does, then keep its metrics."""
        if not any(instance_id):
            return ErrorCode.INVALID_REQUEST
        self._expire(now_ms)
        instance = self._instance(instance_id, client, now_ms)
        try:
            error = self._check_push(instance, subscription_id, terminating, compression, metrics, now_ms)
        finally:
            instance.terminating = terminating
        if error is not ErrorCode.NONE:
            instance.last_error = error
            return error
        if metrics:
            try:
                data = bytes(metrics) if compression == Compression.NONE else bytes(decompress(Compression(compression), memoryview(metrics)))
                points = [point for point in decode_metrics(data) if _requested(instance.metrics, point[0]) and _prometheus_name(point[0], point[1]) is not None]
                self.series_count += _keep(instance, points, MAX_SERIES - self.series_count)
            except Exception:  # noqa: BLE001 - a payload that does not decode is the client's error, as Kafka's INVALID_RECORD
                instance.last_error = ErrorCode.INVALID_RECORD
                return ErrorCode.INVALID_RECORD
            instance.pushes += 1
        instance.last_error = ErrorCode.NONE
        return ErrorCode.NONE

    def _check_push(self, instance: ClientInstance, subscription_id: int, terminating: bool, compression: int, metrics: bytes | None, now_ms: int) -> ErrorCode:
        if instance.terminating:
            return ErrorCode.INVALID_REQUEST
        if not instance.may_push(now_ms) and not terminating:
            return ErrorCode.THROTTLING_QUOTA_EXCEEDED
        if subscription_id != instance.subscription_id:
            return ErrorCode.UNKNOWN_SUBSCRIPTION_ID
        if compression not in Compression._value2member_map_:
            return ErrorCode.UNSUPPORTED_COMPRESSION_TYPE
        if metrics is not None and len(metrics) > self.telemetry_max_bytes:
            return ErrorCode.TELEMETRY_TOO_LARGE
        return ErrorCode.NONE

    def _new_instance_id(self) -> bytes:
        while True:
            candidate = uuid.uuid4().bytes
            if candidate not in self.instances:
                return candidate

    def _instance(self, instance_id: bytes, client: ClientInfo, now_ms: int) -> ClientInstance:
        """The cached instance, made anew when unknown or when subscriptions changed since."""
        instance = self.instances.get(instance_id)
        if instance is None or instance.version < self.version:
            fresh = self._evaluate(instance_id, client if instance is None else instance.client)
            if instance is not None:
                fresh.series, fresh.pushes = instance.series, instance.pushes
            instance = fresh
            self.instances[instance_id] = instance
            while len(self.instances) > MAX_INSTANCES:
                self.series_count -= len(self.instances.popitem(last=False)[1].series)
        self.instances.move_to_end(instance_id)
        instance.last_seen_ms = now_ms
        return instance

    def _evaluate(self, instance_id: bytes, client: ClientInfo) -> ClientInstance:
        attributes = {
            "client_instance_id": str(uuid.UUID(bytes=instance_id)),
            "client_id": client.client_id,
            "client_software_name": client.software_name,
            "client_software_version": client.software_version,
            "client_source_address": client.source_address,
            "client_source_port": client.source_port,
        }
        interval = DEFAULT_INTERVAL_MS
        metrics: set[str] = set()
        for subscription in self.subscriptions.values():
            if all(pattern.fullmatch(attributes[selector]) for selector, pattern in subscription.match):
                metrics |= subscription.metrics
                interval = min(interval, subscription.interval_ms)
        if ALL_METRICS in metrics:
            metrics = {ALL_METRICS}
        ordered = tuple(sorted(metrics))
        return ClientInstance(instance_id, client, self.version, subscription_id(ordered, interval, instance_id), ordered, interval)

    def _expire(self, now_ms: int) -> None:
        while self.instances:
            oldest = next(iter(self.instances.values()))
            if now_ms - oldest.last_seen_ms <= oldest.expiry_ms:
                return
            self.instances.popitem(last=False)
            self.series_count -= len(oldest.series)

    def describe_instances(self, at_ms: int | None = None) -> Iterator[ClientInstance]:
        """The live instances at `at_ms` (default now), least recently heard from first."""
        self._expire(now_ms() if at_ms is None else at_ms)
        return iter(list(self.instances.values()))


def families(telemetry: ClientMetrics, at_ms: int | None = None) -> list[tuple[str, str, str, list[tuple[dict[str, str], float]]]]:
    """What clients pushed, as Prometheus families: (name, kind, help, samples). A metric's OTLP
    name with its dots as underscores (counters end in `_total`); each sample is labelled by
    `client_id` and `client_instance_id`, then the data point's own attributes. Families are
    told apart by their name without `_total` (the name OpenMetrics declares a counter by), and
    the first kind seen for one wins, so two pushed names never make one family twice."""
    grouped: dict[str, tuple[str, str, str, list[tuple[dict[str, str], float]]]] = {}
    for instance in telemetry.describe_instances(at_ms):
        identity = {"client_id": instance.client.client_id, "client_instance_id": str(uuid.UUID(bytes=instance.instance_id))}
        for (name, attributes), series in instance.series.items():
            family = _prometheus_name(name, series.kind)
            if family is None:
                continue
            base = family.removesuffix("_total")
            kept, kind, help_text, samples = grouped.setdefault(base, (family, series.kind, f"{name}, as the client pushed it (KIP-714).", []))
            if kind != series.kind or kept != family:
                continue
            labels = {**identity, **{_prometheus_label(key): value for key, value in attributes if _prometheus_label(key) not in identity}}
            samples.append((labels, series.value))
    return [(name, kind, help_text, samples) for name, kind, help_text, samples in sorted(grouped.values(), key=lambda family: family[0])]


def _requested(metrics: tuple[str, ...], name: str) -> bool:
    """Whether a subscription's `metrics` (prefixes, or `*`) ask for metric `name`, as the
    client's selector (ClientTelemetryUtils.getSelectorFromRequestedMetrics) decides: none
    requested keeps nothing."""
    return ALL_METRICS in metrics or any(name.startswith(prefix) for prefix in metrics)


def _prometheus_name(name: str, kind: str) -> str | None:
    """The family name of a pushed metric; None for one no family can carry: empty, with
    characters outside printable ASCII, or without a letter or digit."""
    if not name.isascii() or not name.isprintable() or not any(char.isalnum() for char in name):
        return None
    cleaned = re.sub(r"[^a-zA-Z0-9_:]", "_", name)
    if cleaned[:1].isdigit():
        cleaned = "_" + cleaned
    return f"{cleaned}_total" if kind == "counter" and not cleaned.endswith("_total") else cleaned


def _prometheus_label(key: str) -> str:
    """A data point attribute as a label name; `__` begins the names Prometheus reserves
    (`__name__` would rename the sample), so such a key is prefixed."""
    cleaned = re.sub(r"[^a-zA-Z0-9_]", "_", key)
    if cleaned.startswith("__"):
        return "attribute" + cleaned
    return "_" + cleaned if cleaned[:1].isdigit() or not cleaned else cleaned


def now_ms() -> int:
    return int(time.time() * 1000)


def subscription_id(metrics: tuple[str, ...], interval_ms: int, instance_id: bytes) -> int:
    """Kafka's computeSubscriptionId: CRC32C of the metrics set's Java toString and the interval,
    XORed with the instance id's Uuid.hashCode. (Java's HashSet order may differ from ours; the
    id only has to change when the subscription does, and to be the one this broker handed out.)"""
    text = "[" + ", ".join(metrics) + "]" + str(interval_ms)
    most, least = struct.unpack(">qq", instance_id)
    hilo = most ^ least
    java_hash = ((hilo >> 32) ^ hilo) & 0xFFFFFFFF
    value = (crc32c.crc32c(text.encode()) ^ java_hash) & 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def _get_error(code: ErrorCode) -> dict[str, Any]:
    return {
        "throttle_time_ms": 0,
        "error_code": code,
        "client_instance_id": bytes(16),
        "subscription_id": 0,
        "accepted_compression_types": [],
        "push_interval_ms": 0,
        "telemetry_max_bytes": 0,
        "delta_temporality": False,
        "requested_metrics": [],
    }


# --- OTLP -----------------------------------------------------------------------------------

Point = tuple[str, str, tuple[tuple[str, str], ...], float, bool]  # name, kind, attributes, value, is_delta


def decode_metrics(data: bytes) -> list[Point]:
    """The data points of an OTLP MetricsData (opentelemetry-proto's message, imported when a
    client first pushes): gauges as they are, sums as counters (deltas flagged), histograms as
    their `_count` and `_sum`."""
    from opentelemetry.proto.metrics.v1 import metrics_pb2

    message = metrics_pb2.MetricsData()
    message.ParseFromString(data)
    delta = metrics_pb2.AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
    points: list[Point] = []
    for resource_metrics in message.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                if kind == "gauge":
                    points += [(metric.name, "gauge", _attributes(p.attributes), _number(p), False) for p in metric.gauge.data_points]
                elif kind == "sum":
                    is_delta = metric.sum.aggregation_temporality == delta
                    points += [(metric.name, "counter", _attributes(p.attributes), _number(p), is_delta) for p in metric.sum.data_points]
                elif kind == "histogram":
                    is_delta = metric.histogram.aggregation_temporality == delta
                    for p in metric.histogram.data_points:
                        labels = _attributes(p.attributes)
                        points += [(f"{metric.name}.count", "counter", labels, float(p.count), is_delta), (f"{metric.name}.sum", "counter", labels, p.sum, is_delta)]
    return points


def _number(point: Any) -> float:
    return float(point.as_double if point.WhichOneof("value") == "as_double" else point.as_int)


def _attributes(attributes: Any) -> tuple[tuple[str, str], ...]:
    found = []
    for attribute in attributes:
        value = attribute.value
        kind = value.WhichOneof("value")
        found.append((attribute.key, "" if kind is None else str(getattr(value, kind))))
    return tuple(sorted(found))


def _keep(instance: ClientInstance, points: list[Point], room: int) -> int:
    """Keep `points` in `instance`, adding at most `room` new series; returns how many it added."""
    added = 0
    for name, kind, labels, value, is_delta in points:
        key = (name, labels)
        series = instance.series.get(key)
        if series is None:
            if len(instance.series) >= MAX_SERIES_PER_INSTANCE or added >= room:
                continue
            series = instance.series[key] = Series(kind, 0.0)
            added += 1
        series.value = series.value + value if is_delta else value
    return added
