"""pytest fixtures for testing against Ottla, registered through the `pytest11` entry point,
so installing `ottla` is enough:

    def test_round_trip(ottla_bootstrap):
        KafkaProducer(bootstrap_servers=ottla_bootstrap).send("t", b"v").get(timeout=10)

`ottla_broker` is one in-memory broker per session, `ottla_broker_fn` a fresh one per
test. Mark a test `@pytest.mark.ottla_disk` (or run pytest with `--ottla-disk`) for a
broker that writes its log to a temporary directory instead. The mark applies to the
per-test fixtures: the session broker starts once, so only `--ottla-disk` moves it to disk.

`ottla_cluster` is a fresh cluster of three nodes per test (node ids 1-3, in racks a, b, c),
for clients facing leader moves and outages:

    def test_survives_leader_loss(ottla_cluster):
        ottla_cluster.create_topic("t", replication_factor=3, min_insync_replicas=2)
        ottla_cluster.stop_node(ottla_cluster.leader_of("t", 0))
        KafkaProducer(bootstrap_servers=ottla_cluster.bootstrap_servers, acks="all").send("t", b"v").get(timeout=30)

`ottla_faults` are the session broker's faults on demand, removed when the test ends:

    def test_retries(ottla_bootstrap, ottla_faults):
        fault = ottla_faults.add(api="produce", error="NOT_LEADER_OR_FOLLOWER", count=3)
        KafkaProducer(bootstrap_servers=ottla_bootstrap).send("t", b"v").get(timeout=10)
        assert fault.fired == 3
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import pytest

# The broker is imported when a fixture starts one: pytest loads this plugin in every run of
# every project where Ottla is installed, and most of those never start a broker.
if TYPE_CHECKING:
    from ottla.testing import Faults, ThreadedBroker


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--ottla-disk", action="store_true", help="Ottla fixtures keep their log on disk in a temporary directory")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ottla_disk: the Ottla broker of this test (not the session's) writes to a temporary directory")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Warn of an `ottla_disk` mark that cannot act: on a test that uses the session broker,
    started once for every test before any mark is seen."""
    if config.getoption("--ottla-disk"):
        return
    for item in items:
        if item.get_closest_marker("ottla_disk") is not None and "ottla_broker" in getattr(item, "fixturenames", ()):
            item.warn(
                pytest.PytestWarning(
                    "ottla_disk does not move the session broker (ottla_broker, ottla_bootstrap, ottla_faults) to disk: "
                    "use ottla_broker_fn, or run pytest --ottla-disk"
                )
            )


def _data_dir(request: pytest.FixtureRequest, factory: pytest.TempPathFactory):
    on_disk = request.config.getoption("--ottla-disk") or request.node.get_closest_marker("ottla_disk") is not None
    return factory.mktemp("ottla-data") if on_disk else None


@pytest.fixture(scope="session")
def ottla_broker(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedBroker]:
    """One broker for the whole session (in memory unless --ottla-disk)."""
    from ottla.testing import running_broker

    with running_broker(data_dir=_data_dir(request, tmp_path_factory), group_initial_rebalance_delay_ms=0) as broker:
        yield broker


@pytest.fixture
def ottla_broker_fn(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedBroker]:
    """A fresh broker for one test (in memory unless marked ottla_disk or --ottla-disk)."""
    from ottla.testing import running_broker

    with running_broker(data_dir=_data_dir(request, tmp_path_factory), group_initial_rebalance_delay_ms=0) as broker:
        yield broker


@pytest.fixture
def ottla_cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedBroker]:
    """A fresh cluster of three nodes in racks a, b, c for one test (in memory unless ottla_disk)."""
    from ottla.testing import running_broker

    with running_broker(
        data_dir=_data_dir(request, tmp_path_factory), group_initial_rebalance_delay_ms=0, nodes=3, racks=("a", "b", "c")
    ) as cluster:
        yield cluster


@pytest.fixture
def ottla_bootstrap(ottla_broker: ThreadedBroker) -> str:
    """`host:port` of the session's broker, for `bootstrap_servers`."""
    return ottla_broker.bootstrap_servers


@pytest.fixture
def ottla_faults(ottla_broker: ThreadedBroker) -> Iterator[Faults]:
    """The session broker's faults (`Faults.add`); every fault set is removed after the test."""
    faults = ottla_broker.faults
    yield faults
    faults.clear()
