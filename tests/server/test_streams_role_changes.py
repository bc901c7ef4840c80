"""In-place role changes of a streams group member's tasks (Kafka 4.4's CurrentAssignmentBuilder:
demoteActiveTasksToStandby, applyPromotionsToActive, keepPromotedTasksUntilGranted), over raw
StreamsGroupHeartbeats: a member that gives its active task up to become its standby is told
both halves in the same answer, so it recycles the task's state; a member whose standby is to
become active keeps the standby until the active task is granted, then has it replaced in the
same step. The expected answers are the reference broker's (Kafka 4.4, one standby replica,
no assignment interval nor initial delay), to the same heartbeats."""

from __future__ import annotations

import time
from typing import Any

from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

# Broker settings the expected answers were taken with, from the reference broker too.
SETTINGS = {"group.streams.num.standby.replicas": "1", "group.streams.assignment.interval.ms": "0",
            "group.streams.initial.rebalance.delay.ms": "0"}


def _topology() -> dict[str, Any]:
    changelog = {"name": "roles-store-changelog", "partitions": 0, "replication_factor": 0, "topic_configs": []}
    return {"epoch": 1, "subtopologies": [
        {"subtopology_id": "0", "source_topics": ["roles"], "source_topic_regex": [], "state_changelog_topics": [changelog],
         "repartition_sink_topics": [], "repartition_source_topics": [], "copartition_groups": []}]}


def _tasks(partitions: set[int]) -> list[dict[str, Any]]:
    return [{"subtopology_id": "0", "partitions": sorted(partitions)}] if partitions else []


class _Members:
    """Members of one group, each its own process, each reporting what it was last told to hold."""

    def __init__(self, connection: _Connection) -> None:
        self.connection = connection
        self.epochs: dict[str, int] = {}
        self.holds: dict[str, tuple[set[int], set[int]]] = {}

    def beat(self, member_id: str, epoch: int | None = None) -> tuple[Any, ...]:
        """(error, epoch, active, standby, status) answered, the tasks None when not sent; epoch -1 leaves."""
        joining = member_id not in self.epochs
        active, standby = self.holds.get(member_id, (set(), set()))
        answer = self.connection.call(ApiKey.STREAMS_GROUP_HEARTBEAT, 0, {
            "group_id": "roles", "member_id": member_id, "member_epoch": 0 if joining else self.epochs[member_id] if epoch is None else epoch,
            "endpoint_information_epoch": 0, "instance_id": None, "rack_id": None, "rebalance_timeout_ms": 30_000 if joining else -1,
            "topology": _topology() if joining else None, "active_tasks": _tasks(active), "standby_tasks": _tasks(standby), "warmup_tasks": [],
            "process_id": member_id, "user_endpoint": None, "client_tags": [] if joining else None, "task_offsets": None,
            "task_end_offsets": None, "shutdown_application": False})
        if epoch == -1:
            self.epochs.pop(member_id, None)
            return (answer["error_code"], answer["member_epoch"])
        if answer["error_code"] == ErrorCode.NONE:
            self.epochs[member_id] = answer["member_epoch"]
            if answer["active_tasks"] is not None:
                self.holds[member_id] = ({p for t in answer["active_tasks"] for p in t["partitions"]},
                                         {p for t in answer["standby_tasks"] for p in t["partitions"]})
        told = (None, None) if answer["active_tasks"] is None else (
            sorted(p for t in answer["active_tasks"] for p in t["partitions"]), sorted(p for t in answer["standby_tasks"] for p in t["partitions"]))
        return (answer["error_code"], answer["member_epoch"], *told, [(st["status_code"], st["status_detail"]) for st in answer["status"]])


def _loading(connection: _Connection) -> bool:
    """Whether the group coordinator is still coming up (the reference broker creates its
    offsets topic and loads it first)."""
    if connection.call(ApiKey.FIND_COORDINATOR, 3, {"key": "roles", "key_type": 0})["error_code"]:
        return True
    described = connection.call(ApiKey.STREAMS_GROUP_DESCRIBE, 0, {"group_ids": ["roles"], "include_authorized_operations": False})
    return described["groups"][0]["error_code"] in (ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, ErrorCode.COORDINATOR_NOT_AVAILABLE, ErrorCode.NOT_COORDINATOR)


def scenario(bootstrap_servers: str) -> list[tuple[Any, ...]]:
    """a runs both tasks alone; b joins, meant to run task 1 with a standby of 0, and a to keep
    0 with a standby of 1; then a leaves, so b's standby of 0 is promoted."""
    connection = _Connection(bootstrap_servers)
    try:
        # The changelog too: Kafka creates a missing internal topic only after the heartbeat
        # that finds it missing, which Ottla creates in place.
        for topic in ("roles", "roles-store-changelog"):
            created = connection.call(ApiKey.CREATE_TOPICS, 5, {"topics": [{"name": topic, "num_partitions": 2, "replication_factor": 1, "assignments": [],
                                                                            "configs": []}], "timeout_ms": 10_000, "validate_only": False})
            assert created["topics"][0]["error_code"] == ErrorCode.NONE, created
            while not connection.call(ApiKey.METADATA, 12, {"topics": [{"topic_id": b"\0" * 16, "name": topic}], "allow_auto_topic_creation": False,
                                                            "include_topic_authorized_operations": False})["topics"][0]["partitions"]:
                time.sleep(0.1)  # the reference broker's coordinator sees a topic once its metadata has it
        while _loading(connection):
            time.sleep(0.1)
        members = _Members(connection)
        return [
            members.beat("a"),
            members.beat("a"),
            members.beat("b"),
            members.beat("a"),  # a: active 1 to b, as a standby of its own at once
            members.beat("b"),  # b: the standby of 0 now; task 1 still a's
            members.beat("a"),  # a reports task 1 gone
            members.beat("b"),  # b: task 1 now
            members.beat("a"),
            members.beat("b"),
            members.beat("a", -1),
            members.beat("b"),  # b's standby of 0 promoted in place
        ]
    finally:
        connection.close()


# The reference broker's answers to `scenario`.
KAFKA = [
    (0, 2, [0, 1], [], []),
    (0, 2, None, None, []),
    (0, 3, [], [0], []),
    (0, 2, [0], [1], []),  # active 1 pending revocation, and the standby of 1 already
    (0, 3, None, None, []),
    (0, 3, None, None, []),
    (0, 3, [1], [0], []),
    (0, 3, None, None, []),
    (0, 3, None, None, []),
    (0, -1),
    (0, 4, [0, 1], [], []),
]


def test_role_changes_are_answered_as_kafka_answers_them() -> None:
    with running_broker(**{key.replace(".", "_"): value for key, value in SETTINGS.items()}) as broker:
        assert scenario(broker.bootstrap_servers) == KAFKA
