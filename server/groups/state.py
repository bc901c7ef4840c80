"""The classic group's states and the transitions between them, as a table.

Kafka's ClassicGroupState.java lists, for each state, the states it may be entered
from; `ClassicGroup.transitionTo` asserts against that list. The table below is the
same list, so an illegal transition is a bug caught at the line that attempts it.
"""

from __future__ import annotations

from enum import Enum


class GroupState(Enum):
    """Values are Kafka's state names, as ListGroups and DescribeGroups report them."""

    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


# target state -> the states it may be entered from (ClassicGroupState.java).
VALID_PREVIOUS_STATES: dict[GroupState, frozenset[GroupState]] = {
    # Members join an empty group, a stable group changes, or a member rejoins before
    # the leader's assignment arrived.
    GroupState.PREPARING_REBALANCE: frozenset({GroupState.EMPTY, GroupState.STABLE, GroupState.COMPLETING_REBALANCE}),
    # Every known member has joined (or the rebalance timed out); the leader now assigns.
    GroupState.COMPLETING_REBALANCE: frozenset({GroupState.PREPARING_REBALANCE}),
    # The leader's SyncGroup carried the assignment.
    GroupState.STABLE: frozenset({GroupState.COMPLETING_REBALANCE}),
    # A rebalance ended with no members left.
    GroupState.EMPTY: frozenset({GroupState.PREPARING_REBALANCE}),
    # Deleted, or its offsets expired: from anywhere, and idempotently.
    GroupState.DEAD: frozenset(GroupState),
}


class IllegalTransition(RuntimeError):
    """A coordinator bug: a transition the table does not allow."""


def check_transition(current: GroupState, target: GroupState) -> None:
    if current not in VALID_PREVIOUS_STATES[target]:
        raise IllegalTransition(f"{current.value} -> {target.value} is not a valid group transition")
