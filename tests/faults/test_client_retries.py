"""Stock clients against faults on demand: each retries what Kafka documents as retriable and
surfaces what is not, over real sockets, through the pytest fixture `ottla_faults`.

Every fault is narrowed to the test's own topic (or client id), so the session broker the
tests share sees no other test's faults; the fixture removes them when a test ends."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import TopicAuthorizationFailedError

from ottla.testing import Faults, ThreadedBroker

RECORDS = 10
VALUES = [b"v%d" % i for i in range(RECORDS)]
# Retriable errors of a Produce, as Kafka's Errors.java documents them (RetriableException).
RETRIABLE_PRODUCE_ERRORS = ["NOT_LEADER_OR_FOLLOWER", "REQUEST_TIMED_OUT", "NOT_ENOUGH_REPLICAS"]


@pytest.fixture
def topic(ottla_broker: ThreadedBroker) -> str:
    name = f"faults-{uuid.uuid4().hex[:8]}"
    ottla_broker.create_topic(name, 1)
    return name


def _read(bootstrap: str, topic: str) -> list[bytes]:
    """Every record of partition 0 up to its end offset, read without a group."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=10000)
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    end = consumer.end_offsets([partition])[partition]
    consumer.seek_to_beginning(partition)
    values = []
    for message in consumer if end else ():
        values.append(message.value)
        if message.offset + 1 >= end:
            break
    consumer.close()
    return values


def _kafka_python_produce(bootstrap: str, topic: str, **settings: Any) -> list[int]:
    producer = KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, retry_backoff_ms=10, **settings)
    futures = [producer.send(topic, value, partition=0) for value in VALUES]
    offsets = [future.get(timeout=60).offset for future in futures]
    producer.close()
    return offsets


def _confluent_produce(bootstrap: str, topic: str, **settings: Any) -> list[tuple[int, KafkaError | None]]:
    """(offset, error) of each record, in the order the delivery reports came."""
    reports: list[tuple[int, KafkaError | None]] = []
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "retry.backoff.ms": 10, **settings})
    for value in VALUES:
        producer.produce(topic, value, partition=0, on_delivery=lambda error, message: reports.append((message.offset(), error)))
    assert producer.flush(60) == 0
    return reports


@pytest.mark.parametrize("error", RETRIABLE_PRODUCE_ERRORS)
def test_kafka_python_retries_a_retriable_produce_error_and_writes_once_in_order(
    ottla_bootstrap: str, ottla_faults: Faults, topic: str, error: str
) -> None:
    fault = ottla_faults.add(api="produce", topic=topic, partition=0, error=error, count=3)
    assert _kafka_python_produce(ottla_bootstrap, topic) == list(range(RECORDS))
    assert fault.fired == 3
    assert _read(ottla_bootstrap, topic) == VALUES


@pytest.mark.parametrize("error", RETRIABLE_PRODUCE_ERRORS)
def test_confluent_retries_a_retriable_produce_error_and_writes_once_in_order(
    ottla_bootstrap: str, ottla_faults: Faults, topic: str, error: str
) -> None:
    fault = ottla_faults.add(api="produce", topic=topic, partition=0, error=error, count=3)
    assert _confluent_produce(ottla_bootstrap, topic) == [(offset, None) for offset in range(RECORDS)]
    assert fault.fired == 3
    assert _read(ottla_bootstrap, topic) == VALUES


@pytest.mark.slow
def test_kafka_python_retries_a_produce_answered_after_its_request_timeout(ottla_bootstrap: str, ottla_faults: Faults, topic: str) -> None:
    fault = ottla_faults.add(api="produce", topic=topic, delay_ms=3000, count=1)
    assert _kafka_python_produce(ottla_bootstrap, topic, request_timeout_ms=1000) == list(range(RECORDS))
    assert fault.fired == 1
    assert _read(ottla_bootstrap, topic) == VALUES


@pytest.mark.slow
def test_confluent_retries_a_produce_answered_after_its_request_timeout(ottla_bootstrap: str, ottla_faults: Faults, topic: str) -> None:
    fault = ottla_faults.add(api="produce", topic=topic, delay_ms=3000, count=1)
    assert [error for _, error in _confluent_produce(ottla_bootstrap, topic, **{"request.timeout.ms": 1000})] == [None] * RECORDS
    assert fault.fired == 1
    assert _read(ottla_bootstrap, topic) == VALUES


@pytest.mark.parametrize("drop", ["before", "after"])
def test_kafka_python_resends_what_a_dropped_connection_left_unanswered_without_duplicates(
    ottla_bootstrap: str, ottla_faults: Faults, topic: str, drop: str
) -> None:
    fault = ottla_faults.add(api="produce", topic=topic, drop=drop, count=2)
    assert _kafka_python_produce(ottla_bootstrap, topic) == list(range(RECORDS))
    assert fault.fired == 2
    assert _read(ottla_bootstrap, topic) == VALUES


@pytest.mark.parametrize("drop", ["before", "after"])
def test_confluent_resends_what_a_dropped_connection_left_unanswered_without_duplicates(
    ottla_bootstrap: str, ottla_faults: Faults, topic: str, drop: str
) -> None:
    fault = ottla_faults.add(api="produce", topic=topic, drop=drop, count=2)
    assert [error for _, error in _confluent_produce(ottla_bootstrap, topic)] == [None] * RECORDS
    assert fault.fired == 2
    assert _read(ottla_bootstrap, topic) == VALUES


def _produced(bootstrap: str, topic: str) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for value in VALUES:
        producer.send(topic, value, partition=0)
    producer.close()


def test_kafka_python_group_forms_while_its_coordinator_is_not_available(ottla_bootstrap: str, ottla_faults: Faults, topic: str) -> None:
    _produced(ottla_bootstrap, topic)
    client_id = f"faulty-{topic}"
    fault = ottla_faults.add(api="find_coordinator", client_id=client_id, error="COORDINATOR_NOT_AVAILABLE", count=3)
    consumer = KafkaConsumer(
        topic, bootstrap_servers=ottla_bootstrap, group_id=topic, client_id=client_id, auto_offset_reset="earliest",
        enable_auto_commit=False, consumer_timeout_ms=10000, retry_backoff_ms=10,
    )
    values = []
    for message in consumer:
        values.append(message.value)
        if len(values) == RECORDS:
            break
    consumer.commit()
    consumer.close()
    assert values == VALUES
    assert fault.fired == 3


def test_confluent_group_forms_while_its_coordinator_is_not_available(ottla_bootstrap: str, ottla_faults: Faults, topic: str) -> None:
    _produced(ottla_bootstrap, topic)
    client_id = f"faulty-{topic}"
    fault = ottla_faults.add(api="find_coordinator", client_id=client_id, error="COORDINATOR_NOT_AVAILABLE", count=3)
    consumer = Consumer({
        "bootstrap.servers": ottla_bootstrap, "group.id": topic, "client.id": client_id, "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "retry.backoff.ms": 10,
    })
    consumer.subscribe([topic])
    values: list[bytes] = []
    for _ in range(60):
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            values.append(message.value())
        if len(values) == RECORDS:
            break
    consumer.commit(asynchronous=False)
    consumer.close()
    assert values == VALUES
    assert fault.fired == 3


def test_kafka_python_surfaces_a_produce_error_that_is_not_retriable(ottla_bootstrap: str, ottla_faults: Faults, topic: str) -> None:
    fault = ottla_faults.add(api="produce", topic=topic, error="TOPIC_AUTHORIZATION_FAILED", count=1)
    producer = KafkaProducer(bootstrap_servers=ottla_bootstrap, retries=5)
    with pytest.raises(TopicAuthorizationFailedError):
        producer.send(topic, b"refused", partition=0).get(timeout=30)
    producer.close()
    assert fault.fired == 1
    assert _read(ottla_bootstrap, topic) == []


def test_confluent_surfaces_a_produce_error_that_is_not_retriable(ottla_bootstrap: str, ottla_faults: Faults, topic: str) -> None:
    fault = ottla_faults.add(api="produce", topic=topic, error="TOPIC_AUTHORIZATION_FAILED", count=1)
    errors: list[KafkaError | None] = []
    producer = Producer({"bootstrap.servers": ottla_bootstrap, "retries": 5})
    producer.produce(topic, b"refused", partition=0, on_delivery=lambda error, message: errors.append(error))
    assert producer.flush(30) == 0
    assert len(errors) == 1 and errors[0] is not None and errors[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert fault.fired == 1


def test_confluent_reports_the_throttle_time_a_fault_answers(ottla_bootstrap: str, ottla_faults: Faults, topic: str) -> None:
    fault = ottla_faults.add(api="produce", topic=topic, throttle_ms=250, count=1)
    throttles: list[float] = []
    producer = Producer({"bootstrap.servers": ottla_bootstrap, "throttle_cb": lambda event: throttles.append(event.throttle_time)})
    producer.produce(topic, b"v", partition=0)
    assert producer.flush(30) == 0
    producer.poll(0)
    assert fault.fired == 1
    # librdkafka also calls throttle_cb with 0 at the next unthrottled answer (rd_kafka_op_throttle_time),
    # which may be one that arrived with the Produce answer and is handled after it (GetTelemetrySubscriptions').
    assert [throttle for throttle in throttles if throttle] == [0.25]
    assert _read(ottla_bootstrap, topic) == [b"v"]
