"""A KIP-848 consumer group after a broker restart, as Kafka 4.4 answers for it (every expected
answer was read off the reference broker running the same requests, restarted over its data).

Kafka keeps nothing of a group but its records: at load it replays them, so its members table
and each member's assigned map are rebuilt in the order the records were written, which is the
order its maps iterated in when it wrote them; a resolved regex comes back with the time it was
resolved at (ResolvedRegularExpression from ConsumerGroupRegularExpressionValue), which the
10 s between two resolutions counts from. And a member leaving its regex for one the group has
not resolved bumps no epoch (REGEX_UPDATED: the metadata is not recomputed); the resolution
does."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ottla.storage.engine as engine
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from tests.kafka_wire import WireClient

TOPICS = [("alpha", 20), ("bravo", 24), ("charlie", 7), ("delta", 33), ("echo", 3), ("foxtrot", 18), ("golf", 5), ("hotel", 12)]
# The ids the reference broker gave TOPICS in the run the expected answers come from.
KAFKA_TOPIC_IDS = {
    "alpha": "56333dd52a544aa5a4e4cee9fe593316", "bravo": "30fde4e567e842f19ea1551c4a0dff5b",
    "charlie": "bfdc4d9101f94ac0b3307d05b2de24dd", "delta": "2324d9add28946c4907999561738018a",
    "echo": "70d0b05c59e24b64acd135bb00a6ed36", "foxtrot": "bac7664f94bc4f288b3aba3a7927b06f",
    "golf": "59d195ce9b09496b8260361cee81300a", "hotel": "05df6b2400274c0c8a98e18ea8155533",
}


def _create(client: WireClient, topics: list[tuple[str, int]]) -> None:
    created = client.call(ApiKey.CREATE_TOPICS, 5, {"topics": [{"name": n, "num_partitions": p, "replication_factor": 1, "assignments": [], "configs": []}
                                                               for n, p in topics], "timeout_ms": 10_000, "validate_only": False})
    assert [t["error_code"] for t in created["topics"]] == [ErrorCode.NONE] * len(topics)


class Group:
    """Members heartbeating as a consumer would: each owns what it was last given."""

    def __init__(self, client: WireClient, group_id: str) -> None:
        self.client, self.group_id = client, group_id
        self.owned: dict[str, list[dict[str, Any]]] = {}
        self.epochs: dict[str, int] = {}

    def beat(self, member_id: str, epoch: int, topics: list[str] | None = None, regex: str | None = None) -> dict[str, Any]:
        joining = epoch == 0
        answer = self.client.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 1, {
            "group_id": self.group_id, "member_id": member_id, "member_epoch": epoch, "instance_id": None, "rack_id": None,
            "rebalance_timeout_ms": 30_000 if joining else -1, "subscribed_topic_names": topics, "subscribed_topic_regex": regex,
            "server_assignor": "range" if joining else None,
            "topic_partitions": None if epoch == -1 else [] if joining else self.owned[member_id]})
        assert answer["error_code"] == ErrorCode.NONE
        if epoch == -1:
            del self.owned[member_id], self.epochs[member_id]
            return answer
        self.epochs[member_id] = answer["member_epoch"]
        if answer["assignment"] is not None or joining:
            self.owned[member_id] = [] if answer["assignment"] is None else answer["assignment"]["topic_partitions"]
        return answer

    def again(self, member_id: str, regex: str | None = None) -> dict[str, Any]:
        return self.beat(member_id, self.epochs[member_id], regex=regex)

    def rounds(self, count: int) -> None:
        for _ in range(count):
            for member_id in list(self.epochs):
                self.again(member_id)


def _described(client: WireClient, group_id: str) -> tuple[int, list[tuple[str, str, str]]]:
    group = client.call(ApiKey.CONSUMER_GROUP_DESCRIBE, 1, {"group_ids": [group_id], "include_authorized_operations": False})["groups"][0]
    assert group["error_code"] == ErrorCode.NONE

    def listed(topics: Any) -> str:
        return " ".join(f"{t['topic_name']}:{','.join(map(str, t['partitions']))}" for t in topics)

    return group["group_epoch"], [(m["member_id"], listed(m["assignment"]["topic_partitions"]), listed(m["target_assignment"]["topic_partitions"]))
                                  for m in group["members"]]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=str(tmp_path), group_consumer_assignment_interval_ms=0) as running:
        yield running


def test_members_and_their_assignments_are_described_in_the_same_order_after_a_restart(broker: ThreadedBroker, monkeypatch: pytest.MonkeyPatch) -> None:
    client = WireClient(broker.bootstrap_servers)
    ids = [bytes.fromhex(KAFKA_TOPIC_IDS[name]) for name, _ in TOPICS]
    monkeypatch.setattr(engine, "_random_uuid", lambda: ids.pop(0))
    _create(client, TOPICS)
    monkeypatch.undo()
    group = Group(client, "g5r")
    for i in range(5):
        group.beat(f"member-{i:02d}", 0, [name for name, _ in TOPICS])
    group.rounds(6)
    group.beat("member-01", -1)
    group.rounds(3)
    group.beat("member-01", 0, [name for name, _ in TOPICS])
    group.rounds(6)
    group.beat("member-03", -1)
    group.rounds(3)
    assert _described(client, "g5r") == (9, G5R_DESCRIBED)
    client.close()
    broker.restart()
    client = WireClient(broker.bootstrap_servers)
    assert _described(client, "g5r") == (9, G5R_DESCRIBED)
    client.close()


def test_a_regex_read_back_is_not_resolved_again_within_10_s_of_its_resolution(broker: ThreadedBroker) -> None:
    """The refresh interval counts from the resolution's timestamp in its record, not from
    the load: a topic the regex matches, created after the restart, is not assigned before."""
    client = WireClient(broker.bootstrap_servers)
    _create(client, [("rx-c1", 2)])
    group = Group(client, "rxr")
    group.beat("q1", 0, regex="rx-c.*")
    assert group.again("q1")["member_epoch"] == 3
    client.close()
    broker.restart()
    client = WireClient(broker.bootstrap_servers)
    group.client = client
    _create(client, [("rx-c2", 2)])
    assert [group.again("q1")["member_epoch"] for _ in range(3)] == [3, 3, 3]
    assert _described(client, "rxr") == (3, [("q1", "rx-c1:0,1", "rx-c1:0,1")])
    client.close()


def test_a_sole_member_taking_up_a_new_regex_bumps_no_epoch_before_it_is_resolved(broker: ThreadedBroker) -> None:
    """The heartbeat that changes the regex revokes the old regex's topics at the member's
    epoch and leaves the group epoch as it was; the new regex is resolved at the next
    heartbeat (the group has no resolution left to wait 10 s from), which bumps the epoch
    after answering, and the one after that assigns it."""
    client = WireClient(broker.bootstrap_servers)
    _create(client, [("rx-a1", 4), ("rx-b1", 3)])
    group = Group(client, "rxs")
    group.beat("r1", 0, regex="rx-a.*")
    epoch = group.again("r1")["member_epoch"]
    assert _described(client, "rxs") == (epoch, [("r1", "rx-a1:0,1,2,3", "rx-a1:0,1,2,3")])
    switched = group.again("r1", regex="rx-b.*")
    assert (switched["member_epoch"], switched["assignment"]) == (epoch, {"topic_partitions": []})
    assert _described(client, "rxs") == (epoch, [("r1", "rx-a1:0,1,2,3", "rx-a1:0,1,2,3")])
    assert (group.again("r1")["member_epoch"], _described(client, "rxs")) == (epoch, (epoch + 1, [("r1", "", "rx-a1:0,1,2,3")]))
    assigned = group.again("r1")
    assert (assigned["member_epoch"], len(assigned["assignment"]["topic_partitions"])) == (epoch + 1, 1)
    assert _described(client, "rxs") == (epoch + 1, [("r1", "rx-b1:0,1,2", "rx-b1:0,1,2")])
    client.close()


# bravo and golf share a bucket of the assigned maps: the order the reconciliations put
# them in, which the records keep, decides which is listed first.
G5R_DESCRIBED = [
    ("member-00",
     "echo:0 hotel:0,1,2 charlie:0,1 foxtrot:0,1,2,3,4 alpha:0,1,2,3,4 delta:0,1,2,3,4,5,6,7,8 golf:0,1 bravo:0,1,2,3,4,5",
     "hotel:0,1,2 echo:0 charlie:0,1 foxtrot:0,1,2,3,4 alpha:0,1,2,3,4 delta:0,1,2,3,4,5,6,7,8 bravo:0,1,2,3,4,5 golf:0,1"),
    ("member-02",
     "echo:2 hotel:6,7,8 charlie:4,5 foxtrot:10,11,12,13 alpha:10,11,12,13,14 delta:17,18,19,20,21,22,23,24 bravo:16,17,12,13,14,15 golf:3",
     "hotel:6,7,8 echo:2 charlie:4,5 foxtrot:10,11,12,13 alpha:10,11,12,13,14 delta:17,18,19,20,21,22,23,24 bravo:16,17,12,13,14,15 golf:3"),
    ("member-04",
     "hotel:9,10,11 charlie:6 foxtrot:16,17,14,15 alpha:16,17,18,19,15 delta:32,25,26,27,28,29,30,31 golf:4 bravo:18,19,20,21,22,23",
     "hotel:9,10,11 charlie:6 foxtrot:16,17,14,15 alpha:16,17,18,19,15 delta:32,25,26,27,28,29,30,31 bravo:18,19,20,21,22,23 golf:4"),
    ("member-01",
     "echo:1 hotel:3,4,5 charlie:2,3 foxtrot:5,6,7,8,9 alpha:5,6,7,8,9 delta:16,9,10,11,12,13,14,15 bravo:6,7,8,9,10,11 golf:2",
     "hotel:3,4,5 echo:1 charlie:2,3 foxtrot:5,6,7,8,9 alpha:5,6,7,8,9 delta:16,9,10,11,12,13,14,15 bravo:6,7,8,9,10,11 golf:2"),
]
