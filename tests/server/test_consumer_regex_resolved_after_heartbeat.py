"""A KIP-848 regex subscription's epochs, heartbeat by heartbeat, as Kafka 4.4 answers them
(asked of the reference broker): the regex is resolved after the answer of the heartbeat that
named it (GroupMetadataManager.maybeUpdateRegularExpressions hands it to the executor), so that
heartbeat is answered at the epoch it found, and the resolution bumps the group epoch for the
next; and never within 10 s of the group's last resolution (REGEX_BATCH_REFRESH_MIN_INTERVAL_MS),
not even a regex new to the group, nor for a topic created since."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from tests.server.test_consumer_groups import ASSIGNMENT_INTERVAL_S, REGEX_MIN_INTERVAL_S, Harness


@pytest.fixture
def connection() -> Iterator[_Connection]:
    with running_broker(data_dir=None) as broker:
        conn = _Connection(broker.bootstrap_servers)
        yield conn
        conn.close()


def _create(connection: _Connection, name: str) -> bytes:
    answer = connection.call(ApiKey.CREATE_TOPICS, 7, {"topics": [{"name": name, "num_partitions": 2, "replication_factor": 1, "assignments": [],
                                                                    "configs": []}], "timeout_ms": 10_000, "validate_only": False})
    assert answer["topics"][0]["error_code"] == ErrorCode.NONE
    topic_id: bytes = answer["topics"][0]["topic_id"]
    return topic_id


def _beat(connection: _Connection, member_id: str, epoch: int, regex: str | None = None) -> tuple[int, Any]:
    joining = epoch == 0
    answer = connection.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 1, {
        "group_id": "g", "member_id": member_id, "member_epoch": epoch, "instance_id": None, "rack_id": None,
        "rebalance_timeout_ms": 30_000 if joining else -1, "subscribed_topic_names": None, "subscribed_topic_regex": regex,
        "server_assignor": None, "topic_partitions": [] if joining else None})
    assert answer["error_code"] == ErrorCode.NONE, answer
    assignment = answer["assignment"]
    return answer["member_epoch"], None if assignment is None else [(t["topic_id"], t["partitions"]) for t in assignment["topic_partitions"]]


def _described(connection: _Connection) -> tuple[str, int, int]:
    group = connection.call(ApiKey.CONSUMER_GROUP_DESCRIBE, 0, {"group_ids": ["g"], "include_authorized_operations": False})["groups"][0]
    return group["group_state"], group["group_epoch"], group["assignment_epoch"]


def test_a_regex_is_assigned_at_the_heartbeat_after_the_one_naming_it(connection: _Connection) -> None:
    matched = _create(connection, "rx-a")
    _create(connection, "other")
    # A new group is at epoch 1 with a target at epoch 1: a regex alone bumps nothing, so the
    # joining member gets epoch 1 and nothing; the resolution then bumps the group to 2.
    assert _beat(connection, "m1", 0, "rx-.*") == (1, [])
    assert _described(connection) == ("Assigning", 2, 1)
    assert _beat(connection, "m1", 1) == (2, [(matched, [0, 1])])
    assert _described(connection) == ("Stable", 2, 2)
    # A regex new to the group within 10 s of the last resolution waits: no epoch moves.
    assert _beat(connection, "m2", 0, "oth.*") == (2, [])
    assert _beat(connection, "m2", 2) == (2, None)
    # So does a topic created since.
    _create(connection, "rx-b")
    assert _beat(connection, "m1", 2) == (2, None)
    assert _described(connection) == ("Stable", 2, 2)


def test_a_new_topic_is_looked_for_once_10_s_passed_and_assigned_at_the_heartbeat_after() -> None:
    h = Harness()
    first = h.topic("rx-a", 1)
    joined = h.beat("m1", 0, subscribed_topic_names=None, subscribed_topic_regex="rx-.*")
    epoch = h.beat("m1", joined.member_epoch).member_epoch
    second = h.topic("rx-b", 1)
    h.clock.advance(REGEX_MIN_INTERVAL_S / 2)
    assert h.beat("m1", epoch).assignment is None
    h.clock.advance(REGEX_MIN_INTERVAL_S / 2 - 0.002)  # 10 s to the millisecond: not yet
    assert h.beat("m1", epoch).assignment is None
    assert h.beat("m1", epoch).assignment is None
    h.clock.advance(0.002)
    looked = h.beat("m1", epoch)  # resolves after its answer
    assert (looked.member_epoch, looked.assignment) == (epoch, None)
    assert h.group().group_epoch == epoch + 1
    found = h.beat("m1", epoch)
    assert (found.member_epoch, found.assignment) == (epoch + 1, {first: frozenset({0}), second: frozenset({0})})


def test_a_regex_its_last_member_took_away_is_resolved_afresh_for_the_next() -> None:
    """consumerGroupFenceMembers drops a regex nobody uses any more
    (maybeDeleteResolvedRegularExpressions), so a member taking it up again within 10 s finds
    no resolution to wait for: it is resolved afresh after its join (a topic created since
    included), and assigned at its next heartbeat."""
    h = Harness()
    topic = h.topic("rx-a", 1)
    h.beat("names", 0, subscribed_topic_names=("other",))
    joined = h.beat("m1", 0, subscribed_topic_names=None, subscribed_topic_regex="rx-.*")
    h.clock.advance(ASSIGNMENT_INTERVAL_S)
    assert h.beat("m1", joined.member_epoch).assignment == {topic: frozenset({0})}
    assert h.beat("m1", -1).error is ErrorCode.NONE
    created = h.topic("rx-b", 1)  # seen by a fresh resolution only
    again = h.beat("m2", 0, subscribed_topic_names=None, subscribed_topic_regex="rx-.*")
    assert again.assignment == {}
    h.clock.advance(ASSIGNMENT_INTERVAL_S)
    assert h.beat("m2", again.member_epoch).assignment == {topic: frozenset({0}), created: frozenset({0})}
