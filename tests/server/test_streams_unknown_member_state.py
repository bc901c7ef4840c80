"""A streams group member stored in a state this broker does not know (a newer broker's value),
as Kafka 4.4's streams CurrentAssignmentBuilder.build treats it: every heartbeat is
FENCED_MEMBER_EPOCH until the member reports owning nothing (all three owned lists present and
empty); then it is reconciled from the target assignment epoch, as any member at that epoch."""

from __future__ import annotations

from dataclasses import replace

from ottla.server.groups.streams import TasksTuple
from ottla.server.groups.streams.group import MemberState
from ottla.server.groups.streams.manager import _current_value
from ottla.server.groups.streams.records import CURRENT_MEMBER_ASSIGNMENT, key
from ottla.wire.errors import ErrorCode
from tests.server.test_streams_groups import Harness, count, create_topics

UNKNOWN_STATE = 99  # no MemberState value: Kafka reads it as UNKNOWN (127)


def _reloaded_in_unknown_state() -> tuple[Harness, int, TasksTuple]:
    """a holds all four tasks; its current-assignment record then says an unknown state."""
    harness = Harness()
    create_topics(harness, 2)
    joined = harness.join("a")
    assert count(joined.assignment) == 4
    member = harness.coordinator.streams_group("app").members["a"]
    value = _current_value(replace(member.current, state=UNKNOWN_STATE))
    harness.coordinator.log.append("app", [(key(CURRENT_MEMBER_ASSIGNMENT, "app", "a"), value)], 0)
    return Harness(harness.storage), joined.member_epoch, joined.assignment


def test_a_member_in_an_unknown_state_is_fenced_while_it_reports_tasks_or_nothing() -> None:
    harness, epoch, held = _reloaded_in_unknown_state()
    for owned in (held, None):
        fenced = harness.beat("a", epoch, owned=owned)
        assert fenced.error is ErrorCode.FENCED_MEMBER_EPOCH
        assert fenced.message == "The streams group member is in a unknown state. The member must abandon all its tasks and rejoin."


def test_a_member_in_an_unknown_state_that_owns_nothing_is_reconciled_to_the_target() -> None:
    harness, epoch, held = _reloaded_in_unknown_state()
    answer = harness.beat("a", epoch, owned=TasksTuple())
    assert answer.error is ErrorCode.NONE, answer.message
    assert answer.member_epoch == epoch and answer.assignment is None  # its tasks did not change
    current = harness.coordinator.streams_group("app").members["a"].current
    assert current.state == MemberState.STABLE and current.assigned == held
    assert harness.beat("a", epoch, owned=held).error is ErrorCode.NONE
