"""Share members subscribed alike share one pool of partitions, as Kafka 4.4's SimpleAssignor
assigns them (SimpleHomogeneousAssignmentBuilder): each partition of every subscribed topic goes
to ceil(members / partitions) members and the members' counts differ by at most one, whatever
topic the partitions are of. The reference broker gave two members of a group reading a
one-partition and a three-partition topic two partitions each, the one-partition topic's to
one member only."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from ottla.server.share.group import assign
from ottla.testing import ThreadedBroker, running_broker
from share_member import ShareMember


@pytest.fixture(scope="module")
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None) as running:
        yield running


def _held(assignment: Any) -> list[tuple[bytes, int]]:
    return sorted((bytes(t["topic_id"]), p) for t in (assignment or {}).get("topic_partitions") or () for p in t["partitions"])


def test_members_subscribed_alike_split_every_partition_between_them(broker: ThreadedBroker) -> None:
    broker.create_topic("pool-one", partitions=1)
    broker.create_topic("pool-three", partitions=3)
    members = [ShareMember(broker), ShareMember(broker)]
    try:
        topics = ["pool-one", "pool-three"]
        epochs, held = [0, 0], [[], []]
        for attempt in range(300):  # until both hold partitions at one epoch (share state initialized)
            time.sleep(0.1 if attempt else 0)
            for n, member in enumerate(members):
                beat = member.heartbeat("pool", epochs[n], topics)
                assert beat["error_code"] == 0
                epochs[n] = beat["member_epoch"]
                held[n] = _held(beat["assignment"]) if beat["assignment"] is not None else held[n]
            if all(held) and epochs[0] == epochs[1] and sum(map(len, held)) == 4:
                break
        assert [len(h) for h in held] == [2, 2], held
        assert sorted(held[0] + held[1]) == sorted(set(held[0] + held[1]))  # no partition held twice
    finally:
        for member in members:
            member.close()


def test_the_pool_is_per_subscription() -> None:
    alike = assign({"m1": ["one", "three"], "m2": ["one", "three"]}, {"one": (b"O", [0]), "three": (b"T", [0, 1, 2])})
    assert sorted(sum(map(len, a.values())) for a in alike.values()) == [2, 2]
    assert sorted(len(a.get(b"O", [])) for a in alike.values()) == [0, 1]
    # Three members, two partitions: each partition to two members, the first member both.
    assert assign({"a": ["t"], "b": ["t"], "c": ["t"]}, {"t": (b"T", [0, 1])}) == {
        "a": {b"T": [0, 1]}, "b": {b"T": [0]}, "c": {b"T": [1]}}
    # Subscribed differently: balanced topic by topic, a one-partition topic read by each of its subscribers.
    apart = assign({"m1": ["one", "three"], "m2": ["one"]}, {"one": (b"O", [0]), "three": (b"T", [0, 1, 2])})
    assert apart == {"m1": {b"O": [0], b"T": [0, 1, 2]}, "m2": {b"O": [0]}}
