"""The Java client (kafka-clients 4.4, through compat/java's driver) against faults on demand:
an idempotent producer rides out NOT_LEADER_OR_FOLLOWER and a connection dropped after the
write, and the records arrive once, in order."""

from __future__ import annotations

import pytest
from kafka import KafkaConsumer, TopicPartition

from compat.kafka import run_driver
from ottla.testing import running_broker

RECORDS = 10
# One record a request, one request in flight: each fault costs the client one retry.
ONE_AT_A_TIME = {"enable.idempotence": "true", "acks": "all", "max.in.flight.requests.per.connection": "1", "linger.ms": "0",
                 "batch.size": "1", "retry.backoff.ms": "10"}


def _read(bootstrap: str, topic: str) -> list[tuple[int, str]]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=10000)
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    records = []
    for message in consumer:
        records.append((message.offset, message.key.decode()))
        if len(records) == RECORDS:
            break
    consumer.close()
    return records


@pytest.mark.parametrize("fault", [{"error": "NOT_LEADER_OR_FOLLOWER", "count": 3}, {"drop": "after", "count": 2}], ids=["not-leader", "drop-after"])
def test_the_java_producer_writes_each_record_once_through_faults(fault: dict[str, object]) -> None:
    with running_broker(data_dir=None) as broker:
        broker.create_topic("java-faults", 1)
        fired = broker.faults.add(api="produce", topic="java-faults", **fault)
        result = run_driver(broker.bootstrap_servers, "java-faults", "produce", count=RECORDS, timeout_ms=60000, config=ONE_AT_A_TIME)
        assert result["ok"], result
        assert [(r["offset"], r["key"]) for r in result["records"]] == [(i, f"k{i}") for i in range(RECORDS)]
        assert fired.fired == fault["count"]
        assert _read(broker.bootstrap_servers, "java-faults") == [(i, f"k{i}") for i in range(RECORDS)]
