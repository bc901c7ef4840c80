"""`/metrics`: the broker's counters and its state in Prometheus text or OpenMetrics.

Names follow the Prometheus JMX exporter's rules for Kafka (its kafka-2_0_0.yml example,
`lowercaseOutputName: true`), so a dashboard built on a JMX-exported Kafka finds them:
`kafka.server:type=BrokerTopicMetrics,name=BytesInPerSec,topic=T` becomes
`kafka_server_brokertopicmetrics_bytesin_total{topic="T"}` (PerSec dropped, `_total` for a
count), a gauge `kafka.log:type=Log,name=Size,topic=T,partition=P` becomes
`kafka_log_log_size{topic,partition}`. Where Kafka's broker has no metric, the names are
those of the tools Kafka users run beside it: consumer-group lag as danielqsj's
kafka_exporter (`kafka_consumergroup_lag{consumergroup,topic,partition}`), process metrics
as every Prometheus client (`process_resident_memory_bytes`). Request latency is a
Prometheus histogram in seconds (`kafka_network_requestmetrics_totaltime_seconds`), not
the JMX exporter's precomputed quantiles of TotalTimeMs, so it can be aggregated.

Everything but the counters is computed here, when scraped: sizes, offsets, lag, group
states, producer ids. A scrape walks every partition and every group's offsets once.
"""

from __future__ import annotations

import os
import resource
import time
from collections import Counter
from typing import Any, Iterable

from ottla.server.metrics import LATENCY_BOUNDS, BrokerMetrics
from ottla.server.telemetry import families
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"

# Every family the broker writes begins with one of these; pushed client metrics may not.
BROKER_NAMESPACES = ("kafka_", "process_", "ottla_")
_OPEN_TXN_STATES = {"Ongoing", "PrepareCommit", "PrepareAbort", "PrepareEpochFence"}
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_TOPIC_COUNTERS = (
    ("bytesin", "bytes_in", "Bytes of record batches appended by Produce requests."),
    ("bytesout", "bytes_out", "Bytes of record batches sent in Fetch responses."),
    ("messagesin", "messages_in", "Records appended by Produce requests."),
    ("totalproducerequests", "produce_requests", "Produce requests, counted per partition."),
    ("failedproducerequests", "failed_produce_requests", "Produce requests answered with an error, per partition."),
    ("totalfetchrequests", "fetch_requests", "Fetch requests, counted per partition."),
    ("failedfetchrequests", "failed_fetch_requests", "Fetch requests answered with an error, per partition."),
)


class _Writer:
    """Families in Prometheus text 0.0.4 or OpenMetrics 1.0; they differ in a counter's
    TYPE name (OpenMetrics names the family without `_total`) and the closing `# EOF`."""

    def __init__(self, openmetrics: bool) -> None:
        self.openmetrics = openmetrics
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        declared = name[: -len("_total")] if self.openmetrics and kind == "counter" and name.endswith("_total") else name
        self.lines.append(f"# HELP {declared} {_escape_help(help_text, self.openmetrics)}")
        self.lines.append(f"# TYPE {declared} {kind}")

    def sample(self, name: str, labels: str, value: float | int) -> None:
        self.lines.append(f"{name}{{{labels}}} {_number(value)}" if labels else f"{name} {_number(value)}")

    def render(self) -> bytes:
        if self.openmetrics:
            self.lines.append("# EOF")
        self.lines.append("")
        return "\n".join(self.lines).encode()


def _number(value: float | int) -> str:
    if isinstance(value, int):
        return str(value)
    if value == float("inf"):
        return "+Inf"
    return repr(value)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str, openmetrics: bool) -> str:
    """HELP text as each format escapes it: backslash and newline, and in OpenMetrics the double quote too."""
    escaped = text.replace("\\", "\\\\").replace("\n", "\\n")
    return escaped.replace('"', '\\"') if openmetrics else escaped


def _api_name(api_key: int) -> str:
    """Kafka's request label: the API's name as its RequestMetrics spells it (Produce, FetchConsumer aside)."""
    return "".join(part.capitalize() for part in ApiKey(api_key).name.split("_"))


def render(broker: Any, openmetrics: bool = False) -> bytes:
    """The whole exposition of a running `Broker` (its metrics, storage and coordinators)."""
    out = _Writer(openmetrics)
    metrics: BrokerMetrics = broker.metrics
    storage = broker.storage
    if storage is not None:
        # A deleted topic's counters go with it, as Kafka removes its BrokerTopicMetrics.
        for name in [name for name in metrics.topics if storage.topic(name) is None]:
            metrics.forget_topic(name)
    _topic_counters(out, metrics)
    _request_metrics(out, metrics)
    _connections(out, broker, metrics)
    if storage is not None:
        end_offsets = _logs(out, storage)
        if broker.groups is not None:
            _groups(out, broker.groups, end_offsets)
        if broker.txn is not None:
            _transactions(out, broker.txn)
    if broker.services is not None:
        _client_telemetry(out, broker.services.telemetry)
    _process(out, metrics)
    return out.render()


def _topic_counters(out: _Writer, metrics: BrokerMetrics) -> None:
    topics = sorted(metrics.topics.items())
    for short, attribute, help_text in _TOPIC_COUNTERS:
        name = f"kafka_server_brokertopicmetrics_{short}_total"
        out.family(name, "counter", help_text)
        for topic, stats in topics:
            out.sample(name, f'topic="{_escape(topic)}"', getattr(stats, attribute))


def _request_metrics(out: _Writer, metrics: BrokerMetrics) -> None:
    served = [(_api_name(key), stats) for key, stats in enumerate(metrics.apis) if stats is not None]
    out.family("kafka_network_requestmetrics_requests_total", "counter", "Requests answered, per API.")
    for request, stats in served:
        out.sample("kafka_network_requestmetrics_requests_total", f'request="{request}"', stats.requests)
    out.family("kafka_network_requestmetrics_errors_total", "counter", "Requests answered with a top-level error code, per API and error.")
    for request, stats in served:
        for code, count in sorted(stats.errors.items()):
            out.sample("kafka_network_requestmetrics_errors_total", f'request="{request}",error="{_error_name(code)}"', count)
    name = "kafka_network_requestmetrics_totaltime_seconds"
    out.family(name, "histogram", "Time from a request's decoding to its answer being ready (a parked Fetch included), per API.")
    for request, stats in served:
        cumulative = 0
        for bound, count in zip((*LATENCY_BOUNDS, float("inf")), stats.buckets):
            cumulative += count
            out.sample(f"{name}_bucket", f'request="{request}",le="{_number(bound)}"', cumulative)
        out.sample(f"{name}_count", f'request="{request}"', stats.requests)
        out.sample(f"{name}_sum", f'request="{request}"', stats.seconds)
    out.family("kafka_network_requestmetrics_throttletimems_total", "counter", "Throttle time given in answers, in milliseconds, per API.")
    for request, stats in served:
        out.sample("kafka_network_requestmetrics_throttletimems_total", f'request="{request}"', stats.throttle_ms)


def _error_name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return str(code)


def _connections(out: _Writer, broker: Any, metrics: BrokerMetrics) -> None:
    per_listener = Counter(connection.listener for connection in broker.connections)
    out.family("kafka_server_socket_server_metrics_connection_count", "gauge", "Open client connections, per listener.")
    for listener in sorted(per_listener.keys() | metrics.connections_accepted.keys()):
        out.sample("kafka_server_socket_server_metrics_connection_count", f'listener="{_escape(listener)}"', per_listener.get(listener, 0))
    out.family("kafka_server_socket_server_metrics_connection_creation_total", "counter", "Client connections accepted, per listener.")
    for listener, count in sorted(metrics.connections_accepted.items()):
        out.sample("kafka_server_socket_server_metrics_connection_creation_total", f'listener="{_escape(listener)}"', count)


def _logs(out: _Writer, storage: Any) -> dict[tuple[str, int], int]:
    """Per-partition log gauges; returns each partition's high watermark for the lag below."""
    rows: list[tuple[str, Any]] = []
    end_offsets: dict[tuple[str, int], int] = {}
    producer_ids = 0
    for info in sorted(storage.topics(), key=lambda topic: topic.name):
        for index in range(info.partitions):
            log = storage.partition(info.name, index)
            labels = f'topic="{_escape(info.name)}",partition="{index}"'
            rows.append((labels, log))
            end_offsets[(info.name, index)] = log.high_watermark
            producer_ids += len(log.producer_state.producers)
    for suffix, help_text, read in (
        ("size", "Bytes of the partition's log segments.", lambda log: log.size),
        ("logstartoffset", "The partition's log start offset.", lambda log: log.log_start_offset),
        ("logendoffset", "The partition's log end offset.", lambda log: log.log_end_offset),
        ("numlogsegments", "Segments of the partition's log.", lambda log: len(log.segments)),
    ):
        out.family(f"kafka_log_log_{suffix}", "gauge", help_text)
        for labels, log in rows:
            out.sample(f"kafka_log_log_{suffix}", labels, read(log))
    out.family("kafka_server_replicamanager_partitioncount", "gauge", "Partitions this broker leads (all of them: one node).")
    out.sample("kafka_server_replicamanager_partitioncount", "", len(rows))
    out.family("kafka_server_replicamanager_underreplicatedpartitions", "gauge", "Partitions with fewer in-sync replicas than replicas (none on one node).")
    out.sample("kafka_server_replicamanager_underreplicatedpartitions", "", 0)
    out.family("kafka_controller_kafkacontroller_offlinepartitionscount", "gauge", "Partitions without a leader (none on one node).")
    out.sample("kafka_controller_kafkacontroller_offlinepartitionscount", "", 0)
    out.family("kafka_server_replicamanager_produceridcount", "gauge", "Idempotent and transactional producers the partitions remember.")
    out.sample("kafka_server_replicamanager_produceridcount", "", producer_ids)
    return end_offsets


def _groups(out: _Writer, groups: Any, end_offsets: dict[tuple[str, int], int]) -> None:
    listed = sorted(groups.groups.items())
    states: Counter[tuple[str, str]] = Counter()
    offsets: list[tuple[str, int, int]] = []
    for group_id, group in listed:
        states[(group.protocol_type or "", group.state.value)] += 1
        for (topic, partition), committed in sorted(group.offsets.items()):
            labels = f'consumergroup="{_escape(group_id)}",topic="{_escape(topic)}",partition="{partition}"'
            end = end_offsets.get((topic, partition))
            offsets.append((labels, committed.offset, -1 if end is None else max(end - committed.offset, 0)))
    out.family("kafka_server_group_coordinator_metrics_group_count", "gauge", "Groups, per protocol type and state.")
    for (protocol, state), count in sorted(states.items()):
        out.sample("kafka_server_group_coordinator_metrics_group_count", f'protocol="{_escape(protocol)}",state="{state}"', count)
    out.family("kafka_consumergroup_members", "gauge", "Members of each group.")
    for group_id, group in listed:
        out.sample("kafka_consumergroup_members", f'consumergroup="{_escape(group_id)}"', len(group.members))
    out.family("kafka_consumergroup_current_offset", "gauge", "Committed offset of each group, topic and partition.")
    for labels, committed, _ in offsets:
        out.sample("kafka_consumergroup_current_offset", labels, committed)
    out.family("kafka_consumergroup_lag", "gauge", "High watermark minus committed offset (-1: the partition is gone).")
    for labels, _, lag in offsets:
        out.sample("kafka_consumergroup_lag", labels, lag)


def _transactions(out: _Writer, txn: Any) -> None:
    states = Counter(metadata.state.value for metadata in txn.transactions.values())
    out.family("kafka_server_transaction_coordinator_metrics_transaction_count", "gauge", "Transactional ids, per transaction state.")
    for state, count in sorted(states.items()):
        out.sample("kafka_server_transaction_coordinator_metrics_transaction_count", f'state="{state}"', count)
    out.family("kafka_server_transaction_coordinator_metrics_open_transactions", "gauge", "Transactions begun and not yet completed.")
    out.sample("kafka_server_transaction_coordinator_metrics_open_transactions", "", sum(states[state] for state in _OPEN_TXN_STATES))


def _client_telemetry(out: _Writer, telemetry: Any) -> None:
    """The metrics clients pushed (KIP-714), labelled by client id and instance. A pushed name
    in the broker's own namespaces is left out: a client must not declare a broker family a
    second time nor add samples to one."""
    for name, kind, help_text, samples in families(telemetry):
        if name.startswith(BROKER_NAMESPACES):
            continue
        out.family(name, kind, help_text)
        for labels, value in samples:
            out.sample(name, ",".join(f'{key}="{_escape(text)}"' for key, text in labels.items()), value)


def _process(out: _Writer, metrics: BrokerMetrics) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    gauges: Iterable[tuple[str, str, str, float | int]] = (
        ("process_cpu_seconds_total", "counter", "User and system CPU time of the broker process.", usage.ru_utime + usage.ru_stime),
        ("process_resident_memory_bytes", "gauge", "Resident memory of the broker process.", _rss_bytes()),
        ("process_open_fds", "gauge", "Open file descriptors of the broker process.", _open_fds()),
        ("process_max_fds", "gauge", "The open file descriptor limit.", resource.getrlimit(resource.RLIMIT_NOFILE)[0]),
        ("process_start_time_seconds", "gauge", "When the broker's metrics began, in seconds since the epoch.", metrics.started),
        ("ottla_event_loop_lag_seconds", "gauge", "How late the event loop ran a timer, at the last probe (every 0.5 s).", metrics.loop_lag_seconds),
        ("ottla_event_loop_lag_max_seconds", "gauge", "The latest the event loop has run a probe timer.", metrics.loop_lag_max_seconds),
        ("ottla_uptime_seconds", "gauge", "Seconds since the broker's metrics began.", time.time() - metrics.started),
    )
    for name, kind, help_text, value in gauges:
        out.family(name, kind, help_text)
        out.sample(name, "", value)


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * _PAGE_SIZE
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # the peak, where /proc is absent


def _open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return -1
