"""Each segment holding an ABORT marker has Kafka's `.txnindex` (TransactionIndex: 34-byte
AbortedTxn entries) beside it, as Kafka 4.4 writes it: the reference Kafka, fed a committed,
an aborted and a committed transaction (offsets 0-5, its segment rolled at offset 1), wrote
`00000000000000000001.txnindex`, which kafka-dump-log prints as
"version: 0 producerId: 1 firstOffset: 2 lastOffset: 3 lastStableOffset: 4"; segments without
an aborted transaction have none. The file goes with its segment (retention, DeleteRecords)
and a restart rebuilding the producer state from the log writes it again when a crash lost it
(below a snapshot the file is the record, as in Kafka). A clean that merges
segments leaves one file, the group's first, with the entries it kept: the reference's cleaned
`00000000000000000000.txnindex` took the entry of an ABORT marker from the segment merged into it."""

from __future__ import annotations

import pathlib
import struct

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from compat import kafka as reference
from ottla.storage import Storage
from ottla.storage.log import PartitionLog
from ottla.storage.producer_state import control_batch
from ottla.testing import running_broker
from ottla.wire.records import Record, build_batch

SEGMENT = "00000000000000000000"


def _entries(path: pathlib.Path) -> list[tuple[int, int, int, int, int]]:
    """Kafka's AbortedTxn layout, read independently of the code under test."""
    data = path.read_bytes()
    assert len(data) % 34 == 0
    return [struct.unpack_from(">hqqqq", data, at) for at in range(0, len(data), 34)]


def test_an_aborted_transaction_is_in_its_segments_txnindex_as_kafka_dump_log_reads_it(tmp_path: pathlib.Path) -> None:
    with running_broker(data_dir=str(tmp_path)) as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        for future in admin.create_topics([NewTopic("txn", 1, 1)]).values():
            future.result(30)
        producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "transactional.id": "tx-1"})
        producer.init_transactions(30)
        for value, commit in ((b"committed", True), (b"aborted", False), (b"committed again", True)):
            producer.begin_transaction()
            producer.produce("txn", value, partition=0)
            assert producer.flush(30) == 0
            (producer.commit_transaction if commit else producer.abort_transaction)(30)
    directory = tmp_path / "txn-0"
    assert sorted(path.name for path in directory.glob("*.txnindex")) == [f"{SEGMENT}.txnindex"]
    ((version, producer_id, first, last, last_stable),) = _entries(directory / f"{SEGMENT}.txnindex")
    assert (version, first, last, last_stable) == (0, 2, 3, 4)
    if reference.is_fetched():
        dumped = reference.run_tool("kafka-dump-log", "--files", str(directory / f"{SEGMENT}.txnindex"))
        assert dumped.returncode == 0, dumped.stderr
        assert f"version: 0 producerId: {producer_id} firstOffset: 2 lastOffset: 3 lastStableOffset: 4" in dumped.stdout


def _aborted_transaction(log: PartitionLog, producer_id: int, timestamp: int) -> None:
    data = build_batch([Record(0, timestamp, b"k", b"in doubt")], producer_id=producer_id, producer_epoch=0, base_sequence=0, transactional=True)
    log.append(data)
    log.append(control_batch(producer_id, 0, commit=False, timestamp=timestamp), from_client=False)


def test_the_txnindex_goes_with_its_segment_and_a_restart_writes_a_lost_one_again(tmp_path: pathlib.Path) -> None:
    storage = Storage.open(tmp_path)
    storage.create_topic("t", 1)
    log = storage.partition("t", 0)
    _aborted_transaction(log, 7, 1000)
    log.roll()
    _aborted_transaction(log, 8, 2000)
    log.roll()
    directory = tmp_path / "t-0"
    second = "00000000000000000002.txnindex"
    assert sorted(path.name for path in directory.glob("*.txnindex")) == [f"{SEGMENT}.txnindex", second]
    assert _entries(directory / second) == [(0, 8, 2, 3, 4)]
    log.delete_records(2, now_ms=0)
    assert not (directory / f"{SEGMENT}.txnindex").exists()
    storage.close()
    (directory / second).unlink()
    # Below a snapshot the .txnindex is the record of its aborts, as in Kafka; without one the
    # producer state is rebuilt from the log, and the file with it, after a crash (after a clean
    # shutdown Kafka rebuilds nothing: tests/storage/test_clean_shutdown.py).
    for snapshot in directory.glob("*.snapshot"):
        snapshot.unlink()
    (tmp_path / ".kafka_cleanshutdown").unlink()
    reopened = Storage.open(tmp_path)
    assert _entries(directory / second) == [(0, 8, 2, 3, 4)]
    reopened.close()


def test_a_clean_merging_segments_leaves_one_txnindex_with_the_entries_it_kept(tmp_path: pathlib.Path) -> None:
    storage = Storage.open(tmp_path)
    storage.create_topic("t", 1, {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0"})
    log = storage.partition("t", 0)
    _aborted_transaction(log, 7, 1000)
    log.roll()
    _aborted_transaction(log, 8, 2000)
    log.roll()
    log.append(build_batch([Record(0, 3000, b"k", b"tail")]))
    assert storage.compact(now_ms=10_000) > 0
    directory = tmp_path / "t-0"
    assert [segment.base_offset for segment in log.segments] == [0, 4]
    assert sorted(path.name for path in directory.glob("*.txnindex*")) == [f"{SEGMENT}.txnindex"]
    assert _entries(directory / f"{SEGMENT}.txnindex") == [(0, 7, 0, 1, 2), (0, 8, 2, 3, 4)]
    storage.close()
