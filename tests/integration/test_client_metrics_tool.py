"""`kafka-client-metrics.sh` (Kafka 4.4's ClientMetricsCommand) manages client telemetry
subscriptions on Ottla as on the reference Kafka: the same commands print the same answers
(IncrementalAlterConfigs, ListConfigResources and DescribeConfigs on the CLIENT_METRICS resource)."""

from __future__ import annotations

import re

import pytest

from ottla.testing import ThreadedBroker

pytestmark = pytest.mark.slow

ALTER = ("--alter", "--name", "producers", "--metrics", "org.apache.kafka.producer.,org.apache.kafka.consumer.coordinator.",
         "--interval", "10000", "--match", "client_id=orders-.*")


def _tool(bootstrap: str, *args: str) -> tuple[int, str]:
    from compat.kafka import run_tool

    done = run_tool("kafka-client-metrics", "--bootstrap-server", bootstrap, *args, timeout=120)
    # The tool's log lines start with their time, which is all that may differ.
    return done.returncode, re.sub(r"(?m)^\[[^\]]+\] ", "", done.stdout + done.stderr)


def test_kafka_client_metrics_answers_on_ottla_as_on_kafka(ottla_broker_fn: ThreadedBroker, reference_kafka: str) -> None:
    ottla = ottla_broker_fn.bootstrap_servers
    steps = [
        ALTER,
        ("--describe", "--name", "producers"),
        ("--alter", "--name", "producers", "--interval", "50"),  # refused: under 100 ms
        ("--delete", "--name", "producers"),
        ("--list",),
    ]
    for step in steps:
        on_ottla, on_kafka = _tool(ottla, *step), _tool(reference_kafka, *step)
        assert on_ottla == on_kafka, f"kafka-client-metrics {' '.join(step)}"
        if step is ALTER:
            assert on_ottla == (0, "Altered client metrics config for producers.\n")
            assert ottla_broker_fn.broker.services.telemetry.configs("producers") == {  # type: ignore[union-attr]
                "metrics": "org.apache.kafka.producer.,org.apache.kafka.consumer.coordinator.", "interval.ms": "10000", "match": "client_id=orders-.*"}
