"""Size-prefixed framing: frames whole, whatever the chunking of the byte stream."""

from __future__ import annotations

import random

import pytest

from ottla.wire.errors import MalformedFrame
from ottla.wire.framing import FrameReader, FrameTooLarge

# Three frames as a client would send them: sizes 3, 0 and 5.
STREAM = bytes.fromhex("00000003 616263 00000000 00000005 6465666768".replace(" ", ""))
FRAMES = [b"abc", b"", b"defgh"]


def _drain(reader: FrameReader) -> list[bytes]:
    out = []
    while (frame := reader.next_frame()) is not None:
        out.append(frame)
    return out


def test_fed_whole():
    reader = FrameReader(max_size=100)
    reader.feed(STREAM)
    assert _drain(reader) == FRAMES
    assert reader.buffered == 0


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_fed_in_two_pieces_at_every_cut(cut):
    reader = FrameReader(max_size=100)
    reader.feed(STREAM[:cut])
    first = _drain(reader)
    reader.feed(STREAM[cut:])
    assert first + _drain(reader) == FRAMES


def test_received_into_lent_buffers_in_random_chunks():
    rng = random.Random(7)
    frames = [rng.randbytes(rng.choice([0, 1, 100, 70_000, 300_000])) for _ in range(40)]
    stream = b"".join(len(f).to_bytes(4, "big") + f for f in frames)
    reader = FrameReader(max_size=1 << 20)
    received, position = [], 0
    while position < len(stream):
        room = reader.get_buffer()
        count = min(len(room), rng.randint(1, 200_000), len(stream) - position)
        room[:count] = stream[position : position + count]
        # The lent view stays alive while frames are taken, as asyncio keeps it.
        reader.buffer_updated(count)
        received += _drain(reader)
        position += count
    assert received == frames


def test_a_large_frame_is_received_in_one_buffer():
    reader = FrameReader(max_size=1 << 21)
    reader.feed((1 << 20).to_bytes(4, "big"))
    assert len(reader.get_buffer()) >= 1 << 20  # room for the whole body at once


def test_negative_size_is_malformed():
    reader = FrameReader(max_size=100)
    reader.feed(b"\xff\xff\xff\xfe")
    with pytest.raises(MalformedFrame):
        reader.next_frame()


def test_size_over_the_limit_is_refused_before_the_body_arrives():
    reader = FrameReader(max_size=100)
    reader.feed((101).to_bytes(4, "big"))
    with pytest.raises(FrameTooLarge):
        reader.next_frame()


def test_a_large_frame_is_lent_exactly_what_it_lacks():
    """The read that completes a large frame ends with it, so the next frame starts at the
    front of the buffer: never moved there, nor copied into a larger buffer."""
    reader = FrameReader(max_size=1 << 21)
    reader.feed((1 << 20).to_bytes(4, "big") + bytes(1 << 20) + (500_000).to_bytes(4, "big") + bytes(1000))
    assert reader.next_frame() == bytes(1 << 20)
    assert len(reader.get_buffer()) == 500_000 - 1000


def test_frames_of_about_a_megabyte_are_received_into_themselves():
    """As the Java producer sends them: each a little larger or smaller than the last,
    received as from a socket with plenty queued (every read fills the room lent). Each large
    frame is the very bytearray its body was received into (no copy of the megabyte), and the
    small frames between them keep to the one shared buffer."""
    sizes = [1_000_000, 10, 1_040_000, 990_000, 1_048_700, 20, 1_030_000, 1_048_700, 999_999]
    frames = [bytes([i]) * size for i, size in enumerate(sizes)]
    stream = b"".join(len(f).to_bytes(4, "big") + f for f in frames)
    reader = FrameReader(max_size=1 << 21)
    received, lent, position = [], [], 0
    while position < len(stream):
        room = reader.get_buffer()
        lent.append(room.obj)
        count = min(len(room), len(stream) - position)
        room[:count] = stream[position : position + count]
        reader.buffer_updated(count)
        received += _drain(reader)
        position += count
    assert received == frames
    assert all(any(frame is buffer for buffer in lent) for frame in received if len(frame) > 100)
    shared = {id(buffer) for buffer in lent} - {id(frame) for frame in received}
    assert len(shared) == 1


def test_a_large_frame_complete_with_the_next_frame_behind_it():
    """Bytes after a large frame go to the shared buffer, behind it: frames come out in order
    whether they are taken at once or only after more arrived."""
    big, small = bytes(range(256)) * 400, b"next"
    reader = FrameReader(max_size=1 << 20)
    reader.feed(len(big).to_bytes(4, "big") + big + len(small).to_bytes(4, "big") + small)
    assert reader.buffered == 4 + len(big) + 4 + len(small)
    assert reader.has_frame()
    assert _drain(reader) == [big, small]
    assert reader.buffered == 0


def test_each_frame_is_a_buffer_of_its_own():
    """The log writes a produced batch's offsets into the request's frame: writing into one
    frame changes no other, nor what the reader receives next."""
    reader = FrameReader(max_size=100)
    reader.feed(STREAM)
    first, second, third = _drain(reader)
    first[0:3] = b"xyz"
    assert isinstance(first, bytearray) and (second, third) == (b"", b"defgh")
    reader.feed(STREAM)
    assert _drain(reader) == FRAMES
