"""A share group (KIP-932) whose members talk to three `ottla serve --storage postgresql://...`
brokers: the group's coordinator assigns, each partition's leader hands its records out, and the
share-partitions' state is in the database. Every record is delivered and acknowledged exactly
once overall, none lost; then a partition's leadership moves (its leader stops) and the new
leader takes the share-partition up from the database: nothing acknowledged is delivered again,
and what was acquired and not acknowledged is, with its delivery count. On one broker, what the
engine's round trips change: a by_duration start and a dead-letter topic in the database.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, ShareConsumer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic, ResourceType

from compat.harness import PostgresBrokers
from ottla.server.admin.client import KafkaClient
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

pytestmark = [pytest.mark.external, pytest.mark.slow]

_DEADLINE = 90.0
_PARTITIONS = 3
_RECORDS = 300
_CONSUMERS = 3
_ACCEPT, _REJECT = 1, 3  # AcknowledgeType
_ONLY = 1  # the node id of a PostgresBrokers of one (it numbers its brokers from 1)
# Half-second heartbeats: a member is assigned a partition at the heartbeat after the one that
# initialized its share state (ottla.server.share.group).
_QUICK = {"group.share.heartbeat.interval.ms": "500", "group.share.min.heartbeat.interval.ms": "500"}


def _leaders(bootstrap: str, topic: str) -> dict[int, int]:
    """Each partition's leader, once every partition has one."""
    with KafkaClient(bootstrap) as client:
        deadline = time.monotonic() + _DEADLINE
        while True:
            found = client.metadata([topic])["topics"][0]
            leaders = {p["partition_index"]: p["leader_id"] for p in found["partitions"]} if not found["error_code"] else {}
            if len(leaders) == _PARTITIONS and all(leader >= 0 for leader in leaders.values()):
                return leaders
            assert time.monotonic() < deadline, f"no leaders for {topic}: {found}"
            time.sleep(0.2)


def _start_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """DescribeShareGroupOffsets through the group's coordinator: partition -> start offset."""
    with KafkaClient(bootstrap) as client:
        described = client.call(ApiKey.DESCRIBE_SHARE_GROUP_OFFSETS, {"groups": [{"group_id": group, "topics": [
            {"topic_name": topic, "partitions": list(range(_PARTITIONS))}]}]}, node=_coordinator(client, group))[1]["groups"][0]
    assert not described["error_code"], described
    return {p["partition_index"]: p["start_offset"] for t in described["topics"] for p in t["partitions"]}


def _produce(producer: Producer, topic: str, values: list[bytes], count: int) -> None:
    """`count` more records, spread over the partitions in turn (a multiple of their number keeps
    them even), appended to `values`."""
    for _ in range(count):
        values.append(b"job-%04d" % len(values))
        producer.produce(topic, values[-1], partition=(len(values) - 1) % _PARTITIONS)
    assert producer.flush(30) == 0


def _consume(consumers: list[ShareConsumer], producer: Producer, topic: str, values: list[bytes], seen: list[list[bytes]]) -> None:
    """Poll every consumer on a thread of its own (each poll accepts what the one before it
    returned) until every record of `values` is seen overall and every consumer has seen some,
    producing more while one has not, or the deadline. A consumer that has taken records has
    applied its assignment: librdkafka 2.16's close can hang when it begins while an assignment
    is on its way (README, "Queues")."""
    done = threading.Event()

    def work(index: int) -> None:
        while not done.is_set():
            for message in consumers[index].poll(0.5) or []:
                if message.error() is None:
                    seen[index].append(message.value())

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(consumers))]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + _DEADLINE
    while (sum(map(len, seen)) < len(values) or not all(seen)) and time.monotonic() < deadline:
        if sum(map(len, seen)) >= len(values):
            _produce(producer, topic, values, _PARTITIONS)
        time.sleep(0.1)
    done.set()
    for thread in threads:
        thread.join()


def test_a_share_group_over_three_brokers_delivers_each_record_once(postgres_url: str, tmp_path: Path) -> None:
    with PostgresBrokers(tmp_path, storage=postgres_url, nodes=3, settings=_QUICK) as brokers:
        bootstrap = brokers.bootstrap
        topic = f"jobs-{uuid.uuid4().hex[:8]}"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic(topic, _PARTITIONS, 1)])[topic].result(timeout=30)
        leaders = _leaders(bootstrap, topic)
        assert len(set(leaders.values())) > 1, f"every partition is led by one broker: {leaders}"
        # The group's coordinator leads partition 0 too: the broker stopped below moves both.
        group = _group_on(bootstrap, leaders[0])
        with KafkaClient(bootstrap) as client:
            elsewhere = next(node for node in leaders.values() if node != leaders[0])
            joined = client.call(ApiKey.SHARE_GROUP_HEARTBEAT, {"group_id": group, "member_id": uuid.uuid4().hex, "member_epoch": 0,
                                                                 "rack_id": None, "subscribed_topic_names": [topic]}, node=elsewhere)[1]
            assert joined["error_code"] == ErrorCode.NOT_COORDINATOR, joined
        from_start = ConfigEntry("share.auto.offset.reset", "earliest", incremental_operation=AlterConfigOpType.SET)
        resource = ConfigResource(ResourceType.GROUP, group, incremental_configs=[from_start])
        admin.incremental_alter_configs([resource])[resource].result(timeout=30)

        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        values: list[bytes] = []
        _produce(producer, topic, values, _RECORDS)

        consumers = []
        for _ in range(_CONSUMERS):
            consumer = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": group, "log_level": 3})
            consumer.subscribe([topic])
            consumers.append(consumer)
        seen: list[list[bytes]] = [[] for _ in consumers]
        try:
            _consume(consumers, producer, topic, values, seen)
        finally:
            for consumer in consumers:
                consumer.close()
        counts = Counter(value for part in seen for value in part)
        assert sorted(counts) == values, f"{len(values) - len(counts)} records never delivered"
        assert set(counts.values()) == {1}, f"delivered more than once: {[v for v, n in counts.items() if n > 1][:10]}"
        # Every record acknowledged: each share-partition's start offset is past its records, as
        # the group's coordinator reads them from the database whichever broker wrote them.
        first = len(values) // _PARTITIONS
        expected = {index: first for index in range(_PARTITIONS)}
        _until(lambda: _start_offsets(bootstrap, group, topic) == expected, f"start offsets {expected}")

        # The empty group's start on a partition another broker leads is moved back 10 through
        # its coordinator: that partition's leader hands those 10 out again.
        other = next(index for index, node in leaders.items() if node != leaders[0])
        with KafkaClient(bootstrap) as client:
            altered = client.call(ApiKey.ALTER_SHARE_GROUP_OFFSETS, {"group_id": group, "topics": [{"topic_name": topic, "partitions": [
                {"partition_index": other, "start_offset": first - 10}]}]}, node=leaders[0])[1]
            assert altered["error_code"] == 0 and altered["responses"][0]["partitions"][0]["error_code"] == 0, altered
            again = _ShareFetches(client, group, _topic_id(client, topic), other)
            assert again.acquire(leaders[other]) == [(first - 10, first - 1, 1)]
            assert again.accept(leaders[other], first - 10, first - 1) == 0
        _until(lambda: _start_offsets(bootstrap, group, topic) == expected, f"start offsets {expected} again")

        # Partition 0's leader hands out 20 new records; the first 10 are accepted, the rest are
        # still acquired when that leader stops. Its successor reads the share-partition from
        # the database: the 10 accepted are done, the 10 others are delivered again. The
        # group's next coordinator reads the group from there too.
        for i in range(20):
            producer.produce(topic, b"late-%02d" % i, partition=0)
        assert producer.flush(30) == 0
        moved_from = leaders[0]
        with KafkaClient(bootstrap) as client:
            epoch = _group_epoch(client, group)
            fetch = _ShareFetches(client, group, _topic_id(client, topic))
            assert fetch.acquire(moved_from) == [(first, first + 19, 1)]
            assert fetch.accept(moved_from, first, first + 9) == 0
            brokers.brokers[moved_from - 1].stop()
        others = ",".join(broker.bootstrap for broker in brokers.brokers if broker.node_id != moved_from)
        _until(lambda: _leaders(others, topic)[0] != moved_from, "a new leader of partition 0")
        moved_to = _leaders(others, topic)[0]
        with KafkaClient(others) as client:
            fetch = _ShareFetches(client, group, _topic_id(client, topic))
            assert fetch.acquire(moved_to) == [(first + 10, first + 19, 2)]
            # A broker that does not lead the partition refuses it and names its leader.
            elsewhere = next(broker.node_id for broker in brokers.brokers if broker.node_id not in (moved_from, moved_to))
            assert fetch.refused(elsewhere, first + 10, first + 19) == [(ErrorCode.NOT_LEADER_FOR_PARTITION, moved_to)] * 2
            assert fetch.accept(moved_to, first + 10, first + 19) == 0
        _until(lambda: _start_offsets(others, group, topic) == {**expected, 0: first + 20}, "partition 0's start past the late records")
        with KafkaClient(others) as client:
            _until(lambda: _group_epoch(client, group) == epoch, f"the group at epoch {epoch} on its next coordinator")


def _coordinator(client: KafkaClient, group: str) -> int:
    """The node FindCoordinator names for `group`, once the cluster has one."""
    deadline = time.monotonic() + _DEADLINE
    while True:
        found = client.call(ApiKey.FIND_COORDINATOR, {"key_type": 0, "coordinator_keys": [group]}, highest=4)[1]["coordinators"][0]
        if not found["error_code"]:
            return int(found["node_id"])
        assert time.monotonic() < deadline, f"no coordinator for {group}: {found}"
        time.sleep(0.2)


def _group_on(bootstrap: str, node: int) -> str:
    """A new group id whose coordinator is `node`."""
    prefix = f"workers-{uuid.uuid4().hex[:8]}"
    with KafkaClient(bootstrap) as client:
        for attempt in range(200):
            if _coordinator(client, f"{prefix}-{attempt}") == node:
                return f"{prefix}-{attempt}"
    raise AssertionError(f"no group of 200 is coordinated by {node}")


def _group_epoch(client: KafkaClient, group: str) -> int:
    """ShareGroupDescribe's group epoch from the group's coordinator (0 while it knows no such group)."""
    described = client.call(ApiKey.SHARE_GROUP_DESCRIBE, {"group_ids": [group], "include_authorized_operations": False},
                            node=_coordinator(client, group))[1]["groups"][0]
    return int(described["group_epoch"])


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + _DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"not within {_DEADLINE:.0f}s: {what}"
        time.sleep(0.2)


def _topic_id(client: KafkaClient, topic: str) -> bytes:
    return bytes(client.metadata([topic])["topics"][0]["topic_id"])


class _ShareFetches:
    """Raw ShareFetch and ShareAcknowledge of one partition for one member, sent to the broker
    the caller names (the partition's leader), in one share session per broker."""

    def __init__(self, client: KafkaClient, group: str, topic_id: bytes, partition: int = 0) -> None:
        self.client = client
        self.group = group
        self.topic_id = topic_id
        self.partition = partition
        self.member = uuid.uuid4().hex
        self.epochs: dict[int, int] = {}

    def _fetch(self, node: int) -> dict[str, Any]:
        epoch = self.epochs.get(node, 0)
        answer = self.client.call(ApiKey.SHARE_FETCH, {
            "group_id": self.group, "member_id": self.member, "share_session_epoch": epoch, "max_wait_ms": 500, "min_bytes": 1,
            "max_bytes": 1 << 20, "max_records": 500, "batch_size": 500, "share_acquire_mode": 0,
            "topics": [{"topic_id": self.topic_id, "partitions": [{"partition_index": self.partition, "acknowledgement_batches": []}]}],
            "forgotten_topics_data": []}, node=node, highest=1)[1]
        assert answer["error_code"] == 0, answer
        self.epochs[node] = epoch + 1
        return answer

    def acquire(self, node: int) -> list[tuple[int, int, int]]:
        """(first, last, delivery count) of what one ShareFetch acquires, once one acquires any."""
        deadline = time.monotonic() + _DEADLINE
        while True:
            answer = self._fetch(node)
            partitions = [p for t in answer["responses"] for p in t["partitions"]]
            assert all(p["error_code"] == 0 for p in partitions), answer
            acquired = [(r["first_offset"], r["last_offset"], r["delivery_count"]) for p in partitions for r in p["acquired_records"]]
            if acquired:
                return acquired
            assert time.monotonic() < deadline, "nothing acquired"

    def refused(self, node: int, first: int, last: int) -> list[tuple[int, int]]:
        """A ShareFetch, then a ShareAcknowledge of [first, last], to a broker that does not lead
        the partition: each answer's partition error and the leader it names."""
        fetched = self._fetch(node)["responses"][0]["partitions"][0]
        acknowledged = self._acknowledge(node, first, last)["responses"][0]["partitions"][0]
        return [(part["error_code"], part["current_leader"]["leader_id"]) for part in (fetched, acknowledged)]

    def accept(self, node: int, first: int, last: int) -> int:
        """ACCEPT [first, last] through ShareAcknowledge: the partition's error code."""
        return self.settle(node, first, last, _ACCEPT)

    def settle(self, node: int, first: int, last: int, kind: int) -> int:
        """Acknowledge [first, last] as `kind` through ShareAcknowledge: the partition's error code."""
        return int(self._acknowledge(node, first, last, kind)["responses"][0]["partitions"][0]["error_code"])

    def _acknowledge(self, node: int, first: int, last: int, kind: int = 1) -> dict[str, Any]:
        epoch = self.epochs[node]
        answer = self.client.call(ApiKey.SHARE_ACKNOWLEDGE, {
            "group_id": self.group, "member_id": self.member, "share_session_epoch": epoch,
            "topics": [{"topic_id": self.topic_id, "partitions": [{"partition_index": self.partition, "acknowledgement_batches": [
                {"first_offset": first, "last_offset": last, "acknowledge_types": [kind]}]}]}]}, node=node, highest=1)[1]
        self.epochs[node] = epoch + 1
        assert answer["error_code"] == 0, answer
        return answer


def test_by_duration_and_dead_letters_on_one_postgresql_broker(postgres_url: str, tmp_path: Path) -> None:
    """What is a database round trip on this engine: share.auto.offset.reset=by_duration looks
    the start up by time, and a dead-letter topic the user created is a database topic, whose
    appends (and the reads of the records it copies) happen after the acknowledgement is
    answered."""
    with PostgresBrokers(tmp_path, storage=postgres_url, nodes=1) as brokers:
        _starts_by_duration(brokers.bootstrap)
        _rejected_records_reach_the_dead_letter_topic(brokers.bootstrap)


def _starts_by_duration(bootstrap: str) -> None:
    topic, group = f"recent-{uuid.uuid4().hex[:8]}", f"recent-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
    within_an_hour = ConfigEntry("share.auto.offset.reset", "by_duration:PT1H", incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ResourceType.GROUP, group, incremental_configs=[within_an_hour])
    admin.incremental_alter_configs([resource])[resource].result(timeout=30)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(5):
        producer.produce(topic, b"recent-%d" % i, partition=0)
    assert producer.flush(30) == 0
    with KafkaClient(bootstrap) as client:
        fetch = _ShareFetches(client, group, _topic_id(client, topic))
        assert fetch.acquire(_ONLY) == [(0, 4, 1)]


def _rejected_records_reach_the_dead_letter_topic(bootstrap: str) -> None:
    topic, group, dead = f"work-{uuid.uuid4().hex[:8]}", f"dlq-{uuid.uuid4().hex[:8]}", f"dlq.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    created = admin.create_topics([NewTopic(topic, 1, 1), NewTopic(dead, 1, 1, config={"errors.deadletterqueue.group.enable": "true"})])
    for future in created.values():
        future.result(timeout=30)
    configs = [ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET) for name, value in (
        ("share.auto.offset.reset", "earliest"), ("errors.deadletterqueue.topic.name", dead),
        ("errors.deadletterqueue.copy.record.enable", "true"))]
    resource = ConfigResource(ResourceType.GROUP, group, incremental_configs=configs)
    admin.incremental_alter_configs([resource])[resource].result(timeout=30)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(3):
        producer.produce(topic, b"poison-%d" % i, key=b"k%d" % i, partition=0)
    assert producer.flush(30) == 0
    with KafkaClient(bootstrap) as client:
        fetch = _ShareFetches(client, group, _topic_id(client, topic))
        assert fetch.acquire(_ONLY) == [(0, 2, 1)]
        assert fetch.settle(_ONLY, 0, 2, _REJECT) == 0
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4().hex[:6]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([dead])
    letters: list[Any] = []
    try:
        deadline = time.monotonic() + _DEADLINE
        while len(letters) < 3:
            assert time.monotonic() < deadline, f"{len(letters)} dead letters"
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                letters.append(message)
    finally:
        consumer.close()
    assert [(m.key(), m.value(), dict(m.headers())["__dlq.errors.offset"]) for m in letters] == [
        (b"k%d" % i, b"poison-%d" % i, str(i).encode()) for i in range(3)]
