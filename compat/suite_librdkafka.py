"""librdkafka's own integration suite (its `tests/test-runner`) against Ottla or the reference Kafka.

The sources come pinned from the `rdkafka-sys` crate, which bundles librdkafka with its tests:
``build()`` vendors that crate with cargo into ``.cache/librdkafka/<crate version>/`` and builds
the library and ``test-runner`` with gcc/make (a no-op once built). ``compat/suites/librdkafka/
tests.toml`` is the data: the selected tests, each exclusion with its reason, the CI-sized subset,
and Ottla's known failures with their causes.

Each selected test number runs in its own ``test-runner`` process (a hang costs one timeout, not
the run), without the local-only tests (``-L``), against one fresh broker per run. Not in quick
mode unless asked: ``-Q`` silently drops every subtest not marked quick, so a "passed" there may
have run nothing; each result counts the subtests that passed.

    python -m compat.suite_librdkafka [--broker ottla|kafka] [--tests 0001,0002] [--ci] [--quick]
    python -m compat.suite_librdkafka --cluster   # the multi-broker tests against ottla serve --nodes 3
    python -m compat.suite_librdkafka --sasl      # the SASL tests, on a SASL_PLAINTEXT listener
    python -m compat.suite_librdkafka --sasl --cluster  # the SASL tests that need three brokers
    python -m compat.suite_librdkafka --acl       # the ACL tests, on a broker with an authorizer
    python -m compat.suite_librdkafka --noautocreate [--cluster]  # the "noautocreate" scenario's tests
    python -m compat.suite_librdkafka --build     # fetch and build only
    python -m compat.suite_librdkafka --report    # rewrite compat/REPORT.md's section from the last runs
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from compat.report_sections import replace_section

REPO = Path(__file__).resolve().parent.parent
DATA = tomllib.loads((REPO / "compat" / "suites" / "librdkafka" / "tests.toml").read_text())
CRATE_VERSION: str = DATA["crate_version"]
LIBRDKAFKA_VERSION = CRATE_VERSION.split("+", 1)[1]
CACHE = REPO / ".cache" / "librdkafka" / CRATE_VERSION
SOURCE = CACHE / "vendor" / f"rdkafka-sys-{CRATE_VERSION}" / "librdkafka"
TESTS_DIR = SOURCE / "tests"
TEST_RUNNER = TESTS_DIR / "test-runner"
_STAMP = CACHE / ".built"
REPORT_PATH = REPO / "compat" / "REPORT.md"
SECTION_TITLE = "## librdkafka suite"
# Debian packages the build needs (the suite is never needed by `ottla serve`); rapidjson lets
# the tests that check statistics JSON against its schema run (0053, 0098, 0101, 0110) instead
# of skipping. The stamp records them, so a change here rebuilds.
BUILD_PACKAGES = ("gcc", "g++", "make", "pkg-config", "libssl-dev", "zlib1g-dev", "libzstd-dev", "liblz4-dev",
                  "rapidjson-dev")
_STAMP_TEXT = f"{CRATE_VERSION} {' '.join(BUILD_PACKAGES)}\n"

SELECTED: list[str] = sorted(DATA["selected"])
CI_TESTS: list[str] = sorted(DATA["ci"]["tests"])
# Run against a cluster of CLUSTER_NODES Ottla nodes (the reference Kafka here runs one).
CLUSTER_TESTS: list[str] = sorted(DATA["cluster"]["tests"])
# Run against the cluster by `--cluster` only, not in CI: minutes each.
CLUSTER_LONG_TESTS: list[str] = sorted(DATA["cluster"]["long_tests"])
CLUSTER_NODES: int = DATA["cluster"]["nodes"]
# Run against a broker with a SASL_PLAINTEXT listener (compat.suite_sasl), logging in with SASL_MECHANISM.
SASL_TESTS: list[str] = sorted(DATA["sasl"]["tests"])
SASL_CLUSTER_TESTS: list[str] = sorted(DATA["sasl"]["cluster_tests"])
SASL_MECHANISM: str = DATA["sasl"]["mechanism"]
SASL_BROKER_CONFIG: dict[str, str] = DATA["sasl"]["broker_config"]
# Run against a broker with an authorizer (ACL_BROKER_CONFIG): they add ACLs with kafka-acls.sh.
ACL_TESTS: list[str] = sorted(DATA["acl"]["tests"])
ACL_BROKER_CONFIG: dict[str, str] = DATA["acl"]["broker_config"]
# Run in test-runner's "noautocreate" scenario, against a broker configured so.
NOAUTOCREATE_TESTS: list[str] = sorted(DATA["noautocreate"]["tests"])
NOAUTOCREATE_CLUSTER_TESTS: list[str] = sorted(DATA["noautocreate"]["cluster_tests"])
NOAUTOCREATE_BROKER_CONFIG: dict[str, str] = DATA["noautocreate"]["broker_config"]
EXCLUDED: dict[str, str] = DATA["excluded"]
# test-runner name -> {"at": the subtest it fails at, "cause": why}.
KNOWN_OTTLA_FAILURES: dict[str, dict[str, str]] = DATA["known_ottla_failures"]
BROKER_CONFIG: dict[str, str] = DATA["broker_config"]
# test-runner name -> why it failed on the reference Kafka: the suite's or the machine's, not Ottla's.
KAFKA_FAILURES: dict[str, str] = DATA["kafka_failures"]

# test-runner's progress lines. A failed test's thread stops at its failure, and test-runner then
# aborts at exit with threads left over, before its summary table: so the log, not the table,
# tells each test's end.
_LINE_RE = re.compile(
    r"^\[(?P<prefix>\S+)\s*/\s*[\d.]+s\] (?:"
    r"=+ Running test (?P<running>\d{4}_\w+) =+"
    r"|=+ Test (?P<ended>\d{4}_\w+) (?P<state>PASSED|FAILED|SKIPPED) =+"
    r"|(?:WARN: )?SKIPPING TEST: (?P<skip>.*?)(?:\[\d{4}_.*)?"
    r"|\[ (?P<subtest_passed>.*): PASS \([\d.]+s\) \])$"
    r"|^### Test \"(?P<failed>\d{4}_\w+)(?: \((?P<subtest>.*?)\))?\" failed at (?P<where>\S+?:\d+):"
)
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")


def _run(*cmd: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, cwd=cwd, env=env)


def is_built() -> bool:
    return _STAMP.exists() and _STAMP.read_text() == _STAMP_TEXT and TEST_RUNNER.exists()


def _install_build_packages() -> None:
    missing = [p for p in BUILD_PACKAGES
               if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode != 0]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise RuntimeError(f"librdkafka's build needs {' '.join(missing)}: install them (apt-get, as root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _run("apt-get", "update", "-qq", env=env)
    _run("apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing, env=env)


def _vendor_crate() -> None:
    """cargo vendors the pinned crate (its own sources, librdkafka's included) into the cache."""
    if SOURCE.exists():
        return
    project = CACHE / "fetch"
    (project / "src").mkdir(parents=True, exist_ok=True)
    (project / "src" / "lib.rs").write_text("")
    (project / "Cargo.toml").write_text(
        '[package]\nname = "librdkafka-suite-fetch"\nversion = "0.0.0"\nedition = "2021"\n\n'
        f'[dependencies]\nrdkafka-sys = {{ version = "={CRATE_VERSION}", default-features = false }}\n'
    )
    _run("cargo", "vendor", "--versioned-dirs", "--quiet", str(CACHE / "vendor"), cwd=project)


def build() -> None:
    """Fetch and build librdkafka and its test-runner once; later calls return at once."""
    if is_built():
        return
    if shutil.which("cargo") is None:
        raise RuntimeError("cargo not found: librdkafka's sources come from the rdkafka-sys crate")
    _install_build_packages()
    _vendor_crate()
    jobs = f"-j{os.cpu_count() or 1}"
    _run("./configure", "--no-download", "--disable-gssapi", "--disable-curl", cwd=SOURCE)
    _run("make", jobs, "libs", cwd=SOURCE)
    _run("make", jobs, "test-runner", cwd=TESTS_DIR)
    _STAMP.write_text(_STAMP_TEXT)


@dataclass(slots=True, frozen=True)
class Result:
    """One test of test-runner (`0045_subscribe_update`) as it ended: PASSED, FAILED, SKIPPED,
    TIMEOUT or CRASHED (its process was killed or died during it), or NOT-RUN (the number has
    no test for a broker in this scenario)."""

    number: str
    name: str
    state: str
    detail: str
    seconds: float
    subtests_passed: int = 0


def _parse_log(number: str, output: str, seconds: float, *, timed_out: bool) -> list[Result]:
    """Each test of `number` that test-runner started, with how it ended; one that never ended
    was running when the process timed out or crashed."""
    states: dict[str, tuple[str, str]] = {}
    subtests_passed: dict[str, int] = {}
    lines = _ANSI_RE.sub("", output).splitlines()
    for i, line in enumerate(lines):
        match = _LINE_RE.match(line)
        if not match:
            continue
        if match["running"]:
            states.setdefault(match["running"], ("RUNNING", ""))
        elif match["subtest_passed"] is not None:
            subtests_passed[match["prefix"]] = subtests_passed.get(match["prefix"], 0) + 1
        elif match["skip"] is not None and match["prefix"] in states:
            states[match["prefix"]] = ("SKIPPED", match["skip"].strip())
        elif match["ended"] and states.get(match["ended"], ("", ""))[0] != "SKIPPED":
            if states.get(match["ended"], ("", ""))[0] != "FAILED":
                states[match["ended"]] = (match["state"], "")
        elif match["failed"] and states.get(match["failed"], ("", ""))[0] != "FAILED":
            message = lines[i + 1].strip() if i + 1 < len(lines) else ""
            subtest = f"{match['subtest']}: " if match["subtest"] else ""
            states[match["failed"]] = ("FAILED", f"{subtest}{message} ({match['where']})"[:300])
    unfinished = "TIMEOUT" if timed_out else "CRASHED"
    return [Result(number, name, unfinished if state == "RUNNING" else state, detail, seconds,
                   subtests_passed.get(name, 0))
            for name, (state, detail) in states.items() if name.startswith(number + "_")]


def _kafka_path(work_dir: Path) -> Path | None:
    """A KAFKA_PATH laid out as a Kafka release, from the reference Kafka's jars: bin/kafka-topics.sh
    and bin/kafka-acls.sh are its TopicCommand and AclCommand (the tests that alter or delete
    topics or add ACLs with them, as under trivup), libs/ its jars and bin/kafka-run-class.sh a JVM on them, with which test-runner compiles and
    runs the suite's Java clients (tests/java: 0098's transactional producer, 0113's cooperative
    consumer). The tests then run against either broker."""
    from compat import kafka

    if not kafka.is_fetched():
        return None
    root = work_dir / "kafka"
    (root / "bin").mkdir(parents=True, exist_ok=True)
    if not (root / "libs").exists():
        (root / "libs").symlink_to(kafka.LIB)
    tools = {f"{name}.sh": kafka._jvm(kafka.TOOLS[name], heap="256m", log_level="WARN", log_target="SYSTEM_ERR")
             for name in ("kafka-topics", "kafka-acls")}
    # kafka-run-class.sh's contract: the main class and its arguments, with $CLASSPATH prepended.
    run_class = kafka._jvm("MAIN", heap="256m", log_level="WARN", log_target="SYSTEM_ERR")[:-1]
    jars = run_class.pop()
    scripts = {name: f'{shlex.join(command)} "$@"' for name, command in tools.items()}
    scripts["kafka-run-class.sh"] = f'{shlex.join(run_class)} "$CLASSPATH"{os.pathsep}{shlex.quote(jars)} "$@"'
    for name, command in scripts.items():
        script = root / "bin" / name
        script.write_text(f"#!/bin/sh\nexec {command}\n")
        script.chmod(0o755)
    return root


def run_test(number: str, bootstrap: str, work_dir: Path, *, timeout: float, quick: bool = False,
             sasl: bool = False, scenario: str = "default") -> list[Result]:
    """Run one test number's broker tests of test-runner's `scenario`; its full output goes to
    `work_dir/<number>.log`. With `sasl`, `bootstrap` is a SASL_PLAINTEXT listener and the
    clients log in as SCRAM_USER."""
    from compat.suite_sasl import SCRAM_USER

    conf = work_dir / "test.conf"
    login = (f"security.protocol=SASL_PLAINTEXT\nsasl.mechanism={SASL_MECHANISM}\n"
             f"sasl.username={SCRAM_USER[0]}\nsasl.password={SCRAM_USER[1]}\n") if sasl else ""
    conf.write_text(
        f"bootstrap.servers={bootstrap}\n"
        # Each test-runner process names topics afresh, so runs never see each other's data.
        "test.topic.random=true\n"
        # Two shared cores: the suite's timeouts are tuned for a quiet developer machine.
        "test.timeout.multiplier=3\n"
        + login
    )
    env = {key: value for key, value in os.environ.items() if key != "CI"}  # CI changes test-runner's modes
    env.update({
        "TESTS": number,
        "TEST_SCENARIO": scenario,
        "RDKAFKA_TEST_CONF": str(conf),
        "TEST_KAFKA_VERSION": DATA["broker_version"],
        "LD_LIBRARY_PATH": f"{SOURCE / 'src'}:{SOURCE / 'src-cpp'}",
        "BROKERS": bootstrap,
    })
    if (kafka_path := _kafka_path(work_dir)) is not None:
        env["KAFKA_PATH"] = str(kafka_path)
    started = time.monotonic()
    with open(work_dir / f"{number}.log", "w+b") as log:
        # -Q (quick) silently skips every subtest not marked SUB_TEST_QUICK: the long form runs without.
        args = [str(TEST_RUNNER), "-p1", "-L", *(["-Q"] if quick else [])]
        proc = subprocess.Popen(args, cwd=TESTS_DIR, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=timeout)
            state = "EXITED"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            state = "TIMEOUT"
        log.seek(0)
        output = log.read().decode(errors="replace")
    seconds = time.monotonic() - started
    results = _parse_log(number, output, seconds, timed_out=state == "TIMEOUT")
    if not results:
        ended = ("NOT-RUN", "no broker test of this number ran") if proc.returncode == 0 else (
            "CRASHED" if state == "EXITED" else state, f"exit {proc.returncode} before any test ran")
        return [Result(number, number, *ended, seconds)]
    return results


# A cluster's nodes carry racks RACK<node id>: 0101 (fetch from a follower) names its client.rack so.
CLUSTER_CONFIG = {"replica.selector.class": "org.apache.kafka.common.replica.RackAwareReplicaSelector"}


def cluster_args(nodes: int) -> list[str]:
    """`ottla serve` flags for a cluster of `nodes` (ids 1..nodes, racks RACK1..); none for one."""
    if nodes == 1:
        return []
    return ["--nodes", str(nodes), "--racks", ",".join(f"RACK{node}" for node in range(1, nodes + 1))]


@contextmanager
def broker(kind: str, work_dir: Path, nodes: int = 1, sasl: bool = False, acl: bool = False,
           noautocreate: bool = False) -> Iterator[str]:
    """A fresh broker, Ottla (logging each request at debug level; `nodes` of them in its
    process) or the reference Kafka (one node), configured alike (BROKER_CONFIG, and
    ACL_BROKER_CONFIG with `acl`, NOAUTOCREATE_BROKER_CONFIG with `noautocreate`); with `sasl`, a SASL_PLAINTEXT listener (compat.suite_sasl,
    with SASL_BROKER_CONFIG)."""
    from compat.suite_sasl import add_sasl_listener

    config = {**BROKER_CONFIG, **(ACL_BROKER_CONFIG if acl else {}), **(NOAUTOCREATE_BROKER_CONFIG if noautocreate else {})}
    if kind == "kafka":
        from compat.kafka import ReferenceKafka

        with ReferenceKafka(heap="1g", config=config) as kafka:
            yield add_sasl_listener(kafka, SASL_BROKER_CONFIG) if sasl else kafka.bootstrap_servers
    else:
        from compat.harness import OttlaBroker

        settings = {**config, **(CLUSTER_CONFIG if nodes > 1 else {})}
        with OttlaBroker(work_dir / "ottla", log_level="debug", settings=settings, serve_args=cluster_args(nodes)) as ottla:
            yield add_sasl_listener(ottla, SASL_BROKER_CONFIG) if sasl else ottla.bootstrap


def run(kind: str, numbers: list[str], work_dir: Path, *, timeout: float = 600, quick: bool = False,
        nodes: int = 1, sasl: bool = False, acl: bool = False, noautocreate: bool = False) -> list[Result]:
    build()
    results: list[Result] = []
    scenario = "noautocreate" if noautocreate else "default"
    with broker(kind, work_dir, nodes, sasl, acl, noautocreate) as bootstrap:
        for number in numbers:
            for result in run_test(number, bootstrap, work_dir, timeout=timeout, quick=quick, sasl=sasl, scenario=scenario):
                results.append(result)
                print(f"{result.name:48} {result.state:8} {result.seconds:6.1f}s "
                      f"{result.subtests_passed:3} subtests passed {result.detail}", flush=True)
    return results


def is_known_ottla_failure(result: Result) -> bool:
    """A documented Ottla failure: the listed test, failing at the listed subtest."""
    known = KNOWN_OTTLA_FAILURES.get(result.name)
    return known is not None and result.state == "FAILED" and result.detail.startswith(known["at"])


def unexpected(results: list[Result], kind: str) -> list[Result]:
    """Results that fail the run: a failure, timeout or crash not documented for this broker."""
    return [r for r in results if r.state in ("FAILED", "TIMEOUT", "CRASHED")
            and not (kind == "ottla" and is_known_ottla_failure(r))]


def _results_path(kind: str) -> Path:
    return CACHE / f"results-{kind}.json"


def save_results(kind: str, results: list[Result], by_name: bool = False) -> None:
    """Merge into the last results for this broker (or `ottla-cluster`): a rerun of some numbers
    replaces only theirs; `by_name`, only the tests it ran (a scenario pass runs some of a number's)."""
    rerun = {r.name if by_name else r.number for r in results}
    kept = [r for r in load_results(kind) if (r.name if by_name else r.number) not in rerun]
    merged = sorted(kept + results, key=lambda r: r.name)
    _results_path(kind).write_text(json.dumps([dataclasses.asdict(r) for r in merged], indent=1) + "\n")


def load_results(kind: str) -> list[Result]:
    path = _results_path(kind)
    return [Result(**fields) for fields in json.loads(path.read_text())] if path.exists() else []


def report_section() -> str:
    """The REPORT.md section: each test on Kafka and on Ottla, each Ottla-only failure's cause,
    and every excluded test number with its reason."""
    reported = set(SELECTED) | set(SASL_TESTS) | set(ACL_TESTS) | set(NOAUTOCREATE_TESTS)
    on_cluster = set(CLUSTER_TESTS) | set(CLUSTER_LONG_TESTS) | set(SASL_CLUSTER_TESTS) | set(NOAUTOCREATE_CLUSTER_TESTS)
    kafka = {r.name: r for r in load_results("kafka") if r.number in reported}
    ottla = {r.name: r for r in load_results("ottla") if r.number in reported}

    def cell(result: Result | None) -> str:
        if result is None:
            return "not run"
        return f"{result.state.lower()} ({result.subtests_passed})" if result.subtests_passed else result.state.lower()

    def tally(results: dict[str, Result]) -> str:
        states = [r.state.lower() for r in results.values()]
        return ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states)))

    lines = [
        SECTION_TITLE, "",
        f"librdkafka {LIBRDKAFKA_VERSION}'s own test suite (its `tests/test-runner`, from the rdkafka-sys "
        f"{CRATE_VERSION} crate), {len(set(SELECTED) | set(SASL_TESTS) | set(ACL_TESTS) | set(NOAUTOCREATE_TESTS))} test numbers in full mode (not `-Q`, which drops every "
        "subtest not marked quick), without local tests (`-L`), "
        "one test-runner process per number, against the reference Kafka and against Ottla, one fresh node "
        "each, configured alike (`[broker_config]`: 4 partitions per auto-created topic, as the suite's own "
        f"clusters). Kafka 4.4: {tally(kafka)}. Ottla: {tally(ottla)}. Run: `python -m compat.suite_librdkafka "
        "[--broker ottla|kafka] [--tests 0001,0002]`; the SASL tests ("
        f"{', '.join(SASL_TESTS)}) with `--sasl`, on a SASL_PLAINTEXT listener added beside PLAINTEXT "
        f"({SASL_MECHANISM}, `[sasl]`), the ACL tests ({', '.join(ACL_TESTS)}) with `--acl`, on a broker with "
        "StandardAuthorizer and `allow.everyone.if.no.acl.found=true` (`[acl]`), and test-runner's noautocreate "
        f"scenario ({', '.join(NOAUTOCREATE_TESTS)}) with `--noautocreate`, on a broker with "
        "`auto.create.topics.enable=false`; `--report` rewrites this section from the last runs. The tests that need "
        f"three brokers ({', '.join(sorted(on_cluster))}) run against `ottla serve --nodes {CLUSTER_NODES}` "
        "(`--cluster`, with `--sasl` or `--noautocreate` for those of its passes); the reference Kafka here runs one node.", "",
        f"`tests/integration/test_librdkafka_suite.py` runs the CI subset ({', '.join(CI_TESTS)}) on Ottla and "
        "fails on any failure not in `[known_ottla_failures]` of `compat/suites/librdkafka/tests.toml`.", "",
        "Ottla-only failures (passed on Kafka, not on Ottla): "
        + (", ".join(n for n, o in sorted(ottla.items()) if o.state != "PASSED" and o.state != "SKIPPED"
                     and n in kafka and kafka[n].state == "PASSED") or "none") + ".", "",
        "A cell is the test's end and, in parentheses, how many of its subtests passed (tests without "
        "subtests show none); a failed test stops at its first failing subtest.", "",
        "| test | Kafka 4.4 | Ottla | cause of a failure |",
        "|---|---|---|---|",
    ]
    for name in sorted(kafka.keys() | ottla.keys()):
        k, o = kafka.get(name), ottla.get(name)
        cause = ""
        if o is not None and o.state in ("FAILED", "TIMEOUT", "CRASHED"):
            cause = KNOWN_OTTLA_FAILURES[name]["cause"] if is_known_ottla_failure(o) else f"not yet diagnosed: {o.detail}"
        elif o is not None and o.state == "SKIPPED":
            cause = f"skipped by the test: {o.detail}"
        if not cause and name in KAFKA_FAILURES and k is not None and k.state != "PASSED":
            cause = f"on Kafka: {KAFKA_FAILURES[name]}"
        lines.append(f"| {name} | {cell(k)} | {cell(o)} | {cause} |")
    cluster = {r.name: r for r in load_results("ottla-cluster") if r.number in on_cluster}
    if cluster:
        lines += ["", f"The tests that need three brokers, on `ottla serve --nodes {CLUSTER_NODES}` (the reference Kafka "
                  f"here runs one node; {', '.join(SASL_CLUSTER_TESTS)} over SASL, {', '.join(NOAUTOCREATE_CLUSTER_TESTS)} "
                  "in the noautocreate scenario):", "",
                  f"| test | Ottla, {CLUSTER_NODES} nodes |", "|---|---|"]
        lines += [f"| {name} | {cell(r)}{': ' + r.detail if r.state != 'PASSED' and r.detail else ''} |"
                  for name, r in sorted(cluster.items())]
    lines += ["", "Not selected, by test number:", ""]
    lines += [f"- {number}: {reason}" for number, reason in sorted(EXCLUDED.items())]
    return "\n".join(lines) + "\n"


def write_report_section(path: Path = REPORT_PATH) -> None:
    """Replace this suite's section of REPORT.md (up to the next `## ` heading), or append it."""
    replace_section(path, SECTION_TITLE, report_section())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compat.suite_librdkafka", description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", choices=("ottla", "kafka"), default="ottla")
    parser.add_argument("--tests", help="comma-separated test numbers (default: the whole selection)")
    parser.add_argument("--ci", action="store_true", help="the CI-sized selection the pytest test runs")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per test number")
    parser.add_argument("--quick", action="store_true", help="test-runner's -Q: only the subtests marked quick")
    parser.add_argument("--cluster", action="store_true",
                        help=f"the tests that need several brokers, against Ottla with --nodes {CLUSTER_NODES} (racks RACK1..)")
    parser.add_argument("--sasl", action="store_true",
                        help=f"the SASL tests ({', '.join(SASL_TESTS)}; with --cluster {', '.join(SASL_CLUSTER_TESTS)}), "
                             f"on a SASL_PLAINTEXT listener logging in with {SASL_MECHANISM}")
    parser.add_argument("--acl", action="store_true",
                        help=f"the ACL tests ({', '.join(ACL_TESTS)}), on a broker with an authorizer")
    parser.add_argument("--noautocreate", action="store_true",
                        help=f"test-runner's noautocreate scenario ({', '.join(NOAUTOCREATE_TESTS)}; with --cluster "
                             f"{', '.join(NOAUTOCREATE_CLUSTER_TESTS)}), on a broker that does not auto-create topics")
    parser.add_argument("--work-dir", type=Path, help="keep each test's log and the broker's log here")
    parser.add_argument("--build", action="store_true", help="only fetch and build (a no-op once built)")
    parser.add_argument("--report", action="store_true", help="only rewrite compat/REPORT.md's section from the last runs")
    args = parser.parse_args(argv)
    if args.report:
        write_report_section()
        return 0
    try:
        build()
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"librdkafka suite build failed: {exc}", file=sys.stderr)
        return 1
    if args.build:
        return 0
    nodes = CLUSTER_NODES if args.cluster else 1
    sasl_numbers = SASL_CLUSTER_TESTS if args.cluster else SASL_TESTS
    numbers = (args.tests.split(",") if args.tests else sasl_numbers if args.sasl else ACL_TESTS if args.acl
               else (NOAUTOCREATE_CLUSTER_TESTS if args.cluster else NOAUTOCREATE_TESTS) if args.noautocreate
               else CLUSTER_TESTS + CLUSTER_LONG_TESTS if args.cluster else CI_TESTS if args.ci else SELECTED)
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="ottla-librdkafka-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    if args.cluster and args.broker == "kafka":
        parser.error("--cluster: the reference Kafka runs one node here")
    results = run(args.broker, numbers, work_dir, timeout=args.timeout, quick=args.quick, nodes=nodes, sasl=args.sasl, acl=args.acl,
                  noautocreate=args.noautocreate)
    save_results(args.broker if nodes == 1 else f"{args.broker}-cluster", results, by_name=args.noautocreate)
    bad = unexpected(results, args.broker)
    counts = {state: sum(r.state == state for r in results) for state in sorted({r.state for r in results})}
    print(f"librdkafka {LIBRDKAFKA_VERSION} on {args.broker}: "
          + ", ".join(f"{n} {state.lower()}" for state, n in counts.items())
          + f"; {len(bad)} unexpected; logs in {work_dir}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
