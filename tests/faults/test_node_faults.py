"""Faults aimed at one node of a cluster (`running_broker(nodes=3)`): the node id is the one
each node's requests arrive at, so a fault on a partition's leader fires there and nowhere else."""

from __future__ import annotations

from typing import Iterator

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from ottla.testing import ThreadedBroker, running_broker

RECORDS = 6


@pytest.fixture(scope="module")
def cluster() -> Iterator[ThreadedBroker]:
    with running_broker(nodes=3, data_dir=None, group_initial_rebalance_delay_ms=0) as cluster:
        yield cluster


def _produce(bootstrap: str, topic: str) -> list[int]:
    producer = KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, retry_backoff_ms=10)
    futures = [producer.send(topic, b"v%d" % i, partition=0) for i in range(RECORDS)]
    offsets = [future.get(timeout=60).offset for future in futures]
    producer.close()
    return offsets


def _read(bootstrap: str, topic: str) -> list[bytes]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=10000)
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    values = []
    for message in consumer:
        values.append(message.value)
        if len(values) == RECORDS:
            break
    consumer.close()
    return values


def test_a_fault_on_the_leaders_node_fires_there_and_the_producer_recovers(cluster: ThreadedBroker) -> None:
    cluster.create_topic("led", 1, replication_factor=3)
    leader = cluster.leader_of("led", 0)
    elsewhere = [cluster.faults.add(api="produce", node=node, error="NOT_LEADER_OR_FOLLOWER") for node in (1, 2, 3) if node != leader]
    at_leader = cluster.faults.add(api="produce", topic="led", node=leader, error="NOT_LEADER_OR_FOLLOWER", count=3)
    try:
        assert _produce(cluster.bootstrap_servers, "led") == list(range(RECORDS))
    finally:
        cluster.faults.clear()
    assert at_leader.fired == 3
    assert [fault.fired for fault in elsewhere] == [0, 0]
    assert _read(cluster.bootstrap_servers, "led") == [b"v%d" % i for i in range(RECORDS)]
