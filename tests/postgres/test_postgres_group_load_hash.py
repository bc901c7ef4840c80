"""Over PostgreSQL, a consumer group whose topic grew while no broker coordinated it: the broker
that loads the group keeps the MetadataHash its last group epoch record holds, and the first
heartbeat after the load finds the topics' hash another, bumps the group epoch and reassigns, as
Kafka 4.4 does after a restart (tests/server/test_group_load_hash.py)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

pytestmark = pytest.mark.external

_DEADLINE_S = 30.0
# Retriable while the broker takes its partitions over.
_NOT_SERVED_YET = {ErrorCode.NOT_COORDINATOR, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, ErrorCode.COORDINATOR_NOT_AVAILABLE}


def _beat(postgres_url: str, epoch: int) -> tuple[int, list[int] | None]:
    """m1's heartbeat into g on a broker of its own over the database, asked again until served."""
    joining = epoch == 0
    with running_broker(storage_url=postgres_url, group_consumer_assignment_interval_ms=0) as broker:
        connection = _Connection(broker.bootstrap_servers)
        try:
            if joining:
                created = connection.call(ApiKey.CREATE_TOPICS, 7, {"topics": [{"name": "t", "num_partitions": 1, "replication_factor": 1, "assignments": [],
                                                                                "configs": []}], "timeout_ms": 10_000, "validate_only": False})
                assert created["topics"][0]["error_code"] == ErrorCode.NONE, created
            deadline = time.monotonic() + _DEADLINE_S
            while True:
                answer: dict[str, Any] = connection.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 1, {
                    "group_id": "g", "member_id": "m1", "member_epoch": epoch, "instance_id": None, "rack_id": None,
                    "rebalance_timeout_ms": 30_000 if joining else -1, "subscribed_topic_names": ["t"] if joining else None,
                    "subscribed_topic_regex": None, "server_assignor": None, "topic_partitions": [] if joining else None})
                if answer["error_code"] not in _NOT_SERVED_YET or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        finally:
            connection.close()
    assert answer["error_code"] == ErrorCode.NONE, answer
    assignment = answer["assignment"]
    return answer["member_epoch"], None if assignment is None else sorted(p for t in assignment["topic_partitions"] for p in t["partitions"])


def test_a_group_is_reassigned_at_the_first_heartbeat_after_a_load_that_finds_its_topic_grown(postgres_url: str) -> None:
    assert _beat(postgres_url, 0) == (2, [0])
    with running_broker(storage_url=postgres_url) as broker:
        connection = _Connection(broker.bootstrap_servers)
        try:
            grown = connection.call(ApiKey.CREATE_PARTITIONS, 3, {"topics": [{"name": "t", "count": 3, "assignments": None}],
                                                                  "timeout_ms": 10_000, "validate_only": False})
            assert grown["results"][0]["error_code"] == ErrorCode.NONE, grown
        finally:
            connection.close()
    assert _beat(postgres_url, 2) == (3, [0, 1, 2])
