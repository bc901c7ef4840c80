"""Kafka's size-prefixed framing, sans-IO in the manner of h11: put bytes in, take frames out.

Bytes go in either by `feed(data)` or, without an intermediate copy, by filling the
buffer `get_buffer()` lends and reporting `buffer_updated(n)` (what asyncio's
BufferedProtocol does with `recv_into`). Each frame comes out as a `bytearray` of its own
that the decoder reads and nothing else shares: the log assigns a produced batch its offsets
in it rather than in a second copy. A small frame is copied into it, once, out of the shared
buffer; a large one is received into it, so that its bytes are never copied at all.
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
# An idle buffer grown past this (by a burst of small frames: a large one is received into a
# buffer of its own) is given back.
_KEEP_BUFFER = 2 * 1024 * 1024


class FrameTooLarge(MalformedFrame):
    """A frame whose declared size exceeds the limit (`socket.request.max.bytes`)."""


class FrameReader:
    """Splits a byte stream into frames.

    Invariant: `_buffer[_start:_end]` holds the bytes received and not yet taken as frames,
    but for the frame at the front when `_frame` is set: that one, larger than the initial
    buffer, is received into `_frame` (its body, `_filled` bytes of it so far), and the buffer
    holds only what came after it, so nothing until it is complete. The buffer is never resized in place — a lent view may still be alive when
    `buffer_updated` runs — but replaced by a new one in `get_buffer` when it lacks room.
    """

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._buffer = bytearray(_INITIAL_BUFFER)
        self._start = 0
        self._end = 0
        self._frame: bytearray | None = None
        self._filled = 0

    @property
    def buffered(self) -> int:
        if self._frame is not None:
            return 4 + self._filled + self._end - self._start
        return self._end - self._start

    def get_buffer(self) -> memoryview:
        """Free room to receive into; enough for the whole of a frame whose size is known.

        A frame larger than the initial buffer is received into the `bytearray` that
        `next_frame` will hand out (what arrived of it with earlier frames is moved there, at
        most one read's worth), and lent exactly the bytes it still lacks: the read that
        completes it ends with it, and the next frame starts at the front of the buffer.
        Copied out of the buffer instead, the ~1 MiB frames of a producer cost the event loop
        a copy of every byte, and lent all the room, the reads of frames that differ a little
        in size (the Java producer's) ran into the next frame, whose first bytes were then
        moved to the front or copied into a buffer allocated for it."""
        receiving = self._frame
        if receiving is not None and self._filled < len(receiving):
            return memoryview(receiving)[self._filled :]
        live = self._end - self._start
        needed = _MIN_READ
        if live >= 4 and receiving is None:
            (size,) = SIZE.unpack_from(self._buffer, self._start)
            if 0 <= size <= self.max_size:
                missing = 4 + size - live
                if missing > 0 and 4 + size > _INITIAL_BUFFER:
                    frame = bytearray(size)
                    frame[0 : live - 4] = self._buffer[self._start + 4 : self._end]
                    self._frame, self._filled = frame, live - 4
                    self._start = self._end = 0
                    return memoryview(frame)[self._filled :]
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

    def buffer_updated(self, nbytes: int) -> None:
        if self._frame is not None and self._filled < len(self._frame):
            self._filled += nbytes
        else:
            self._end += nbytes

    def lacking(self) -> int:
        """How many bytes the frame at the front still lacks, once its size is read and within
        the limit (0 otherwise: none begun, complete, or too large, which `next_frame` refuses
        before any of its bytes are read). `get_buffer` lends exactly these when the frame is
        larger than the initial buffer, so a reader may fill them all at once."""
        if self._frame is not None:
            return len(self._frame) - self._filled
        live = self._end - self._start
        if live < 4:
            return 0
        size: int = SIZE.unpack_from(self._buffer, self._start)[0]
        if size < 0 or size > self.max_size:
            return 0
        return max(4 + size - live, 0)

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
        if self._frame is not None:
            return self._filled == len(self._frame)
        live = self._end - self._start
        if live < 4:
            return False
        size: int = SIZE.unpack_from(self._buffer, self._start)[0]
        return size < 0 or size > self.max_size or 4 + size <= live

    def next_frame(self) -> bytearray | None:
        """The next complete frame without its size prefix, or None if more bytes are needed."""
        frame = self._frame
        if frame is not None:
            if self._filled < len(frame):
                return None
            self._frame = None
            return frame
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
