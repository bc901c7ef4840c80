"""State machines as transition tables, shared by every coordinator.

Kafka writes each state with the set of states it may be entered from
(ClassicGroupState.java, TransactionState.java) and asserts against it on every change.
A coordinator here declares the same table as data; `TransitionTable.check` is the one
assertion, so an illegal transition is a bug caught at the line that attempts it.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Generic, TypeVar

State = TypeVar("State", bound=Enum)


class IllegalTransition(RuntimeError):
    """A coordinator bug: a transition its table does not allow."""


class TransitionTable(Generic[State]):
    """target state -> the states it may be entered from. A target missing from the table
    cannot be entered at all."""

    def __init__(self, kind: str, valid_previous: Mapping[State, frozenset[State]]) -> None:
        self.kind = kind
        self.valid_previous = dict(valid_previous)

    def allows(self, current: State, target: State) -> bool:
        return current in self.valid_previous.get(target, frozenset())

    def check(self, current: State, target: State) -> None:
        if not self.allows(current, target):
            raise IllegalTransition(f"{current.value} -> {target.value} is not a valid {self.kind} transition")
