"""A topic deleted through one broker over PostgreSQL loses its committed offsets at the group's
coordinator, another broker, as Kafka 4.4's group coordinator drops them on the metadata update
(GroupCoordinatorShard.onTopicsDeleted): two `ottla serve --storage postgresql://...` processes.
The coordinator hears of the deletion by NOTIFY (its catalogue reload) and writes the
tombstones; the broker taking the group over then reads them from the database.
tests/server/test_deleted_topic_offsets.py checks the answers themselves on the local engine."""

from __future__ import annotations

import itertools
import time
from contextlib import ExitStack
from typing import Any

import pytest

from compat.harness import OttlaBroker
from ottla.server.admin.client import ClientError, KafkaClient
from ottla.server.coordinator.log import java_string_hash
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

pytestmark = [pytest.mark.external, pytest.mark.slow]

_DEADLINE = 60.0
# A short lease, so a stopped broker's partitions move soon (Kafka's default is 9 s).
_LEASE = {"broker.session.timeout.ms": "3000", "broker.heartbeat.interval.ms": "500"}
_TOPIC = "gone"
# Answers that say to ask again: the group's partition is loading or not yet this broker's.
_RETRIABLE = {ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, ErrorCode.NOT_COORDINATOR, ErrorCode.COORDINATOR_NOT_AVAILABLE}


def _until(check: Any, what: str) -> Any:
    """`check()`'s first truthy answer, asked until the deadline."""
    deadline = time.monotonic() + _DEADLINE
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.2)


def _own_leaders(bootstrap: str, topic: str) -> dict[int, int]:
    with KafkaClient(bootstrap) as client:
        found = client.metadata([topic])["topics"][0]
    return {} if found["error_code"] else {p["partition_index"]: p["leader_id"] for p in found["partitions"]}


def _offsets_partition(key: str, partitions: int) -> int:
    code = java_string_hash(key)
    return (0 if code == -(1 << 31) else abs(code)) % partitions


def _committed(bootstrap: str, group: str) -> dict[int, int] | None:
    """The group's offsets of the topic's partitions as OffsetFetch v7 answers them at
    `bootstrap`; None while that broker answers to ask again."""
    try:
        with KafkaClient(bootstrap) as client:
            answer = client.call(ApiKey.OFFSET_FETCH, {"group_id": group, "require_stable": False,
                                                       "topics": [{"name": _TOPIC, "partition_indexes": [0, 1]}]}, highest=7)[1]
    except (ClientError, OSError):
        return None
    if answer["error_code"] in _RETRIABLE:
        return None
    assert answer["error_code"] == ErrorCode.NONE, answer
    return {p["partition_index"]: p["committed_offset"] for p in answer["topics"][0]["partitions"]}


def _commit(bootstrap: str, group: str) -> bool:
    with KafkaClient(bootstrap) as client:
        answer = client.call(ApiKey.OFFSET_COMMIT, {
            "group_id": group, "generation_id_or_member_epoch": -1, "member_id": "",
            "topics": [{"name": _TOPIC, "partitions": [{"partition_index": p, "committed_offset": 5 + p, "committed_metadata": ""} for p in (0, 1)]}],
        }, highest=8)[1]
    errors = {p["error_code"] for t in answer["topics"] for p in t["partitions"]}
    # UNKNOWN_TOPIC_OR_PARTITION until this broker hears of the topic the other created.
    if errors & (_RETRIABLE | {ErrorCode.UNKNOWN_TOPIC_OR_PARTITION}):
        return False
    assert errors == {ErrorCode.NONE}, answer
    return True


def test_a_topic_deleted_through_another_broker_loses_its_offsets_for_good(postgres_url: str) -> None:
    with ExitStack() as brokers:
        first = brokers.enter_context(OttlaBroker(storage=postgres_url, node_id=1, settings=_LEASE, ready_timeout=60, stop_timeout=30))
        second = brokers.enter_context(OttlaBroker(storage=postgres_url, node_id=2, settings=_LEASE, ready_timeout=60, stop_timeout=30))
        leaders = _until(lambda: (found := _own_leaders(second.bootstrap, "__consumer_offsets")) and set(found.values()) == {1, 2} and found,
                         "coordinator partitions on both brokers")
        group = next(f"g-{n}" for n in itertools.count() if leaders[_offsets_partition(f"g-{n}", len(leaders))] == 2)
        with KafkaClient(first.bootstrap) as client:
            created = client.call(ApiKey.CREATE_TOPICS, {"topics": [{"name": _TOPIC, "num_partitions": 2, "replication_factor": 1,
                                                                    "assignments": [], "configs": []}], "timeout_ms": 30000}, highest=7)[1]
        assert created["topics"][0]["error_code"] == ErrorCode.NONE, created
        _until(lambda: _commit(second.bootstrap, group), "the offsets are committed at broker 2")
        assert _committed(second.bootstrap, group) == {0: 5, 1: 6}

        with KafkaClient(first.bootstrap) as client:
            deleted = client.call(ApiKey.DELETE_TOPICS, {"topics": [{"name": _TOPIC, "topic_id": bytes(16)}], "topic_names": [_TOPIC],
                                                         "timeout_ms": 30000}, highest=6)[1]
        assert deleted["responses"][0]["error_code"] == ErrorCode.NONE, deleted
        _until(lambda: _committed(second.bootstrap, group) == {0: -1, 1: -1}, "broker 2 drops the deleted topic's offsets")

        # Broker 1 takes the group over and reads its partition from the database again.
        second.stop()
        _until(lambda: _own_leaders(first.bootstrap, "__consumer_offsets").get(_offsets_partition(group, len(leaders))) == 1,
               "broker 1 coordinates the group")
        assert _until(lambda: _committed(first.bootstrap, group), "broker 1 answers for the group") == {0: -1, 1: -1}
