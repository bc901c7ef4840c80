"""Timers on an injected clock: the one way a coordinator waits.

A coordinator never sleeps, polls or owns a task. Every timeout (a member's session, a
join phase, a periodic sweep) is one timer on a `Clock`: the asyncio loop in the broker,
a manual clock in tests, so a test crosses a timeout by moving time, not by waiting.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Protocol


class TimerHandle(Protocol):
    def cancel(self) -> None: ...

    def when(self) -> float: ...


class Clock(Protocol):
    """What a coordinator needs of an event loop: monotonic seconds and timers."""

    def time(self) -> float: ...

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> TimerHandle: ...


def now_epoch_ms() -> int:
    """Epoch milliseconds, for what is stored or reported (commit and state timestamps)."""
    return int(time.time() * 1000)


class Timers:
    """One coordinator's timers on `clock`. One-shot timers belong to whoever holds their
    handle (a member, a group); periodic tasks are kept here, each with exactly one timer
    armed at a time, and all of them end at `close`."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._periodic: list[TimerHandle] = []

    def now(self) -> float:
        return self.clock.time()

    def at(self, when: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        return self.clock.call_at(when, callback, *args)

    def after(self, delay_ms: int, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        return self.clock.call_at(self.clock.time() + delay_ms / 1000, callback, *args)

    @staticmethod
    def cancel(timer: TimerHandle | None) -> None:
        if timer is not None:
            timer.cancel()

    def every(self, interval_ms: int, task: Callable[[], Any]) -> None:
        """Run `task` each `interval_ms`, the first time one interval from now. The next run
        is armed after the task returns, so a slow task never overlaps itself."""

        def run() -> None:
            self._periodic.remove(timer)
            task()
            self.every(interval_ms, task)

        timer = self.after(interval_ms, run)
        self._periodic.append(timer)

    def close(self) -> None:
        """Cancel every periodic task."""
        for timer in self._periodic:
            timer.cancel()
        self._periodic.clear()
