"""`python -m compat.mirror`: MirrorMaker 2 mirroring a fresh Ottla onto a broker.

MirrorMaker 2 runs in dedicated mode (`org.apache.kafka.connect.mirror.MirrorMaker` with a
`connect-mirror-maker.properties` style file), release 4.3.1: Maven Central does not serve
`org.apache.kafka:connect-mirror` 4.4.0, and 4.3.1 is the newest it has with all its dependencies.
compat/java/mirror puts connect-mirror and connect-runtime 4.3.1 (kafka-clients 4.3.1 with them)
on one class path of their own in `.cache/kafka/<version>/mirror` (`--build`, run by
`python -m compat.install`), apart from the reference's 4.4 libraries.

The scenario `mirror` (the broker given is the target; the source is always a fresh Ottla): a
two-partition topic gets keyed records with headers; a consumer group reads the first batch and
commits; a second batch follows. MirrorMaker 2 (source alias SOURCE_ALIAS, short checkpoint and
group-offset-sync intervals) must make `<alias>.<topic>` on the target hold the same records (key,
value, headers, partition, offset), translate the group's committed offsets and commit them to the
same group on the target, so that a consumer of that group on the target reads exactly the second
batch.

`python -m compat.mirror BOOTSTRAP` runs it onto a running broker and prints the problems.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from compat import kafka
from compat.harness import OttlaBroker
from compat.streams import (
    JavaProcess,
    Scenario,
    build_java_module,
    jvm_options,
    module_built,
    say,
    scenarios_main,
    wait_until,
)

MIRROR_VERSION = "4.3.1"
MIRROR_DIR = kafka.CACHE / "mirror"
MIRROR_JAR = MIRROR_DIR / "ottla-mirror-maker.jar"

SOURCE_ALIAS = "ottla"
TARGET_ALIAS = "target"

PARTITIONS = 2
FIRST_BATCH = 20
SECOND_BATCH = 10

# (key, value, headers) of record i: keys spread over both partitions; headers repeat a name.
Record = tuple[bytes, bytes, list[tuple[str, str | bytes | None]]]


def _record(i: int) -> Record:
    return f"k{i % 5}".encode(), f"v{i}".encode(), [("seq", str(i).encode()), ("tag", b"a"), ("tag", b"b")]


def build() -> Path:
    return build_java_module("mirror")


def is_built() -> bool:
    return module_built("mirror") and MIRROR_JAR.exists()


def mm2_properties(source: str, target: str, prefix: str) -> dict[str, str]:
    """One flow, SOURCE_ALIAS -> TARGET_ALIAS, of the topics and groups named `prefix`-*; every
    interval short, every replication factor 1 (one broker each side)."""
    flow = f"{SOURCE_ALIAS}->{TARGET_ALIAS}"
    return {
        "clusters": f"{SOURCE_ALIAS}, {TARGET_ALIAS}",
        f"{SOURCE_ALIAS}.bootstrap.servers": source,
        f"{TARGET_ALIAS}.bootstrap.servers": target,
        f"{flow}.enabled": "true",
        f"{flow}.topics": f"{prefix}-.*",
        f"{flow}.groups": f"{prefix}-.*",
        # No flow, and no heartbeats, back: otherwise a second herder runs on the source.
        f"{TARGET_ALIAS}->{SOURCE_ALIAS}.enabled": "false",
        f"{TARGET_ALIAS}->{SOURCE_ALIAS}.emit.heartbeats.enabled": "false",
        "sync.group.offsets.enabled": "true",
        "sync.group.offsets.interval.seconds": "1",
        "emit.checkpoints.interval.seconds": "1",
        "emit.heartbeats.interval.seconds": "1",
        "refresh.topics.interval.seconds": "2",
        "refresh.groups.interval.seconds": "2",
        # An offset sync for every record, so every committed offset translates exactly; syncs
        # held back (at most ten are in flight) go out at the next offset flush.
        "offset.lag.max": "0",
        "offset.flush.interval.ms": "1000",
        "sync.topic.acls.enabled": "false",
        "tasks.max": "1",
        "replication.factor": "1",
        "checkpoints.topic.replication.factor": "1",
        "heartbeats.topic.replication.factor": "1",
        "offset-syncs.topic.replication.factor": "1",
        "offset.storage.replication.factor": "1",
        "status.storage.replication.factor": "1",
        "config.storage.replication.factor": "1",
    }


class MirrorMaker(JavaProcess):
    """One dedicated MirrorMaker 2 of the flow `mm2_properties` describes."""

    def __init__(self, source: str, target: str, prefix: str, work_dir: Path) -> None:
        work_dir.mkdir(parents=True, exist_ok=True)
        config = work_dir / f"{prefix}-mm2.properties"
        config.write_text("".join(f"{key} = {value}\n" for key, value in mm2_properties(source, target, prefix).items()))
        super().__init__([*jvm_options("384m"), "-jar", str(MIRROR_JAR), str(config)], work_dir / f"{prefix}-mm2.log")

    def start(self) -> None:
        if not MIRROR_JAR.exists():
            raise RuntimeError(f"{MIRROR_JAR} missing: run `python -m compat.mirror --build`")
        super().start()


def _produce(bootstrap: str, topic: str, indices: range) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for i in indices:
        key, value, headers = _record(i)
        producer.produce(topic, key=key, value=value, headers=headers)
    if producer.flush(30):
        raise TimeoutError(f"records {indices} to {topic} not delivered in 30s")


def _read(consumer: Consumer, topic: str, timeout: float = 30) -> list[Message]:
    """What `consumer` (subscribed, or assigned, with partition EOF on) reads of `topic` until
    every partition is at its end."""
    pending, got = set(range(PARTITIONS)), []
    deadline = time.monotonic() + timeout
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{topic} partitions {sorted(pending)} not read to the end in {timeout:.0f}s")
        message = consumer.poll(0.5)
        if message is None:
            continue
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                pending.discard(message.partition())
                continue
            raise KafkaException(error)
        got.append(message)
    return got


def _consumer(bootstrap: str, group: str) -> Consumer:
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                     "enable.partition.eof": True, "auto.offset.reset": "earliest"})


def _as_records(messages: list[Message]) -> list[tuple[int, int, Record]]:
    """(partition, offset, record) of each message, in partition then offset order."""
    rows = [(m.partition(), m.offset(), (m.key(), m.value(), list(m.headers() or []))) for m in messages]
    return sorted(rows, key=lambda row: (row[0], row[1]))  # type: ignore[arg-type]


def _committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    consumer = _consumer(bootstrap, group)
    try:
        offsets = consumer.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)
        return {tp.partition: tp.offset for tp in offsets if tp.offset >= 0}
    finally:
        consumer.close()


def _topic_records(bootstrap: str, topic: str) -> list[tuple[int, int, Record]]:
    consumer = _consumer(bootstrap, f"reader-{topic}-{time.monotonic_ns()}")
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        return _as_records(_read(consumer, topic))
    finally:
        consumer.close()


def mirror(target: str, work_dir: Path, prefix: str = "mirror", *, progress: Callable[[str], None] = lambda _: None) -> list[str]:
    """Mirror a fresh Ottla onto `target` and check records and group offsets; see the module docstring."""
    with OttlaBroker(work_dir / f"{prefix}-source") as source:
        return mirror_between(source.bootstrap, target, work_dir, prefix, progress=progress)


def mirror_between(source: str, target: str, work_dir: Path, prefix: str,
                   *, progress: Callable[[str], None] = lambda _: None) -> list[str]:
    """Mirror `source` onto `target` live: the group commits while MirrorMaker runs, as in use.

    A group offset MirrorMaker can translate is one at or just past an offset sync it has read
    while running (on start-up it keeps only the latest sync per partition); so the first batch
    is mirrored before the group commits at its end, then the second batch follows.
    """
    topic, group = f"{prefix}-orders", f"{prefix}-group"
    mirrored = f"{SOURCE_ALIAS}.{topic}"
    admin = AdminClient({"bootstrap.servers": source})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(30)
    _produce(source, topic, range(FIRST_BATCH))

    began = time.monotonic()
    mm2 = MirrorMaker(source, target, prefix, work_dir)
    mm2.start()
    try:
        if problem := wait_until(lambda: _mirror_problem(mm2, source, target, topic, mirrored), timeout=120):
            return [problem, f"MirrorMaker log:\n{mm2.log_tail()}"]
        progress(f"{mirrored} holds the first batch {time.monotonic() - began:.0f}s after MirrorMaker started")
        reader = _consumer(source, group)
        try:
            reader.subscribe([topic])
            _read(reader, topic)
            reader.commit(asynchronous=False)
        finally:
            reader.close()
        source_committed = _committed(source, group, topic)
        _produce(source, topic, range(FIRST_BATCH, FIRST_BATCH + SECOND_BATCH))
        if problem := wait_until(lambda: _mirror_problem(mm2, source, target, topic, mirrored), timeout=60):
            return [problem, f"MirrorMaker log:\n{mm2.log_tail()}"]
        progress(f"{mirrored} holds both batches; {group} committed {source_committed} on the source")

        def offsets_synced() -> str | None:
            got = _committed(target, group, mirrored)
            return None if got == source_committed else f"{group} on the target committed {got} on {mirrored}, want {source_committed}"

        if problem := wait_until(offsets_synced, timeout=60):
            return [problem, f"MirrorMaker log:\n{mm2.log_tail()}"]
        progress(f"{group}'s offsets synced {time.monotonic() - began:.0f}s after MirrorMaker started")
    finally:
        mm2.stop()

    resumed = _consumer(target, group)
    try:
        resumed.subscribe([mirrored])
        got = [record for _, _, record in _as_records(_read(resumed, mirrored))]
    finally:
        resumed.close()
    want = [_record(i) for i in range(FIRST_BATCH, FIRST_BATCH + SECOND_BATCH)]
    # One partition's records after the other's: order the values (unique) as produced.
    if sorted(got, key=lambda record: int(record[1][1:])) != want:
        return [f"{group} on the target resumed with {len(got)} records {got[:2]}..., want the second batch of {len(want)}"]
    return []


def _mirror_problem(mm2: MirrorMaker, source: str, target: str, topic: str, mirrored: str) -> str | None:
    """What `mirrored` on the target lacks of `topic` on the source (None: the same records at the same offsets)."""
    if not mm2.running:
        return f"MirrorMaker exited:\n{mm2.log_tail()}"
    if mirrored not in AdminClient({"bootstrap.servers": target}).list_topics(timeout=10).topics:
        return f"{mirrored} not created on the target"
    want = _topic_records(source, topic)
    try:
        got = _topic_records(target, mirrored)
    except (KafkaException, TimeoutError) as exc:
        return f"{mirrored} not readable: {exc}"
    return None if got == want else f"{mirrored} holds {len(got)} records ({got[:2]}...), want {len(want)} ({want[:2]}...)"


REPORT_TITLE = "## MirrorMaker 2"
REPORT_INTRO = (
    f"MirrorMaker 2 {MIRROR_VERSION} in dedicated mode (`connect-mirror` and `connect-runtime` {MIRROR_VERSION} on their own"
    " class path: Maven Central does not serve `connect-mirror` 4.4.0; `python -m compat.mirror --report`;"
    " `tests/integration/test_mirror_maker.py` runs the same), always from a fresh Ottla, onto the broker of the column."
    f" `mirror`: a {PARTITIONS}-partition topic gets {FIRST_BATCH} keyed records with headers, a consumer group reads and"
    f" commits them, {SECOND_BATCH} more follow; `{SOURCE_ALIAS}.<topic>` on the target must hold the same records (key,"
    " value, headers, partition, offset), the group's offsets must be translated and committed on the target"
    " (`sync.group.offsets.enabled=true`, 1 s checkpoint and sync intervals), and a consumer of the group on the target"
    " must read exactly the second batch."
)


def main(argv: list[str] | None = None) -> int:
    scenarios: dict[str, Scenario] = {"mirror": lambda bootstrap, work, prefix: mirror(bootstrap, work, prefix, progress=say)}
    return scenarios_main(argv, module="mirror", description=__doc__.splitlines()[0], scenarios=scenarios,
                          report_title=REPORT_TITLE, report_intro=REPORT_INTRO)


if __name__ == "__main__":
    sys.exit(main())
