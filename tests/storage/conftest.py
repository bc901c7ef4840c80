"""Storage fixtures: every behavioural test runs against the disk and the in-memory engine."""

from __future__ import annotations

import pathlib
import struct
from collections.abc import Iterator

import pytest

from ottla.storage import FileRegion, ReadResult, Storage
from ottla.wire.records import Record, build_batch, scan_batches


@pytest.fixture(params=["disk", "memory"])
def storage(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Storage]:
    opened = Storage.open(tmp_path / "data" if request.param == "disk" else None)
    yield opened
    opened.close()


def batch(count: int = 1, value_size: int = 10, timestamp: int = 1000, key: bytes | None = b"k") -> bytes:
    """A client-style batch of `count` records (offsets 0..count-1, as producers send)."""
    return build_batch([Record(i, timestamp + i, key, b"x" * value_size) for i in range(count)])


def read_bytes(result: ReadResult) -> bytes:
    return b"".join(chunk.read() if isinstance(chunk, FileRegion) else bytes(chunk) for chunk in result.chunks)


def read_base_offsets(result: ReadResult) -> list[int]:
    data = read_bytes(result)
    headers = [header for header, _ in scan_batches(data)]
    assert sum(header.size for header in headers) == len(data) == result.size, "reads return whole batches only"
    return [header.base_offset for header in headers]


def crc32c_reference(data: bytes) -> int:
    """Bit-by-bit CRC-32C (Castagnoli, reflected 0x82F63B78), independent of the code under test."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def hand_batch(base_offset: int, partition_leader_epoch: int, timestamps: list[int], value: bytes = b"ab") -> bytes:
    """A RecordBatch v2 written field by field from Kafka's format spec: records with a
    null key, `value`, no headers; CRC-32C over attributes..end from the reference."""
    records = b""
    for delta, timestamp in enumerate(timestamps):
        body = bytes([0, zigzag(timestamp - timestamps[0]), zigzag(delta), zigzag(-1), zigzag(len(value))]) + value + b"\x00"
        records += bytes([zigzag(len(body))]) + body
    after_crc = struct.pack(
        ">hiqqqhii", 0, len(timestamps) - 1, timestamps[0], max(timestamps), -1, -1, -1, len(timestamps)
    ) + records
    return (
        struct.pack(">qiib", base_offset, 4 + 1 + 4 + len(after_crc), partition_leader_epoch, 2)
        + struct.pack(">I", crc32c_reference(after_crc))
        + after_crc
    )


def zigzag(value: int) -> int:
    """One-byte zigzag varint (the fixtures keep every field below 64)."""
    encoded = (value << 1) ^ (value >> 63)
    assert encoded < 0x80
    return encoded
