"""Produce with transactional records and an invalid acks: Kafka's ReplicaManager verifies the
records with the transaction coordinator (handleProduceAppend) before appendRecords judges acks,
so a batch the coordinator refuses is answered with the coordinator's error, and one it accepts
(v12+: adds) with INVALID_REQUIRED_ACKS. The answers pinned here are the reference Kafka 4.4's."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from kafka_wire import WireClient
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.records.record import Record, build_batch

INVALID_ACKS = 2


@pytest.fixture
def client() -> Iterator[WireClient]:
    with running_broker(data_dir=None) as broker:
        broker.create_topic("t", partitions=2)
        connection = WireClient(broker.bootstrap_servers, client_id="verifies-before-acks")
        try:
            yield connection
        finally:
            connection.close()


def _init(client: WireClient, transactional_id: str) -> tuple[int, int]:
    answer = client.call(ApiKey.INIT_PRODUCER_ID, 4, {
        "transactional_id": transactional_id, "transaction_timeout_ms": 60_000, "producer_id": -1, "producer_epoch": -1})
    assert answer["error_code"] == ErrorCode.NONE, answer
    return answer["producer_id"], answer["producer_epoch"]


def _produce(
    client: WireClient, version: int, transactional_id: str, producer_id: int, epoch: int, acks: int = INVALID_ACKS, index: int = 1
) -> tuple[int, Any]:
    batch = build_batch([Record(0, int(time.time() * 1000), b"k", b"v")], producer_id=producer_id, producer_epoch=epoch, base_sequence=0,
                        transactional=True)
    answer = client.call(ApiKey.PRODUCE, version, {"transactional_id": transactional_id, "acks": acks, "timeout_ms": 5000,
                                                    "topic_data": [{"name": "t", "partition_data": [{"index": index, "records": batch}]}]})
    (partition,) = answer["responses"][0]["partition_responses"]
    return partition["error_code"], partition.get("error_message")


def test_a_refused_verification_is_answered_before_an_invalid_acks(client: WireClient) -> None:
    producer_id, epoch = _init(client, "tx")
    assert _produce(client, 9, "tx", producer_id + 777, epoch) == (ErrorCode.INVALID_PRODUCER_ID_MAPPING, None)
    assert _produce(client, 9, "tx", producer_id, epoch + 3) == (ErrorCode.INVALID_PRODUCER_EPOCH, None)
    assert _produce(client, 9, "tx", producer_id, epoch) == (ErrorCode.INVALID_TXN_STATE, "Partition was not added to the transaction")
    assert _produce(client, 3, "tx", producer_id, epoch) == (ErrorCode.INVALID_TXN_STATE, None)
    assert _produce(client, 11, "tx", producer_id, epoch) == (ErrorCode.TRANSACTION_ABORTABLE, None)


def test_an_accepted_verification_leaves_acks_to_be_judged(client: WireClient) -> None:
    """v12 adds the partition to the transaction, then acks is refused: a v11 produce, which
    only verifies, then finds the partition in the transaction, and not the other one."""
    producer_id, epoch = _init(client, "tx")
    assert _produce(client, 12, "tx", producer_id, epoch) == (ErrorCode.INVALID_REQUIRED_ACKS, None)
    assert _produce(client, 11, "tx", producer_id, epoch, acks=-1) == (ErrorCode.NONE, None)
    assert _produce(client, 11, "tx", producer_id, epoch, acks=-1, index=0) == (ErrorCode.TRANSACTION_ABORTABLE, None)
