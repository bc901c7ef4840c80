"""The compat matrix's cluster columns under pytest: every client against a 3-node Ottla
(`compat.harness.OttlaCluster`, one per module: each scenario makes its own topic, and the one
that stops a leader starts it again) reading partitions led by different nodes, riding out its
leader's stop mid-produce, retrying through faults set with the fault API, and running an
idempotent producer and a group member through a leader's stop, the group coordinator's stop
and a node's isolation. Below it, the harness's reading of a cluster's ready line, the
matrix's handling of a broker without a cluster and the group read's rule are pinned without
sockets.

`python -m compat --scenario cluster-leaders` runs the same and writes them into REPORT.md; the
reference Kafka runs one node there, so its rows say n/a. `python -m compat
--against-kafka-cluster` runs them against three Kafka nodes as well; of that, only the two
cheap scenarios for the Java client and confluent-kafka run here, on one Kafka cluster (the
outages row takes over a minute a client on Kafka, where a stop is a controlled shutdown that
waits for the JVM to exit, an isolated node is fenced after 9 s, and a restart is a JVM's start). What that cluster is made of and which scenario it cannot run are
pinned without starting it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from compat.clients import CLIENTS, Client, NotInstalled
from compat.harness import CLUSTER_SETTINGS, READY_RE, OttlaCluster
from compat.matrix import FAIL, NO_CLUSTER, NOT_APPLICABLE, PASS, run_matrix, run_scenario
from compat.scenarios import CLUSTER_SCENARIOS, SCENARIOS, not_applicable
from unavailable import unavailable

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


# The Kafka cells the suite can afford: one cluster start (15-50 s here) and about a minute of cells.
KAFKA_CLIENTS = ("java", "confluent-kafka")
KAFKA_SCENARIOS = ("cluster-leaders", "cluster-leader-stop")


@pytest.mark.slow
@pytest.mark.external
def test_the_cheap_cluster_cells_pass_on_three_kafka_brokers(tmp_path: Path) -> None:
    """The scenarios' rules hold for Kafka 4.4 itself, the proof that what they ask of Ottla is
    Kafka's behaviour, and the Kafka side of `--against-kafka-cluster` keeps working."""
    from compat import kafka

    if not kafka.is_fetched():
        unavailable(f"reference Kafka {kafka.KAFKA_VERSION} is not fetched (python -m compat.kafka --fetch)")
    clients = [CLIENTS[name] for name in KAFKA_CLIENTS]
    for client in clients:
        try:
            client.version()
        except NotInstalled as exc:
            unavailable(f"{client.name} is not installed: {exc}")
    with kafka.ReferenceKafkaCluster(tmp_path / "kafka") as cluster:
        results = [run_scenario(client, scenario, cluster) for client in clients for scenario in KAFKA_SCENARIOS]
        failed = [f"{r.client} {r.scenario}: {r.reason}\n{r.detail}" for r in results if r.status != PASS]
        assert not failed, "\n\n".join(failed) + "\n\n" + cluster.log_tail()


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


def test_the_kafka_cluster_is_three_voters_with_ottlas_replication_defaults(tmp_path: Path) -> None:
    from compat import kafka

    if not kafka.is_fetched():
        unavailable(f"reference Kafka {kafka.KAFKA_VERSION} is not fetched (python -m compat.kafka --fetch)")
    cluster = kafka.ReferenceKafkaCluster(tmp_path)
    props = {node: dict(line.split("=", 1) for line in (tmp_path / f"node-{node}" / "server.properties").read_text().splitlines())
             for node in cluster.node_ids}
    voters = {f"{node}@127.0.0.1:{cluster.controller_ports[node]}" for node in cluster.node_ids}
    assert cluster.node_ids == [1, 2, 3]
    assert cluster.bootstrap == ",".join(f"127.0.0.1:{cluster.ports[node]}" for node in cluster.node_ids)
    assert len({*cluster.ports.values(), *cluster.controller_ports.values()}) == 6
    for node, settings in props.items():
        assert settings["node.id"] == str(node) and settings["process.roles"] == "broker,controller"
        assert set(settings["controller.quorum.voters"].split(",")) == voters
        for name, value in CLUSTER_SETTINGS.items():
            assert settings[name] == value
        assert settings["offsets.topic.replication.factor"] == settings["transaction.state.log.replication.factor"] == "3"
    assert len({settings["log.dirs"] for settings in props.values()}) == 3
    assert cluster.node_states() == {1: "stopped", 2: "stopped", 3: "stopped"}


def test_a_matrix_run_keeps_the_kafka_cluster_comparison() -> None:
    from compat.__main__ import CLUSTER_SECTION
    from compat.report_sections import RUNNER_SECTIONS

    assert CLUSTER_SECTION in RUNNER_SECTIONS


def test_the_fault_scenarios_say_kafka_has_no_fault_api(tmp_path: Path) -> None:
    from compat import kafka, scenarios

    if not kafka.is_fetched():
        unavailable(f"reference Kafka {kafka.KAFKA_VERSION} is not fetched (python -m compat.kafka --fetch)")
    for scenario, why in scenarios.NEEDS_FAULT_API.items():
        with pytest.raises(scenarios.ScenarioFailure, match="no fault API"):
            scenarios.SCENARIOS[scenario](CLIENTS["kafka-python"], kafka.ReferenceKafkaCluster(tmp_path / scenario))


def test_without_a_cluster_the_cluster_columns_are_not_applicable(tmp_path: Path) -> None:
    @contextmanager
    def no_broker(_: Path) -> Iterator[None]:
        raise AssertionError("a cluster scenario needs no single broker")
        yield

    client = CLIENTS["kafka-python"]
    versions, results = run_matrix([client], sorted(CLUSTER_SCENARIOS), no_broker, tmp_path)  # type: ignore[arg-type]
    assert [(r.status, r.reason) for r in results] == [(NOT_APPLICABLE, NO_CLUSTER)] * len(CLUSTER_SCENARIOS)


class _FakeCluster(OttlaCluster):
    """A cluster that is never started: faults are numbered and, once set, have all fired."""

    def add_fault(self, **fault: object) -> int:
        self.faults_set = getattr(self, "faults_set", 0) + 1
        return self.faults_set

    def clear_faults(self) -> list[dict[str, object]]:
        return []

    @property
    def bootstrap(self) -> str:
        return "127.0.0.1:1"


class _Reordering(Client):
    """A client whose produce acks k0 after k3 on partition 0, where a retried batch landed."""

    def run(self, *args: object, **kwargs: object) -> dict[str, object]:
        order = [3, 0] + [i for i in range(1000) if i not in (0, 3)]
        placed = {i: [f"k{i}", i % 3, 0] for i in range(1000)}
        for partition in range(3):
            for offset, i in enumerate(i for i in order if i % 3 == partition):
                placed[i][2] = offset
        if args[2] == "produce":
            return {"produced": 1000, "delivered": list(placed.values())}
        records = sorted([p, o, k, "v" + k[1:]] for k, p, o in placed.values())
        return {"partitions": 3, "records": records}


@pytest.mark.parametrize(("name", "passes"), [("confluent-kafka", True), ("kafka-python", False)])
def test_a_retry_may_reorder_only_a_producer_without_idempotence(name: str, passes: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from compat import scenarios

    monkeypatch.setattr(scenarios, "_replicated_topic", lambda *_: ("t", [1, 2, 3]))
    client = _Reordering(name, (), lambda: "0")
    if passes:
        assert "a retry reordered records (partition 0): not idempotent" in (scenarios.cluster_retriable_faults(client, _FakeCluster(tmp_path)) or "")
    else:
        with pytest.raises(scenarios.ScenarioFailure, match="partition 0: records out of send order"):
            scenarios.cluster_retriable_faults(client, _FakeCluster(tmp_path))


def _batches(*offsets: list[int]) -> tuple[list[list[object]], list[int]]:
    """A member's reported records of partition 0 in batches of the given offsets, and where each began."""
    records: list[list[object]] = []
    starts = []
    for batch in offsets:
        starts.append(len(records))
        records += [[0, o, f"k{o}", f"v{o}"] for o in batch]
    return records, starts


def test_a_group_member_may_read_again_only_its_last_batch_and_only_after_a_rebalance() -> None:
    from compat.scenarios import check_group_reads

    records, starts = _batches([0, 1], [2, 3], [4, 5])
    assert check_group_reads(records, starts, [0], 6) == ([], 0)
    # Rebalanced before the third batch, resuming from the start of the second: its commit may not have landed.
    records, starts = _batches([0, 1], [2, 3], [2, 3, 4, 5])
    assert check_group_reads(records, starts, [0, 4], 6) == ([], 2)
    problems, _ = check_group_reads(records, starts, [0], 6)
    assert problems == ["offset 2 read again without a rebalance (batch at position 4)"]
    # Back before the last batch it reported: the group lost an offset it had committed.
    records, starts = _batches([0, 1], [2, 3], [0, 1, 2, 3, 4, 5])
    problems, _ = check_group_reads(records, starts, [0, 4], 6)
    assert problems == ["after a rebalance the read went back to offset 0, before the last batch it reported (2): a committed offset was lost"]
    records, starts = _batches([0, 1], [3, 4])
    assert check_group_reads(records, starts, [0], 5)[0] == ["offsets 2..2 skipped (batch at position 2)"]
    records, starts = _batches([0, 1])
    assert check_group_reads(records, starts, [0], 4)[0] == ["offsets 2..3 never read"]
    records, starts = _batches([0, 1])
    records[1][2] = "k7"
    assert check_group_reads(records, starts, [0], 2)[0] == ["1 records not what was acknowledged at their offset (e.g. [[0, 1, 'k7', 'v1']])"]
