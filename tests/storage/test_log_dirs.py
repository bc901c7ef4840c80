"""Several log directories (Kafka's JBOD): placement, restart, moving a partition between
directories (AlterReplicaLogDirs) with a crash at every step of it, and a failed directory."""

from __future__ import annotations

import os
import pathlib
import shutil

import pytest
from test_fault_injection import CRASHED, FINISHED, NOT_A_WRITE, _Steps, keyed, records

from ottla.storage import Storage
from ottla.storage.relocation import LogMove, future_directory_name
from ottla.wire.errors import ErrorCode, KafkaError


def open_dirs(root: pathlib.Path, count: int = 2) -> Storage:
    dirs = [root / f"d{n}" for n in range(count)]
    return Storage.open(dirs[0], more_dirs=dirs[1:])


def where(storage: Storage, topic: str, partitions: int) -> list[str]:
    return [storage.log_dir_of(topic, index).name for index in range(partitions)]  # type: ignore[union-attr]


def test_partitions_go_to_the_directory_with_the_fewest(tmp_path: pathlib.Path) -> None:
    storage = open_dirs(tmp_path, 3)
    storage.create_topic("a", 4)
    assert where(storage, "a", 4) == ["d0", "d1", "d2", "d0"]
    storage.create_topic("b", 2)
    assert where(storage, "b", 2) == ["d1", "d2"]
    storage.create_topic("__consumer_offsets", 2)
    assert where(storage, "__consumer_offsets", 2) == ["d0", "d0"], "internal topics stay with the broker's own files"
    ids = [state.directory_id for state in storage.log_dir_states()]
    assert len(set(ids)) == 3 and all(len(directory_id) == 16 for directory_id in ids)
    assert all("directory.id=" in (tmp_path / f"d{n}" / "meta.properties").read_text() for n in range(3))
    # Topic files stay in the first directory, as Kafka's metadata stays in metadata.log.dir.
    assert sorted(path.name for path in tmp_path.rglob("*.topic.json")) == ["__consumer_offsets.topic.json", "a.topic.json", "b.topic.json"]
    assert {path.parent.name for path in tmp_path.rglob("*.topic.json")} == {"d0"}
    storage.close()


def test_a_restart_finds_every_partition_where_it_is(tmp_path: pathlib.Path) -> None:
    storage = open_dirs(tmp_path)
    storage.create_topic("t", 4)
    for index in range(4):
        storage.partition("t", index).append(keyed([(b"k", b"v%d" % index)]))
    storage.partition("t", 1).delete_records(1)
    placed = where(storage, "t", 4)
    ids = storage.log_dir_states()
    storage.close()
    reopened = open_dirs(tmp_path)
    assert where(reopened, "t", 4) == placed
    assert reopened.log_dir_states() == ids
    assert [records(reopened, "t", index) for index in (0, 2, 3)] == [[(0, b"k", b"v%d" % index)] for index in (0, 2, 3)]
    assert reopened.partition("t", 1).log_start_offset == 1, "the log start checkpoint of the second directory"
    reopened.close()


def fill(root: pathlib.Path) -> None:
    """Topic `t` in d0: an idempotent producer's records over three segments."""
    storage = open_dirs(root)
    storage.create_topic("t", 1, {"index.interval.bytes": "100"})
    log = storage.partition("t", 0)
    for n in range(12):
        log.append(keyed([(b"k%d" % n, b"v%d-" % n + b"x" * 60)], producer_id=7, sequence=n))
        if n % 4 == 3:
            log.roll()
    log.delete_records(3)
    storage.close()


def move(storage: Storage) -> None:
    """A move with appends between copy steps, then the swap and the old copy's removal."""
    storage.alter_log_dir("t", 0, storage.log_dirs[1])
    log = storage.partition("t", 0)
    sequence = log.log_end_offset
    while storage.moving:
        storage.copy_moves(1500)
        if storage.moving:
            log.append(keyed([(b"during", b"%d" % sequence)], producer_id=7, sequence=sequence))
            sequence += 1
    log.append(keyed([(b"after", b"swap")], producer_id=7, sequence=sequence))
    storage.delete_expired_files(now_ms=1 << 62)


def test_a_move_keeps_every_record_and_appends_go_on(tmp_path: pathlib.Path) -> None:
    fill(tmp_path)
    storage = open_dirs(tmp_path)
    before = records(storage, "t")
    storage.alter_log_dir("t", 0, storage.log_dirs[1])
    future = storage.future_log("t", 0)
    assert future is not None and future.destination == storage.log_dirs[1] and future.offset_lag == 12
    log = storage.partition("t", 0)
    steps = 0
    while storage.moving:
        storage.copy_moves(500)
        steps += 1
        if storage.moving:
            log.append(keyed([(b"during", b"%d" % steps)], producer_id=7, sequence=log.log_end_offset))
    assert steps > 2, "the copy went in several steps"
    assert storage.log_dir_of("t", 0) == storage.log_dirs[1] and storage.future_log("t", 0) is None
    moved = records(storage, "t")
    assert moved[: len(before)] == before and [offset for offset, _, _ in moved] == list(range(3, 3 + len(moved)))
    # The producer's state came along: a retry is a duplicate.
    end = log.log_end_offset
    assert log.append(keyed([moved[-1][1:]], producer_id=7, sequence=end - 1)).base_offset == end - 1
    storage.delete_expired_files(now_ms=1 << 62)
    assert not any((tmp_path / "d0").glob("t-0*")), "the old copy goes after file.delete.delay.ms"
    storage.close()
    reopened = open_dirs(tmp_path)
    assert records(reopened, "t") == moved and reopened.partition("t", 0).log_start_offset == 3
    reopened.close()


def test_moving_to_where_it_is_or_nowhere_known(tmp_path: pathlib.Path) -> None:
    storage = open_dirs(tmp_path)
    storage.create_topic("t", 1)
    storage.alter_log_dir("t", 0, storage.log_dirs[0])
    assert not storage.moving
    assert storage.find_log_dir(str(tmp_path / "elsewhere")) is None
    assert storage.find_log_dir("no\x00path") is None
    assert storage.find_log_dir(str(tmp_path / "d1" / ".." / "d1")) == storage.log_dirs[1]
    with pytest.raises(KafkaError) as unknown:
        storage.alter_log_dir("u", 0, storage.log_dirs[1])
    assert unknown.value.code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    storage.close()


def test_a_move_cut_short_by_a_restart_starts_again(tmp_path: pathlib.Path) -> None:
    fill(tmp_path)
    storage = open_dirs(tmp_path)
    before = records(storage, "t")
    storage.alter_log_dir("t", 0, storage.log_dirs[1])
    storage.copy_moves(700)
    storage.close()
    assert len(list((tmp_path / "d1").glob("t-0.*-future"))) == 1
    reopened = open_dirs(tmp_path)
    assert reopened.moving and records(reopened, "t") == before
    while reopened.moving:
        reopened.copy_moves(1 << 20)
    assert reopened.log_dir_of("t", 0) == reopened.log_dirs[1] and records(reopened, "t") == before
    reopened.close()


def crash_during_move(root: pathlib.Path, crash_at: int, half: bool) -> int:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            storage = open_dirs(root)
            _Steps(crash_at, half).install()
            move(storage)
            code = FINISHED
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.slow
def test_a_crash_at_every_step_of_a_move_leaves_one_whole_log(tmp_path: pathlib.Path) -> None:
    pristine = tmp_path / "pristine"
    fill(pristine)
    opened = open_dirs(pristine)
    before = records(opened, "t")
    opened.close()
    crashes = 0
    for half in (False, True):
        for crash_at in range(0, 2000):
            root = tmp_path / f"{half}-{crash_at}"
            shutil.copytree(pristine, root)
            code = crash_during_move(root, crash_at, half)
            if code == FINISHED:
                shutil.rmtree(root)
                break
            assert code in (CRASHED, NOT_A_WRITE), f"child failed at step {crash_at} (half={half}): exit {code}"
            crashes += code == CRASHED
            storage = open_dirs(root)
            while storage.moving:
                storage.copy_moves(1 << 20)
            after = records(storage, "t")
            assert after[: len(before)] == before, f"step {crash_at} (half={half})"
            assert [offset for offset, _, _ in after] == list(range(3, 3 + len(after)))
            assert storage.partition("t", 0).log_start_offset == 3
            assert len(list(root.glob("d*/t-0"))) == 1
            log = storage.partition("t", 0)
            end = log.log_end_offset
            assert log.append(keyed([(b"next", b"next")], producer_id=7, sequence=end)).base_offset == end
            storage.close()
            shutil.rmtree(root)
        else:
            pytest.fail("the move never finished")
    assert crashes > 20


def test_a_failed_directory_takes_only_its_partitions_offline(tmp_path: pathlib.Path) -> None:
    storage = open_dirs(tmp_path)
    storage.create_topic("t", 2, {"segment.bytes": "2000"})
    for index in range(2):
        storage.partition("t", index).append(keyed([(b"k", b"v")]))
    lost = storage.partition("t", 1)
    shutil.rmtree(tmp_path / "d1")
    # Open descriptors still write: the failure shows at the next roll, as it would in Kafka.
    with pytest.raises(KafkaError) as failed:
        for _ in range(100):
            lost.append(keyed([(b"k", b"x" * 200)]))
    assert failed.value.code == ErrorCode.KAFKA_STORAGE_ERROR
    assert [state.offline for state in storage.log_dir_states()] == [False, True]
    assert storage.is_offline("t", 1) and not storage.is_offline("t", 0)
    with pytest.raises(KafkaError) as offline:
        storage.partition("t", 1)
    assert offline.value.code == ErrorCode.KAFKA_STORAGE_ERROR
    storage.partition("t", 0).append(keyed([(b"k", b"still")]))
    storage.create_topic("u", 2)
    assert where(storage, "u", 2) == ["d0", "d0"], "new partitions go to the directories online"
    with pytest.raises(KafkaError) as refused:
        storage.alter_log_dir("t", 0, storage.log_dirs[1])
    assert refused.value.code == ErrorCode.KAFKA_STORAGE_ERROR
    storage.close()


def test_a_directory_removed_under_the_broker_is_found_by_the_check(tmp_path: pathlib.Path) -> None:
    storage = open_dirs(tmp_path)
    storage.create_topic("t", 2)
    storage.check_log_dirs()
    assert not storage.offline_dirs
    shutil.rmtree(tmp_path / "d1")
    storage.check_log_dirs()
    assert storage.offline_dirs == {tmp_path / "d1"} and storage.is_offline("t", 1)
    storage.close()


def test_a_directory_missing_at_restart_leaves_its_partitions_offline(tmp_path: pathlib.Path) -> None:
    storage = open_dirs(tmp_path)
    storage.create_topic("t", 4)
    for index in range(4):
        storage.partition("t", index).append(keyed([(b"k", b"v%d" % index)]))
    placed = where(storage, "t", 4)
    storage.close()
    shutil.move(tmp_path / "d1", tmp_path / "unmounted")
    # The disk is not mounted: its mount point is an empty directory, made a new log dir.
    reopened = open_dirs(tmp_path)
    assert reopened.has_offline_partitions and not reopened.offline_dirs, "the new, empty d1 itself is online"
    for index, log_dir in enumerate(placed):
        assert reopened.is_offline("t", index) == (log_dir == "d1"), "not created again empty elsewhere"
        if log_dir == "d0":
            assert records(reopened, "t", index) == [(0, b"k", b"v%d" % index)]
    reopened.close()
    shutil.rmtree(tmp_path / "d1")
    shutil.move(tmp_path / "unmounted", tmp_path / "d1")
    remounted = open_dirs(tmp_path)
    assert [records(remounted, "t", index) for index in range(4)] == [[(0, b"k", b"v%d" % index)] for index in range(4)]
    remounted.close()


def test_a_move_copies_again_a_file_replaced_under_its_old_inode_number(tmp_path: pathlib.Path) -> None:
    """An index rewritten after its first copy (a compaction swap, a recovery) can get the inode
    number its predecessor freed: the copy must not keep the old bytes (the future log's index
    would send reads to positions that are no batch's). Here one index is rewritten in place at
    the same size and another shortened, which the copy sees as such a replacement."""
    fill(tmp_path)
    storage = open_dirs(tmp_path)
    log = storage.partition("t", 0)
    assert log.directory is not None
    move = LogMove(log, storage.log_dirs[1] / future_directory_name("t", 0))
    move.copy(1 << 30)
    same_size, shortened = log.directory / f"{4:020d}.index", log.directory / f"{8:020d}.index"
    assert same_size.stat().st_size >= 16 and shortened.stat().st_size >= 16
    with open(same_size, "r+b") as file:
        entries = file.read()
        file.seek(0)
        file.write(entries[::-1])
    os.truncate(shortened, 8)
    move.finish()
    for name in os.listdir(log.directory):
        if not name.endswith((".deleted", ".tmp")):
            assert (move.future / name).read_bytes() == (log.directory / name).read_bytes(), name
    storage.close()
