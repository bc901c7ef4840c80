"""Apache Kafka itself as a test-time reference: the broker, its tools and the Java client.

Nothing here is an Ottla runtime dependency. ``fetch()`` builds the Maven project in
``compat/java`` (kafka_2.13, kafka-tools, a small kafka-clients driver, all of the release
named by ``kafka.version`` in its pom, and the tool server that runs the tools in one JVM) into
``.cache/kafka/<version>/``; ``ReferenceKafka`` runs a single KRaft node from those jars and
``ReferenceKafkaCluster`` three, with the node controls of the cluster scenarios; ``run_tool``
and ``run_driver`` point Kafka's tools and the Java client at any bootstrap address, Ottla's or
Kafka's, which is what the differential tests need.

``python -m compat.kafka --fetch`` only fetches (the README's test command calls it);
``python -m compat.kafka`` starts a broker and prints its address until Ctrl-C.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import fcntl
import hashlib
import json
import logging
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from types import TracebackType
from typing import Any

from kafka import KafkaAdminClient  # type: ignore[import-untyped]
from kafka.errors import KafkaError  # type: ignore[import-untyped]

from compat import procfs
from compat.harness import BrokerError, find_coordinator

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
JAVA_PROJECT = REPO / "compat" / "java"
LOG4J2_CONFIG = JAVA_PROJECT / "log4j2.properties"


def _kafka_version() -> str:
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    version = ET.parse(JAVA_PROJECT / "pom.xml").getroot().findtext("m:properties/m:kafka.version", namespaces=ns)
    if not version:
        raise RuntimeError(f"no kafka.version in {JAVA_PROJECT / 'pom.xml'}")
    return version


KAFKA_VERSION = _kafka_version()
CACHE = REPO / ".cache" / "kafka" / KAFKA_VERSION
LIB = CACHE / "lib"
DRIVER_JAR = CACHE / "driver" / "ottla-kafka-driver.jar"
TOOL_SERVER_JAR = CACHE / "toolserver" / "ottla-tool-server.jar"
_STAMP = CACHE / ".fetched"

# Script name in Kafka's bin/ -> the main class it runs, as of 4.x (most tools moved from
# kafka.admin (Scala) to org.apache.kafka.tools; ConfigCommand moved last, KAFKA-17073).
TOOLS = {
    "kafka-topics": "org.apache.kafka.tools.TopicCommand",
    "kafka-console-producer": "org.apache.kafka.tools.ConsoleProducer",
    "kafka-console-consumer": "org.apache.kafka.tools.consumer.ConsoleConsumer",
    "kafka-consumer-groups": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
    "kafka-configs": "org.apache.kafka.tools.ConfigCommand",
    "kafka-get-offsets": "org.apache.kafka.tools.GetOffsetShell",
    "kafka-delete-records": "org.apache.kafka.tools.DeleteRecordsCommand",
    "kafka-transactions": "org.apache.kafka.tools.TransactionsCommand",
    "kafka-broker-api-versions": "org.apache.kafka.tools.BrokerApiVersionsCommand",
    "kafka-features": "org.apache.kafka.tools.FeatureCommand",
    "kafka-metadata-quorum": "org.apache.kafka.tools.MetadataQuorumCommand",
    "kafka-cluster": "org.apache.kafka.tools.ClusterTool",
    "kafka-producer-perf-test": "org.apache.kafka.tools.ProducerPerformance",
    "kafka-consumer-perf-test": "org.apache.kafka.tools.ConsumerPerformance",
    "kafka-e2e-latency": "org.apache.kafka.tools.EndToEndLatency",
    "kafka-verifiable-producer": "org.apache.kafka.tools.VerifiableProducer",
    "kafka-verifiable-consumer": "org.apache.kafka.tools.VerifiableConsumer",
    "kafka-dump-log": "org.apache.kafka.tools.DumpLogSegments",
    "kafka-storage": "kafka.tools.StorageTool",
    "kafka-log-dirs": "org.apache.kafka.tools.LogDirsCommand",
    "kafka-leader-election": "org.apache.kafka.tools.LeaderElectionCommand",
    "kafka-reassign-partitions": "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
    "kafka-acls": "org.apache.kafka.tools.AclCommand",
    "kafka-client-metrics": "org.apache.kafka.tools.ClientMetricsCommand",
    "kafka-groups": "org.apache.kafka.tools.GroupsCommand",
    "kafka-share-groups": "org.apache.kafka.tools.consumer.group.ShareGroupCommand",
    "kafka-streams-groups": "org.apache.kafka.tools.streams.StreamsGroupCommand",
    "kafka-delegation-tokens": "org.apache.kafka.tools.DelegationTokenCommand",
}


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java:
        raise RuntimeError("java not found: Kafka 4.x needs a JDK 17+ on PATH or in JAVA_HOME")
    return java


# Kafka's tools that keep a JVM of their own rather than run in the shared tool server
# (compat/java/toolserver). The verifiable clients and the replica verifier end by System.exit and
# print their last events from hooks added to the Runtime, which only their own JVM's exit runs;
# kafka-transactions never closes its Admin (its exit does), which would leave the server to be
# retired after every run; the perf tools' figures (compat/bench.py) are those of a fresh JVM, as
# an operator's run gives them.
OWN_JVM_TOOLS = frozenset({
    "org.apache.kafka.tools.TransactionsCommand",
    "org.apache.kafka.tools.VerifiableProducer",
    "org.apache.kafka.tools.VerifiableConsumer",
    "org.apache.kafka.tools.VerifiableShareConsumer",
    "org.apache.kafka.tools.ReplicaVerificationTool",
    "org.apache.kafka.tools.ProducerPerformance",
    "org.apache.kafka.tools.ConsumerPerformance",
    "org.apache.kafka.tools.ShareConsumerPerformance",
})


def _built_modules() -> list[str]:
    """The modules compat/java/pom.xml builds for fetch(); the other folders of compat/java
    (Streams, Connect, the registry...) have runners of their own, so an edit to them, or a
    new folder, must not make the reference Kafka look unfetched."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    return [m.text or "" for m in ET.parse(JAVA_PROJECT / "pom.xml").getroot().findall("m:modules/m:module", ns)]


def _inputs_digest() -> str:
    """Everything the Maven build reads, so an edit to a pom or the driver triggers a rebuild."""
    h = hashlib.sha256()
    files = [JAVA_PROJECT / "pom.xml", LOG4J2_CONFIG]
    for module in _built_modules():
        files += [path for path in (JAVA_PROJECT / module).rglob("*") if path.is_file() and "target" not in path.parts]
    for path in sorted(files):
        h.update(str(path.relative_to(JAVA_PROJECT)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def is_fetched() -> bool:
    return _STAMP.exists() and DRIVER_JAR.exists() and TOOL_SERVER_JAR.exists() and _STAMP.read_text() == _inputs_digest()


def fetch() -> Path:
    """Resolve the reference Kafka and build the driver into CACHE; a no-op when up to date."""
    CACHE.mkdir(parents=True, exist_ok=True)
    # Parallel test processes may all ask at once; one builds, the rest find it done.
    with open(CACHE.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_fetched():
            return CACHE
        mvn = shutil.which("mvn")
        if not mvn:
            raise RuntimeError("mvn not found: the reference Kafka is resolved with Maven 3.8+")
        started = time.monotonic()
        # Built into a fresh directory beside the cache (copy-dependencies never deletes, so
        # building over the old one would leave two versions on the class path), then swapped in:
        # JVMs that other processes started from the old jars keep running meanwhile.
        staging = Path(tempfile.mkdtemp(prefix=f".build-{KAFKA_VERSION}-", dir=CACHE.parent))
        try:
            # -q leaves only errors, but Maven 3.8 still writes colour resets: keep its output for a failure.
            build = subprocess.run(
                [mvn, "-B", "-q", "-f", str(JAVA_PROJECT / "pom.xml"), f"-Dcache.dir={staging}", "package"], capture_output=True, text=True
            )
            if build.returncode != 0:
                raise RuntimeError(f"Maven build of {JAVA_PROJECT} failed ({build.returncode}):\n{build.stdout}{build.stderr}")
            for built in (LIB, DRIVER_JAR.parent, TOOL_SERVER_JAR.parent):
                _swap_in(staging / built.name, built, staging)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        _STAMP.write_text(_inputs_digest())
        log.info("fetched Kafka %s into %s in %.1fs", KAFKA_VERSION, CACHE, time.monotonic() - started)
    return CACHE


def _swap_in(new: Path, place: Path, trash: Path) -> None:
    """Put directory `new` at `place` by two renames, the old one moved into `trash` (deleted
    with it): a JVM already running from `place` finds the same jar names there afterwards."""
    if place.exists():
        os.rename(place, trash / f"old-{place.name}")
    os.rename(new, place)


def _require_fetched() -> None:
    if not is_fetched():
        raise RuntimeError(f"reference Kafka {KAFKA_VERSION} is not fetched: run `python -m compat.kafka --fetch`")


def _jvm(main_class: str, *args: str, heap: str, log_level: str, log_target: str, classpath: tuple[Path, ...] = ()) -> list[str]:
    # The GC settings bin/kafka-run-class.sh gives every Kafka JVM (KAFKA_JVM_PERFORMANCE_OPTS),
    # so throughput and latency compared against Ottla are those of a stock install.
    return [
        _java(),
        f"-Xmx{heap}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:InitiatingHeapOccupancyPercent=35",
        "-XX:+ExplicitGCInvokesConcurrent",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}",
        f"-Dottla.log.level={log_level}",
        f"-Dottla.log.target={log_target}",
        "-cp",
        os.pathsep.join(map(str, (LIB / "*", *classpath))),
        main_class,
        *args,
    ]


def run_tool(tool: str, *args: str, input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run one of Kafka's tools, by script name (a TOOLS key) or main class, and capture its output.

    The caller passes the bootstrap the way that tool wants it (``--bootstrap-server`` for most);
    a non-zero exit is returned, not raised, since refusing is often what a test checks. Kafka's
    tools (``org.apache.kafka.tools``) run in a long-lived tool server JVM, but for OWN_JVM_TOOLS
    and any other main class: the exit code and output are those of the tool's own JVM, without
    its start-up (seconds of CPU each). ``subprocess.TimeoutExpired`` after ``timeout`` either way.
    """
    _require_fetched()
    main_class = TOOLS.get(tool, tool)
    cmd = _jvm(main_class, *args, heap="512m", log_level="WARN", log_target="SYSTEM_ERR")
    if not main_class.startswith("org.apache.kafka.tools.") or main_class in OWN_JVM_TOOLS:
        return subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
    server = _take_tool_server()
    try:
        completed, leaked = server.run(cmd, main_class, list(args), input, timeout)
    except BaseException:
        server.close()
        raise
    if leaked:
        # A client the tool never closed stays connected and retrying in that JVM; its own
        # process would have ended it.
        log.info("%s left %s running: retiring its tool server", main_class, ", ".join(leaked))
        server.close()
    else:
        with _tool_servers_lock:
            _idle_tool_servers.append(server)
    return completed


class _ToolServer:
    """A JVM running compat/java/toolserver: one tool at a time, each request a JSON line.

    It was started from the jars of one fetch in one working directory (``key``): a tool's
    relative paths resolve against it, and a re-fetch or ``chdir`` calls for a new server.
    """

    def __init__(self, key: tuple[str, str]) -> None:
        self.key = key
        self._stderr = tempfile.TemporaryFile()
        cmd = _jvm("dev.ottla.compat.ToolServer", heap="512m", log_level="WARN", log_target="SYSTEM_ERR", classpath=(TOOL_SERVER_JAR,))
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr)
        self._replies: queue.Queue[bytes | None] = queue.Queue()
        threading.Thread(target=self._read_replies, name="tool-server-replies", daemon=True).start()

    def _read_replies(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self._replies.put(line)
        self._replies.put(None)

    def alive(self) -> bool:
        return self._proc.poll() is None

    def run(self, cmd: list[str], main_class: str, args: list[str], input: str | None,
            timeout: float) -> tuple[subprocess.CompletedProcess[str], list[str]]:
        """The tool's result as its own process would give it, and the Kafka client threads it left running."""
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps({"main": main_class, "args": args, "stdin": input}).encode() + b"\n")
        self._proc.stdin.flush()
        try:
            line = self._replies.get(timeout=timeout)
        except queue.Empty:
            raise subprocess.TimeoutExpired(cmd, timeout) from None
        if line is None:
            self._proc.wait()
            self._stderr.seek(0)
            raise RuntimeError(f"the tool server exited {self._proc.returncode}: {self._stderr.read().decode(errors='replace')[-2000:]}")
        reply = json.loads(line)
        # As subprocess.run(text=True) gives them: universal newlines.
        stdout, stderr = (reply[name].replace("\r\n", "\n").replace("\r", "\n") for name in ("stdout", "stderr"))
        return subprocess.CompletedProcess(cmd, reply["exit"], stdout, stderr), reply["leaked"]

    def close(self) -> None:
        """End of input ends the server; one stuck in a tool is killed."""
        if self._proc.stdin is not None:
            try:
                self._proc.stdin.close()
            except OSError:
                pass
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._stderr.close()


_idle_tool_servers: list[_ToolServer] = []
_tool_servers_lock = threading.Lock()


def _take_tool_server() -> _ToolServer:
    """An idle tool server from this fetch and working directory, or a new one: one per caller
    running a tool at the same time, each kept for the next."""
    key = (_STAMP.read_text(), os.getcwd())
    with _tool_servers_lock:
        mine = next((s for s in _idle_tool_servers if s.key == key and s.alive()), None)
        stale = [s for s in _idle_tool_servers if s.key != key or not s.alive()]
        _idle_tool_servers[:] = [s for s in _idle_tool_servers if s is not mine and s not in stale]
    for server in stale:
        server.close()
    return mine or _ToolServer(key)


@atexit.register
def close_tool_servers() -> None:
    """Stop the idle tool servers (at interpreter exit; a server also ends when its pipe closes)."""
    with _tool_servers_lock:
        servers, _idle_tool_servers[:] = list(_idle_tool_servers), []
    for server in servers:
        server.close()


def driver_command(bootstrap: str, topic: str, action: str, *, config: dict[str, str] | None = None,
                   topic_config: dict[str, str] | None = None, plan: dict[str, str] | None = None,
                   **options: str | int | None) -> list[str]:
    """The Java driver's command line; each of ``options`` becomes ``--name-with-dashes value``."""
    _require_fetched()
    cmd = [_java(), "-Xmx256m", "-jar", str(DRIVER_JAR), bootstrap, topic, action]
    for name, value in options.items():
        if value is not None:
            cmd += ["--" + name.replace("_", "-"), str(value)]
    for flag, settings in (("-t", topic_config), ("-p", plan), ("-c", config)):
        cmd += [arg for key, setting in (settings or {}).items() for arg in (flag, f"{key}={setting}")]
    return cmd


def run_driver(
    bootstrap: str,
    topic: str,
    action: str,
    *,
    partitions: int | None = None,
    count: int | None = None,
    timeout_ms: int | None = None,
    group: str | None = None,
    topic_config: dict[str, str] | None = None,
    plan: dict[str, str] | None = None,
    config: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run the Java client driver (compat/java/driver) and return its JSON result.

    Actions: ``create-topic`` (``partitions``, ``topic_config``), ``produce`` (``count`` records
    ``k{i}``/``v{i}`` with header ``seq``; one transaction when ``config`` has ``transactional.id``),
    ``consume`` (every partition from the beginning, by assignment), ``consume-group`` (subscribe
    as ``group`` until ``count`` records, commit, leave), ``admin`` (the admin calls of Kafka's
    tools, each reported separately), ``admin-plan`` (the matrix's admin plan, its numbers in ``plan``), ``transactions`` and ``ctp`` (the matrix's transaction plans, compat/drivers/__init__.py). ``config`` goes to the client as is. The result has ``ok``;
    on a refusal also ``error`` (the Kafka exception's simple name) and ``message``.
    """
    cmd = driver_command(bootstrap, topic, action, partitions=partitions, count=count, timeout_ms=timeout_ms,
                         group=group, topic_config=topic_config, plan=plan, config=config)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=(timeout_ms or 30_000) / 1000 + 60)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"driver exited {proc.returncode}: {proc.stderr.strip()}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _random_cluster_id() -> str:
    # Kafka's Uuid.randomUuid(): 16 random bytes, URL-safe base64 without padding, never
    # starting with '-' so the id cannot be mistaken for a command-line flag.
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


class ReferenceKafka:
    """A single-node Apache Kafka (KRaft, combined broker and controller) on loopback.

    The log dir and both ports are fixed at construction, so ``restart()`` brings back the same
    broker with its data. ``close()`` (or leaving the ``with`` block) stops it and removes the
    temp dir it made.
    """

    def __init__(self, log_dir: Path | None = None, *, heap: str = "512m", config: dict[str, str] | None = None, cpus: str | None = None) -> None:
        """`cpus` pins the broker's JVM to those CPUs from its start (taskset's list, "0" or
        "0,1"), so that it sizes its thread pools and GC for them as on a machine of that size."""
        _require_fetched()
        self._own_dir = log_dir is None
        self.dir = Path(tempfile.mkdtemp(prefix="ottla-ref-kafka-")) if log_dir is None else log_dir
        self.heap = heap
        self.cpus = cpus
        self.port = _free_port()
        self.controller_port = _free_port()
        while self.controller_port == self.port:  # the kernel may hand the just-freed port out again
            self.controller_port = _free_port()
        self.bootstrap_servers = f"127.0.0.1:{self.port}"
        self.log_file = self.dir / "kafka.out"
        self.startup_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._properties = self.dir / "server.properties"
        self._write_properties(config or {})

    def _write_properties(self, overrides: dict[str, str]) -> None:
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            # Kafka 4.x dynamic quorum (KIP-853): a bootstrap list plus `format --standalone`.
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.dir / "data"),
            "num.partitions": "1",
            "auto.create.topics.enable": "true",
            # One node: every internal topic must fit on it.
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # No one else will join; the default 3 s wait only slows every first group join.
            "group.initial.rebalance.delay.ms": "0",
            **overrides,
        }
        self._properties.write_text("".join(f"{k}={v}\n" for k, v in props.items()))

    def _format(self) -> None:
        if (self.dir / "data" / "meta.properties").exists():
            return
        args = ("format", "-t", _random_cluster_id(), "-c", str(self._properties), "--standalone")
        cmd = _jvm(TOOLS["kafka-storage"], *args, heap="256m", log_level="WARN", log_target="SYSTEM_ERR")
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"kafka-storage format failed ({proc.returncode}): {proc.stdout}{proc.stderr}")

    def start(self) -> None:
        if self._proc is not None:
            return
        started = time.monotonic()
        self._format()
        cmd = _jvm("kafka.Kafka", str(self._properties), heap=self.heap, log_level="INFO", log_target="SYSTEM_OUT")
        if self.cpus:
            cmd = ["taskset", "--cpu-list", self.cpus, *cmd]
        # Own session: a Ctrl-C at the terminal reaches only Python, which then stops Kafka in order.
        with open(self.log_file, "ab") as out:
            self._proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_ready(deadline=started + 120)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        log.info("reference Kafka %s ready on %s in %.1fs", KAFKA_VERSION, self.bootstrap_servers, self.startup_seconds)

    def _wait_ready(self, deadline: float) -> None:
        """Ready when the listener accepts and Metadata over it names a broker (it is unfenced)."""
        assert self._proc is not None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"Kafka exited with {self._proc.returncode} while starting:\n{self._log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                admin = KafkaAdminClient(bootstrap_servers=self.bootstrap_servers, request_timeout_ms=5000)
                try:
                    if admin.describe_cluster()["brokers"]:
                        return
                finally:
                    admin.close()
            except (OSError, KafkaError):
                pass
            time.sleep(0.1)
        raise TimeoutError(f"Kafka not ready on {self.bootstrap_servers}:\n{self._log_tail()}")

    def _log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    @property
    def pid(self) -> int:
        """The broker JVM's process id, as OttlaBroker.pid gives Ottla's."""
        assert self._proc is not None, "not running"
        return self._proc.pid

    def rss_bytes(self) -> int:
        """Resident set size of the broker JVM, for the idle-memory comparison; ProcessLookupError
        once it is stopped, as for any process that ended (samplers outlive it)."""
        if self._proc is None:
            raise ProcessLookupError("the reference Kafka is not running")
        return procfs.rss_bytes(self._proc.pid)

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM (Kafka's controlled shutdown), then SIGKILL if it has not exited in ``timeout``."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("Kafka ignored SIGTERM for %.0fs; killing it", timeout)
            proc.kill()
            proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def reconfigure(self, overrides: dict[str, str]) -> None:
        """Restart with `overrides` on top of the base properties. Given `listeners` (and their
        protocol map), the CONTROLLER listener is kept: the node's own quorum needs it."""
        overrides = dict(overrides)
        if "listeners" in overrides:
            overrides["listeners"] += f",CONTROLLER://127.0.0.1:{self.controller_port}"
            protocols = overrides.get("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT")
            overrides["listener.security.protocol.map"] = protocols + ",CONTROLLER:PLAINTEXT"
        self.stop()
        self._write_properties(overrides)
        self.start()

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> ReferenceKafka:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


# Kafka's production shape, as compat.harness.CLUSTER_SETTINGS gives Ottla's 3-node cluster:
# every partition, the internal topics' too, on all three nodes, an acks=all write needing two.
CLUSTER_NODES = 3
CLUSTER_SETTINGS = {
    "default.replication.factor": str(CLUSTER_NODES),
    "min.insync.replicas": "2",
    "offsets.topic.replication.factor": str(CLUSTER_NODES),
    "transaction.state.log.replication.factor": str(CLUSTER_NODES),
    "transaction.state.log.min.isr": "2",
    "share.coordinator.state.topic.replication.factor": str(CLUSTER_NODES),
    "share.coordinator.state.topic.min.isr": "2",
    # Produce quotas (the scenarios pace producers with one, as Ottla's delay fault does) are
    # measured over the last 2 s rather than 11, so a new quota holds from the first second.
    "quota.window.num": "2",
}
# How long a node's controlled shutdown may take: its leadership moves, then its JVM exits
# (seconds here; a few tens of seconds on a loaded machine).
CONTROLLED_SHUTDOWN_TIMEOUT_S = 120


class ReferenceKafkaCluster:
    """Three Apache Kafka nodes on loopback, each a KRaft broker and controller of one static
    quorum (``controller.quorum.voters``, kraft.version 0): the reference for the cluster
    scenarios that compat.harness.OttlaCluster runs against Ottla, with its node controls.

    Node ids are 1..3 as Ottla's, and the node controls mean what OttlaCluster's mean.
    ``stop_node`` is a controlled shutdown (SIGTERM, as kafka-server-stop.sh sends, and wait
    for the JVM to exit): the node moves its leadership away before it closes.
    ``crash_node`` kills the JVM (SIGKILL: no controlled shutdown), so the controller fences it
    only when its heartbeats have stopped for ``broker.session.timeout.ms`` (9 s): until then
    Metadata still lists it and it still leads its partitions and is in their ISRs.
    ``isolate_node`` freezes it (SIGSTOP): its sockets accept connections and never answer, and
    it is fenced the same way. ``start_node`` resumes a frozen node or starts a stopped or
    crashed one on its former ports and data, and returns once every partition has its
    replicas back in sync (as Ottla's nodes rejoin every ISR at once).
    """

    def __init__(self, work_dir: Path | None = None, *, heap: str = "448m", config: dict[str, str] | None = None) -> None:
        _require_fetched()
        self._own_dir = work_dir is None
        self.dir = Path(tempfile.mkdtemp(prefix="ottla-ref-kafka-cluster-")) if work_dir is None else work_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.heap = heap
        ports: set[int] = set()
        while len(ports) < 2 * CLUSTER_NODES:  # the kernel may hand a just-freed port out again
            ports.add(_free_port())
        listed = sorted(ports)
        self.node_ids = list(range(1, CLUSTER_NODES + 1))
        self.ports = dict(zip(self.node_ids, listed[:CLUSTER_NODES]))
        self.controller_ports = dict(zip(self.node_ids, listed[CLUSTER_NODES:]))
        self.bootstrap = ",".join(f"127.0.0.1:{self.ports[node]}" for node in self.node_ids)
        self.startup_seconds: float | None = None
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._frozen: set[int] = set()
        voters = ",".join(f"{node}@127.0.0.1:{self.controller_ports[node]}" for node in self.node_ids)
        for node in self.node_ids:
            self._node_dir(node).mkdir(exist_ok=True)
            props = {
                "process.roles": "broker,controller",
                "node.id": str(node),
                "controller.quorum.voters": voters,
                "listeners": f"PLAINTEXT://127.0.0.1:{self.ports[node]},CONTROLLER://127.0.0.1:{self.controller_ports[node]}",
                "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.ports[node]}",
                "controller.listener.names": "CONTROLLER",
                "inter.broker.listener.name": "PLAINTEXT",
                "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "log.dirs": str(self._node_dir(node) / "data"),
                "num.partitions": "1",
                "auto.create.topics.enable": "true",
                "group.initial.rebalance.delay.ms": "0",
                **CLUSTER_SETTINGS,
                **(config or {}),
            }
            self._properties(node).write_text("".join(f"{k}={v}\n" for k, v in props.items()))

    def _node_dir(self, node: int) -> Path:
        return self.dir / f"node-{node}"

    def _properties(self, node: int) -> Path:
        return self._node_dir(node) / "server.properties"

    def log_file(self, node: int) -> Path:
        return self._node_dir(node) / "kafka.out"

    def _format(self) -> None:
        """Every log dir formatted with one cluster id, the three at once (a JVM each)."""
        cluster_id = _random_cluster_id()
        formats = {}
        for node in self.node_ids:
            if (self._node_dir(node) / "data" / "meta.properties").exists():
                continue
            args = ("format", "-t", cluster_id, "-c", str(self._properties(node)))
            cmd = _jvm(TOOLS["kafka-storage"], *args, heap="256m", log_level="WARN", log_target="SYSTEM_ERR")
            formats[node] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for node, proc in formats.items():
            out, _ = proc.communicate(timeout=120)
            if proc.returncode != 0:
                raise BrokerError(f"kafka-storage format of node {node} failed ({proc.returncode})", out.decode(errors="replace"))

    def _spawn(self, node: int) -> None:
        cmd = _jvm("kafka.Kafka", str(self._properties(node)), heap=self.heap, log_level="INFO", log_target="SYSTEM_OUT")
        with open(self.log_file(node), "ab") as out:
            self._procs[node] = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def start(self) -> None:
        """Format and start the three nodes; ready when Metadata names all three."""
        if self._procs:
            return
        started = time.monotonic()
        try:
            self._format()
            for node in self.node_ids:
                self._spawn(node)
            self._wait(lambda: len(self._described()["brokers"]) == CLUSTER_NODES, "all three brokers registered", started + 180)
        except BaseException:
            self.close()
            raise
        self.startup_seconds = time.monotonic() - started
        log.info("reference Kafka %s cluster ready on %s in %.1fs", KAFKA_VERSION, self.bootstrap, self.startup_seconds)

    def _described(self) -> dict[str, Any]:
        admin = KafkaAdminClient(bootstrap_servers=self._running_bootstrap(), request_timeout_ms=5000)
        try:
            described: dict[str, Any] = admin.describe_cluster()
            return described
        finally:
            admin.close()

    def _running_bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.ports[node]}" for node, state in self.node_states().items() if state == "running")

    def _wait(self, ready: Any, what: str, deadline: float) -> None:
        while time.monotonic() < deadline:
            for node, proc in self._procs.items():
                if proc.poll() is not None:
                    raise BrokerError(f"Kafka node {node} exited with {proc.returncode}", self.log_tail())
            try:
                if ready():
                    return
            except (OSError, KafkaError):
                pass
            time.sleep(0.2)
        raise BrokerError(f"Kafka cluster on {self.bootstrap}: not {what} in time", self.log_tail())

    def _in_sync(self) -> bool:
        """Every node registered and every partition of every topic with all its replicas in sync."""
        admin = KafkaAdminClient(bootstrap_servers=self._running_bootstrap(), request_timeout_ms=5000)
        try:
            if len(admin.describe_cluster()["brokers"]) != CLUSTER_NODES:
                return False
            topics = admin.describe_topics()
        finally:
            admin.close()
        return all(t["error_code"] == 0 and all(sorted(p["isr_nodes"]) == sorted(p["replica_nodes"]) for p in t["partitions"]) for t in topics)

    def stop_node(self, node: int) -> None:
        """Stop the node as Kafka's controlled shutdown does (SIGTERM): it hands its leadership
        over, then its JVM exits, which this waits for. A frozen node is resumed first, so it can."""
        proc = self._procs.pop(node, None)
        if proc is None or proc.poll() is not None:
            self._frozen.discard(node)
            return
        proc.terminate()
        if node in self._frozen:
            self._frozen.discard(node)
            proc.send_signal(signal.SIGCONT)
        try:
            proc.wait(timeout=CONTROLLED_SHUTDOWN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise BrokerError(f"Kafka node {node} did not shut down within {CONTROLLED_SHUTDOWN_TIMEOUT_S} s of SIGTERM: killed", self.log_tail()) from None

    def crash_node(self, node: int) -> None:
        """Kill the node's JVM (SIGKILL): no controlled shutdown moves its leaders first, and the
        controller fences it only after broker.session.timeout.ms."""
        proc = self._procs.pop(node, None)
        self._frozen.discard(node)
        if proc is None or proc.poll() is not None:
            return
        proc.kill()
        proc.wait()

    def start_node(self, node: int) -> None:
        """Resume a frozen node (SIGCONT) or start a stopped one; return once it is registered
        again and every partition's replicas are all back in sync."""
        if node in self._frozen:
            self._frozen.discard(node)
            self._procs[node].send_signal(signal.SIGCONT)
        elif node not in self._procs:
            self._spawn(node)
        # A restarted broker serves requests only once it is registered and unfenced, which
        # fences its former incarnation and so takes it out of every ISR first: the in-sync
        # check cannot pass on what the killed process left behind.
        deadline = time.monotonic() + 180
        self._wait(lambda: self._answers(node), f"answering on node {node}", deadline)
        self._wait(self._in_sync, f"in sync again after node {node} came back", deadline)

    def _answers(self, node: int) -> bool:
        find_coordinator("127.0.0.1", self.ports[node], "compat-probe", timeout=2)
        return True

    def isolate_node(self, node: int) -> None:
        """Freeze the node's JVM (SIGSTOP): its sockets accept connections and never answer."""
        self._procs[node].send_signal(signal.SIGSTOP)
        self._frozen.add(node)

    def node_states(self) -> dict[int, str]:
        """Each node's state by id, in OttlaCluster's words: "running", "stopped" or "isolated"."""
        return {node: "isolated" if node in self._frozen else "running" if node in self._procs else "stopped"
                for node in self.node_ids}

    def group_coordinator(self, group: str) -> int:
        """The node FindCoordinator names for `group`, asked of the running nodes in turn,
        until one names it (the first ask creates __consumer_offsets)."""
        found: list[int] = []

        def named() -> bool:
            for node, state in self.node_states().items():
                if state == "running":
                    coordinator = find_coordinator("127.0.0.1", self.ports[node], group)
                    if coordinator is not None:
                        found.append(coordinator)
                        return True
            return False

        self._wait(named, f"naming a coordinator for group {group}", time.monotonic() + 60)
        return found[0]

    def set_producer_quota(self, bytes_per_second: int | None) -> None:
        """Every client's produce quota (the default client-id entity), or none: Kafka delays a
        producer over it by its throttle time (KIP-219), which is how the scenarios pace one."""
        change = ("--add-config", f"producer_byte_rate={bytes_per_second}") if bytes_per_second else ("--delete-config", "producer_byte_rate")
        try:
            done = run_tool("kafka-configs", "--bootstrap-server", self._running_bootstrap(), "--alter", "--entity-type", "clients",
                            "--entity-default", *change, timeout=60)
        except subprocess.TimeoutExpired:
            raise BrokerError(f"kafka-configs {' '.join(change)} took over 60 s", self.log_tail()) from None
        if done.returncode != 0:
            raise BrokerError(f"kafka-configs {' '.join(change)} failed", done.stdout + done.stderr)

    def log_tail(self, lines: int = 15) -> str:
        tails = []
        for node in self.node_ids:
            try:
                tail = "\n".join(self.log_file(node).read_text(errors="replace").splitlines()[-lines:])
            except OSError:
                tail = "(no log)"
            tails.append(f"Kafka node {node} log {self.log_file(node)} (tail):\n{tail}")
        return "\n".join(tails)

    def close(self) -> None:
        """Stop every node (frozen ones are resumed so SIGTERM reaches them) and remove a temp dir."""
        procs, self._procs = self._procs, {}
        for node in self._frozen:
            procs[node].send_signal(signal.SIGCONT)
        self._frozen.clear()
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> ReferenceKafkaCluster:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compat.kafka", description=__doc__.splitlines()[0])
    parser.add_argument("--fetch", action="store_true", help="only fetch the reference Kafka and build the driver")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    # Leave through the `with` below on SIGTERM too, so the broker is not orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    fetch()
    if args.fetch:
        return 0
    with ReferenceKafka() as kafka:
        rss_mib = kafka.rss_bytes() / 2**20
        print(
            f"Kafka {KAFKA_VERSION} on {kafka.bootstrap_servers}: ready in {kafka.startup_seconds:.1f}s,"
            f" RSS {rss_mib:.0f} MiB, log {kafka.log_file}; Ctrl-C stops it",
            flush=True,
        )
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
