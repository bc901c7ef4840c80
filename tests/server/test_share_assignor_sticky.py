"""A share group's target assignment keeps what its members hold, as Kafka 4.4's SimpleAssignor
does (SimpleHomogeneousAssignmentBuilder, SimpleHeterogeneousAssignmentBuilder): a recomputation
starts from the current target, revokes only what no longer fits (an unsubscribed topic, more than
a member wants, a partition shared more than wanted) and hands out the rest. Members are numbered
in the order of Kafka's HashMap of their ids ("bravo", "alpha", "charlie" here), and the builders
walk partitions in their HashMaps' orders.

The expected assignments are those the reference Kafka 4.4 gave to the same sequences of
ShareGroupHeartbeats. The homogeneous one depends on the topic id too (the order of a member's
HashSet of TopicIdPartitions, whose hash mixes it in): the reference was asked with a topic that
iterates partition 1 before partition 0 in a 16-bucket table and with one that iterates 0 first,
so the test makes topics until one iterates as each did."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kafka.admin import KafkaAdminClient, NewPartitions  # type: ignore[import-untyped]

from kafka_wire import WireClient
from ottla.server.java_hashing import java_order, uuid_hash
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey


@pytest.fixture(scope="module")
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None) as running:
        yield running


def _topic_ids(bootstrap: str) -> dict[str, bytes]:
    client = WireClient(bootstrap)
    try:
        metadata = client.call(ApiKey.METADATA, 12, {"topics": None, "allow_auto_topic_creation": False,
                                                     "include_topic_authorized_operations": False})
    finally:
        client.close()
    return {topic["name"]: bytes(topic["topic_id"]) for topic in metadata["topics"]}


class _Group:
    """Share members heartbeating over connections of their own; `settle` heartbeats them all
    until the group is quiet (every member at one epoch, nothing changing for longer than the
    1 s assignment interval) and answers each member's assignment by topic name."""

    def __init__(self, bootstrap: str, group_id: str) -> None:
        self.bootstrap, self.group_id = bootstrap, group_id
        self.members: dict[str, dict[str, Any]] = {}

    def _beat(self, member_id: str, member_epoch: int) -> dict[str, Any]:
        member = self.members[member_id]
        answer: dict[str, Any] = member["client"].call(ApiKey.SHARE_GROUP_HEARTBEAT, 1, {
            "group_id": self.group_id, "member_id": member_id, "member_epoch": member_epoch, "rack_id": None,
            "subscribed_topic_names": member["topics"] if member_epoch == 0 else None})
        assert answer["error_code"] == 0, answer
        return answer

    def join(self, member_id: str, topics: list[str]) -> None:
        self.members[member_id] = {"client": WireClient(self.bootstrap), "epoch": 0, "topics": topics, "held": {}}

    def leave(self, member_id: str) -> None:
        self._beat(member_id, -1)
        self.members.pop(member_id)["client"].close()

    def settle(self) -> dict[str, dict[str, list[int]]]:
        quiet, last = 0, ""
        for _ in range(200):
            for member_id, member in self.members.items():
                answer = self._beat(member_id, member["epoch"])
                member["epoch"] = answer["member_epoch"]
                if answer["assignment"] is not None:
                    member["held"] = {bytes(t["topic_id"]): sorted(t["partitions"]) for t in answer["assignment"]["topic_partitions"]}
            state = json.dumps({m: (v["epoch"], sorted((t.hex(), p) for t, p in v["held"].items())) for m, v in self.members.items()})
            quiet, last = (quiet + 1 if state == last else 0), state
            if quiet >= 6 and len({v["epoch"] for v in self.members.values()}) == 1:
                break
            time.sleep(0.25)
        names = {topic_id: name for name, topic_id in _topic_ids(self.bootstrap).items()}
        return {m: {names[t]: p for t, p in v["held"].items()} for m, v in self.members.items()}

    def close(self) -> None:
        for member in self.members.values():
            member["client"].close()


def _partition_one_first(topic_id: bytes) -> bool:
    """Whether a 16-bucket HashSet of this topic's TopicIdPartitions 0 and 1 iterates 1 first."""
    return java_order([0, 1], lambda index: (31 * uuid_hash(topic_id) + index) & 0xFFFFFFFF, 16) == [1, 0]


# Each step's assignments (alpha joins, bravo joins, charlie joins, the topic grows to three
# partitions, bravo leaves) as the reference gave them, for a topic iterating partition 1 before
# partition 0 and for one iterating 0 first: mirror images.
_ALIKE_STEPS = {
    True: [{"alpha": [0, 1]}, {"alpha": [0], "bravo": [1]}, {"alpha": [0], "bravo": [0, 1], "charlie": [1]},
           {"alpha": [0], "bravo": [2], "charlie": [1]}, {"alpha": [0, 2], "charlie": [1]}],
    False: [{"alpha": [0, 1]}, {"alpha": [1], "bravo": [0]}, {"alpha": [1], "bravo": [0, 1], "charlie": [0]},
            {"alpha": [1], "bravo": [2], "charlie": [0]}, {"alpha": [1, 2], "charlie": [0]}],
}


@pytest.mark.parametrize("one_first", [True, False])
def test_members_subscribed_alike_keep_what_they_hold(broker: ThreadedBroker, one_first: bool) -> None:
    for attempt in range(64):
        topic = f"sticky-alike-{one_first}-{attempt}"
        broker.create_topic(topic, partitions=2)
        if _partition_one_first(_topic_ids(broker.bootstrap_servers)[topic]) == one_first:
            break
    else:
        pytest.fail("no topic id iterating as the reference's did")
    group = _Group(broker.bootstrap_servers, f"sticky-alike-{one_first}")
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    settled: list[dict[str, list[int]]] = []
    try:
        group.join("alpha", [topic])
        settled.append({m: held[topic] for m, held in group.settle().items()})
        # alpha, wanting one partition now, gives up the first its set iterates: bravo takes it.
        group.join("bravo", [topic])
        settled.append({m: held[topic] for m, held in group.settle().items()})
        # Three members on two partitions: each partition to two; bravo, numbered first, wants two.
        group.join("charlie", [topic])
        settled.append({m: held[topic] for m, held in group.settle().items()})
        # A third partition: one each, bravo giving up one partition (overfilled), then the one
        # alpha or charlie shares with it (shared by two), and taking the new one.
        admin.create_partitions({topic: NewPartitions(3)})
        settled.append({m: held[topic] for m, held in group.settle().items()})
        group.leave("bravo")
        settled.append({m: held[topic] for m, held in group.settle().items()})
    finally:
        admin.close()
        group.close()
    assert settled == _ALIKE_STEPS[one_first]


def test_members_subscribed_differently_keep_what_they_hold(broker: ThreadedBroker) -> None:
    broker.create_topic("sticky-apart-x", partitions=2)
    broker.create_topic("sticky-apart-y", partitions=3)
    group = _Group(broker.bootstrap_servers, "sticky-apart")
    try:
        group.join("alpha", ["sticky-apart-x", "sticky-apart-y"])
        assert group.settle() == {"alpha": {"sticky-apart-x": [0, 1], "sticky-apart-y": [0, 1, 2]}}
        group.join("bravo", ["sticky-apart-x"])
        assert group.settle() == {"alpha": {"sticky-apart-x": [1], "sticky-apart-y": [0, 1, 2]}, "bravo": {"sticky-apart-x": [0]}}
        group.join("charlie", ["sticky-apart-y"])
        assert group.settle() == {"alpha": {"sticky-apart-x": [1], "sticky-apart-y": [1, 2]}, "bravo": {"sticky-apart-x": [0]},
                                  "charlie": {"sticky-apart-y": [0]}}
        group.leave("alpha")
        assert group.settle() == {"bravo": {"sticky-apart-x": [0, 1]}, "charlie": {"sticky-apart-y": [0, 1, 2]}}
    finally:
        group.close()
