"""A transaction open while a partition's leadership moves between brokers over one
PostgreSQL: the new leader reads the partition's producer state again before it answers a
read_committed read (as Kafka's new leader loads it before it serves), so the open
transaction holds the last stable offset back there and its records, once aborted, never
reach a read_committed consumer."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka import TopicPartition as ConfluentPartition
from confluent_kafka.admin import AdminClient, NewTopic

from compat.harness import OttlaBroker, PostgresBrokers, metadata_broker_count, wait_for
from ottla.server.admin.client import KafkaClient
from ottla.wire.api import ApiKey

pytestmark = [pytest.mark.external, pytest.mark.slow]

_PARTITIONS = 6
_DEADLINE = 60.0


def _leaders(client: KafkaClient) -> dict[int, int]:
    metadata = client.call(ApiKey.METADATA, {"topics": [{"name": "moving"}], "allow_auto_topic_creation": False,
                                             "include_topic_authorized_operations": False}, highest=9)[1]
    return {p["partition_index"]: p["leader_id"] for p in metadata["topics"][0]["partitions"]}


def _stable_offsets(client: KafkaClient, leaders: dict[int, int]) -> dict[int, int]:
    """Each partition's read_committed latest offset (its LSO) as its leader answers it."""
    found = {}
    for index, leader in leaders.items():
        answer = client.call(ApiKey.LIST_OFFSETS, {"replica_id": -1, "isolation_level": 1, "topics": [{"name": "moving", "partitions": [
            {"partition_index": index, "current_leader_epoch": -1, "timestamp": -1}]}]}, node=leader, highest=7)[1]
        partition = answer["topics"][0]["partitions"][0]
        assert partition["error_code"] == 0, partition
        found[index] = partition["offset"]
    return found


def test_an_open_transaction_holds_the_lso_back_on_a_new_leader_and_its_abort_hides_it(postgres_url: str, tmp_path: Path) -> None:
    with PostgresBrokers(tmp_path, postgres_url, nodes=2, settings={"group.initial.rebalance.delay.ms": "0"}) as brokers:
        admin = AdminClient({"bootstrap.servers": brokers.bootstrap})
        for future in admin.create_topics([NewTopic("moving", _PARTITIONS, 1)]).values():
            future.result(timeout=30)
        producer = Producer({"bootstrap.servers": brokers.bootstrap, "transactional.id": f"mover-{uuid.uuid4().hex[:6]}",
                             "transaction.timeout.ms": 120_000})
        producer.init_transactions(30)
        producer.begin_transaction()
        for i in range(_PARTITIONS * 10):
            producer.produce("moving", value=b"open", partition=i % _PARTITIONS)
        assert producer.flush(30) == 0
        with KafkaClient(brokers.bootstrap) as client:
            before = _leaders(client)
        joining = OttlaBroker(tmp_path / "node-3", storage=postgres_url, node_id=3, settings={"group.initial.rebalance.delay.ms": "0"})
        joining.start()
        try:
            everyone = [*brokers.brokers, joining]
            assert wait_for(lambda: all(metadata_broker_count(b.host, b.port) == 3 for b in everyone), _DEADLINE)
            bootstrap = ",".join(b.bootstrap for b in everyone)
            with KafkaClient(bootstrap) as client:
                after = _leaders(client)
                moved = [index for index in after if after[index] != before[index]]
                assert moved, (before, after)
                # The open transaction's first offset is 0 in every partition: nothing is stable yet.
                assert _stable_offsets(client, after) == dict.fromkeys(after, 0)
            producer.abort_transaction(60)
            consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4().hex[:6]}", "enable.auto.commit": False,
                                 "isolation.level": "read_committed"})
            try:
                consumer.assign([ConfluentPartition("moving", index, 0) for index in range(_PARTITIONS)])
                seen = []
                deadline = time.monotonic() + _DEADLINE
                # Past each partition's abort marker (offset 10): every record before it was aborted.
                while min(p.offset for p in consumer.position([ConfluentPartition("moving", i) for i in range(_PARTITIONS)])) < 11:
                    assert time.monotonic() < deadline, "the read_committed consumer did not pass the abort markers"
                    message = consumer.poll(0.5)
                    if message is not None and message.error() is None:
                        seen.append(message.value())
                assert seen == []
            finally:
                consumer.close()
        finally:
            joining.close()
