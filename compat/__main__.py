"""`python -m compat`: run the client × scenario matrix, print it and write compat/REPORT.md.

Against Ottla it also runs Kafka's tools and the differential suite (compat.differential) and
adds both to the report. Exits 1 when any client or tool fails or a difference is unexplained; a client that is not installed is shown but does not fail the run
here (the pytest suite is stricter under CI=true). `--storage postgresql` runs the one-broker cells
on the PostgreSQL engine instead and writes REPORT.md's section of that name alone; with
`--brokers 3`, the produce/consume, group and transaction rows on three brokers over one database.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

from compat.clients import CLIENTS
from compat.harness import REPO_ROOT, OttlaBroker, OttlaCluster, Target
from compat.matrix import (
    FAIL, NO_POSTGRES_CLUSTER, NO_POSTGRES_CLUSTER_API, POSTGRES_CLUSTER_NODES, POSTGRES_CLUSTER_SCENARIOS, POSTGRES_CLUSTER_SECTION, POSTGRES_SECTION, Result, TargetFactory, format_text, git_revision, on_postgres, postgres_section,
    report, rerun_failures, run_matrix, table,
)
from compat.report_sections import carry_over
from compat.scenarios import SCENARIOS


class _KafkaTarget:
    """compat.kafka's ReferenceKafka seen as a Target; it keeps its ports across restart()."""

    def __init__(self, kafka: object) -> None:
        self._kafka = kafka

    @property
    def bootstrap(self) -> str:
        return str(self._kafka.bootstrap_servers)  # type: ignore[attr-defined]

    def restart(self) -> None:
        self._kafka.restart()  # type: ignore[attr-defined]

    # What compat.harness.secure needs to give it secured listeners.
    host = "127.0.0.1"

    @property
    def port(self) -> int:
        return int(self._kafka.port)  # type: ignore[attr-defined]

    @property
    def work_dir(self) -> Path:
        return Path(self._kafka.dir)  # type: ignore[attr-defined]

    def reconfigure(self, settings: dict[str, str]) -> None:
        self._kafka.reconfigure(settings)  # type: ignore[attr-defined]

    def log_tail(self, lines: int = 15) -> str:
        path: Path = self._kafka.log_file  # type: ignore[attr-defined]
        tail = "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        return f"Kafka log {path} (tail):\n{tail}"


@contextmanager
def _reference_kafka(work_dir: Path) -> Iterator[Target]:
    from compat.kafka import ReferenceKafka

    work_dir.mkdir(parents=True, exist_ok=True)
    with ReferenceKafka(work_dir) as kafka:
        yield _KafkaTarget(kafka)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compat", description=__doc__.splitlines()[0])
    parser.add_argument("--client", action="append", choices=list(CLIENTS), help="only these clients (repeatable)")
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS), help="only these scenarios")
    parser.add_argument("--broker", choices=["ottla", "kafka"], default="ottla",
                        help="run against Ottla (default) or the reference Apache Kafka from compat.kafka")
    parser.add_argument("--report", type=Path,
                        help="default compat/REPORT.md, or compat/REPORT-kafka.md with --broker kafka")
    parser.add_argument("--work-dir", type=Path, help="keep broker data and logs here (default: a new temp dir)")
    parser.add_argument("--no-reference", action="store_true",
                        help="skip Kafka's tools and the differential run against the reference Kafka")
    parser.add_argument("-v", "--verbose", action="store_true", help="print driver and broker output of failures")
    parser.add_argument("--storage", choices=["local", "postgresql"], default="local",
                        help="postgresql: run Ottla's brokers on the PostgreSQL engine over one private PostgreSQL "
                             f"(compat.postgres) and write REPORT.md's section {POSTGRES_SECTION!r} alone")
    parser.add_argument("--brokers", type=int, choices=[1, POSTGRES_CLUSTER_NODES], default=1,
                        help=f"with --storage postgresql: {POSTGRES_CLUSTER_NODES} brokers over the one database, one cluster "
                             "behind one bootstrap list, running the produce/consume, group and transaction scenarios "
                             f"(the default set) into REPORT.md's section {POSTGRES_CLUSTER_SECTION!r}")
    parser.add_argument("--against-kafka-cluster", action="store_true",
                        help="run the cluster scenarios against a 3-node Ottla and three reference Kafka nodes, and write "
                             f"the comparison into REPORT.md's section {CLUSTER_SECTION!r}")
    args = parser.parse_args(argv)
    if args.against_kafka_cluster:
        return _against_kafka_cluster(args, sys.argv[1:] if argv is None else argv)
    if args.storage == "postgresql":
        if args.broker != "ottla":
            parser.error("--storage postgresql runs Ottla's brokers")
        return _on_postgres(args, sys.argv[1:] if argv is None else argv)
    if args.brokers != 1:
        parser.error("--brokers is the PostgreSQL engine's (--storage postgresql); the local engine's cluster scenarios run on `ottla serve --nodes 3`")

    clients = [CLIENTS[name] for name in args.client or CLIENTS]
    scenarios = args.scenario or list(SCENARIOS)
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="ottla-compat-"))
    # A reference run must not overwrite Ottla's report.
    report_path = args.report or REPO_ROOT / "compat" / ("REPORT-kafka.md" if args.broker == "kafka" else "REPORT.md")
    new_target: TargetFactory
    new_cluster: TargetFactory | None = None
    if args.broker == "kafka":
        from compat.kafka import KAFKA_VERSION, fetch

        fetch()
        new_target, broker = _reference_kafka, f"Apache Kafka {KAFKA_VERSION} (reference)"
    else:
        # Debug level makes the broker log each request, so the report can list the versions used.
        new_target, broker = partial(OttlaBroker, log_level="debug"), f"Ottla {git_revision()}"
        new_cluster = partial(OttlaCluster, log_level="debug")

    print(f"compat matrix against {broker}; logs under {work_dir}", file=sys.stderr)
    versions, results = run_matrix(clients, scenarios, new_target, work_dir, _progress(args.verbose), new_cluster)
    print(format_text(table(versions, results, scenarios)))
    command = " ".join(["python -m compat", *(sys.argv[1:] if argv is None else argv)])
    text = report(versions, results, scenarios, broker, command)
    reference_ok = True
    if args.broker == "ottla" and not args.no_reference:
        section, reference_ok = _reference_sections()
        text += section
    report_path.write_text(carry_over(report_path, text))
    print(f"\nwrote {report_path}", file=sys.stderr)
    return 1 if any(r.status == FAIL for r in results) or not reference_ok else 0


CLUSTER_SECTION = "## Cluster row against three Kafka brokers"


def _progress(verbose: bool) -> Callable[[Result], None]:
    def show(result: Result) -> None:
        line = f"{result.client:<20} {result.scenario:<26} {result.seconds:5.1f}s {result.status}"
        print(line + (f": {result.reason}" if result.reason else ""), file=sys.stderr, flush=True)
        if verbose and result.status == FAIL and result.detail:
            print(result.detail, file=sys.stderr, flush=True)
    return show


def _on_postgres(args: argparse.Namespace, argv: list[str]) -> int:
    """The matrix's one-broker cells on the PostgreSQL engine (with `--brokers 3` its
    produce/consume, group and transaction cells on three brokers over the one database), one
    private PostgreSQL for all of them, each failed cell run once more alone; the result replaces
    REPORT.md's section for that many brokers and nothing else."""
    from compat.postgres import PrivatePostgres
    from compat.report_sections import replace_section

    clients = [CLIENTS[name] for name in args.client or CLIENTS]
    nodes = args.brokers
    scenarios = args.scenario or list(SCENARIOS if nodes == 1 else POSTGRES_CLUSTER_SCENARIOS)
    title = POSTGRES_SECTION if nodes == 1 else POSTGRES_CLUSTER_SECTION
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="ottla-compat-postgres-"))
    report_path = args.report or REPO_ROOT / "compat" / "REPORT.md"
    with PrivatePostgres() as pg:
        database = f"PostgreSQL {pg.bin_dir.parent.name}"
        print(f"compat matrix on the PostgreSQL engine, {nodes} broker(s) ({database} at {pg.url}); logs under {work_dir}", file=sys.stderr)
        new_target = on_postgres(pg.url, nodes, log_level="debug")
        no_cluster = NO_POSTGRES_CLUSTER if nodes == 1 else NO_POSTGRES_CLUSTER_API
        versions, results = run_matrix(clients, scenarios, new_target, work_dir, _progress(args.verbose), no_cluster=no_cluster)
        results, flaky = rerun_failures(results, new_target, work_dir, _progress(args.verbose))
    print(format_text(table(versions, results, scenarios)))
    command = " ".join(["python -m compat", *argv])
    section = postgres_section(versions, results, scenarios, f"Ottla {git_revision()}", database, command, flaky, nodes)
    replace_section(report_path, title, section)
    print(f"\nwrote {title!r} into {report_path}", file=sys.stderr)
    return 1 if any(r.status == FAIL for r in results) else 0


@contextmanager
def _shared(cluster: Target) -> Iterator[Target]:
    """One started Kafka cluster for every cell: each scenario makes its own topic and group,
    and a node it stops it starts again; three JVMs' start-up per cell would cost minutes."""
    yield cluster


def _against_kafka_cluster(args: argparse.Namespace, argv: list[str]) -> int:
    """Each cluster scenario that both can run, for each client, against a 3-node Ottla (a fresh
    one per cell, as the matrix runs it) and against one ReferenceKafkaCluster; the two columns
    side by side, printed and written into REPORT.md's cluster section."""
    from compat.kafka import KAFKA_VERSION, ReferenceKafkaCluster, fetch
    from compat.report_sections import replace_section
    from compat.scenarios import CLUSTER_SCENARIOS, NEEDS_FAULT_API

    clients = [CLIENTS[name] for name in args.client or CLIENTS]
    scenarios = [s for s in args.scenario or SCENARIOS if s in CLUSTER_SCENARIOS]
    both = [s for s in scenarios if s not in NEEDS_FAULT_API]
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="ottla-compat-cluster-"))

    def progress(broker: str) -> Callable[[Result], None]:
        def show(result: Result) -> None:
            print(f"{broker:<6} {result.client:<20} {result.scenario:<26} {result.seconds:5.1f}s {result.status}"
                  + (f": {result.reason}" if result.reason else ""), file=sys.stderr, flush=True)
            if args.verbose and result.status == FAIL and result.detail:
                print(result.detail, file=sys.stderr, flush=True)
        return show

    print(f"cluster scenarios against Ottla and Kafka {KAFKA_VERSION}; logs under {work_dir}", file=sys.stderr)
    ottla_cluster = partial(OttlaCluster, log_level="debug")
    _, ottla = run_matrix(clients, scenarios, ottla_cluster, work_dir / "ottla", progress("ottla"), ottla_cluster)
    fetch()
    with ReferenceKafkaCluster(work_dir / "kafka") as kafka:
        print(f"Kafka cluster ready in {kafka.startup_seconds:.1f}s on {kafka.bootstrap}", file=sys.stderr, flush=True)
        shared: TargetFactory = lambda _: _shared(kafka)  # type: ignore[arg-type]
        _, on_kafka = run_matrix(clients, both, shared, work_dir / "kafka-cells", progress("kafka"), shared)
        started = kafka.startup_seconds or 0.0
    kafka_cells = {(r.client, r.scenario): r for r in on_kafka}
    rows = [["client", "scenario", f"Ottla {git_revision()} (3 nodes)", f"Kafka {KAFKA_VERSION} (3 nodes)"]]
    for result in ottla:
        theirs = kafka_cells.get((result.client, result.scenario))
        kafka_cell = _cluster_cell(theirs) if theirs else f"n/a: {NEEDS_FAULT_API.get(result.scenario, '')}"
        rows.append([result.client, result.scenario, _cluster_cell(result), kafka_cell])
    print(format_text(rows, width=90))
    command = " ".join(["python -m compat", *argv])
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = "\n".join([
        CLUSTER_SECTION, "",
        f"Written by `{command}` on {when}. The cluster scenarios (see Scenarios) against a 3-node Ottla",
        f"(`compat.harness.OttlaCluster`, one per cell) and against three Apache Kafka {KAFKA_VERSION} nodes",
        "(`compat.kafka.ReferenceKafkaCluster`: KRaft combined broker and controller nodes, one static quorum,",
        f"RF=3 internal topics, min.insync.replicas=2; one cluster for every cell, ready in {started:.0f} s here).",
        "A stop is a controlled shutdown on both (on Kafka SIGTERM, and the JVM's exit waited for; on Ottla",
        "leadership moves at once and the node closes 2 s later). On Kafka an isolation freezes the node",
        "(SIGSTOP) and its controller fences it after broker.session.timeout.ms (9 s); Ottla fences an isolated",
        "node at once.",
        "Kafka has no fault API, so its producers are paced by a produce quota (KIP-219 throttling) instead of a",
        "delay fault, and cluster-leader-stop stops the leader once 10 records are acknowledged instead of",
        "while it holds the 10th request.", "",
        "| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0]),
        *("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in row) + " |" for row in rows[1:]), "",
    ])
    report_path = args.report or REPO_ROOT / "compat" / "REPORT.md"
    replace_section(report_path, CLUSTER_SECTION, section)
    print(f"\nwrote {CLUSTER_SECTION!r} into {report_path}", file=sys.stderr)
    return 1 if any(r.status == FAIL for r in ottla + on_kafka) else 0


def _cluster_cell(result: Result) -> str:
    cell = f"FAIL: {result.reason}" if result.status == FAIL else result.status + (f" ({result.seen})" if result.seen else "")
    return cell if result.status in (FAIL, "n/a") else f"{cell}, {result.seconds:.0f} s"


def _reference_sections() -> tuple[str, bool]:
    """Kafka's tools against Ottla and the differential run, as REPORT.md sections; whether all is well."""
    from compat import differential, kafka
    from compat.tools import NOT_APPLICABLE, PASS

    if not kafka.is_fetched():
        why = f"not installed: reference Kafka {kafka.KAFKA_VERSION} is not fetched (python -m compat.kafka --fetch)"
        return f"\n## Kafka's tools and the differential run\n\n{why}\n", False
    run = differential.run_all(lambda line: print(line, file=sys.stderr, flush=True))
    new = [d for d in run.differences() if d.deviation() is None and d.open_finding() is None]
    tools_ok = all(r.status in (PASS, NOT_APPLICABLE) for r in run.tools_ottla)
    return differential.report_section(run, kafka.KAFKA_VERSION), not new and tools_ok


if __name__ == "__main__":
    sys.exit(main())
