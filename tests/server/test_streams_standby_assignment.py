"""Where standby tasks go (KIP-1071), as Kafka 4.4's StickyTaskAssignor.assignStandby places
them: a standby goes first to the member that ran the task active before (it still has the
task's state) and then to one that kept a standby of it, each only while under the quota of
active and standby tasks per member; the rest to the least loaded process without the task.
So members end with as many tasks as the quota allows, and a task moved away from a member
keeps its standby there."""

from __future__ import annotations

from typing import Any

from compat.differential import _Connection
from ottla.server.groups.streams import TasksTuple
from ottla.server.groups.streams.assignor import MemberSpec, assign
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode


def _held(process: str, active: set[int] | None = None) -> MemberSpec:
    tasks = TasksTuple({"0": frozenset(active)} if active else {})
    return MemberSpec(process, tasks)


def _standbys(target: dict[str, TasksTuple]) -> dict[str, set[int]]:
    return {member: set(tasks.standby.get("0", ())) for member, tasks in target.items()}


def test_a_task_moved_away_from_a_member_keeps_its_standby_there() -> None:
    """b ran tasks 0 and 2 and keeps 0; a, with nothing, takes 2; c keeps 1. b has the state of
    task 2: its standby stays on b, not on whichever member is least loaded."""
    target = assign({"a": _held("a"), "b": _held("b", {0, 2}), "c": _held("c", {1})}, {"0": 3}, 1, frozenset({"0"}))
    assert {member: set(tasks.active["0"]) for member, tasks in target.items()} == {"a": {2}, "b": {0}, "c": {1}}
    assert _standbys(target) == {"a": {1}, "b": {2}, "c": {0}}


def test_standbys_keep_the_members_balanced() -> None:
    """Six tasks, active and standby, over three members: two each. The member that ran all
    three keeps one active and the standby of the last it gave up, then is at its quota."""
    target = assign({"a": _held("a", {0, 1, 2}), "b": _held("b"), "c": _held("c")}, {"0": 3}, 1, frozenset({"0"}))
    assert {member: set(tasks.active["0"]) for member, tasks in target.items()} == {"a": {0}, "b": {1}, "c": {2}}
    assert _standbys(target) == {"a": {2}, "b": {0}, "c": {1}}


def _topology() -> dict[str, Any]:
    """One stateful subtopology: it reads `words` and keeps a store with a changelog."""
    changelog = {"name": "app-store-changelog", "partitions": 0, "replication_factor": 0, "topic_configs": []}
    return {"epoch": 1, "subtopologies": [
        {"subtopology_id": "0", "source_topics": ["words"], "source_topic_regex": [], "state_changelog_topics": [changelog],
         "repartition_sink_topics": [], "repartition_source_topics": [], "copartition_groups": []}]}


def test_a_streams_groups_standbys_are_balanced_over_the_members_that_join() -> None:
    with running_broker(group_streams_num_standby_replicas=1, group_streams_assignment_interval_ms=0, group_streams_initial_rebalance_delay_ms=0) as broker:
        connection = _Connection(broker.bootstrap_servers)
        try:
            # The changelog too: one found missing is assigned a heartbeat later (Kafka 4.4).
            created = connection.call(ApiKey.CREATE_TOPICS, 5, {"topics": [{"name": name, "num_partitions": 3, "replication_factor": 1,
                                                                            "assignments": [], "configs": []} for name in ("words", "app-store-changelog")],
                                                                "timeout_ms": 10_000, "validate_only": False})
            assert [topic["error_code"] for topic in created["topics"]] == [ErrorCode.NONE] * 2

            def join(member_id: str) -> None:
                answer = connection.call(ApiKey.STREAMS_GROUP_HEARTBEAT, 0, {
                    "group_id": "app", "member_id": member_id, "member_epoch": 0, "endpoint_information_epoch": 0, "instance_id": None,
                    "rack_id": None, "rebalance_timeout_ms": 30_000, "topology": _topology(), "active_tasks": [], "standby_tasks": [],
                    "warmup_tasks": [], "process_id": member_id, "user_endpoint": None, "client_tags": [], "task_offsets": [],
                    "task_end_offsets": [], "shutdown_application": False})
                assert answer["error_code"] == ErrorCode.NONE, answer

            for member_id in ("a", "b", "c"):  # a runs all three tasks; it has not heartbeated since
                join(member_id)
            described = connection.call(ApiKey.STREAMS_GROUP_DESCRIBE, 0, {"group_ids": ["app"], "include_authorized_operations": False})
            targets = {member["member_id"]: member["target_assignment"] for member in described["groups"][0]["members"]}

            def partitions(tasks: list[dict[str, Any]]) -> set[int]:
                return {p for task in tasks for p in task["partitions"]}

            assert {m: partitions(t["active_tasks"]) for m, t in targets.items()} == {"a": {0}, "b": {1}, "c": {2}}
            assert {m: partitions(t["standby_tasks"]) for m, t in targets.items()} == {"a": {2}, "b": {0}, "c": {1}}
        finally:
            connection.close()
