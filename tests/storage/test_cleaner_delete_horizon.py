"""Tombstones, aborted transactions and their markers under compaction, as Kafka 4.4's cleaner
treats them (KIP-534: Cleaner.cleanInto's filter, MemoryRecords.filterTo, CleanedTransactionMetadata):
a pass stamps a batch keeping a tombstone or an emptied transaction's marker with a delete
horizon (now + delete.retention.ms), a later pass past it drops them; aborted batches go at once."""

from __future__ import annotations

import pathlib

from conftest import read_bytes
from kafka.record import MemoryRecords

from ottla.storage import Storage
from ottla.storage.log import PartitionLog
from ottla.storage.producer_state import control_batch
from ottla.wire.records import Compression, Record, build_batch, iter_records, scan_batches

COMPACTED = {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0", "delete.retention.ms": "5000"}
DELETE_HORIZON_BIT = 0x40  # Kafka's DefaultRecordBatch.DELETE_HORIZON_FLAG_MASK


def keyed(pairs: list[tuple[str, str | None]], compression: Compression = Compression.NONE, producer_id: int = -1,
          sequence: int = 0, transactional: bool = True) -> bytes:
    """Records at timestamp 1000; given a producer id, a batch of its epoch 0 at `sequence`."""
    records = [Record(i, 1000, key.encode(), None if value is None else value.encode()) for i, (key, value) in enumerate(pairs)]
    if producer_id < 0:
        return build_batch(records, compression=compression)
    return build_batch(
        records, compression=compression, producer_id=producer_id, producer_epoch=0, base_sequence=sequence, transactional=transactional,
    )


def batches(log: PartitionLog) -> list[tuple[int, bool, int | None, list[tuple[str, str | None]]]]:
    """(base offset, control, delete horizon or None, [(key, value)]) of every batch, read as a fetch reads."""
    out = []
    offset = log.log_start_offset
    while offset < log.log_end_offset:
        data = read_bytes(log.read(offset, 1 << 20))
        for header, batch in scan_batches(data, verify_crc=True):
            horizon = header.base_timestamp if header.attributes & DELETE_HORIZON_BIT else None
            pairs = [] if header.is_control else [(bytes(r.key or b"").decode(), None if r.value is None else bytes(r.value).decode()) for r in iter_records(batch)]
            out.append((header.base_offset, header.is_control, horizon, pairs))
            offset = header.next_offset
    return out


def dirty(log: PartitionLog, key: str) -> None:
    """Something new for the cleaner: Kafka cleans a log again only once it has dirty data."""
    log.append(keyed([(key, "new")]))
    log.roll()


def test_a_tombstone_outlives_the_pass_that_first_keeps_it_by_delete_retention_ms(storage: Storage) -> None:
    """However old its record timestamp, a tombstone stays for delete.retention.ms after the
    first pass that keeps it (Kafka before KIP-534 timed it from the segment's modification)."""
    storage.create_topic("c", 1, COMPACTED)
    log = storage.partition("c", 0)
    log.append(keyed([("a", "a0")]))
    log.append(keyed([("a", None), ("b", "b0")], compression=Compression.GZIP))
    log.roll()
    log.append(keyed([("z", "z0")]))
    assert log.clean(now_ms=100_000) == 1  # a0
    [stamped] = [entry for entry in batches(log) if entry[0] == 1]
    assert stamped == (1, False, 105_000, [("a", None), ("b", "b0")])
    data = read_bytes(log.read(1, 1 << 20))
    kafka_batch = MemoryRecords(data).next_batch()
    assert kafka_batch.validate_crc()
    # The records keep their own timestamps: only the batch's base timestamp holds the horizon.
    assert [(r.offset, r.key, r.value, r.timestamp) for r in kafka_batch] == [(1, b"a", None, 1000), (2, b"b", b"b0", 1000)]
    dirty(log, "y")
    log.clean(now_ms=104_999)
    assert [entry for entry in batches(log) if entry[0] == 1] == [(1, False, 105_000, [("a", None), ("b", "b0")])]
    dirty(log, "x")
    assert log.clean(now_ms=105_000) == 1
    assert [entry for entry in batches(log) if entry[0] == 1] == [(1, False, 105_000, [("b", "b0")])]


def test_aborted_batches_go_and_markers_follow_their_transactions_after_the_horizon(storage: Storage) -> None:
    """The first pass drops an aborted transaction's batches and keeps its marker; the next, finding
    no batch of it, stamps the marker; one past the horizon drops it. A commit marker stays while
    its transaction has a batch in the log, however compacted."""
    storage.create_topic("c", 1, COMPACTED)
    log = storage.partition("c", 0)
    log.append(keyed([("a", "aborted")], producer_id=2))  # 0
    log.append(control_batch(2, 0, commit=False, timestamp=1000), from_client=False)  # 1
    log.append(keyed([("c", "c0")], producer_id=3))  # 2
    log.append(control_batch(3, 0, commit=True, timestamp=1000), from_client=False)  # 3
    log.append(keyed([("c", "c1")]))  # 4
    # Each producer's later transaction: the batches above are not their producers' last.
    log.append(keyed([("q", "q0")], producer_id=2, sequence=1))  # 5
    log.append(control_batch(2, 0, commit=True, timestamp=1000), from_client=False)  # 6
    log.append(keyed([("r", "r0")], producer_id=3, sequence=1))  # 7
    log.append(control_batch(3, 0, commit=True, timestamp=1000), from_client=False)  # 8
    log.roll()
    log.append(keyed([("z", "z0")]))  # 9
    later = [(5, False, None, [("q", "q0")]), (6, True, None, []), (7, False, None, [("r", "r0")]), (8, True, None, [])]
    assert log.clean(now_ms=100_000) == 2  # the aborted record, and c0
    assert batches(log)[:7] == [(1, True, None, []), (3, True, None, []), (4, False, None, [("c", "c1")]), *later]
    dirty(log, "y")
    log.clean(now_ms=100_000)
    assert batches(log)[:7] == [(1, True, 105_000, []), (3, True, 105_000, []), (4, False, None, [("c", "c1")]), *later]
    dirty(log, "x")
    assert log.clean(now_ms=105_000) == 2  # both markers
    assert batches(log)[:5] == [(4, False, None, [("c", "c1")]), *later]


def test_a_producers_last_batch_stays_empty_so_its_sequence_survives(tmp_path: pathlib.Path) -> None:
    """Kafka keeps a batch the cleaner empties when it is its producer's last (RETAIN_EMPTY): its
    header still carries the producer's last sequence, which the producer state rebuilt from the
    log (no snapshot) needs to answer a retry with the original offset instead of appending it again."""
    storage = Storage.open(tmp_path / "data")
    storage.create_topic("c", 1, COMPACTED)
    log = storage.partition("c", 0)
    retried = keyed([("k", "v1")], producer_id=5, transactional=False)
    log.append(retried)  # 0
    log.append(keyed([("k", "v2")]))  # 1: supersedes it
    log.roll()
    log.append(keyed([("z", "z0")]))  # 2
    assert log.clean(now_ms=100_000) == 1
    [empty] = [header for header, _ in scan_batches(read_bytes(log.read(0, 1 << 20))) if header.base_offset == 0]
    assert (empty.records_count, empty.producer_id, empty.base_sequence, empty.last_offset) == (0, 5, 0, 0)
    storage.close()
    for snapshot in (tmp_path / "data" / "c-0").glob("*.snapshot"):
        snapshot.unlink()
    (tmp_path / "data" / ".kafka_cleanshutdown").unlink()  # a crash: after a clean shutdown nothing is rebuilt
    storage = Storage.open(tmp_path / "data")
    try:
        log = storage.partition("c", 0)
        result = log.append(retried)
        assert (result.base_offset, log.log_end_offset) == (0, 3)
    finally:
        storage.close()


def test_records_without_a_key_go_at_the_first_pass_of_a_topic_made_compacted(storage: Storage) -> None:
    """Cleaner.shouldRetainRecord counts a keyless record invalid and drops it."""
    storage.create_topic("c", 1, {"cleanup.policy": "delete"})
    log = storage.partition("c", 0)
    log.append(build_batch([Record(0, 1000, None, b"keyless"), Record(1, 1000, b"k", b"v")]))
    log.roll()
    log.append(keyed([("z", "z0")]))
    storage.set_topic_configs("c", COMPACTED)
    assert log.clean(now_ms=100_000) == 1
    assert batches(log)[0] == (0, False, None, [("k", "v")])
