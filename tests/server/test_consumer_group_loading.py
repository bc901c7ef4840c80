"""What a KIP-848 consumer group's members are given when their coordinator loads the group,
as Kafka 4.4's GroupMetadataManager.onLoaded: each a whole session timeout from then, and one
still revoking partitions a whole rebalance timeout from then
(scheduleConsumerGroupRebalanceTimeout), after a reload from the log and when a coordinator
partition moves in a cluster alike.

On the coordinator's injected clock: a timeout is only seen expiring or not without racing a
real one."""

from __future__ import annotations

from tests.server.test_consumer_groups import ASSIGNMENT_INTERVAL_S, SESSION_MS, Harness

REBALANCE_S = 5  # below the session timeout, so the rebalance timeout is the one seen
assert REBALANCE_S < SESSION_MS / 1000


def _revoking(harness: Harness) -> None:
    """m1 holds both partitions and is asked to give one to m2; it has not yet."""
    topic_id = harness.topic("t", 2)
    epoch = harness.beat("m1", 0, rebalance_timeout_ms=REBALANCE_S * 1000).member_epoch
    harness.beat("m2", 0)
    harness.clock.advance(ASSIGNMENT_INTERVAL_S)
    asked = harness.beat("m1", epoch, owned={topic_id: frozenset({0, 1})})
    assert asked.member_epoch == epoch and asked.assignment is not None and sum(map(len, asked.assignment.values())) == 1


def test_a_member_loaded_while_revoking_is_removed_after_its_rebalance_timeout() -> None:
    harness = Harness()
    _revoking(harness)
    reloaded = Harness(harness.storage)
    reloaded.clock.advance(REBALANCE_S - 0.1)
    assert set(reloaded.group().members) == {"m1", "m2"}
    reloaded.clock.advance(0.2)  # within m1's session timeout, past its rebalance timeout
    assert set(reloaded.group().members) == {"m2"}


def test_a_coordinator_move_gives_a_revoking_member_a_whole_rebalance_timeout_from_then() -> None:
    harness = Harness()
    _revoking(harness)
    harness.clock.advance(REBALANCE_S - 1)
    harness.coordinator.on_partition_moved(harness.coordinator.offsets_partition("g"))
    harness.clock.advance(REBALANCE_S - 0.1)
    assert set(harness.group().members) == {"m1", "m2"}
    harness.clock.advance(0.2)  # within the session timeouts the move gave both
    assert set(harness.group().members) == {"m2"}
