"""A bounded set of open file descriptors, closed least-recently-used first.

Thousands of partitions with several segments each would otherwise hold tens
of thousands of descriptors. Callers ask for a descriptor at each use and
never keep one across another `fd()` call, which may close it.
"""

from __future__ import annotations

import os
import pathlib
from collections import OrderedDict

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

    def fd(self, path: pathlib.Path, flags: int) -> int:
        """The open descriptor for `path`, opening it (with `flags`) if needed."""
        if path is self._last:
            return self._last_fd
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

    def close(self, path: pathlib.Path) -> None:
        self._last = None
        fd = self._open.pop(path, None)
        if fd is not None:
            os.close(fd)

    def close_all(self) -> None:
        self._last = None
        while self._open:
            os.close(self._open.popitem()[1])

    def __len__(self) -> int:
        return len(self._open)
