"""AlterPartitionReassignments over one PostgreSQL: placement follows the live brokers alone, so
asking for the replicas a partition has is a no-op and any other list is refused, never taken
and then undone by the next placement."""

from __future__ import annotations

import time
from contextlib import ExitStack

import pytest

from compat.harness import OttlaBroker
from ottla.server.admin.client import KafkaClient
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

pytestmark = [pytest.mark.external, pytest.mark.slow]


def _replicas(bootstrap: str, topic: str) -> list[int]:
    with KafkaClient(bootstrap) as client:
        found = client.metadata([topic])["topics"][0]
    return [] if found["error_code"] else list(found["partitions"][0]["replica_nodes"])


def _reassign(bootstrap: str, topic: str, replicas: list[int]) -> tuple[int, str | None]:
    with KafkaClient(bootstrap) as client:
        answer = client.call(ApiKey.ALTER_PARTITION_REASSIGNMENTS, {
            "timeout_ms": 30_000, "allow_replication_factor_change": True,
            "topics": [{"name": topic, "partitions": [{"partition_index": 0, "replicas": replicas}]}],
        })[1]
    partition = answer["responses"][0]["partitions"][0]
    return partition["error_code"], partition["error_message"]


def test_a_shared_log_partition_keeps_the_live_brokers_as_its_replicas(postgres_url: str) -> None:
    with ExitStack() as stack:
        brokers = [stack.enter_context(OttlaBroker(storage=postgres_url, node_id=node_id, ready_timeout=60, stop_timeout=30)) for node_id in (1, 2)]
        bootstrap = brokers[0].bootstrap
        with KafkaClient(bootstrap) as client:
            created = client.call(ApiKey.CREATE_TOPICS, {"topics": [{"name": "placed", "num_partitions": 1, "replication_factor": -1,
                                                                     "assignments": [], "configs": []}], "timeout_ms": 30_000})[1]
        assert created["topics"][0]["error_code"] == ErrorCode.NONE
        deadline = time.monotonic() + 60
        while len(current := _replicas(bootstrap, "placed")) < 2:
            assert time.monotonic() < deadline, f"both brokers never placed the partition: {current}"
            time.sleep(0.2)

        assert _reassign(bootstrap, "placed", current) == (ErrorCode.NONE, None)
        error, message = _reassign(bootstrap, "placed", current[:1])
        assert error == ErrorCode.INVALID_REPLICATION_ASSIGNMENT and message is not None and "PostgreSQL" in message
        assert _replicas(bootstrap, "placed") == current
