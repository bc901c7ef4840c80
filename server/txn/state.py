"""A transactional id's states and the transitions between them, as a table.

Kafka's TransactionState.java gives each state the set of states it may be entered
from, and TransactionMetadata.prepareTransitionTo throws on anything else. The table
below is that list (transaction versions 1 and 2, plus the epoch fence used when a transaction
times out or a new producer with the same id arrives), checked by the coordinator
runtime's `TransitionTable`.
"""

from __future__ import annotations

from enum import Enum

from ottla.server.coordinator.transitions import IllegalTransition, TransitionTable

__all__ = ["IllegalTransition", "TRANSITIONS", "TxnState", "VALID_PREVIOUS_STATES", "check_transition"]


class TxnState(Enum):
    """Values are Kafka's state names, as DescribeTransactions and ListTransactions report them."""

    EMPTY = "Empty"
    ONGOING = "Ongoing"
    PREPARE_COMMIT = "PrepareCommit"
    PREPARE_ABORT = "PrepareAbort"
    COMPLETE_COMMIT = "CompleteCommit"
    COMPLETE_ABORT = "CompleteAbort"
    DEAD = "Dead"
    PREPARE_EPOCH_FENCE = "PrepareEpochFence"

    @property
    def id(self) -> int:
        """The byte `__transaction_state` stores (TransactionState.id)."""
        return _IDS[self]

    @classmethod
    def from_id(cls, state_id: int) -> "TxnState":
        for state, known in _IDS.items():
            if known == state_id:
                return state
        raise ValueError(f"unknown transaction state id {state_id}")


_IDS = {
    TxnState.EMPTY: 0,
    TxnState.ONGOING: 1,
    TxnState.PREPARE_COMMIT: 2,
    TxnState.PREPARE_ABORT: 3,
    TxnState.COMPLETE_COMMIT: 4,
    TxnState.COMPLETE_ABORT: 5,
    TxnState.DEAD: 6,
    TxnState.PREPARE_EPOCH_FENCE: 7,
}

_COMPLETE_OR_EMPTY = frozenset({TxnState.EMPTY, TxnState.COMPLETE_COMMIT, TxnState.COMPLETE_ABORT})

# target state -> the states it may be entered from (TransactionState.java validPreviousStates).
VALID_PREVIOUS_STATES: dict[TxnState, frozenset[TxnState]] = {
    # InitProducerId bumps the epoch of an idle transactional id.
    TxnState.EMPTY: _COMPLETE_OR_EMPTY,
    # AddPartitionsToTxn / AddOffsetsToTxn start a transaction or add to the open one.
    TxnState.ONGOING: _COMPLETE_OR_EMPTY | {TxnState.ONGOING},
    TxnState.PREPARE_COMMIT: frozenset({TxnState.ONGOING}),
    # EndTxn(abort), or a timed-out / superseded transaction after its epoch fence; with
    # transaction version 2 also an abort with nothing open, to bump the epoch (KIP-890).
    TxnState.PREPARE_ABORT: _COMPLETE_OR_EMPTY | {TxnState.ONGOING, TxnState.PREPARE_EPOCH_FENCE},
    # The markers are in every partition of the transaction.
    TxnState.COMPLETE_COMMIT: frozenset({TxnState.PREPARE_COMMIT}),
    TxnState.COMPLETE_ABORT: frozenset({TxnState.PREPARE_ABORT}),
    # transactional.id.expiration.ms removes an idle id.
    TxnState.DEAD: _COMPLETE_OR_EMPTY,
    # The epoch is bumped before a timed-out or superseded transaction is aborted.
    TxnState.PREPARE_EPOCH_FENCE: frozenset({TxnState.ONGOING}),
}


TRANSITIONS = TransitionTable("transaction", VALID_PREVIOUS_STATES)
check_transition = TRANSITIONS.check
