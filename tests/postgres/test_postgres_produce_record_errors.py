"""Record errors (KIP-467) of a topic kept in PostgreSQL, whose appends the Produce handler
awaits: answered as the local engine answers them and as Kafka 4.4 does, with the records at
fault by index and Kafka's summary as the partition's error_message."""

from __future__ import annotations

import time

import pytest

from compat.differential import _Connection
from compat.harness import OttlaBroker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.records import Record, build_batch

pytestmark = pytest.mark.external


def test_a_database_topic_names_the_records_at_fault(postgres_url: str) -> None:
    with OttlaBroker(storage=postgres_url, ready_timeout=60.0, stop_timeout=30) as broker:
        conn = _Connection(broker.bootstrap)
        try:
            created = conn.call(ApiKey.CREATE_TOPICS, 5, {
                "topics": [{"name": "keyed", "num_partitions": 1, "replication_factor": 1, "assignments": [],
                            "configs": [{"name": "cleanup.policy", "value": "compact"}]}],
                "timeout_ms": 10000, "validate_only": False,
            })
            assert created["topics"][0]["error_code"] == ErrorCode.NONE
            now = int(time.time() * 1000)
            answer = conn.call(ApiKey.PRODUCE, 9, {
                "transactional_id": None, "acks": -1, "timeout_ms": 5000,
                "topic_data": [{"name": "keyed", "partition_data": [{"index": 0, "records": build_batch([Record(0, now, b"k", b"v"), Record(1, now, None, b"v")])}]}],
            })
        finally:
            conn.close()
    partition = answer["responses"][0]["partition_responses"][0]
    why = "Compacted topic cannot accept message without key in topic partition keyed-0"
    assert partition["error_code"] == ErrorCode.INVALID_RECORD
    assert partition["record_errors"] == [{"batch_index": 1, "batch_index_error_message": why}]
    assert partition["error_message"] == (
        "One or more records have been rejected due to 1 record errors in total, and only showing the first three errors at most: "
        f"[RecordError(batchIndex=1, message='{why}')]"
    )
