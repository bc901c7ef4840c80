"""Kafka's four batch codecs, as its clients write and read them.

Every codec goes through cramjam. Three fix-ups keep us readable by, and able to read,
every client: snappy in the xerial framing Kafka's Java producer writes; LZ4 frames in
the independent-block layout KafkaLZ4BlockOutputStream writes; and the wrong LZ4 header
checksum of magic 0 messages (KIP-57). Inflating is bounded, so that a small request
cannot claim gigabytes.
"""

from __future__ import annotations

import struct
from enum import IntEnum

import cramjam

from ottla.wire.errors import ErrorCode, KafkaError

Buffer = bytes | bytearray | memoryview


class Compression(IntEnum):
    """The codec in bits 0-2 of a batch's (or legacy message's) attributes."""

    NONE = 0
    GZIP = 1
    SNAPPY = 2
    LZ4 = 3
    ZSTD = 4


_XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER_SIZE = 16
_XERIAL_BLOCK_LENGTH = struct.Struct(">i")


def _snappy_decompress(data: memoryview) -> bytes:
    """Raw snappy, or the xerial-snappy framing Kafka's Java producer writes
    (SnappyOutputStream: 16-byte header, then int32-length-prefixed raw blocks)."""
    if data[: len(_XERIAL_MAGIC)] != _XERIAL_MAGIC:
        return bytes(cramjam.snappy.decompress_raw(data))
    out = bytearray()
    position = _XERIAL_HEADER_SIZE
    while position < len(data):
        (length,) = _XERIAL_BLOCK_LENGTH.unpack_from(data, position)
        position += 4
        out += cramjam.snappy.decompress_raw(data[position : position + length])
        position += length
    return bytes(out)


# The most a batch body may inflate to. Kafka streams records out of a compressed batch;
# we inflate whole bodies, so a bound keeps a small request (zstd reaches ~30,000:1) from
# exhausting memory. The buffer starts small and grows only while the codec says it is
# too small, so a corrupt body costs one small attempt.
MAX_DECOMPRESSED_BYTES = 256 * 1024 * 1024
_FIRST_DECOMPRESS_GUESS = 1024 * 1024
_INTO = {
    Compression.GZIP: cramjam.gzip.decompress_into,
    Compression.LZ4: cramjam.lz4.decompress_into,
    Compression.ZSTD: cramjam.zstd.decompress_into,
}


def _corrupt(message: str) -> KafkaError:
    return KafkaError(ErrorCode.CORRUPT_MESSAGE, message)


def _output_too_small(error: Exception) -> bool:
    text = str(error)
    return "failed to write whole buffer" in text or "smaller than required" in text


def _inflate_bounded(codec: Compression, data: memoryview, limit: int) -> memoryview:
    size = min(limit, max(_FIRST_DECOMPRESS_GUESS, 8 * len(data)))
    while True:
        out = bytearray(size)
        try:
            written = _INTO[codec](data, out)
        except cramjam.DecompressionError as error:
            if not _output_too_small(error):
                raise
            if size >= limit:
                raise _corrupt(f"{codec.name} batch inflates past {limit} bytes") from error
            size = min(limit, size * 4)
            continue
        return memoryview(out)[:written]


def decompress(codec: Compression, data: memoryview, limit: int = MAX_DECOMPRESSED_BYTES) -> memoryview:
    """Inflate a batch body; a body the codec cannot read, or one that inflates past
    `limit`, is CORRUPT_MESSAGE."""
    try:
        if codec is Compression.SNAPPY:
            # Snappy cannot expand more than about 21:1, so a frame bounds its output.
            return memoryview(_snappy_decompress(data))
        if codec in _INTO:
            return _inflate_bounded(codec, data, limit)
    except (cramjam.DecompressionError, struct.error, ValueError) as error:
        raise _corrupt(f"cannot decompress {codec.name} batch: {error}") from error
    return data


def repair_lz4_header_checksum(frame: memoryview) -> bytes:
    """Kafka before 0.10 computed the LZ4 frame's header checksum over the magic number
    too (KIP-57), so magic 0 messages carry a wrong one, which Kafka's reader ignores
    for them. Put in the right one: xxh32 of the descriptor, second byte."""
    if len(frame) < 7 or frame[:4] != _LZ4_FRAME_HEADER[:4]:
        return bytes(frame)
    flags = frame[4]
    end = 6 + (8 if flags & 0x08 else 0) + (4 if flags & 0x01 else 0)  # content size, dictionary id
    if len(frame) <= end:
        return bytes(frame)
    repaired = bytearray(frame)
    repaired[end] = (_xxh32(bytes(frame[4:end])) >> 8) & 0xFF
    return bytes(repaired)


_XXH_PRIME1, _XXH_PRIME2, _XXH_PRIME3, _XXH_PRIME4, _XXH_PRIME5 = 2654435761, 2246822519, 3266489917, 668265263, 374761393
_U32 = 0xFFFFFFFF


def _xxh32(data: bytes) -> int:
    """XXH32 with seed 0 for inputs under 16 bytes (an LZ4 frame descriptor is at most 14)."""

    def rotate(value: int, bits: int) -> int:
        return ((value << bits) | (value >> (32 - bits))) & _U32

    state = (_XXH_PRIME5 + len(data)) & _U32
    position = 0
    while position + 4 <= len(data):
        state = (state + int.from_bytes(data[position : position + 4], "little") * _XXH_PRIME3) & _U32
        state = (rotate(state, 17) * _XXH_PRIME4) & _U32
        position += 4
    for byte in data[position:]:
        state = (state + byte * _XXH_PRIME5) & _U32
        state = (rotate(state, 11) * _XXH_PRIME1) & _U32
    state ^= state >> 15
    state = (state * _XXH_PRIME2) & _U32
    state ^= state >> 13
    state = (state * _XXH_PRIME3) & _U32
    return state ^ (state >> 16)


# The LZ4 frame header Kafka's KafkaLZ4BlockOutputStream writes: magic, FLG 0x60
# (version 1, independent blocks, no checksums, no content size), BD 0x40 (64 KiB
# blocks) and their header checksum. Its reader decompresses each block on its own,
# so linked blocks (what a default LZ4 frame encoder writes) would not survive it.
_LZ4_FRAME_HEADER = bytes.fromhex("04224d18604082")
_LZ4_BLOCK_SIZE = 64 * 1024
_LZ4_UNCOMPRESSED_BLOCK = 0x80000000
_LZ4_BLOCK_LENGTH = struct.Struct("<I")


def _lz4_frame(data: Buffer) -> bytes:
    view = memoryview(data)
    out = bytearray(_LZ4_FRAME_HEADER)
    for start in range(0, len(view), _LZ4_BLOCK_SIZE):
        chunk = view[start : start + _LZ4_BLOCK_SIZE]
        block = bytes(cramjam.lz4.compress_block(chunk, store_size=False))
        if len(block) < len(chunk):
            out += _LZ4_BLOCK_LENGTH.pack(len(block)) + block
        else:
            out += _LZ4_BLOCK_LENGTH.pack(len(chunk) | _LZ4_UNCOMPRESSED_BLOCK) + chunk
    out += _LZ4_BLOCK_LENGTH.pack(0)  # end mark
    return bytes(out)


def compress(codec: Compression, data: Buffer) -> bytes:
    if codec is Compression.GZIP:
        return bytes(cramjam.gzip.compress(data))
    if codec is Compression.SNAPPY:
        # xerial framing, as Kafka's Java producer writes it, so every consumer reads it.
        body = cramjam.snappy.compress_raw(data)
        return b"".join(
            (_XERIAL_MAGIC, struct.pack(">ii", 1, 1), _XERIAL_BLOCK_LENGTH.pack(len(body)), bytes(body))
        )
    if codec is Compression.LZ4:
        return _lz4_frame(data)
    if codec is Compression.ZSTD:
        return bytes(cramjam.zstd.compress(data))
    return bytes(data)
