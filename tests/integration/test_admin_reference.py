"""Ottla's admin answers beside a real Apache Kafka's (compat.kafka.ReferenceKafka): the same
requests to both, the answers compared; and the `ottla` client commands run against Kafka, to
show they are a client for any broker.

Needs `python -m compat.kafka --fetch`: without it these fail under CI=true and skip elsewhere.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from compat import kafka as reference
from compat.drivers import once_shown
from compat.harness import wait_for
from ottla.server.admin.client import KafkaClient
from ottla.wire.api import ApiKey
from unavailable import unavailable

# Topic configs Kafka added after 4.0, whose definitions Ottla follows.
@pytest.fixture(scope="module")
def kafka() -> Iterator[reference.ReferenceKafka]:
    if not reference.is_fetched():
        why = f"reference Kafka {reference.KAFKA_VERSION} not fetched: run `python -m compat.kafka --fetch`"
        unavailable(why)
    with reference.ReferenceKafka() as broker:
        yield broker


def _create(bootstrap: str, name: str, configs: dict[str, str | None]) -> dict[str, Any]:
    body = {
        "topics": [
            {"name": name, "num_partitions": 1, "replication_factor": 1, "assignments": [], "configs": [{"name": k, "value": v} for k, v in configs.items()]}
        ],
        "timeout_ms": 10000,
        "validate_only": False,
    }
    with KafkaClient(bootstrap) as client:
        _, response = client.call(ApiKey.CREATE_TOPICS, body)
    return response["topics"][0]


def _describe(bootstrap: str, name: str) -> dict[str, dict[str, Any]]:
    body = {"resources": [{"resource_type": 2, "resource_name": name, "configuration_keys": None}], "include_synonyms": True, "include_documentation": False}
    with KafkaClient(bootstrap) as client:
        _, response = client.call(ApiKey.DESCRIBE_CONFIGS, body)
    (result,) = response["results"]
    assert result["error_code"] == 0
    return {entry["name"]: entry for entry in result["configs"]}


def _await_topic(bootstrap: str, name: str, configs: dict[str, str], partitions: int = 1) -> None:
    """Until Metadata gives the topic its partitions and DescribeConfigs its configs, as dynamic
    topic configs (10 s at most). Kafka answers CreateTopics, CreatePartitions and
    IncrementalAlterConfigs once its controller has committed the records; its broker serves
    Metadata and DescribeConfigs from a metadata image that applies them a moment later, so a read
    at once may still find the topic missing or as it was. Ottla applies before it answers."""
    assert wait_for(lambda: _shown(bootstrap, name, configs, partitions), timeout=10), ("never visible", bootstrap, name, configs, partitions)


def _shown(bootstrap: str, name: str, configs: dict[str, str], partitions: int) -> bool:
    with KafkaClient(bootstrap) as client:
        _, metadata = client.call(ApiKey.METADATA, {"topics": [{"name": name, "topic_id": bytes(16)}], "allow_auto_topic_creation": False})
        _, described = client.call(ApiKey.DESCRIBE_CONFIGS, {"resources": [{"resource_type": 2, "resource_name": name, "configuration_keys": list(configs)}],
                                                            "include_synonyms": False, "include_documentation": False})
    (topic,), (result,) = metadata["topics"], described["results"]
    if topic["error_code"] or len(topic["partitions"]) != partitions or result["error_code"]:
        return False
    return {entry["name"]: entry["value"] for entry in result["configs"] if entry["config_source"] == 1} == configs


def _incremental(bootstrap: str, name: str, operations: list[dict[str, Any]]) -> tuple[int, str | None]:
    body = {"resources": [{"resource_type": 2, "resource_name": name, "configs": operations}], "validate_only": False}
    with KafkaClient(bootstrap) as client:
        _, response = client.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, body)
    (result,) = response["responses"]
    return result["error_code"], result["error_message"]


def test_topic_configs_have_kafkas_names_types_and_defaults(kafka, ottla_broker):
    name = f"ref-defaults-{uuid.uuid4().hex[:8]}"
    overrides = {"retention.ms": "60000", "cleanup.policy": "compact"}
    for bootstrap in (kafka.bootstrap_servers, ottla_broker.bootstrap_servers):
        assert _create(bootstrap, name, overrides)["error_code"] == 0
        _await_topic(bootstrap, name, overrides)
    theirs, ours = _describe(kafka.bootstrap_servers, name), _describe(ottla_broker.bootstrap_servers, name)
    assert set(ours) == set(theirs)
    for key, entry in ours.items():
        assert (key, entry["value"], entry["config_type"], entry["read_only"]) == (
            key,
            theirs[key]["value"],
            theirs[key]["config_type"],
            theirs[key]["read_only"],
        )
    for key in overrides:
        assert ours[key]["config_source"] == theirs[key]["config_source"] == 1
        assert ours[key]["synonyms"][0] == theirs[key]["synonyms"][0]


@pytest.mark.parametrize(
    "configs",
    [
        {"retention.ms": "abc"},
        {"retention.ms": None},
        {"not.a.topic.config": "1"},
        {"cleanup.policy": "compact,bogus"},
        {"segment.bytes": "1000"},
        {"min.cleanable.dirty.ratio": "2"},
        {"message.timestamp.type": "Wall"},
        {"compression.type": "brotli"},
        {"preallocate": "yes"},
        {"remote.storage.enable": "true"},
        {"min.insync.replicas": "0"},
        {"compression.gzip.level": "12"},
    ],
)
def test_bad_topic_configs_get_kafkas_error_and_message(kafka, ottla_broker, configs):
    name = f"ref-bad-{uuid.uuid4().hex[:8]}"
    theirs = _create(kafka.bootstrap_servers, name, configs)
    ours = _create(ottla_broker.bootstrap_servers, name, configs)
    assert ours["error_code"] == theirs["error_code"] == 40
    assert ours["error_message"] == theirs["error_message"]


@pytest.mark.parametrize(
    "operations",
    [
        [{"name": "retention.ms", "config_operation": 2, "value": "5"}],
        [{"name": "cleanup.policy", "config_operation": 2, "value": "compact"}, {"name": "cleanup.policy", "config_operation": 0, "value": "delete"}],
        [{"name": "retention.ms", "config_operation": 0, "value": "later"}],
        [{"name": "cleanup.policy", "config_operation": 3, "value": "delete"}],
    ],
)
def test_incremental_alter_answers_like_kafka(kafka, ottla_broker, operations):
    name = f"ref-incr-{uuid.uuid4().hex[:8]}"
    for bootstrap in (kafka.bootstrap_servers, ottla_broker.bootstrap_servers):
        assert _create(bootstrap, name, {})["error_code"] == 0
    theirs = _incremental(kafka.bootstrap_servers, name, operations)
    ours = _incremental(ottla_broker.bootstrap_servers, name, operations)
    assert ours == theirs
    if theirs[0] == 0:
        ours_shown = _describe(ottla_broker.bootstrap_servers, name)["cleanup.policy"]["value"]
        theirs_shown = once_shown(lambda: _describe(kafka.bootstrap_servers, name)["cleanup.policy"]["value"], lambda value: value == ours_shown)
        assert ours_shown == theirs_shown


def _ottla(bootstrap: str, *args: str, stdin: str | None = None) -> str:
    command = [sys.executable, "-m", "ottla", *args, "--bootstrap", bootstrap]
    result = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_cli_drives_a_real_kafka(kafka):
    bootstrap = kafka.bootstrap_servers
    topic, group = f"ref-cli-{uuid.uuid4().hex[:8]}", f"ref-cli-group-{uuid.uuid4().hex[:8]}"
    _ottla(bootstrap, "topics", "create", topic, "--partitions", "2", "--config", "retention.ms=600000")
    _ottla(bootstrap, "produce", topic, stdin="k1\tone\nk2\ttwo\nthree\n")
    assert sorted(_ottla(bootstrap, "consume", topic, "--from-beginning", "--group", group).splitlines()) == ["k1\tone", "k2\ttwo", "three"]
    described = json.loads(_ottla(bootstrap, "groups", "describe", group, "--json"))
    assert sum(o["committed"] for o in described["offsets"]) == 3 and all(o["lag"] == 0 for o in described["offsets"])
    _ottla(bootstrap, "topics", "alter", topic, "--partitions", "3", "--set", "cleanup.policy=compact")
    altered = {"retention.ms": "600000", "cleanup.policy": "compact"}
    _await_topic(bootstrap, topic, altered, partitions=3)
    (entry,) = json.loads(_ottla(bootstrap, "topics", "describe", topic, "--json"))
    assert len(entry["partitions"]) == 3
    assert {c["name"]: c["value"] for c in entry["configs"]} == altered
    assert sum(p["records"] for p in json.loads(_ottla(bootstrap, "offsets", topic, "--json"))["partitions"]) == 3
    _ottla(bootstrap, "groups", "delete", group)
    _ottla(bootstrap, "topics", "delete", topic)
