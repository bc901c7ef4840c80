"""Over PostgreSQL with two brokers, a share-partition's initialization snapshot (Kafka's
InitializeShareGroupState: no start offset, the group epoch as state epoch) is written by the
group's coordinator, and the partition's leader, another broker, takes it from the database
before its first fetch, as Kafka's leader reads the state from the share coordinator
(ReadShareGroupState): its first write is an update over that snapshot, as on one broker, not
a snapshot of its own at state epoch 0 (tests/postgres/test_postgres_share_state_records.py
pins one broker's). It does so at the group's first share session there, for a topic the group
initializes while the session is open, and after a coordinator stopped within an
initialization: started again, the group's record still lists the topic as initializing
(GroupMetadataManager replays it so) and its next heartbeat initializes it anew."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any, cast

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # type: ignore[import-untyped]

from ottla.server.admin.client import KafkaClient
from ottla.server.coordinator import SHARE_GROUP_STATE
from ottla.server.coordinator.topics import OFFSETS_TOPIC
from ottla.server.groups import share_records as group_records
from ottla.server.share.records import PartitionRecord, ShareState, StateUpdate, parse
from ottla.storage.postgresql.engine import PostgresStorage
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.records import Record, build_batch
from share_member import ShareMember

pytestmark = pytest.mark.external

_DEADLINE_S = 30.0
_PARTITIONS = 2


def _until(found: Any, what: str) -> Any:
    deadline = time.monotonic() + _DEADLINE_S
    while True:
        value = found()
        if value is not None:
            return value
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def _leaders(bootstrap: str, topic: str) -> dict[int, int] | None:
    with KafkaClient(bootstrap) as client:
        partitions = client.metadata([topic])["topics"][0]["partitions"]
    leaders = {p["partition_index"]: p["leader_id"] for p in partitions}
    return leaders if len(leaders) == _PARTITIONS and min(leaders.values()) >= 0 else None


def _agreed_leaders(brokers: dict[int, ThreadedBroker], topic: str) -> dict[int, int] | None:
    seen = [_leaders(broker.bootstrap_servers, topic) for broker in brokers.values()]
    return seen[0] if seen[0] is not None and all(view == seen[0] for view in seen) else None


def _coordinator(bootstrap: str, group: str) -> int | None:
    with KafkaClient(bootstrap) as client:
        found = client.call(ApiKey.FIND_COORDINATOR, {"key_type": 0, "coordinator_keys": [group]})[1]["coordinators"][0]
    return None if found["error_code"] else int(found["node_id"])


def _state_records(bootstrap: str, topic_id: bytes, index: int) -> list[ShareState | StateUpdate | None]:
    """The records of every share-partition of `topic_id`'s partition `index`, in their order."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=3000)
    partitions = [TopicPartition("__share_group_state", i) for i in consumer.partitions_for_topic("__share_group_state")]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    records = [parse(bytes(m.key), None if m.value is None else bytes(m.value)) for m in consumer]
    consumer.close()
    return [r.value for r in records if isinstance(r, PartitionRecord) and r.key[1:] == (topic_id, index)]


def _member(broker: ThreadedBroker, member_id: str | None = None) -> ShareMember:
    member = ShareMember(cast(ThreadedBroker, SimpleNamespace(bootstrap_servers=broker.bootstrap_servers)))
    if member_id is not None:
        member.member_id = member_id
    return member


class _Setup:
    """Two brokers on one database, a group coordinated by one and topics whose partition
    `index` the other leads."""

    def __init__(self, brokers: dict[int, ThreadedBroker], topics: list[str], again: _Setup | None = None) -> None:
        """`again`: the same group, partition and member, on brokers started again."""
        bootstrap = brokers[1].bootstrap_servers
        if again is None:
            for topic in topics:
                brokers[1].create_topic(topic, _PARTITIONS)
        # The same on every broker: the other learns of a topic by a notification, and brokers
        # started together may move leaders while the second registers.
        leaders = [_until(lambda topic=topic: _agreed_leaders(brokers, topic), f"{topic}'s leaders differ between the brokers")
                   for topic in topics]
        if again is None:
            # The brokers split the partitions: one index is led by the same broker in every topic here.
            self.index = next(i for i in range(_PARTITIONS) if len({found[i] for found in leaders}) == 1)
            self.group = next(group for group in (f"init-{n}" for n in range(200))
                              if _until(lambda group=group: _coordinator(bootstrap, group), "no coordinator") != leaders[0][self.index])
        else:
            self.index, self.group = again.index, again.group
        self.leader_id = leaders[0][self.index]
        coordinator_id = _until(lambda: _coordinator(bootstrap, self.group), "no coordinator")
        assert coordinator_id != self.leader_id, (coordinator_id, leaders)
        self.coordinator = _member(brokers[coordinator_id], None if again is None else again.coordinator.member_id)
        self.leader = _member(brokers[self.leader_id], self.coordinator.member_id)
        self.bootstrap = bootstrap
        groups = brokers[1].broker.groups if brokers[1].broker is not None else None
        assert groups is not None
        self.offsets_partition = groups.offsets_partition(self.group)

    def close(self) -> None:
        self.coordinator.close()
        self.leader.close()

    def heartbeat_until_assigned(self, epoch: int, topics: list[str], wanted: int) -> tuple[int, dict[bytes, list[int]]]:
        """Heartbeats (the subscription sent with each) until `wanted` topics are assigned."""
        deadline = time.monotonic() + _DEADLINE_S
        while True:
            beat = self.coordinator.call(ApiKey.SHARE_GROUP_HEARTBEAT, 1, {
                "group_id": self.group, "member_id": self.coordinator.member_id, "member_epoch": epoch, "rack_id": None,
                "subscribed_topic_names": topics})
            if beat["error_code"] == 0:
                epoch = beat["member_epoch"]
                assigned = {bytes(t["topic_id"]): t["partitions"] for t in (beat["assignment"] or {}).get("topic_partitions") or []}
                if len(assigned) == wanted:
                    return epoch, assigned
            assert time.monotonic() < deadline, beat
            time.sleep(0.2)

    def fetch(self, session_epoch: int, topic_id: bytes) -> list[tuple[int, int]]:
        """One ShareFetch of the leader's partition of `topic_id`: the ranges acquired."""
        answer = self.leader.call(ApiKey.SHARE_FETCH, 1, {
            "group_id": self.group, "member_id": self.leader.member_id, "share_session_epoch": session_epoch, "max_wait_ms": 2000,
            "min_bytes": 1, "max_bytes": 1 << 20, "max_records": 500, "batch_size": 500,
            "topics": [{"topic_id": topic_id, "partitions": [{"partition_index": self.index, "acknowledgement_batches": []}]}],
            "forgotten_topics_data": []})
        assert answer["error_code"] == 0, answer
        return [(r["first_offset"], r["last_offset"]) for t in answer["responses"] for p in t["partitions"]
                for r in p["acquired_records"] if p["partition_index"] == self.index]

    def produce(self, topic: str, count: int) -> None:
        producer = KafkaProducer(bootstrap_servers=self.bootstrap)
        for _ in range(count):
            producer.send(topic, b"v", partition=self.index)
        producer.flush()
        producer.close()


@contextmanager
def _two_brokers(postgres_url: str, topics: list[str], again: _Setup | None = None) -> Iterator[_Setup]:
    with running_broker(storage_url=postgres_url, node_id=1) as first, running_broker(storage_url=postgres_url, node_id=2) as second:
        setup = _Setup({1: first, 2: second}, topics, again)
        try:
            yield setup
        finally:
            setup.close()


def _initialized_then_updated(records: list[ShareState | StateUpdate | None], state_epoch: int) -> None:
    """The coordinator's initialization snapshot, then the leader's updates over it."""
    assert records and isinstance(records[0], ShareState), records
    assert (records[0].state_epoch, records[0].start_offset) == (state_epoch, -1)
    assert records[1:] and all(isinstance(record, StateUpdate) and record.snapshot_epoch == 0 for record in records[1:]), records
    assert records[-1].start_offset == 0  # type: ignore[union-attr]


def _leader_takes_the_initialization(setup: _Setup, topic: str, topic_id: bytes, session_epoch: int) -> None:
    """The coordinator wrote one initialization snapshot; the leader's fetches at `session_epoch`
    and the next start from it (nothing yet, then what was produced), writing updates over it."""
    (init,) = _state_records(setup.bootstrap, topic_id, setup.index)
    assert isinstance(init, ShareState) and init.state_epoch > 0
    assert setup.fetch(session_epoch, topic_id) == []  # its start: the log end (share.auto.offset.reset latest)
    setup.produce(topic, 3)
    assert setup.fetch(session_epoch + 1, topic_id) == [(0, 2)]
    _initialized_then_updated(_state_records(setup.bootstrap, topic_id, setup.index), init.state_epoch)


def test_the_leader_takes_the_initialization_its_group_s_coordinator_wrote(postgres_url: str) -> None:
    with _two_brokers(postgres_url, ["init-a"]) as setup:
        _, assigned = setup.heartbeat_until_assigned(0, ["init-a"], 1)
        (topic_id,) = assigned
        _leader_takes_the_initialization(setup, "init-a", topic_id, 0)


def test_a_topic_initialized_while_the_leader_s_session_is_open_is_taken_too(postgres_url: str) -> None:
    with _two_brokers(postgres_url, ["init-b", "init-c"]) as setup:
        epoch, assigned = setup.heartbeat_until_assigned(0, ["init-b"], 1)
        (first,) = assigned
        assert setup.fetch(0, first) == []
        _, assigned = setup.heartbeat_until_assigned(epoch, ["init-b", "init-c"], 2)
        (second,) = set(assigned) - {first}
        _leader_takes_the_initialization(setup, "init-c", second, 1)


def _interrupt_initialization(postgres_url: str, group: str, offsets_partition: int, topic_id: bytes, topic: str) -> None:
    """The database as a coordinator stopped within an initialization leaves it: the group's
    record lists the topic as initializing (the heartbeat's first batch), and there is no
    share state (the snapshots' batch and the one marking the topic initialized never landed)."""
    async def rewrite() -> None:
        storage = await PostgresStorage.connect(postgres_url, asyncio.Lock, None)
        try:
            initializing = group_records.StatePartitions((group_records.TopicPartitions(topic_id, topic, tuple(range(_PARTITIONS))),), (), ())
            record = Record(0, int(time.time() * 1000), group_records.key(group_records.STATE_PARTITION_METADATA, group),
                            group_records.state_partitions_value(initializing))
            await storage.partition(OFFSETS_TOPIC, offsets_partition).append(build_batch([record]))
            state_topic = storage.topic(SHARE_GROUP_STATE.name)
            assert state_topic is not None
            for index in range(state_topic.partitions):
                await storage.partition(SHARE_GROUP_STATE.name, index).delete_records(-1)
        finally:
            await storage.close_database()

    asyncio.run(rewrite())


def test_a_restarted_coordinator_finishes_an_interrupted_initialization_for_the_leader(postgres_url: str) -> None:
    with _two_brokers(postgres_url, ["init-d"]) as setup:
        epoch, assigned = setup.heartbeat_until_assigned(0, ["init-d"], 1)
        (topic_id,) = assigned
    _interrupt_initialization(postgres_url, setup.group, setup.offsets_partition, topic_id, "init-d")
    with _two_brokers(postgres_url, ["init-d"], again=setup) as restarted:
        assert _state_records(restarted.bootstrap, topic_id, restarted.index) == []
        _, assigned = restarted.heartbeat_until_assigned(epoch, ["init-d"], 1)
        _leader_takes_the_initialization(restarted, "init-d", topic_id, 0)
