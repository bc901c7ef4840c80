"""The uniform assignor's builder follows the group's subscription type, as Kafka 4.4 picks it.

Kafka computes the type from what the members subscribe to, by name and by regex
(ConsumerGroup.subscriptionType), not from the topics that resolves to, and
UniformAssignor.assign picks the builder from it. The layouts below are those Kafka's own
UniformAssignor gives for the same group (KafkaAssignorHarness.java, see
test_kafka_assignors.py): consumer `a` holds all three partitions of `t`, `b` and `c` join.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.server.test_consumer_groups import ASSIGNMENT_INTERVAL_S, Harness

NAMES: dict[str, Any] = {"subscribed_topic_names": ("t",)}
REGEX: dict[str, Any] = {"subscribed_topic_names": None, "subscribed_topic_regex": "t"}
# UniformHomogeneousAssignmentBuilder: a keeps its first partition, b and c take the next in turn.
HOMOGENEOUS = {"a": [0], "b": [1], "c": [2]}
# UniformHeterogeneousAssignmentBuilder: the balancing hands a's highest partition to b first.
HETEROGENEOUS = {"a": [0], "b": [2], "c": [1]}


@pytest.mark.parametrize(("a", "others", "expected"), [
    pytest.param(NAMES, NAMES, HOMOGENEOUS, id="all-name-t"),
    pytest.param(REGEX, REGEX, HOMOGENEOUS, id="all-one-regex"),
    # The same topic for everyone, but `a` also names a topic not created yet.
    pytest.param({"subscribed_topic_names": ("t", "not-yet")}, NAMES, HETEROGENEOUS, id="a-names-a-missing-topic"),
    # The same topic for everyone, reached by regex for `a` and by name for the rest.
    pytest.param(REGEX, NAMES, HETEROGENEOUS, id="regex-and-names"),
])
def test_the_subscribed_names_and_regexes_pick_the_uniform_builder(
        a: dict[str, Any], others: dict[str, Any], expected: dict[str, list[int]]) -> None:
    h = Harness()
    topic_id = h.topic("t", 3)
    joined = h.beat("a", 0, **a)
    if a is REGEX:
        h.beat("a", joined.member_epoch)  # Kafka resolves the regex after the join's answer
    assert h.owned["a"] == {topic_id: frozenset(range(3))}
    # Both join within the assignment interval of a's join, so one target takes them both.
    epoch = h.beat("b", 0, **others).member_epoch
    assert h.beat("c", 0, **others).member_epoch == epoch
    h.clock.advance(ASSIGNMENT_INTERVAL_S)
    h.beat("a", epoch)
    target = h.group().target
    assert {member: sorted(target[member].get(topic_id, ())) for member in "abc"} == expected
