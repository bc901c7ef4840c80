"""`kafka-client-metrics.sh` (Kafka 4.4's ClientMetricsCommand) manages Ottla's subscriptions:
alter, list, describe and delete through IncrementalAlterConfigs, ListConfigResources and
DescribeConfigs on the CLIENT_METRICS resource, as it does on Kafka."""

from __future__ import annotations

import os

import pytest

from compat.tools import installed
from ottla.testing import ThreadedBroker

pytestmark = [pytest.mark.external, pytest.mark.slow]


def _tool(bootstrap: str, *args: str) -> str:
    from compat.kafka import run_tool

    done = run_tool("kafka-client-metrics", "--bootstrap-server", bootstrap, *args, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_kafka_client_metrics_alters_lists_describes_and_deletes_subscriptions(ottla_broker_fn: ThreadedBroker) -> None:
    missing = installed()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(missing)
        pytest.skip(missing)
    bootstrap = ottla_broker_fn.bootstrap_servers
    altered = _tool(bootstrap, "--alter", "--name", "producers", "--metrics", "org.apache.kafka.producer.,org.apache.kafka.consumer.coordinator.",
                    "--interval", "10000", "--match", "client_id=orders-.*")
    assert "Altered client metrics config for producers." in altered
    assert _tool(bootstrap, "--list").split() == ["producers"]
    described = _tool(bootstrap, "--describe", "--name", "producers")
    assert "Client metrics configs for producers are:" in described
    assert "interval.ms=10000" in described and "match=client_id=orders-.*" in described
    assert "metrics=org.apache.kafka.producer.,org.apache.kafka.consumer.coordinator." in described
    telemetry = ottla_broker_fn.broker.services.telemetry  # type: ignore[union-attr]
    assert telemetry.configs("producers") == {"metrics": "org.apache.kafka.producer.,org.apache.kafka.consumer.coordinator.", "interval.ms": "10000", "match": "client_id=orders-.*"}

    _tool(bootstrap, "--delete", "--name", "producers")
    assert _tool(bootstrap, "--list").split() == []
