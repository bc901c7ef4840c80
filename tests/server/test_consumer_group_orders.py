"""The orders ConsumerGroupDescribe and ConsumerGroupHeartbeat list a KIP-848 consumer
group's members, topics and partitions in, as Kafka 4.4 lists them (every expected answer
here was read off the reference broker running the same heartbeats).

Members come in the order of Kafka's members table (a TimelineHashMap grown as members join);
an assignment's topics and partitions in the order of the HashMaps Kafka builds them in. Those
orders depend on the topic ids, so the broker here gives the topics the ids the reference
broker gave them in that run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import ottla.storage.engine as engine
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from tests.kafka_wire import WireClient

TOPICS = [("alpha", 20), ("bravo", 24), ("charlie", 7), ("delta", 33), ("echo", 3), ("foxtrot", 18), ("golf", 5), ("hotel", 12)]
# The ids the reference broker gave TOPICS; bravo and charlie share a hash bucket, as do echo and hotel.
KAFKA_TOPIC_IDS = {
    "alpha": "4a957f941c3d4c408e302d29c2027068", "bravo": "b89a30309e3d46d2a4d16d713e404f7d",
    "charlie": "346129ac207148688920250638e1f2cb", "delta": "519e7381171a4d73ae704a306c9ef593",
    "echo": "4a210b20bb764eeeba86844badc1d96b", "foxtrot": "5ff587a891e541c59b8a2d2e6ca9793d",
    "golf": "00f564e9df0b4339aebe150fa6996417", "hotel": "cb8b16229e2542479c0ae2d93bf759d1",
}


class Group:
    """One group driven as the reference run drove it: members join one by one, then every
    member heartbeats (owning what it was last given) for a few rounds; the first two leave
    and rejoin. `answers` keeps every heartbeat's assignment, `described` each describe."""

    def __init__(self, client: WireClient, group_id: str, assignor: str, members: list[str]) -> None:
        self.client, self.group_id, self.assignor = client, group_id, assignor
        self.names = {t["topic_id"]: t["name"] for t in client.call(ApiKey.METADATA, 12, {"topics": None})["topics"]}
        self.owned: dict[str, list[dict[str, Any]]] = {}
        self.epochs: dict[str, int] = {}
        self.answers: list[str | None] = []
        self.described: dict[str, list[tuple[str, str, str]]] = {}
        for member_id in members:
            self.beat(member_id, 0)
        self.rounds(6)
        self.described["joined"] = self.describe()
        leaving = members[:2] if len(members) > 2 else members[:1]
        for member_id in leaving:
            self.beat(member_id, -1)
        self.rounds(3)
        self.described["left"] = self.describe()
        for member_id in leaving:
            self.beat(member_id, 0)
        self.rounds(6)
        self.described["rejoined"] = self.describe()

    def beat(self, member_id: str, epoch: int) -> None:
        joining = epoch == 0
        answer = self.client.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 1, {
            "group_id": self.group_id, "member_id": member_id, "member_epoch": epoch, "instance_id": None, "rack_id": None,
            "rebalance_timeout_ms": 30_000 if joining else -1, "subscribed_topic_names": [n for n, _ in TOPICS] if joining else None,
            "subscribed_topic_regex": None, "server_assignor": self.assignor if joining else None,
            "topic_partitions": None if epoch == -1 else [] if joining else self.owned[member_id]})
        assert answer["error_code"] == ErrorCode.NONE
        assignment = answer["assignment"]
        self.answers.append(None if assignment is None else _listed((self.names[t["topic_id"]], t["partitions"]) for t in assignment["topic_partitions"]))
        if epoch == -1:
            del self.owned[member_id], self.epochs[member_id]
            return
        self.epochs[member_id] = answer["member_epoch"]
        if assignment is not None or joining:
            self.owned[member_id] = [] if assignment is None else assignment["topic_partitions"]

    def rounds(self, count: int) -> None:
        for _ in range(count):
            for member_id in list(self.epochs):
                self.beat(member_id, self.epochs[member_id])

    def describe(self) -> list[tuple[str, str, str]]:
        group = self.client.call(ApiKey.CONSUMER_GROUP_DESCRIBE, 1, {"group_ids": [self.group_id], "include_authorized_operations": False})["groups"][0]
        return [(m["member_id"], _listed((t["topic_name"], t["partitions"]) for t in m["assignment"]["topic_partitions"]),
                 _listed((t["topic_name"], t["partitions"]) for t in m["target_assignment"]["topic_partitions"])) for m in group["members"]]


def _listed(topics: Any) -> str:
    return " ".join(f"{name}:{','.join(map(str, partitions))}" for name, partitions in topics)


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[WireClient]:
    """A broker assigning at once, with TOPICS created under the reference broker's ids."""
    with running_broker(data_dir=None, group_consumer_assignment_interval_ms=0) as broker:
        ids = [bytes.fromhex(KAFKA_TOPIC_IDS[name]) for name, _ in TOPICS]
        monkeypatch.setattr(engine, "_random_uuid", lambda: ids.pop(0))
        connection = WireClient(broker.bootstrap_servers)
        created = connection.call(ApiKey.CREATE_TOPICS, 5, {"topics": [{"name": n, "num_partitions": p, "replication_factor": 1, "assignments": [], "configs": []}
                                                                       for n, p in TOPICS], "timeout_ms": 10_000, "validate_only": False})
        assert [t["error_code"] for t in created["topics"]] == [ErrorCode.NONE] * len(TOPICS)
        monkeypatch.undo()
        try:
            yield connection
        finally:
            connection.close()


@pytest.mark.parametrize(("group_id", "assignor", "members", "joined", "left", "rejoined"), [
    ("g5u", "uniform", [f"member-{i:02d}" for i in range(5)],
     ["member-00", "member-02", "member-04", "member-01", "member-03"], ["member-02", "member-04", "member-03"],
     ["member-00", "member-02", "member-04", "member-01", "member-03"]),
    ("g11u", "uniform", [f"member-{i:02d}" for i in range(11)],
     ["member-08", "member-00", "member-05", "member-10", "member-02", "member-07", "member-04", "member-09", "member-01", "member-06", "member-03"],
     ["member-08", "member-05", "member-10", "member-02", "member-07", "member-04", "member-09", "member-06", "member-03"],
     ["member-08", "member-00", "member-05", "member-10", "member-02", "member-07", "member-04", "member-09", "member-01", "member-06", "member-03"]),
    # Ids sharing a slot of the table: the later put is listed first.
    ("c2u", "uniform", ["c002", "c005"], ["c005", "c002"], ["c005"], ["c002", "c005"]),
    ("c3u", "uniform", ["c002", "c005", "c010"], ["c010", "c005", "c002"], ["c010"], ["c005", "c002", "c010"]),
    ("c5r", "range", ["d012", "d025", "d011", "d038", "d024"], ["d038", "d025", "d012", "d024", "d011"], ["d038", "d024", "d011"],
     ["d025", "d012", "d038", "d024", "d011"]),
])
def test_members_are_described_in_the_order_of_kafkas_members_table(client: WireClient, group_id: str, assignor: str, members: list[str],
                                                                     joined: list[str], left: list[str], rejoined: list[str]) -> None:
    group = Group(client, group_id, assignor, members)
    assert {phase: [member_id for member_id, _, _ in described] for phase, described in group.described.items()} == {
        "joined": joined, "left": left, "rejoined": rejoined}


def test_the_assignor_meets_the_members_in_kafkas_order(client: WireClient) -> None:
    """Three ids sharing a bucket of the assignor's member map, which Kafka fills from its
    members table (then the joining member): that order picks who gets the extra partition."""
    client.call(ApiKey.CREATE_TOPICS, 5, {"topics": [{"name": "solo", "num_partitions": 4, "replication_factor": 1, "assignments": [], "configs": []}],
                                          "timeout_ms": 10_000, "validate_only": False})
    for member_id in ("e000", "e011", "e022"):
        answer = client.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 1, {
            "group_id": "extra", "member_id": member_id, "member_epoch": 0, "instance_id": None, "rack_id": None, "rebalance_timeout_ms": 30_000,
            "subscribed_topic_names": ["solo"], "subscribed_topic_regex": None, "server_assignor": "uniform", "topic_partitions": []})
        assert answer["error_code"] == ErrorCode.NONE
    group = client.call(ApiKey.CONSUMER_GROUP_DESCRIBE, 1, {"group_ids": ["extra"], "include_authorized_operations": False})["groups"][0]
    assert [(m["member_id"], [t["partitions"] for t in m["target_assignment"]["topic_partitions"]]) for m in group["members"]] == [
        ("e022", [[1]]), ("e011", [[2, 3]]), ("e000", [[0]])]


def test_range_assignments_are_listed_in_kafkas_order(client: WireClient) -> None:
    """Topics by hash bucket, those sharing one as the assignor put them (in the target) or
    as CurrentAssignmentBuilder put them (kept topics first, given ones at the bucket's head);
    partitions by bucket, 32 before 27 in a map of 16."""
    group = Group(client, "g5r", "range", [f"member-{i:02d}" for i in range(5)])
    assert [(i, answer) for i, answer in enumerate(group.answers) if answer] == G5R_ANSWERS
    assert {phase: group.described[phase] for phase in G5R_DESCRIBED} == G5R_DESCRIBED


def test_uniform_assignments_are_listed_in_kafkas_order(client: WireClient) -> None:
    group = Group(client, "c3u", "uniform", ["c002", "c005", "c010"])
    assert [(i, answer) for i, answer in enumerate(group.answers) if answer] == C3U_ANSWERS
    assert {phase: group.described[phase] for phase in C3U_DESCRIBED} == C3U_DESCRIBED


G5R_DESCRIBED = {
    "joined": [
        ("member-00",
         "golf:0 charlie:0,1 bravo:0,1,2,3,4 delta:0,1,2,3,4,5,6 foxtrot:0,1,2,3 echo:0 hotel:0,1,2 alpha:0,1,2,3",
         "golf:0 bravo:0,1,2,3,4 charlie:0,1 delta:0,1,2,3,4,5,6 foxtrot:0,1,2,3 hotel:0,1,2 echo:0 alpha:0,1,2,3"),
        ("member-02",
         "golf:2 bravo:10,11,12,13,14 charlie:4 delta:16,17,18,19,20,14,15 foxtrot:8,9,10,11 hotel:6,7 echo:2"
         " alpha:8,9,10,11",
         "golf:2 bravo:10,11,12,13,14 charlie:4 delta:16,17,18,19,20,14,15 foxtrot:8,9,10,11 hotel:6,7 echo:2"
         " alpha:8,9,10,11"),
        ("member-04",
         "golf:4 bravo:20,21,22,23 charlie:6 delta:32,27,28,29,30,31 foxtrot:16,17,15 hotel:10,11 alpha:16,17,18,19",
         "golf:4 bravo:20,21,22,23 charlie:6 delta:32,27,28,29,30,31 foxtrot:16,17,15 hotel:10,11 alpha:16,17,18,19"),
        ("member-01",
         "golf:1 bravo:5,6,7,8,9 charlie:2,3 delta:7,8,9,10,11,12,13 foxtrot:4,5,6,7 hotel:3,4,5 echo:1 alpha:4,5,6,7",
         "golf:1 bravo:5,6,7,8,9 charlie:2,3 delta:7,8,9,10,11,12,13 foxtrot:4,5,6,7 hotel:3,4,5 echo:1 alpha:4,5,6,7"),
        ("member-03",
         "golf:3 bravo:16,17,18,19,15 charlie:5 delta:21,22,23,24,25,26 foxtrot:12,13,14 hotel:8,9 alpha:12,13,14,15",
         "golf:3 bravo:16,17,18,19,15 charlie:5 delta:21,22,23,24,25,26 foxtrot:12,13,14 hotel:8,9 alpha:12,13,14,15"),
    ],
    "rejoined": [
        ("member-00",
         "golf:0 bravo:0,1,2,3,4 charlie:0,1 delta:0,1,2,3,4,5,6 foxtrot:0,1,2,3 hotel:0,1,2 echo:0 alpha:0,1,2,3",
         "golf:0 bravo:0,1,2,3,4 charlie:0,1 delta:0,1,2,3,4,5,6 foxtrot:0,1,2,3 hotel:0,1,2 echo:0 alpha:0,1,2,3"),
        ("member-02",
         "golf:2 bravo:10,11,12,13,14 charlie:4 delta:16,17,18,19,20,14,15 foxtrot:8,9,10,11 hotel:6,7 echo:2"
         " alpha:8,9,10,11",
         "golf:2 bravo:10,11,12,13,14 charlie:4 delta:16,17,18,19,20,14,15 foxtrot:8,9,10,11 hotel:6,7 echo:2"
         " alpha:8,9,10,11"),
        ("member-04",
         "golf:4 charlie:6 bravo:20,21,22,23 delta:32,27,28,29,30,31 foxtrot:16,17,15 hotel:10,11 alpha:16,17,18,19",
         "golf:4 bravo:20,21,22,23 charlie:6 delta:32,27,28,29,30,31 foxtrot:16,17,15 hotel:10,11 alpha:16,17,18,19"),
        ("member-01",
         "golf:1 bravo:5,6,7,8,9 charlie:2,3 delta:7,8,9,10,11,12,13 foxtrot:4,5,6,7 hotel:3,4,5 echo:1 alpha:4,5,6,7",
         "golf:1 bravo:5,6,7,8,9 charlie:2,3 delta:7,8,9,10,11,12,13 foxtrot:4,5,6,7 hotel:3,4,5 echo:1 alpha:4,5,6,7"),
        ("member-03",
         "golf:3 bravo:16,17,18,19,15 charlie:5 delta:21,22,23,24,25,26 foxtrot:12,13,14 hotel:8,9 alpha:12,13,14,15",
         "golf:3 bravo:16,17,18,19,15 charlie:5 delta:21,22,23,24,25,26 foxtrot:12,13,14 hotel:8,9 alpha:12,13,14,15"),
    ],
}
G5R_ANSWERS = [
    (0, "golf:0,1,2,3,4 charlie:0,1,2,3,4,5,6 bravo:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23"
        " delta:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32"
        " foxtrot:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17 echo:0,1,2 hotel:0,1,2,3,4,5,6,7,8,9,10,11"
        " alpha:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19"),
    (5, "golf:0 bravo:0,1,2,3,4 charlie:0,1 delta:0,1,2,3,4,5,6 foxtrot:0,1,2,3 hotel:0,1,2 echo:0 alpha:0,1,2,3"),
    (11, "golf:1 charlie:2,3 bravo:5,6,7,8,9 delta:7,8,9,10,11,12,13 foxtrot:4,5,6,7 echo:1 hotel:3,4,5 alpha:4,5,6,7"),
    (12, "golf:2 charlie:4 bravo:10,11,12,13,14 delta:16,17,18,19,20,14,15 foxtrot:8,9,10,11 echo:2 hotel:6,7"
        " alpha:8,9,10,11"),
    (13, "golf:3 charlie:5 bravo:16,17,18,19,15 delta:21,22,23,24,25,26 foxtrot:12,13,14 hotel:8,9 alpha:12,13,14,15"),
    (14, "golf:4 charlie:6 bravo:20,21,22,23 delta:32,27,28,29,30,31 foxtrot:16,17,15 hotel:10,11 alpha:16,17,18,19"),
    (38, "golf:3 bravo:15 delta:21 alpha:12,13"),
    (40, "golf:0,1 charlie:0,1,2 bravo:0,1,2,3,4,5,6,7 delta:0,1,2,3,4,5,6,7,8,9,10 foxtrot:0,1,2,3,4,5 echo:0"
        " hotel:0,1,2,3 alpha:0,1,2,3,4,5,6"),
    (41, "golf:2,3 charlie:3,4 bravo:8,9,10,11,12,13,14,15 delta:16,17,18,19,20,21,11,12,13,14,15 foxtrot:6,7,8,9,10,11"
        " echo:1 hotel:4,5,6,7 alpha:7,8,9,10,11,12,13"),
    (42, "golf:4 bravo:16,17,18,19,20,21,22,23 charlie:5,6 delta:32,22,23,24,25,26,27,28,29,30,31"
        " foxtrot:16,17,12,13,14,15 echo:2 hotel:8,9,10,11 alpha:16,17,18,19,14,15"),
    (49, "golf:3 bravo:15 delta:21 alpha:12,13"),
    (50, "golf:4 bravo:20,21,22,23 charlie:6 delta:32,27,28,29,30,31 foxtrot:16,17,15 hotel:10,11 alpha:16,17,18,19"),
    (56, "golf:0 charlie:0,1 bravo:0,1,2,3,4 delta:0,1,2,3,4,5,6 foxtrot:0,1,2,3 echo:0 hotel:0,1,2 alpha:0,1,2,3"),
    (57, "golf:1 charlie:2,3 bravo:5,6,7,8,9 delta:7,8,9,10,11,12,13 foxtrot:4,5,6,7 echo:1 hotel:3,4,5 alpha:4,5,6,7"),
    (58, "golf:2 charlie:4 bravo:10,11,12,13,14 delta:16,17,18,19,20,14,15 foxtrot:8,9,10,11 echo:2 hotel:6,7"
        " alpha:8,9,10,11"),
    (59, "golf:3 charlie:5 bravo:16,17,18,19,15 delta:24,25,26,21,22,23 foxtrot:12,13,14 hotel:8,9 alpha:12,13,14,15"),
]
C3U_DESCRIBED = {
    "joined": [
        ("c010",
         "delta:5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24"
         " alpha:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19",
         "delta:5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24"
         " alpha:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19"),
        ("c005",
         "delta:32,25,26,27,28,29,30,31 foxtrot:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17"
         " hotel:0,1,2,3,4,5,6,7,8,9,10,11 echo:0,1,2",
         "delta:32,25,26,27,28,29,30,31 foxtrot:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17"
         " hotel:0,1,2,3,4,5,6,7,8,9,10,11 echo:0,1,2"),
        ("c002",
         "golf:0,1,2,3,4 bravo:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23 charlie:0,1,2,3,4,5,6"
         " delta:0,1,2,3,4",
         "golf:0,1,2,3,4 charlie:0,1,2,3,4,5,6 bravo:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23"
         " delta:0,1,2,3,4"),
    ],
    "rejoined": [
        ("c005",
         "delta:5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24"
         " alpha:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19",
         "delta:5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24"
         " alpha:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19"),
        ("c002",
         "delta:32,25,26,27,28,29,30,31 foxtrot:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17"
         " hotel:0,1,2,3,4,5,6,7,8,9,10,11 echo:0,1,2",
         "delta:32,25,26,27,28,29,30,31 foxtrot:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17"
         " hotel:0,1,2,3,4,5,6,7,8,9,10,11 echo:0,1,2"),
        ("c010",
         "golf:0,1,2,3,4 bravo:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23 charlie:0,1,2,3,4,5,6"
         " delta:0,1,2,3,4",
         "golf:0,1,2,3,4 charlie:0,1,2,3,4,5,6 bravo:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23"
         " delta:0,1,2,3,4"),
    ],
}
C3U_ANSWERS = [
    (0, "golf:0,1,2,3,4 bravo:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23 charlie:0,1,2,3,4,5,6"
        " delta:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32"
        " foxtrot:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17 hotel:0,1,2,3,4,5,6,7,8,9,10,11 echo:0,1,2"
        " alpha:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19"),
    (3, "golf:0,1,2,3,4 charlie:0,1,2,3,4,5,6 bravo:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23"
        " delta:0,1,2,3,4"),
    (7, "delta:32,25,26,27,28,29,30,31 foxtrot:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17 echo:0,1,2"
        " hotel:0,1,2,3,4,5,6,7,8,9,10,11"),
    (8, "delta:5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24"
        " alpha:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19"),
    (23, "golf:0,1,2,3,4 bravo:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23 charlie:0,1,2,3,4,5,6"
        " delta:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32"
        " foxtrot:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17 hotel:0,1,2,3,4,5,6,7,8,9,10,11 echo:0,1,2"
        " alpha:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19"),
    (28, "golf:0,1,2,3,4 charlie:0,1,2,3,4,5,6 bravo:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23"
        " delta:0,1,2,3,4"),
    (32, "delta:32,25,26,27,28,29,30,31 foxtrot:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17 echo:0,1,2"
        " hotel:0,1,2,3,4,5,6,7,8,9,10,11"),
    (33, "delta:5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24"
        " alpha:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19"),
]
