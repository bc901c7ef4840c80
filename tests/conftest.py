"""Shared fixtures. `tests/` is on sys.path (pytest puts a rootdir conftest's folder there),
so test modules import helpers such as `kafka_wire` directly."""

from __future__ import annotations

import pytest

from server.testing import running_broker


@pytest.fixture(scope="module")
def memory_broker():
    """One in-memory broker on a free port, shared by a test module."""
    with running_broker(data_dir=None, num_partitions=1) as broker:
        yield broker


@pytest.fixture
def disk_broker(tmp_path):
    """A fresh broker writing to a temporary directory."""
    with running_broker(data_dir=tmp_path / "data") as broker:
        yield broker
