"""storage/postgresql/log.py on a real server: offsets from concurrent writers on separate
connections, reads of whole batches, ListOffsets by timestamp and DeleteRecords, the last two
checked against the local engine given the same batches."""

from __future__ import annotations

import asyncio
import random

import pytest

from ottla.storage import LogConfig, PartitionLog
from ottla.storage.postgresql import PostgresPartitionLog, create_topic, open_pool
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.records import Compression, Record, build_batch, iter_records, scan_batches


def _batch(values: list[bytes], timestamps: list[int], compression: Compression = Compression.NONE) -> bytes:
    return build_batch([Record(i, ts, None, v) for i, (v, ts) in enumerate(zip(values, timestamps))], compression=compression)


async def test_two_writers_on_two_connections_never_hand_out_the_same_offset(pool, postgres_url):
    """Two brokers' worth of writers, each with its own pool, interleaved appends to one
    partition: the ranges they get tile [0, n) and the log reads back in exactly that order."""
    other_broker = await open_pool(postgres_url, size=2)
    try:
        topic_id = await create_topic(pool, "contended", 1)
        logs = [PostgresPartitionLog(pool, topic_id, 0), PostgresPartitionLog(other_broker, topic_id, 0)]
        rng = random.Random(24)
        sizes = [rng.randint(1, 5) for _ in range(120)]
        payloads = [[f"{i}-{j}".encode() for j in range(size)] for i, size in enumerate(sizes)]
        ranges = await asyncio.gather(
            *(logs[i % 2].append(_batch(values, [1000] * len(values))) for i, values in enumerate(payloads))
        )
        total = sum(sizes)
        spans = sorted((r.base_offset, r.last_offset) for r in ranges)
        assert [first for first, _ in spans] == [0] + [last + 1 for _, last in spans[:-1]]
        assert spans[-1][1] == total - 1
        assert await logs[1].high_watermark() == total

        by_offset = {r.base_offset: values for r, values in zip(ranges, payloads)}
        read = await logs[0].read(0, 10**9)
        stored = [(header, [bytes(record.value) for record in iter_records(batch)]) for header, batch in scan_batches(b"".join(read.batches))]
        assert [header.base_offset for header, _ in stored] == sorted(by_offset)
        assert all(values == by_offset[header.base_offset] for header, values in stored)
        assert stored[-1][0].next_offset == total
    finally:
        await other_broker.close()


async def test_a_read_returns_exactly_the_batches_appended_whole_and_in_order(pool):
    topic_id = await create_topic(pool, "reads", 2)
    log = PostgresPartitionLog(pool, topic_id, 1)
    originals = [
        _batch([b"a", b"b", b"c"], [10, 11, 12]),
        _batch([b"d" * 3000], [13], Compression.ZSTD),
        _batch([b"e", b"f"], [14, 15], Compression.GZIP),
    ]
    # Two batches in one append (one produce request), then one more.
    first = await log.append(originals[0] + originals[1])
    second = await log.append(originals[2])
    assert (first.base_offset, first.last_offset, second.base_offset, second.last_offset) == (0, 3, 4, 5)

    def assigned(batch: bytes, base_offset: int) -> bytes:
        # Base offset and leader epoch (0) are the only bytes the log changes, both outside the CRC.
        return base_offset.to_bytes(8, "big") + batch[8:12] + (0).to_bytes(4, "big") + batch[16:]

    expected = [assigned(originals[0], 0), assigned(originals[1], 3), assigned(originals[2], 4)]
    everything = await log.read(0, 10**6)
    assert everything.batches == expected
    assert (everything.high_watermark, everything.log_start_offset) == (6, 0)
    # max_bytes counts from the start of the batch holding the offset, and always returns that one.
    assert (await log.read(1, len(expected[0]) + len(expected[1]))).batches == expected[:2]
    assert (await log.read(3, len(expected[1]) + len(expected[2]) - 1)).batches == expected[1:2]
    assert (await log.read(5, 1)).batches == expected[2:]
    assert (await log.read(6, 1000)).batches == []
    with pytest.raises(KafkaError) as past_the_end:
        await log.read(7, 1000)
    assert past_the_end.value.code is ErrorCode.OFFSET_OUT_OF_RANGE
    # The other partition of the topic is its own log.
    assert (await PostgresPartitionLog(pool, topic_id, 0).read(0, 1000)).batches == []
    with pytest.raises(KafkaError) as corrupt:
        damaged = bytearray(originals[0])
        damaged[-1] ^= 1
        await log.append(damaged)
    assert corrupt.value.code is ErrorCode.CORRUPT_MESSAGE
    assert await log.high_watermark() == 6


async def test_list_offsets_and_delete_records_answer_as_the_local_engine_does(pool):
    """The same batches, timestamps out of order and some compressed, in both engines; every
    ListOffsets target and every DeleteRecords step must give the same answer."""
    topic_id = await create_topic(pool, "times", 1)
    log = PostgresPartitionLog(pool, topic_id, 0)
    local = PartitionLog(None, LogConfig.from_overrides({}))
    rng = random.Random(4)
    for i in range(40):
        count = rng.randint(1, 4)
        timestamps = [rng.randint(1_000, 2_000) for _ in range(count)]
        batch = _batch([b"%d" % i] * count, timestamps, rng.choice([Compression.NONE, Compression.LZ4]))
        assert (await log.append(batch)).base_offset == local.append(batch, from_client=True).base_offset
    targets = [-2, -1, 0, 999, 1_000, 1_001, 1_500, 1_999, 2_000, 2_001, *(rng.randint(1_000, 2_000) for _ in range(20))]

    async def compare() -> None:
        for target in targets:
            assert await log.offset_for_timestamp(target) == local.offset_for_timestamp(target), target

    await compare()
    # Before any DeleteRecords; after it, test_postgres_max_timestamp_deleted.py compares the two.
    assert await log.max_timestamp() == local.max_timestamp()
    for cut in (0, 7, 7, 33, 60, -1):
        assert await log.delete_records_before(cut) == local.delete_records(cut)
        assert await log.log_start_offset() == local.log_start_offset
        await compare()
        if local.log_start_offset > 0:
            with pytest.raises(KafkaError) as below_start:
                await log.read(local.log_start_offset - 1, 1000)
            assert below_start.value.code is ErrorCode.OFFSET_OUT_OF_RANGE
    with pytest.raises(KafkaError) as past_the_end:
        await log.delete_records_before(local.high_watermark + 1)
    assert past_the_end.value.code is ErrorCode.OFFSET_OUT_OF_RANGE
    async with pool.acquire() as connection:
        assert await connection.fetchval("SELECT count(*) FROM batches") == 0



async def test_an_append_larger_than_segment_bytes_is_refused_as_on_the_local_engine(pool):
    """Kafka's append refuses a request's batches larger together than segment.bytes (each
    batch within max.message.bytes) as RECORD_LIST_TOO_LARGE; nothing is stored."""
    topic_id = await create_topic(pool, "segmented", 1)
    log = PostgresPartitionLog(pool, topic_id, 0)
    config = LogConfig.from_overrides({"segment.bytes": str(1 << 20), "max.message.bytes": str(4 << 20)})
    local = PartitionLog(None, config)
    batch = _batch([random.Random(5).randbytes(1_500_000)], [1_000])
    with pytest.raises(KafkaError) as on_local:
        local.append(batch, from_client=True)
    with pytest.raises(KafkaError) as on_database:
        await log.append(batch, config)
    assert on_database.value.code is on_local.value.code is ErrorCode.RECORD_LIST_TOO_LARGE
    assert (await log.read(0, 1 << 20)).batches == []
