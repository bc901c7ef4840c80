"""Share groups (KIP-932) with stock share consumers over real sockets: confluent-kafka's
ShareConsumer (librdkafka 2.16, in preview there) and Kafka 4.4's console share consumer
and kafka-share-groups tool.

A share-partition starts at the log's end (share.auto.offset.reset=latest, the default), so
each test lets its consumers initialize the partition before it produces.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import AcknowledgeType, Producer, ShareConsumer

from compat.sockets import read_frame
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.protocol import decode_response, encode_request

TOPIC = "queue"
LOCK_MS = 1500
# As in Kafka 4.4, a member is assigned a partition only at the heartbeat after the one that
# initialized its share state (ottla.server.share.group): half-second heartbeats keep that
# wait short. The default (5 s) and its lower bound are a deployment's, not a test's.
QUICK = {"group_share_heartbeat_interval_ms": 500, "group_share_min_heartbeat_interval_ms": 500}


def _produce(bootstrap: str, count: int, prefix: str = "job") -> list[bytes]:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    values = [b"%s-%04d" % (prefix.encode(), i) for i in range(count)]
    for value in values:
        producer.produce(TOPIC, value, partition=0)
    assert producer.flush(10) == 0
    return values


def _consumer(bootstrap: str, group: str, explicit: bool = False) -> ShareConsumer:
    config = {"bootstrap.servers": bootstrap, "group.id": group, "log_level": 3}
    if explicit:
        config["share.acknowledgement.mode"] = "explicit"
    consumer = ShareConsumer(config)
    consumer.subscribe([TOPIC])
    return consumer


def _wait_initialized(broker: ThreadedBroker, group: str, consumers: list[ShareConsumer]) -> None:
    """Poll until the group has initialized its share-partition (its start offset is set)."""
    deadline = time.monotonic() + 30
    # The broker opens its share coordinator at the first share request.
    while broker.broker.share is None or not any(key[0] == group for key in broker.broker.share.partitions):
        assert time.monotonic() < deadline, "the share consumers never fetched"
        for consumer in consumers:
            assert not list(consumer.poll(0.2) or [])


def _poll(consumer: ShareConsumer, timeout: float = 1.0) -> list[Any]:
    records = [message for message in consumer.poll(timeout) or [] if message.error() is None]
    return records


def test_three_consumers_share_one_partition_each_record_once():
    with running_broker(data_dir=None, **QUICK) as broker:
        broker.create_topic(TOPIC)
        bootstrap = broker.bootstrap_servers
        consumers = [_consumer(bootstrap, "workers") for _ in range(3)]
        _wait_initialized(broker, "workers", consumers)
        values = _produce(bootstrap, 300)
        seen: list[list[bytes]] = [[] for _ in consumers]
        done = threading.Event()

        def work(index: int) -> None:
            while not done.is_set():
                seen[index].extend(message.value() for message in _poll(consumers[index], 0.5))

        threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while sum(map(len, seen)) < len(values) and time.monotonic() < deadline:
            time.sleep(0.1)
        done.set()
        for thread in threads:
            thread.join()
        for consumer in consumers:
            consumer.close()
        counts = Counter(value for part in seen for value in part)
        assert sorted(counts) == values
        assert set(counts.values()) == {1}, "a record went to more than one consumer"


_HOLDER = """
import sys, time
from confluent_kafka import ShareConsumer
consumer = ShareConsumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[2], "log_level": 3,
                          "share.acknowledgement.mode": "explicit"})
consumer.subscribe([sys.argv[3]])
held = 0
while held < int(sys.argv[4]):
    held += sum(1 for m in consumer.poll(0.5) or [] if m.error() is None)
print(held, flush=True)
time.sleep(600)
"""


def _hold_then(broker: ThreadedBroker, group: str, stop: signal.Signals) -> dict[bytes, int]:
    """A consumer process acquires 20 records and is stopped with `stop` holding them; what a
    second consumer then receives: value -> delivery count."""
    bootstrap = broker.bootstrap_servers
    watcher = _consumer(bootstrap, group, explicit=True)
    _wait_initialized(broker, group, [watcher])
    watcher.close()
    values = _produce(bootstrap, 20)
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, bootstrap, group, TOPIC, "20"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and int(holder.stdout.readline()) == 20
        holder.send_signal(stop)
        survivor = _consumer(bootstrap, group, explicit=True)
        redelivered: dict[bytes, int] = {}
        deadline = time.monotonic() + 30
        while len(redelivered) < len(values) and time.monotonic() < deadline:
            for message in _poll(survivor):
                redelivered[message.value()] = message.delivery_count()
                survivor.acknowledge(message)
            survivor.commit_sync()
        survivor.close()
    finally:
        holder.kill()
        holder.wait()
    assert sorted(redelivered) == values
    return redelivered


def test_records_of_a_frozen_consumer_are_redelivered_when_their_lock_expires():
    # SIGSTOP keeps the holder's connection open and its member in the group (its session
    # is 45 s): only the acquisition lock frees the records.
    with running_broker(data_dir=None, group_share_record_lock_duration_ms=LOCK_MS, **QUICK) as broker:
        broker.create_topic(TOPIC)
        assert set(_hold_then(broker, "frozen", signal.SIGSTOP).values()) == {2}


def test_records_of_a_killed_consumer_are_released_when_its_connection_closes():
    # Kafka 4.4 ends a share session when its connection closes (asked of the reference
    # broker): the records come back long before their 60 s locks would expire.
    with running_broker(data_dir=None, group_share_record_lock_duration_ms=60_000, **QUICK) as broker:
        broker.create_topic(TOPIC)
        assert set(_hold_then(broker, "killed", signal.SIGKILL).values()) == {2}


def test_rejected_records_and_records_past_the_delivery_limit_are_archived():
    with running_broker(data_dir=None, group_share_delivery_count_limit=2, **QUICK) as broker:
        broker.create_topic(TOPIC)
        bootstrap = broker.bootstrap_servers
        consumer = _consumer(bootstrap, "poison", explicit=True)
        _wait_initialized(broker, "poison", [consumer])
        _produce(bootstrap, 10)
        deliveries: Counter[int] = Counter()
        accepted: list[int] = []
        deadline = time.monotonic() + 30
        share = broker.broker.share  # type: ignore[union-attr]
        topic_id = broker.broker.storage.topic(TOPIC).topic_id  # type: ignore[union-attr]
        while share.start_offset("poison", topic_id, 0) != 10 and time.monotonic() < deadline:
            for message in _poll(consumer, 0.5):
                offset = message.offset()
                deliveries[offset] += 1
                if offset < 3:
                    consumer.acknowledge(message, AcknowledgeType.REJECT)
                elif offset < 6:
                    consumer.acknowledge(message, AcknowledgeType.RELEASE)  # a poison message
                else:
                    consumer.acknowledge(message, AcknowledgeType.ACCEPT)
                    accepted.append(offset)
            consumer.commit_sync()
        consumer.close()
        assert share.start_offset("poison", topic_id, 0) == 10
        assert {offset: deliveries[offset] for offset in range(6)} == {0: 1, 1: 1, 2: 1, 3: 2, 4: 2, 5: 2}
        assert accepted == [6, 7, 8, 9]


def _serve(data_dir: Path, port: int = 0) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "ottla", "serve", "--port", str(port), "--data-dir", str(data_dir),
         *(arg for name, value in QUICK.items() for arg in ("--set", f"{name.replace('_', '.')}={value}"))],
        stderr=subprocess.PIPE, text=True,
    )
    assert process.stderr is not None
    line = process.stderr.readline()
    while line and not line.startswith("ottla ready"):  # warnings come first
        line = process.stderr.readline()
    assert line.startswith("ottla ready"), line
    threading.Thread(target=process.stderr.read, daemon=True).start()
    return process, int(line.split()[2].rsplit(":", 1)[1])


@pytest.mark.slow
def test_acknowledged_records_survive_a_broker_sigkill(tmp_path: Path):
    data_dir = tmp_path / "data"
    broker, port = _serve(data_dir)
    bootstrap = f"127.0.0.1:{port}"
    try:
        first = _consumer(bootstrap, "durable", explicit=True)
        deadline = time.monotonic() + 30
        # The topic is auto-created by the subscription's metadata request; poll until the
        # partition is initialized, observed as a produced record arriving.
        values: list[bytes] = []
        acknowledged: set[bytes] = set()
        while not values and time.monotonic() < deadline:
            _poll(first, 0.3)
            values = _produce(bootstrap, 1, "probe")
            for message in _poll(first, 1.0):
                first.acknowledge(message)
                acknowledged.add(message.value())
            if not acknowledged:
                values = []
        values = _produce(bootstrap, 100)
        while len(acknowledged) < 51 and time.monotonic() < deadline:
            for message in _poll(first):
                if len(acknowledged) < 51:
                    first.acknowledge(message)
                    acknowledged.add(message.value())
            first.commit_sync()
        assert len(acknowledged) == 51
    finally:
        broker.send_signal(signal.SIGKILL)
        broker.wait()
    broker, _ = _serve(data_dir, port)
    try:
        second = _consumer(bootstrap, "durable")
        after: list[bytes] = []
        deadline = time.monotonic() + 30
        while len(set(after) | acknowledged) < len(values) + 1 and time.monotonic() < deadline:
            after.extend(message.value() for message in _poll(second))
        second.close()
    finally:
        broker.send_signal(signal.SIGTERM)
        assert broker.wait(timeout=10) == 0
    assert not acknowledged & set(after), "an acknowledged record was delivered again"
    assert set(after) | acknowledged >= set(values)


@pytest.mark.slow
def test_kafka_console_share_consumer_and_share_groups_tool():
    from compat import kafka
    if not kafka.is_fetched():
        pytest.skip("Kafka 4.4's jars are not fetched (python -m compat.kafka --fetch)")
    classpath = f"{kafka.LIB}/*"
    with running_broker(data_dir=None, **QUICK) as broker:
        broker.create_topic(TOPIC)
        bootstrap = broker.bootstrap_servers
        console = subprocess.Popen(
            ["java", "-cp", classpath, "org.apache.kafka.tools.consumer.ConsoleShareConsumer", "--bootstrap-server", bootstrap,
             "--topic", TOPIC, "--group", "console", "--max-messages", "10", "--timeout-ms", "60000"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        deadline = time.monotonic() + 60
        while broker.broker.share is None or not any(key[0] == "console" for key in broker.broker.share.partitions):
            assert time.monotonic() < deadline and console.poll() is None
            time.sleep(0.2)
        values = _produce(bootstrap, 10)
        out, _ = console.communicate(timeout=60)
        assert sorted(out.split()) == sorted(value.decode() for value in values)
        described = subprocess.run(
            ["java", "-cp", classpath, "org.apache.kafka.tools.consumer.group.ShareGroupCommand", "--bootstrap-server", bootstrap,
             "--describe", "--group", "console"], capture_output=True, text=True, timeout=60)
        rows = [line.split() for line in described.stdout.splitlines() if line.startswith("console")]
        assert rows == [["console", TOPIC, "0", "10", "0"]], described.stdout
        listed = subprocess.run(
            ["java", "-cp", classpath, "org.apache.kafka.tools.consumer.group.ShareGroupCommand", "--bootstrap-server", bootstrap,
             "--list"], capture_output=True, text=True, timeout=60)
        assert "console" in listed.stdout.split()


# --- on Ottla and on the reference Kafka 4.4 ---------------------------------------------


class _Raw:
    """Requests by hand, in Ottla's codec, for what no client sends (bad input, offsets)."""

    def __init__(self, bootstrap: str) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.correlation = 0

    def call(self, api: ApiKey, version: int, body: dict[str, Any]) -> dict[str, Any]:
        self.correlation += 1
        self.sock.sendall(encode_request(api, version, self.correlation, body, client_id="share-tests"))
        frame = read_frame(self.sock)
        assert frame is not None, f"{api.name}: the broker closed the connection"
        return decode_response(api, version, frame)[1]

    def retried(self, api: ApiKey, version: int, body: dict[str, Any]) -> dict[str, Any]:
        """As clients do, again while the coordinator is not ready (NOT_COORDINATOR,
        COORDINATOR_LOAD_IN_PROGRESS: Kafka loads its share coordinator on first use) or a
        partition is not yet known to it (UNKNOWN_TOPIC_OR_PARTITION, retriable: Kafka's
        coordinator learns of a new topic from the metadata log a moment after CreateTopics)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            answer = self.call(api, version, body)
            partition_errors = {p.get("error_code", 0) for t in answer.get("responses", ()) for p in t.get("partitions", ())}
            if answer["error_code"] not in (14, 16) and 3 not in partition_errors:
                break
            time.sleep(0.5)
        return answer

    def find_coordinator(self, group: str) -> None:
        """As clients do, find the coordinator first: Kafka creates __consumer_offsets then."""
        deadline = time.monotonic() + 60
        while self.call(ApiKey.FIND_COORDINATOR, 6, {"key_type": 0, "coordinator_keys": [group]})["coordinators"][0]["error_code"]:
            assert time.monotonic() < deadline, "no group coordinator"
            time.sleep(0.5)

    def reset_to_earliest(self, group: str, topic: str) -> None:
        """`kafka-share-groups --reset-offsets --to-earliest` for a group with no members."""
        self.find_coordinator(group)
        answer = self.retried(ApiKey.ALTER_SHARE_GROUP_OFFSETS, 0, {"group_id": group, "topics": [
            {"topic_name": topic, "partitions": [{"partition_index": 0, "start_offset": 0}]}]})
        assert answer["error_code"] == 0 and all(p["error_code"] == 0 for t in answer["responses"] for p in t["partitions"]), answer

    def close(self) -> None:
        self.sock.close()


def _queue(bootstrap: str, topic: str, workers: int = 3, jobs: int = 150) -> list[list[bytes]]:
    """One partition, `workers` share consumers from the start of the log: what each saw."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})  # held: a collected client cancels its futures
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result()
    raw = _Raw(bootstrap)
    raw.reset_to_earliest(f"{topic}-workers", topic)
    raw.close()
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(jobs):
        producer.produce(topic, b"job-%04d" % i, partition=0)
    assert producer.flush(10) == 0
    consumers = []
    for _ in range(workers):
        consumer = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}-workers", "log_level": 3})
        consumer.subscribe([topic])
        consumers.append(consumer)
    seen: list[list[bytes]] = [[] for _ in consumers]
    done = threading.Event()

    def work(index: int) -> None:
        while not done.is_set():
            seen[index].extend(message.value() for message in _poll(consumers[index], 0.5))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 90
    while sum(map(len, seen)) < jobs and time.monotonic() < deadline:
        time.sleep(0.1)
    done.set()
    for thread in threads:
        thread.join()
    for consumer in consumers:
        consumer.close()
    return seen


@pytest.mark.slow
def test_the_queue_on_ottla_and_on_kafka(reference_kafka: str):
    """Which worker gets which job is up to timing on both brokers; what must agree is that
    every job went to exactly one worker."""
    with running_broker(data_dir=None, **QUICK) as broker:
        ours = _queue(broker.bootstrap_servers, "share-queue")
    theirs = _queue(reference_kafka, "share-queue")
    for seen in (ours, theirs):
        assert sorted(value for part in seen for value in part) == [b"job-%04d" % i for i in range(150)]


def _bad_input(bootstrap: str, name: str) -> dict[str, Any]:
    """Error codes a share group answers to wrong epochs, unknown members and sessions, and
    acknowledgements of records not held, after a valid acquisition of five records."""
    import base64
    import uuid

    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, 1, 1)])[name].result()
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(5):
        producer.produce(name, b"r%d" % i, partition=0)
    assert producer.flush(10) == 0
    raw = _Raw(bootstrap)
    call, retried = raw.call, raw.retried

    def member_id() -> str:
        return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")

    group, member = f"{name}-group", member_id()
    seen: dict[str, Any] = {}
    raw.find_coordinator(group)
    altered = retried(ApiKey.ALTER_SHARE_GROUP_OFFSETS, 0, {"group_id": group, "topics": [
        {"topic_name": name, "partitions": [{"partition_index": 0, "start_offset": 0}]}]})
    seen["alter before any member"] = (altered["error_code"], [p["error_code"] for t in altered["responses"] for p in t["partitions"]])

    def heartbeat(member: str, epoch: int, topics: list[str] | None = None) -> dict[str, Any]:
        return retried(ApiKey.SHARE_GROUP_HEARTBEAT, 1, {"group_id": group, "member_id": member, "member_epoch": epoch,
                                                       "rack_id": None, "subscribed_topic_names": topics})

    joined = heartbeat(member, 0, [name])
    epoch = joined["member_epoch"]
    seen["join"] = (joined["error_code"], epoch > 0)
    seen["wrong member epoch"] = heartbeat(member, epoch + 5)["error_code"]
    seen["unknown member"] = heartbeat(member_id(), 1)["error_code"]
    topic_id = next(iter(t["topic_id"] for t in call(ApiKey.METADATA, 12, {"topics": [{"topic_id": bytes(16), "name": name}],
                                                                            "allow_auto_topic_creation": False,
                                                                            "include_topic_authorized_operations": False})["topics"]))

    def fetch(session_epoch: int, member: str = member, acks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        return call(ApiKey.SHARE_FETCH, 1, {
            "group_id": group, "member_id": member, "share_session_epoch": session_epoch, "max_wait_ms": 500, "min_bytes": 1,
            "max_bytes": 1 << 20, "max_records": 500, "batch_size": 500,
            "topics": [{"topic_id": topic_id, "partitions": [{"partition_index": 0, "acknowledgement_batches": acks or []}]}],
            "forgotten_topics_data": []})

    def acknowledge(session_epoch: int, first: int, last: int, kind: int, member: str = member) -> dict[str, Any]:
        return call(ApiKey.SHARE_ACKNOWLEDGE, 1, {
            "group_id": group, "member_id": member, "share_session_epoch": session_epoch,
            "topics": [{"topic_id": topic_id, "partitions": [{"partition_index": 0, "acknowledgement_batches": [
                {"first_offset": first, "last_offset": last, "acknowledge_types": [kind]}]}]}]})

    def partition_codes(response: dict[str, Any], field_name: str) -> list[int]:
        return [p[field_name] for t in response["responses"] for p in t["partitions"]]

    session_epoch, acquired = 0, []
    deadline = time.monotonic() + 30
    while not acquired and time.monotonic() < deadline:
        answer = fetch(session_epoch)
        assert answer["error_code"] == 0, answer
        acquired = [(r["first_offset"], r["last_offset"], r["delivery_count"])
                    for t in answer["responses"] for p in t["partitions"] for r in p["acquired_records"]]
        session_epoch += 1
    seen["acquired"] = acquired
    seen["wrong session epoch"] = fetch(session_epoch + 7)["error_code"]
    seen["unknown session"] = acknowledge(1, 0, 0, 1, member=member_id())["error_code"]
    seen["ack on an opening fetch"] = fetch(0, acks=[{"first_offset": 0, "last_offset": 0, "acknowledge_types": [1]}])["error_code"]
    reopened = fetch(0)
    seen["a new session for the same member"] = (reopened["error_code"], [
        (r["first_offset"], r["last_offset"], r["delivery_count"]) for t in reopened["responses"] for p in t["partitions"]
        for r in p["acquired_records"]])
    session_epoch = 1
    beyond = acknowledge(session_epoch, 100, 101, 1)
    session_epoch += 1
    seen["ack beyond the end"] = (beyond["error_code"], partition_codes(beyond, "error_code"))
    accepted = acknowledge(session_epoch, 0, 4, 1)
    session_epoch += 1
    seen["accept held records"] = (accepted["error_code"], partition_codes(accepted, "error_code"))
    again = acknowledge(session_epoch, 0, 4, 1)
    session_epoch += 1
    seen["accept them again"] = (again["error_code"], partition_codes(again, "error_code"))
    listed = call(ApiKey.LIST_GROUPS, 5, {"states_filter": [], "types_filter": ["share"]})["groups"]
    seen["listed as share"] = [(g["group_type"], g["protocol_type"], g["group_state"]) for g in listed if g["group_id"] == group]
    classic = call(ApiKey.LIST_GROUPS, 5, {"states_filter": [], "types_filter": ["classic"]})["groups"]
    seen["listed as classic"] = [g["group_id"] for g in classic if g["group_id"] == group]
    described = call(ApiKey.DESCRIBE_GROUPS, 6, {"groups": [group], "include_authorized_operations": False})["groups"][0]
    seen["classic describe"] = (described["error_code"], described["error_message"], described["group_state"])
    seen["leave"] = heartbeat(member, -1)["member_epoch"]
    described = call(ApiKey.DESCRIBE_SHARE_GROUP_OFFSETS, 0, {"groups": [{"group_id": group, "topics": [
        {"topic_name": name, "partitions": [0]}]}]})
    seen["describe missing group"] = call(ApiKey.SHARE_GROUP_DESCRIBE, 1, {"group_ids": ["no-such-share-group"],
                                                                          "include_authorized_operations": False})["groups"][0]["error_code"]
    seen["describe offsets"] = [p["error_code"] for g in described["groups"] for t in g["topics"] for p in t["partitions"]]
    seen["delete a group with none in it"] = call(ApiKey.DELETE_GROUPS, 2, {"groups_names": [group]})["results"][0]["error_code"]
    described = call(ApiKey.DESCRIBE_SHARE_GROUP_OFFSETS, 1, {"groups": [{"group_id": group, "topics": [
        {"topic_name": name, "partitions": [0]}]}]})
    seen["describe offsets of a deleted group"] = [
        (g["error_code"], [(p["error_code"], p["start_offset"], p.get("lag")) for t in g["topics"] for p in t["partitions"]])
        for g in described["groups"]]
    raw.close()
    return seen


@pytest.mark.slow
def test_bad_input_is_answered_with_kafkas_error_codes(reference_kafka: str):
    with running_broker(data_dir=None, **QUICK) as broker:
        ours = _bad_input(broker.bootstrap_servers, "share-bad-input")
    theirs = _bad_input(reference_kafka, "share-bad-input")
    assert ours == theirs
    assert ours["wrong member epoch"] == 110 and ours["unknown member"] == 25  # FENCED_MEMBER_EPOCH, UNKNOWN_MEMBER_ID


def test_a_share_consumer_cannot_join_a_classic_groups_id():
    from confluent_kafka import Consumer

    with running_broker(data_dir=None, group_initial_rebalance_delay_ms=0) as broker:
        broker.create_topic(TOPIC)
        bootstrap = broker.bootstrap_servers
        classic = Consumer({"bootstrap.servers": bootstrap, "group.id": "taken", "log_level": 3})
        classic.subscribe([TOPIC])
        deadline = time.monotonic() + 30
        while not classic.assignment():
            assert time.monotonic() < deadline, "the classic consumer never joined"
            classic.poll(0.2)
        raw = _Raw(bootstrap)
        answer = raw.call(ApiKey.SHARE_GROUP_HEARTBEAT, 1, {"group_id": "taken", "member_id": "m" * 22, "member_epoch": 0,
                                                            "rack_id": None, "subscribed_topic_names": [TOPIC]})
        raw.close()
        classic.close()
        assert (answer["error_code"], answer["error_message"]) == (69, "Group taken is not a share group.")
