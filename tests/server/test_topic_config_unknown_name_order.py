"""Of several unknown topic config names, the one Kafka's controller reports is the first its
HashMap of the request's configs iterates (LogConfig.validateNames over
ControllerConfigurationValidator's HashMap), not the first in the request: by the bucket of the
name's String.hashCode, then, within one bucket, in request order."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kafka_wire import WireClient

from ottla.testing import running_broker
from ottla.wire.api import ApiKey

CASES = [
    # "" hashes to 0, the first bucket; "topictopic" lands in a later one.
    ([("topictopic", ""), ("", "1000")], ""),
    ([("zzz", "1"), ("aaa", "1")], "aaa"),
    # "Aa" and "BB" share a hash code: one bucket, so the request's order.
    ([("BB", "1"), ("Aa", "1")], "BB"),
    ([("Aa", "1"), ("BB", "1")], "Aa"),
    # Fourteen names: the map has grown to 32 buckets.
    ([(f"x{i}", "1") for i in range(14, 0, -1)], "x8"),
]


@pytest.fixture(scope="module")
def client() -> Iterator[WireClient]:
    with running_broker(data_dir=None) as broker:
        broker.create_topic("existing", partitions=1)
        opened = WireClient(broker.bootstrap_servers)
        yield opened
        opened.close()


@pytest.mark.parametrize(("configs", "reported"), CASES)
def test_create_topics_reports_the_unknown_name_kafkas_hash_map_meets_first(
    client: WireClient, configs: list[tuple[str, str]], reported: str
) -> None:
    answer = client.call(ApiKey.CREATE_TOPICS, 5, {"topics": [{
        "name": "refused", "num_partitions": 1, "replication_factor": 1, "assignments": [],
        "configs": [{"name": name, "value": value} for name, value in configs],
    }], "timeout_ms": 5000, "validate_only": True})
    topic = answer["topics"][0]
    assert (topic["error_code"], topic["error_message"]) == (40, f"Unknown topic config name: {reported}")


def test_incremental_alter_configs_reports_the_same_name(client: WireClient) -> None:
    answer = client.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {"resources": [{"resource_type": 2, "resource_name": "existing", "configs": [
        {"name": "zzz", "config_operation": 0, "value": "1"}, {"name": "aaa", "config_operation": 0, "value": "1"}]}], "validate_only": True})
    resource = answer["responses"][0]
    assert (resource["error_code"], resource["error_message"]) == (40, "Unknown topic config name: aaa")


def test_null_values_are_named_in_request_order(client: WireClient) -> None:
    answer = client.call(ApiKey.CREATE_TOPICS, 5, {"topics": [{
        "name": "refused", "num_partitions": 1, "replication_factor": 1, "assignments": [],
        "configs": [{"name": "b", "value": None}, {"name": "a", "value": None}, {"name": "retention.ms", "value": None}],
    }], "timeout_ms": 5000, "validate_only": True})
    topic = answer["topics"][0]
    assert (topic["error_code"], topic["error_message"]) == (40, "Null value not supported for topic configs: b,a,retention.ms")


def test_an_alteration_counts_the_overrides_it_keeps_in_the_map(client: WireClient) -> None:
    """Twelve overrides kept and two set make fourteen: Kafka's map has grown to 32 buckets, where
    "u60" (bucket 14) comes before "u0" (bucket 27); in 16 buckets "u0" (11) would come first."""
    kept = {"retention.ms": "604800001", "segment.ms": "604800000", "segment.jitter.ms": "0", "flush.messages": "100000",
            "flush.ms": "100000", "retention.bytes": "-1", "max.message.bytes": "1048588", "index.interval.bytes": "4096",
            "delete.retention.ms": "86400000", "min.compaction.lag.ms": "0", "file.delete.delay.ms": "60000",
            "min.cleanable.dirty.ratio": "0.5"}
    created = client.call(ApiKey.CREATE_TOPICS, 5, {"topics": [{
        "name": "twelve-overrides", "num_partitions": 1, "replication_factor": 1, "assignments": [],
        "configs": [{"name": name, "value": value} for name, value in kept.items()],
    }], "timeout_ms": 5000, "validate_only": False})
    assert created["topics"][0]["error_code"] == 0, created
    answer = client.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {"resources": [{"resource_type": 2, "resource_name": "twelve-overrides", "configs": [
        {"name": "u0", "config_operation": 0, "value": "1"}, {"name": "u60", "config_operation": 0, "value": "1"}]}], "validate_only": True})
    resource = answer["responses"][0]
    assert (resource["error_code"], resource["error_message"]) == (40, "Unknown topic config name: u60")
