"""A streams group's initial rebalance delay (`group.streams.initial.rebalance.delay.ms`), as
Kafka 4.4 answers it (asked of the reference broker with a 1 s delay): members joining an
empty group, new or emptied, are answered epoch 1 (the assignment epoch), no tasks and
ASSIGNMENT_DELAYED "...initial rebalance delay." until a timer computes the target, which
each member takes at its next heartbeat."""

from __future__ import annotations

import time
from typing import Any

from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from tests.server.test_streams_role_changes import _topology

DELAYED = [{"status_code": 5, "status_detail": "Assignment delayed due to the configured initial rebalance delay."}]


def _beat(connection: _Connection, group: str, member_id: str, epoch: int) -> tuple[Any, ...]:
    joining = epoch == 0
    tasks = [] if joining else None
    answer = connection.call(ApiKey.STREAMS_GROUP_HEARTBEAT, 0, {
        "group_id": group, "member_id": member_id, "member_epoch": epoch, "endpoint_information_epoch": 0, "instance_id": None, "rack_id": None,
        "rebalance_timeout_ms": 30_000 if joining else -1, "topology": _topology() if joining else None, "active_tasks": tasks,
        "standby_tasks": tasks, "warmup_tasks": tasks, "process_id": member_id, "user_endpoint": None, "client_tags": [] if joining else None,
        "task_offsets": None, "task_end_offsets": None, "shutdown_application": False})
    active = None if answer["active_tasks"] is None else sorted(p for t in answer["active_tasks"] for p in t["partitions"])
    return (answer["error_code"], answer["member_epoch"], active, answer["status"])


def _described(connection: _Connection, group: str) -> tuple[Any, ...]:
    described = connection.call(ApiKey.STREAMS_GROUP_DESCRIBE, 0, {"group_ids": [group], "include_authorized_operations": False})["groups"][0]
    return (described["group_state"], described["group_epoch"], described["assignment_epoch"],
            {m["member_id"]: (m["member_epoch"], sorted(p for t in m["target_assignment"]["active_tasks"] for p in t["partitions"]))
             for m in described["members"]})


def _assigned(connection: _Connection, group: str) -> tuple[Any, ...]:
    """The group as described once the delay's timer computed its target."""
    deadline = time.monotonic() + 30
    while True:
        described = _described(connection, group)
        if described[1] == described[2] or time.monotonic() > deadline:
            return described
        time.sleep(0.05)


def test_a_new_or_emptied_groups_first_assignment_waits_for_the_initial_delay() -> None:
    with running_broker(group_streams_assignment_interval_ms=0, group_streams_initial_rebalance_delay_ms=1000) as broker:
        connection = _Connection(broker.bootstrap_servers)
        try:
            # The changelog too: Kafka answers a join that finds it missing MISSING_INTERNAL_TOPICS as
            # well, and whether the next join still does depends on how fast its controller creates it.
            created = connection.call(ApiKey.CREATE_TOPICS, 5, {"topics": [{"name": name, "num_partitions": 2, "replication_factor": 1,
                                                                            "assignments": [], "configs": []} for name in ("roles", "roles-store-changelog")],
                                                                "timeout_ms": 10_000, "validate_only": False})
            assert [topic["error_code"] for topic in created["topics"]] == [ErrorCode.NONE] * 2
            assert _beat(connection, "x", "a", 0) == (0, 1, [], DELAYED)
            assert _beat(connection, "x", "b", 0) == (0, 1, [], DELAYED)
            state, group_epoch, assignment_epoch, members = _assigned(connection, "x")
            # Kafka 4.4 gave a task 1 and b task 0; which member gets which is the assignor's.
            assert (state, group_epoch, assignment_epoch) == ("Reconciling", 3, 3)
            assert {m: epoch for m, (epoch, _) in members.items()} == {"a": 1, "b": 1}
            assert sorted(tasks for _, tasks in members.values()) == [[0], [1]]
            assert _beat(connection, "x", "a", 1) == (0, 3, members["a"][1], [])

            assert _beat(connection, "y", "a", 0) == (0, 1, [], DELAYED)
            assert _beat(connection, "y", "a", 1) == (0, 1, None, DELAYED)
            assert _assigned(connection, "y") == ("Reconciling", 2, 2, {"a": (1, [0, 1])})
            assert _beat(connection, "y", "a", 1) == (0, 2, [0, 1], [])
            assert _beat(connection, "y", "a", -1)[:2] == (0, -1)
            assert _beat(connection, "y", "b", 0) == (0, 3, [], DELAYED)  # emptied: delayed again
            assert _described(connection, "y") == ("Assigning", 4, 3, {"b": (3, [])})
        finally:
            connection.close()
