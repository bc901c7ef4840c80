"""Transactional produce rules Kafka's broker enforces, over raw requests to a real broker: a
producer with a transaction open may not write outside it, transactional records need a
transactional id, and a retried InitProducerId epoch bump (KIP-360) is answered, not fenced."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from ottla.server.admin.client import Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.records.record import Record, build_batch


@pytest.fixture
def connection() -> Iterator[Connection]:
    with running_broker(data_dir=None) as broker:
        broker.create_topic("t", partitions=2)
        host, port = broker.bootstrap_servers.split(",")[0].rsplit(":", 1)
        client = Connection(host, int(port), 30.0, "txn-rules")
        try:
            yield client
        finally:
            client.close()


def _batch(producer_id: int, epoch: int, sequence: int, transactional: bool) -> bytes:
    now = int(time.time() * 1000)
    return build_batch([Record(0, now, b"k", b"v%d" % sequence)], producer_id=producer_id, producer_epoch=epoch, base_sequence=sequence,
                       transactional=transactional)


def _produce(connection: Connection, transactional_id: str | None, partitions: dict[int, bytes]) -> list[int]:
    answer = connection.request(ApiKey.PRODUCE, 9, {
        "transactional_id": transactional_id, "acks": -1, "timeout_ms": 5000,
        "topic_data": [{"name": "t", "partition_data": [{"index": index, "records": records} for index, records in partitions.items()]}],
    })
    return [partition["error_code"] for partition in answer["responses"][0]["partition_responses"]]


def _init_producer_id(connection: Connection, transactional_id: str | None, producer_id: int = -1, epoch: int = -1) -> tuple[int, int, int]:
    answer: dict[str, Any] = connection.request(ApiKey.INIT_PRODUCER_ID, 4, {
        "transactional_id": transactional_id, "transaction_timeout_ms": 60_000, "producer_id": producer_id, "producer_epoch": epoch,
    })
    return answer["error_code"], answer["producer_id"], answer["producer_epoch"]


def _add_partition(connection: Connection, transactional_id: str, producer_id: int, epoch: int, index: int) -> None:
    answer = connection.request(ApiKey.ADD_PARTITIONS_TO_TXN, 3, {
        "v3_and_below_transactional_id": transactional_id, "v3_and_below_producer_id": producer_id, "v3_and_below_producer_epoch": epoch,
        "v3_and_below_topics": [{"name": "t", "partitions": [index]}],
    })
    assert [p["partition_error_code"] for t in answer["results_by_topic_v3_and_below"] for p in t["results_by_partition"]] == [0]


def test_a_producer_with_a_transaction_open_may_not_write_outside_it(connection: Connection) -> None:
    """ProducerAppendInfo: a non-transactional batch would land inside the open transaction's
    range and an abort would hide it: INVALID_TXN_STATE."""
    error, producer_id, epoch = _init_producer_id(connection, "open")
    assert error == ErrorCode.NONE
    _add_partition(connection, "open", producer_id, epoch, 1)
    assert _produce(connection, "open", {1: _batch(producer_id, epoch, 0, transactional=True)}) == [ErrorCode.NONE]
    assert _produce(connection, None, {1: _batch(producer_id, epoch, 1, transactional=False)}) == [ErrorCode.INVALID_TXN_STATE]


def test_transactional_records_need_a_transactional_id(connection: Connection) -> None:
    """KafkaApis.handleProduceRequest refuses the whole request: no coordinator would verify the
    records or ever end the transaction they would open (the partition's LSO stuck)."""
    error, producer_id, epoch = _init_producer_id(connection, "named")
    assert error == ErrorCode.NONE
    refused = _produce(connection, None, {0: _batch(producer_id, epoch, 0, transactional=True), 1: _batch(producer_id, epoch, 0, transactional=False)})
    assert refused == [ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED] * 2


def test_a_retried_epoch_bump_is_answered_and_an_older_epoch_fenced(connection: Connection) -> None:
    """KIP-360: InitProducerId naming its producer bumps the epoch; when the answer is lost the
    client asks the same again and gets the same answer (Kafka's lastProducerEpoch), where
    PRODUCER_FENCED would be fatal to it. An epoch before that is another producer's: fenced."""
    error, producer_id, epoch = _init_producer_id(connection, "bumped")
    assert error == ErrorCode.NONE
    assert _init_producer_id(connection, "bumped", producer_id, epoch) == (ErrorCode.NONE, producer_id, epoch + 1)
    assert _init_producer_id(connection, "bumped", producer_id, epoch) == (ErrorCode.NONE, producer_id, epoch + 1)
    assert _init_producer_id(connection, "bumped", producer_id, epoch + 1) == (ErrorCode.NONE, producer_id, epoch + 2)
    assert _init_producer_id(connection, "bumped", producer_id, epoch)[0] == ErrorCode.PRODUCER_FENCED
    assert _init_producer_id(connection, "bumped", producer_id + 1000, epoch + 2)[0] == ErrorCode.PRODUCER_FENCED


def test_a_trailing_partial_batch_flagged_transactional_is_no_transactional_batch(connection: Connection) -> None:
    """RequestUtils.hasTransactionalRecords reads whole batches only (MemoryRecords.batches()
    stops before a partial one), and the partial bytes are trimmed from what is appended: the
    reference Kafka 4.4 stored the idempotent batch before them at v3 and v9."""
    error, producer_id, epoch = _init_producer_id(connection, None)
    assert error == ErrorCode.NONE
    partial = _batch(producer_id, epoch, 1, transactional=True)[:30]
    assert _produce(connection, None, {0: _batch(producer_id, epoch, 0, transactional=False) + partial}) == [ErrorCode.NONE]
