"""`kafka-client-metrics.sh` (Kafka 4.4's ClientMetricsCommand) manages client telemetry
subscriptions on Ottla as on the reference Kafka: the same commands print the same answers
(IncrementalAlterConfigs, ListConfigResources and DescribeConfigs on the CLIENT_METRICS resource)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from compat.differential import call_once
from compat.harness import wait_for
from ottla.testing import ThreadedBroker
from ottla.wire.api import ApiKey

pytestmark = pytest.mark.slow

SUBSCRIPTION = {"metrics": "org.apache.kafka.producer.,org.apache.kafka.consumer.coordinator.", "interval.ms": "10000",
                "match": "client_id=orders-.*"}
ALTER = ("--alter", "--name", "producers", "--metrics", SUBSCRIPTION["metrics"], "--interval", SUBSCRIPTION["interval.ms"],
         "--match", SUBSCRIPTION["match"])
DELETE = ("--delete", "--name", "producers")
CLIENT_METRICS = 16  # the config resource type


def _subscribed(bootstrap: str) -> bool:
    (result,) = call_once(bootstrap, ApiKey.DESCRIBE_CONFIGS, 4, {"include_synonyms": False, "include_documentation": False, "resources": [
        {"resource_type": CLIENT_METRICS, "resource_name": "producers", "configuration_keys": None}]})["results"]
    return {c["name"]: c["value"] for c in result["configs"]} == SUBSCRIPTION


def _unlisted(bootstrap: str) -> bool:
    listed = call_once(bootstrap, ApiKey.LIST_CONFIG_RESOURCES, 1, {"resource_types": [CLIENT_METRICS]})["config_resources"]
    return "producers" not in {resource["resource_name"] for resource in listed}


# What a Describe shows once the step's change applied. Kafka acknowledges it once its controller
# has committed the records; its broker answers DescribeConfigs and ListConfigResources from a
# metadata image that applies them a moment later, so the next step at once could still see the
# subscription before it. Ottla applies before it answers: the wait returns at once.
SHOWN_AFTER: dict[tuple[str, ...], Callable[[str], bool]] = {ALTER: _subscribed, DELETE: _unlisted}


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
        DELETE,
        ("--list",),
    ]
    for step in steps:
        on_ottla, on_kafka = (_run_step(bootstrap, step) for bootstrap in (ottla, reference_kafka))
        assert on_ottla == on_kafka, f"kafka-client-metrics {' '.join(step)}"
        if step is ALTER:
            assert on_ottla == (0, "Altered client metrics config for producers.\n")
            assert ottla_broker_fn.broker.services.telemetry.configs("producers") == SUBSCRIPTION  # type: ignore[union-attr]


def _run_step(bootstrap: str, step: tuple[str, ...]) -> tuple[int, str]:
    """The step's exit code and output, once a Describe shows what it changed if it succeeded."""
    code, output = _tool(bootstrap, *step)
    if code == 0 and step in SHOWN_AFTER:
        assert wait_for(lambda: SHOWN_AFTER[step](bootstrap), timeout=10), (f"kafka-client-metrics {' '.join(step)} never visible", bootstrap)
    return code, output
