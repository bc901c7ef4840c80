"""Recovery after a crash: torn tails, corrupt bytes, lost or damaged indexes."""

from __future__ import annotations

import os
import pathlib
import random
import subprocess
import sys
import textwrap

import pytest
from conftest import batch, read_base_offsets, read_bytes

from ottla.storage import Storage

SEGMENT = "00000000000000000000"


def written_log(directory: pathlib.Path, appends: int = 12, config: dict[str, str] | None = None) -> list[int]:
    """A closed one-partition log of `appends` batches of 1-3 records; returns batch end positions."""
    storage = Storage.open(directory)
    storage.create_topic("t", 1, {"index.interval.bytes": "200", **(config or {})})
    log = storage.partition("t", 0)
    ends = []
    for index in range(appends):
        log.append(batch(index % 3 + 1, value_size=40, timestamp=1000 + index))
        ends.append(log.size)
    storage.close()
    return ends


def reopen(directory: pathlib.Path) -> Storage:
    return Storage.open(directory)


def test_every_truncation_point_recovers_to_the_last_whole_batch(tmp_path: pathlib.Path) -> None:
    ends = written_log(tmp_path / "original")
    data = (tmp_path / "original" / "t-0" / f"{SEGMENT}.log").read_bytes()
    offsets_after = [sum(i % 3 + 1 for i in range(n + 1)) for n in range(len(ends))]
    for cut in sorted({0, 1, 61, *random.Random(7).sample(range(len(data)), 40), *ends, *(e - 1 for e in ends)}):
        directory = tmp_path / f"cut-{cut}"
        written_log(directory)
        with open(directory / "t-0" / f"{SEGMENT}.log", "r+b") as file:
            file.truncate(cut)
        storage = reopen(directory)
        log = storage.partition("t", 0)
        whole = [end for end in ends if end <= cut]
        assert log.size == (whole[-1] if whole else 0), cut
        assert log.log_end_offset == (offsets_after[len(whole) - 1] if whole else 0), cut
        if whole:
            assert read_bytes(log.read(0, 1 << 20)) == data[: whole[-1]]
        assert log.append(batch(1)).base_offset == log.log_end_offset - 1
        storage.close()


def test_corrupt_byte_in_the_tail_truncates_from_that_batch(tmp_path: pathlib.Path) -> None:
    """The tail is what follows the last index entry: the only part a crash can have torn
    (earlier bytes were indexed only after they were written, like Kafka's recovery point)."""
    ends = written_log(tmp_path)
    path = tmp_path / "t-0" / f"{SEGMENT}.log"
    data = bytearray(path.read_bytes())
    data[ends[-2] + 70] ^= 0xFF  # inside the last batch's records
    path.write_bytes(bytes(data))
    storage = reopen(tmp_path)
    log = storage.partition("t", 0)
    assert log.size == ends[-2]
    assert log.log_end_offset == 24 - (11 % 3 + 1)
    storage.close()


def test_zero_filled_tail_is_cut(tmp_path: pathlib.Path) -> None:
    """A crash can leave a file extended with zeros (metadata written, data not)."""
    ends = written_log(tmp_path)
    with open(tmp_path / "t-0" / f"{SEGMENT}.log", "ab") as file:
        file.write(bytes(5000))
    storage = reopen(tmp_path)
    assert storage.partition("t", 0).size == ends[-1]
    storage.close()


@pytest.mark.parametrize("damage", ["delete", "garbage", "empty", "stale"])
@pytest.mark.parametrize("which", ["index", "timeindex"])
def test_damaged_indexes_are_rebuilt(tmp_path: pathlib.Path, damage: str, which: str) -> None:
    written_log(tmp_path)
    directory = tmp_path / "t-0"
    originals = {suffix: (directory / f"{SEGMENT}.{suffix}").read_bytes() for suffix in ("index", "timeindex")}
    assert originals["index"], "the fixture log must have index entries"
    path = directory / f"{SEGMENT}.{which}"
    if damage == "delete":
        path.unlink()
    elif damage == "garbage":
        path.write_bytes(random.Random(1).randbytes(len(originals[which])))
    elif damage == "empty":
        path.write_bytes(b"")
    else:  # entries pointing past the end of the log
        path.write_bytes(originals[which] + (b"\x00\x00\x7f\xff\x00\x7f\xff\xff" if which == "index" else b"\x7f" * 12))
    storage = reopen(tmp_path)
    log = storage.partition("t", 0)
    assert log.log_end_offset == 24
    assert log.offset_for_timestamp(1005) is not None
    assert read_base_offsets(log.read(13, 1 << 20))[0] <= 13
    storage.close()
    assert {suffix: (directory / f"{SEGMENT}.{suffix}").read_bytes() for suffix in originals} == originals


def test_missing_index_of_an_old_segment_is_rebuilt(tmp_path: pathlib.Path) -> None:
    written_log(tmp_path, config={"segment.bytes": "600"})
    directory = tmp_path / "t-0"
    logs = sorted(directory.glob("*.log"))
    assert len(logs) >= 3
    old = logs[0].with_suffix(".index")
    original = old.read_bytes()
    old.unlink()
    storage = reopen(tmp_path)
    assert storage.partition("t", 0).log_end_offset == 24
    assert read_base_offsets(storage.partition("t", 0).read(0, 1 << 20))[0] == 0
    storage.close()
    assert old.read_bytes() == original


def test_stale_index_entry_does_not_cost_valid_data(tmp_path: pathlib.Path) -> None:
    """An index entry pointing into the middle of a batch must not make recovery cut there."""
    ends = written_log(tmp_path)
    index = tmp_path / "t-0" / f"{SEGMENT}.index"
    index.write_bytes(index.read_bytes() + (23).to_bytes(4, "big") + (ends[-2] + 5).to_bytes(4, "big"))
    storage = reopen(tmp_path)
    assert storage.partition("t", 0).size == ends[-1]
    storage.close()


def test_process_killed_without_close_loses_nothing_written(tmp_path: pathlib.Path) -> None:
    """Appends reach the page cache before append() returns: an abrupt exit (no close,
    no fsync, like kill -9) keeps every acknowledged batch."""
    script = textwrap.dedent(
        f"""
        import os, pathlib, sys
        sys.path[:0] = [{str(pathlib.Path.cwd())!r}, {str(pathlib.Path(__file__).parent)!r}]
        from conftest import batch
        from ottla.storage import Storage
        storage = Storage.open(pathlib.Path({str(tmp_path)!r}))
        storage.create_topic("t", 1, {{"segment.bytes": "2000", "index.interval.bytes": "100"}})
        for index in range(100):
            result = storage.partition("t", 0).append(batch(2, value_size=30, timestamp=index))
            print(result.last_offset, flush=True)
        os._exit(0)
        """
    )
    output = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True).stdout
    acknowledged = int(output.split()[-1])
    storage = reopen(tmp_path)
    log = storage.partition("t", 0)
    assert log.log_end_offset == acknowledged + 1 == 200
    offsets = []
    position = log.log_start_offset
    while position < log.log_end_offset:
        bases = read_base_offsets(log.read(position, 1 << 20))
        offsets += bases
        position = bases[-1] + 2
    assert offsets == list(range(0, 200, 2))
    storage.close()


def test_leftover_temporary_files_are_removed(tmp_path: pathlib.Path) -> None:
    written_log(tmp_path)
    leftovers = [tmp_path / "t-0" / f"{SEGMENT}.index.tmp", tmp_path / "t.topic.json.tmp", tmp_path / "log-start-offset-checkpoint.tmp"]
    for leftover in leftovers:
        leftover.write_bytes(b"half")
    reopen(tmp_path).close()
    assert [leftover for leftover in leftovers if leftover.exists()] == []


def test_full_disk_is_a_storage_error_and_leaves_the_log_intact(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ottla.wire.errors import ErrorCode, KafkaError

    storage = Storage.open(tmp_path)
    storage.create_topic("t", 1)
    log = storage.partition("t", 0)
    log.append(batch(2))
    real_pwrite = os.pwrite

    def disk_full(fd: int, data: bytes, position: int) -> int:
        real_pwrite(fd, bytes(data)[:10], position)  # a partial write, then ENOSPC
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "pwrite", disk_full)
    with pytest.raises(KafkaError) as raised:
        log.append(batch(3))
    assert raised.value.code is ErrorCode.KAFKA_STORAGE_ERROR
    monkeypatch.undo()
    assert log.log_end_offset == 2
    assert log.append(batch(1)).base_offset == 2
    storage.close()
    reopened = reopen(tmp_path)
    assert read_base_offsets(reopened.partition("t", 0).read(0, 1 << 20)) == [0, 2]
    reopened.close()


def test_clean_restart_rewrites_nothing(tmp_path: pathlib.Path) -> None:
    """After a clean close recovery finds nothing to change, so a restart of thousands of
    partitions costs no writes or fsyncs."""
    written_log(tmp_path, config={"segment.bytes": "600"})
    files = sorted((tmp_path / "t-0").iterdir())
    before = {path.name: (path.stat().st_mtime_ns, path.read_bytes()) for path in files}
    reopen(tmp_path).close()
    assert {path.name: (path.stat().st_mtime_ns, path.read_bytes()) for path in files} == before


def test_index_write_failures_do_not_fail_appends(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Indexes are derived: a full disk while writing one costs nothing but a rebuild."""
    from ottla.storage import index

    storage = Storage.open(tmp_path)
    storage.create_topic("t", 1, {"index.interval.bytes": "0"})
    log = storage.partition("t", 0)

    def refuse(fd: int, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(index.os, "write", refuse)
    for _ in range(600):  # enough entries to reach the write-behind threshold
        log.append(batch(1))
    assert read_base_offsets(log.read(599, 1 << 20)) == [599]
    monkeypatch.undo()
    storage.close()
    reopened = reopen(tmp_path)
    assert reopened.partition("t", 0).log_end_offset == 600
    assert read_base_offsets(reopened.partition("t", 0).read(300, 1)) == [300]
    reopened.close()


def test_a_segment_that_cannot_be_created_is_a_storage_error(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ottla.wire.errors import ErrorCode, KafkaError

    storage = Storage.open(tmp_path)
    storage.create_topic("t", 1, {"segment.bytes": "200"})
    log = storage.partition("t", 0)
    log.append(batch(1, value_size=100))
    real_open = os.open

    def no_new_files(path: str | os.PathLike[str], flags: int, mode: int = 0o777) -> int:
        if flags & os.O_CREAT and not os.path.exists(path):
            raise OSError(28, "No space left on device")
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", no_new_files)
    with pytest.raises(KafkaError) as raised:
        log.append(batch(1, value_size=100))  # needs a roll
    assert raised.value.code is ErrorCode.KAFKA_STORAGE_ERROR
    monkeypatch.undo()
    assert (log.log_end_offset, len(log.segments)) == (1, 1)
    assert log.append(batch(1, value_size=100)).base_offset == 1
    storage.close()


def test_a_log_start_checkpointed_past_what_a_power_loss_left_restarts_the_log_there(tmp_path: pathlib.Path) -> None:
    """DeleteRecords made offset 10 the log start, durably; a power loss then took the unsynced
    tail from offset 6. Clients were told offsets below 10 are gone: as Kafka's LogLoader, the
    log restarts empty at 10, where pulling the log start back to 6 would hand 6-9 out again."""
    storage = Storage.open(tmp_path)
    storage.create_topic("t", 1)
    log = storage.partition("t", 0)
    ends = []
    for index in range(10):
        log.append(batch(1, value_size=100, timestamp=1000 + index))
        ends.append(log.size)
    assert log.delete_records(10) == 10
    storage.close()
    os.truncate(tmp_path / "t-0" / f"{SEGMENT}.log", ends[5])
    reopened = reopen(tmp_path)
    try:
        log = reopened.partition("t", 0)
        assert (log.log_start_offset, log.log_end_offset) == (10, 10)
        assert log.append(batch(1, timestamp=5000)).base_offset == 10
    finally:
        reopened.close()
    again = reopen(tmp_path)
    try:
        assert [segment.base_offset for segment in again.partition("t", 0).segments] == [10]
        assert again.partition("t", 0).log_end_offset == 11
    finally:
        again.close()
