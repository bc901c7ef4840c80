"""The aborted-transaction index under compaction, as Kafka 4.4's cleaner rewrites a cleaned
segment's .txnindex (Cleaner.cleanSegments, CleanedTransactionMetadata.onControlBatchRead): an
entry stays while a batch of its transaction is still in the log when the cleaner reads its ABORT
marker, and goes at the first pass that finds none; read_committed fetches list what is left."""

from __future__ import annotations

import pathlib

from ottla.storage import Storage
from ottla.storage.log import PartitionLog
from ottla.storage.producer_state import control_batch
from ottla.wire.records import Record, build_batch

COMPACTED = {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0", "delete.retention.ms": "5000"}


def transactional(key: str, producer_id: int, sequence: int) -> bytes:
    return build_batch(
        [Record(0, 1000, key.encode(), b"v")], producer_id=producer_id, producer_epoch=0, base_sequence=sequence, transactional=True,
    )


def listed(log: PartitionLog) -> list[tuple[int, int]]:
    """(producer id, first offset) of what a read_committed fetch from the log start lists."""
    return [(entry.producer_id, entry.first_offset) for entry in log.aborted_transactions(log.log_start_offset, log.log_end_offset)]


def dirty(log: PartitionLog, key: str) -> None:
    """Something new for the cleaner: Kafka cleans a log again only once it has dirty data."""
    log.append(build_batch([Record(0, 1000, key.encode(), b"new")]))
    log.roll()


def test_an_aborted_transactions_entry_goes_at_the_pass_that_finds_none_of_its_batches(tmp_path: pathlib.Path) -> None:
    storage = Storage.open(tmp_path / "data")
    try:
        storage.create_topic("c", 1, COMPACTED)
        log = storage.partition("c", 0)
        log.append(transactional("a", 2, 0))  # 0
        log.append(control_batch(2, 0, commit=False, timestamp=1000), from_client=False)  # 1
        # The producer's later transaction: the aborted batch is not its last, so it is not kept empty.
        log.append(transactional("q", 2, 1))  # 2
        log.append(control_batch(2, 0, commit=True, timestamp=1000), from_client=False)  # 3
        log.roll()
        # A transaction aborted later, in the active segment at the first pass and cleaned by the
        # second, which reads its batch and so keeps its entry.
        log.append(transactional("b", 4, 0))  # 4
        log.append(control_batch(4, 0, commit=False, timestamp=1000), from_client=False)  # 5
        assert listed(log) == [(2, 0), (4, 4)]
        # The first pass drops the aborted batch; having read it, it keeps the entry.
        assert log.clean(now_ms=100_000) == 1
        assert listed(log) == [(2, 0), (4, 4)]
        log.roll()
        dirty(log, "y")
        # The next pass reads the marker with no batch of its transaction left: the entry goes.
        log.clean(now_ms=100_000)
        assert listed(log) == [(4, 4)]
    finally:
        storage.close()
    storage = Storage.open(tmp_path / "data")
    try:
        assert listed(storage.partition("c", 0)) == [(4, 4)]
    finally:
        storage.close()
