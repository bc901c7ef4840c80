"""A transactional Produce whose batches are verified with the transaction coordinator (KIP-890:
a partition's first batch of a transaction) is answered in another order than one that is not:
ReplicaManager then answers from a scala mutable HashMap (the coordinator's errors `++` the
appends), and KafkaApis' merges keep it one, so every partition, refused or appended, comes by
its TopicIdPartition's bucket; without asking, the merged map is immutable (a CHAMP trie past
four entries). Checked on the reference Kafka 4.4 (ten partitions asked, then the same ten
with the transaction open; a verification refused for some, with acks=2 for the others);
the orders depend on the topic's random id, so they are computed from it here."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from kafka_wire import WireClient
from ottla.server.java_hashing import mutable_map_order, response_map_order, topic_id_partition_hash
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.records.record import Record, build_batch

TRANSACTION = "verified-order"


@pytest.fixture
def client() -> Iterator[WireClient]:
    with running_broker(data_dir=None) as broker:
        broker.create_topic("big", partitions=12)
        wire = WireClient(broker.bootstrap_servers, client_id="verified-order")
        yield wire
        wire.close()


def _topic_id(client: WireClient) -> bytes:
    answer = client.call(ApiKey.METADATA, 12, {"topics": [{"name": "big", "topic_id": bytes(16)}], "allow_auto_topic_creation": False,
                                               "include_topic_authorized_operations": False})
    return bytes(answer["topics"][0]["topic_id"])


def _begin(client: WireClient, partitions: list[int]) -> tuple[int, int]:
    started = client.call(ApiKey.INIT_PRODUCER_ID, 4, {"transactional_id": TRANSACTION, "transaction_timeout_ms": 60_000, "producer_id": -1, "producer_epoch": -1})
    assert started["error_code"] == ErrorCode.NONE
    producer_id, epoch = started["producer_id"], started["producer_epoch"]
    added = client.call(ApiKey.ADD_PARTITIONS_TO_TXN, 3, {"v3_and_below_transactional_id": TRANSACTION, "v3_and_below_producer_id": producer_id,
                                                         "v3_and_below_producer_epoch": epoch, "v3_and_below_topics": [{"name": "big", "partitions": partitions}]})
    assert all(p["partition_error_code"] == ErrorCode.NONE for t in added["results_by_topic_v3_and_below"] for p in t["results_by_partition"])
    return producer_id, epoch


def _produce(client: WireClient, producer: tuple[int, int], sequences: dict[int, int], acks: int = -1) -> list[tuple[int, int]]:
    """Each partition's (index, error), answered by a v11 Produce (transaction version 1: verify only)."""
    data = [{"index": index, "records": build_batch([Record(0, int(time.time() * 1000), b"k", b"v")], producer_id=producer[0], producer_epoch=producer[1],
                                                    base_sequence=sequence, transactional=True)} for index, sequence in sequences.items()]
    answer = client.call(ApiKey.PRODUCE, 11, {"transactional_id": TRANSACTION, "acks": acks, "timeout_ms": 5000, "topic_data": [{"name": "big", "partition_data": data}]})
    (topic,) = answer["responses"]
    return [(p["index"], p["error_code"]) for p in topic["partition_responses"]]


def test_verified_partitions_come_by_bucket_and_partitions_in_the_transaction_by_trie(client: WireClient) -> None:
    topic_id = _topic_id(client)

    def key_hash(index: int) -> int:
        return topic_id_partition_hash(topic_id, "big", index)

    producer = _begin(client, list(range(10)))
    verified = _produce(client, producer, dict.fromkeys(range(10), 0))
    assert verified == [(index, ErrorCode.NONE) for index in mutable_map_order(range(10), key_hash)]
    already_in = _produce(client, producer, dict.fromkeys(range(10), 1))
    assert already_in == [(index, ErrorCode.NONE) for index in response_map_order(range(10), key_hash)]


def test_refused_verifications_and_invalid_acks_come_by_bucket_together(client: WireClient) -> None:
    """Partitions 10 and 11 were not added to the transaction: the coordinator refuses them
    (TRANSACTION_ABORTABLE at v11); the others' batches are then judged for acks=2."""
    topic_id = _topic_id(client)
    producer = _begin(client, list(range(10)))
    answer = _produce(client, producer, dict.fromkeys([0, 1, 2, 3, 10, 11], 0), acks=2)
    in_order = mutable_map_order([0, 1, 2, 3, 10, 11], lambda index: topic_id_partition_hash(topic_id, "big", index))
    assert answer == [(index, ErrorCode.TRANSACTION_ABORTABLE if index >= 10 else ErrorCode.INVALID_REQUIRED_ACKS) for index in in_order]
