"""What Kafka 4.4's StickyTaskAssignor is given, over raw StreamsGroupHeartbeats: each member's
current assignment (TargetAssignmentBuilder.createMemberMetadataAndState), never its previous
target, and the changelog offsets members report (TaskOffsets), which make a member that has
a task's state a candidate for it. The offsets a member reports are kept and described
(StreamsGroupDescribe's TaskOffsets and TaskEndOffsets); a task reported twice is refused."""

from __future__ import annotations

from typing import Any

from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode


def _topology(topic: str, stateful: bool) -> dict[str, Any]:
    changelogs = [{"name": f"{topic}-store-changelog", "partitions": 0, "replication_factor": 0, "topic_configs": []}] if stateful else []
    return {"epoch": 1, "subtopologies": [
        {"subtopology_id": "0", "source_topics": [topic], "source_topic_regex": [], "state_changelog_topics": changelogs,
         "repartition_sink_topics": [], "repartition_source_topics": [], "copartition_groups": []}]}


def _offsets(entries: dict[int, int] | None) -> list[dict[str, Any]] | None:
    return None if entries is None else [{"subtopology_id": "0", "partition": p, "offset": o} for p, o in entries.items()]


class _Group:
    """Members of one streams group, each its own process, heartbeating over one connection."""

    def __init__(self, connection: _Connection, group_id: str, topology: dict[str, Any]) -> None:
        self.connection, self.group_id, self.topology = connection, group_id, topology
        self.epochs: dict[str, int] = {}

    def beat(self, member_id: str, owned: set[int] | None = None, offsets: dict[int, int] | None = None,
             end_offsets: dict[int, int] | None = None) -> dict[str, Any]:
        joining = member_id not in self.epochs
        active = [] if joining else None if owned is None else [{"subtopology_id": "0", "partitions": sorted(owned)}]
        answer = self.connection.call(ApiKey.STREAMS_GROUP_HEARTBEAT, 0, {
            "group_id": self.group_id, "member_id": member_id, "member_epoch": 0 if joining else self.epochs[member_id],
            "endpoint_information_epoch": 0, "instance_id": None, "rack_id": None, "rebalance_timeout_ms": 30_000 if joining else -1,
            "topology": self.topology if joining else None, "active_tasks": active, "standby_tasks": None if active is None else [],
            "warmup_tasks": None if active is None else [], "process_id": member_id, "user_endpoint": None, "client_tags": [] if joining else None,
            "task_offsets": _offsets(offsets), "task_end_offsets": _offsets(end_offsets), "shutdown_application": False})
        if answer["error_code"] == ErrorCode.NONE:
            self.epochs[member_id] = answer["member_epoch"]
        return answer

    def described(self) -> dict[str, Any]:
        answer = self.connection.call(ApiKey.STREAMS_GROUP_DESCRIBE, 0, {"group_ids": [self.group_id], "include_authorized_operations": False})
        return {member["member_id"]: member for member in answer["groups"][0]["members"]}


def _create(connection: _Connection, topic: str, partitions: int) -> None:
    created = connection.call(ApiKey.CREATE_TOPICS, 5, {"topics": [{"name": topic, "num_partitions": partitions, "replication_factor": 1,
                                                                    "assignments": [], "configs": []}], "timeout_ms": 10_000, "validate_only": False})
    assert created["topics"][0]["error_code"] == ErrorCode.NONE, created


def _active(tasks: dict[str, Any]) -> set[int]:
    return {p for entry in tasks["active_tasks"] for p in entry["partitions"]}


def test_a_task_only_in_a_members_target_is_placed_as_a_free_one() -> None:
    """a runs all six tasks; x joins and is meant to get 3, 4 and 5, which a gives up; before
    x heartbeats again (so it holds none of them), y joins. As Kafka 4.4, the tasks a gave up
    are free: they go by load, in task order, to x and y in turn (x 2 and 4, y 3 and 5), not
    first to x as the member last meant to get them (x 3 and 4, y 2 and 5)."""
    with running_broker(group_streams_assignment_interval_ms=0, group_streams_initial_rebalance_delay_ms=0) as broker:
        connection = _Connection(broker.bootstrap_servers)
        try:
            _create(connection, "six", 6)
            group = _Group(connection, "free", _topology("six", stateful=False))
            assert _active(group.beat("a")) == {0, 1, 2, 3, 4, 5}
            assert group.beat("x")["active_tasks"] == []
            assert _active(group.beat("a", owned={0, 1, 2, 3, 4, 5})) == {0, 1, 2}  # 3, 4, 5 to give up
            assert group.beat("a", owned={0, 1, 2})["error_code"] == ErrorCode.NONE
            group.beat("y")
            targets = {member_id: _active(member["target_assignment"]) for member_id, member in group.described().items()}
            assert targets == {"a": {0, 1}, "x": {2, 4}, "y": {3, 5}}
            assert _active(group.beat("x", owned=set())) == {4}  # and 2 once a gives it up
        finally:
            connection.close()


def test_a_member_reporting_a_tasks_offset_is_its_candidate_and_is_described() -> None:
    """a runs tasks 0 and 1; b joins and is meant to get 1, which a still runs; c joins
    reporting an offset for task 1 (its store has task 1's state). As Kafka 4.4's
    collectStandbyCandidates, c is then task 1's candidate and gets it, where the least loaded
    member, b, would get it otherwise. The offsets each member last reported are described."""
    with running_broker(group_streams_assignment_interval_ms=0, group_streams_initial_rebalance_delay_ms=0) as broker:
        connection = _Connection(broker.bootstrap_servers)
        try:
            _create(connection, "pair", 2)
            group = _Group(connection, "warm", _topology("pair", stateful=False))
            assert _active(group.beat("a")) == {0, 1}
            assert group.beat("a", owned={0, 1}, offsets={0: 40, 1: 41}, end_offsets={0: 50})["error_code"] == ErrorCode.NONE
            group.beat("b")
            group.beat("c", offsets={1: 7})
            members = group.described()
            assert {member_id: _active(member["target_assignment"]) for member_id, member in members.items()} == {"a": {0}, "b": set(), "c": {1}}
            assert members["a"]["task_offsets"] == [{"subtopology_id": "0", "partition": 0, "offset": 40}, {"subtopology_id": "0", "partition": 1, "offset": 41}]
            assert members["a"]["task_end_offsets"] == [{"subtopology_id": "0", "partition": 0, "offset": 50}]
            assert (members["b"]["task_offsets"], members["c"]["task_offsets"]) == ([], [{"subtopology_id": "0", "partition": 1, "offset": 7}])
            assert _active(group.beat("a", owned={0, 1})) == {0}
            assert group.beat("a", owned={0})["error_code"] == ErrorCode.NONE
            assert _active(group.beat("c", owned=set())) == {1}
        finally:
            connection.close()


def test_a_task_reported_twice_is_refused() -> None:
    with running_broker(group_streams_assignment_interval_ms=0, group_streams_initial_rebalance_delay_ms=0) as broker:
        connection = _Connection(broker.bootstrap_servers)
        try:
            _create(connection, "one", 1)
            group = _Group(connection, "twice", _topology("one", stateful=False))
            group.beat("a")
            answer = group.beat("a", offsets={0: 7}, end_offsets=None)
            assert answer["error_code"] == ErrorCode.NONE
            twice = [{"subtopology_id": "0", "partition": 0, "offset": 7}, {"subtopology_id": "0", "partition": 0, "offset": 8}]
            refused = connection.call(ApiKey.STREAMS_GROUP_HEARTBEAT, 0, {
                "group_id": "twice", "member_id": "a", "member_epoch": group.epochs["a"], "endpoint_information_epoch": 0, "instance_id": None,
                "rack_id": None, "rebalance_timeout_ms": -1, "topology": None, "active_tasks": None, "standby_tasks": None, "warmup_tasks": None,
                "process_id": None, "user_endpoint": None, "client_tags": None, "task_offsets": None, "task_end_offsets": twice,
                "shutdown_application": False})
            assert (refused["error_code"], refused["error_message"]) == (
                ErrorCode.INVALID_REQUEST, "Task offsets contain a duplicate entry for subtopology 0 and partition 0.")
        finally:
            connection.close()
