"""ListOffsets -3 (KIP-734) after DeleteRecords on a broker over PostgreSQL, answered as Kafka 4.4
and the local engine answer it (tests/server/test_list_offsets_max_timestamp_deleted.py): the
record carrying the largest timestamp counts though DeleteRecords removed it, so the answer may
lie below the log start offset; a retention that moves the log start forgets it, as Kafka's
retention check drops the segment."""

from __future__ import annotations

import random
import uuid

import pytest

from compat.differential import _Connection
from compat.harness import OttlaBroker
from ottla.storage import LogConfig, PartitionLog
from ottla.storage.postgresql import PostgresPartitionLog, create_topic
from ottla.storage.postgresql.log import RetentionTarget, enforce_retention
from ottla.wire.api import ApiKey
from ottla.wire.records import Record, build_batch

pytestmark = pytest.mark.external


def _batch(timestamps: list[int]) -> bytes:
    return build_batch([Record(i, ts, None, b"v") for i, ts in enumerate(timestamps)])


async def test_the_max_timestamp_is_the_local_engines_after_each_delete_records(pool) -> None:
    """The same batches in both engines, the local one holding them in one segment (as Kafka
    does under its default segment.bytes): after every DeleteRecords step, the same answer."""
    topic_id = await create_topic(pool, "times", 1)
    log = PostgresPartitionLog(pool, topic_id, 0)
    local = PartitionLog(None, LogConfig.from_overrides({}))
    rng = random.Random(4)
    for _ in range(40):
        batch = _batch([rng.randint(1_000, 2_000) for _ in range(rng.randint(1, 4))])
        assert (await log.append(batch)).base_offset == local.append(batch, from_client=True).base_offset
    assert await log.max_timestamp() == local.max_timestamp()
    for cut in (0, 7, 7, 33, 60, -1):
        assert await log.delete_records_before(cut) == local.delete_records(cut)
        assert await log.max_timestamp() == local.max_timestamp()


async def test_what_delete_records_removed_counts_until_retention_moves_the_log_start(pool) -> None:
    topic_id = await create_topic(pool, "removed-max", 1)
    log = PostgresPartitionLog(pool, topic_id, 0)
    for timestamps in ([1_000, 3_000], [3_000], [2_000], [2_500]):
        await log.append(_batch(timestamps))
    assert await log.delete_records_before(2) == 2
    assert await log.max_timestamp() == (3_000, 1)  # the first of equals, though removed
    assert await log.delete_records_before(3) == 3
    assert await log.max_timestamp() == (3_000, 1)
    assert await enforce_retention(pool, [RetentionTarget(topic_id, 0, 2_400, None)]) == {(topic_id, 0): 4}
    assert await log.max_timestamp() == (2_500, 4)


@pytest.mark.parametrize("stamps, delete_to, expected", [
    ([1000, 3000, 2000], 2, (3000, 1)),
    ([1000, 3000, 2000], 3, (3000, 1)),
    ([3000, 1000, 3000], 1, (3000, 0)),
])
def test_the_max_timestamp_may_lie_below_the_log_start(postgres_url: str, stamps: list[int], delete_to: int, expected: tuple[int, int]) -> None:
    with OttlaBroker(storage=postgres_url, ready_timeout=60, stop_timeout=30) as broker:
        conn = _Connection(broker.bootstrap)
        try:
            topic = f"maxts-{uuid.uuid4().hex[:8]}"
            created = conn.call(ApiKey.CREATE_TOPICS, 7, {"topics": [{"name": topic, "num_partitions": 1, "replication_factor": 1,
                                                                     "assignments": [], "configs": []}], "timeout_ms": 30000})
            assert created["topics"][0]["error_code"] == 0
            for stamp in stamps:
                answer = conn.call(ApiKey.PRODUCE, 9, {"acks": -1, "timeout_ms": 5000, "transactional_id": None, "topic_data": [
                    {"name": topic, "partition_data": [{"index": 0, "records": build_batch([Record(0, stamp, None, b"v")])}]}]})
                assert answer["responses"][0]["partition_responses"][0]["error_code"] == 0
            deleted = conn.call(ApiKey.DELETE_RECORDS, 2, {"topics": [{"name": topic, "partitions": [{"partition_index": 0, "offset": delete_to}]}],
                                                          "timeout_ms": 5000})
            assert deleted["topics"][0]["partitions"][0]["low_watermark"] == delete_to
            answer = conn.call(ApiKey.LIST_OFFSETS, 9, {"replica_id": -1, "isolation_level": 0, "topics": [
                {"name": topic, "partitions": [{"partition_index": 0, "current_leader_epoch": -1, "timestamp": -3}]}]})
            found = answer["topics"][0]["partitions"][0]
            assert (found["error_code"], found["timestamp"], found["offset"]) == (0, *expected)
        finally:
            conn.close()
