"""Reading Kafka's size-prefixed response frames off a blocking socket, for the raw-socket
clients of the compat tools and the tests."""

from __future__ import annotations

import socket
import struct


def read_frame(sock: socket.socket) -> bytes | None:
    """The next whole frame without its size prefix, or None when the peer closed (or
    reset) the connection before it began; a close in the middle is a ConnectionError."""
    size = _read_exactly(sock, 4)
    if size is None:
        return None
    frame = _read_exactly(sock, struct.unpack(">i", size)[0])
    if frame is None:
        raise ConnectionError("connection closed in the middle of a frame")
    return frame


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks = []
    while size:
        try:
            chunk = sock.recv(size)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)
