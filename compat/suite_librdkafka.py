"""librdkafka's own integration suite (its `tests/test-runner`) against Ottla or the reference Kafka.

The sources come pinned from the `rdkafka-sys` crate, which bundles librdkafka with its tests:
``build()`` vendors that crate with cargo into ``.cache/librdkafka/<crate version>/`` and builds
the library and ``test-runner`` with gcc/make (a no-op once built). ``compat/suites/librdkafka/
tests.toml`` is the data: the selected tests, each exclusion with its reason, the CI-sized subset,
and Ottla's known failures with their causes.

Each selected test number runs in its own ``test-runner`` process (a hang costs one timeout, not
the run) in quick mode, without the local-only tests (``-L``), against a fresh broker per run:

    python -m compat.suite_librdkafka [--broker ottla|kafka] [--tests 0001,0002] [--ci]
    python -m compat.suite_librdkafka --build
"""

from __future__ import annotations

import argparse
import os
import re
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

REPO = Path(__file__).resolve().parent.parent
DATA = tomllib.loads((REPO / "compat" / "suites" / "librdkafka" / "tests.toml").read_text())
CRATE_VERSION: str = DATA["crate_version"]
LIBRDKAFKA_VERSION = CRATE_VERSION.split("+", 1)[1]
CACHE = REPO / ".cache" / "librdkafka" / CRATE_VERSION
SOURCE = CACHE / "vendor" / f"rdkafka-sys-{CRATE_VERSION}" / "librdkafka"
TESTS_DIR = SOURCE / "tests"
TEST_RUNNER = TESTS_DIR / "test-runner"
_STAMP = CACHE / ".built"
# Debian packages the build links against (the suite is never needed by `ottla serve`).
BUILD_PACKAGES = ("gcc", "g++", "make", "pkg-config", "libssl-dev", "zlib1g-dev", "libzstd-dev", "liblz4-dev")

SELECTED: list[str] = sorted(DATA["selected"])
CI_TESTS: list[str] = sorted(DATA["ci"]["tests"])
EXCLUDED: dict[str, str] = DATA["excluded"]
KNOWN_OTTLA_FAILURES: dict[str, str] = DATA["known_ottla_failures"]
BROKER_CONFIG: dict[str, str] = DATA["broker_config"]

# A summary line of test-runner: "| 0001_multiobj    |     PASSED |   1.234s | reason".
_SUMMARY_RE = re.compile(r"^\|\s*(?P<name>\d{4}_\S+)\s*\|\s*(?P<state>[A-Z-]+)\s*\|\s*[\d.]+s\s*\|\s?(?P<detail>.*)$")
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")


def _run(*cmd: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, cwd=cwd, env=env)


def is_built() -> bool:
    return _STAMP.exists() and TEST_RUNNER.exists()


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
    _STAMP.write_text(CRATE_VERSION + "\n")


@dataclass(slots=True, frozen=True)
class Result:
    """One test of test-runner (`0045_subscribe_update`) as it ended: PASSED, FAILED, SKIPPED,
    or TIMEOUT/CRASHED when its process did not reach the summary."""

    number: str
    name: str
    state: str
    detail: str
    seconds: float


def _parse_summary(number: str, output: str, seconds: float) -> list[Result]:
    results = []
    for line in _ANSI_RE.sub("", output).splitlines():
        match = _SUMMARY_RE.match(line)
        if match and match["name"].startswith(number + "_"):
            results.append(Result(number, match["name"], match["state"], match["detail"].strip(), seconds))
    return results


def _last_failure(output: str) -> str:
    lines = [line for line in _ANSI_RE.sub("", output).splitlines() if "FAIL" in line or "ERROR" in line]
    return lines[-1].strip()[:300] if lines else ""


def run_test(number: str, bootstrap: str, work_dir: Path, *, timeout: float) -> list[Result]:
    """Run one test number's broker tests; its full output goes to `work_dir/<number>.log`."""
    conf = work_dir / "test.conf"
    conf.write_text(
        f"bootstrap.servers={bootstrap}\n"
        # Each test-runner process names topics afresh, so runs never see each other's data.
        "test.topic.random=true\n"
        # Two shared cores: the suite's timeouts are tuned for a quiet developer machine.
        "test.timeout.multiplier=3\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "CI"}  # CI changes test-runner's modes
    env.update({
        "TESTS": number,
        "RDKAFKA_TEST_CONF": str(conf),
        "TEST_KAFKA_VERSION": DATA["broker_version"],
        "LD_LIBRARY_PATH": f"{SOURCE / 'src'}:{SOURCE / 'src-cpp'}",
    })
    started = time.monotonic()
    with open(work_dir / f"{number}.log", "w+b") as log:
        proc = subprocess.Popen([str(TEST_RUNNER), "-p1", "-L", "-Q"], cwd=TESTS_DIR, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=timeout)
            state = "CRASHED"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            state = "TIMEOUT"
        log.seek(0)
        output = log.read().decode(errors="replace")
    seconds = time.monotonic() - started
    results = _parse_summary(number, output, seconds)
    if state == "TIMEOUT" or not results:
        detail = f"exit {proc.returncode}: {_last_failure(output)}" if state == "CRASHED" else f"after {timeout:.0f}s"
        return [Result(number, number, state, detail, seconds)]
    return results


@contextmanager
def broker(kind: str, work_dir: Path) -> Iterator[str]:
    """A fresh single broker, Ottla (logging each request at debug level) or the reference Kafka,
    configured alike (BROKER_CONFIG)."""
    if kind == "kafka":
        from compat.kafka import ReferenceKafka

        with ReferenceKafka(heap="1g", config=BROKER_CONFIG) as kafka:
            yield kafka.bootstrap_servers
    else:
        from compat.harness import OttlaBroker

        with OttlaBroker(work_dir / "ottla", log_level="debug", settings=BROKER_CONFIG) as ottla:
            yield ottla.bootstrap


def run(kind: str, numbers: list[str], work_dir: Path, *, timeout: float = 300) -> list[Result]:
    build()
    results: list[Result] = []
    with broker(kind, work_dir) as bootstrap:
        for number in numbers:
            for result in run_test(number, bootstrap, work_dir, timeout=timeout):
                results.append(result)
                print(f"{result.name:48} {result.state:8} {result.seconds:6.1f}s {result.detail}", flush=True)
    return results


def unexpected(results: list[Result], kind: str) -> list[Result]:
    """Results that fail the run: a failure, timeout or crash not documented for this broker."""
    known = KNOWN_OTTLA_FAILURES if kind == "ottla" else {}
    return [r for r in results if r.state in ("FAILED", "TIMEOUT", "CRASHED", "RUNNING") and r.name not in known]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compat.suite_librdkafka", description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", choices=("ottla", "kafka"), default="ottla")
    parser.add_argument("--tests", help="comma-separated test numbers (default: the whole selection)")
    parser.add_argument("--ci", action="store_true", help="the CI-sized selection the pytest test runs")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per test number")
    parser.add_argument("--work-dir", type=Path, help="keep each test's log and the broker's log here")
    parser.add_argument("--build", action="store_true", help="only fetch and build (a no-op once built)")
    args = parser.parse_args(argv)
    try:
        build()
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"librdkafka suite build failed: {exc}", file=sys.stderr)
        return 1
    if args.build:
        return 0
    numbers = args.tests.split(",") if args.tests else CI_TESTS if args.ci else SELECTED
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="ottla-librdkafka-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    results = run(args.broker, numbers, work_dir, timeout=args.timeout)
    bad = unexpected(results, args.broker)
    counts = {state: sum(r.state == state for r in results) for state in sorted({r.state for r in results})}
    print(f"librdkafka {LIBRDKAFKA_VERSION} on {args.broker}: "
          + ", ".join(f"{n} {state.lower()}" for state, n in counts.items())
          + f"; {len(bad)} unexpected; logs in {work_dir}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
