"""The Java client, KIP-714's reference implementation, pushes its metrics to Ottla once a
subscription asks for them: they decode, and `/metrics` shows them under its client id."""

from __future__ import annotations

import os
import urllib.request
from typing import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from compat.tools import installed
from ottla.testing import ThreadedBroker, running_broker


@pytest.fixture
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None, http_port=0) as handle:
        yield handle


def test_the_java_producer_pushes_what_a_subscription_asks_for(broker: ThreadedBroker) -> None:
    from compat.kafka import run_driver

    missing = installed()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(missing)
        pytest.skip(missing)
    assert broker.broker is not None and broker.broker.http is not None
    telemetry = broker.broker.services.telemetry
    telemetry.alter("producers", {"metrics": "org.apache.kafka.producer.", "interval.ms": "100"})
    broker.create_topic("java-telemetry")
    result = run_driver(broker.bootstrap_servers, "java-telemetry", "produce", count=100, config={"client.id": "java-producer"})
    assert result["ok"], result

    [instance] = telemetry.instances.values()
    assert instance.client.client_id == "java-producer" and instance.pushes >= 1
    names = {name for name, _ in instance.series}
    assert "org.apache.kafka.producer.record.send.total" in names and all(name.startswith("org.apache.kafka.producer.") for name in names)
    with urllib.request.urlopen(broker.broker.http.url + "/metrics", timeout=30) as answer:
        families = {family.name: family for family in text_string_to_metric_families(answer.read().decode())}
    [sample] = families["org_apache_kafka_producer_record_send"].samples  # a counter: its family drops `_total`
    assert sample.labels["client_id"] == "java-producer"
    # Sums arrive as deltas and are added up: with the push the client makes as it closes, every
    # record it sent is counted (it makes that push when it can; one run in several it does not).
    assert sample.value == 100 if instance.terminating else 0 < sample.value <= 100
