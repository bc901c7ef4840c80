"""KIP-848 consumer groups with a stock client: confluent-kafka (librdkafka) configured
with `group.protocol=consumer`, against a broker on a real socket.

Members share a multi-partition topic with no partition owned twice and every record
consumed once; a member's partitions move when it leaves; a regex subscription picks up
a topic created later; committed offsets survive a broker restart.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, ConsumerGroupState, ConsumerGroupType, Producer
from confluent_kafka.admin import AdminClient

from ottla.testing import ThreadedBroker, running_broker

pytestmark = pytest.mark.slow

_SETTINGS = {"group_consumer_heartbeat_interval_ms": 300, "group_consumer_session_timeout_ms": 6000, "group_consumer_min_session_timeout_ms": 6000}


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=tmp_path, **_SETTINGS) as handle:
        yield handle


def _consumer(broker: ThreadedBroker, name: str, **extra: str) -> Consumer:
    config = {
        "bootstrap.servers": broker.bootstrap_servers,
        "group.id": "g",
        "group.protocol": "consumer",
        "auto.offset.reset": "earliest",
        "client.id": name,
        **extra,
    }
    return Consumer(config)


def _produce(broker: ThreadedBroker, topic: str, count: int, partitions: int, start: int = 0) -> None:
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
    for value in range(start, start + count):
        producer.produce(topic, str(value).encode(), partition=value % partitions)
    producer.flush(10)


def _poll_until(consumers: list[Consumer], seen: dict[int, list[int]], done: Callable[[], bool], limit_s: float = 30) -> None:
    deadline = time.monotonic() + limit_s
    while not done() and time.monotonic() < deadline:
        for index, consumer in enumerate(consumers):
            message = consumer.poll(0.1)
            if message is not None and message.error() is None:
                seen.setdefault(index, []).append(int(message.value()))


def _owned(consumers: list[Consumer]) -> list[set[tuple[str, int]]]:
    return [{(tp.topic, tp.partition) for tp in c.assignment()} for c in consumers]


def test_three_members_share_every_partition_once_and_take_over_a_leavers(broker: ThreadedBroker) -> None:
    broker.create_topic("t", 6)
    _produce(broker, "t", 60, 6)
    consumers = [_consumer(broker, f"c{i}") for i in range(3)]
    for consumer in consumers:
        consumer.subscribe(["t"])
    seen: dict[int, list[int]] = {}
    _poll_until(consumers, seen, lambda: sum(map(len, seen.values())) >= 60 and all(len(o) == 2 for o in _owned(consumers)))
    assert sorted(v for values in seen.values() for v in values) == list(range(60))
    owned = _owned(consumers)
    assert [len(o) for o in owned] == [2, 2, 2] and len(set().union(*owned)) == 6
    for consumer in consumers:
        consumer.commit(asynchronous=False)
    consumers.pop().close()
    _produce(broker, "t", 60, 6, start=60)
    seen = {}
    _poll_until(consumers, seen, lambda: sum(map(len, seen.values())) >= 60)
    assert sorted(v for values in seen.values() for v in values) == list(range(60, 120))
    owned = _owned(consumers)
    assert sorted(len(o) for o in owned) == [3, 3] and len(set().union(*owned)) == 6
    for consumer in consumers:
        consumer.close()


def test_a_regex_subscription_picks_up_a_topic_created_later(broker: ThreadedBroker) -> None:
    broker.create_topic("logs-a", 1)
    consumer = _consumer(broker, "r")
    consumer.subscribe(["^logs-.*"])
    _poll_until([consumer], {}, lambda: bool(consumer.assignment()), 15)
    broker.create_topic("logs-b", 1)
    _produce(broker, "logs-b", 3, 1)
    seen: dict[int, list[int]] = {}
    _poll_until([consumer], seen, lambda: len(seen.get(0, [])) >= 3)
    assert seen[0] == [0, 1, 2]
    consumer.close()


def test_committed_offsets_survive_a_broker_restart(broker: ThreadedBroker) -> None:
    broker.create_topic("t", 2)
    _produce(broker, "t", 10, 2)
    consumer = _consumer(broker, "c", **{"enable.auto.commit": "false"})
    consumer.subscribe(["t"])
    seen: dict[int, list[int]] = {}
    _poll_until([consumer], seen, lambda: len(seen.get(0, [])) >= 10)
    consumer.commit(asynchronous=False)
    consumer.close()
    broker.restart()
    _produce(broker, "t", 4, 2, start=10)
    again = _consumer(broker, "c2")
    again.subscribe(["t"])
    seen = {}
    _poll_until([again], seen, lambda: len(seen.get(0, [])) >= 4)
    assert sorted(seen[0]) == [10, 11, 12, 13]
    again.close()


def test_the_admin_client_lists_and_describes_a_consumer_group(broker: ThreadedBroker) -> None:
    broker.create_topic("t", 4)
    consumer = _consumer(broker, "d")
    consumer.subscribe(["t"])
    _poll_until([consumer], {}, lambda: len(consumer.assignment()) == 4, 15)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    listed = admin.list_consumer_groups(types={ConsumerGroupType.CONSUMER}).result()
    assert [(g.group_id, g.type, g.state) for g in listed.valid] == [("g", ConsumerGroupType.CONSUMER, ConsumerGroupState.STABLE)]
    assert admin.list_consumer_groups(types={ConsumerGroupType.CLASSIC}).result().valid == []
    described = admin.describe_consumer_groups(["g"])["g"].result()
    assert (described.type, described.partition_assignor) == (ConsumerGroupType.CONSUMER, "uniform")
    (member,) = described.members
    assert sorted(tp.partition for tp in member.assignment.topic_partitions) == [0, 1, 2, 3]
    consumer.close()


def test_a_static_member_restarted_gets_its_partitions_back(broker: ThreadedBroker) -> None:
    broker.create_topic("t", 4)
    a, b = (_consumer(broker, name, **{"group.instance.id": name}) for name in ("a", "b"))
    for consumer in (a, b):
        consumer.subscribe(["t"])
    _poll_until([a, b], {}, lambda: [len(o) for o in _owned([a, b])] == [2, 2])
    before = _owned([a, b])
    a.close()  # a static member leaves for now (epoch -2): its partitions wait for it
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    kept = admin.describe_consumer_groups(["g"])["g"].result()
    assert sorted(m.group_instance_id for m in kept.members) == ["a", "b"]
    again = _consumer(broker, "a", **{"group.instance.id": "a"})
    again.subscribe(["t"])
    _poll_until([again, b], {}, lambda: bool(again.assignment()), 15)
    assert _owned([again, b]) == before
    for consumer in (again, b):
        consumer.close()
