"""A KIP-848 regex subscription is resolved again once group.consumer.regex.refresh.interval.ms
(Kafka 4.4's default: 10 minutes) has passed, even when no topic and no regex changed
(GroupMetadataManager.maybeUpdateRegularExpressions): a member granted DESCRIBE on a matching
topic since the last resolution is then assigned it. Time is the coordinator's manual clock."""

from __future__ import annotations

from ottla.wire.errors import ErrorCode
from tests.server.test_consumer_groups import Harness

REFRESH_INTERVAL_S = 600.0
STEP_S = 5.0


def test_a_regex_is_resolved_again_after_the_refresh_interval() -> None:
    h = Harness()
    first = h.topic("orders-1", 1)
    second = h.topic("orders-2", 1)
    describable = {"orders-1"}

    def may_describe(topic: str) -> bool:
        return topic in describable

    joined = h.beat("m1", 0, subscribed_topic_names=None, subscribed_topic_regex="orders-\\d+", may_describe=may_describe)
    # Resolved after the joining heartbeat's answer: the next one is assigned.
    resolved = h.beat("m1", joined.member_epoch, may_describe=may_describe)
    assert resolved.assignment == {first: frozenset({0})}
    epoch, elapsed = resolved.member_epoch, 0.0
    describable.add("orders-2")  # an ACL granted: no topic changed
    while second not in h.owned["m1"]:
        assert elapsed < 2 * REFRESH_INTERVAL_S
        h.clock.advance(STEP_S)  # within the session timeout
        elapsed += STEP_S
        result = h.beat("m1", epoch, may_describe=may_describe)
        assert result.error is ErrorCode.NONE, result
        epoch = result.member_epoch
    assert REFRESH_INTERVAL_S < elapsed <= REFRESH_INTERVAL_S + 2 * STEP_S
    assert h.owned["m1"] == {first: frozenset({0}), second: frozenset({0})}
