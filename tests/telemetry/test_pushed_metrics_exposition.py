"""What a Kafka client pushes with PushTelemetry reaches `/metrics` only as it was asked for,
under names that cannot break the exposition nor forge or redeclare the broker's families."""

from __future__ import annotations

import json
import socket
import urllib.request
from typing import Any

from compat.sockets import read_frame
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

from ottla.server.metrics.exposition import BROKER_NAMESPACES, _Writer
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.protocol import decode_response, encode_request

FORGED = 'evil\nkafka_server_brokertopicmetrics_messagesin_total{topic="forged"} 123456789'


def _push(bootstrap: str, client_id: str, points: list[tuple[str, str]]) -> ErrorCode:
    """Subscribe as a new client instance, then push `points` ((name, "gauge"|"sum"), value 1)."""
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as sock:

        def call(api: ApiKey, body: dict[str, Any]) -> dict[str, Any]:
            sock.sendall(encode_request(api, 0, 1, body, client_id=client_id))
            frame = read_frame(sock)
            assert frame is not None
            return decode_response(api, 0, frame)[1]

        subscription = call(ApiKey.GET_TELEMETRY_SUBSCRIPTIONS, {"client_instance_id": bytes(16)})
        data = metrics_pb2.MetricsData()
        scope = data.resource_metrics.add().scope_metrics.add()
        for name, kind in points:
            metric = scope.metrics.add(name=name)
            if kind == "gauge":
                metric.gauge.data_points.add(as_double=1.0, attributes=[KeyValue(key="__name__", value=AnyValue(string_value="x"))])
            else:
                metric.sum.aggregation_temporality = metrics_pb2.AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
                metric.sum.data_points.add(as_double=1.0)
        answer = call(
            ApiKey.PUSH_TELEMETRY,
            {
                "client_instance_id": subscription["client_instance_id"],
                "subscription_id": subscription["subscription_id"],
                "terminating": False,
                "compression_type": 0,
                "metrics": data.SerializeToString(),
            },
        )
    return ErrorCode(answer["error_code"])


def _get(url: str, accept: str = "text/plain") -> str:
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Accept": accept}), timeout=30) as answer:
        return str(answer.read().decode())


def test_pushed_metrics_cannot_break_forge_or_redeclare_broker_families() -> None:
    with running_broker(data_dir=None, http_port=0) as broker:
        assert broker.broker is not None and broker.broker.http is not None
        url = broker.broker.http.url
        with urllib.request.urlopen(url + "/api/csrf", timeout=30) as answer:
            token = json.load(answer)["token"]
        subscribe = urllib.request.Request(
            url + "/api/client-metrics/subscriptions/everything",
            data=json.dumps({"set": {"metrics": "*", "match": "client_id=asked.*"}}).encode(),
            method="POST",
            headers={"X-CSRF-Token": token, "Content-Type": "application/json"},
        )
        urllib.request.urlopen(subscribe, timeout=30).close()

        pushed = [
            ("org.apache.kafka.producer.kept", "gauge"),
            ("org.apache.kafka.help\\with\"quote", "gauge"),
            (FORGED, "gauge"),
            ("", "gauge"),
            ("...", "gauge"),
            ("ottla_uptime_seconds", "gauge"),
            ("kafka.server.brokertopicmetrics.messagesin", "sum"),
            ("process.open.fds", "gauge"),
            ("org.apache.kafka.twice", "gauge"),
            ("org.apache.kafka.twice", "sum"),
        ]
        assert _push(broker.bootstrap_servers, "asked-app", pushed) == ErrorCode.NONE
        assert _push(broker.bootstrap_servers, "unasked-app", [("org.apache.kafka.producer.unasked", "gauge")]) == ErrorCode.NONE

        text = _get(url + "/metrics")
        parsed = {family.name: family for family in text_string_to_metric_families(text)}
        strict = {family.name: family for family in openmetrics_families(_get(url + "/metrics", "application/openmetrics-text"))}
        assert "forged" not in text and "unasked" not in text
        assert [sample.value for sample in parsed["ottla_uptime_seconds"].samples] != [] and len(parsed["ottla_uptime_seconds"].samples) == 1
        assert len(parsed["process_open_fds"].samples) == 1
        assert all(sample.labels.get("topic") != "forged" for sample in parsed["kafka_server_brokertopicmetrics_messagesin"].samples)
        assert parsed["kafka_server_brokertopicmetrics_messagesin"].type == "counter"
        pushed_families = {name for name in parsed if name.startswith("org_apache_kafka")}
        assert pushed_families == {"org_apache_kafka_producer_kept", "org_apache_kafka_help_with_quote", "org_apache_kafka_twice"}
        assert parsed["org_apache_kafka_help_with_quote"].documentation == 'org.apache.kafka.help\\with"quote, as the client pushed it (KIP-714).'
        assert strict["org_apache_kafka_help_with_quote"].documentation == parsed["org_apache_kafka_help_with_quote"].documentation
        [kept] = parsed["org_apache_kafka_producer_kept"].samples
        assert kept.labels["client_id"] == "asked-app"
        assert not [name for name in parsed if not name.startswith(BROKER_NAMESPACES) and not name.startswith("org_apache_kafka")]


def test_help_text_is_escaped_as_each_format_requires() -> None:
    for openmetrics, parse in ((False, text_string_to_metric_families), (True, openmetrics_families)):
        out = _Writer(openmetrics)
        out.family("x", "gauge", 'line one\nx 99\\ "quoted"')
        out.sample("x", "", 1)
        [family] = list(parse(out.render().decode()))
        assert family.documentation == 'line one\nx 99\\ "quoted"' and [sample.value for sample in family.samples] == [1]
