"""The embedding API's `create_topic` over PostgreSQL creates the topic in the database, as
CreateTopics does: it outlives a restart of a broker that keeps nothing on its disk, every other
broker on the database has it with its configs, and its replication factor is checked against
the live brokers (they are one cluster)."""

from __future__ import annotations

import time

import pytest

from ottla import Broker
from ottla.server.admin.client import KafkaClient
from ottla.server.cluster.state import ReplicaPlacementError
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

pytestmark = pytest.mark.external

_TOPIC = "made-by-the-embedding"
_DEADLINE_S = 30.0
_DYNAMIC_TOPIC_CONFIG = 1  # DescribeConfigs' config_source


def _partitions(bootstrap: str, topic: str) -> int | None:
    """The topic's partition count in Metadata, None when the broker does not know it."""
    with KafkaClient(bootstrap) as client:
        found = client.metadata([topic])["topics"][0]
    if found["error_code"] == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
        return None
    assert found["error_code"] == ErrorCode.NONE, found
    return len(found["partitions"])


def _retention_ms(bootstrap: str, topic: str) -> tuple[str, int]:
    """The topic's retention.ms as DescribeConfigs gives it: (value, config source)."""
    with KafkaClient(bootstrap) as client:
        _, described = client.call(ApiKey.DESCRIBE_CONFIGS, {
            "resources": [{"resource_type": 2, "resource_name": topic, "configuration_keys": ["retention.ms"]}],
            "include_synonyms": False, "include_documentation": False,
        })
    result = described["results"][0]
    assert result["error_code"] == ErrorCode.NONE, result
    (entry,) = result["configs"]
    return entry["value"], entry["config_source"]


def test_a_topic_made_by_create_topic_outlives_a_restart_and_is_seen_by_another_broker(postgres_url: str) -> None:
    with running_broker(storage_url=postgres_url) as first:
        first.create_topic(_TOPIC, 3, retention_ms=60000)
        first.restart()
        assert _partitions(first.bootstrap_servers, _TOPIC) == 3
        with running_broker(storage_url=postgres_url, node_id=2) as second:
            assert _partitions(second.bootstrap_servers, _TOPIC) == 3
            assert _retention_ms(second.bootstrap_servers, _TOPIC) == ("60000", _DYNAMIC_TOPIC_CONFIG)


def test_create_topic_checks_the_replication_factor_against_the_live_brokers(postgres_url: str) -> None:
    with running_broker(storage_url=postgres_url) as first:
        with pytest.raises(ReplicaPlacementError, match="only 1 broker"):
            first.create_topic("three-copies", 1, replication_factor=3)
        assert _partitions(first.bootstrap_servers, "three-copies") is None
        with running_broker(storage_url=postgres_url, node_id=2):
            deadline = time.monotonic() + _DEADLINE_S
            while True:
                try:
                    first.create_topic("two-copies", 1, replication_factor=2)
                    break
                except ReplicaPlacementError:
                    assert time.monotonic() < deadline, "the second broker never counted as live"
                    time.sleep(0.2)
            assert _partitions(first.bootstrap_servers, "two-copies") == 1


async def test_the_async_broker_creates_the_topic_in_the_database_when_awaited(postgres_url: str) -> None:
    async with Broker(port=0, data_dir=None, storage_url=postgres_url) as broker:
        created = broker.create_topic("awaited", 2)
        assert created is not None
        await created
    async with Broker(port=0, data_dir=None, storage_url=postgres_url) as broker:
        assert broker.storage is not None
        found = broker.storage.topic("awaited")
        assert found is not None and found.partitions == 2
