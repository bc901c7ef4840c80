"""PartitionLog and Storage behaviour, on disk and in memory alike."""

from __future__ import annotations

import pathlib

import pytest
from conftest import batch, read_base_offsets, read_bytes

from ottla.storage import FileRegion, Storage
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.records import Record, build_batch, iter_records, scan_batches


def test_append_assigns_consecutive_offsets(storage: Storage) -> None:
    storage.create_topic("t", 1)
    log = storage.partition("t", 0)
    results = [log.append(batch(count)) for count in (1, 3, 2)]
    assert [(r.base_offset, r.last_offset) for r in results] == [(0, 0), (1, 3), (4, 5)]
    assert all(r.log_append_time_ms == -1 and r.log_start_offset == 0 for r in results)
    assert (log.log_start_offset, log.high_watermark, log.log_end_offset) == (0, 6, 6)
    records = [r for _, b in scan_batches(read_bytes(log.read(0, 1 << 20))) for r in iter_records(b)]
    assert [r.offset for r in records] == list(range(6))


def test_append_of_several_batches_in_one_request(storage: Storage) -> None:
    storage.create_topic("t", 1)
    log = storage.partition("t", 0)
    result = log.append(batch(2) + batch(3))
    assert (result.base_offset, result.last_offset) == (0, 4)
    assert read_base_offsets(log.read(0, 1 << 20)) == [0, 2]


def test_append_assigns_offsets_in_a_writable_buffer_it_takes_over(storage: Storage) -> None:
    """A produce request's frame is the one copy of its batches: the log writes the offsets
    into it and stores those very bytes."""
    storage.create_topic("t", 1)
    log = storage.partition("t", 0)
    log.append(batch())
    data = memoryview(bytearray(batch(2)))
    log.append(data)
    assert read_base_offsets(log.read(1, 1 << 20)) == [1]
    assert int.from_bytes(data[:8], "big") == 1
    assert read_bytes(log.read(1, 1 << 20)) == bytes(data)


def test_append_keeps_no_view_of_a_request_carrying_other_partitions(storage: Storage) -> None:
    """One partition's records in a frame with others' are copied when a memory segment
    keeps them; a file keeps nothing: either way the frame is free once appended."""
    storage.create_topic("t", 1)
    frame = bytearray(batch(2)) + bytearray(1 << 16)
    storage.partition("t", 0).append(memoryview(frame)[: len(batch(2))])
    frame.extend(b"x")  # BufferError while a view of it lives on
    assert read_base_offsets(storage.partition("t", 0).read(0, 1 << 20)) == [0]


def test_append_copies_a_read_only_buffer(storage: Storage) -> None:
    storage.create_topic("t", 1)
    log = storage.partition("t", 0)
    log.append(batch())
    original = batch(2)
    log.append(memoryview(original))
    assert read_base_offsets(log.read(1, 1 << 20)) == [1]
    assert original == batch(2)


def test_read_from_the_middle_of_a_batch_starts_at_that_batch(storage: Storage) -> None:
    storage.create_topic("t", 1)
    log = storage.partition("t", 0)
    for _ in range(4):
        log.append(batch(5))
    assert read_base_offsets(log.read(7, 1 << 20)) == [5, 10, 15]
    assert read_base_offsets(log.read(19, 1 << 20)) == [15]


def test_read_honours_max_bytes_with_whole_batches(storage: Storage) -> None:
    storage.create_topic("t", 1)
    log = storage.partition("t", 0)
    size = len(batch(1, value_size=100))
    for _ in range(10):
        log.append(batch(1, value_size=100))
    assert read_base_offsets(log.read(0, size * 3)) == [0, 1, 2]
    assert read_base_offsets(log.read(0, size * 3 + size - 1)) == [0, 1, 2]
    assert read_base_offsets(log.read(8, size * 5)) == [8, 9]


def test_min_one_returns_an_oversized_first_batch(storage: Storage) -> None:
    storage.create_topic("t", 1)
    log = storage.partition("t", 0)
    log.append(batch(1, value_size=1000))
    log.append(batch(1))
    assert read_base_offsets(log.read(0, 10, min_one=True)) == [0]
    empty = log.read(0, 10, min_one=False)
    assert (empty.chunks, empty.size) == ([], 0)


def test_read_at_high_watermark_is_empty_and_beyond_is_out_of_range(storage: Storage) -> None:
    storage.create_topic("t", 1)
    log = storage.partition("t", 0)
    empty = log.read(0, 100)
    assert (empty.size, empty.high_watermark, empty.log_start_offset) == (0, 0, 0)
    log.append(batch(2))
    at_end = log.read(2, 100)
    assert (at_end.chunks, at_end.size, at_end.high_watermark) == ([], 0, 2)
    for offset in (3, -1):
        with pytest.raises(KafkaError) as raised:
            log.read(offset, 100)
        assert raised.value.code is ErrorCode.OFFSET_OUT_OF_RANGE


def test_corrupt_append_leaves_the_log_untouched(storage: Storage) -> None:
    storage.create_topic("t", 1)
    log = storage.partition("t", 0)
    log.append(batch())
    damaged = bytearray(batch(2))
    damaged[-1] ^= 1
    with pytest.raises(KafkaError) as raised:
        log.append(batch() + bytes(damaged))  # a good batch before the bad one is not kept either
    assert raised.value.code is ErrorCode.CORRUPT_MESSAGE
    assert log.log_end_offset == 1
    assert read_base_offsets(log.read(0, 1 << 20)) == [0]


def test_batch_above_max_message_bytes(storage: Storage) -> None:
    storage.create_topic("t", 1, {"max.message.bytes": "200"})
    log = storage.partition("t", 0)
    with pytest.raises(KafkaError) as raised:
        log.append(batch(1, value_size=200))
    assert raised.value.code is ErrorCode.MESSAGE_SIZE_TOO_LARGE
    assert log.append(batch(1, value_size=100)).base_offset == 0


def test_legacy_message_set_is_stored_as_v2(storage: Storage) -> None:
    from kafka.record import MemoryRecordsBuilder

    storage.create_topic("t", 1)
    log = storage.partition("t", 0)
    log.append(batch(2))
    builder = MemoryRecordsBuilder(magic=1, compression_type=0, batch_size=1 << 16)
    for index in range(3):
        builder.append(timestamp=50 + index, key=None, value=b"legacy %d" % index, headers=[])
    builder.close()
    result = log.append(bytes(builder.buffer()))
    assert (result.base_offset, result.last_offset) == (2, 4)
    [(header, stored)] = list(scan_batches(read_bytes(log.read(2, 1 << 20))))
    assert header.magic == 2
    assert [(r.offset, r.timestamp, r.value) for r in iter_records(stored)] == [
        (2 + i, 50 + i, b"legacy %d" % i) for i in range(3)
    ]


def test_log_append_time_topic(storage: Storage) -> None:
    storage.create_topic("t", 1, {"message.timestamp.type": "LogAppendTime"})
    log = storage.partition("t", 0)
    result = log.append(batch(2, timestamp=5), log_append_time_ms=123_456)
    assert result.log_append_time_ms == 123_456
    [(header, stored)] = list(scan_batches(read_bytes(log.read(0, 1 << 20)), verify_crc=True))
    assert header.max_timestamp == 123_456
    assert [r.timestamp for r in iter_records(stored)] == [123_456, 123_456]


def test_stored_batches_carry_the_leader_epoch(storage: Storage) -> None:
    storage.create_topic("t", 1)
    log = storage.partition("t", 0)
    producer_batch = bytearray(batch())
    producer_batch[12:16] = b"\xff\xff\xff\xff"  # producers send -1
    log.append(bytes(producer_batch))
    [(header, _)] = list(scan_batches(read_bytes(log.read(0, 100))))
    assert header.partition_leader_epoch == 0


# --- topics -------------------------------------------------------------------------------


def test_topic_lifecycle(storage: Storage) -> None:
    info = storage.create_topic("orders", 3, {"retention.ms": "1000"})
    assert (info.name, info.partitions, info.configs) == ("orders", 3, {"retention.ms": "1000"})
    assert len(info.topic_id) == 16 and any(info.topic_id)
    assert storage.topic("orders") == info and storage.topic_by_id(info.topic_id) == info
    assert storage.topics() == [info]
    assert [storage.partition("orders", i).log_end_offset for i in range(3)] == [0, 0, 0]
    storage.delete_topic("orders")
    assert storage.topic("orders") is None and storage.topic_by_id(info.topic_id) is None
    with pytest.raises(KafkaError) as raised:
        storage.partition("orders", 0)
    assert raised.value.code is ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


@pytest.mark.parametrize(
    ("name", "partitions", "configs", "code"),
    [
        ("", 1, None, ErrorCode.INVALID_TOPIC),
        (".", 1, None, ErrorCode.INVALID_TOPIC),
        ("bad/name", 1, None, ErrorCode.INVALID_TOPIC),
        ("x" * 250, 1, None, ErrorCode.INVALID_TOPIC),
        ("ok", 0, None, ErrorCode.INVALID_PARTITIONS),
        ("ok", -1, None, ErrorCode.INVALID_PARTITIONS),
        ("ok", 1, {"segment.bytes": "lots"}, ErrorCode.INVALID_CONFIG),
        ("ok", 1, {"cleanup.policy": "shred"}, ErrorCode.INVALID_CONFIG),
    ],
)
def test_create_topic_rejects(storage: Storage, name: str, partitions: int, configs: dict[str, str] | None, code: ErrorCode) -> None:
    with pytest.raises(KafkaError) as raised:
        storage.create_topic(name, partitions, configs)
    assert raised.value.code is code
    assert storage.topics() == []


def test_duplicate_topic_and_unknown_deletes(storage: Storage) -> None:
    storage.create_topic("t", 1)
    with pytest.raises(KafkaError) as raised:
        storage.create_topic("t", 2)
    assert raised.value.code is ErrorCode.TOPIC_ALREADY_EXISTS
    with pytest.raises(KafkaError) as raised:
        storage.delete_topic("nope")
    assert raised.value.code is ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    with pytest.raises(KafkaError) as raised:
        storage.partition("t", 1)
    assert raised.value.code is ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


# --- disk specifics ---------------------------------------------------------------------


def test_restart_restores_topics_offsets_and_data(tmp_path: pathlib.Path) -> None:
    storage = Storage.open(tmp_path)
    info = storage.create_topic("t", 2, {"retention.ms": "60000"})
    storage.create_topic("gone", 1)
    storage.delete_topic("gone")
    for _ in range(3):
        storage.partition("t", 1).append(batch(4))
    before = read_bytes(storage.partition("t", 1).read(0, 1 << 20))
    storage.close()

    reopened = Storage.open(tmp_path)
    assert reopened.topics() == [info]
    log = reopened.partition("t", 1)
    assert (log.log_start_offset, log.high_watermark) == (0, 12)
    assert reopened.partition("t", 0).high_watermark == 0
    assert read_bytes(log.read(0, 1 << 20)) == before
    assert log.append(batch(1)).base_offset == 12
    reopened.close()


def test_disk_layout_is_kafkas(tmp_path: pathlib.Path) -> None:
    storage = Storage.open(tmp_path)
    info = storage.create_topic("my.topic", 2)
    storage.partition("my.topic", 1).append(batch())
    storage.close()
    assert sorted(p.name for p in (tmp_path / "my.topic-1").iterdir()) == [
        "00000000000000000000.index",
        "00000000000000000000.log",
        "00000000000000000000.timeindex",
        "00000000000000000001.snapshot",  # producer state at the log end, written at close as Kafka does
        "leader-epoch-checkpoint",
        "partition.metadata",
    ]
    assert (tmp_path / "my.topic-0").is_dir()
    import base64

    metadata = (tmp_path / "my.topic-1" / "partition.metadata").read_text()
    assert metadata == f"version: 0\ntopic_id: {base64.urlsafe_b64encode(info.topic_id).decode().rstrip('=')}\n"


def test_delete_topic_removes_its_files(tmp_path: pathlib.Path) -> None:
    storage = Storage.open(tmp_path)
    storage.create_topic("t", 2)
    storage.delete_topic("t", now_ms=0)
    storage.delete_expired_files(now_ms=60_000)  # file.delete.delay.ms later (tests/storage/test_deletion.py)
    assert sorted(path.name for path in tmp_path.iterdir()) == [".lock", "meta.properties"]
    storage.close()


def test_disk_reads_are_file_regions_for_sendfile(tmp_path: pathlib.Path) -> None:
    storage = Storage.open(tmp_path)
    storage.create_topic("t", 1)
    log = storage.partition("t", 0)
    log.append(batch(1))
    log.append(batch(2))
    result = log.read(1, 1 << 20)
    [region] = result.chunks
    assert isinstance(region, FileRegion)
    assert region.path == tmp_path / "t-0" / "00000000000000000000.log"
    assert (region.position, region.length) == (len(batch(1)), len(batch(2)))
    storage.close()


def test_memory_engine_writes_no_files(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    storage = Storage.open(None)
    storage.create_topic("t", 2)
    storage.partition("t", 0).append(build_batch([Record(0, 1, None, b"v")]))
    storage.close()
    assert list(tmp_path.iterdir()) == []


def test_flush_policy_by_messages_and_time(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kafka's default never fsyncs on append (the OS writes back); flush.messages and
    flush.ms make it do so, and close always does."""
    import os

    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        path = pathlib.Path(os.readlink(f"/proc/self/fd/{fd}"))
        synced.append(f"{path.name}/" if path.is_dir() else f"{path.parent.name}/{path.suffix}")
        real_fsync(fd)

    storage = Storage.open(tmp_path)
    storage.create_topic("default", 1)
    storage.create_topic("every3", 1, {"flush.messages": "3"})
    storage.create_topic("timed", 1, {"flush.ms": "1000"})
    monkeypatch.setattr(os, "fsync", fsync)
    for _ in range(2):
        storage.partition("default", 0).append(batch(5))
        storage.partition("every3", 0).append(batch(1))
        storage.partition("timed", 0).append(batch(1), log_append_time_ms=0)
    assert synced == []
    storage.partition("every3", 0).append(batch(1))
    # The first flush of a log also makes its directory's entries durable (Kafka's LocalLog.flush).
    assert synced == ["every3-0/.log", "every3-0/"]
    storage.flush_if_due(now_ms=10**13)
    assert synced == ["every3-0/.log", "every3-0/", "timed-0/.log", "timed-0/"]
    synced.clear()
    storage.close()
    # Close fsyncs the unsynced log and each final time index entry (Kafka's LogSegment.close),
    # and writes each partition's producer state snapshot (.snapshot.tmp, then renamed, then
    # the directory fsynced so that the rename survives a power loss), then the directory's
    # recovery-point-offset-checkpoint, written the same way, and last its clean-shutdown marker.
    assert sorted(synced) == sorted([
        f"{tmp_path.name}/",
        f"{tmp_path.name}/.tmp",
        f"{tmp_path.name}/",
        f"{tmp_path.name}/.tmp",
        "default-0/",
        "default-0/.log",
        "default-0/.timeindex",
        "default-0/.tmp",
        "every3-0/",
        "every3-0/.timeindex",
        "every3-0/.tmp",
        "timed-0/",
        "timed-0/.timeindex",
        "timed-0/.tmp",
    ])


def test_timestamps_outside_the_valid_range(storage: Storage) -> None:
    """Kafka 4.0 (KIP-1030) rejects records stamped over an hour ahead of the broker;
    message.timestamp.before.max.ms bounds how old they may be."""
    storage.create_topic("t", 1)
    storage.create_topic("recent", 1, {"message.timestamp.before.max.ms": "1000"})
    storage.create_topic("appended", 1, {"message.timestamp.type": "LogAppendTime"})
    now = 10_000_000
    assert storage.partition("t", 0).append(batch(2, timestamp=now + 3_600_000 - 1), log_append_time_ms=now).base_offset == 0
    for topic, timestamp in (("t", now + 3_600_000), ("recent", now - 1001)):
        with pytest.raises(KafkaError) as raised:
            storage.partition(topic, 0).append(batch(2, timestamp=timestamp), log_append_time_ms=now)
        assert raised.value.code is ErrorCode.INVALID_TIMESTAMP
    assert storage.partition("recent", 0).append(batch(1, timestamp=-1), log_append_time_ms=now).base_offset == 0
    # LogAppendTime replaces the producer's timestamps, so they are not checked.
    assert storage.partition("appended", 0).append(batch(1, timestamp=now * 10), log_append_time_ms=now).base_offset == 0
