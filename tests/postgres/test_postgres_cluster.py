"""Three `ottla serve --storage postgresql://... --node-id N` processes on one private PostgreSQL
form one cluster, driven by real clients: Metadata lists every broker, leaders spread over them,
a topic created through one broker is produced to through another at once, records produced
through one bootstrap are consumed through another, and a broker killed with SIGKILL hands its
partitions over once its lease lapses while the clients carry on, losing nothing acknowledged.
A broker cut off from the database gives up its leadership by itself; a second process with a
live broker's node id refuses to start."""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
import time
import uuid
from contextlib import ExitStack
from urllib.parse import urlsplit

import pytest
from confluent_kafka import Consumer, KafkaError
from confluent_kafka import TopicPartition as ConfluentPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions, NewTopic
from kafka import KafkaProducer

from compat.harness import BrokerError, OttlaBroker
from ottla.server.admin.client import KafkaClient
from ottla.server.cluster.database import cancel_until_done
from ottla.server.coordinator.log import java_string_hash
from ottla.storage.postgresql import create_topic, migrate, open_pool
from ottla.storage.postgresql.brokers import Claim, claim_leadership
from ottla.storage.postgresql.notify import Bounds, News, append_payloads, news_payload, parse
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

pytestmark = [pytest.mark.external, pytest.mark.slow]

_START_TIMEOUT = 60.0
_DEADLINE = 60.0
# A short lease, so the kill's hand-over comes quickly (Kafka's default is 9 s).
_LEASE = {"broker.session.timeout.ms": "3000", "broker.heartbeat.interval.ms": "500"}


def _broker(url: str, node_id: int) -> OttlaBroker:
    """Broker `node_id` on a free port over `url`, with the short lease; its `bootstrap` once started."""
    return OttlaBroker(storage=url, node_id=node_id, settings=_LEASE, ready_timeout=_START_TIMEOUT, stop_timeout=30)


def _until(check: object, what: str) -> object:
    """`check()` once it is truthy, polled until the deadline."""
    deadline = time.monotonic() + _DEADLINE
    while True:
        value = check()  # type: ignore[operator]
        if value:
            return value
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.2)


def _leaders(admin: AdminClient, topic: str) -> dict[int, int]:
    metadata = admin.list_topics(topic, timeout=10)
    found = metadata.topics.get(topic)
    if found is None or found.error is not None:
        return {}
    return {index: partition.leader for index, partition in found.partitions.items()}


def _own_partitions(bootstrap: str, topic: str) -> dict[int, tuple[int, int]]:
    """(leader, leader epoch) by partition, as the broker at `bootstrap` itself answers."""
    with KafkaClient(bootstrap) as client:
        found = client.metadata([topic])["topics"][0]
    return {} if found["error_code"] else {p["partition_index"]: (p["leader_id"], p["leader_epoch"]) for p in found["partitions"]}


def _own_leaders(bootstrap: str, topic: str) -> dict[int, int]:
    """The leaders as the broker at `bootstrap` itself answers (a client library may ask any broker it knows)."""
    with KafkaClient(bootstrap) as client:
        found = client.metadata([topic])["topics"][0]
    return {} if found["error_code"] else {partition["partition_index"]: partition["leader_id"] for partition in found["partitions"]}


def _own_config(bootstrap: str, topic: str, key: str) -> str | None:
    """A topic config's value as the broker at `bootstrap` itself describes it."""
    with KafkaClient(bootstrap) as client:
        described = client.call(ApiKey.DESCRIBE_CONFIGS, {
            "resources": [{"resource_type": 2, "resource_name": topic, "configuration_keys": [key]}],
            "include_synonyms": False, "include_documentation": False,
        }, highest=4)[1]
    configs = described["results"][0]["configs"]
    return configs[0]["value"] if configs else None


def _fetch_body(topic: str, index: int, offset: int) -> dict[str, object]:
    """A consumer's Fetch (v12: by topic name) of one partition, parked up to 30 s for data."""
    return {
        "replica_id": -1, "max_wait_ms": 30_000, "min_bytes": 1, "max_bytes": 1 << 20, "isolation_level": 0, "session_id": 0,
        "session_epoch": -1, "forgotten_topics_data": [], "rack_id": "",
        "topics": [{"topic": topic, "partitions": [
            {"partition": index, "current_leader_epoch": -1, "fetch_offset": offset, "log_start_offset": -1, "partition_max_bytes": 1 << 20}
        ]}],
    }


class _LiveConsumer:
    """A consumer of every partition from offset 0, polling in a thread until stopped."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        self.values: list[bytes] = []
        self._errors: list[str] = []
        self._stopping = threading.Event()
        self._consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False,
                                   "auto.offset.reset": "error", "topic.metadata.refresh.interval.ms": 1000})
        self._consumer.assign([ConfluentPartition(topic, index, 0) for index in range(partitions)])
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stopping.is_set():
            message = self._consumer.poll(0.5)
            if message is None:
                continue
            if message.error() is None:
                self.values.append(message.value())
            elif message.error().code() == KafkaError._AUTO_OFFSET_RESET:
                self._errors.append(str(message.error()))

    def stop(self) -> list[str]:
        """Stop polling; the offset resets it met."""
        self._stopping.set()
        self._thread.join(timeout=30)
        self._consumer.close()
        return self._errors


def _consume_all(bootstrap: str, topic: str, partitions: int, expected: int) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False})
    try:
        consumer.assign([ConfluentPartition(topic, index, 0) for index in range(partitions)])
        values: list[bytes] = []
        deadline = time.monotonic() + _DEADLINE
        while len(values) < expected and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                values.append(message.value())
        return values
    finally:
        consumer.close()


def test_three_brokers_over_one_database_are_one_cluster_and_survive_a_kill(postgres_url: str) -> None:
    with ExitStack() as stack:
        brokers = {node_id: stack.enter_context(_broker(postgres_url, node_id)) for node_id in (1, 2, 3)}
        bootstrap = {node_id: broker.bootstrap for node_id, broker in brokers.items()}
        admin_1 = AdminClient({"bootstrap.servers": bootstrap[1]})
        admin_2 = AdminClient({"bootstrap.servers": bootstrap[2]})

        # Every broker lists all three, with the ports they registered.
        for admin in (admin_1, admin_2):
            listed = _until(lambda admin=admin: (found := admin.list_topics(timeout=10).brokers) and len(found) == 3 and found, "3 brokers listed")
            assert {node_id: f"{broker.host}:{broker.port}" for node_id, broker in listed.items()} == bootstrap  # type: ignore[union-attr]

        # Created through broker 1, known to broker 2 without a restart, leaders on every broker.
        admin_1.create_topics([NewTopic("spread", 6, 1)])["spread"].result(timeout=30)
        leaders = _until(lambda: _leaders(admin_2, "spread"), "broker 2 knows the topic broker 1 created")
        assert set(leaders.values()) == {1, 2, 3}  # type: ignore[union-attr]
        assert _leaders(admin_1, "spread") == leaders

        # Partitions added, configs altered and a topic deleted through broker 1 reach broker 2.
        admin_1.create_topics([NewTopic("changing", 1, 1)])["changing"].result(timeout=30)
        admin_1.create_partitions([NewPartitions("changing", 3)])["changing"].result(timeout=30)
        _until(lambda: len(_own_leaders(bootstrap[2], "changing")) == 3, "broker 2 sees the new partitions")
        altered = ConfigResource("topic", "changing", incremental_configs=[ConfigEntry("retention.ms", "123456", incremental_operation=AlterConfigOpType.SET)])
        admin_1.incremental_alter_configs([altered])[altered].result(timeout=30)
        _until(lambda: _own_config(bootstrap[2], "changing", "retention.ms") == "123456", "broker 2 sees the altered config")
        admin_1.delete_topics(["changing"])["changing"].result(timeout=30)
        _until(lambda: not _own_leaders(bootstrap[2], "changing"), "broker 2 forgets the deleted topic")

        # Produced through broker 2's bootstrap (the client follows the leaders), consumed through broker 3's.
        producer = KafkaProducer(bootstrap_servers=bootstrap[2], acks="all", linger_ms=5, retries=1_000_000,
                                 retry_backoff_ms=100, request_timeout_ms=5_000, metadata_max_age_ms=1_000)
        acknowledged: list[bytes] = []
        for number in range(300):
            value = b"before-%d" % number
            producer.send("spread", value, partition=number % 6).add_callback(lambda _, value=value: acknowledged.append(value))
        producer.flush(timeout=60)
        assert len(acknowledged) == 300
        assert sorted(_consume_all(bootstrap[3], "spread", 6, 300)) == sorted(acknowledged)

        # Every broker places a group's coordinator on the same broker; a broker that does not
        # lead a partition refuses ListOffsets for it with the leader's hint left to Metadata;
        # a fetch parked on it is woken by the leader's append (a NOTIFY), not by its timeout.
        leader = leaders[0]  # type: ignore[index]
        follower = next(node_id for node_id in (1, 2, 3) if node_id != leader)
        with KafkaClient(bootstrap[1]) as client:
            coordinators = {
                client.call(ApiKey.FIND_COORDINATOR, {"key_type": 0, "coordinator_keys": ["some-group"]}, node=node_id)[1]["coordinators"][0]["node_id"]
                for node_id in (1, 2, 3)
            }
            assert len(coordinators) == 1 and coordinators <= {1, 2, 3}
            listed = client.call(ApiKey.LIST_OFFSETS, {
                "replica_id": -1, "isolation_level": 0,
                "topics": [{"name": "spread", "partitions": [{"partition_index": 0, "current_leader_epoch": -1, "timestamp": -1}]}],
            }, node=follower)[1]
            assert listed["topics"][0]["partitions"][0]["error_code"] == ErrorCode.NOT_LEADER_FOR_PARTITION
            parked: dict[str, object] = {}
            fetching = threading.Thread(
                target=lambda: parked.update(client.call(ApiKey.FETCH, _fetch_body("spread", 0, 50), node=follower, highest=12)[1])
            )
            fetching.start()
            producer.send("spread", b"wakes-a-follower", partition=0).add_callback(lambda _: acknowledged.append(b"wakes-a-follower"))
            producer.flush(timeout=60)
            fetching.join(timeout=60)
            answer = parked["responses"][0]["partitions"][0]  # type: ignore[index]
            assert answer["error_code"] == ErrorCode.NONE and answer["high_watermark"] == 51 and answer["records"]

        # Broker 3 killed: its partitions move to 1 and 2 once its lease lapses, the producer
        # carries on through the others, and nothing acknowledged is lost.
        before = _own_partitions(bootstrap[1], "spread")
        live = _LiveConsumer(",".join(bootstrap.values()), "spread", 6)
        brokers[3].kill()
        for number in range(300):
            value = b"after-%d" % number
            producer.send("spread", value, partition=number % 6).add_callback(lambda _, value=value: acknowledged.append(value))
        producer.flush(timeout=120)
        producer.close()
        assert len(acknowledged) == 601
        moved = _until(lambda: (found := _leaders(admin_1, "spread")) and 3 not in found.values() and found, "broker 3's partitions move")
        assert set(moved.values()) == {1, 2}  # type: ignore[union-attr]
        assert sorted(admin_2.list_topics(timeout=10).brokers) == [1, 2]
        # A moved partition's epoch grew; a consumer validating its position in the old epoch
        # (KIP-320) is told that epoch ends where the new leader's first batch starts, the log end
        # at the kill: nothing was truncated.
        index = next(index for index, (leader, _) in before.items() if leader == 3)
        new_leader, new_epoch = _until(lambda: (found := _own_partitions(bootstrap[1], "spread")[index]) and found[1] > before[index][1] and found,
                                       "the moved partition's epoch grows")  # type: ignore[misc]
        with KafkaClient(bootstrap[1]) as client:
            validated = client.call(ApiKey.OFFSET_FOR_LEADER_EPOCH, {"replica_id": -1, "topics": [{"topic": "spread", "partitions": [
                {"partition": index, "current_leader_epoch": new_epoch, "leader_epoch": before[index][1]}]}]}, node=new_leader)[1]
        answer = validated["topics"][0]["partitions"][0]
        assert (answer["error_code"], answer["leader_epoch"], answer["end_offset"]) == (ErrorCode.NONE, before[index][1], 50 + (index == 0))
        assert sorted(_consume_all(bootstrap[1], "spread", 6, 601)) == sorted(acknowledged)
        # A consumer that ran through the kill followed the moved leaders without an offset
        # reset (auto.offset.reset=error would have reported one) and received every record.
        _until(lambda: len(live.values) == 601, "the live consumer receives every record")
        assert live.stop() == []
        assert sorted(live.values) == sorted(acknowledged)
        # The survivors agreed on the new leaders: a moved partition's epoch grew once or
        # twice, not once for every claim two brokers took back from each other (it grew by
        # some seventy while they read the live set at different heartbeats).
        settled = _own_partitions(bootstrap[1], "spread")
        assert all(settled[index][1] - before[index][1] <= 3 for index in before), (before, settled)

        # Node id 1 is live: a second broker 1 waits out a session for the lease, then refuses.
        duplicate = _broker(postgres_url, 1)
        with pytest.raises(BrokerError, match="exited 1 before the ready line") as refused:
            duplicate.start()
        duplicate.close()
        assert "node id 1 is registered by another live broker" in refused.value.detail


class _Proxy:
    """A TCP relay to PostgreSQL that can be cut: every relayed connection reset and no new one
    accepted, as when a broker's network to the database fails."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._cut = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._cut:
                client.close()
                return
            server = socket.create_connection(self._target)
            self._sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for each in (source, sink):
            try:
                each.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        self._cut = True
        for each in [self._listener, *self._sockets]:
            try:
                each.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def test_a_broker_cut_off_from_the_database_gives_its_partitions_up(postgres_url: str) -> None:
    parts = urlsplit(postgres_url)
    proxy = _Proxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    proxied = parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}").geturl()
    with _broker(postgres_url, 1) as broker_1, _broker(proxied, 2) as broker_2:
        bootstrap_1, bootstrap_2 = broker_1.bootstrap, broker_2.bootstrap
        admin = AdminClient({"bootstrap.servers": bootstrap_1})
        admin.create_topics([NewTopic("cut", 4, 1)])["cut"].result(timeout=30)
        _until(lambda: set(_own_leaders(bootstrap_2, "cut").values()) == set(_own_leaders(bootstrap_1, "cut").values()) == {1, 2}, "leaders on both")

        proxy.cut()
        # Broker 2, unable to renew its lease, stops leading anything; broker 1 takes every
        # partition once the lease lapses, and clients produce through it.
        _until(lambda: (found := _own_leaders(bootstrap_2, "cut")) and 2 not in found.values(), "broker 2 gives its partitions up")
        _until(lambda: set(_own_leaders(bootstrap_1, "cut").values()) == {1}, "broker 1 takes them over")
        producer = KafkaProducer(bootstrap_servers=bootstrap_1, acks="all", retries=1_000_000, retry_backoff_ms=100)
        for index in range(4):
            producer.send("cut", b"after the cut", partition=index).get(timeout=60)
        producer.close()


def test_a_coordinator_that_moves_is_loaded_by_its_new_broker(postgres_url: str) -> None:
    """Broker 2 runs before a group commits and a transactional id gets its producer id through
    broker 1; when broker 1 stops, broker 2 coordinates both from the records in the database,
    not from its own copy of start."""
    with ExitStack() as brokers:
        first = brokers.enter_context(_broker(postgres_url, 1))
        bootstrap_1, bootstrap_2 = first.bootstrap, brokers.enter_context(_broker(postgres_url, 2)).bootstrap
        offsets = _until(lambda: (found := _own_leaders(bootstrap_2, "__consumer_offsets")) and set(found.values()) == {1, 2} and found,
                         "coordinator partitions on both brokers")
        partitions = len(offsets)  # type: ignore[arg-type]
        group_id = next(f"moved-{n}" for n in itertools.count() if offsets[_offsets_partition(f"moved-{n}", partitions)] == 1)  # type: ignore[index]
        states = _until(lambda: (found := _own_leaders(bootstrap_2, "__transaction_state")) and set(found.values()) == {1, 2} and found,
                        "transaction coordinator partitions on both brokers")
        transactional_id = next(f"moved-{n}" for n in itertools.count() if states[_offsets_partition(f"moved-{n}", len(states))] == 1)  # type: ignore[index, arg-type]
        producer_id, epoch = _init_producer_id(bootstrap_1, transactional_id)
        admin = AdminClient({"bootstrap.servers": bootstrap_1})
        admin.create_topics([NewTopic("resumed", 1, 1)])["resumed"].result(timeout=30)
        producer = KafkaProducer(bootstrap_servers=bootstrap_1, acks="all", retries=1_000_000, retry_backoff_ms=100)
        for value in range(5):
            producer.send("resumed", str(value).encode(), partition=0).get(timeout=60)
        producer.close()
        committing = Consumer({"bootstrap.servers": bootstrap_1, "group.id": group_id, "enable.auto.commit": False})
        committing.commit(offsets=[ConfluentPartition("resumed", 0, 3)], asynchronous=False)
        committing.close()

        first.stop()
        _until(lambda: _own_leaders(bootstrap_2, "__consumer_offsets").get(_offsets_partition(group_id, partitions)) == 2, "broker 2 coordinates the group")
        resuming = Consumer({"bootstrap.servers": bootstrap_2, "group.id": group_id, "auto.offset.reset": "earliest", "enable.auto.commit": False})
        resuming.subscribe(["resumed"])
        message = _until(lambda: (polled := resuming.poll(1.0)) is not None and polled.error() is None and polled, "a record through broker 2")
        resuming.close()
        assert (message.offset(), message.value()) == (3, b"3")  # type: ignore[union-attr]
        # The transactional id keeps its producer id, fenced by a new epoch.
        assert _init_producer_id(bootstrap_2, transactional_id) == (producer_id, epoch + 1)


def _init_producer_id(bootstrap: str, transactional_id: str) -> tuple[int, int]:
    """InitProducerId through the broker at `bootstrap`, retried while its coordinator is not ready there."""
    def init() -> tuple[int, int] | None:
        with KafkaClient(bootstrap) as client:
            answer = client.call(ApiKey.INIT_PRODUCER_ID, {"transactional_id": transactional_id, "transaction_timeout_ms": 60000,
                                                           "producer_id": -1, "producer_epoch": -1}, highest=5)[1]
        return None if answer["error_code"] else (answer["producer_id"], answer["producer_epoch"])

    return _until(init, f"a producer id for {transactional_id}")  # type: ignore[return-value]


def _offsets_partition(key: str, partitions: int) -> int:
    """The coordinator topic's partition of a group or transactional id, as Kafka places it."""
    code = java_string_hash(key)
    return (0 if code == -(1 << 31) else abs(code)) % partitions


def test_a_stopping_broker_cancels_again_a_task_that_swallowed_its_cancellation() -> None:
    """Python 3.11's asyncio.wait_for can swallow a cancellation (what it awaited completing as
    it lands), and a broker's loop around one then carries on: stopping must still end it, or
    the broker ignores SIGTERM (seen on three brokers under load, before it left the live set)."""
    async def stop_one() -> list[str]:
        seen: list[str] = []

        async def loop_that_swallows_once() -> None:
            while True:
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    seen.append("cancelled")
                    if len(seen) > 1:
                        raise

        tasks: set[asyncio.Task[None]] = set()
        task = asyncio.ensure_future(loop_that_swallows_once())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        await asyncio.sleep(0)
        async with asyncio.timeout(10):
            await cancel_until_done(tasks)
        return seen

    assert asyncio.run(stop_one()) == ["cancelled", "cancelled"]


def test_append_notifications_fit_the_payload_limit_and_read_back() -> None:
    bounds = [Bounds(uuid.uuid4(), index, 10**12 + index, index) for index in range(500)]
    payloads = list(append_payloads(7, bounds))
    assert len(payloads) > 1 and all(len(payload.encode()) < 8000 for payload in payloads)
    heard = [parse(payload) for payload in payloads]
    assert all(notification is not None and notification.news is News.APPENDS and notification.node_id == 7 for notification in heard)
    assert [b for notification in heard for b in notification.bounds] == bounds  # type: ignore[union-attr]
    assert parse(news_payload(News.CATALOGUE, 3)) == parse("c|3|")
    assert parse("not a notification") is None


async def test_a_claim_answers_the_partitions_held_already_and_which_it_moved(postgres_url: str) -> None:
    """A broker whose copy of the claims went stale (a reload that read them before its own
    claim landed) claims again: the partitions it holds already are answered with their epochs,
    not left out, so its copy is put right; only a change of leader counts as moved."""
    pool = await open_pool(postgres_url, size=1)
    try:
        async with pool.acquire() as connection:
            await migrate(connection)
        topic_id = await create_topic(pool, "claimed", 2)
        first, second = (topic_id, 0), (topic_id, 1)
        assert await claim_leadership(pool, 1, [first]) == {first: Claim(0, True)}
        assert await claim_leadership(pool, 2, [first, second]) == {first: Claim(1, True), second: Claim(0, True)}
        assert await claim_leadership(pool, 2, [first, second]) == {first: Claim(1, False), second: Claim(0, False)}
        assert await claim_leadership(pool, 1, [first]) == {first: Claim(2, True)}
    finally:
        await pool.close()
