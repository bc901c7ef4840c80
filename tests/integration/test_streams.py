"""Kafka Streams 4.4 applications (compat/streams.py) on Ottla and on the reference Kafka 4.4.

Each scenario runs the same on both brokers: a problem on Ottla only is an Ottla bug. About
10 s (WordCount) and 60-80 s (exactly-once, most of it waiting for the log cleaner) per broker.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from compat import streams
from tests.integration.conftest import java_module_bootstrap, unavailable

pytestmark = pytest.mark.slow


@pytest.fixture
def bootstrap(request: pytest.FixtureRequest) -> str:
    """The broker named by the test's parameter, once the applications are built."""
    return java_module_bootstrap(request, "streams")


@pytest.fixture(scope="module")
def short_session_kafka() -> Iterator[str]:
    """A reference Kafka whose streams groups expire a silent member in 6 s; its bootstrap.
    Not the session's: the floor of the session timeout is a static broker setting."""
    from compat import kafka

    if not kafka.is_fetched():
        unavailable(f"reference Kafka {kafka.KAFKA_VERSION} not fetched: run `python -m compat.kafka --fetch`")
    with kafka.ReferenceKafka(config=streams.STREAMS_BROKER_SETTINGS) as broker:
        yield broker.bootstrap_servers


@pytest.fixture
def streams_bootstrap(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The broker named by the test's parameter, with STREAMS_BROKER_SETTINGS."""
    from compat.harness import OttlaBroker

    if not streams.module_built("streams"):
        pytest.skip("compat/java/streams is not built: run `python -m compat.install` (needs mvn)")
    if request.param == "kafka":
        yield str(request.getfixturevalue("short_session_kafka"))
        return
    with OttlaBroker(tmp_path / "ottla", log_level="debug", settings=streams.STREAMS_BROKER_SETTINGS) as broker:
        yield broker.bootstrap


@pytest.mark.parametrize("bootstrap", ["ottla", "kafka"], indirect=True)
def test_wordcount_counts_are_exact(bootstrap: str, tmp_path: Path) -> None:
    assert streams.wordcount(bootstrap, tmp_path, f"wc-{uuid.uuid4().hex[:8]}") == []


@pytest.mark.parametrize("bootstrap", ["ottla", "kafka"], indirect=True)
def test_wordcount_in_a_streams_group_counts_exactly(bootstrap: str, tmp_path: Path) -> None:
    """group.protocol=streams (KIP-1071): the broker creates the repartition and changelog
    topics and assigns the tasks; Kafka 4.4 finalizes streams.version 1 by default."""
    assert streams.wordcount(bootstrap, tmp_path, f"wcs-{uuid.uuid4().hex[:8]}", group_protocol="streams") == []


@pytest.mark.parametrize("bootstrap", ["ottla", "kafka"], indirect=True)
def test_exactly_once_counts_survive_a_sigkill(bootstrap: str, tmp_path: Path) -> None:
    """Output exact after a SIGKILL, internal topics configured and compacted, reset works."""
    assert streams.exactly_once(bootstrap, tmp_path, f"eos-{uuid.uuid4().hex[:8]}") == []


@pytest.mark.parametrize("streams_bootstrap", ["ottla", "kafka"], indirect=True)
def test_exactly_once_in_a_streams_group_survives_a_sigkill(streams_bootstrap: str, tmp_path: Path) -> None:
    """The same with group.protocol=streams: the restarted instance is a new member, given the
    tasks once the killed member's session has expired."""
    assert streams.exactly_once(streams_bootstrap, tmp_path, f"eoss-{uuid.uuid4().hex[:8]}", group_protocol="streams") == []


@pytest.mark.parametrize("streams_bootstrap", ["ottla", "kafka"], indirect=True)
def test_a_streams_group_member_takes_over_a_killed_ones_tasks(streams_bootstrap: str, tmp_path: Path) -> None:
    """Two instances share the tasks; one is SIGKILLed and the other finishes the counts exactly."""
    assert streams.failover(streams_bootstrap, tmp_path, f"fo-{uuid.uuid4().hex[:8]}") == []
