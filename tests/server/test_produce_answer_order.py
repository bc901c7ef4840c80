"""Produce answers its partitions in Kafka 4.4's order, not the request's (checked on the
reference Kafka 4.4): KafkaApis merges ReplicaManager's results with the partitions it refused
itself into a scala Map, which orders more than four by hash, and ProduceResponse lists each
topic where its first partition comes. The kafka-verifiable-producer's events follow that order."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kafka_wire import WireClient, build_records
from ottla.testing import running_broker
from ottla.wire.api import ApiKey

RECORDS = build_records(2, [(b"k", b"v")])


@pytest.fixture
def client() -> Iterator[WireClient]:
    with running_broker(data_dir=None) as broker:
        wire = WireClient(broker.bootstrap_servers)
        created = wire.call(ApiKey.CREATE_TOPICS, 5, {"topics": [{"name": "p", "num_partitions": 8, "replication_factor": 1, "assignments": [], "configs": []}],
                                                     "timeout_ms": 5000, "validate_only": False})
        assert created["topics"][0]["error_code"] == 0
        yield wire
        wire.close()


def _answered(client: WireClient, topics: list[tuple[str, list[int]]]) -> list[tuple[str, int, int]]:
    answer = client.call(ApiKey.PRODUCE, 9, {"transactional_id": None, "acks": -1, "timeout_ms": 5000, "topic_data": [
        {"name": name, "partition_data": [{"index": index, "records": RECORDS} for index in indexes]} for name, indexes in topics]})
    return [(topic["name"], partition["index"], partition["error_code"]) for topic in answer["responses"] for partition in topic["partition_responses"]]


def test_more_than_four_partitions_come_in_one_order_whatever_the_requests(client: WireClient) -> None:
    forward = _answered(client, [("p", list(range(8)))])
    backward = _answered(client, [("p", list(reversed(range(8))))])
    assert [index for _, index, _ in forward] == [index for _, index, _ in backward]
    assert sorted(index for _, index, _ in forward) == list(range(8))


def test_partitions_appended_to_come_before_those_refused_as_unknown(client: WireClient) -> None:
    # ReplicaManager's map, then nonExistingTopicResponses: an unknown topic named first is listed last.
    assert _answered(client, [("nosuch", [0]), ("p", [1])]) == [("p", 1, 0), ("nosuch", 0, 3)]
    # An unknown partition is refused by KafkaApis too, and listed under its topic after the appended one.
    assert _answered(client, [("p", [99, 0])]) == [("p", 0, 0), ("p", 99, 3)]
