"""`python -m compat`: run the client × scenario matrix, print it and write compat/REPORT.md.

Against Ottla it also runs Kafka's tools and the differential suite (compat.differential) and
adds both to the report. Exits 1 when any client or tool fails or a difference is unexplained; a client that is not installed is shown but does not fail the run
here (the pytest suite is stricter under CI=true).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from compat.clients import CLIENTS
from compat.harness import REPO_ROOT, OttlaBroker, OttlaCluster, Target
from compat.matrix import FAIL, Result, TargetFactory, format_text, git_revision, report, run_matrix, table
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
    args = parser.parse_args(argv)

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

    def progress(result: Result) -> None:
        line = f"{result.client:<20} {result.scenario:<26} {result.seconds:5.1f}s {result.status}"
        if result.reason:
            line += f": {result.reason}"
        print(line, file=sys.stderr, flush=True)
        if args.verbose and result.status == FAIL and result.detail:
            print(result.detail, file=sys.stderr, flush=True)

    print(f"compat matrix against {broker}; logs under {work_dir}", file=sys.stderr)
    versions, results = run_matrix(clients, scenarios, new_target, work_dir, progress, new_cluster)
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
