"""Kafka's background log tasks, run on the broker's event loop: retention (LogManager's
cleanupLogs, every `log.retention.check.interval.ms`), compaction (the LogCleaner, every
`log.cleaner.backoff.ms` while `log.cleaner.enable`) and time-based flushes (flushDirtyLogs,
every `log.flush.scheduler.interval.ms`). Each pass reads the topics' current configs, so a
retention.ms altered at runtime applies at the next pass, without a restart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from server.broker import Broker

log = logging.getLogger("ottla.log_maintenance")

# Kafka's default log.flush.scheduler.interval.ms: never (the OS flushes).
NEVER = 2**63 - 1


class LogMaintenance:
    def __init__(self, broker: "Broker") -> None:
        self.broker = broker
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def start(self) -> None:
        storage = self.broker.storage
        assert storage is not None
        config = self.broker.config
        self._every("retention", config["log.retention.check.interval.ms"], storage.enforce_retention)
        if config["log.cleaner.enable"]:
            self._every("compaction", config["log.cleaner.backoff.ms"], storage.compact)
        if config["log.flush.scheduler.interval.ms"] != NEVER:
            self._every("flush", config["log.flush.scheduler.interval.ms"], storage.flush_if_due)

    def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def _every(self, name: str, interval_ms: int, task: Callable[[int], object]) -> None:
        def run() -> None:
            try:
                task(time.time_ns() // 1_000_000)
            except Exception:
                # One failed pass (a disk error, say) must not end the schedule.
                log.exception("log %s pass failed", name)
            self._timers[name] = loop.call_later(interval_ms / 1000, run)

        loop = asyncio.get_running_loop()
        self._timers[name] = loop.call_later(interval_ms / 1000, run)
