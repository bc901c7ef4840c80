"""A KIP-848 consumer group outlives a SIGKILL of the broker.

A real `python -m ottla serve`; a confluent-kafka member (`group.protocol=consumer`) reads
and commits, then the broker is killed with the member still in the group. After the
restart the group is back from `__consumer_offsets`: the member with its assignment, until
its session times out; then a new member gets every partition and reads only what was
produced since, nothing committed is read again.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

PARTITIONS = 4
RECORDS = 40
SESSION_MS = 6000
REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


class ServeProcess:
    """`python -m ottla serve` on a free port over `data_dir`, with a short consumer session."""

    def __init__(self, data_dir: Path) -> None:
        settings = [f"group.consumer.session.timeout.ms={SESSION_MS}", f"group.consumer.min.session.timeout.ms={SESSION_MS}"]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ottla", "serve", "--port", "0", "--data-dir", str(data_dir), *(a for s in settings for a in ("--set", s))],
            cwd=REPO, stderr=subprocess.PIPE, text=True,
        )
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if line.startswith("ottla ready"):
                self.bootstrap = line.split()[2].split("=", 1)[1]
                break
        else:
            raise AssertionError(f"the broker exited {self.proc.wait()} before its ready line")
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()

    def stop(self, signum: int) -> int:
        self.proc.send_signal(signum)
        return self.proc.wait(30)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[], ServeProcess]]:
    started: list[ServeProcess] = []

    def start() -> ServeProcess:
        started.append(ServeProcess(tmp_path / "data"))
        return started[-1]

    yield start
    for process in started:
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait()


def _produce(bootstrap: str, start: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for value in range(start, start + RECORDS):
        producer.produce("ledger", str(value).encode(), partition=value % PARTITIONS)
    producer.flush(30)


def _read(consumer: Consumer, seen: list[int], want: int, limit_s: float = 60) -> None:
    deadline = time.monotonic() + limit_s
    while len(seen) < want and time.monotonic() < deadline:
        message = consumer.poll(0.2)
        if message is not None and message.error() is None:
            seen.append(int(message.value()))


def test_a_member_keeps_its_group_across_a_broker_sigkill(serve: Callable[[], ServeProcess]) -> None:
    broker = serve()
    creator = AdminClient({"bootstrap.servers": broker.bootstrap})
    creator.create_topics([NewTopic("ledger", PARTITIONS, 1)])["ledger"].result()
    _produce(broker.bootstrap, 0)
    consumer = Consumer({
        "bootstrap.servers": broker.bootstrap, "group.id": "keepers", "group.protocol": "consumer",
        "auto.offset.reset": "earliest", "enable.auto.commit": False,
    })
    consumer.subscribe(["ledger"])
    seen: list[int] = []
    _read(consumer, seen, RECORDS)
    assert sorted(seen) == list(range(RECORDS))
    consumer.commit(asynchronous=False)
    assert {tp.partition for tp in consumer.assignment()} == set(range(PARTITIONS))
    assert broker.stop(signal.SIGKILL) == -signal.SIGKILL
    consumer.close()  # its broker is gone: it cannot leave the group

    broker = serve()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    described = admin.describe_consumer_groups(["keepers"])["keepers"].result()
    (member,) = described.members
    assert {tp.partition for tp in member.assignment.topic_partitions} == set(range(PARTITIONS))

    # Once its session is over a new member gets the partitions, at the committed offsets.
    _produce(broker.bootstrap, RECORDS)
    again = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "keepers", "group.protocol": "consumer", "auto.offset.reset": "earliest"})
    try:
        again.subscribe(["ledger"])
        seen = []
        _read(again, seen, RECORDS)
        assert sorted(seen) == list(range(RECORDS, 2 * RECORDS))
    finally:
        again.close()
