"""Kafka's size-prefixed framing, sans-IO in the manner of h11: feed bytes, take frames."""

from __future__ import annotations

import struct

from wire.errors import MalformedFrame

SIZE = struct.Struct(">i")


class FrameTooLarge(MalformedFrame):
    """A frame whose declared size exceeds the limit (`socket.request.max.bytes`)."""


class FrameReader:
    """Splits a byte stream into frames; each frame is copied once out of the buffer."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self._buffer += data

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def next_frame(self) -> bytes | None:
        """The next complete frame without its size prefix, or None if more bytes are needed."""
        buffer = self._buffer
        if len(buffer) < 4:
            return None
        (size,) = SIZE.unpack_from(buffer)
        if size < 0:
            raise MalformedFrame(f"negative frame size {size}")
        if size > self.max_size:
            raise FrameTooLarge(f"frame of {size} bytes exceeds the limit of {self.max_size}")
        end = 4 + size
        if len(buffer) < end:
            return None
        frame = bytes(buffer[4:end])
        del buffer[:end]
        return frame


def frame(payload: bytes) -> bytes:
    return SIZE.pack(len(payload)) + payload
