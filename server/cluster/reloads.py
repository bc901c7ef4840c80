"""Reloads from the database that coalesce: news that something changed may come while the
same thing is being read again, and must not be lost, yet a burst of news must not start a
burst of reads. One reload per key at a time; news during one makes it run once more when it
ends (it may have read before the change), so a burst costs at most two reads.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class CoalescingReloads(Generic[K]):
    """Which keys are being reloaded, and whether news came for each meanwhile."""

    def __init__(self) -> None:
        self._again: dict[K, bool] = {}

    async def run(self, key: K, reload: Callable[[], Awaitable[object]]) -> None:
        """`reload()` for `key`, again while news came during the last run; when a run of `key`
        is under way, only mark it to run once more and return at once. An exception from
        `reload()` ends the run and is raised here."""
        if key in self._again:
            self._again[key] = True
            return
        self._again[key] = False
        try:
            while True:
                await reload()
                if not self._again[key]:
                    return
                self._again[key] = False
        finally:
            del self._again[key]
