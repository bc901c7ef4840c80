"""StreamsGroupDescribe lists a streams group's members in the order Kafka 4.4's members map
(TimelineHashMap) iterates them, over a real socket: by the slot of the member id's hash in a
table that doubles as members join and never shrinks, later-inserted first within a slot, not
in join order. StreamsGroupHeartbeat's endpoints follow that order too, the heartbeating member
last (StreamsGroup.buildEndpointToPartitions). The expected orders are what the reference
Kafka 4.4 answered for the same requests (so `kafka-streams-groups --describe --members`
prints its rows alike)."""

from __future__ import annotations

from typing import Any

from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

GROUP, SOURCE = "sg-member-order", "sg-member-order-source"
TOPOLOGY = {"epoch": 0, "subtopologies": [{"subtopology_id": "0", "source_topics": [SOURCE], "source_topic_regex": [], "state_changelog_topics": [],
                                           "repartition_sink_topics": [], "repartition_source_topics": [], "copartition_groups": []}]}
MEMBERS = [f"member-{i}-x{i * 7}" for i in range(9)]


def _heartbeat(connection: _Connection, member_id: str, epoch: int, port: int | None = None, endpoint_epoch: int = 0) -> dict[str, Any]:
    joining = epoch == 0
    answer: dict[str, Any] = connection.call(ApiKey.STREAMS_GROUP_HEARTBEAT, 0, {
        "group_id": GROUP, "member_id": member_id, "member_epoch": epoch, "endpoint_information_epoch": endpoint_epoch, "instance_id": None,
        "rack_id": None, "rebalance_timeout_ms": 30_000 if joining else -1, "topology": TOPOLOGY if joining else None,
        "active_tasks": [] if joining else None, "standby_tasks": [] if joining else None, "warmup_tasks": [] if joining else None,
        "process_id": member_id, "user_endpoint": None if port is None else {"host": "h", "port": port}, "client_tags": [] if joining else None, "task_offsets": None,
        "task_end_offsets": None, "shutdown_application": False})
    assert answer["error_code"] == ErrorCode.NONE, answer
    return answer


def _described(connection: _Connection) -> list[str]:
    answer: dict[str, Any] = connection.call(ApiKey.STREAMS_GROUP_DESCRIBE, 0, {"group_ids": [GROUP], "include_authorized_operations": False})
    return [member["member_id"] for member in answer["groups"][0]["members"]]


def test_members_are_described_in_kafkas_hash_map_order() -> None:
    with running_broker(data_dir=None, group_streams_initial_rebalance_delay_ms=0) as broker:
        broker.create_topic(SOURCE, 4)
        connection = _Connection(broker.bootstrap_servers)
        try:
            for member_id in MEMBERS[:6]:
                _heartbeat(connection, member_id, 0)
            assert _described(connection) == ["member-4-x28", "member-0-x0", "member-3-x21", "member-1-x7", "member-5-x35", "member-2-x14"]
            for member_id in MEMBERS[1:4]:
                _heartbeat(connection, member_id, -1)
            assert _described(connection) == ["member-4-x28", "member-0-x0", "member-5-x35"]
            # member-1 joins again after three new members: it is chained after them in its slot.
            for member_id in [*MEMBERS[6:9], MEMBERS[1]]:
                _heartbeat(connection, member_id, 0)
            assert _described(connection) == ["member-7-x49", "member-4-x28", "member-0-x0", "member-1-x7", "member-6-x42", "member-8-x56",
                                              "member-5-x35"]
        finally:
            connection.close()


def test_endpoints_are_answered_in_map_order_the_heartbeating_member_last() -> None:
    with running_broker(data_dir=None, group_streams_initial_rebalance_delay_ms=0) as broker:
        broker.create_topic(SOURCE, 6)
        connection = _Connection(broker.bootstrap_servers)
        try:
            epochs = {member_id: _heartbeat(connection, member_id, 0, port=1000 + i)["member_epoch"] for i, member_id in enumerate(MEMBERS[:6])}

            def ports(member_id: str) -> list[int]:
                # An endpoint epoch the group is not at asks for every member's endpoint.
                answer = _heartbeat(connection, member_id, epochs[member_id], endpoint_epoch=-5)
                return [entry["user_endpoint"]["port"] for entry in answer["partitions_by_user_endpoint"]]

            assert ports("member-0-x0") == [1004, 1003, 1001, 1005, 1002, 1000]
            assert ports("member-3-x21") == [1004, 1000, 1001, 1005, 1002, 1003]
        finally:
            connection.close()
