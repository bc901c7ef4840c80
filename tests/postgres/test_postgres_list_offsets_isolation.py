"""ListOffsets by time and by max timestamp on the PostgreSQL engine, read_committed while a
transaction is open: answers stop at the last stable offset as the local engine's do
(Partition.fetchOffsetForTimestamp, lastFetchableOffset)."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Producer
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from compat.differential import _Connection
from compat.harness import OttlaBroker
from ottla.wire.api import ApiKey

pytestmark = pytest.mark.external


def _list_offsets(conn: _Connection, topic: str, timestamp: int, isolation: int) -> tuple[int, int, int]:
    answer = conn.call(ApiKey.LIST_OFFSETS, 9, {"replica_id": -1, "isolation_level": isolation, "topics": [
        {"name": topic, "partitions": [{"partition_index": 0, "current_leader_epoch": -1, "timestamp": timestamp}]}]})
    found = answer["topics"][0]["partitions"][0]
    return found["error_code"], found["timestamp"], found["offset"]


def test_read_committed_lookups_by_time_stop_at_the_last_stable_offset(postgres_url: str) -> None:
    with OttlaBroker(storage=postgres_url, ready_timeout=60.0, stop_timeout=30) as broker:
        topic = f"pg-lorc-{uuid.uuid4().hex[:6]}"
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        try:
            admin.create_topics([NewTopic(topic, 1, 1)])
        finally:
            admin.close()
        now = int(time.time() * 1000)
        producer = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": f"tx-{uuid.uuid4().hex[:6]}"})
        producer.init_transactions(30)
        producer.begin_transaction()
        for i in range(3):
            producer.produce(topic, value=b"v%d" % i, partition=0, timestamp=now - 1000 + i)
        assert producer.flush(30) == 0
        conn = _Connection(broker.bootstrap)
        try:
            assert _list_offsets(conn, topic, now - 2000, 0) == (0, now - 1000, 0)
            assert _list_offsets(conn, topic, -3, 0) == (0, now - 998, 2)
            assert _list_offsets(conn, topic, -1, 1) == (0, -1, 0)
            assert _list_offsets(conn, topic, now - 2000, 1) == (0, -1, -1)
            assert _list_offsets(conn, topic, -3, 1) == (0, -1, -1)
        finally:
            conn.close()
            producer.abort_transaction(30)
