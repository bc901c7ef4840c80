"""Kafka Connect 4.4 in distributed mode (compat/connect.py) on Ottla and on the reference Kafka 4.4.

Two workers, a counter source and a recording sink; the source's worker is SIGKILLed mid-stream.
The same on both brokers: a problem on Ottla only is an Ottla bug. About 40 s per broker.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from compat import connect
from tests.integration.conftest import java_module_bootstrap

pytestmark = pytest.mark.slow


@pytest.fixture
def bootstrap(request: pytest.FixtureRequest) -> str:
    """The broker named by the test's parameter, once the worker and connectors are built."""
    return java_module_bootstrap(request, "connect")


@pytest.mark.parametrize("bootstrap", ["ottla", "kafka"], indirect=True)
def test_exactly_once_pipeline_survives_a_worker_sigkill(bootstrap: str, tmp_path: Path) -> None:
    """Internal topics compacted; the survivor takes over; every number once in the topic, all in the sink."""
    assert connect.pipeline(bootstrap, tmp_path) == []
