"""Fixtures for the compatibility matrix: a real `ottla serve` subprocess and installed clients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from compat.clients import Client, NotInstalled
from compat.harness import OttlaBroker
from unavailable import unavailable


def java_module_bootstrap(request: pytest.FixtureRequest, module: str) -> str:
    """The broker the test's parameter names ("ottla" or "kafka"), once compat/java/<module>
    is built (`unavailable` otherwise)."""
    from compat import streams

    if not streams.module_built(module):
        unavailable(f"compat/java/{module} is not built: run `python -m compat.install` (needs mvn)")
    if request.param == "ottla":
        return str(request.getfixturevalue("ottla_serve").bootstrap)
    return str(request.getfixturevalue("reference_kafka"))


@pytest.fixture
def compat_client(request: pytest.FixtureRequest) -> Client:
    """The client named by indirect parametrization, if it can run here.

    A missing client fails under CI=true (a broken install must not pass as green) and is
    skipped, with the reason, elsewhere.
    """
    client: Client = request.param
    try:
        client.version()
    except NotInstalled as exc:
        unavailable(f"{client.name} is not installed: {exc}")
    return client


@pytest.fixture
def ottla_serve(tmp_path: Path) -> Iterator[OttlaBroker]:
    """A fresh `python -m ottla serve` on a free port with its own data dir, stopped by SIGTERM.

    It logs every request (debug level), so a failure can name the requests and versions sent.
    """
    with OttlaBroker(tmp_path / "ottla", log_level="debug") as broker:
        yield broker


@pytest.fixture(scope="session")
def reference_kafka() -> Iterator[str]:
    """One reference Apache Kafka for the session (it takes seconds to start); its bootstrap.

    Tests on it use names no other test uses. Not fetched: fails under CI=true, skips elsewhere.
    """
    from compat import kafka

    if not kafka.is_fetched():
        unavailable(f"reference Kafka {kafka.KAFKA_VERSION} not fetched: run `python -m compat.kafka --fetch`")
    with kafka.ReferenceKafka() as broker:
        yield broker.bootstrap_servers
