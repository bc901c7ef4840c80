"""Producer state wired into PartitionLog: de-duplication, the LSO, and snapshots across restarts."""

from __future__ import annotations

import pathlib

import pytest

from ottla.storage import LogConfig, PartitionLog
from ottla.storage.handles import FileHandles
from ottla.storage.producer_state import control_batch
from tests.storage.conftest import read_bytes
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.records import Compression, Record, build_batch, iter_records, scan_batches


def _batch(count: int = 1, pid: int = 7, epoch: int = 0, seq: int = 0, transactional: bool = False) -> bytes:
    records = [Record(i, 1000 + i, b"k", b"v%d" % (seq + i)) for i in range(count)]
    return build_batch(records, producer_id=pid, producer_epoch=epoch, base_sequence=seq, transactional=transactional)


def _open(directory: pathlib.Path | None, handles: FileHandles | None = None, **overrides: str) -> PartitionLog:
    return PartitionLog(directory, LogConfig.from_overrides(overrides), handles or FileHandles(64))


@pytest.fixture(params=["memory", "disk"])
def log(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> PartitionLog:
    return _open(None if request.param == "memory" else tmp_path / "t-0")


def _offsets(log: PartitionLog, isolation_limit: int | None = None) -> list[int]:
    data = read_bytes(log.read(0, 1 << 20, max_offset=isolation_limit))
    return [header.base_offset for header, _ in scan_batches(data)]


def test_a_retried_batch_gets_its_original_offsets_and_is_not_written_again(log: PartitionLog) -> None:
    first = log.append(_batch(3, seq=0))
    log.append(_batch(2, seq=3))
    retry = log.append(_batch(3, seq=0))
    assert (retry.base_offset, retry.last_offset) == (first.base_offset, first.last_offset) == (0, 2)
    assert log.log_end_offset == 5 and _offsets(log) == [0, 3]


def test_sequence_errors_leave_the_log_unchanged(log: PartitionLog) -> None:
    log.append(_batch(1, seq=0))
    with pytest.raises(KafkaError) as raised:
        log.append(_batch(1, seq=5))
    assert raised.value.code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    log.append(_batch(1, epoch=1, seq=0))  # a bumped epoch starts again at 0
    with pytest.raises(KafkaError) as raised:
        log.append(_batch(1, epoch=0, seq=1))
    assert raised.value.code == ErrorCode.INVALID_PRODUCER_EPOCH
    assert log.log_end_offset == 2


def test_an_expired_producer_goes_on_where_it_was(log: PartitionLog) -> None:
    """Once producer.id.expiration.ms has forgotten a producer, its next batch (sequence 1) is
    appended, as Kafka's ProducerAppendInfo accepts any sequence from a producer it has no
    state for; the state it starts then holds it to that sequence."""
    log.append(_batch(1, seq=0))
    log.expire_producers(now_ms=10**15, expiration_ms=1)
    assert log.producer_state.producers == {}
    assert log.append(_batch(1, seq=1)).base_offset == 1
    with pytest.raises(KafkaError) as raised:
        log.append(_batch(1, seq=3))
    assert raised.value.code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert log.log_end_offset == 2


def test_two_batches_of_one_producer_in_one_request_follow_each_other(log: PartitionLog) -> None:
    log.append(_batch(2, seq=0) + _batch(1, seq=2))
    assert log.append(_batch(1, seq=3)).base_offset == 3
    with pytest.raises(KafkaError):
        log.append(_batch(1, seq=4) + _batch(1, seq=9))
    assert log.log_end_offset == 4  # the whole request was refused, nothing of it recorded
    assert log.append(_batch(1, seq=4)).base_offset == 4


def test_an_open_transaction_holds_the_lso_and_an_abort_is_indexed(log: PartitionLog) -> None:
    log.append(_batch(1, pid=1, seq=0))
    log.append(_batch(2, pid=2, seq=0, transactional=True))  # offsets 1-2, open
    log.append(_batch(1, pid=3, seq=0))  # offset 3, after the open transaction
    assert (log.last_stable_offset, log.high_watermark) == (1, 4)
    assert _offsets(log, log.last_stable_offset) == [0]
    assert log.read(1, 1 << 20, max_offset=log.last_stable_offset).size == 0
    log.append(control_batch(2, 0, commit=False, timestamp=5000), from_client=False)  # ABORT at 4
    assert log.last_stable_offset == log.high_watermark == 5
    assert _offsets(log, log.last_stable_offset) == [0, 1, 3, 4]
    [aborted] = log.aborted_transactions(0, 5)
    assert (aborted.producer_id, aborted.first_offset, aborted.last_offset) == (2, 1, 4)
    assert log.aborted_transactions(4, 5) == [aborted] and log.aborted_transactions(5, 9) == []


def test_clients_may_not_write_markers(log: PartitionLog) -> None:
    with pytest.raises(KafkaError) as raised:
        log.append(control_batch(2, 0, commit=True, timestamp=5000))
    assert raised.value.code == ErrorCode.INVALID_RECORD


def test_state_survives_a_clean_restart(tmp_path: pathlib.Path) -> None:
    log = _open(tmp_path)
    log.append(_batch(2, seq=0))
    log.append(_batch(1, pid=2, seq=0, transactional=True))
    log.close()
    assert [p.name for p in tmp_path.glob("*.snapshot")] == ["00000000000000000003.snapshot"]
    reopened = _open(tmp_path)
    assert reopened.append(_batch(2, seq=0)).base_offset == 0  # still known as a retry
    assert reopened.last_stable_offset == 2  # still open
    reopened.append(control_batch(2, 0, commit=True, timestamp=5000), from_client=False)
    assert reopened.last_stable_offset == reopened.high_watermark == 4
    reopened.close()


def test_after_a_crash_the_tail_past_the_last_snapshot_is_replayed(tmp_path: pathlib.Path) -> None:
    """No close: only the snapshot taken at a roll exists; the batches after it are
    replayed from their headers (and a marker from its control record)."""
    handles = FileHandles(64)
    log = _open(tmp_path, handles, **{"segment.bytes": "200"})
    log.append(_batch(1, seq=0))
    log.append(_batch(1, pid=2, seq=0, transactional=True))
    log.append(control_batch(2, 0, commit=False, timestamp=5000), from_client=False)
    log.append(_batch(1, pid=3, seq=0, transactional=True))
    log.append(_batch(1, seq=1))
    log.flush()
    assert len(log.segments) > 1 and list(tmp_path.glob("*.snapshot"))
    crashed = _open(tmp_path, FileHandles(64))  # the first instance is never closed
    assert crashed.last_stable_offset == 3
    assert [(a.producer_id, a.first_offset, a.last_offset) for a in crashed.aborted_transactions(0, 9)] == [(2, 1, 2)]
    assert crashed.append(_batch(1, seq=1)).base_offset == 4
    assert crashed.append(_batch(1, seq=2)).base_offset == 5


def test_a_snapshot_past_the_log_end_is_discarded(tmp_path: pathlib.Path) -> None:
    log = _open(tmp_path)
    log.append(_batch(1, seq=0))
    log.close()
    (tmp_path / "00000000000000000099.snapshot").write_bytes(b'{"producers":{},"aborted":[]}')
    (tmp_path / "00000000000000000001.snapshot").write_bytes(b"not json")
    reopened = _open(tmp_path)
    assert not (tmp_path / "00000000000000000099.snapshot").exists()
    assert reopened.append(_batch(1, seq=0)).base_offset == 0  # rebuilt from the log itself
    assert reopened.append(_batch(1, seq=1)).base_offset == 1


@pytest.mark.parametrize(("target", "codec"), [("gzip", Compression.GZIP), ("zstd", Compression.ZSTD), ("uncompressed", Compression.NONE)])
def test_a_topic_compression_type_recompresses_what_differs(target: str, codec: Compression) -> None:
    """compression.type other than producer: Kafka's LogValidator rebuilds batches in the
    topic's codec, keeping producer fields (so de-duplication still works) and records."""
    log = PartitionLog(None, LogConfig.from_overrides({"compression.type": target}))
    records = [Record(i, 1000 + i, b"k%d" % i, b"v%d" % i, (("h", b"x"),)) for i in range(3)]
    sent = build_batch(records, compression=Compression.LZ4, producer_id=7, producer_epoch=0, base_sequence=0)
    log.append(sent)
    assert log.append(sent).base_offset == 0  # the retry is still recognised
    [(header, batch)] = list(scan_batches(read_bytes(log.read(0, 1 << 20))))
    assert (header.compression, header.producer_id, header.base_sequence, header.records_count) == (codec, 7, 0, 3)
    assert [(r.offset, r.timestamp, bytes(r.key), bytes(r.value), r.headers) for r in iter_records(batch)] == [
        (i, 1000 + i, b"k%d" % i, b"v%d" % i, (("h", b"x"),)) for i in range(3)
    ]


def test_producer_compression_type_stores_batches_as_sent() -> None:
    log = PartitionLog(None, LogConfig.from_overrides({}))
    sent = build_batch([Record(0, 1000, b"k", b"v")], compression=Compression.SNAPPY)
    log.append(sent)
    stored = read_bytes(log.read(0, 1 << 20))
    assert stored[16:] == sent[16:]  # all but the assigned base offset and leader epoch


def test_an_unknown_compression_type_is_invalid_config() -> None:
    with pytest.raises(KafkaError) as raised:
        LogConfig.from_overrides({"compression.type": "brotli"})
    assert raised.value.code == ErrorCode.INVALID_CONFIG
