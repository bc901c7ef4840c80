"""ConsumerGroupHeartbeat and ConsumerGroupDescribe over a real socket, with the broker's
`group.consumer.assignment.interval.ms` at 0 so every change is assigned at once: the epochs
a member is given, and how a member asked to revoke is described (Kafka 4.4 lists the
partitions it has not given up yet beside its target)."""

from __future__ import annotations

from typing import Any

from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from tests.server.test_features import Client


def test_a_revoking_member_is_described_with_what_it_still_holds() -> None:
    with running_broker(data_dir=None, group_consumer_assignment_interval_ms=0) as broker:
        client = Client(broker.bootstrap_servers)
        try:
            created = client.call(ApiKey.CREATE_TOPICS, 5, {"topics": [{"name": "seq", "num_partitions": 4, "replication_factor": 1,
                                                                        "assignments": [], "configs": []}], "timeout_ms": 10_000, "validate_only": False})
            assert created["topics"][0]["error_code"] == ErrorCode.NONE
            topic_id = client.call(ApiKey.METADATA, 12, {"topics": [{"name": "seq", "topic_id": bytes(16)}]})["topics"][0]["topic_id"]

            def beat(member_id: str, epoch: int, owned: list[int] | None = None) -> dict[str, Any]:
                joining = epoch == 0
                return client.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 1, {
                    "group_id": "seq", "member_id": member_id, "member_epoch": epoch, "instance_id": None, "rack_id": None,
                    "rebalance_timeout_ms": 30_000 if joining else -1, "subscribed_topic_names": ["seq"] if joining else None,
                    "subscribed_topic_regex": None, "server_assignor": None,
                    "topic_partitions": [] if joining else [{"topic_id": topic_id, "partitions": owned or []}]})

            first = beat("m1", 0)
            assert (first["member_epoch"], first["assignment"]["topic_partitions"][0]["partitions"]) == (2, [0, 1, 2, 3])
            # No interval to wait out: the second join is assigned at once (epoch 3), its
            # partitions still held by m1, which is then asked to give them up.
            assert (beat("m2", 0)["member_epoch"], beat("m1", 2, [0, 1, 2, 3])["member_epoch"]) == (3, 2)
            described = client.call(ApiKey.CONSUMER_GROUP_DESCRIBE, 1, {"group_ids": ["seq"], "include_authorized_operations": False})
            group = described["groups"][0]
            members = {m["member_id"]: (m["member_epoch"], [p for t in m["assignment"]["topic_partitions"] for p in t["partitions"]],
                                        [p for t in m["target_assignment"]["topic_partitions"] for p in t["partitions"]])
                       for m in group["members"]}
            assert (group["group_state"], group["group_epoch"], group["assignment_epoch"]) == ("Reconciling", 3, 3)
            assert members["m1"][:2] == (2, [0, 1, 2, 3]) and len(members["m1"][2]) == 2
            assert members["m2"][:2] == (3, [])
        finally:
            client.close()
