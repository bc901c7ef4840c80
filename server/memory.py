"""Handing freed heap memory back to the operating system after a burst of load.

glibc's malloc keeps memory that was freed inside its heap for reuse; the large, short-lived
buffers of produce and fetch requests leave holes it never returns on its own, so a broker
that served a busy spell stays at the size it had then (measured: 14 MiB above a fresh
broker on the same data after compat.soak, flat over further rounds, all of it free inside
malloc). malloc_trim returns those pages. Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ctypes

log = logging.getLogger("ottla.memory")

CHECK_INTERVAL_S = 5.0
# Free bytes malloc may keep for reuse before a check hands them back.
KEEP_FREE_BYTES = 8 << 20


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """glibc's malloc_trim and mallinfo2, or None elsewhere. Looked up at the first check,
    not at the broker's start: ctypes costs a start milliseconds for a trim seconds later."""
    import ctypes

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL(None)
    if not (hasattr(libc, "malloc_trim") and hasattr(libc, "mallinfo2")):
        return None
    libc.mallinfo2.restype = MallInfo2
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    return libc


class MemoryRelease:
    """Every CHECK_INTERVAL_S, trims malloc's heap if it holds more than KEEP_FREE_BYTES free.
    malloc counts a chunk free whether or not its pages were already handed back, so a heap
    with holes is trimmed at every check: a millisecond or so each time, measured. Without
    glibc the first check finds nothing to call and schedules no other."""

    def __init__(self) -> None:
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._timer = asyncio.get_running_loop().call_later(CHECK_INTERVAL_S, self._check)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check(self) -> None:
        libc = _glibc()
        if libc is None:
            self._timer = None
            return
        free = libc.mallinfo2().fordblks
        if free > KEEP_FREE_BYTES:
            libc.malloc_trim(0)
            log.debug("returned free heap memory to the system (%d MiB free in malloc)", free >> 20)
        self.start()
