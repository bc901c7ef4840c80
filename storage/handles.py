"""A bounded set of open file descriptors, closed least-recently-used first.

Thousands of partitions with several segments each would otherwise hold tens
of thousands of descriptors. Callers ask for a descriptor at each use and
never keep one across another `fd()` call, which may close it. The cache is its
owner's thread's (the event loop's) alone; another thread opening logs does so
inside `uncached()`.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import threading
from collections import OrderedDict
from collections.abc import Iterator

DEFAULT_LIMIT = 1024


class FileHandles:
    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        if limit < 2:
            raise ValueError("need room for a log and an index descriptor at once")
        self.limit = limit
        self._open: OrderedDict[pathlib.Path, int] = OrderedDict()
        # The most recently used path object and its descriptor, the last entry of `_open`: a
        # partition's appends ask for the same segment file again and again, and an identity
        # check skips the two hashes of a pathlib.Path (Python-level) a dict lookup costs.
        self._last: pathlib.Path | None = None
        self._last_fd = -1
        # Threads inside `uncached()`, each with the one descriptor it holds (path, fd), if any.
        self._uncached: dict[int, tuple[pathlib.Path, int] | None] = {}
        # Inside `closes_deferred()`: the descriptors `close` took out of the cache, still open.
        self._deferred: list[int] | None = None

    def fd(self, path: pathlib.Path, flags: int) -> int:
        """The open descriptor for `path`, opening it (with `flags`) if needed."""
        if path is self._last:  # never another thread's: its paths are objects of its own
            return self._last_fd
        if self._uncached and threading.get_ident() in self._uncached:
            return self._fd_uncached(path, flags)
        fd = self._open.get(path)
        if fd is not None:
            self._open.move_to_end(path)
        else:
            while len(self._open) >= self.limit:
                _, oldest = self._open.popitem(last=False)
                os.close(oldest)
            fd = os.open(path, flags, 0o644)
            self._open[path] = fd
        self._last, self._last_fd = path, fd
        return fd

    @contextlib.contextmanager
    def uncached(self) -> Iterator[None]:
        """On a thread other than the owner's, opening logs for it (Storage's new partitions):
        inside, this thread's descriptors are opened outside the cache, one at a time (each
        closed at the next ask, the last on leaving), so that the cache is never changed under
        its owner, nor a descriptor the owner is using closed. The logs opened so ask for their
        files again, through the cache, once in the owner's hands."""
        ident = threading.get_ident()
        self._uncached[ident] = None
        try:
            yield
        finally:
            held = self._uncached.pop(ident)
            if held is not None:
                os.close(held[1])

    def _fd_uncached(self, path: pathlib.Path, flags: int) -> int:
        ident = threading.get_ident()
        held = self._uncached[ident]
        if held is not None:
            if held[0] == path:
                return held[1]
            self._uncached[ident] = None
            os.close(held[1])
        fd = os.open(path, flags, 0o644)
        self._uncached[ident] = (path, fd)
        return fd

    @contextlib.contextmanager
    def closes_deferred(self) -> Iterator[list[int]]:
        """On the owner's thread: inside, `close` takes a file's descriptor out of the cache but
        leaves it open, in the list yielded, for the caller to close on any thread (a deleted
        topic's 500 partitions: a millisecond of the loop's). Safe once out of the cache: no
        caller keeps a descriptor past its next `fd()`, and readers of regions open files of
        their own."""
        deferred: list[int] = []
        self._deferred = deferred
        try:
            yield deferred
        finally:
            self._deferred = None

    def close(self, path: pathlib.Path) -> None:
        if self._uncached and (ident := threading.get_ident()) in self._uncached:
            held = self._uncached[ident]
            if held is not None and held[0] == path:
                self._uncached[ident] = None
                os.close(held[1])
            return
        self._last = None
        fd = self._open.pop(path, None)
        if fd is not None:
            if self._deferred is not None:
                self._deferred.append(fd)
            else:
                os.close(fd)

    def close_all(self) -> None:
        self._last = None
        while self._open:
            os.close(self._open.popitem()[1])

    def __len__(self) -> int:
        return len(self._open)
