"""A producer already past producer.id.expiration.ms when a broker opens the database is
forgotten then, as the file engine forgets it when its log's snapshot loads (Kafka 4.4's
ProducerStateManager.loadFromSnapshot: tests/storage/test_producer_expired_at_load.py), not at
the first periodic expiry up to producer.id.expiration.check.interval.ms later: after a restart
its retry is appended at a new offset where it was a duplicate before."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kafka_wire import WireClient

from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.records import Record, build_batch

pytestmark = pytest.mark.external

EXPIRATION_MS = 60000


def _now_ms() -> int:
    return int(time.time() * 1000)


def _create_topic(client: WireClient) -> None:
    answer = client.call(ApiKey.CREATE_TOPICS, 5, {"topics": [{"name": "t", "num_partitions": 1, "replication_factor": 1,
                                                              "assignments": [], "configs": []}], "timeout_ms": 10000, "validate_only": False})
    assert answer["topics"][0]["error_code"] == ErrorCode.NONE, answer


def _idempotent_producer(client: WireClient) -> int:
    answer = client.call(ApiKey.INIT_PRODUCER_ID, 4, {"transactional_id": None, "transaction_timeout_ms": 60000,
                                                      "producer_id": -1, "producer_epoch": -1})
    assert answer["error_code"] == ErrorCode.NONE, answer
    producer_id: int = answer["producer_id"]
    return producer_id


def _producers(client: WireClient) -> dict[int, dict[str, Any]]:
    answer = client.call(ApiKey.DESCRIBE_PRODUCERS, 0, {"topics": [{"name": "t", "partition_indexes": [0]}]})
    return {p["producer_id"]: p for p in answer["topics"][0]["partitions"][0]["active_producers"]}


def _produce(client: WireClient, producer_id: int, sequence: int, timestamp: int) -> tuple[int, int]:
    batch = build_batch([Record(0, timestamp, b"k", b"v")], producer_id=producer_id, producer_epoch=0, base_sequence=sequence)
    answer = client.call(ApiKey.PRODUCE, 9, {"acks": -1, "timeout_ms": 5000, "transactional_id": None, "topic_data": [
        {"name": "t", "partition_data": [{"index": 0, "records": batch}]}]})
    partition = answer["responses"][0]["partition_responses"][0]
    return partition["error_code"], partition["base_offset"]


def test_a_producer_expired_when_the_broker_opens_the_database_is_forgotten_and_its_retry_appended(postgres_url: str) -> None:
    stale_time = _now_ms() - 10 * EXPIRATION_MS
    with running_broker(storage_url=postgres_url, producer_id_expiration_ms=EXPIRATION_MS) as broker:
        client = WireClient(broker.bootstrap_servers)
        _create_topic(client)
        stale, recent = _idempotent_producer(client), _idempotent_producer(client)
        assert _produce(client, stale, 0, stale_time) == (ErrorCode.NONE, 0)
        assert _produce(client, recent, 0, _now_ms()) == (ErrorCode.NONE, 1)
        assert set(_producers(client)) == {stale, recent}  # no periodic expiry ran yet
        assert _produce(client, stale, 0, stale_time) == (ErrorCode.NONE, 0)  # a duplicate while the broker runs
        client.close()
        broker.restart()
        client = WireClient(broker.bootstrap_servers)
        assert set(_producers(client)) == {recent}
        assert _produce(client, stale, 0, stale_time) == (ErrorCode.NONE, 2)  # not a duplicate any more
        assert _produce(client, recent, 0, _now_ms()) == (ErrorCode.NONE, 1)  # still one
        client.close()
    with running_broker(storage_url=postgres_url, node_id=2, producer_id_expiration_ms=EXPIRATION_MS) as other:
        client = WireClient(other.bootstrap_servers)
        assert set(_producers(client)) == {recent}  # the retry's timestamp was as old: expired again
        client.close()
