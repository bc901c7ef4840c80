"""When a streams group re-assigns (KIP-1071), as Kafka 4.4's streamsGroupHeartbeat does:
the heartbeat after `streams.num.standby.replicas` is altered bumps the group epoch, so
standby tasks follow at once (the assignor's configs are kept in the group metadata record
as LastAssignmentConfigs); and a member asked to revoke again gets a whole rebalance
timeout from then (maybeReconcile reschedules it whenever the member changed).

The first runs over a real socket; the second on the coordinator's injected clock, since a
rebalance timeout is only seen expiring or not without racing a real one."""

from __future__ import annotations

from typing import Any

from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from tests.server.test_streams_groups import Harness, count, topology

GROUP_RESOURCE = 32


def _tasks(answer: dict[str, Any], kind: str) -> int:
    return sum(len(t["partitions"]) for t in answer[kind] or ())


def test_standby_tasks_follow_an_altered_standby_count_at_the_next_heartbeat() -> None:
    with running_broker(data_dir=None, group_streams_assignment_interval_ms=0, group_streams_initial_rebalance_delay_ms=0) as broker:
        connection = _Connection(broker.bootstrap_servers)
        try:
            # The internal topics too: one found missing is assigned a heartbeat later (Kafka 4.4).
            created = connection.call(ApiKey.CREATE_TOPICS, 5, {"topics": [{"name": name, "num_partitions": 2, "replication_factor": 1,
                                                                            "assignments": [], "configs": []}
                                                                           for name in ("words", "app-counts-repartition", "app-counts-changelog")],
                                                                "timeout_ms": 10_000, "validate_only": False})
            assert [topic["error_code"] for topic in created["topics"]] == [ErrorCode.NONE] * 3

            def beat(member_id: str, epoch: int, active: list[dict[str, Any]] | None = None) -> dict[str, Any]:
                joining = epoch == 0
                answer = connection.call(ApiKey.STREAMS_GROUP_HEARTBEAT, 0, {
                    "group_id": "app", "member_id": member_id, "member_epoch": epoch, "endpoint_information_epoch": 0, "instance_id": None,
                    "rack_id": None, "rebalance_timeout_ms": 30_000 if joining else -1, "topology": topology() if joining else None,
                    "active_tasks": active or [], "standby_tasks": [], "warmup_tasks": [], "process_id": member_id, "user_endpoint": None,
                    "client_tags": [] if joining else None, "task_offsets": [], "task_end_offsets": [], "shutdown_application": False})
                assert answer["error_code"] == ErrorCode.NONE, answer
                return answer

            a = beat("a", 0)
            b = beat("b", 0)
            a = beat("a", a["member_epoch"], a["active_tasks"])  # revokes half of the four tasks
            kept = a["active_tasks"]
            a = beat("a", a["member_epoch"], kept)
            b = beat("b", b["member_epoch"])
            assert (_tasks(b, "active_tasks"), _tasks(b, "standby_tasks")) == (2, 0)  # a keeps the other two
            epoch = a["member_epoch"]

            altered = connection.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {"validate_only": False, "resources": [{
                "resource_type": GROUP_RESOURCE, "resource_name": "app",
                "configs": [{"name": "streams.num.standby.replicas", "config_operation": 0, "value": "1"}]}]})
            assert altered["responses"][0]["error_code"] == ErrorCode.NONE
            # The stateful subtopology's tasks the other member runs get their standbys here now.
            a = beat("a", epoch, kept)
            assert a["member_epoch"] == epoch + 1 and _tasks(a, "standby_tasks") > 0
        finally:
            connection.close()


def test_a_streams_member_asked_to_revoke_again_gets_its_rebalance_timeout_again() -> None:
    h = Harness()
    h.storage.create_topic("words", 6)  # twelve tasks
    a = h.join("a")
    b = h.join("b")
    asked = h.beat("a", a.member_epoch, owned=a.assignment)
    kept = asked.assignment
    assert count(kept) == 6  # six to revoke within 30 s, from now
    h.clock.advance(20)
    b = h.beat("b", b.member_epoch)
    c = h.join("c")
    again = h.beat("a", asked.member_epoch, owned=kept)  # the six revoked; the target moved on: more
    assert again.assignment is not None and count(again.assignment) < 6
    for _ in range(3):  # 35 s since it was first asked, 15 since it was asked again
        h.clock.advance(5)
        h.beat("a", again.member_epoch, owned=kept)
        b, c = h.beat("b", b.member_epoch), h.beat("c", c.member_epoch)
    assert "a" in h.coordinator.streams_group("app").members
    h.clock.advance(16)
    h.beat("b", b.member_epoch), h.beat("c", c.member_epoch)
    assert "a" not in h.coordinator.streams_group("app").members
