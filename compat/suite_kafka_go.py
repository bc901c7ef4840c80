"""`python -m compat.suite_kafka_go`: segmentio/kafka-go's own tests against a broker.

The tests are those of `github.com/segmentio/kafka-go` and its `sasl` package at the release
pinned in compat/suites/kafka_go/go.mod (the one compat/go/go.mod pins for the kafkago driver),
fetched from the Go module proxy into `.cache/go` and compiled once into test binaries
(`--build`). Each top-level test's outcome comes from `go test -json` events (through `go tool
test2json`), as compat.suite_franz_go reads them. A whole run takes about four minutes on two
cores, on either broker, so it is run by hand; tests/integration/test_kafka_go_suite.py runs
CI_TESTS (`--ci` here), a selection of about a minute and a half, on Ottla.

kafka-go's tests dial `localhost:9092` (PLAINTEXT) and `localhost:9093` (SASL_PLAINTEXT: PLAIN
adminplain, SCRAM-SHA-256 adminscram256, SCRAM-SHA-512 adminscram512) with no way to point them
elsewhere (its tests and testing/ read no address from the environment), so the broker runs
with the settings of kafka-go's CI broker (docker_compose_versions/docker-compose-400.yml) on
exactly those ports: one broker at a time, and both ports must be free (no other test or tool
here binds them: the others take free ports). KAFKA_VERSION=4.0.0, the newest version kafka-go's
CI names, gates the tests (testing.KafkaIsAtLeast): the transactional tests it marks as failing
on Kafka 3.0+ skip themselves. KAFKA_SKIP_NETTEST=1 as in that CI.

Each run saves its outcomes under `.cache/go/`; `--report` writes the `## kafka-go suite` section
of compat/REPORT.md from the last Ottla and Kafka runs, KNOWN_OTTLA_FAILURES and FAILING_ON_KAFKA.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from compat.harness import REPO_ROOT, OttlaBroker
from compat.matrix import git_revision
from compat.report_sections import replace_section
from compat.suite_franz_go import GO_CACHE, Outcome, _apply_event, _cell, _counts, _first_line, go_env

SUITE_DIR = REPO_ROOT / "compat" / "suites" / "kafka_go"
MODULE = "github.com/segmentio/kafka-go"
# The packages whose tests reach a broker (the others are codec unit tests), by binary name.
PACKAGES = {"kafka-go": MODULE, "sasl": f"{MODULE}/sasl"}
REPORT_PATH = REPO_ROOT / "compat" / "REPORT.md"
SECTION_TITLE = "## kafka-go suite"

PORT, SASL_PORT, CONTROLLER_PORT = 9092, 9093, 9094
SASL_USERS = {"SCRAM-SHA-256": ("adminscram256", "admin-secret-256"), "SCRAM-SHA-512": ("adminscram512", "admin-secret-512")}

# kafka-go's CI broker (docker-compose-400.yml): PLAINTEXT and SASL_PLAINTEXT listeners,
# PLAIN's user in its JAAS config and the SCRAM users created at start, topics auto-created,
# 200 MB messages, Kafka's default first-rebalance delay, and the StandardAuthorizer allowing what no ACL speaks to (the ACL tests).
BROKER_SETTINGS = {
    "listeners": f"PLAINTEXT://127.0.0.1:{PORT},SASL_PLAINTEXT://127.0.0.1:{SASL_PORT}",
    "advertised.listeners": f"PLAINTEXT://localhost:{PORT},SASL_PLAINTEXT://localhost:{SASL_PORT}",
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
    "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
    "listener.name.sasl_plaintext.plain.sasl.jaas.config":
        'org.apache.kafka.common.security.plain.PlainLoginModule required user_adminplain="admin-secret";',
    "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config":
        "org.apache.kafka.common.security.scram.ScramLoginModule required;",
    "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config":
        "org.apache.kafka.common.security.scram.ScramLoginModule required;",
    "auto.create.topics.enable": "true",
    "message.max.bytes": "200000000",
    "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "allow.everyone.if.no.acl.found": "true",
    # Kafka's default, which ReferenceKafka sets to 0 for its other users.
    "group.initial.rebalance.delay.ms": "3000",
    "super.users": ";".join(f"User:{user}" for user in ("adminplain", *(u for u, _ in SASL_USERS.values()))),
}

# Subtests left out on every broker, each with why: they end the whole binary, or fail by their
# own design on Kafka 4.4 as on Ottla.
_GET_OFFSETS_PANICS = (
    "its getOffsets builds a bare ConsumerGroup whose coordinator() calls a nil connect function, "
    "a panic that ends the test binary on Kafka as on Ottla")
SKIPPED_SUBTESTS = {
    **{f"TestReaderConsumerGroup/{scenario}": _GET_OFFSETS_PANICS
       for scenario in ("verify_offset_committed", "verify_offset_committed_when_using_interval_committer",
                        "consumer_group_commits_on_close")},
    "TestReaderConsumerGroup/consumer_group_rebalance": (
        "two readers that join within group.initial.rebalance.delay.ms (Kafka's default 3 s) share the "
        "topic's 3 partitions 2/1, so the one with one partition has 8 of the 24 records and waits out "
        "its 30 s for a 9th; it passes only when the second reader joins after the first generation "
        "(a delay of 0), whose rebalance makes both re-read uncommitted partitions"),
}

# Tests that fail on the reference Kafka 4.4 as well, each with why; a run lets them fail.
FAILING_ON_KAFKA: dict[str, str] = {
    "TestClientElectLeaders": (
        "sends ElectLeaders with timeout_ms 0, which Kafka 4.4's controller answers REQUEST_TIMED_OUT "
        "(the event's deadline has passed before it runs), as Ottla does; the test wants no error"),
    "TestConn": (
        "test_delete_topics and test_delete_topics_with_an_invalid_topic read Metadata with topic "
        "auto-creation on right after DeleteTopics and want no partitions: Kafka answers from its "
        "broker's metadata image, which may still hold the deleted topic (partitions: the first "
        "fails) or already see it gone (UNKNOWN_TOPIC_OR_PARTITION while its controller recreates it, "
        "which kafka-go's Conn ignores); Ottla recreates the topic at once and answers it with its "
        "partition (a README deviation), so both fail"),
    "TestReaderReadCompactedMessage": (
        "creates its topic with segment.bytes=200, which Kafka 4 refuses (at least 1 MiB): "
        "INVALID_CONFIG, as Ottla answers"),
}

# Tests that pass on the reference Kafka and fail on Ottla, each with its cause. The pytest test
# fails when a test fails that is not listed here (nor in FAILING_ON_KAFKA), and when a listed
# one passes.
KNOWN_OTTLA_FAILURES: dict[str, str] = {}


# The pytest test's selection, about 80 s of the whole run's 250 (on two cores): the tests that
# drive the broker's protocol, one per API where kafka-go has several, leaving out its codec unit
# tests (no broker), the Reader/Writer/Dialer tests that mostly exercise kafka-go's own batching,
# retries and DNS resolution at length (TestReaderConsumerGroup 47 s, TestWriter 35 s,
# TestDialerResolver 15 s), and the transactional tests, which KAFKA_VERSION=4.0.0 skips. Most
# group tests take 3 s: the first rebalance waits group.initial.rebalance.delay.ms.
CI_TESTS = (
    # Classic groups and offsets.
    "TestClientFindCoordinator", "TestClientJoinGroup", "TestClientSyncGroup", "TestClientHeartbeat",
    "TestClientLeaveGroup", "TestClientOffsetCommit", "TestClientDeleteOffset", "TestOffsetFetchRequestWithNoTopic",
    "TestClientListGroups", "TestClientDescribeGroups", "TestClientDeleteGroups", "TestConsumerGroupWithTopic",
    # Topics, configs, ACLs, SCRAM credentials, quotas, reassignments.
    "TestClientCreateTopics", "TestConnCreateTopics", "TestClientDeleteTopics", "TestClientCreatePartitions",
    "TestClientDescribeConfigs", "TestClientAlterConfigs", "TestClientIncrementalAlterConfigs",
    "TestClientCreateACLs", "TestClientDescribeACLs", "TestClientDeleteACLs",
    "TestAlterUserScramCredentials", "TestDescribeUserScramCredentials", "TestClientAlterClientQuotas",
    "TestClientAlterPartitionReassignments",
    # Produce, fetch, metadata and offsets, on kafka-go's Client and on its Conn.
    "TestClientApiVersions", "TestClientMetadata", "TestClientListOffsets", "TestClientProduce",
    "TestClientProduceCompressed", "TestClientRawProduce", "TestClientRawProduceCompressed", "TestClientFetch",
    "TestClientFetchCompressed", "TestClientPipeline", "TestClientProduceAndConsume", "TestWriteV2RecordBatch",
    "TestReaderTruncatedResponse", "TestConn", "TestReaderReadCompactedMessage",
    # Dialing, and SASL: PLAIN and SCRAM on the SASL_PLAINTEXT listener, and a mechanism it does not enable.
    "TestDialer", "TestUnsupportedSASLMechanism", "TestSASL",
)


def ci_run_pattern() -> str:
    """CI_TESTS as one -test.run pattern, anchored: no other test whose name starts with one runs."""
    return f"^({'|'.join(CI_TESTS)})$"


def kafka_go_version() -> str:
    """The kafka-go release go.mod pins: the one place the version is written."""
    match = re.search(r"^require github\.com/segmentio/kafka-go (v\S+)$", (SUITE_DIR / "go.mod").read_text(), re.M)
    if match is None:
        raise RuntimeError(f"no kafka-go requirement in {SUITE_DIR / 'go.mod'}")
    return match[1]


def build_dir() -> Path:
    return GO_CACHE / f"kafka-go-{kafka_go_version()}"


def test_binary(name: str) -> Path:
    return build_dir() / f"{name}.test"


def results_path(broker: str) -> Path:
    return build_dir() / f"results-{broker}.json"


def build() -> Path:
    """Compile the pinned packages' tests; a no-op for a binary newer than go.mod/go.sum."""
    go = shutil.which("go")
    inputs = [SUITE_DIR / "go.mod", SUITE_DIR / "go.sum"]
    for name, package in PACKAGES.items():
        binary = test_binary(name)
        if binary.exists() and all(binary.stat().st_mtime > p.stat().st_mtime for p in inputs):
            continue
        if go is None:
            raise RuntimeError("go not found: the kafka-go suite is built with the Go toolchain")
        binary.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([go, "test", "-c", "-o", str(binary), package], cwd=SUITE_DIR, env=go_env(), check=True)
    return build_dir()


def is_built() -> bool:
    return all(test_binary(name).exists() for name in PACKAGES) and shutil.which("go") is not None


def ports_in_use() -> list[int]:
    """The suite's fixed ports that something already listens on."""
    busy = []
    for port in (PORT, SASL_PORT, CONTROLLER_PORT):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                busy.append(port)
    return busy


def source_dir() -> Path:
    """kafka-go's source in the module cache: TestMessageFixtures reads `fixtures/` beside it."""
    return GO_CACHE / "mod" / "github.com" / "segmentio" / f"kafka-go@{kafka_go_version()}"


def skip_pattern() -> str:
    """SKIPPED_SUBTESTS as one -test.skip pattern: go test splits it at slashes, level by
    level, so the subtests of one parent are one alternation."""
    parents = {name.split("/")[0] for name in SKIPPED_SUBTESTS}
    assert len(parents) == 1, "one -test.skip pattern names the subtests of one parent"
    subtests = "|".join(re.escape(name.split("/", 1)[1]) for name in SKIPPED_SUBTESTS)
    return f"^{re.escape(parents.pop())}$/^({subtests})$"


def run_tests(timeout_s: int, log_path: Path, run: str | None = None) -> dict[str, Outcome]:
    """Run every test of PACKAGES (those matching `run`, a -test.run pattern) against the broker
    on PORT and SASL_PORT; their outcomes by top-level name, a name the binary never finished
    with status "run". The raw `go test -json` streams go to `log_path`."""
    go = shutil.which("go")
    if go is None:
        raise RuntimeError("go not found")
    env = {**go_env(), "KAFKA_VERSION": "4.0.0", "KAFKA_SKIP_NETTEST": "1"}
    outcomes: dict[str, Outcome] = {}
    skip = skip_pattern()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # A scratch dir to run in (tests must not write into the checkout), with kafka-go's fixtures.
    with tempfile.TemporaryDirectory(prefix="kafka-go-") as scratch, open(log_path, "w") as log:
        (Path(scratch) / "fixtures").symlink_to(source_dir() / "fixtures")
        for name in PACKAGES:
            binary = test_binary(name)
            listed = subprocess.run([str(binary), "-test.list", run or "."], capture_output=True, text=True, check=True)
            for test in listed.stdout.split():
                if test.startswith("Test"):
                    outcomes[test] = Outcome(test)
            cmd = [go, "tool", "test2json", "-t", "-p", PACKAGES[name], str(binary), "-test.v=test2json",
                   f"-test.timeout={timeout_s}s", "-test.count=1", f"-test.skip={skip}",
                   *([f"-test.run={run}"] if run else [])]
            proc = subprocess.Popen(cmd, cwd=scratch, env=env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                _apply_event(outcomes, line)
            proc.wait()
    return outcomes


@contextmanager
def broker_on_fixed_ports(broker: str, work_dir: Path, log_level: str) -> Iterator[None]:
    """A fresh Ottla (`ottla serve`) or reference Kafka 4.4 with BROKER_SETTINGS on PORT and
    SASL_PORT (Kafka's controller on CONTROLLER_PORT), SASL_USERS created."""
    busy = ports_in_use()
    if busy:
        raise RuntimeError(f"ports {busy} are in use: kafka-go's tests need the broker on {PORT} and {SASL_PORT}")
    if broker == "kafka":
        from compat.kafka import ReferenceKafka, fetch

        fetch()
        (work_dir / "kafka").mkdir(parents=True, exist_ok=True)
        controller = f"CONTROLLER://127.0.0.1:{CONTROLLER_PORT}"
        kafka = ReferenceKafka(work_dir / "kafka", heap="1g", config={
            **BROKER_SETTINGS,
            "listeners": f"{BROKER_SETTINGS['listeners']},{controller}",
            "listener.security.protocol.map": f"{BROKER_SETTINGS['listener.security.protocol.map']},CONTROLLER:PLAINTEXT",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{CONTROLLER_PORT}",
        })
        # ReferenceKafka readies on its own port: the one these settings listen on.
        kafka.port, kafka.bootstrap_servers = PORT, f"127.0.0.1:{PORT}"
        with kafka:
            _create_scram_users(kafka.bootstrap_servers)
            yield
    else:
        scram = [arg for mechanism, (user, password) in SASL_USERS.items()
                 for arg in ("--add-scram", f"{mechanism}=[name={user},password={password}]")]
        ottla = OttlaBroker(work_dir / "ottla", log_level=log_level, settings=BROKER_SETTINGS,
                            serve_args=["--http-port", "-1", *scram])
        # `ottla serve --port` binds the PLAINTEXT listener: the one these settings name.
        ottla.port = PORT
        with ottla:
            yield


def _create_scram_users(bootstrap: str) -> None:
    """SASL_USERS through AlterUserScramCredentials, as kafka-configs creates them."""
    from kafka.admin import KafkaAdminClient, ScramMechanism, UserScramCredentialUpsertion

    upserts = [UserScramCredentialUpsertion(user, ScramMechanism[mechanism.replace("-", "_")], password)
               for mechanism, (user, password) in SASL_USERS.items()]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    try:
        refused = {user: why for user, why in admin.alter_user_scram_credentials(upserts).items() if why}
    finally:
        admin.close()
    if refused:
        raise RuntimeError(f"AlterUserScramCredentials refused: {refused}")


def save_results(broker: str, outcomes: dict[str, Outcome], note: str) -> None:
    path = results_path(broker)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"note": note, "outcomes": [asdict(o) for o in outcomes.values()]}, indent=1))


def load_results(broker: str) -> tuple[str, dict[str, Outcome]]:
    path = results_path(broker)
    if not path.exists():
        return "not run", {}
    payload = json.loads(path.read_text())
    return payload["note"], {o["test"]: Outcome(**o) for o in payload["outcomes"]}


def unexpected_failures(outcomes: dict[str, Outcome]) -> set[str]:
    """Tests that did not pass or skip, other than those that fail on Kafka too."""
    return {name for name, o in outcomes.items() if o.status not in ("pass", "skip")} - set(FAILING_ON_KAFKA)


def _by_reason(reasons: dict[str, str]) -> dict[str, list[str]]:
    """The names of `reasons` ({name: why}) grouped by why, in first-seen order."""
    grouped: dict[str, list[str]] = {}
    for name, why in reasons.items():
        grouped.setdefault(why, []).append(name)
    return grouped


def report_section() -> str:
    """The REPORT.md section: counts on each broker, and every test whose outcome is not a pass
    on both, with its cause."""
    kafka_note, kafka = load_results("kafka")
    ottla_note, ottla = load_results("ottla")
    lines = [
        SECTION_TITLE, "",
        f"segmentio/kafka-go {kafka_go_version()}'s own tests (the root package and `sasl`; `python -m compat.suite_kafka_go`) "
        "against the reference Kafka and against Ottla, each with kafka-go CI's broker settings on localhost:9092 "
        f"and :9093 (SASL), KAFKA_VERSION=4.0.0. Runs: {kafka_note}; {ottla_note}. "
        f"`tests/integration/test_kafka_go_suite.py` runs {len(CI_TESTS)} of them on Ottla (CI_TESTS, `--ci`) and fails "
        "on a failure not listed below, and on a listed one that passes. "
        + "".join(f"Left out on both: {', '.join(names)}, as {why}. " for why, names in _by_reason(SKIPPED_SUBTESTS).items()), "",
        f"Kafka: {_counts(kafka)}. Ottla: {_counts(ottla)}.", "",
        "| test | Kafka 4.4 | Ottla | why |", "|---|---|---|---|",
    ]
    for name in sorted(set(kafka) | set(ottla)):
        k, o = kafka.get(name), ottla.get(name)
        if k is not None and o is not None and k.status == o.status == "pass":
            continue
        why = FAILING_ON_KAFKA.get(name) or KNOWN_OTTLA_FAILURES.get(name, "")
        if not why and o is not None and o.status == "skip":
            why = "skipped by the test itself" + (f": {reason}" if (reason := _first_line(o.message)) else "")
        lines.append(f"| {name} | {_cell(k)} | {_cell(o)} | {why} |")
    return "\n".join(lines) + "\n"


def write_report_section(path: Path = REPORT_PATH) -> None:
    replace_section(path, SECTION_TITLE, report_section())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compat.suite_kafka_go", description=__doc__.splitlines()[0])
    parser.add_argument("--broker", choices=["ottla", "kafka"], default="ottla")
    selection = parser.add_mutually_exclusive_group()
    selection.add_argument("--run", help="only the tests matching this -test.run pattern")
    selection.add_argument("--ci", action="store_true", help="only CI_TESTS, the pytest test's selection")
    parser.add_argument("--timeout", type=int, default=900, help="go test's timeout for each package, seconds")
    parser.add_argument("--log-level", default="info", help="Ottla's log level")
    parser.add_argument("--work-dir", type=Path, help="keep broker data, logs and the go test -json stream here")
    parser.add_argument("--build", action="store_true", help="only fetch kafka-go and compile its tests")
    parser.add_argument("--report", action="store_true",
                        help="only write compat/REPORT.md's kafka-go section from the last runs")
    args = parser.parse_args(argv)

    if args.build:
        print(build())
        return 0
    if args.report:
        write_report_section()
        print(f"wrote {SECTION_TITLE!r} in {REPORT_PATH}", file=sys.stderr)
        return 0

    build()
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="kafka-go-suite-"))
    started = time.monotonic()
    print(f"kafka-go {kafka_go_version()} against {args.broker}; logs under {work_dir}", file=sys.stderr, flush=True)
    with broker_on_fixed_ports(args.broker, work_dir, args.log_level):
        outcomes = run_tests(args.timeout, work_dir / "go-test.json", ci_run_pattern() if args.ci else args.run)
    for o in outcomes.values():
        extra = f" subtests failed: {', '.join(o.failed_subtests)}" if o.failed_subtests else ""
        why = f" -- {_first_line(o.message)}" if o.status not in ("pass", "skip") and o.message else ""
        print(f"{o.test:<55} {o.status:<5} {o.seconds:7.1f}s{extra}{why}")
    if not (args.run or args.ci):
        broker = "Kafka 4.4" if args.broker == "kafka" else f"Ottla {git_revision()}"
        note = f"{broker}, {len(outcomes)} tests, {time.strftime('%Y-%m-%d', time.gmtime())}, {time.monotonic() - started:.0f}s"
        save_results(args.broker, outcomes, note)
    failed = unexpected_failures(outcomes)
    if args.broker == "ottla":
        failed -= set(KNOWN_OTTLA_FAILURES)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
