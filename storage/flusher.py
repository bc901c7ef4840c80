"""One thread that makes rolled segments durable off the event loop.

Kafka's UnifiedLog.roll schedules `flush-log` on its scheduler instead of fsyncing the
old segment on the appending thread; this is that scheduler, for the storage's one
event loop. Work runs in submission order (FIFO), so a partition's recovery point,
advanced as its jobs finish, never passes a segment still waiting for its fsync.
Jobs hold duplicated descriptors, not names: a segment renamed or removed meanwhile
(retention, compaction, a topic deleted or moved) is synced or skipped harmlessly.
"""

from __future__ import annotations

import os
import pathlib
import queue
import threading
from collections.abc import Callable

from ottla.storage.files import fsync_directory


class FlushJob:
    """One piece of work; `done` is read on the loop, set by the worker."""

    __slots__ = ("work", "error", "_finished")

    def __init__(self, work: Callable[[], None]) -> None:
        self.work = work
        self.error: Exception | None = None
        self._finished = threading.Event()

    @property
    def done(self) -> bool:
        return self._finished.is_set()

    def wait(self) -> None:
        self._finished.wait()

    def run(self) -> None:
        try:
            self.work()
        except Exception as error:  # the thread must outlive any one job
            self.error = error
        finally:
            self._finished.set()


class Flusher:
    """The FIFO worker. Its thread starts with the first job and is a daemon: a process
    ending without `close` loses only fsyncs, as a kill does (the page cache keeps the data)."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[FlushJob | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def submit(self, work: Callable[[], None]) -> FlushJob:
        job = FlushJob(work)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ottla-flusher", daemon=True)
            self._thread.start()
        self._jobs.put(job)
        return job

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            job.run()

    def close(self) -> None:
        """Finish every job submitted, then stop the thread."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
            self._thread = None


def sync_rolled(descriptors: list[int], snapshot: pathlib.Path | None, directory: pathlib.Path | None) -> None:
    """fsync a rolled segment's files (duplicated descriptors, closed here), then its producer
    snapshot and the directory (the new segment's files, the snapshot's rename). A snapshot
    or directory gone meanwhile (a later snapshot replaced it, the topic was deleted or moved)
    needs nothing. Raises the first OSError once every descriptor is closed."""
    failure: OSError | None = None
    for descriptor in descriptors:
        try:
            os.fsync(descriptor)
        except OSError as error:
            failure = failure or error
        finally:
            os.close(descriptor)
    if failure is not None:
        raise failure
    if snapshot is not None:
        try:
            descriptor = os.open(snapshot, os.O_RDONLY)
        except FileNotFoundError:
            pass
        else:
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
    if directory is not None:
        try:
            fsync_directory(directory)
        except FileNotFoundError:
            pass
