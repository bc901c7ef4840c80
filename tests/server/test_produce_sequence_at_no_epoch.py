"""A batch naming a producer id at no epoch (-1): Kafka checks a sequence only at a known
epoch (ProducerAppendInfo.checkSequence: a producer whose epoch here is -1 goes on at any
sequence), still answering a retried batch with its first offsets; at a real epoch a gap is
OUT_OF_ORDER_SEQUENCE_NUMBER. Answers confirmed on Kafka 4.4."""

from __future__ import annotations

import time

from raw_broker import connection  # noqa: F401  (the shared fixture)

from compat.differential import _Connection
from compat.harness import wait_for
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.records import Record, build_batch


def _produce(conn: _Connection, producer_id: int, epoch: int, sequence: int) -> tuple[int, int]:
    batch = build_batch([Record(0, int(time.time() * 1000), b"k", b"v")], producer_id=producer_id, producer_epoch=epoch,
                        base_sequence=sequence)
    answer = conn.call(ApiKey.PRODUCE, 9, {"acks": -1, "timeout_ms": 5000, "transactional_id": None, "topic_data": [
        {"name": "seq", "partition_data": [{"index": 0, "records": batch}]}]})
    partition = answer["responses"][0]["partition_responses"][0]
    return partition["error_code"], partition["base_offset"]


def test_a_producer_at_no_epoch_goes_on_at_any_sequence(connection: _Connection) -> None:  # noqa: F811
    created = connection.call(ApiKey.CREATE_TOPICS, 5, {"timeout_ms": 5000, "validate_only": False, "topics": [
        {"name": "seq", "num_partitions": 1, "replication_factor": 1, "assignments": [], "configs": []}]})
    assert created["topics"][0]["error_code"] == ErrorCode.NONE
    assert wait_for(lambda: _produce(connection, 1, 0, 0)[0] == ErrorCode.NONE, timeout=10)
    answers = [_produce(connection, producer_id, epoch, sequence)
               for producer_id, epoch, sequence in ((4242, -1, 1), (4242, -1, 7), (4242, -1, 7), (4343, 0, 3), (4343, 0, 9))]
    assert answers == [(ErrorCode.NONE, 1), (ErrorCode.NONE, 2), (ErrorCode.NONE, 2), (ErrorCode.NONE, 3),
                       (ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, -1)]
