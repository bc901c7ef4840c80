"""The classic group's states and the transitions between them, as a table.

Kafka's ClassicGroupState.java lists, for each state, the states it may be entered
from; `ClassicGroup.transitionTo` asserts against that list. The table below is the
same list, checked by the coordinator runtime's `TransitionTable`.
"""

from __future__ import annotations

from enum import Enum

from ottla.server.coordinator.transitions import IllegalTransition, TransitionTable

__all__ = ["GroupState", "IllegalTransition", "TRANSITIONS", "VALID_PREVIOUS_STATES", "check_transition"]


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


TRANSITIONS = TransitionTable("group", VALID_PREVIOUS_STATES)
check_transition = TRANSITIONS.check
