"""Committed offsets and group metadata survive a broker restart and a SIGKILL; cooperative
rebalancing works.

A real `python -m ottla serve` process per test; stock kafka-python, aiokafka and
confluent-kafka consumers commit through it. The kill comes right after the commit is
acknowledged, so an acknowledged commit that was not yet in the log would be lost.
(The group scenarios themselves, for these clients and kafkajs, run in the compatibility
matrix: tests/integration/test_compat_matrix.py.)
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable

import pytest
from aiokafka import AIOKafkaConsumer
from confluent_kafka import Consumer
from confluent_kafka import TopicPartition as ConfluentPartition
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka.admin import NewTopic

from ottla.testing import running_broker

REPO = Path(__file__).resolve().parents[2]
TOPIC = "ledger"
PARTITIONS = 4
RECORDS = 200
GROUP = "bookkeepers"


class ServeProcess:
    """`python -m ottla serve` on a free port over `data_dir`, ready when it says so."""

    def __init__(self, data_dir: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ottla", "serve", "--port", "0", "--data-dir", str(data_dir)],
            cwd=REPO, stderr=subprocess.PIPE, text=True,
        )
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if line.startswith("ottla ready"):
                self.bootstrap = line.split()[2].split("=", 1)[1]
                break
        else:
            raise AssertionError(f"the broker exited {self.proc.wait()} before its ready line")
        # Keep reading so a chatty broker never blocks on a full pipe.
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()

    def stop(self, signum: int) -> int:
        self.proc.send_signal(signum)
        return self.proc.wait(30)


@pytest.fixture
def serve(tmp_path):
    started: list[ServeProcess] = []

    def start() -> ServeProcess:
        started.append(ServeProcess(tmp_path / "data"))
        return started[-1]

    yield start
    for process in started:
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait()


def _fill_topic(bootstrap: str) -> dict[int, int]:
    """RECORDS records over PARTITIONS partitions; returns each partition's end offset."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for i in range(RECORDS):
        producer.send(TOPIC, value=b"entry", partition=i % PARTITIONS)
    producer.flush()
    producer.close()
    return {p: RECORDS // PARTITIONS for p in range(PARTITIONS)}


def _read_and_commit_kafka_python(bootstrap: str) -> int:
    consumer = KafkaConsumer(TOPIC, bootstrap_servers=bootstrap, group_id=GROUP, auto_offset_reset="earliest", enable_auto_commit=False)
    read = 0
    while read < RECORDS:
        read += sum(len(batch) for batch in consumer.poll(timeout_ms=1000).values())
    consumer.commit()  # returns once the coordinator acknowledged
    consumer.close(autocommit=False)
    return read


def _read_and_commit_aiokafka(bootstrap: str) -> int:
    async def run() -> int:
        consumer = AIOKafkaConsumer(TOPIC, bootstrap_servers=bootstrap, group_id=GROUP, auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        read = 0
        try:
            while read < RECORDS:
                read += sum(len(batch) for batch in (await consumer.getmany(timeout_ms=1000)).values())
            await consumer.commit()
        finally:
            await consumer.stop()
        return read

    return asyncio.run(run())


def _read_and_commit_confluent(bootstrap: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP, "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([TOPIC])
    read = 0
    while read < RECORDS:
        read += len([m for m in consumer.consume(num_messages=500, timeout=1.0) if not m.error()])
    consumer.commit(asynchronous=False)
    consumer.close()
    return read


READERS: dict[str, Callable[[str], int]] = {
    "kafka-python": _read_and_commit_kafka_python,
    "aiokafka": _read_and_commit_aiokafka,
    "confluent-kafka": _read_and_commit_confluent,
}


def _committed_kafka_python(bootstrap: str) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=GROUP, enable_auto_commit=False)
    try:
        return {p: consumer.committed(TopicPartition(TOPIC, p)) for p in range(PARTITIONS)}
    finally:
        consumer.close(autocommit=False)


def _committed_confluent(bootstrap: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP, "enable.auto.commit": False})
    try:
        return {tp.partition: tp.offset for tp in consumer.committed([ConfluentPartition(TOPIC, p) for p in range(PARTITIONS)], timeout=30)}
    finally:
        consumer.close()


@pytest.mark.parametrize("client", list(READERS))
@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "restart"])
def test_committed_offsets_survive(serve, client, stop):
    broker = serve()
    ends = _fill_topic(broker.bootstrap)
    assert READERS[client](broker.bootstrap) == RECORDS
    code = broker.stop(stop)
    assert code == (-signal.SIGKILL if stop == signal.SIGKILL else 0)

    broker = serve()
    assert _committed_kafka_python(broker.bootstrap) == ends
    assert _committed_confluent(broker.bootstrap) == ends
    # The group itself came back too: Empty (its member left), still a consumer group.
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        described = admin.describe_groups([GROUP])[GROUP]
        assert (described["group_state"], described["protocol_type"]) == ("Empty", "consumer")
    finally:
        admin.close()
    # And a member of the group resumes at the committed offsets: nothing is read twice.
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    for i in range(PARTITIONS):
        producer.send(TOPIC, value=b"after", partition=i)
    producer.close()
    consumer = KafkaConsumer(TOPIC, bootstrap_servers=broker.bootstrap, group_id=GROUP, auto_offset_reset="earliest", enable_auto_commit=False)
    try:
        seen: list[bytes] = []
        while len(seen) < PARTITIONS:
            seen += [r.value for batch in consumer.poll(timeout_ms=1000).values() for r in batch]
        assert seen == [b"after"] * PARTITIONS
    finally:
        consumer.close(autocommit=False)


def test_cooperative_sticky_rebalancing_with_confluent_kafka():
    """KIP-429 is client-driven: members revoke only what moves, over the same JoinGroup/SyncGroup.
    Two librdkafka consumers with cooperative-sticky end up with two partitions each, and
    every record is read exactly once."""
    with running_broker(data_dir=None, group_initial_rebalance_delay_ms=0) as broker:
        broker.create_topic(TOPIC, PARTITIONS)
        config = {
            "bootstrap.servers": broker.bootstrap_servers, "group.id": "cooperative", "auto.offset.reset": "earliest",
            "partition.assignment.strategy": "cooperative-sticky", "heartbeat.interval.ms": 200, "session.timeout.ms": 6000,
        }
        first, second = Consumer(config), Consumer(config)
        seen: list[tuple[int, int]] = []

        def poll_both() -> None:
            for consumer in (first, second):
                message = consumer.poll(0.05)
                if message is not None and not message.error():
                    seen.append((message.partition(), message.offset()))

        def holds(consumer: Consumer) -> set[int]:
            return {tp.partition for tp in consumer.assignment()}

        try:
            first.subscribe([TOPIC])
            while holds(first) != set(range(PARTITIONS)):
                poll_both()
            second.subscribe([TOPIC])
            while not (len(holds(first)) == len(holds(second)) == PARTITIONS // 2 and not holds(first) & holds(second)):
                poll_both()
            producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)
            for i in range(RECORDS):
                producer.send(TOPIC, value=b"x", partition=i % PARTITIONS)
            producer.close()
            while len(seen) < RECORDS:
                poll_both()
            assert sorted(seen) == sorted({(p, o) for p in range(PARTITIONS) for o in range(RECORDS // PARTITIONS)})
        finally:
            first.close()
            second.close()


def test_assign_consumers_commit_without_joining_a_group():
    """A consumer that assign()s its partitions commits with generation -1: a simple group holds
    the offsets (OffsetMetadataManager), visible to the next consumer and to ListGroups."""
    with running_broker(data_dir=None) as broker:
        broker.create_topic(TOPIC, PARTITIONS)
        partitions = [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]
        consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap_servers, group_id="by-hand", enable_auto_commit=False)
        consumer.assign(partitions)
        consumer.commit({tp: OffsetAndMetadata(10 + tp.partition, "note", -1) for tp in partitions})
        consumer.close(autocommit=False)
        again = KafkaConsumer(bootstrap_servers=broker.bootstrap_servers, group_id="by-hand", enable_auto_commit=False)
        try:
            assert {tp.partition: again.committed(tp) for tp in partitions} == {p: 10 + p for p in range(PARTITIONS)}
        finally:
            again.close(autocommit=False)
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        try:
            listed = {group["group_id"]: group for group in admin.list_groups()}
            assert listed["by-hand"]["protocol_type"] == ""
        finally:
            admin.close()
