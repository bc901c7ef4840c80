"""KIP-848 epochs over a real socket, with `group.consumer.assignment.interval.ms` at 0 so
every change is assigned at once: which heartbeats bump the group epoch, and when a
partition handed back to the member still revoking it is assigned.

Kafka 4.4 (GroupMetadataManager.consumerGroupHeartbeat) bumps the group epoch only when
the member's subscribed topic names changed, its regex changed to one already resolved
(or to none), the group's preferred server assignor changed, or the subscribed topics'
metadata changed; a member joining with nothing subscribed, or a rack change, bumps
nothing. CurrentAssignmentBuilder.computeNextAssignment does not count a partition the
member itself is revoking as held by another, so it is handed back at once."""

from __future__ import annotations

from typing import Any

from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from tests.server.test_features import Client


class _Group:
    def __init__(self, client: Client, topic: str, partitions: int) -> None:
        self.client = client
        self.topic = topic
        created = client.call(ApiKey.CREATE_TOPICS, 5, {"topics": [{"name": topic, "num_partitions": partitions, "replication_factor": 1,
                                                                    "assignments": [], "configs": []}], "timeout_ms": 10_000, "validate_only": False})
        assert created["topics"][0]["error_code"] == ErrorCode.NONE
        self.topic_id = client.call(ApiKey.METADATA, 12, {"topics": [{"name": topic, "topic_id": bytes(16)}]})["topics"][0]["topic_id"]

    def beat(self, member_id: str, epoch: int, owned: list[int] | None = None, topics: list[str] | None = None, **fields: Any) -> dict[str, Any]:
        joining = epoch == 0
        body = {"group_id": self.topic, "member_id": member_id, "member_epoch": epoch, "instance_id": None, "rack_id": None,
                "rebalance_timeout_ms": 30_000 if joining else -1, "subscribed_topic_names": topics if joining else None,
                "subscribed_topic_regex": None, "server_assignor": None,
                "topic_partitions": [] if joining else [{"topic_id": self.topic_id, "partitions": owned or []}]}
        body.update(fields)
        answer = self.client.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 1, body)
        assert answer["error_code"] == ErrorCode.NONE, answer
        return answer

    @staticmethod
    def partitions(answer: dict[str, Any]) -> list[int] | None:
        assignment = answer["assignment"]
        return None if assignment is None else sorted(p for t in assignment["topic_partitions"] for p in t["partitions"])

    def group_epoch(self) -> int:
        described = self.client.call(ApiKey.CONSUMER_GROUP_DESCRIBE, 1, {"group_ids": [self.topic], "include_authorized_operations": False})
        return int(described["groups"][0]["group_epoch"])


def test_only_a_change_of_what_is_assigned_bumps_the_group_epoch() -> None:
    with running_broker(data_dir=None, group_consumer_assignment_interval_ms=0) as broker:
        client = Client(broker.bootstrap_servers)
        try:
            g = _Group(client, "bumps", 2)
            first = g.beat("m1", 0, topics=["bumps"])
            assert (first["member_epoch"], g.partitions(first)) == (2, [0, 1])
            # A member subscribing to nothing changes no assignment: it joins at the group's epoch.
            empty = g.beat("m2", 0, topics=[])
            assert (empty["member_epoch"], g.partitions(empty), g.group_epoch()) == (2, [], 2)
            # Nor does a rack.
            assert g.beat("m1", 2, [0, 1], rack_id="rack-a")["member_epoch"] == 2
            assert g.group_epoch() == 2
            # The group's preferred assignor changing does.
            assert g.beat("m1", 2, [0, 1], server_assignor="range")["member_epoch"] == 3
            assert g.group_epoch() == 3
            # A second vote for it changes nothing more.
            assert g.beat("m2", 2, [], server_assignor="range")["member_epoch"] == 3
            assert g.group_epoch() == 3
        finally:
            client.close()


def test_a_partition_handed_back_to_its_revoking_member_is_assigned_at_once() -> None:
    with running_broker(data_dir=None, group_consumer_assignment_interval_ms=0) as broker:
        client = Client(broker.bootstrap_servers)
        try:
            g = _Group(client, "handback", 2)
            assert g.partitions(g.beat("m1", 0, topics=["handback"])) == [0, 1]
            assert g.beat("m2", 0, topics=["handback"])["member_epoch"] == 3
            revoking = g.beat("m1", 2, [0, 1])
            kept = g.partitions(revoking)
            assert revoking["member_epoch"] == 2 and kept is not None and len(kept) == 1
            # m2 leaves before m1 revoked: the whole topic is m1's again at epoch 4.
            client.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 1, {
                "group_id": "handback", "member_id": "m2", "member_epoch": -1, "instance_id": None, "rack_id": None,
                "rebalance_timeout_ms": -1, "subscribed_topic_names": None, "subscribed_topic_regex": None, "server_assignor": None,
                "topic_partitions": None})
            # m1 reports the revocation done: the partition it gave up comes back in this answer.
            back = g.beat("m1", 2, kept)
            assert (back["member_epoch"], g.partitions(back)) == (4, [0, 1])
        finally:
            client.close()
