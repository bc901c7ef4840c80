"""KIP-848's online upgrade and downgrade with a live confluent-kafka group, on Ottla and on
the reference Kafka 4.4, compared.

Three classic members (`group.protocol=classic`) read a 4-partition topic while records keep
arriving; they are replaced one by one by `group.protocol=consumer` members (the first one
converts the group), then back one by one (the last consumer-protocol member to leave
converts it back). Every member commits each record it reads before counting it, and seeks
back to a record whose commit failed, so a record counted twice or never means the broker
lost or mixed up a committed offset or handed a partition to two members at once. Both
brokers must count every record exactly once and show the same group type after each step.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, ConsumerGroupType, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from compat.harness import OttlaBroker

pytestmark = pytest.mark.slow

PARTITIONS = 4
MEMBERS = 3
PER_STEP = 40


@pytest.fixture(scope="module")
def ottla(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with OttlaBroker(tmp_path_factory.mktemp("kip848-migration"), settings={"group.consumer.heartbeat.interval.ms": "500"}) as broker:
        yield broker.bootstrap


class _Rolling:
    """One group on one broker, its members replaced one at a time."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.topic = f"migrate-{uuid.uuid4().hex[:8]}"
        self.group = f"migrate-group-{uuid.uuid4().hex[:8]}"
        self.admin = AdminClient({"bootstrap.servers": bootstrap})
        self.admin.create_topics([NewTopic(self.topic, PARTITIONS, 1)])[self.topic].result(30)
        self.producer = Producer({"bootstrap.servers": bootstrap})
        self.produced = 0
        self.counted: Counter[int] = Counter()
        self.members: list[Consumer] = []

    def member(self, protocol: str) -> Consumer:
        config = {
            "bootstrap.servers": self.bootstrap,
            "group.id": self.group,
            "group.protocol": protocol,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
        if protocol == "classic":
            config |= {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}
        consumer = Consumer(config)
        consumer.subscribe([self.topic])
        return consumer

    def produce(self, count: int) -> None:
        for value in range(self.produced, self.produced + count):
            self.producer.produce(self.topic, str(value).encode(), partition=value % PARTITIONS)
        self.producer.flush(30)
        self.produced += count

    def drain(self, limit_s: float = 120) -> None:
        """Poll every member until each record produced so far is counted."""
        deadline = time.monotonic() + limit_s
        while len(self.counted) < self.produced and time.monotonic() < deadline:
            for consumer in self.members:
                message = consumer.poll(0.05)
                if message is None or message.error() is not None:
                    continue
                try:
                    consumer.commit(message, asynchronous=False)
                except KafkaException:
                    # Fenced mid-rebalance: the record is read again from the committed offset.
                    try:
                        consumer.seek(TopicPartition(message.topic(), message.partition(), message.offset()))
                    except KafkaException:
                        pass
                    continue
                self.counted[int(message.value())] += 1

    def group_type(self) -> str:
        described = self.admin.describe_consumer_groups([self.group])[self.group].result(30)
        return "consumer" if described.type is ConsumerGroupType.CONSUMER else "classic"

    def step(self, index: int, protocol: str) -> str:
        """Replace member `index` by one speaking `protocol`, then read on; the group's type."""
        if index < len(self.members):
            self.members[index].close()
            self.members[index] = self.member(protocol)
        else:
            self.members.append(self.member(protocol))
        self.produce(PER_STEP)
        self.drain()
        return self.group_type()

    def close(self) -> None:
        for consumer in self.members:
            consumer.close()


def _scenario(bootstrap: str) -> dict[str, object]:
    rolling = _Rolling(bootstrap)
    try:
        types = [rolling.step(index, "classic") for index in range(MEMBERS)]
        types += [rolling.step(index, "consumer") for index in range(MEMBERS)]
        types += [rolling.step(index, "classic") for index in range(MEMBERS)]
    finally:
        rolling.close()
    return {
        "types": types,
        "missing": sorted(set(range(rolling.produced)) - set(rolling.counted)),
        "twice": sorted(value for value, times in rolling.counted.items() if times > 1),
        "produced": rolling.produced,
    }


def _expected() -> dict[str, object]:
    return {
        # The first consumer-protocol member converts the group; it stays a consumer group
        # while one remains, and the last one leaving converts it back.
        "types": ["classic"] * MEMBERS + ["consumer"] * MEMBERS + ["consumer"] * (MEMBERS - 1) + ["classic"],
        "missing": [],
        "twice": [],
        "produced": PER_STEP * MEMBERS * 3,
    }


def test_a_live_classic_group_is_rolled_to_the_consumer_protocol_and_back_on_ottla(ottla: str) -> None:
    assert _scenario(ottla) == _expected()


def test_the_same_roll_on_the_reference_kafka(reference_kafka: str) -> None:
    assert _scenario(reference_kafka) == _expected()
