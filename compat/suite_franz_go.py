"""`python -m compat.suite_franz_go`: franz-go's own kgo integration tests against a broker.

The tests are those of `github.com/twmb/franz-go/pkg/kgo` at the release pinned in
compat/suites/franz_go/go.mod, fetched from the Go module proxy into `.cache/go` and compiled once
into a test binary (`--build`, which `python -m compat.install` runs). They reach the broker
through their own environment variables (pkg/kgo/helpers_test.go): KGO_SEEDS, KGO_TEST_RF=1 for
one node, and KGO_TEST_RECORDS to size the ETL chains. Each top-level test's outcome comes from
`go test -json` events (through `go tool test2json`).

Capabilities a broker lacks switch off by themselves: KIP-848 tests run once the broker advertises
ConsumerGroupHeartbeat v1+, share-group tests once it advertises ShareFetch and ShareAcknowledge
v2+ (helpers_test.go's adm() reads ApiVersions). The SASL tests (SASL_TESTS) run against a
SASL_PLAINTEXT listener this runner adds beside PLAINTEXT on one node (compat.suite_sasl:
SCRAM-SHA-256 and OAUTHBEARER with Kafka's unsecured-JWS validator), on Ottla and on Kafka alike.
KGO_TEST_TLS is never set: it would put every test's client on TLS.

Each run saves its outcomes under `.cache/go/`; `--report` writes the `## franz-go suite` section
of compat/REPORT.md from the last Ottla and Kafka runs and KNOWN_OTTLA_FAILURES.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from compat.harness import REPO_ROOT, OttlaBroker
from compat.matrix import git_revision
from compat.report_sections import replace_section
from compat.suite_sasl import SCRAM_USER, add_sasl_listener

if TYPE_CHECKING:
    from compat.kafka import ReferenceKafka

SUITE_DIR = REPO_ROOT / "compat" / "suites" / "franz_go"
GO_CACHE = REPO_ROOT / ".cache" / "go"
PACKAGE = "github.com/twmb/franz-go/pkg/kgo"
REPORT_PATH = REPO_ROOT / "compat" / "REPORT.md"
SECTION_TITLE = "## franz-go suite"


def franz_go_version() -> str:
    """The franz-go release go.mod pins: the one place the version is written."""
    match = re.search(r"^require github\.com/twmb/franz-go (v\S+)$", (SUITE_DIR / "go.mod").read_text(), re.M)
    if match is None:
        raise RuntimeError(f"no franz-go requirement in {SUITE_DIR / 'go.mod'}")
    return match[1]


def test_binary() -> Path:
    return GO_CACHE / f"franz-go-{franz_go_version()}" / "kgo.test"


# Where a run against `ottla serve --nodes N` keeps its outcomes (a column of its own in the report).
CLUSTER_RESULTS = "ottla-cluster"


def results_path(broker: str) -> Path:
    return GO_CACHE / f"franz-go-{franz_go_version()}" / f"results-{broker}.json"


# The kgo tests that talk to a broker (they reach it through helpers_test.go's adm(),
# newTestClient or tmpTopic); the rest of the package's tests are unit tests and never connect.
INTEGRATION_TESTS = (
    "TestIssue1034", "TestPing", "TestShareGroup", "TestUnknownGroupOffsetFetchPinned",
    "Test848RegexBrokerResolves", "TestAddRemovePartitions", "TestConsumeMaxDecompressBatchBytes",
    "TestConsumeRegex", "TestConsumeRegexShareSkipsInternal", "TestConsumeTopicRetrieval",
    "TestConsumeTopicRetrieval_Many", "TestDirectPartitionPurge", "TestGroupSimple", "TestHookPollStart",
    "TestIssue325", "TestIssue337", "TestIssue434", "TestIssue523", "TestIssue648", "TestIssue810",
    "TestIssue865", "TestIssueFetchLargerThanBrokerMaxReadBytes", "TestPauseIssue489",
    "TestPauseIssueOct2023", "TestPooling", "TestGroupETL", "TestClient_Produce",
    "TestClient_ProduceLargeMessages", "TestIssue769", "TestIssue831",
    "TestIssueProduceBrokerTooOldFailsRecords", "TestIssueProduceSyncManualPartitionNegativeDoesNotPanic",
    "TestShareGroupAckOnClose", "TestShareGroupETL", "TestShareGroupOffsetsAdmin", "TestTxnEtl",
)

# The kgo tests that log in over SASL (client_test.go): they skip themselves unless
# KGO_TEST_SCRAM(_SEEDS) and KGO_TEST_OAUTH_SEEDS name a listener, which `with_sasl_listener` adds
# (TestSCRAMAuthBadCredentials logs in as a user that does not exist; TestOAuthAuth sends
# unsecured tokens).
SASL_TESTS = ("TestSCRAMAuth", "TestSCRAMAuthBadCredentials", "TestOAuthAuth")

# KGO_TEST_RECORDS: the ETL chains (TestGroupETL, TestTxnEtl, TestShareGroupETL) move this many
# records through three topics and groups (franz-go's default is 500,000). CI_RECORDS keeps the
# pytest test, which runs every integration test, to about a minute and a half on two cores.
# TestShareGroupETL sets the floor: its lone "reject" consumer is stopped by a 50 ms gate once it
# has rejected 50 keys, which takes it through about 45% of the records (the low keys lie at the
# head of each partition); the release consumers after it must find records it has not read, or
# the test sees no redelivery and fails. At 500 records the ~275 left drain within the gate on
# a fast broker (Ottla often; the reference Kafka stops it at 130-250). Ottla has been seen to
# read ~500 past the 50th rejection on a busy machine; at 5,000 the ~2,750 left are five times
# that, on either broker.
RECORDS = 10000
CI_RECORDS = 5000

# Tests that pass on the reference Kafka and fail on Ottla, each with its cause. The pytest test
# fails when a test fails that is not listed here, and when a listed one passes.
KNOWN_OTTLA_FAILURES: dict[str, str] = {}

# Tests whose own logic races with the tests running beside them, on any broker, each with the
# race. One that fails is run again alone on the same broker and must pass then.
RACY_TESTS: dict[str, str] = {
    "Test848RegexBrokerResolves": (
        "without the kfake-only `kfake.is_internal` topic config the test subscribes __consumer_offsets "
        "and wants two topics, but counts every topic it reads records from; the other tests' commits "
        "are in __consumer_offsets, so when that fetch answers before pfx-orders' (on a cluster they "
        "come from different brokers) the loop stops at two topics without pfx-orders"),
}


@dataclass(slots=True)
class Outcome:
    """One top-level test: pass, fail or skip, its seconds, failed and skipped subtests, and why
    (for a failure, the test's own error lines; for a skip, its skip message)."""

    test: str
    status: str = "run"
    seconds: float = 0.0
    failed_subtests: list[str] = field(default_factory=list)
    skipped_subtests: list[str] = field(default_factory=list)
    message: str = ""


def go_env() -> dict[str, str]:
    """Go with its module and build caches in the repository's .cache, modules only from the
    Go module proxy, and the installed toolchain only."""
    return {
        **os.environ,
        "GOMODCACHE": str(GO_CACHE / "mod"),
        "GOCACHE": str(GO_CACHE / "build"),
        "GOFLAGS": "-mod=mod",
        "GOPROXY": "https://proxy.golang.org",
        "GOTOOLCHAIN": "local",
    }


def build() -> Path:
    """Compile the pinned kgo tests into test_binary(); a no-op when it is newer than go.mod/go.sum."""
    binary = test_binary()
    inputs = [SUITE_DIR / "go.mod", SUITE_DIR / "go.sum"]
    if binary.exists() and all(binary.stat().st_mtime > p.stat().st_mtime for p in inputs):
        return binary
    go = shutil.which("go")
    if go is None:
        raise RuntimeError("go not found: the franz-go suite is built with the Go toolchain")
    binary.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([go, "test", "-c", "-o", str(binary), PACKAGE], cwd=SUITE_DIR, env=go_env(), check=True)
    return binary


def is_built() -> bool:
    return test_binary().exists() and shutil.which("go") is not None


def run_tests(bootstrap: str, tests: Sequence[str], *, records: int, timeout_s: int,
              log_path: Path, replication_factor: int = 1, sasl: dict[str, str] | None = None) -> dict[str, Outcome]:
    """Run `tests` (top-level names) against `bootstrap`; their outcomes by name. The tests
    create their topics with `replication_factor` (KGO_TEST_RF: 3 for a 3-node cluster);
    `sasl` is the environment `with_sasl_listener` gives the SASL tests (else they skip).

    The raw `go test -json` stream goes to `log_path`. A test the binary never started (the
    run timed out or panicked first) comes back with status "run"."""
    go = shutil.which("go")
    if go is None:
        raise RuntimeError("go not found")
    env = {
        **go_env(),
        "KGO_SEEDS": bootstrap,
        "KGO_TEST_RF": str(replication_factor),
        "KGO_TEST_RECORDS": str(records),
        "KGO_LOG_LEVEL": "info",
    }
    for unset in ("KGO_TEST_SCRAM", "KGO_TEST_SCRAM_SEEDS", "KGO_TEST_OAUTH_SEEDS", "KGO_TEST_TLS", "KGO_TEST_CHAOS"):
        env.pop(unset, None)
    env.update(sasl or {})
    pattern = "^(" + "|".join(re.escape(t) for t in tests) + ")$"
    cmd = [go, "tool", "test2json", "-t", "-p", PACKAGE, str(test_binary()),
           "-test.v=test2json", f"-test.run={pattern}", f"-test.timeout={timeout_s}s", "-test.count=1"]
    outcomes = {name: Outcome(name) for name in tests}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # The binary runs in a scratch dir: a test that writes files must not write into the checkout.
    with tempfile.TemporaryDirectory(prefix="franz-go-") as scratch, open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=scratch, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            _apply_event(outcomes, line)
        proc.wait()
    return outcomes


def _apply_event(outcomes: dict[str, Outcome], line: str) -> None:
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return
    name = event.get("Test")
    if not name:
        return
    top, _, sub = name.partition("/")
    outcome = outcomes.get(top)
    if outcome is None:
        return
    action = event.get("Action")
    if action == "output":
        text = event.get("Output", "").rstrip()
        # go test marks a test's own messages (t.Error, t.Skip) by indentation and file:line.
        if re.match(r"^\s+\w+_test\.go:\d+: ", text) and len(outcome.message) < 2000:
            outcome.message += text.strip() + "\n"
    elif action in ("pass", "fail", "skip"):
        if sub:
            if action == "fail":
                outcome.failed_subtests.append(sub)
            elif action == "skip":
                outcome.skipped_subtests.append(sub)
        else:
            outcome.status = action
            outcome.seconds = float(event.get("Elapsed", 0.0))


def with_sasl_listener(broker: OttlaBroker | ReferenceKafka) -> dict[str, str]:
    """Restart a running one-node `broker` with compat.suite_sasl's SASL_PLAINTEXT listener beside
    PLAINTEXT, and give the environment that points the SASL tests at it."""
    seeds = add_sasl_listener(broker)
    return {"KGO_TEST_SCRAM": ":".join(SCRAM_USER), "KGO_TEST_SCRAM_SEEDS": seeds, "KGO_TEST_OAUTH_SEEDS": seeds}


@contextmanager
def broker_bootstrap(broker: str, work_dir: Path, log_level: str, nodes: int = 1
                     ) -> Iterator[tuple[str, dict[str, str] | None, Callable[[], dict[str, list[int]]]]]:
    """A fresh Ottla (`ottla serve`, `--nodes N` for more than one) or reference Kafka 4.4 on
    loopback: its bootstrap address, the SASL tests' environment (one node only), and what gives
    the API versions clients sent (Ottla's debug log; nothing for Kafka)."""
    if broker == "kafka":
        from compat.kafka import ReferenceKafka, fetch

        fetch()
        (work_dir / "kafka").mkdir(parents=True, exist_ok=True)
        with ReferenceKafka(work_dir / "kafka") as kafka:
            yield kafka.bootstrap_servers, with_sasl_listener(kafka), lambda: {}
    else:
        serve_args = ["--nodes", str(nodes)] if nodes > 1 else []
        with OttlaBroker(work_dir / "ottla", log_level=log_level, serve_args=serve_args) as ottla:
            sasl = with_sasl_listener(ottla) if nodes == 1 else None
            yield ottla.bootstrap, sasl, ottla.requests_seen


def save_results(broker: str, outcomes: dict[str, Outcome], note: str, requests: dict[str, list[int]]) -> None:
    path = results_path(broker)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"note": note, "outcomes": [asdict(o) for o in outcomes.values()], "requests": requests}
    path.write_text(json.dumps(payload, indent=1))


def load_results(broker: str) -> tuple[str, dict[str, Outcome]]:
    path = results_path(broker)
    if not path.exists():
        return "not run", {}
    payload = json.loads(path.read_text())
    return payload["note"], {o["test"]: Outcome(**o) for o in payload["outcomes"]}


def load_requests(broker: str) -> dict[str, list[int]]:
    """API name -> versions the last run sent, where the broker logged them (Ottla at debug)."""
    path = results_path(broker)
    requests: dict[str, list[int]] = json.loads(path.read_text()).get("requests", {}) if path.exists() else {}
    return requests


def ottla_only_failures(outcomes: dict[str, Outcome]) -> set[str]:
    """Tests that did not pass or skip; a skip is the test's own verdict that a capability is off."""
    return {name for name, o in outcomes.items() if o.status not in ("pass", "skip")}


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return re.sub(r"^\w+_test\.go:\d+: ", "", line)[:160]


def report_section() -> str:
    """The REPORT.md section: each integration test on Kafka and on Ottla, and the cause of
    each Ottla-only failure."""
    kafka_note, kafka = load_results("kafka")
    ottla_note, ottla = load_results("ottla")
    cluster_note, cluster = load_results(CLUSTER_RESULTS)
    lines = [
        SECTION_TITLE, "",
        f"franz-go {franz_go_version()}'s own `pkg/kgo` integration tests, every test of the package that reaches "
        f"a broker ({len(INTEGRATION_TESTS) + len(SASL_TESTS)}; the rest are unit tests) (`python -m compat.suite_franz_go`), "
        "against the reference Kafka and against Ottla, one node each (KGO_TEST_RF=1). "
        f"Runs: {kafka_note}; {ottla_note}" + (f"; and as franz-go's own CI runs them, on a cluster: {cluster_note}"
                                               if cluster else "") + ".", "",
        "KIP-848 and share-group tests skip themselves unless the broker advertises "
        "ConsumerGroupHeartbeat v1+ and ShareFetch/ShareAcknowledge v2+. The SASL tests "
        f"({', '.join(SASL_TESTS)}) log in on a SASL_PLAINTEXT listener the runner adds on both brokers "
        "(SCRAM-SHA-256, OAUTHBEARER with Kafka's unsecured-JWS validator); KGO_TEST_TLS is never set. "
        f"`tests/integration/test_franz_go_suite.py` runs them all on Ottla with KGO_TEST_RECORDS={CI_RECORDS} "
        "and fails on any failure not listed in `KNOWN_OTTLA_FAILURES`. The long form by hand: "
        "`KGO_TEST_UNSAFE=1 python -m compat.suite_franz_go --records 50000` (EndBeginTxnUnsafe every "
        "other 10,000-record transaction, as Kafka allows)." + "".join(
            f" {name} races with the tests beside it on any broker, so one that fails is run again alone and "
            f"must pass then: {race}." for name, race in RACY_TESTS.items()), "",
        f"Kafka: {_counts(kafka)}. Ottla: {_counts(ottla)}. Ottla-only failures: "
        f"{len([n for n in ottla_only_failures(ottla) if kafka.get(n, Outcome(n)).status == 'pass']) or 'none'}.", "",
        "| test | Kafka 4.4 | Ottla |" + (" Ottla, 3 nodes |" if cluster else "") + " cause of an Ottla-only failure |",
        "|---|---|---|" + ("---|" if cluster else "") + "---|",
    ]
    for name in INTEGRATION_TESTS + SASL_TESTS:
        k, o = kafka.get(name), ottla.get(name)
        cause = ""
        if o is not None and o.status not in ("pass", "skip"):
            cause = KNOWN_OTTLA_FAILURES.get(name, "not yet diagnosed: " + _first_line(o.message))
        in_cluster = f" {_cell(cluster.get(name)) if name in INTEGRATION_TESTS else 'n/a (one node)'} |" if cluster else ""
        lines.append(f"| {name} | {_cell(k)} | {_cell(o)} |{in_cluster} {cause} |")
    skipped = [(n, o) for n, o in ottla.items() if o.status == "skip"]
    if skipped:
        lines += ["", "Skipped on Ottla, by the test itself:", ""]
        lines += [f"- **{n}**: {_first_line(o.message)}" for n, o in skipped]
    requests = load_requests("ottla")
    if requests:
        versions = ", ".join(f"{api} {'/'.join(map(str, v))}" for api, v in requests.items())
        lines += ["", f"Requests franz-go sent to Ottla (API versions, from its debug log): {versions}."]
    return "\n".join(lines) + "\n"


def _counts(outcomes: dict[str, Outcome]) -> str:
    statuses = [o.status for o in outcomes.values()]
    return ", ".join(f"{statuses.count(s)} {s}" for s in ("pass", "fail", "skip", "run") if s in statuses) or "not run"


def _cell(outcome: Outcome | None) -> str:
    if outcome is None:
        return "not run"
    if outcome.status == "fail" and outcome.failed_subtests:
        return f"fail ({', '.join(outcome.failed_subtests)})"
    if outcome.status == "pass" and outcome.skipped_subtests:
        return f"pass, skipped {', '.join(outcome.skipped_subtests)}"
    return outcome.status if outcome.status != "run" else "did not finish"


def write_report_section(path: Path = REPORT_PATH) -> None:
    """Replace this suite's section of REPORT.md (up to the next `## ` heading), or append it."""
    replace_section(path, SECTION_TITLE, report_section())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compat.suite_franz_go", description=__doc__.splitlines()[0])
    parser.add_argument("--broker", choices=["ottla", "kafka"], default="ottla")
    parser.add_argument("--run", help="only the integration tests whose name matches this regex")
    parser.add_argument("--ci", action="store_true", help="sized as the pytest test runs it")
    parser.add_argument("--records", type=int, help=f"KGO_TEST_RECORDS (default {RECORDS}, {CI_RECORDS} with --ci)")
    parser.add_argument("--timeout", type=int, default=3600, help="go test's timeout for the whole run, seconds")
    parser.add_argument("--nodes", type=int, default=1,
                        help="run Ottla as a cluster of N nodes (`ottla serve --nodes N`) and the tests with KGO_TEST_RF=N")
    parser.add_argument("--log-level", default="debug",
                        help="Ottla's log level (debug, the default, logs each request for the report)")
    parser.add_argument("--work-dir", type=Path, help="keep broker data, logs and the go test -json stream here")
    parser.add_argument("--build", action="store_true", help="only fetch franz-go and compile its tests")
    parser.add_argument("--report", action="store_true",
                        help="only write compat/REPORT.md's franz-go section from the last runs")
    args = parser.parse_args(argv)

    if args.build:
        print(build())
        return 0
    if args.report:
        write_report_section()
        print(f"wrote {SECTION_TITLE!r} in {REPORT_PATH}", file=sys.stderr)
        return 0

    build()
    tests: tuple[str, ...] = INTEGRATION_TESTS + (SASL_TESTS if args.nodes == 1 else ())
    if args.run:
        tests = tuple(t for t in tests if re.search(args.run, t))
    records = args.records or (CI_RECORDS if args.ci else RECORDS)
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="franz-go-suite-"))
    started = time.monotonic()
    print(f"franz-go {franz_go_version()}: {len(tests)} tests against {args.broker}; logs under {work_dir}",
          file=sys.stderr, flush=True)
    if args.nodes > 1 and args.broker == "kafka":
        parser.error("--nodes: the reference Kafka runs one node")
    with broker_bootstrap(args.broker, work_dir, args.log_level, args.nodes) as (bootstrap, sasl, requests_seen):
        outcomes = run_tests(bootstrap, tests, records=records, timeout_s=args.timeout,
                             log_path=work_dir / "go-test.json", replication_factor=args.nodes, sasl=sasl)
        requests = requests_seen()
    for o in outcomes.values():
        extra = f" subtests failed: {', '.join(o.failed_subtests)}" if o.failed_subtests else ""
        why = f" -- {_first_line(o.message)}" if o.status != "pass" and o.message else ""
        print(f"{o.test:<55} {o.status:<5} {o.seconds:7.1f}s{extra}{why}")
    if not args.run:
        broker = "Kafka 4.4" if args.broker == "kafka" else f"Ottla {git_revision()}"
        nodes = f", {args.nodes} nodes, KGO_TEST_RF={args.nodes}" if args.nodes > 1 else ""
        unsafe = ", KGO_TEST_UNSAFE" if "KGO_TEST_UNSAFE" in os.environ else ""
        note = (f"{broker}{nodes}, {len(tests)} tests, KGO_TEST_RECORDS={records}{unsafe}, "
                f"{time.strftime('%Y-%m-%d', time.gmtime())}, {time.monotonic() - started:.0f}s")
        save_results(args.broker if args.nodes == 1 else CLUSTER_RESULTS, outcomes, note, requests)
    failed = ottla_only_failures(outcomes)
    if args.broker == "ottla":
        failed -= set(KNOWN_OTTLA_FAILURES)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
