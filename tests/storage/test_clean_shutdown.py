"""Kafka's clean-shutdown marker, `.kafka_cleanshutdown` in each log directory.

A clean close writes it last, once every file is durable, as `{"version":0,"brokerEpoch":-1}`
(Kafka's CleanShutdownFileHandler; Ottla has no broker epoch); an open removes it before any log
is opened, so a crash after a start is recovered as a crash. With it, a start skips what only a
crash needs (Kafka's LogLoader with hadCleanShutdown): no segment past the checkpointed recovery
point is recovered from its start, and a partition left without a producer snapshot starts with
no producers (UnifiedLog.rebuildProducerState's reloadFromCleanShutdown), empty snapshots written
so that a crash later does not bring them back; without it, the recovery of a crash. The
reference Kafka 4.4 writes the same marker, skips recovery for Ottla's and forgets the producers
the same way (confirmed on it: DescribeProducers empty, a retry of the last batch appended again).
"""

from __future__ import annotations

import base64
import errno
import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest
from kafka_wire import WireClient
from test_kafka_file_compatibility import require_reference_kafka

from compat import kafka as reference
from ottla.storage import Storage
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.records import Record, build_batch

MARKER = ".kafka_cleanshutdown"
SMALL_SEGMENTS = {"segment.bytes": "2000", "index.interval.bytes": "100"}


def producer_batch(sequence: int) -> bytes:
    """As `crash_after` makes them."""
    return build_batch([Record(0, 1000 + sequence, b"k", b"v" * 200)], producer_id=7, producer_epoch=0, base_sequence=sequence)


def rolled_log(directory: pathlib.Path, batches: int = 40) -> int:
    """A cleanly closed topic "t" of one partition, several segments of idempotent batches; its log end."""
    storage = Storage.open(directory)
    storage.create_topic("t", 1, SMALL_SEGMENTS)
    log = storage.partition("t", 0)
    for sequence in range(batches):
        log.append(producer_batch(sequence))
    end = log.log_end_offset
    assert len(log.segments) > 3
    storage.close()
    return end


def crash_after(directory: pathlib.Path, statements: str) -> str:
    """Run `statements` in a process that opens the storage as `storage` and ends without
    closing it (os._exit: what kill -9 leaves); returns what it printed."""
    script = textwrap.dedent(
        f"""
        import os, pathlib
        from ottla.storage import Storage
        from ottla.wire.records import Record, build_batch
        def producer_batch(sequence):
            return build_batch([Record(0, 1000 + sequence, b"k", b"v" * 200)], producer_id=7, producer_epoch=0, base_sequence=sequence)
        storage = Storage.open(pathlib.Path({str(directory)!r}))
        log = storage.partition("t", 0)
        """
    ) + textwrap.dedent(statements) + "\nos._exit(0)\n"
    return subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True).stdout


def test_a_clean_close_writes_kafkas_marker_last_and_an_open_removes_it_first(tmp_path: pathlib.Path) -> None:
    rolled_log(tmp_path)
    assert (tmp_path / MARKER).read_bytes() == b'{"version":0,"brokerEpoch":-1}'
    storage = Storage.open(tmp_path)
    assert not (tmp_path / MARKER).exists()
    storage.close()
    assert (tmp_path / MARKER).exists()


def test_no_marker_in_a_directory_that_failed(tmp_path: pathlib.Path) -> None:
    """A directory gone offline (its files out of reach, some perhaps not durable) is recovered as after a crash."""
    first, second = tmp_path / "a", tmp_path / "b"
    storage = Storage.open(first, more_dirs=[second])
    storage.create_topic("t", 4)
    storage.fail_log_dir(second)
    storage.close()
    assert (first / MARKER).exists()
    assert not (second / MARKER).exists()


def test_no_marker_after_a_rolled_segments_fsync_failed(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The flusher's failed fsync, found when the log closes, takes the directory offline: the
    close ends all the same, without a marker, and the next open recovers past the recovery point."""
    storage = Storage.open(tmp_path)
    storage.create_topic("t", 1)
    log = storage.partition("t", 0)
    log.append(producer_batch(0))
    real_fsync = os.fsync

    def failing(descriptor: int) -> None:
        if os.readlink(f"/proc/self/fd/{descriptor}").endswith(".log"):
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", failing)
    log.roll()
    checkpoint = storage.checkpoint_recovery_points()
    assert checkpoint is not None
    checkpoint.wait()  # after the roll's fsyncs, which failed
    monkeypatch.setattr(os, "fsync", real_fsync)
    storage.close()
    assert storage.offline_dirs == {tmp_path}
    assert not (tmp_path / MARKER).exists()


def test_a_kill_after_a_clean_start_loses_nothing_and_is_recovered_as_a_crash(tmp_path: pathlib.Path) -> None:
    """The marker of the clean close before is gone as soon as the next start opened the
    directory: after a kill, a rolled segment torn past the recovery point (as an OS crash
    before its fsync may leave it) is recovered, and every acknowledged batch is there."""
    live = tmp_path / "live"
    rolled_log(live)
    printed = crash_after(live, """
        for sequence in range(40, 80):
            print(log.append(producer_batch(sequence)).last_offset, flush=True)
        print("segments", *(segment.base_offset for segment in log.segments), flush=True)
    """)
    *acknowledged, segments = printed.splitlines()
    assert not (live / MARKER).exists()
    torn = tmp_path / "torn"
    shutil.copytree(live, torn)

    storage = Storage.open(live)
    log = storage.partition("t", 0)
    assert log.log_end_offset == int(acknowledged[-1]) + 1 == 80
    assert [log.read(offset, 1 << 20).size > 0 for offset in range(80)] == [True] * 80
    storage.close()

    # The first segment rolled after the clean start's recovery point (40), its tail torn.
    bases = [int(base) for base in segments.split()[1:]]
    rolled = next(base for base in bases if base >= 40)
    following = bases[bases.index(rolled) + 1]
    path = torn / "t-0" / f"{rolled:020d}.log"
    with open(path, "r+b") as file:
        file.truncate(path.stat().st_size - 10)
    storage = Storage.open(torn)
    try:
        assert storage.partition("t", 0).log_end_offset == following - 1
    finally:
        storage.close()


def test_after_a_clean_shutdown_no_segment_past_the_recovery_point_is_recovered(tmp_path: pathlib.Path) -> None:
    """Kafka's LogLoader.recoverLog recovers nothing after a clean shutdown: the recovery point
    stays where it was checkpointed (a crash later recovers from there). Without the marker the
    sealed segments past it are recovered and fsynced, and the recovery point passes them."""
    end = rolled_log(tmp_path / "clean")
    (tmp_path / "clean" / "recovery-point-offset-checkpoint").write_text("0\n1\nt 0 0\n")  # an older checkpoint
    shutil.copytree(tmp_path / "clean", tmp_path / "crashed")
    (tmp_path / "crashed" / MARKER).unlink()
    storage = Storage.open(tmp_path / "clean")
    try:
        log = storage.partition("t", 0)
        assert (log.log_end_offset, log.recovery_point) == (end, 0)
    finally:
        storage.close()
    storage = Storage.open(tmp_path / "crashed")
    try:
        log = storage.partition("t", 0)
        deadline = time.monotonic() + 10
        while log.recovery_point < log.segments[-1].base_offset and time.monotonic() < deadline:
            time.sleep(0.01)  # the flusher's fsyncs of the recovered segments
        assert (log.log_end_offset, log.recovery_point) == (end, log.segments[-1].base_offset)
    finally:
        storage.close()


def test_without_a_snapshot_a_clean_start_forgets_the_producers_and_a_crash_after_it_too(tmp_path: pathlib.Path) -> None:
    """Empty snapshots at the last two segments' bases and at the log end, as Kafka writes them:
    a crash after that start finds them, and rebuilds the producers only from the segment holding
    the recovery point, which Kafka's LogLoader recovers from the empty snapshot at its base (the
    reference Kafka 4.4 knows the producer again then, its last batch there), not the whole log."""
    end = rolled_log(tmp_path)
    for snapshot in (tmp_path / "t-0").glob("*.snapshot"):
        snapshot.unlink()
    printed = crash_after(tmp_path, """
        print(*log.producer_state.producers)
        print(*(segment.base_offset for segment in log.segments[-2:]))
    """)
    producers, last_bases = printed.splitlines()
    assert producers == ""
    expected = sorted({*(int(base) for base in last_bases.split()), end})
    assert sorted(int(path.name[:20]) for path in (tmp_path / "t-0").glob("*.snapshot")) == expected
    assert not (tmp_path / MARKER).exists()
    storage = Storage.open(tmp_path)
    try:
        (entry,) = storage.partition("t", 0).producer_state.producers.values()
        assert min(batch.first_offset for batch in entry.batches) >= int(last_bases.split()[-1])
    finally:
        storage.close()


def test_after_a_clean_shutdown_without_snapshots_aborted_transactions_stay_aborted(tmp_path: pathlib.Path) -> None:
    """The producers are forgotten, not the `.txnindex` files: they are the record of the aborts."""
    storage = Storage.open(tmp_path)
    storage.create_topic("t", 1)
    log = storage.partition("t", 0)
    log.append(build_batch([Record(0, 1000, b"k", b"v")], producer_id=3, producer_epoch=0, base_sequence=0, transactional=True))
    abort = build_batch([Record(0, 1000, b"\x00\x00\x00\x00", b"\x00\x00\x00\x00\x00\x00")], producer_id=3, producer_epoch=0, transactional=True, control=True)
    log.append(abort, from_client=False)
    log.roll()
    log.append(build_batch([Record(0, 1000, b"k", b"v")]))
    aborted = log.aborted_transactions(0, log.log_end_offset)
    assert aborted
    storage.close()
    for snapshot in (tmp_path / "t-0").glob("*.snapshot"):
        snapshot.unlink()
    storage = Storage.open(tmp_path)
    try:
        log = storage.partition("t", 0)
        assert log.producer_state.producers == {}
        assert log.aborted_transactions(0, log.log_end_offset) == aborted
    finally:
        storage.close()


def _produce(client: WireClient, sequence: int, producer_id: int) -> tuple[int, int]:
    records = [Record(0, int(time.time() * 1000), b"k", b"v")]
    batch = build_batch(records, producer_id=producer_id, producer_epoch=0, base_sequence=sequence)
    answer = client.call(ApiKey.PRODUCE, 9, {"acks": -1, "timeout_ms": 5000, "transactional_id": None, "topic_data": [
        {"name": "t", "partition_data": [{"index": 0, "records": batch}]}]})
    partition = answer["responses"][0]["partition_responses"][0]
    return partition["error_code"], partition["base_offset"]


def _producers(client: WireClient) -> list[int]:
    answer = client.call(ApiKey.DESCRIBE_PRODUCERS, 0, {"topics": [{"name": "t", "partition_indexes": [0]}]})
    return [producer["producer_id"] for producer in answer["topics"][0]["partitions"][0]["active_producers"]]


def _broker_with_a_producer(data: pathlib.Path) -> int:
    """A broker on `data` that created topic "t" and appended sequences 0-2 of an idempotent producer, stopped cleanly."""
    with running_broker(data_dir=str(data)) as broker:
        client = WireClient(broker.bootstrap_servers)
        created = client.call(ApiKey.CREATE_TOPICS, 5, {"topics": [{"name": "t", "num_partitions": 1, "replication_factor": 1,
                                                                   "assignments": [], "configs": []}], "timeout_ms": 10000, "validate_only": False})
        assert created["topics"][0]["error_code"] == ErrorCode.NONE
        answer: dict[str, Any] = client.call(ApiKey.INIT_PRODUCER_ID, 4, {"transactional_id": None, "transaction_timeout_ms": 60000,
                                                                          "producer_id": -1, "producer_epoch": -1})
        producer_id: int = answer["producer_id"]
        for sequence in range(3):
            assert _produce(client, sequence, producer_id) == (ErrorCode.NONE, sequence)
        client.close()
    return producer_id


def test_a_broker_restarted_cleanly_without_its_snapshot_knows_no_producer(tmp_path: pathlib.Path) -> None:
    """As Kafka 4.4 answers: DescribeProducers lists none, and a retry of the last batch is
    appended again at the log end. After a crash the producer comes back from the log."""
    producer_id = _broker_with_a_producer(tmp_path / "clean")
    for snapshot in (tmp_path / "clean" / "t-0").glob("*.snapshot"):
        snapshot.unlink()
    shutil.copytree(tmp_path / "clean", tmp_path / "crashed")
    (tmp_path / "crashed" / MARKER).unlink()
    for name, producers, retried in (("clean", [], (ErrorCode.NONE, 3)), ("crashed", [producer_id], (ErrorCode.NONE, 2))):
        with running_broker(data_dir=str(tmp_path / name)) as broker:
            client = WireClient(broker.bootstrap_servers)
            assert _producers(client) == producers, name
            assert _produce(client, 2, producer_id) == retried, name
            client.close()


def _until_the_reference_leads_t(client: WireClient) -> None:
    """Kafka answers CreateTopics before its broker has taken the partition from the metadata
    log: a Produce at once may be UNKNOWN_TOPIC_OR_PARTITION. Wait until Metadata names its leader."""
    deadline = time.monotonic() + 30
    while True:
        answer = client.call(ApiKey.METADATA, 9, {"topics": [{"name": "t"}], "allow_auto_topic_creation": False,
                                                   "include_topic_authorized_operations": False})
        topic = answer["topics"][0]
        if topic["error_code"] == ErrorCode.NONE and topic["partitions"] and topic["partitions"][0]["leader_id"] >= 0:
            return
        assert time.monotonic() < deadline, topic
        time.sleep(0.1)


def test_the_marker_is_exchanged_with_kafka_both_ways(tmp_path: pathlib.Path) -> None:
    """Kafka's clean stop leaves the marker, and Ottla loads its directory as clean (the
    producers forgotten with the snapshot gone); Ottla's marker makes Kafka skip recovery."""
    require_reference_kafka()
    ottla = tmp_path / "ottla"
    with reference.ReferenceKafka() as kafka:
        client = WireClient(kafka.bootstrap_servers)
        created = client.call(ApiKey.CREATE_TOPICS, 5, {"topics": [{"name": "t", "num_partitions": 1, "replication_factor": 1,
                                                                   "assignments": [], "configs": []}], "timeout_ms": 10000, "validate_only": False})
        assert created["topics"][0]["error_code"] == ErrorCode.NONE
        _until_the_reference_leads_t(client)
        for sequence in range(3):
            assert _produce(client, sequence, 7)[0] == ErrorCode.NONE
        client.close()
        kafka.stop()
        data = kafka.dir / "data"
        assert json.loads((data / MARKER).read_text())["version"] == 0

        shutil.copytree(data / "t-0", ottla / "t-0")
        shutil.copy(data / MARKER, ottla / MARKER)
        encoded_id = (ottla / "t-0" / "partition.metadata").read_text().split("topic_id: ")[1].strip()
        topic = {"name": "t", "topic_id": base64.urlsafe_b64decode(encoded_id + "==").hex(), "partitions": 1, "configs": {}}
        (ottla / "t.topic.json").write_text(json.dumps(topic))
        for snapshot in (ottla / "t-0").glob("*.snapshot"):
            snapshot.unlink()
        storage = Storage.open(ottla)
        assert storage.partition("t", 0).producer_state.producers == {}
        assert not (ottla / MARKER).exists()
        storage.close()

        os.unlink(data / MARKER)
        shutil.copy(ottla / MARKER, data / MARKER)
        kafka.start()
        kafka.stop()
        started = [line for line in kafka.log_file.read_text().splitlines() if "clean shutdown file" in line]
        assert "Skipping recovery of 1 logs" in started[-1], started
