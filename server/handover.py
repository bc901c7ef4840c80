"""A socket handed from one asyncio protocol to the next (the connection-limit gate to its
connection, a TLS handshake to its connection): the bytes the first read are the next's."""

from __future__ import annotations

import asyncio


def feed_received(protocol: asyncio.BufferedProtocol, data: bytes | bytearray) -> None:
    """Hand `protocol` bytes read from its socket before it took the socket over, as the
    transport would have: into the buffers it gives, as many rounds as they take."""
    view = memoryview(data)
    while view:
        buffer = memoryview(protocol.get_buffer(len(view)))
        count = min(len(buffer), len(view))
        buffer[:count] = view[:count]
        protocol.buffer_updated(count)
        view = view[count:]
