"""The Java client, KIP-714's reference implementation, pushes its metrics to Ottla once a
subscription asks for them: they decode, and `/metrics` shows them under its client id.

A long-lived group member is the client: a short-lived producer may exit before its first
push is due, and the Java client skips the closing push when none is due."""

from __future__ import annotations

import time
import urllib.request
from typing import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from compat.clients import CLIENTS
from compat.group_member import GroupMember
from compat.tools import installed
from ottla.testing import ThreadedBroker, running_broker
from unavailable import unavailable


@pytest.fixture
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None, http_port=0) as handle:
        yield handle


def test_the_java_consumer_pushes_what_a_subscription_asks_for(broker: ThreadedBroker) -> None:
    missing = installed()
    if missing:
        unavailable(missing)
    assert broker.broker is not None and broker.broker.http is not None
    telemetry = broker.broker.services.telemetry
    telemetry.alter("consumers", {"metrics": "org.apache.kafka.consumer.", "interval.ms": "100"})
    broker.create_topic("java-telemetry")
    member = GroupMember(CLIENTS["java"], broker.bootstrap_servers, "java-telemetry", "telemetry-group", "java")
    try:
        member.wait_until(lambda: member.assignment is not None, "an assignment")
        deadline = time.monotonic() + 60
        while not any(instance.pushes for instance in list(telemetry.instances.values())) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        member.close()

    [instance] = telemetry.instances.values()
    assert instance.client.client_id.startswith("consumer-telemetry-group-") and instance.pushes >= 1
    names = {name for name, _ in instance.series}
    assert "org.apache.kafka.consumer.coordinator.commit.latency.avg" in names, sorted(names)
    assert all(name.startswith("org.apache.kafka.consumer.") for name in names)
    with urllib.request.urlopen(broker.broker.http.url + "/metrics", timeout=30) as answer:
        families = {family.name: family for family in text_string_to_metric_families(answer.read().decode())}
    [sample] = families["org_apache_kafka_consumer_coordinator_commit_latency_avg"].samples
    assert sample.labels["client_id"] == instance.client.client_id
