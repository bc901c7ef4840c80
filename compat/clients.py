"""The stock clients in the matrix: how to find each one's version and how to run its driver.

A client whose runtime or package is missing is *not installed*: the matrix says so, never
"passed". `python -m compat.install` installs the Node packages and kcat.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable

from compat.drivers import Security
from compat.harness import REPO_ROOT

NODE_DIR = REPO_ROOT / "compat" / "node"


class NotInstalled(Exception):
    """The client cannot run here; the message says what is missing."""


class DriverError(Exception):
    """A driver failed: exit status, timeout or no JSON. `detail` holds its stderr tail."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Client:
    name: str
    argv: tuple[str, ...]
    version: Callable[[], str]  # the installed version, or raises NotInstalled
    has_admin: bool = True  # kcat has no admin API: the scenario creates its topic with kafka-python
    notes: str = ""  # how the driver gets round the client's quirks; printed in REPORT.md

    def run(
        self, bootstrap: str, topic: str, action: str, *,
        partitions: int = 3, count: int = 1000, timeout: float = 30.0, security: Security | None = None,
    ) -> dict[str, Any]:
        cmd = [*self.argv, "--bootstrap", bootstrap, "--topic", topic, "--action", action,
               "--partitions", str(partitions), "--count", str(count), "--timeout", str(timeout)]
        if security is not None:
            cmd += ["--security", security.to_json()]
        try:
            # The driver enforces `timeout` itself and reports why; the margin only catches a hang.
            proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout + 15)
        except subprocess.TimeoutExpired as exc:
            raise DriverError(f"{self.name} {action} hung for {timeout + 15:.0f}s", _tail(exc.stderr)) from None
        try:
            result = json.loads(proc.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            raise DriverError(f"{self.name} {action} exited {proc.returncode} without JSON", _tail(proc.stderr)) from None
        if proc.returncode != 0 or "error" in result:
            raise DriverError(f"{self.name} {action}: {result.get('error', f'exit {proc.returncode}')}", _tail(proc.stderr))
        return result


def _tail(stderr: str | bytes | None, lines: int = 20) -> str:
    if isinstance(stderr, bytes):
        stderr = stderr.decode(errors="replace")
    return "\n".join((stderr or "").splitlines()[-lines:])


def _python_package(dist: str) -> Callable[[], str]:
    def probe() -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            raise NotInstalled(f"Python package {dist} is not installed (pip install -e '.[test]')") from None
    return probe


def _confluent() -> str:
    version = _python_package("confluent-kafka")()
    import confluent_kafka

    return f"{version} (librdkafka {confluent_kafka.libversion()[0]})"


def _node_package(package: str) -> Callable[[], str]:
    def probe() -> str:
        if shutil.which("node") is None:
            raise NotInstalled("node is not on PATH")
        manifest = NODE_DIR / "node_modules" / package / "package.json"
        if not manifest.exists():
            raise NotInstalled(f"{package} is not installed (python -m compat.install)")
        return str(json.loads(manifest.read_text())["version"])
    return probe


def _kcat() -> str:
    if shutil.which("kcat") is None:
        raise NotInstalled("kcat is not on PATH (python -m compat.install, as root, apt-get installs it)")
    out = subprocess.run(["kcat", "-V"], capture_output=True, text=True, timeout=10).stdout
    version = re.search(r"Version (\S+)", out)
    librdkafka = re.search(r"librdkafka (\S+)", out)
    if not version:
        raise NotInstalled(f"kcat -V printed no version: {out.strip()[:200]}")
    return f"{version[1]} (librdkafka {librdkafka[1]})" if librdkafka else version[1]


def _java_client() -> str:
    from compat import kafka

    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise NotInstalled("java is not on PATH (the Java client needs a JDK 17+)")
    if not kafka.is_fetched():
        raise NotInstalled("the Java client driver is not built (python -m compat.kafka --fetch)")
    return f"{kafka.KAFKA_VERSION} (kafka-clients)"


def _native(name: str) -> Callable[[], str]:
    """A compiled driver's client version, once `python -m compat.install` has built it."""
    def probe() -> str:
        from compat.drivers.native import DRIVERS

        (driver,) = [d for d in DRIVERS if d.name == name]
        if not driver.binary.exists():
            raise NotInstalled(f"the {name} driver is not built ({driver.toolchain}; python -m compat.install)")
        return driver.version()
    return probe


def _native_driver(name: str) -> tuple[str, ...]:
    from compat.drivers.native import DRIVERS

    (driver,) = [d for d in DRIVERS if d.name == name]
    return (str(driver.binary),)


def _python_driver(module: str) -> tuple[str, ...]:
    return (sys.executable, "-m", f"compat.drivers.{module}")


def _node_driver(script: str) -> tuple[str, ...]:
    return ("node", str(NODE_DIR / script))


KAFKA_PYTHON = Client(
    "kafka-python", _python_driver("kafka_python"), _python_package("kafka-python"),
    notes="Stock producer defaults: idempotence on and acks=all (KIP-679), so InitProducerId is exercised. "
          "The codecs row covers gzip only unless python-snappy, lz4 and zstandard are installed (kafka-python does not use cramjam).",
)

CLIENTS: dict[str, Client] = {
    c.name: c for c in [
        KAFKA_PYTHON,
        Client(
            "aiokafka", _python_driver("aiokafka_client"), _python_package("aiokafka"),
            notes="Only loads a topic's metadata once it is assigned, so the read assigns the expected "
                  "partitions and then reports the partition count from the client's metadata. The admin "
                  "client returns CreateTopics errors as codes; the driver raises them. A transactional producer's "
                  "refused Produce fails only that batch's future: aiokafka 0.14.0 still commits the transaction "
                  "(Kafka's Java producer makes it abortable and refuses the commit), so the transaction drivers "
                  "await every send's delivery before they commit or abort.",
        ),
        Client(
            "confluent-kafka", _python_driver("confluent"), _confluent,
            notes="The Consumer refuses to start without group.id even for assign(); the driver sets one "
                  "and never commits. Reads are read_committed (librdkafka default).",
        ),
        Client(
            "kafkajs", _node_driver("kafkajs.mjs"), _node_package("kafkajs"),
            notes="No public assign() (tulios/kafkajs#373): the group-less read drives the Cluster, "
                  "Broker.fetch and Batch classes kafkajs's own consumer uses. Offsets of produced records "
                  "follow from the per-partition base offsets Produce returns. The codecs row covers gzip only: "
                  "snappy, lz4 and zstd need codec packages (kafkajs-snappy, kafkajs-lz4, @kafkajs/zstd) not installed.",
        ),
        Client(
            "@platformatic/kafka", _node_driver("platformatic.mjs"), _node_package("@platformatic/kafka"),
            notes="The streaming consume() always joins a group; the read uses the public Consumer.fetch() "
                  "(Fetch v13+ by topic id) and listOffsets(). Its default partitioner is murmur2 >>> 0, not "
                  "Java's murmur2 & 0x7fffffff, so keys land on other partitions than with the Java client. "
                  "Version 2 wants Node >= 22.22 (npm warns); on Node 20 it lacks only Promise.withResolvers, which "
                  "node20.mjs defines as ES2024 does before the client loads. fetch() returns raw "
                  "batches, so the read_committed read drops aborted transactions itself (abortedTransactions). "
                  "The codecs row covers gzip, snappy and lz4 only: zstd needs node:zlib's zstd (Node >= 22.15), "
                  "which Node 20 lacks.",
        ),
        Client(
            "kcat", _python_driver("kcat"), _kcat, has_admin=False,
            notes="No admin API: the topic is created with kafka-python. Produces with -P -K: (key delimiter), "
                  "reads each partition with -C -p N -o beginning -e, partition count from -L -J. Prints no "
                  "delivery reports, so Produce's offsets are not cross-checked.",
        ),
        Client(
            "java", _python_driver("java"), _java_client,
            notes="Apache kafka-clients of the reference Kafka release, through compat/java/driver (one JVM per "
                  "action). Stock producer defaults: idempotence on, acks=all. Reads by assign() + "
                  "seekToBeginning() up to endOffsets().",
        ),
        Client(
            "sarama", _native_driver("sarama"), _native("sarama"),
            notes="IBM/sarama through compat/go/sarama. Sarama does not negotiate versions: it is configured as "
                  "Kafka 4.0 (the newest protocol both brokers serve). Stock producer defaults: hash partitioner "
                  "(FNV-1a, not murmur2), acks=1; the idempotent and transactional producers set acks=all and one "
                  "request in flight, as sarama requires. Group members commit with Commit() after each batch.",
        ),
        Client(
            "kafka-go", _native_driver("kafka-go"), _native("kafka-go"),
            notes="segmentio/kafka-go through compat/go/kafkago, on its kafka.Client (request level) API: produce "
                  "places keys with its Murmur2Balancer and sends one Produce per partition so the offsets are "
                  "known; reads go through a Reader per partition. It has no idempotent or transactional "
                  "producer and no group.instance.id (static membership).",
        ),
        Client(
            "franz-go", _native_driver("franz-go"), _native("franz-go"),
            notes="twmb/franz-go through compat/go/franz: kgo for producing and consuming, kadm for the admin API, "
                  "at the release whose own suite compat.suite_franz_go runs. Stock producer defaults: idempotent, "
                  "acks=all, murmur2 key partitioner; records time out after 3/4 of the action's timeout, so a "
                  "failure names kgo's last error. Group members use kgo's default cooperative-sticky balancer (its incremental "
                  "assignments are summed into the whole one), BlockRebalanceOnPoll and CommitRecords after each "
                  "batch; with group.protocol=consumer, ServerSideBalancer (KIP-848, the broker's uniform "
                  "assignor), and the member fails if kgo fell back to the classic protocol. ctp is kgo's "
                  "GroupTransactSession.",
        ),
        Client(
            "rskafka", _native_driver("rskafka"), _native("rskafka"),
            notes="influxdata/rskafka (pure Rust; its lz4 and zstd codecs bind the C libraries) through "
                  "compat/rust. A minimal client: no partitioner (the driver places keys by the Java client's "
                  "murmur2), no consumer groups, no idempotent or transactional producer, no config APIs; its "
                  "Metadata never asks for auto-creation, so the codecs action creates its topics first.",
        ),
    ]
}
