"""The coordinator runtime's pieces on their own: no sockets, no event loop, no coordinator.

The log runs over a real in-memory Storage; time is the manual clock the coordinator
tests use, so a timer fires only when the test moves time past it.
"""

from __future__ import annotations

from enum import Enum

import pytest

from ottla.server.coordinator import (
    INTERNAL_TOPICS,
    OFFSETS,
    TRANSACTION_STATE,
    CoordinatorLog,
    IllegalTransition,
    RecordFormatError,
    Timers,
    TransitionTable,
)
from ottla.storage import Storage
from ottla.storage.producer_state import control_batch
from tests.server.test_groups_coordinator import ManualClock

# --- replay at load ------------------------------------------------------------------


def _replayed(storage: Storage) -> tuple[list[tuple[bytes, bytes | None]], CoordinatorLog]:
    log = CoordinatorLog(storage, TRANSACTION_STATE, 1)
    applied: list[tuple[bytes, bytes | None]] = []
    log.load(lambda key, value: applied.append((key, value)))
    return applied, log


def test_load_replays_every_record_in_log_order_with_tombstones():
    storage = Storage.open(None)
    log = CoordinatorLog(storage, TRANSACTION_STATE, 3)
    log.append("a", [(b"a", b"1")], 0)
    log.append("a", [(b"a", b"2"), (b"b", b"1")], 0)
    log.append("a", [(b"a", None)], 0)
    applied, reloaded = _replayed(storage)
    assert applied == [(b"a", b"1"), (b"a", b"2"), (b"b", b"1"), (b"a", None)]
    assert reloaded.partitions == 3  # the topic keeps the count it was created with


def test_load_applies_transactional_records_only_once_committed():
    storage = Storage.open(None)
    log = CoordinatorLog(storage, TRANSACTION_STATE, 1)
    log.append("k", [(b"committed", b"v")], 0, producer_id=7, producer_epoch=0)
    log.append("k", [(b"aborted", b"v")], 0, producer_id=8, producer_epoch=0)
    log.append("k", [(b"open", b"v")], 0, producer_id=9, producer_epoch=0)
    partition = storage.partition(TRANSACTION_STATE.name, 0)
    partition.append(control_batch(7, 0, True, 0), from_client=False)
    partition.append(control_batch(8, 0, False, 0), from_client=False)
    applied, reloaded = _replayed(storage)
    assert applied == [(b"committed", b"v")]
    assert reloaded.open_transactions == {9: [(b"open", b"v")]}


def test_load_skips_a_record_that_does_not_parse_and_goes_on():
    storage = Storage.open(None)
    log = CoordinatorLog(storage, TRANSACTION_STATE, 1)
    log.append("k", [(b"good", b"1"), (b"bad", b"?"), (b"good", b"2")], 0)
    applied: list[bytes | None] = []

    def apply(key: bytes, value: bytes | None) -> None:
        if key == b"bad":
            raise RecordFormatError("unreadable")
        applied.append(value)

    log.load(apply)
    assert applied == [b"1", b"2"]


def test_the_registry_names_the_internal_topics_compacted():
    assert INTERNAL_TOPICS == {"__consumer_offsets", "__transaction_state", "__share_group_state"}
    assert OFFSETS.fixed_configs["cleanup.policy"] == TRANSACTION_STATE.fixed_configs["cleanup.policy"] == "compact"
    storage = Storage.open(None)
    log_ = CoordinatorLog(storage, OFFSETS, 2)
    assert storage.topic(OFFSETS.name) is None  # created on first use, as Kafka creates it
    log_.ensure_topic()
    info = storage.topic(OFFSETS.name)
    assert info is not None and info.partitions == 2


# --- timers on the injected clock ----------------------------------------------------


def test_timers_fire_in_deadline_order_not_scheduling_order():
    clock = ManualClock()
    timers = Timers(clock)
    fired: list[str] = []
    timers.after(3000, fired.append, "third")
    timers.after(1000, fired.append, "first")
    cancelled = timers.after(1500, fired.append, "cancelled")
    timers.at(2.0, fired.append, "second")
    Timers.cancel(cancelled)
    Timers.cancel(None)
    clock.advance(2.5)
    assert fired == ["first", "second"]
    clock.advance(1)
    assert fired == ["first", "second", "third"]


def test_a_periodic_task_runs_each_interval_with_one_timer_armed_until_closed():
    clock = ManualClock()
    timers = Timers(clock)
    runs: list[float] = []
    timers.every(10_000, lambda: runs.append(clock.time()))
    clock.advance(9.9)
    assert runs == []
    clock.advance(25)
    assert runs == [10.0, 20.0, 30.0]
    assert clock.armed() == 1
    timers.close()
    clock.advance(100)
    assert runs == [10.0, 20.0, 30.0] and clock.armed() == 0


# --- transition tables ---------------------------------------------------------------


class _Light(Enum):
    OFF = "Off"
    ON = "On"
    BROKEN = "Broken"


_TABLE = TransitionTable("light", {_Light.ON: frozenset({_Light.OFF}), _Light.OFF: frozenset({_Light.ON, _Light.OFF})})


def test_a_transition_the_table_allows_passes():
    _TABLE.check(_Light.OFF, _Light.ON)
    _TABLE.check(_Light.OFF, _Light.OFF)
    assert _TABLE.allows(_Light.ON, _Light.OFF)


def test_an_illegal_transition_raises_and_names_both_states():
    with pytest.raises(IllegalTransition, match="On -> On is not a valid light transition"):
        _TABLE.check(_Light.ON, _Light.ON)


def test_a_state_missing_from_the_table_can_never_be_entered():
    for current in _Light:
        assert not _TABLE.allows(current, _Light.BROKEN)
        with pytest.raises(IllegalTransition):
            _TABLE.check(current, _Light.BROKEN)
