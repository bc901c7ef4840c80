"""Kafka's size-prefixed framing, sans-IO in the manner of h11: put bytes in, take frames out.

Bytes go in either by `feed(data)` or, without an intermediate copy, by filling the
buffer `get_buffer()` lends and reporting `buffer_updated(n)` (what asyncio's
BufferedProtocol does with `recv_into`). Each frame is a `bytearray` of its own that the
decoder reads and nothing else shares: the log assigns a produced batch its offsets in it
rather than in a second copy. A small frame is copied out of the shared buffer once; a large
one (a produced megabyte) is received straight into its own bytearray once its size is known,
so only the bytes that came with its size prefix are ever copied.
"""

from __future__ import annotations

import struct

from ottla.wire.errors import MalformedFrame

SIZE = struct.Struct(">i")

_INITIAL_BUFFER = 64 * 1024
# Never lend less room than this to a read, so small frames arrive many at a time.
_MIN_READ = 16 * 1024
# A buffer grows in steps of this, so that a frame a little larger than the last does not
# grow it again.
_GROWTH_STEP = 64 * 1024
# The shared buffer grows only while small frames pile up unread (a large frame has a buffer
# of its own); grown past this, it is given back once empty.
_KEEP_BUFFER = 256 * 1024


class FrameTooLarge(MalformedFrame):
    """A frame whose declared size exceeds the limit (`socket.request.max.bytes`)."""


class FrameReader:
    """Splits a byte stream into frames.

    Invariants: the bytes received and not yet taken as frames are `_large[:_large_filled]`
    (a large frame's body, when there is one) and then `_buffer[_start:_end]`, which is empty
    while the large frame is incomplete. The shared buffer is never resized in place — a lent
    view may still be alive when `buffer_updated` runs — but replaced by a new one in
    `get_buffer` when it lacks room.
    """

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._buffer = bytearray(_INITIAL_BUFFER)
        self._start = 0
        self._end = 0
        self._large: bytearray | None = None
        self._large_filled = 0

    @property
    def buffered(self) -> int:
        large = 0 if self._large is None else 4 + self._large_filled
        return large + self._end - self._start

    def get_buffer(self) -> memoryview:
        """Free room to receive into; enough for the whole of a frame whose size is known.

        A frame larger than the initial buffer whose first bytes are all that is buffered gets
        a bytearray of its own, the body received so far moved into it, and is lent exactly the
        bytes it still lacks: the read that completes it ends with it, and the next frame
        starts at the front of the empty shared buffer."""
        large = self._large
        if large is not None and self._large_filled < len(large):
            return memoryview(large)[self._large_filled :]
        live = self._end - self._start
        needed = _MIN_READ
        if live >= 4:
            (size,) = SIZE.unpack_from(self._buffer, self._start)
            if 0 <= size <= self.max_size:
                missing = 4 + size - live
                if missing > 0 and 4 + size > _INITIAL_BUFFER and large is None:
                    return self._receive_large(size, live)
                needed = max(needed, missing)
        if len(self._buffer) - self._end < needed:
            if live + needed <= len(self._buffer) and live <= self._start:
                # Room enough once the live bytes move to the front (no overlap, no resize).
                self._buffer[0:live] = self._buffer[self._start : self._end]
            else:
                grown = bytearray(max(_INITIAL_BUFFER, -(-(live + needed) // _GROWTH_STEP) * _GROWTH_STEP))
                grown[0:live] = self._buffer[self._start : self._end]
                self._buffer = grown
            self._start, self._end = 0, live
        elif live == 0 and len(self._buffer) > _KEEP_BUFFER:
            self._buffer = bytearray(_INITIAL_BUFFER)
            self._start = self._end = 0
        return memoryview(self._buffer)[self._end :]

    def _receive_large(self, size: int, live: int) -> memoryview:
        """Start receiving the first buffered frame, of `size` bytes and incomplete, into its
        own bytearray; every buffered byte is its size prefix or its body's beginning."""
        body_start = self._start + 4
        large = bytearray(size)
        filled = live - 4
        large[:filled] = self._buffer[body_start : body_start + filled]
        self._large, self._large_filled = large, filled
        self._start = self._end = 0
        if len(self._buffer) > _KEEP_BUFFER:
            self._buffer = bytearray(_INITIAL_BUFFER)
        return memoryview(large)[filled:]

    def buffer_updated(self, nbytes: int) -> None:
        large = self._large
        if large is not None and self._large_filled < len(large):
            self._large_filled += nbytes
        else:
            self._end += nbytes

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            room = self.get_buffer()
            count = min(len(room), len(view))
            room[:count] = view[:count]
            room.release()
            self.buffer_updated(count)
            view = view[count:]

    def has_frame(self) -> bool:
        """Whether `next_frame` would give a frame (or raise, for a bad size) without more bytes."""
        if self._large is not None:
            return self._large_filled == len(self._large)
        live = self._end - self._start
        if live < 4:
            return False
        size: int = SIZE.unpack_from(self._buffer, self._start)[0]
        return size < 0 or size > self.max_size or 4 + size <= live

    def next_frame(self) -> bytearray | None:
        """The next complete frame without its size prefix, or None if more bytes are needed."""
        large = self._large
        if large is not None:
            if self._large_filled < len(large):
                return None
            self._large = None
            return large
        start = self._start
        if self._end - start < 4:
            return None
        (size,) = SIZE.unpack_from(self._buffer, start)
        if size < 0:
            raise MalformedFrame(f"negative frame size {size}")
        if size > self.max_size:
            raise FrameTooLarge(f"frame of {size} bytes exceeds the limit of {self.max_size}")
        end = start + 4 + size
        if end > self._end:
            return None
        frame = self._buffer[start + 4 : end]
        if end == self._end:
            self._start = self._end = 0
        else:
            self._start = end
        return frame


def frame(payload: bytes) -> bytes:
    return SIZE.pack(len(payload)) + payload
