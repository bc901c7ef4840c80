"""A share consumer's close: its ShareGroupHeartbeat leave and its final ShareAcknowledge
(share session epoch -1, with the acknowledgements still pending) go out together, on two
connections (the coordinator's and the partition leader's), in either order.

Kafka 4.4 keeps a share session until the session itself ends (final epoch, or its connection
closing): the group coordinator's leave does not reach the ShareSessionCache (KafkaApis
handleShareGroupHeartbeat hands the request to the GroupCoordinator alone), so a final
ShareAcknowledge that comes after the leave is answered NONE and its acknowledgements count,
asked of the reference broker by hand below. Ottla once ended a member's sessions and released
its records at the leave, so those acknowledgements were refused (SHARE_SESSION_NOT_FOUND) and a
real consumer's acknowledged records were delivered again in about a third of its closes.
"""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import pytest
from confluent_kafka import Producer, ShareConsumer
from kafka_wire import WireClient

from ottla.testing import running_broker
from ottla.wire.api import ApiKey

TOPIC = "closing"
# As test_share_groups: half-second heartbeats keep the wait for an assignment short.
QUICK = {"group_share_heartbeat_interval_ms": 500, "group_share_min_heartbeat_interval_ms": 500}
ACCEPT = 1


def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for value in values:
        producer.produce(topic, value, partition=0)
    assert producer.flush(10) == 0


def _consumer(bootstrap: str, group: str) -> ShareConsumer:
    consumer = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": group, "log_level": 3,
                              "share.acknowledgement.mode": "explicit"})
    consumer.subscribe([TOPIC])
    return consumer


def test_acknowledgements_of_a_final_share_acknowledge_that_comes_after_the_leave_count():
    with running_broker(data_dir=None, **QUICK) as broker:
        broker.create_topic(TOPIC)
        bootstrap = broker.bootstrap_servers
        closing = _consumer(bootstrap, "closers")
        deadline = time.monotonic() + 30
        # The share-partition starts at the log's end: the first fetch initializes it.
        while broker.broker.share is None or not any(key[0] == "closers" for key in broker.broker.share.partitions):
            assert time.monotonic() < deadline, "the share consumer never fetched"
            assert not list(closing.poll(0.2) or [])
        values = [b"job-%02d" % i for i in range(20)]
        _produce(bootstrap, TOPIC, values)
        held: list[Any] = []
        while len(held) < len(values):
            assert time.monotonic() < deadline, f"only {len(held)} records arrived"
            held.extend(message for message in closing.poll(0.5) or [] if message.error() is None)
        for message in held:
            closing.acknowledge(message)
        # The final ShareAcknowledge is held back until the leave has been handled.
        late = broker.faults.add("share_acknowledge", when=lambda body: body["share_session_epoch"] == -1, delay_ms=500, count=1)
        closing.close()
        assert late.fired == 1
        successor = _consumer(bootstrap, "closers")
        _produce(bootstrap, TOPIC, [b"marker"])
        received: list[tuple[bytes, int]] = []
        while b"marker" not in (value for value, _ in received):
            assert time.monotonic() < deadline + 30, f"the marker never arrived: {received}"
            received.extend((message.value(), message.delivery_count()) for message in successor.poll(0.5) or [] if message.error() is None)
        successor.close()
        assert received == [(b"marker", 1)]


def _member_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def _retried(client: WireClient, api: ApiKey, body: dict[str, Any]) -> dict[str, Any]:
    """Again while the coordinator is not ready (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS):
    Kafka loads its coordinators on first use."""
    deadline = time.monotonic() + 60
    answer = client.call(api, 1, body)
    while answer["error_code"] in (14, 16) and time.monotonic() < deadline:
        time.sleep(0.5)
        answer = client.call(api, 1, body)
    return answer


def _leave_then_acknowledge(bootstrap: str, topic: str) -> dict[str, Any]:
    """A member acquires five records, leaves the group, then closes its share session with a
    ShareAcknowledge accepting them; what each answer says and what a new member then gets."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})  # held: a collected client cancels its futures
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result()
    _produce(bootstrap, topic, [b"r%d" % i for i in range(5)])
    group = f"{topic}-group"
    client = WireClient(bootstrap, client_id="share-close")
    deadline = time.monotonic() + 60
    while client.call(ApiKey.FIND_COORDINATOR, 6, {"key_type": 0, "coordinator_keys": [group]})["coordinators"][0]["error_code"]:
        assert time.monotonic() < deadline, "no group coordinator"
        time.sleep(0.5)
    altered = {"error_code": 14}
    while altered["error_code"] in (14, 16) or any(p["error_code"] == 3 for t in altered["responses"] for p in t["partitions"]):
        assert time.monotonic() < deadline, altered
        time.sleep(0.2)
        altered = client.call(ApiKey.ALTER_SHARE_GROUP_OFFSETS, 0, {"group_id": group, "topics": [
            {"topic_name": topic, "partitions": [{"partition_index": 0, "start_offset": 0}]}]})
    topic_id = client.call(ApiKey.METADATA, 12, {"topics": [{"topic_id": bytes(16), "name": topic}], "allow_auto_topic_creation": False,
                                                 "include_topic_authorized_operations": False})["topics"][0]["topic_id"]

    def heartbeat(member: str, epoch: int, topics: list[str] | None = None) -> dict[str, Any]:
        return _retried(client, ApiKey.SHARE_GROUP_HEARTBEAT, {"group_id": group, "member_id": member, "member_epoch": epoch,
                                                               "rack_id": None, "subscribed_topic_names": topics})

    def acquire(member: str) -> list[tuple[int, int, int]]:
        """Fetches of a new session until records come, or two seconds pass."""
        acquired: list[tuple[int, int, int]] = []
        session_epoch, until = 0, time.monotonic() + 2
        while not acquired and time.monotonic() < until:
            answer = client.call(ApiKey.SHARE_FETCH, 1, {
                "group_id": group, "member_id": member, "share_session_epoch": session_epoch, "max_wait_ms": 500, "min_bytes": 1,
                "max_bytes": 1 << 20, "max_records": 500, "batch_size": 500,
                "topics": [{"topic_id": topic_id, "partitions": [{"partition_index": 0, "acknowledgement_batches": []}]}],
                "forgotten_topics_data": []})
            acquired = [(r["first_offset"], r["last_offset"], r["delivery_count"])
                        for t in answer["responses"] for p in t["partitions"] for r in p["acquired_records"]]
            session_epoch += 1
        return acquired

    seen: dict[str, Any] = {}
    leaving = _member_id()
    heartbeat(leaving, 0, [topic])
    seen["acquired"] = acquire(leaving)
    seen["leave"] = heartbeat(leaving, -1)["error_code"]
    final = client.call(ApiKey.SHARE_ACKNOWLEDGE, 1, {
        "group_id": group, "member_id": leaving, "share_session_epoch": -1,
        "topics": [{"topic_id": topic_id, "partitions": [{"partition_index": 0, "acknowledgement_batches": [
            {"first_offset": 0, "last_offset": 4, "acknowledge_types": [ACCEPT]}]}]}]})
    seen["final acknowledge"] = (final["error_code"], [p["error_code"] for t in final["responses"] for p in t["partitions"]])
    successor = _member_id()
    heartbeat(successor, 0, [topic])
    seen["a new member gets"] = acquire(successor)
    heartbeat(successor, -1)
    client.close()
    return seen


@pytest.mark.slow
def test_a_final_share_acknowledge_after_the_leave_on_kafka(reference_kafka: str):
    assert _leave_then_acknowledge(reference_kafka, "share-close-leave") == {
        "acquired": [(0, 4, 1)], "leave": 0, "final acknowledge": (0, [0]), "a new member gets": []}


def test_a_final_share_acknowledge_after_the_leave_on_ottla():
    with running_broker(data_dir=None, **QUICK) as broker:
        assert _leave_then_acknowledge(broker.bootstrap_servers, "share-close-leave") == {
            "acquired": [(0, 4, 1)], "leave": 0, "final acknowledge": (0, [0]), "a new member gets": []}
