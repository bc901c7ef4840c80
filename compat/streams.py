"""`python -m compat.streams`: Kafka Streams 4.4 applications against a broker, Ottla's or Kafka's.

The applications are compat/java/streams (kafka-streams of the release compat/java/pom.xml names,
from Maven Central), built once into `.cache/kafka/<version>/streams` by `--build`, which
`python -m compat.install` runs. The scenarios, each returning the problems it found (none is a
pass):

* `wordcount`: Kafka's WordCountDemo over known lines; the last count of every word is exact.
* `exactly_once`: `processing.guarantee=exactly_once_v2`, a repartition (regrouped by a new key)
  and a count store without cache, so every input record makes exactly one output record. The
  application is SIGKILLed mid-stream and restarted on the same state dir; the committed output
  must then hold, for every key, the counts 1..n once each and in order (nothing lost, nothing
  twice). Its internal topics must carry the configs Streams asks for, the changelog must be
  compacted by the broker, and Kafka's StreamsResetter must delete them and rewind the input.
  `group_protocol="streams"` runs it in a KIP-1071 streams group.
* `failover`: the same application as two instances of one streams group sharing its tasks; one
  is SIGKILLed mid-stream and never comes back. When its session expires the broker gives its
  tasks to the other, which must finish the output exactly as above. The broker must run with
  STREAMS_BROKER_SETTINGS (a short streams session), or the takeover waits Kafka's 45 s default.

`python -m compat.streams BOOTSTRAP` runs them all against a running broker and prints the problems
(start it with STREAMS_BROKER_SETTINGS, or the streams-group scenarios wait 45 s per takeover).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType

from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, NewTopic

from compat import kafka

STREAMS_DIR = kafka.CACHE / "streams"
STREAMS_JAR = STREAMS_DIR / "ottla-streams-apps.jar"

# What Streams 4.4 asks for its internal topics (InternalTopicManager with the default overrides of
# RepartitionTopicConfig and UnwindowedUnversionedChangelogTopicConfig), besides what the
# application adds; checked as DYNAMIC_TOPIC_CONFIG entries of DescribeConfigs.
CHANGELOG_CONFIGS = {"cleanup.policy": "compact", "message.timestamp.type": "CreateTime"}
REPARTITION_CONFIGS = {"cleanup.policy": "delete", "segment.bytes": "52428800", "retention.ms": "-1",
                       "message.timestamp.type": "CreateTime"}

WORDCOUNT_LINES = (
    "all streams lead to kafka",
    "hello kafka streams",
    "join kafka summit",
    "Streams all the way down",
    "the log is the database, the database is the log",
)

# The exactly-once input: EOS_BATCHES batches of EOS_BATCH records, user keys cycling over EOS_USERS.
EOS_USERS = 7
EOS_BATCH = 500
EOS_BATCHES = 3

# Broker settings for the streams-group scenarios: a killed member's tasks move after 6 s, not
# after Kafka's 45 s default (whose floor, group.streams.min.session.timeout.ms, must come down too;
# neither is dynamic in Kafka 4.4). The client's session.timeout.ms means nothing to a streams group.
STREAMS_BROKER_SETTINGS = {
    "group.streams.session.timeout.ms": "6000",
    "group.streams.min.session.timeout.ms": "6000",
    "group.streams.heartbeat.interval.ms": "1000",
    "group.streams.min.heartbeat.interval.ms": "1000",
}


def build_java_module(module: str) -> Path:
    """Build compat/java/<module> into .cache/kafka/<version>/<module>; a no-op when up to date.

    The stamp is a digest of the module's sources and the parent pom, so an edit rebuilds it.
    Not part of compat/kafka.py's fetch, whose stamp other tests check before starting Kafka.
    """
    source = kafka.JAVA_PROJECT / module
    target = kafka.CACHE / module
    stamp = target / ".built"
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{module}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and stamp.read_text() == _module_digest(source):
            return target
        mvn = shutil.which("mvn")
        if not mvn:
            raise RuntimeError(f"mvn not found: compat/java/{module} is built with Maven 3.8+")
        # copy-dependencies never deletes, so a changed dependency would leave two versions on the class path.
        shutil.rmtree(target, ignore_errors=True)
        build = subprocess.run([mvn, "-B", "-q", "-f", str(source / "pom.xml"), "package"], capture_output=True, text=True)
        if build.returncode != 0:
            raise RuntimeError(f"Maven build of {source} failed ({build.returncode}):\n{build.stdout}{build.stderr}")
        stamp.write_text(_module_digest(source))
    return target


def module_built(module: str) -> bool:
    stamp = kafka.CACHE / module / ".built"
    return stamp.exists() and stamp.read_text() == _module_digest(kafka.JAVA_PROJECT / module)


def _module_digest(source: Path) -> str:
    h = hashlib.sha256((kafka.JAVA_PROJECT / "pom.xml").read_bytes())
    for path in sorted(source.rglob("*")):
        if path.is_file() and "target" not in path.relative_to(source).parts:
            h.update(str(path.relative_to(source)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def jvm_options(heap: str = "256m") -> list[str]:
    """A small heap and C1 only (CI is two cores for everything); the reference's log4j2 file, WARN and up."""
    return [kafka._java(), f"-Xmx{heap}", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            f"-Dlog4j2.configurationFile={kafka.LOG4J2_CONFIG}", "-Dottla.log.level=WARN", "-Dottla.log.target=SYSTEM_OUT"]


class JavaProcess:
    """One JVM whose output goes to a log file (never a pipe nobody drains)."""

    def __init__(self, command: list[str], log_path: Path) -> None:
        self.command = command
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as out:
            self._proc = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown hook, no commit, no leave-group."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM, which runs the JVM's shutdown hooks; SIGKILL after `timeout`. The exit status."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class StreamsApp(JavaProcess):
    """One instance of an application of compat/java/streams, on its own state dir."""

    def __init__(self, app: str, bootstrap: str, app_id: str, state_dir: Path, settings: dict[str, str]) -> None:
        args = {"bootstrap.servers": bootstrap, "application.id": app_id, "state.dir": str(state_dir),
                "num.stream.threads": "1", **settings}
        super().__init__([*jvm_options(), "-jar", str(STREAMS_JAR), app, *(f"{k}={v}" for k, v in args.items())],
                         state_dir.parent / f"{state_dir.name}.log")

    def start_running(self, timeout: float = 90) -> None:
        """Start and wait until Streams reports RUNNING (its tasks assigned)."""
        before = self._count_running()
        self.start()
        deadline = time.monotonic() + timeout
        while self._count_running() <= before:
            if not self.running:
                raise RuntimeError(f"Streams application exited:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"Streams application not RUNNING in {timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(0.1)

    def _count_running(self) -> int:
        return self.log_path.read_bytes().count(b"RUNNING\n") if self.log_path.exists() else 0

    def __enter__(self) -> StreamsApp:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


# ---------------------------------------------------------------------------------------------
# Python-side clients (librdkafka through confluent-kafka): the input producer and output reader.


def create_topics(bootstrap: str, topics: dict[str, int]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(t, n, 1) for t, n in topics.items()]).values():
        future.result(30)


def produce(bootstrap: str, topic: str, records: Iterable[tuple[str, str]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    for key, value in records:
        producer.produce(topic, key=key.encode(), value=value.encode())
    if producer.flush(30):
        raise RuntimeError(f"records to {topic} not delivered in 30s")


def _trickle(bootstrap: str, topic: str, records: list[tuple[str, str]], chunks: int = 20) -> None:
    """Produce `records` in `chunks` pieces a tenth of a second apart."""
    size = -(-len(records) // chunks)
    for start in range(0, len(records), size):
        produce(bootstrap, topic, records[start:start + size])
        time.sleep(0.1)


def read_topic(bootstrap: str, topic: str, *, committed_only: bool = True, timeout: float = 30) -> list[tuple[str, bytes]]:
    """Every record of `topic` up to its end (the last stable offset when `committed_only`), in
    partition then offset order, as (key, value bytes)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "enable.partition.eof": True,
                         "isolation.level": "read_committed" if committed_only else "read_uncommitted"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        by_partition: dict[int, list[tuple[str, bytes]]] = {p: [] for p in partitions}
        pending = set(partitions)
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic} partitions {sorted(pending)} not read to the end in {timeout:.0f}s")
            message = consumer.poll(0.5)
            if message is None:
                continue
            error, partition = message.error(), message.partition()
            assert partition is not None
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    pending.discard(partition)
                    continue
                raise KafkaException(error)
            key = message.key()
            by_partition[partition].append((key.decode() if key is not None else "", message.value() or b""))
        return [record for p in sorted(by_partition) for record in by_partition[p]]
    finally:
        consumer.close()


def end_offset(bootstrap: str, topic: str) -> int:
    """The sum of the high watermarks of the topic's partitions."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4().hex}"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions)
    finally:
        consumer.close()


def counts_by_key(records: list[tuple[str, bytes]]) -> dict[str, list[int]]:
    """The sequence of counts (8-byte big-endian longs) each key received, in offset order."""
    sequences: dict[str, list[int]] = {}
    for key, value in records:
        sequences.setdefault(key, []).append(int.from_bytes(value, "big", signed=True))
    return sequences


def dynamic_topic_configs(bootstrap: str, topic: str) -> dict[str, str]:
    """The topic's own settings (DYNAMIC_TOPIC_CONFIG), as Streams set them at creation."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    entries = admin.describe_configs([resource])[resource].result(30)
    return {name: entry.value for name, entry in entries.items()
            if entry.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value}


def list_topics(bootstrap: str) -> set[str]:
    return set(AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics)


def wait_until(check: Callable[[], str | None], timeout: float, interval: float = 1.0) -> str | None:
    """Poll `check` (a problem, or None once satisfied) until it passes; the last problem if not."""
    deadline = time.monotonic() + timeout
    problem = check()
    while problem is not None and time.monotonic() < deadline:
        time.sleep(interval)
        problem = check()
    return problem


# ---------------------------------------------------------------------------------------------
# Scenarios


def wordcount(bootstrap: str, work_dir: Path, prefix: str = "wc", group_protocol: str = "classic") -> list[str]:
    """WordCountDemo over WORDCOUNT_LINES; the last count of every word must be exact.
    `group_protocol` "streams" runs it in a KIP-1071 streams group (the broker assigns tasks)."""
    app_id, source, sink = f"{prefix}-app", f"{prefix}-lines", f"{prefix}-counts"
    create_topics(bootstrap, {source: 2, sink: 1})
    produce(bootstrap, source, ((str(i), line) for i, line in enumerate(WORDCOUNT_LINES)))
    expected = Counter(word for line in WORDCOUNT_LINES for word in line.lower().replace(",", " ").split())

    def check() -> str | None:
        last = {key: counts[-1] for key, counts in counts_by_key(read_topic(bootstrap, sink)).items()}
        return None if last == dict(expected) else f"last counts {sorted(last.items())}, want {sorted(expected.items())}"

    with StreamsApp("wordcount", bootstrap, app_id, work_dir / app_id, {"input": source, "output": sink,
                    "commit.interval.ms": "200", "group.protocol": group_protocol}) as app:
        app.start_running()
        problem = wait_until(check, 60)
    return [problem] if problem else []


def _eos_settings(source: str, sink: str, group_protocol: str) -> dict[str, str]:
    """The exactly-once counter's settings."""
    return {
        "input": source, "output": sink,
        "processing.guarantee": "exactly_once_v2",
        "group.protocol": group_protocol,
        # No cache: every update reaches the changelog and the output, so counts are checkable one by one.
        "statestore.cache.max.bytes": "0",
        "commit.interval.ms": "100",
        # A classic member leaves the group when its session expires (Streams' default: 45 s); a
        # streams group's session is the broker's (STREAMS_BROKER_SETTINGS) and these are ignored.
        **({"session.timeout.ms": "6000", "heartbeat.interval.ms": "1500"} if group_protocol == "classic" else {}),
        # A changelog of many small segments that any dirt makes eligible, so compaction shows soon.
        "changelog.segment.ms": "100",
        "changelog.min.cleanable.dirty.ratio": "0.01",
    }


def _eos_input() -> tuple[list[list[tuple[str, str]]], dict[str, list[int]]]:
    """The exactly-once counter's input batches (event id, user) and the counts each user must get."""
    batches = [[(f"e{n}", f"user{n % EOS_USERS}") for n in range(b * EOS_BATCH, (b + 1) * EOS_BATCH)]
               for b in range(EOS_BATCHES)]
    total = EOS_BATCH * EOS_BATCHES
    expected = {f"user{u}": list(range(1, 1 + sum(1 for n in range(total) if n % EOS_USERS == u))) for u in range(EOS_USERS)}
    return batches, expected


def _exact_counts(bootstrap: str, sink: str, expected: dict[str, list[int]]) -> str | None:
    """None once the committed output holds each user's counts 1..n once each and in order."""
    got = counts_by_key(read_topic(bootstrap, sink))
    if got == expected:
        return None
    return "; ".join(f"{user}: {len(got.get(user, []))} counts, want 1..{len(want)} once each in order"
                     for user, want in expected.items() if got.get(user) != want)


def _kill_mid_stream(bootstrap: str, source: str, sink: str, batch: list[tuple[str, str]], victim: StreamsApp) -> None:
    """Trickle `batch` in and SIGKILL `victim` while it is processed, once the output
    (uncommitted records and markers included) has grown past the first batch."""
    feeder = threading.Thread(target=_trickle, args=(bootstrap, source, batch))
    feeder.start()
    wait_until(lambda: None if end_offset(bootstrap, sink) > EOS_BATCH * 6 // 5 else "not yet", 60, 0.05)
    victim.kill()
    feeder.join()


def exactly_once(bootstrap: str, work_dir: Path, prefix: str = "eos",
                 progress: Callable[[str], None] = lambda _: None, group_protocol: str = "classic") -> list[str]:
    """The exactly-once counter, SIGKILLed mid-stream and restarted; see the module docstring."""
    app_id, source, sink = f"{prefix}-app", f"{prefix}-events", f"{prefix}-user-counts"
    changelog, repartition = f"{app_id}-user-counts-changelog", f"{app_id}-by-user-repartition"
    create_topics(bootstrap, {source: 3, sink: 1})
    batches, expected = _eos_input()
    total = sum(map(len, batches))
    problems: list[str] = []

    produce(bootstrap, source, batches[0])
    app = StreamsApp("eos-count", bootstrap, app_id, work_dir / app_id, _eos_settings(source, sink, group_protocol))
    try:
        app.start_running()
        if wait_until(lambda: None if read_topic(bootstrap, sink) else "no output yet", 60, 0.2):
            return [f"no committed output within 60s:\n{app.log_tail()}"]
        _kill_mid_stream(bootstrap, source, sink, batches[1], app)
        progress(f"killed with {len(read_topic(bootstrap, sink))} of {total} output records committed")
        produce(bootstrap, source, batches[2])
        app.start_running()
        problem = wait_until(lambda: _exact_counts(bootstrap, sink, expected), 120)
        progress("output complete" if not problem else "output incomplete")
        if problem:
            problems.append(f"committed output after the restart: {problem}")
        for topic, want in ((changelog, CHANGELOG_CONFIGS), (repartition, REPARTITION_CONFIGS)):
            configs = dynamic_topic_configs(bootstrap, topic)
            wrong = {k: configs.get(k) for k, v in want.items() if configs.get(k) != v}
            if wrong:
                problems.append(f"{topic} configs {wrong}, Streams asks {want}")

        def compacted() -> str | None:
            records = len(read_topic(bootstrap, changelog))
            return None if records < total else f"changelog still holds {records} committed records of {total} updates"

        # Kafka's cleaner looks every log.cleaner.backoff.ms (15 s by default).
        problem = wait_until(compacted, 60, 2)
        progress("changelog compacted" if not problem else "changelog not compacted")
        if problem:
            problems.append(problem)
    finally:
        app.stop()
    problems += _reset(bootstrap, app_id, source, (changelog, repartition))
    return problems


def failover(bootstrap: str, work_dir: Path, prefix: str = "failover",
             progress: Callable[[str], None] = lambda _: None) -> list[str]:
    """Two instances of the exactly-once counter in one streams group, one SIGKILLed for good;
    see the module docstring."""
    app_id, source, sink = f"{prefix}-app", f"{prefix}-events", f"{prefix}-user-counts"
    create_topics(bootstrap, {source: 3, sink: 1})
    batches, expected = _eos_input()
    settings = _eos_settings(source, sink, "streams")
    produce(bootstrap, source, batches[0])
    first = StreamsApp("eos-count", bootstrap, app_id, work_dir / f"{app_id}-1", settings)
    second = StreamsApp("eos-count", bootstrap, app_id, work_dir / f"{app_id}-2", settings)
    try:
        first.start_running()
        if wait_until(lambda: None if read_topic(bootstrap, sink) else "no output yet", 60, 0.2):
            return [f"no committed output within 60s:\n{first.log_tail()}"]
        # The second member gets some of the first's tasks once the first has revoked them, so
        # the first, which certainly held tasks, is the one killed.
        second.start_running()
        _kill_mid_stream(bootstrap, source, sink, batches[1], first)
        progress(f"first instance killed with {len(read_topic(bootstrap, sink))} output records committed")
        produce(bootstrap, source, batches[2])
        problem = wait_until(lambda: _exact_counts(bootstrap, sink, expected), 120)
        if problem:
            return [f"committed output after the kill, with the second instance alone: {problem}\n{second.log_tail()}"]
        if not second.running:
            return [f"the second instance exited:\n{second.log_tail()}"]
        return []
    finally:
        first.kill()
        second.stop()


def _reset(bootstrap: str, app_id: str, source: str, internal: tuple[str, ...]) -> list[str]:
    """Kafka's StreamsResetter (kafka-streams-application-reset) on the stopped application."""
    proc = kafka.run_tool("org.apache.kafka.tools.StreamsResetter", "--bootstrap-server", bootstrap,
                          "--application-id", app_id, "--input-topics", source, "--to-earliest", "--force")
    if proc.returncode != 0:
        return [f"StreamsResetter exited {proc.returncode}: {proc.stdout[-500:]}{proc.stderr[-1500:]}"]
    problems = []

    def internal_left() -> str | None:
        found = set(internal) & list_topics(bootstrap)
        return f"internal topics left: {sorted(found)}" if found else None

    left = wait_until(internal_left, 30)
    if left:
        problems.append(f"after StreamsResetter: {left}")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    committed = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(app_id)])[app_id].result(30)
    offsets = {tp.partition: tp.offset for tp in committed.topic_partitions if tp.topic == source}
    if any(offset != 0 for offset in offsets.values()) or not offsets:
        problems.append(f"after StreamsResetter the input offsets are {offsets}, want 0 on every partition")
    return problems


# A scenario takes the bootstrap, a work dir and a prefix for its topic and application names.
Scenario = Callable[[str, Path, str], list[str]]
SCENARIOS: dict[str, Scenario] = {
    "wordcount": wordcount,
    "exactly_once": exactly_once,
    "exactly_once_streams_group": lambda bootstrap, work, prefix: exactly_once(bootstrap, work, prefix, group_protocol="streams"),
    "failover": failover,
}
# Per broker ("Kafka 4.4", "Ottla"), per scenario: its problems and how long it took.
Results = dict[str, dict[str, tuple[list[str], float]]]


def run_scenarios(bootstrap: str, work_dir: Path, scenarios: dict[str, Scenario],
                  progress: Callable[[str], None] = lambda _: None) -> dict[str, tuple[list[str], float]]:
    results = {}
    for name, scenario in scenarios.items():
        began = time.monotonic()
        problems = scenario(bootstrap, work_dir, f"{name.replace('_', '-')}-{uuid.uuid4().hex[:8]}")
        results[name] = (problems, time.monotonic() - began)
        progress(f"{name}: {'PASS' if not problems else 'FAIL'} in {results[name][1]:.1f}s"
                 + "".join(f"\n  {problem}" for problem in problems))
    return results


def run_on_both(scenarios: dict[str, Scenario], progress: Callable[[str], None] = lambda _: None) -> Results:
    """Every scenario on the reference Kafka, then on a fresh `ottla serve`."""
    from compat.harness import OttlaBroker

    results: Results = {}
    with tempfile.TemporaryDirectory(prefix="ottla-ecosystem-") as work:
        with kafka.ReferenceKafka(config=STREAMS_BROKER_SETTINGS) as reference:
            progress(f"Kafka {kafka.KAFKA_VERSION} on {reference.bootstrap_servers}")
            results[f"Kafka {kafka.KAFKA_VERSION}"] = run_scenarios(reference.bootstrap_servers, Path(work), scenarios, progress)
        with OttlaBroker(Path(work) / "ottla", settings=STREAMS_BROKER_SETTINGS) as ottla:
            progress(f"Ottla on {ottla.bootstrap}")
            results["Ottla"] = run_scenarios(ottla.bootstrap, Path(work), scenarios, progress)
    return results


def write_report_section(title: str, intro: str, results: Results) -> None:
    """Replace compat/REPORT.md's section `title` with a scenario x broker table of `results`."""
    from compat.matrix import git_revision
    from compat.report_sections import replace_section

    brokers = list(results)
    lines = [title, "", intro, "",
             f"Run on Ottla {git_revision()}, {time.strftime('%Y-%m-%d', time.gmtime())}.", "",
             "| scenario | " + " | ".join(brokers) + " |", "|---|" + "---|" * len(brokers)]
    for scenario in next(iter(results.values())):
        cells = [f"{'pass' if not results[b][scenario][0] else 'FAIL'} ({results[b][scenario][1]:.0f}s)" for b in brokers]
        lines.append(f"| {scenario} | " + " | ".join(cells) + " |")
    failures = [f"- {b}, {scenario}: {problem}" for b in brokers for scenario, (problems, _) in results[b].items()
                for problem in problems]
    lines += ["", *failures] if failures else []
    replace_section(kafka.REPO / "compat" / "REPORT.md", title, "\n".join(lines) + "\n")


REPORT_TITLE = "## Kafka Streams"
REPORT_INTRO = (
    f"Kafka Streams {kafka.KAFKA_VERSION} applications of `compat/java/streams` (`python -m compat.streams --report`;"
    " `tests/integration/test_streams.py` runs the same). `wordcount`: Kafka's WordCountDemo, every last count exact."
    " `exactly_once`: `processing.guarantee=exactly_once_v2`, a repartition on a new key and a count store without"
    " cache, SIGKILLed mid-stream and restarted: every key's committed output is 1..n once each; the changelog is"
    " created `cleanup.policy=compact` and compacted by the broker, the repartition topic `cleanup.policy=delete`,"
    " `segment.bytes=52428800`, `retention.ms=-1`; Kafka's StreamsResetter (kafka-streams-application-reset) then"
    " deletes both and rewinds the input to 0. `exactly_once_streams_group`: the same with `group.protocol=streams`"
    " (KIP-1071). `failover`: two instances of it in one streams group, one SIGKILLed for good; the other takes its"
    " tasks when its 6 s session expires and the counts stay exact."
)


def scenarios_main(argv: list[str] | None, *, module: str, description: str, scenarios: dict[str, Scenario],
                   report_title: str, report_intro: str) -> int:
    """The command line of a runner of compat/java/<module>'s scenarios: build the module, then
    run the scenarios on one broker, or on both and rewrite REPORT.md's section; 1 on a problem."""
    parser = argparse.ArgumentParser(prog=f"python -m compat.{module}", description=description)
    parser.add_argument("--build", action="store_true", help=f"only build compat/java/{module}")
    parser.add_argument("--report", action="store_true",
                        help="run on the reference Kafka and on a fresh Ottla, and rewrite REPORT.md's section")
    parser.add_argument("bootstrap", nargs="?", help="the broker to run the scenarios against")
    args = parser.parse_args(argv)
    build_java_module(module)
    if args.build:
        return 0
    if args.report:
        results = run_on_both(scenarios, say)
        write_report_section(report_title, report_intro, results)
        return 1 if any(problems for r in results.values() for problems, _ in r.values()) else 0
    if not args.bootstrap:
        parser.error("a bootstrap address is needed unless --build or --report")
    with tempfile.TemporaryDirectory(prefix=f"ottla-{module}-") as work:
        outcomes = run_scenarios(args.bootstrap, Path(work), scenarios, say)
    return 1 if any(problems for problems, _ in outcomes.values()) else 0


def say(line: str) -> None:
    """Progress on stdout, as it happens."""
    print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    return scenarios_main(argv, module="streams", description=__doc__.splitlines()[0], scenarios=SCENARIOS,
                          report_title=REPORT_TITLE, report_intro=REPORT_INTRO)

if __name__ == "__main__":
    sys.exit(main())
