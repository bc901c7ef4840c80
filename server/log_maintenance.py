"""Kafka's background log tasks, run on the broker's event loop: retention (LogManager's
cleanupLogs, first `log.initial.task.delay.ms` after the start, then every
`log.retention.check.interval.ms`), compaction (the LogCleaner, every
`log.cleaner.backoff.ms` while `log.cleaner.enable`) and time-based flushes (flushDirtyLogs,
every `log.flush.scheduler.interval.ms`), the removal of deleted segments and topics
once their file.delete.delay.ms has passed (Kafka schedules each such delete; here a check
every second finds the due ones), the check that every log directory is still there, and
the copy of partitions that AlterReplicaLogDirs moves (Kafka's ReplicaAlterLogDirsThread). Each pass reads the topics' current configs, so a
retention.ms altered at runtime applies at the next pass, without a restart. An async engine's
topics (PostgreSQL) have their retention and compaction passes on the same schedules, and
producer.id.expiration.ms every producer.id.expiration.check.interval.ms (Kafka's LogManager
schedules that too), each as one task awaiting the database (a pass still running when the next
is due is not doubled).

Compaction decodes every record of the logs it cleans (seconds for a few hundred MB), so
it runs in slices of a few milliseconds with clients served between them, where Kafka
has its cleaner threads.
"""

from __future__ import annotations

import asyncio
import logging
import pathlib
import time
from collections.abc import Awaitable, Callable, Generator

from ottla.server.config import BrokerConfig
from ottla.storage import Storage
from ottla.storage.compaction import offset_map_capacity
from ottla.storage.files import remove_paths

log = logging.getLogger("ottla.log_maintenance")

# Kafka's default log.flush.scheduler.interval.ms: never (the OS flushes).
NEVER = 2**63 - 1
# The longest compaction holds the event loop before letting clients in.
COMPACTION_SLICE_S = 0.005
# How often files whose file.delete.delay.ms has passed are looked for.
FILE_DELETION_CHECK_MS = 1000
# How often log directories are checked for having gone (removed, unmounted), and for
# partitions to move (AlterReplicaLogDirs, or a move a restart cut short).
LOG_DIR_CHECK_MS = 1000
# What a partition move copies at a time; its last step (the swap) copies no more while appends wait.
MOVE_STEP_BYTES = 256 * 1024


class LogMaintenance:
    def __init__(self, storage: Storage, config: BrokerConfig) -> None:
        self.storage = storage
        self.config = config
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._compaction: asyncio.Task[None] | None = None
        self._compaction_steps: Generator[None, None, int] | None = None
        self._moves: asyncio.Task[None] | None = None
        self._database_tasks: dict[str, asyncio.Task[None]] = {}
        self._removal: asyncio.Future[None] | None = None
        # Kafka's LogManager.startup schedules its first retention pass this long after the start,
        # whatever the interval: a record past retention.ms goes 30 s in, not 5 minutes.
        self._first_retention_at = time.monotonic() + config.value("log.initial.task.delay.ms") / 1000

    def start(self) -> None:
        storage = self.storage
        config = self.config
        first_retention_ms = self._first_retention_ms(config.log_retention_check_interval_ms)
        self._every("retention", config.log_retention_check_interval_ms, storage.enforce_retention, first_retention_ms)
        if storage.is_async:
            from ottla.storage.postgresql.engine import PostgresStorage

            assert isinstance(storage, PostgresStorage)
            database = storage
            expiration_ms = config.producer_id_expiration_ms
            self._every_database(
                "retention", config.log_retention_check_interval_ms, database.enforce_database_retention, first_retention_ms
            )
            self._every_database(
                "producer expiry", config.producer_id_expiration_check_interval_ms,
                lambda now_ms: database.expire_database_producers(now_ms, expiration_ms),
            )
            if config.log_cleaner_enable:
                self._every_database("compaction", config.log_cleaner_backoff_ms, lambda now_ms: database.compact_database(now_ms, self.map_capacity))
        if config.log_cleaner_enable:
            self._every("compaction", config.log_cleaner_backoff_ms, self._start_compaction)
        if config.log_flush_scheduler_interval_ms != NEVER:
            self._every("flush", config.log_flush_scheduler_interval_ms, storage.flush_if_due)
        self._every("file deletion", FILE_DELETION_CHECK_MS, self._delete_expired_files)
        if storage.log_dirs:
            self._every("log dirs", LOG_DIR_CHECK_MS, self._check_log_dirs)
            if config.log_flush_offset_checkpoint_interval_ms > 0:  # Kafka's scheduler: 0 is no period
                self._every("recovery point checkpoint", config.log_flush_offset_checkpoint_interval_ms, storage.checkpoint_recovery_points)

    def _first_retention_ms(self, interval_ms: int) -> float:
        """Milliseconds to the next retention pass of a schedule (re)started now: what is left of
        the initial delay, or once that has passed (a reconfiguration) a whole interval."""
        left_ms = (self._first_retention_at - time.monotonic()) * 1000
        return left_ms if left_ms > 0 else interval_ms

    @property
    def map_capacity(self) -> int:
        """The keys a compaction pass maps at most: Kafka's count for one cleaner thread's
        share of log.cleaner.dedupe.buffer.size at log.cleaner.io.buffer.load.factor (read at
        each pass: Kafka's cleaner takes them dynamically). Ottla runs one cleaner; a
        log.cleaner.threads above one divides the buffer as Kafka's threads do."""
        config = self.config
        return offset_map_capacity(
            config.value("log.cleaner.dedupe.buffer.size"), max(config.value("log.cleaner.threads"), 1),
            config.value("log.cleaner.io.buffer.load.factor"),
        )

    def reconfigure(self, config: BrokerConfig) -> None:
        """Reschedule the tasks on changed settings (log.cleaner.backoff.ms is dynamic in Kafka);
        a compaction pass under way goes on."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self.config = config
        self.start()

    def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        if self._compaction is not None:
            self._compaction.cancel()
            self._compaction = None
        if self._moves is not None:
            self._moves.cancel()
            self._moves = None
        for task in self._database_tasks.values():
            task.cancel()
        self._database_tasks.clear()
        if self._compaction_steps is not None:
            # Now, before the storage closes: an unfinished segment rewrite is discarded.
            self._compaction_steps.close()
            self._compaction_steps = None

    def _start_compaction(self, now_ms: int) -> None:
        """A pass, unless the last one is still running (a pass may outlast the backoff)."""
        if self._compaction is None or self._compaction.done():
            self._compaction_steps = self.storage.compaction_steps(now_ms, self.map_capacity)
            self._compaction = asyncio.get_running_loop().create_task(self._compact(self._compaction_steps))

    def _every_database(
        self, name: str, interval_ms: int, task: Callable[[int], Awaitable[object]], first_ms: float | None = None
    ) -> None:
        """`task` every `interval_ms` (the first after `first_ms`, by default an interval) as a
        task of its own, unless its last pass is still running."""

        async def run(now_ms: int) -> None:
            try:
                await task(now_ms)
            except Exception:
                # A database away for a pass (KAFKA_STORAGE_ERROR) must not end the schedule.
                log.exception("log database %s pass failed", name)

        def start(now_ms: int) -> None:
            running = self._database_tasks.get(name)
            if running is None or running.done():
                self._database_tasks[name] = asyncio.get_running_loop().create_task(run(now_ms))

        self._every(f"database {name}", interval_ms, start, first_ms)

    async def _compact(self, steps: Generator[None, None, int]) -> None:
        try:
            slice_ends = time.monotonic() + COMPACTION_SLICE_S
            for _ in steps:
                if time.monotonic() >= slice_ends:
                    await asyncio.sleep(0)
                    slice_ends = time.monotonic() + COMPACTION_SLICE_S
        except Exception:
            log.exception("log compaction pass failed")
        finally:
            steps.close()

    def _check_log_dirs(self, now_ms: int) -> None:
        self.storage.check_log_dirs(now_ms)
        if self.storage.moving and (self._moves is None or self._moves.done()):
            self._moves = asyncio.get_running_loop().create_task(self._copy_moves())

    async def _copy_moves(self) -> None:
        """Copy moving partitions in slices, clients served between them, until none is left."""
        try:
            while self.storage.moving:
                slice_ends = time.monotonic() + COMPACTION_SLICE_S
                while self.storage.moving and time.monotonic() < slice_ends:
                    self.storage.copy_moves(MOVE_STEP_BYTES)
                await asyncio.sleep(0)
        except Exception:
            log.exception("log dir move failed")

    def _delete_expired_files(self, now_ms: int) -> None:
        """What is due leaves the storage's books here and its files go on a thread, as Kafka's
        scheduler thread removes them: unlinking a large segment holds the disk for tens to
        hundreds of milliseconds, which on the event loop every client would wait out. One
        removal at a time; what falls due meanwhile waits for the next check."""
        if self._removal is not None and not self._removal.done():
            return
        taken = self.storage.take_expired_files(now_ms)
        if taken:
            self._removal = asyncio.get_running_loop().run_in_executor(None, _remove_all, taken)
            self._removal.add_done_callback(_log_removal_failure)

    def _every(self, name: str, interval_ms: int, task: Callable[[int], object], first_ms: float | None = None) -> None:
        """`task` every `interval_ms`, the first time after `first_ms` (by default an interval)."""

        def run() -> None:
            try:
                task(time.time_ns() // 1_000_000)
            except Exception:
                # One failed pass (a disk error, say) must not end the schedule.
                log.exception("log %s pass failed", name)
            self._timers[name] = loop.call_later(interval_ms / 1000, run)

        loop = asyncio.get_running_loop()
        self._timers[name] = loop.call_later((interval_ms if first_ms is None else first_ms) / 1000, run)


def _remove_all(taken: list[list[pathlib.Path]]) -> None:
    for paths in taken:
        remove_paths(paths)


def _log_removal_failure(removal: asyncio.Future[None]) -> None:
    if not removal.cancelled() and removal.exception() is not None:
        log.error("removing deleted log files failed", exc_info=removal.exception())
