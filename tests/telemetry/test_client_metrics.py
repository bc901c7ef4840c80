"""Client telemetry's rules without sockets: subscriptions as Kafka validates them, which
clients they match, when a client may ask and push, and what pushed OTLP data becomes."""

from __future__ import annotations

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2

from ottla.server.telemetry import DEFAULT_INTERVAL_MS, ClientInfo, ClientMetrics, ClientMetricsError, families
from ottla.wire.errors import ErrorCode

PRODUCER = ClientInfo("orders-producer", "127.0.0.1", "50000")
ZERO = bytes(16)


def _metrics_data(delta: float, gauge: float) -> bytes:
    data = metrics_pb2.MetricsData()
    scope = data.resource_metrics.add().scope_metrics.add()
    total = scope.metrics.add(name="org.apache.kafka.producer.record.send.total")
    total.sum.aggregation_temporality = metrics_pb2.AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
    total.sum.is_monotonic = True
    total.sum.data_points.add(as_double=delta)
    latency = scope.metrics.add(name="org.apache.kafka.producer.node.request.latency.avg")
    latency.gauge.data_points.add(as_double=gauge, attributes=[KeyValue(key="node.id", value=AnyValue(string_value="1"))])
    return data.SerializeToString()


def test_subscriptions_are_validated_as_kafka_validates_them() -> None:
    telemetry = ClientMetrics(None, {})
    with pytest.raises(ClientMetricsError) as refused:
        telemetry.alter("s", {"interval.ms": "50"})
    assert refused.value.code == ErrorCode.INVALID_REQUEST and "between 100 and 3600000" in refused.value.message
    with pytest.raises(ClientMetricsError) as refused:
        telemetry.alter("s", {"colour": "blue"})
    assert refused.value.message == "Unknown client metrics configuration: colour"
    for match in ("client_id", "hostname=x", "client_id=[unclosed"):
        with pytest.raises(ClientMetricsError) as refused:
            telemetry.alter("s", {"match": match})
        assert refused.value.code == ErrorCode.INVALID_CONFIG and refused.value.message == f"Illegal client matching pattern: {match}"
    with pytest.raises(ClientMetricsError):
        telemetry.alter("", {"metrics": "*"})
    assert telemetry.names() == []

    telemetry.apply("s", [("metrics", 0, "org.apache.kafka.producer."), ("metrics", 2, "org.apache.kafka.consumer.")], validate_only=False)
    assert telemetry.configs("s") == {"metrics": "org.apache.kafka.producer.,org.apache.kafka.consumer."}
    assert telemetry.describe("s") == [("interval.ms", str(DEFAULT_INTERVAL_MS), 5, 3), ("match", "", 5, 7), ("metrics", "org.apache.kafka.producer.,org.apache.kafka.consumer.", 7, 7)]
    telemetry.apply("s", [("metrics", 1, None)], validate_only=False)
    assert telemetry.names() == []  # no config left: the subscription is gone


def test_a_client_gets_the_union_of_the_subscriptions_that_match_it() -> None:
    telemetry = ClientMetrics(None, {})
    telemetry.alter("producers", {"metrics": "org.apache.kafka.producer.", "interval.ms": "1000", "match": "client_id=orders-.*"})
    telemetry.alter("consumers", {"metrics": "org.apache.kafka.consumer.", "match": "client_id=billing"})
    telemetry.alter("latency", {"metrics": "org.apache.kafka.producer.node.request.latency", "interval.ms": "2000"})

    answer = telemetry.get_subscriptions(ZERO, PRODUCER, now_ms=10_000)
    assert answer["error_code"] == ErrorCode.NONE and any(answer["client_instance_id"])
    assert answer["requested_metrics"] == ["org.apache.kafka.producer.", "org.apache.kafka.producer.node.request.latency"]
    assert answer["push_interval_ms"] == 1000 and answer["delta_temporality"] and answer["accepted_compression_types"] == [4, 3, 1, 2]
    other = telemetry.get_subscriptions(ZERO, ClientInfo("billing", "127.0.0.1", "1"), now_ms=10_000)
    assert other["requested_metrics"] == ["org.apache.kafka.consumer.", "org.apache.kafka.producer.node.request.latency"] and other["push_interval_ms"] == 2000

    telemetry.alter("everything", {"metrics": "*", "match": "client_source_address=127\\.0\\.0\\.1"})
    again = telemetry.get_subscriptions(answer["client_instance_id"], PRODUCER, now_ms=10_001)  # a change is answered at once
    assert again["requested_metrics"] == ["*"] and again["subscription_id"] != answer["subscription_id"]


def test_requests_are_throttled_to_the_push_interval_and_checked_as_kafka_does() -> None:
    telemetry = ClientMetrics(None, {})
    telemetry.alter("all", {"metrics": "*", "interval.ms": "1000"})
    answer = telemetry.get_subscriptions(ZERO, PRODUCER, now_ms=5_000)
    instance, subscription = answer["client_instance_id"], answer["subscription_id"]
    fresh = telemetry.get_subscriptions(ZERO, PRODUCER, now_ms=5_000)
    assert telemetry.push(fresh["client_instance_id"], fresh["subscription_id"], False, 0, None, PRODUCER, now_ms=5_001) == ErrorCode.NONE  # early: first after a Get
    assert telemetry.get_subscriptions(instance, PRODUCER, now_ms=5_500)["error_code"] == ErrorCode.THROTTLING_QUOTA_EXCEEDED

    payload = _metrics_data(3, 0.5)
    assert telemetry.push(instance, subscription + 1, False, 0, payload, PRODUCER, now_ms=5_600) == ErrorCode.UNKNOWN_SUBSCRIPTION_ID
    assert telemetry.get_subscriptions(instance, PRODUCER, now_ms=5_700)["error_code"] == ErrorCode.NONE  # allowed after that error
    # The refused push took the interval's slot (Kafka counts it too): the next is due at 6,600.
    assert telemetry.push(instance, subscription, False, 0, payload, PRODUCER, now_ms=5_800) == ErrorCode.THROTTLING_QUOTA_EXCEEDED
    assert telemetry.push(instance, subscription, False, 0, payload, PRODUCER, now_ms=6_600) == ErrorCode.NONE
    assert telemetry.push(instance, subscription, False, 0, payload, PRODUCER, now_ms=6_800) == ErrorCode.THROTTLING_QUOTA_EXCEEDED
    assert telemetry.push(instance, subscription, False, 0, _metrics_data(4, 0.75), PRODUCER, now_ms=7_600) == ErrorCode.NONE
    assert telemetry.push(instance, subscription, False, 9, payload, PRODUCER, now_ms=8_600) == ErrorCode.UNSUPPORTED_COMPRESSION_TYPE
    assert telemetry.push(instance, subscription, False, 0, b"\xff" * 10, PRODUCER, now_ms=9_600) == ErrorCode.INVALID_RECORD
    assert telemetry.push(instance, subscription, True, 0, None, PRODUCER, now_ms=9_601) == ErrorCode.NONE  # terminating: not throttled
    assert telemetry.push(instance, subscription, False, 0, None, PRODUCER, now_ms=20_000) == ErrorCode.INVALID_REQUEST  # nothing after it
    assert telemetry.push(ZERO, subscription, False, 0, None, PRODUCER, now_ms=20_000) == ErrorCode.INVALID_REQUEST

    [(gauge, _, _, [(gauge_labels, latency)]), (counter, _, _, [(labels, total)])] = families(telemetry, at_ms=20_000)
    assert counter == "org_apache_kafka_producer_record_send_total" and total == 7  # deltas added up
    assert gauge == "org_apache_kafka_producer_node_request_latency_avg" and latency == 0.75  # the latest value
    assert labels["client_id"] == "orders-producer" and gauge_labels["node_id"] == "1"


def test_subscriptions_outlive_a_restart(tmp_path) -> None:
    ClientMetrics.open(tmp_path).alter("kept", {"metrics": "*", "interval.ms": "60000"})
    reopened = ClientMetrics.open(tmp_path)
    assert reopened.configs("kept") == {"metrics": "*", "interval.ms": "60000"}
    assert reopened.get_subscriptions(ZERO, PRODUCER, now_ms=1_700_000_000_000)["push_interval_ms"] == 60000


def test_the_series_kept_are_bounded_across_instances_and_freed_with_them(monkeypatch: pytest.MonkeyPatch) -> None:
    from ottla.server import telemetry as module

    monkeypatch.setattr(module, "MAX_SERIES", 3)
    telemetry = ClientMetrics(None, {})
    telemetry.alter("all", {"metrics": "*", "interval.ms": "1000"})
    for port in ("1", "2"):
        client = ClientInfo("app", "127.0.0.1", port)
        answer = telemetry.get_subscriptions(ZERO, client, now_ms=10_000)
        assert telemetry.push(answer["client_instance_id"], answer["subscription_id"], False, 0, _metrics_data(1, 0.5), client, now_ms=10_001) == ErrorCode.NONE
    assert [len(instance.series) for instance in telemetry.instances.values()] == [2, 1] and telemetry.series_count == 3
    assert list(telemetry.describe_instances(at_ms=10_001 + 60_001)) == [] and telemetry.series_count == 0  # expired, freed
