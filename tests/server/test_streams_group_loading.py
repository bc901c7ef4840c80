"""What a streams group's members are given when their coordinator loads the group (KIP-1071),
as Kafka 4.4's GroupMetadataManager.onLoaded: each a whole session timeout from then, and one
still revoking tasks a whole rebalance timeout from then (scheduleStreamsGroupRebalanceTimeout),
after a reload from the log and when a coordinator partition moves in a cluster alike.

On the coordinator's injected clock: a timeout is only seen expiring or not without racing a
real one."""

from __future__ import annotations

from tests.server.test_streams_groups import Harness, count, create_topics

REBALANCE_S = 30  # Harness.join's rebalance_timeout_ms


def _revoking(harness: Harness) -> None:
    """a holds all four tasks and is asked to give two to b; it has not yet."""
    create_topics(harness, 2)
    a = harness.join("a")
    harness.join("b")
    asked = harness.beat("a", a.member_epoch, owned=a.assignment)
    assert asked.member_epoch == a.member_epoch and count(asked.assignment) == 2


def test_a_member_loaded_while_revoking_is_removed_after_its_rebalance_timeout() -> None:
    harness = Harness()
    _revoking(harness)
    reloaded = Harness(harness.storage)
    reloaded.clock.advance(REBALANCE_S - 1)
    assert set(reloaded.coordinator.streams_group("app").members) == {"a", "b"}
    reloaded.clock.advance(2)  # within a's session timeout, past its rebalance timeout
    assert set(reloaded.coordinator.streams_group("app").members) == {"b"}


def test_a_coordinator_move_gives_a_revoking_member_a_whole_rebalance_timeout_from_then() -> None:
    harness = Harness()
    _revoking(harness)
    harness.clock.advance(REBALANCE_S - 10)
    harness.coordinator.on_partition_moved(harness.coordinator.offsets_partition("app"))
    harness.clock.advance(REBALANCE_S - 1)
    assert set(harness.coordinator.streams_group("app").members) == {"a", "b"}
    harness.clock.advance(2)
    assert set(harness.coordinator.streams_group("app").members) == {"b"}
