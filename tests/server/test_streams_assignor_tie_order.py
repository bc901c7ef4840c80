"""Which member gets which free task where Kafka 4.4's StickyTaskAssignor leaves it to ties:
it walks processes in java.util.HashMap order (processIdToState, filled by computeIfAbsent)
and takes the least loaded process, and a process's least loaded member, from PriorityQueues
ordered by load alone. The expected layouts are what the reference Kafka 4.4 broker gave for
the same raw StreamsGroupHeartbeats: members join while the source topic is missing, so
when it is created every task is free at once."""

from __future__ import annotations

from typing import Any

from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from tests.server.test_streams_task_offsets import _create, _topology


def _tasks(tasks: dict[str, Any], kind: str) -> list[int]:
    return sorted(p for entry in tasks[kind] for p in entry["partitions"])


def _targets(connection: _Connection, group_id: str, processes: dict[str, str], partitions: int, stateful: bool) -> dict[str, tuple[list[int], list[int]]]:
    """Each member (member id -> process id) joins; then the topic is created and each
    heartbeats until the group's target has the tasks; member id -> (active, standby) target."""
    topic = f"{group_id}-source"
    epochs: dict[str, int] = {}

    def beat(member_id: str) -> dict[str, Any]:
        joining = member_id not in epochs
        answer = connection.call(ApiKey.STREAMS_GROUP_HEARTBEAT, 0, {
            "group_id": group_id, "member_id": member_id, "member_epoch": epochs.get(member_id, 0), "endpoint_information_epoch": 0,
            "instance_id": None, "rack_id": None, "rebalance_timeout_ms": 30_000 if joining else -1,
            "topology": _topology(topic, stateful) if joining else None, "active_tasks": [], "standby_tasks": [], "warmup_tasks": [],
            "process_id": processes[member_id], "user_endpoint": None, "client_tags": [] if joining else None,
            "task_offsets": None, "task_end_offsets": None, "shutdown_application": False})
        assert answer["error_code"] == ErrorCode.NONE, answer
        epochs[member_id] = answer["member_epoch"]
        return answer

    for member_id in processes:
        assert beat(member_id)["active_tasks"] == []
    _create(connection, topic, partitions)
    for member_id in processes:  # the first heartbeat sees the topic and computes the target
        beat(member_id)
    described = connection.call(ApiKey.STREAMS_GROUP_DESCRIBE, 0, {"group_ids": [group_id], "include_authorized_operations": False})
    return {member["member_id"]: (_tasks(member["target_assignment"], "active_tasks"), _tasks(member["target_assignment"], "standby_tasks"))
            for member in described["groups"][0]["members"]}


def test_free_tasks_go_to_processes_in_kafkas_hash_and_queue_order() -> None:
    with running_broker(group_streams_assignment_interval_ms=0, group_streams_initial_rebalance_delay_ms=0) as broker:
        connection = _Connection(broker.bootstrap_servers)
        try:
            assert _targets(connection, "pair", {"a": "a", "b": "b"}, 2, stateful=False) == {"a": ([1], []), "b": ([0], [])}
            assert _targets(connection, "four", {"m1": "m1", "m2": "m2", "m3": "m3", "m4": "m4"}, 6, stateful=False) == {
                "m1": ([0], []), "m2": ([2, 4], []), "m3": ([3, 5], []), "m4": ([1], [])}
            assert _targets(connection, "shared", {"x": "p1", "y": "p1", "z": "p1", "w": "p2"}, 5, stateful=False) == {
                "w": ([1, 4], []), "x": ([0], []), "y": ([3], []), "z": ([2], [])}
        finally:
            connection.close()


def test_standbys_go_to_processes_in_kafkas_hash_and_queue_order() -> None:
    with running_broker(group_streams_num_standby_replicas=1, group_streams_assignment_interval_ms=0,
                        group_streams_initial_rebalance_delay_ms=0) as broker:
        connection = _Connection(broker.bootstrap_servers)
        try:
            assert _targets(connection, "three", {"a": "a", "b": "b", "c": "c"}, 3, stateful=True) == {
                "a": ([0], [2]), "b": ([2], [1]), "c": ([1], [0])}
            assert _targets(connection, "mixed", {"a1": "p", "a2": "p", "b1": "q", "c1": "r"}, 7, stateful=True) == {
                "a1": ([0, 5], [4]), "a2": ([3], [2, 6]), "b1": ([2, 4], [1, 3]), "c1": ([1, 6], [0, 5])}
        finally:
            connection.close()
