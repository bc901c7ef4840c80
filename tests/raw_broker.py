"""The `connection` fixture many request-shape tests share: a raw connection (Ottla's codec,
dict bodies) to a fresh in-memory broker of default settings, one per test. A test module
imports it by name to use it; modules needing other broker settings keep a fixture of their own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from compat.differential import _Connection
from ottla.testing import running_broker


@pytest.fixture
def connection() -> Iterator[_Connection]:
    with running_broker(data_dir=None) as broker:
        opened = _Connection(broker.bootstrap_servers)
        yield opened
        opened.close()
