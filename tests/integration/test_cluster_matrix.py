"""The compat matrix's cluster columns under pytest: every client against a 3-node Ottla
(`compat.harness.OttlaCluster`, one per module: each scenario makes its own topic, and the one
that stops a leader starts it again) reading partitions led by different nodes, riding out its
leader's stop mid-produce, and retrying through faults set with the fault API. Below it, the
harness's reading of a cluster's ready line and the matrix's handling of a broker without a
cluster are pinned without sockets.

`python -m compat --scenario cluster-leaders` runs the same and writes them into REPORT.md; the
reference Kafka runs one node there, so its rows say n/a."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from compat.clients import CLIENTS, Client
from compat.harness import READY_RE, OttlaCluster
from compat.matrix import FAIL, NO_CLUSTER, NOT_APPLICABLE, run_matrix, run_scenario
from compat.scenarios import CLUSTER_SCENARIOS, SCENARIOS, not_applicable

RUNS = [(client, scenario) for scenario in SCENARIOS if scenario in CLUSTER_SCENARIOS
        for client in CLIENTS.values() if not_applicable(client, scenario) is None]


@pytest.fixture(scope="module")
def cluster_serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OttlaCluster]:
    with OttlaCluster(tmp_path_factory.mktemp("ottla-cluster"), log_level="debug") as cluster:
        yield cluster


@pytest.mark.external
@pytest.mark.parametrize(("compat_client", "scenario"), RUNS, ids=[f"{c.name}-{s}" for c, s in RUNS], indirect=["compat_client"])
def test_client(compat_client: Client, scenario: str, cluster_serve: OttlaCluster) -> None:
    result = run_scenario(compat_client, scenario, cluster_serve)
    if result.status == FAIL:
        pytest.fail(f"{result.reason}\n\n{result.detail}\n\n{cluster_serve.log_tail()}", pytrace=False)


def test_a_clusters_ready_line_gives_every_node_and_the_http_channel() -> None:
    line = (b"ottla ready bootstrap=127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094 data=/tmp/d "
            b"http=http://127.0.0.1:8080")
    match = READY_RE.search(line)
    assert match is not None
    assert (match["host"], match["port"]) == (b"127.0.0.1", b"9092")
    assert match["more_nodes"] == b",127.0.0.1:9093,127.0.0.1:9094"
    assert match["http"] == b"http://127.0.0.1:8080"
    single = READY_RE.search(b"ottla ready bootstrap=127.0.0.1:9092 data=/tmp/d")
    assert single is not None and single["more_nodes"] == b"" and single["http"] is None


def test_without_a_cluster_the_cluster_columns_are_not_applicable(tmp_path: Path) -> None:
    @contextmanager
    def no_broker(_: Path) -> Iterator[None]:
        raise AssertionError("a cluster scenario needs no single broker")
        yield

    client = CLIENTS["kafka-python"]
    versions, results = run_matrix([client], sorted(CLUSTER_SCENARIOS), no_broker, tmp_path)  # type: ignore[arg-type]
    assert [(r.status, r.reason) for r in results] == [(NOT_APPLICABLE, NO_CLUSTER)] * len(CLUSTER_SCENARIOS)
