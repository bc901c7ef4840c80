"""A group's subscribed topics changed while its coordinator was down: Kafka 4.4 keeps the
MetadataHash its last group epoch record holds, and a loaded group's metadata has expired
(ModernGroup.hasMetadataExpired with no refresh deadline), so the first heartbeat after the load
hashes the topics as they are now, finds another hash, bumps the group epoch and reassigns
(GroupMetadataManager.consumerGroupHeartbeat -> updateSubscriptionMetadata; streams:
streamsGroupHeartbeat -> StreamsGroup.computeMetadataHash against StreamsGroup.metadataHash).

The topics change in a broker run of its own between two runs with group traffic, so no
heartbeat sees the change live."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from tests.server.test_streams_role_changes import _topology


def _call(data_dir: Path, calls: Any) -> Any:
    """Run `calls(connection)` against a broker on `data_dir`, stopped afterwards."""
    with running_broker(data_dir=str(data_dir), group_consumer_assignment_interval_ms=0, group_streams_initial_rebalance_delay_ms=0,
                        group_streams_assignment_interval_ms=0) as broker:
        connection = _Connection(broker.bootstrap_servers)
        try:
            return calls(connection)
        finally:
            connection.close()


def _create(connection: _Connection, *names: str) -> None:
    created = connection.call(ApiKey.CREATE_TOPICS, 7, {"topics": [{"name": name, "num_partitions": 1, "replication_factor": 1, "assignments": [],
                                                                    "configs": []} for name in names], "timeout_ms": 10_000, "validate_only": False})
    assert [topic["error_code"] for topic in created["topics"]] == [ErrorCode.NONE] * len(names)


def _grow(connection: _Connection, name: str, count: int) -> None:
    grown = connection.call(ApiKey.CREATE_PARTITIONS, 3, {"topics": [{"name": name, "count": count, "assignments": None}],
                                                          "timeout_ms": 10_000, "validate_only": False})
    assert grown["results"][0]["error_code"] == ErrorCode.NONE, grown


def _consumer_beat(connection: _Connection, member_id: str, epoch: int, group: str = "g", topic: str = "t") -> tuple[int, list[int] | None]:
    joining = epoch == 0
    answer = connection.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 1, {
        "group_id": group, "member_id": member_id, "member_epoch": epoch, "instance_id": None, "rack_id": None,
        "rebalance_timeout_ms": 30_000 if joining else -1, "subscribed_topic_names": [topic] if joining else None, "subscribed_topic_regex": None,
        "server_assignor": None, "topic_partitions": [] if joining else None})
    assert answer["error_code"] == ErrorCode.NONE, answer
    assignment = answer["assignment"]
    return answer["member_epoch"], None if assignment is None else sorted(p for t in assignment["topic_partitions"] for p in t["partitions"])


def _consumer_described(connection: _Connection, group: str) -> tuple[str, int, int]:
    described = connection.call(ApiKey.CONSUMER_GROUP_DESCRIBE, 0, {"group_ids": [group], "include_authorized_operations": False})["groups"][0]
    return described["group_state"], described["group_epoch"], described["assignment_epoch"]


def test_a_consumer_group_is_reassigned_at_the_first_heartbeat_after_a_load_that_finds_its_topic_changed(tmp_path: Path) -> None:
    def join(connection: _Connection) -> None:
        _create(connection, "t", "u")
        assert _consumer_beat(connection, "m1", 0) == (2, [0])
        assert _consumer_beat(connection, "m1", 2) == (2, None)
        assert _consumer_beat(connection, "m1", 0, "h", "u") == (2, [0])

    def change(connection: _Connection) -> None:
        _grow(connection, "t", 3)
        deleted = connection.call(ApiKey.DELETE_TOPICS, 6, {"topics": [{"name": "u", "topic_id": bytes(16)}], "timeout_ms": 10_000})
        assert deleted["responses"][0]["error_code"] == ErrorCode.NONE
        _create(connection, "u")  # the same name and partitions, another topic id

    def beat(connection: _Connection) -> tuple[object, ...]:
        unchanged = _consumer_described(connection, "g"), _consumer_described(connection, "h")
        return unchanged, _consumer_beat(connection, "m1", 2), _consumer_beat(connection, "m1", 2, "h", "u"), _consumer_described(connection, "h")

    _call(tmp_path, join)
    _call(tmp_path, change)
    # As Kafka 4.4 answered across restarts of its own: h's member is first asked, at its
    # epoch, to revoke the deleted topic's partition before it gets the recreated one's.
    assert _call(tmp_path, beat) == ((("Stable", 2, 2), ("Stable", 2, 2)), (3, [0, 1, 2]), (2, []), ("Reconciling", 3, 3))


def test_a_consumer_group_whose_topics_did_not_change_is_not_bumped_by_a_load(tmp_path: Path) -> None:
    def join(connection: _Connection) -> None:
        _create(connection, "t")
        assert _consumer_beat(connection, "m1", 0) == (2, [0])

    _call(tmp_path, join)
    assert _call(tmp_path, lambda connection: _consumer_beat(connection, "m1", 2)) == (2, None)


def _streams_beat(connection: _Connection, member_id: str, epoch: int) -> tuple[int, list[int] | None]:
    joining = epoch == 0
    tasks = [] if joining else None
    answer = connection.call(ApiKey.STREAMS_GROUP_HEARTBEAT, 0, {
        "group_id": "app", "member_id": member_id, "member_epoch": epoch, "endpoint_information_epoch": 0, "instance_id": None, "rack_id": None,
        "rebalance_timeout_ms": 30_000 if joining else -1, "topology": _topology() if joining else None, "active_tasks": tasks,
        "standby_tasks": tasks, "warmup_tasks": tasks, "process_id": member_id, "user_endpoint": None, "client_tags": [] if joining else None,
        "task_offsets": None, "task_end_offsets": None, "shutdown_application": False})
    assert answer["error_code"] == ErrorCode.NONE, answer
    active = answer["active_tasks"]
    return answer["member_epoch"], None if active is None else sorted(p for t in active for p in t["partitions"])


def test_a_streams_group_is_reassigned_at_the_first_heartbeat_after_a_load_that_finds_its_topics_grown(tmp_path: Path) -> None:
    def join(connection: _Connection) -> None:
        _create(connection, "roles", "roles-store-changelog")
        assert _streams_beat(connection, "a", 0) == (2, [0])
        assert _streams_beat(connection, "a", 2) == (2, None)

    def grow(connection: _Connection) -> None:
        # Source and changelog alike, so the topology stays valid with two tasks.
        _grow(connection, "roles", 2)
        _grow(connection, "roles-store-changelog", 2)

    _call(tmp_path, join)
    _call(tmp_path, grow)
    assert _call(tmp_path, lambda connection: _streams_beat(connection, "a", 2)) == (3, [0, 1])
