"""`python -m compat.install`: install the matrix's non-Python clients.

* the Node clients, exactly as locked: `npm ci --prefix compat/node`;
* kcat, Debian's package, with apt-get when running as root and it is missing;
* chromium and chromium-driver, Debian's packages, the same way: tests/browser drive the web
  console in them (Selenium, the Python package, is in the `test` extra);
* PostgreSQL's server, Debian's `postgresql` package, the same way: tests/postgres start private
  servers from its binaries (compat/postgres.py) as its unprivileged `postgres` user;
* librdkafka's own test suite, from the pinned rdkafka-sys crate via cargo, built with gcc/make
  (`python -m compat.suite_librdkafka --build`; a no-op once built);
* franz-go's kgo tests and kafka-go's own tests, the pinned modules from the Go module proxy
  compiled with go (`python -m compat.suite_franz_go --build`, `python -m compat.suite_kafka_go
  --build`; a no-op once built);
* the Go drivers (IBM/sarama, segmentio/kafka-go) and the Rust one (rskafka), pinned by
  compat/go's go.mod/go.sum and compat/rust's Cargo.lock, built with go and cargo
  (`python -m compat.drivers.native --build`; a no-op once built);
* the reference Apache Kafka and its Java client driver, through `python -m compat.kafka --fetch`
  (Maven; a no-op once cached), and Kafka 3.9's client jar, whose message definitions
  tests/wire/test_conformance.py checks the oldest versions against (`python -m
  compat.message_definitions --fetch`);
* the Kafka Streams applications and the Kafka Connect worker with our connectors
  (compat/java/streams and compat/java/connect; Maven, `python -m compat.streams --build` and
  `python -m compat.connect --build`; a no-op once built);
* the schema registry, Apicurio Registry as its project publishes it on Maven Central, unpacked by
  compat/java/registry (`python -m compat.registry --build`; a no-op once unpacked; it runs on the
  machine's JDK 21+).

A tool that cannot be installed here (no npm, not root) is reported and skipped: the matrix then
shows that client as not installed, and the pytest suite fails on it under CI=true. A command
that runs and fails stops the install with its exit status.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys

from compat.clients import NODE_DIR
from compat.postgres import SERVICE_USER, PostgresUnavailable, server_bin_dir


def _run(*cmd: str, env: dict[str, str] | None = None) -> None:
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, env=env)


def install_node() -> None:
    if shutil.which("npm") is None:
        print("npm not found: the Node clients will be reported as not installed", file=sys.stderr)
        return
    _run("npm", "ci", "--prefix", str(NODE_DIR), "--no-audit", "--no-fund")


def install_kcat() -> None:
    if shutil.which("kcat"):
        return
    _apt_install("kcat missing", "kcat will be reported as not installed", "kcat")


def install_chromium() -> None:
    """Debian's chromium with the chromedriver built from the same source, so the two match."""
    if shutil.which("chromium") and shutil.which("chromedriver"):
        return
    _apt_install("chromium missing", "the browser tests will be skipped", "chromium", "chromium-driver")


def install_postgresql() -> None:
    """Debian's PostgreSQL server; the package also creates the `postgres` user that
    compat/postgres.py runs initdb and postgres as when we are root."""
    try:
        server_bin_dir()
    except PostgresUnavailable:
        _apt_install("PostgreSQL missing", "the PostgreSQL tests will be skipped", "postgresql")
        if os.geteuid() == 0:
            server_bin_dir()  # raises if the package did not provide the binaries after all
        return
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVICE_USER)
        except KeyError:
            _run("useradd", "--system", "--user-group", "--no-create-home", SERVICE_USER)


def _apt_install(missing: str, consequence: str, *packages: str) -> None:
    """Debian `packages` through apt-get when root; otherwise say what is `missing` and its
    `consequence`."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        print(f"{missing} and apt-get unavailable or not root: {consequence}", file=sys.stderr)
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _run("apt-get", "update", "-qq", env=env)
    _run("apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages, env=env)


def install_librdkafka_suite() -> None:
    """librdkafka's own test suite: its sources from the pinned rdkafka-sys crate, built once."""
    _build_with("cargo", "librdkafka's suite", "compat.suite_librdkafka")


def install_go_suites() -> None:
    """franz-go's kgo tests and kafka-go's tests: the pinned modules from the Go module proxy, compiled once."""
    _build_with("go", "franz-go's and kafka-go's suites", "compat.suite_franz_go", "compat.suite_kafka_go")


def install_native_drivers() -> None:
    """The compiled matrix drivers: each built with its toolchain, skipped without it."""
    _run(sys.executable, "-m", "compat.drivers.native", "--build")


def install_streams_and_connect() -> None:
    """Kafka Streams and Kafka Connect 4.4 from Maven Central, with our applications and connectors,
    the schema registry, and MirrorMaker 2 (4.3.1: connect-mirror 4.4.0 is not on Maven Central)."""
    _build_with("mvn", "Kafka Streams, Connect, the schema registry and MirrorMaker 2", "compat.streams",
                "compat.connect", "compat.registry", "compat.mirror")


def _build_with(tool: str, what: str, *modules: str) -> None:
    """`python -m <module> --build` for each module when `tool` is on PATH; without it, say
    that `what` will be reported as not built (its tests skip, or fail under CI)."""
    if shutil.which(tool) is None:
        print(f"{tool} not found: {what} will be reported as not built", file=sys.stderr)
        return
    for module in modules:
        _run(sys.executable, "-m", module, "--build")


def main() -> int:
    try:
        install_node()
        install_kcat()
        install_chromium()
        install_postgresql()
        install_librdkafka_suite()
        install_go_suites()
        install_native_drivers()
        _run(sys.executable, "-m", "compat.kafka", "--fetch")
        _run(sys.executable, "-m", "compat.message_definitions", "--fetch")
        install_streams_and_connect()
    except subprocess.CalledProcessError as exc:
        print(f"install failed: {' '.join(exc.cmd)} exited {exc.returncode}", file=sys.stderr)
        return exc.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
