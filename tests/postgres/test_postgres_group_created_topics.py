"""The topics groups create themselves over PostgreSQL are database topics, as CreateTopics'
are: a streams group's internal topics, created at its coordinator's heartbeat, and a share
group's dead-letter topic, created when its first record is archived with
errors.deadletterqueue.auto.create.topics.enable. The other broker on the database sees them
(Metadata), and both brokers have them after a restart with nothing on their disks."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from test_postgres_embedding_create_topic import _partitions

from ottla.server.admin.client import KafkaClient
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

pytestmark = pytest.mark.external

_DEADLINE_S = 30.0
_REJECT = 3  # AcknowledgeType
_MISSING_INTERNAL_TOPICS = 3  # StreamsGroupHeartbeat's status code


def _until(condition: Callable[[], Any], what: str) -> Any:
    """`condition()`'s first true value, polled within the deadline."""
    deadline = time.monotonic() + _DEADLINE_S
    while not (found := condition()):
        assert time.monotonic() < deadline, f"not within {_DEADLINE_S:.0f}s: {what}"
        time.sleep(0.2)
    return found


def _create(client: KafkaClient, topic: str, partitions: int) -> None:
    created = client.call(ApiKey.CREATE_TOPICS, {"topics": [{"name": topic, "num_partitions": partitions, "replication_factor": -1,
                                                             "assignments": [], "configs": []}], "timeout_ms": 10_000, "validate_only": False})[1]
    assert created["topics"][0]["error_code"] == ErrorCode.NONE, created


def _coordinator(client: KafkaClient, group: str) -> int:
    """The node FindCoordinator names for `group`, once the cluster has one."""
    def found() -> int | None:
        answer = client.call(ApiKey.FIND_COORDINATOR, {"key_type": 0, "coordinator_keys": [group]}, highest=4)[1]["coordinators"][0]
        return None if answer["error_code"] else int(answer["node_id"])
    return int(_until(found, f"a coordinator for {group}"))


def _group_on(client: KafkaClient, node: int, prefix: str) -> str:
    """A new group id whose coordinator is `node`."""
    for attempt in range(200):
        if _coordinator(client, f"{prefix}-{attempt}") == node:
            return f"{prefix}-{attempt}"
    raise AssertionError(f"no group of 200 is coordinated by {node}")


def _both_have(brokers: list[ThreadedBroker], topic: str, partitions: int) -> None:
    for broker in brokers:
        _until(lambda: _partitions(broker.bootstrap_servers, topic) == partitions, f"{topic} with {partitions} partitions on {broker.bootstrap_servers}")


def _restarted_both_have(brokers: list[ThreadedBroker], topic: str, partitions: int) -> None:
    """Both brokers restarted, one after the other (in memory: only the database keeps anything)."""
    for broker in brokers:
        broker.restart()
    _both_have(brokers, topic, partitions)


def _streams_heartbeat(client: KafkaClient, node: int, group: str, epoch: int, cleanup_policy: str = "compact") -> dict[str, Any]:
    joining = epoch == 0
    tasks: list[Any] | None = [] if joining else None
    changelog = {"name": f"{group}-store-changelog", "partitions": 0, "replication_factor": 0, "topic_configs": [
        {"key": "cleanup.policy", "value": cleanup_policy}]}
    topology = {"epoch": 0, "subtopologies": [
        {"subtopology_id": "0", "source_topics": [f"{group}-words"], "source_topic_regex": [], "state_changelog_topics": [changelog],
         "repartition_sink_topics": [], "repartition_source_topics": [], "copartition_groups": []}]}
    body = {
        "group_id": group, "member_id": "m1", "member_epoch": epoch, "endpoint_information_epoch": 0, "instance_id": None, "rack_id": None,
        "rebalance_timeout_ms": 30_000 if joining else -1, "topology": topology if joining else None, "active_tasks": tasks,
        "standby_tasks": tasks, "warmup_tasks": tasks, "process_id": "p1" if joining else None, "user_endpoint": None,
        "client_tags": [] if joining else None, "task_offsets": tasks, "task_end_offsets": tasks, "shutdown_application": False}
    # Until the coordinator has claimed and read its partition, it answers one of these.
    waits = (ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, ErrorCode.NOT_COORDINATOR)
    answer = _until(lambda: (sent := client.call(ApiKey.STREAMS_GROUP_HEARTBEAT, body, node=node, highest=0)[1])["error_code"]
                    not in waits and sent, f"{group}'s coordinator loaded")
    assert answer["error_code"] == ErrorCode.NONE, answer
    return dict(answer)


def test_a_streams_groups_internal_topics_are_seen_by_the_other_broker_and_outlive_restarts(postgres_url: str) -> None:
    settings = {"storage_url": postgres_url, "group_streams_initial_rebalance_delay_ms": 0}
    with running_broker(**settings) as first, running_broker(node_id=2, **settings) as second:
        with KafkaClient(first.bootstrap_servers) as client:
            _until(lambda: len(client.metadata([])["brokers"]) == 2, "both brokers live")
            group = _group_on(client, 1, f"app-{uuid.uuid4().hex[:8]}")
            _create(client, f"{group}-words", 2)
            joined = _streams_heartbeat(client, 1, group, 0)
            assert [status["status_code"] for status in joined["status"]] == [_MISSING_INTERNAL_TOPICS]
            _both_have([first, second], f"{group}-store-changelog", 2)
            # Created, the topics let the group go on: a later heartbeat no longer finds them missing.
            _until(lambda: _MISSING_INTERNAL_TOPICS not in [s["status_code"] for s in _streams_heartbeat(client, 1, group, joined["member_epoch"])["status"] or ()],
                   "a heartbeat that finds the internal topics")
        _restarted_both_have([first, second], f"{group}-store-changelog", 2)


def test_an_internal_topic_with_an_invalid_config_is_not_created(postgres_url: str) -> None:
    """As Kafka 4.4's controller refuses it (asked of the reference broker: its heartbeats go on
    answering MISSING_INTERNAL_TOPICS), and nothing of it reaches the database, whose brokers
    load every topic there at start."""
    with running_broker(storage_url=postgres_url, group_streams_initial_rebalance_delay_ms=0) as broker:
        with KafkaClient(broker.bootstrap_servers) as client:
            group = f"app-{uuid.uuid4().hex[:8]}"
            _create(client, f"{group}-words", 2)
            joined = _streams_heartbeat(client, 1, group, 0, cleanup_policy="bogus")
            for _ in range(3):
                time.sleep(0.3)
                again = _streams_heartbeat(client, 1, group, joined["member_epoch"])
                assert [status["status_code"] for status in again["status"]] == [_MISSING_INTERNAL_TOPICS]
        broker.restart()
        assert _partitions(broker.bootstrap_servers, f"{group}-store-changelog") is None


def _share_fetch(client: KafkaClient, node: int, group: str, member: str, topic_id: bytes, epoch: int,
                 acknowledged: list[dict[str, Any]]) -> dict[str, Any]:
    answer = client.call(ApiKey.SHARE_FETCH, {
        "group_id": group, "member_id": member, "share_session_epoch": epoch, "max_wait_ms": 500, "min_bytes": 1,
        "max_bytes": 1 << 20, "max_records": 500, "batch_size": 500, "share_acquire_mode": 0,
        "topics": [{"topic_id": topic_id, "partitions": [{"partition_index": 0, "acknowledgement_batches": acknowledged}]}],
        "forgotten_topics_data": []}, node=node, highest=1)[1]
    assert answer["error_code"] == ErrorCode.NONE, answer
    return answer


def test_a_share_groups_dead_letter_topic_is_seen_by_the_other_broker_and_outlives_restarts(postgres_url: str) -> None:
    settings = {"storage_url": postgres_url, "errors_deadletterqueue_auto_create_topics_enable": True, "num_partitions": 3}
    with running_broker(**settings) as first, running_broker(node_id=2, **settings) as second:
        suffix = uuid.uuid4().hex[:8]
        topic, group, dead = f"work-{suffix}", f"share-{suffix}", f"dlq.{suffix}"
        with KafkaClient(first.bootstrap_servers) as client:
            _until(lambda: len(client.metadata([])["brokers"]) == 2, "both brokers live")
            _create(client, topic, 1)
            configs = [{"name": name, "config_operation": 0, "value": value} for name, value in (
                ("share.auto.offset.reset", "earliest"), ("errors.deadletterqueue.topic.name", dead))]
            altered = client.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, {"resources": [
                {"resource_type": 32, "resource_name": group, "configs": configs}], "validate_only": False})[1]
            assert altered["responses"][0]["error_code"] == ErrorCode.NONE, altered
            leader = _until(lambda: _produce_one(client, topic), f"a record in {topic}")
            topic_id = bytes(client.metadata([topic])["topics"][0]["topic_id"])
            member = uuid.uuid4().hex
            fetched = _until(lambda: [r for t in _share_fetch(client, leader, group, member, topic_id, 0, [])["responses"]
                                      for p in t["partitions"] for r in p["acquired_records"]], "a record acquired")
            assert [(r["first_offset"], r["last_offset"]) for r in fetched] == [(0, 0)]
            _share_fetch(client, leader, group, member, topic_id, 1, [{"first_offset": 0, "last_offset": 0, "acknowledge_types": [_REJECT]}])
        _both_have([first, second], dead, 3)
        _until(lambda: _end_offset(second.bootstrap_servers, dead) == 1, "the dead letter written to the topic created for it")
        _restarted_both_have([first, second], dead, 3)


def _end_offset(bootstrap: str, topic: str) -> int:
    """The end offset of the topic's partition 0, from its leader."""
    with KafkaClient(bootstrap) as client:
        leader = client.metadata([topic])["topics"][0]["partitions"][0]["leader_id"]
        listed = client.call(ApiKey.LIST_OFFSETS, {"replica_id": -1, "isolation_level": 0, "topics": [
            {"name": topic, "partitions": [{"partition_index": 0, "current_leader_epoch": -1, "timestamp": -1}]}]}, node=leader, highest=7)[1]
    partition = listed["topics"][0]["partitions"][0]
    assert partition["error_code"] == ErrorCode.NONE, listed
    return int(partition["offset"])


def _produce_one(client: KafkaClient, topic: str) -> int | None:
    """One record produced to partition 0's leader: the leader, or None while the leader named
    has not claimed the partition yet."""
    from ottla.wire.records import Record, build_batch

    leader = int(client.metadata([topic])["topics"][0]["partitions"][0]["leader_id"])
    batch = bytes(build_batch([Record(0, int(time.time() * 1000), b"k", b"poison", ())]))
    produced = client.call(ApiKey.PRODUCE, {"transactional_id": None, "acks": -1, "timeout_ms": 10_000, "topic_data": [
        {"name": topic, "partition_data": [{"index": 0, "records": batch}]}]}, node=leader, highest=9)[1]
    error = produced["responses"][0]["partition_responses"][0]["error_code"]
    if error in (ErrorCode.NOT_LEADER_FOR_PARTITION, ErrorCode.LEADER_NOT_AVAILABLE):
        return None
    assert error == ErrorCode.NONE, produced
    return leader
