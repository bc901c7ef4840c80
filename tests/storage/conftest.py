"""Storage fixtures: every behavioural test runs against the disk and the in-memory engine."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from storage import FileRegion, ReadResult, Storage
from wire.records import Record, build_batch, scan_batches


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
