"""A streams group's epochs and `streams.assignment.interval.ms`, as Kafka 4.4 answers them
(asked of the reference broker): a new group starts at epoch 1, so its first member gets
epoch 2; a change within the interval after the last target computation bumps the group
epoch but is assigned only by a heartbeat once the interval has passed (no timer), the
members meanwhile answered ASSIGNMENT_DELAYED at the epoch of the target as last computed;
a group its last member left is assigned at once again. Over the coordinator's injected
clock for the interval, over a real socket for the answers' fields."""

from __future__ import annotations

from typing import Any

from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from tests.server.test_streams_groups import Harness, count, create_topics

DELAYED = (5, "Assignment delayed due to the configured assignment interval.")


def test_a_change_within_the_assignment_interval_is_assigned_by_a_heartbeat_after_it() -> None:
    h = Harness(assignment_interval_ms=1000)
    create_topics(h, 3)
    a = h.join("a")
    assert (a.member_epoch, count(a.assignment), a.status) == (2, 6, [])
    b = h.join("b")
    assert (b.member_epoch, count(b.assignment), b.status) == (2, 0, [DELAYED])
    group = h.coordinator.streams.groups["app"]
    assert (group.group_epoch, group.assignment_epoch, group.state.value) == (3, 2, "Assigning")
    still = h.beat("a", 2, owned=a.assignment)
    assert (still.member_epoch, still.assignment, still.status) == (2, None, [DELAYED])
    h.clock.advance(1.0)
    moved = h.beat("a", 2, owned=a.assignment)
    assert moved.status == [] and moved.member_epoch == 2 and count(moved.assignment) == 3  # gives three up first
    group = h.coordinator.streams.groups["app"]  # each heartbeat stores a new copy
    assert (group.group_epoch, group.assignment_epoch) == (3, 3)


def test_a_group_its_last_member_left_assigns_the_next_join_at_once() -> None:
    h = Harness(assignment_interval_ms=1000)
    h.storage.create_topic("words", 3)
    assert h.join("a").member_epoch == 2
    assert h.beat("a", -1).error is ErrorCode.NONE
    group = h.coordinator.streams.groups["app"]
    assert (group.group_epoch, group.assignment_epoch, group.assignment_timestamp_ms) == (3, 3, 0)
    again = h.join("b")
    assert (again.member_epoch, count(again.assignment), again.status) == (4, 6, [])


def _topology(stateful: bool) -> dict[str, Any]:
    changelogs = [{"name": "t-store-changelog", "partitions": 0, "replication_factor": 0, "topic_configs": []}] if stateful else []
    return {"epoch": 1, "subtopologies": [
        {"subtopology_id": "0", "source_topics": ["t"], "source_topic_regex": [], "state_changelog_topics": changelogs,
         "repartition_sink_topics": [], "repartition_source_topics": [], "copartition_groups": []}]}


def _beat(connection: _Connection, version: int, member_id: str, epoch: int) -> dict[str, Any]:
    joining = epoch == 0
    tasks = [] if joining else None
    return connection.call(ApiKey.STREAMS_GROUP_HEARTBEAT, version, {
        "group_id": "g", "member_id": member_id, "member_epoch": epoch, "endpoint_information_epoch": 0, "instance_id": None,
        "rack_id": None, "rebalance_timeout_ms": 30_000 if joining else -1, "topology": _topology(True) if joining else None,
        "active_tasks": tasks, "standby_tasks": tasks, "warmup_tasks": tasks, "process_id": member_id, "user_endpoint": None,
        "client_tags": [] if joining else None, "task_offsets": None, "task_end_offsets": None, "shutdown_application": False})


def _changelog_partitions(connection: _Connection) -> int:
    described = connection.call(ApiKey.STREAMS_GROUP_DESCRIBE, 0, {"group_ids": ["g"], "include_authorized_operations": False})
    return int(described["groups"][0]["topology"]["subtopologies"][0]["state_changelog_topics"][0]["partitions"])


def test_heartbeat_and_leave_answers_carry_the_fields_kafka_sets() -> None:
    """The first member of a new group gets epoch 2; a v0 answer's legacy recovery lag is 0
    (Kafka sets only the v1 field); a leave answers its member id and epoch, every other
    field at the schema's default. A new group's topology is described as stored until the
    next heartbeat configures it (an internal topic's count 0, then decided)."""
    with running_broker(group_streams_assignment_interval_ms=0, group_streams_initial_rebalance_delay_ms=0) as broker:
        connection = _Connection(broker.bootstrap_servers)
        try:
            created = connection.call(ApiKey.CREATE_TOPICS, 5, {"topics": [{"name": "t", "num_partitions": 2, "replication_factor": 1,
                                                                            "assignments": [], "configs": []}], "timeout_ms": 10_000, "validate_only": False})
            assert created["topics"][0]["error_code"] == ErrorCode.NONE
            joined = _beat(connection, 0, "a", 0)
            assert (joined["error_code"], joined["member_epoch"], joined["acceptable_recovery_lag_legacy"], joined["task_offset_interval_ms"]) == (0, 2, 0, 60000)
            assert _changelog_partitions(connection) == 0
            v1 = _beat(connection, 1, "b", 0)
            assert (v1["member_epoch"], v1["acceptable_recovery_lag"]) == (3, 10000)
            assert _changelog_partitions(connection) == 2
            left = _beat(connection, 1, "b", -1)
            assert left["error_code"] == ErrorCode.NONE
            assert {k: left[k] for k in ("member_id", "member_epoch", "heartbeat_interval_ms", "task_offset_interval_ms", "acceptable_recovery_lag", "status")} == {
                "member_id": "b", "member_epoch": -1, "heartbeat_interval_ms": 0, "task_offset_interval_ms": 0, "acceptable_recovery_lag": -1, "status": []}
        finally:
            connection.close()
