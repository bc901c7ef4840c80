"""DescribeLogDirs takes its topic filter as a set of partitions, as Kafka 4.4's
KafkaApis/ReplicaManager.describeLogDirs do: a topic named twice is answered for every
partition its entries name, each partition once (the reference broker answers partitions
0 and 1 for [t: [1, 1]], [t: [0]]). Raw requests to a real broker."""

from __future__ import annotations

import pytest

from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey


@pytest.mark.parametrize("version", [1, 5])
def test_a_topic_named_twice_is_answered_for_all_its_partitions_once(version: int) -> None:
    with running_broker() as broker:
        broker.create_topic("twice", partitions=3)
        answer = _Connection(broker.bootstrap_servers).call(ApiKey.DESCRIBE_LOG_DIRS, version, {
            "topics": [{"topic": "twice", "partitions": [1, 1]}, {"topic": "twice", "partitions": [0, 7]}]})
    (result,) = answer["results"]
    assert [(t["name"], [p["partition_index"] for p in t["partitions"]]) for t in result["topics"]] == [("twice", [0, 1])]
