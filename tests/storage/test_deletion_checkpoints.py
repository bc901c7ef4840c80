"""What the checkpoints say of a topic being deleted, as Kafka 4.4's LogManager.asyncDelete
writes them: a directory's recovery points and log starts are checkpointed without the topic
only after its log is renamed `-delete`. Until then a crash brings the topic back as it was,
its recovery point included (not re-checked from its first segment). And a deletion whose
topic file cannot be removed (here: made immutable, which refuses even root) leaves the topic
to come back at the next start: every checkpoint keeps its entries meanwhile, whatever else
rewrites them, or the topic would come back with records DeleteRecords had removed."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from ottla.storage import Storage
from ottla.testing import running_broker
from ottla.wire.records import Record, build_batch

RECOVERY = "recovery-point-offset-checkpoint"


def _checkpoint(path: pathlib.Path) -> dict[tuple[str, int], int]:
    """Kafka's OffsetCheckpointFile, read independently of the code under test."""
    version, count, *lines = path.read_text().splitlines()
    assert version == "0" and int(count) == len(lines)
    entries = {}
    for line in lines:
        topic, partition, offset = line.rsplit(" ", 2)
        entries[(topic, int(partition))] = int(offset)
    return entries


def _batch(value: bytes) -> bytes:
    return build_batch([Record(0, 1000, None, value)])


def _checkpoint_now(storage: Storage) -> None:
    """Move another partition's recovery point (append, flush) and wait for the checkpoint task's
    write: the flusher runs in order, so every write handed to it before is on disk too."""
    storage.partition("other", 0).append(_batch(b"o"))
    storage.flush()
    job = storage.checkpoint_recovery_points()
    assert job is not None
    job.wait()


def test_the_recovery_points_keep_a_topic_until_its_files_are_renamed(tmp_path: pathlib.Path) -> None:
    data = tmp_path / "data"
    storage = Storage.open(data)
    try:
        storage.create_topic("t", 1)
        storage.create_topic("other", 1)
        log = storage.partition("t", 0)
        for value in (b"a", b"b", b"c"):
            log.append(_batch(value))
            log.roll()
        _checkpoint_now(storage)
        point = _checkpoint(data / RECOVERY)[("t", 0)]
        assert point == 3
        deletion = storage.begin_deletion("t")
        assert deletion is not None
        _checkpoint_now(storage)
        # A crash now, before the topic file goes: the topic comes back, and so does its point.
        crashed = tmp_path / "crashed"
        shutil.copytree(data, crashed, ignore=shutil.ignore_patterns(".lock", "*.tmp"))
        assert _checkpoint(crashed / RECOVERY).get(("t", 0)) == point
        deletion.run()
        storage.finish_deletion(deletion)
        assert ("t", 0) not in _checkpoint(data / RECOVERY)
    finally:
        storage.close()
    reopened = Storage.open(crashed)
    try:
        assert reopened.partition("t", 0).recovery_point == point
        assert reopened.partition("t", 0).log_end_offset == 3
    finally:
        reopened.close()


@pytest.fixture
def immutable() -> Iterator[list[pathlib.Path]]:
    """Paths to make immutable (chattr +i): made mutable again at teardown."""
    made: list[pathlib.Path] = []
    yield made
    for path in made:
        subprocess.run(["chattr", "-i", str(path)], check=False)


def _make_immutable(path: pathlib.Path, made: list[pathlib.Path]) -> None:
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("no chattr +i on this filesystem")
    made.append(path)


def _produce(bootstrap: str, topic: str, partition: int, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for number in range(count):
        producer.produce(topic, b"v%d" % number, partition=partition)
    assert producer.flush(30) == 0


def _low_watermarks(bootstrap: str, topic: str, partitions: int) -> list[int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader", "enable.auto.commit": False})
    try:
        return [consumer.get_watermark_offsets(TopicPartition(topic, index), timeout=10)[0] for index in range(partitions)]
    finally:
        consumer.close()


def _delete_records(admin: AdminClient, topic: str, partition: int, offset: int) -> None:
    for future in admin.delete_records([TopicPartition(topic, partition, offset)]).values():
        future.result(timeout=10)


def test_a_topic_whose_file_cannot_be_removed_comes_back_with_its_log_starts(tmp_path: pathlib.Path, immutable: list[pathlib.Path]) -> None:
    """Two log directories, `t`'s partitions (one in the second at least) moved to offset 4 by
    DeleteRecords. The topic file (in the first directory) refuses its removal: DeleteTopics is
    answered, the broker goes on with the second directory, whose log start checkpoint is
    rewritten (another topic's DeleteRecords). At the next start the topic is back, from offset
    4 in both."""
    dirs = [tmp_path / "d0", tmp_path / "d1"]
    settings = {"log_dirs": ",".join(str(path) for path in dirs), "log_cleaner_enable": False}
    with running_broker(**settings) as broker:
        bootstrap = broker.bootstrap_servers
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for topic, partitions in (("t", 2), ("other", 4)):
            (created,) = admin.create_topics([NewTopic(topic, partitions, 1)], operation_timeout=30).values()
            assert created.result(timeout=10) is None
        for index in range(2):
            _produce(bootstrap, "t", index, 10)
            _delete_records(admin, "t", index, 4)
        for index in range(4):
            _produce(bootstrap, "other", index, 2)
        # Each partition went to the directory holding fewer (the internal topics in the first):
        # the second holds one of `t`'s at least, and one of `other`'s.
        assert any(dirs[1].glob("t-[0-9]")) and any(dirs[1].glob("other-[0-9]"))
        _make_immutable(dirs[0] / "t.topic.json", immutable)
        (deleted,) = admin.delete_topics(["t"], operation_timeout=30).values()
        assert deleted.result(timeout=10) is None
        assert "t" not in admin.list_topics(timeout=10).topics
        # The second directory's log start checkpoint is rewritten, the broker serving it still.
        other_in_d1 = next(int(path.name.rpartition("-")[2]) for path in dirs[1].glob("other-[0-9]"))
        _delete_records(admin, "other", other_in_d1, 1)
    for path in immutable:
        subprocess.run(["chattr", "-i", str(path)], check=True)
    with running_broker(**settings) as broker:
        assert _low_watermarks(broker.bootstrap_servers, "t", 2) == [4, 4]
