"""The producer snapshots a restart leaves, as Kafka 4.4's LogLoader leaves them (its files seen on the
reference after clean and unclean restarts): a clean start deletes the stray snapshots but the newest
(an older close's, at no segment's base) and writes none, its newest being at the log end; a start after
a crash recovers the segment holding the recovery point from the snapshot at its base, deletes those
past that base, and writes one at the log end, whether or not the partition has producers."""

from __future__ import annotations

import pathlib

from kafka_wire import WireClient
from test_clean_shutdown import crash_after
from test_compaction import fill
from test_producer_snapshot_restart import _create_topic, _idempotent_producer, _produce, _producers

from ottla.storage import Storage
from ottla.testing import running_broker
from ottla.wire.errors import ErrorCode
from ottla.wire.records import Record, build_batch


def snapshot_offsets(directory: pathlib.Path) -> list[int]:
    return sorted(int(path.name[:20]) for path in directory.glob("*.snapshot"))


def test_a_clean_start_deletes_an_older_closes_snapshot_and_writes_none(tmp_path: pathlib.Path) -> None:
    with running_broker(data_dir=str(tmp_path)) as broker:
        client = WireClient(broker.bootstrap_servers)
        _create_topic(client)
        producer_id = _idempotent_producer(client)
        assert _produce(client, producer_id, 0, 2) == (ErrorCode.NONE, 0)
        client.close()
    assert snapshot_offsets(tmp_path / "t-0") == [2]
    with running_broker(data_dir=str(tmp_path)) as broker:
        client = WireClient(broker.bootstrap_servers)
        assert _produce(client, producer_id, 2, 3) == (ErrorCode.NONE, 2)
        client.close()
    assert snapshot_offsets(tmp_path / "t-0") == [2, 5], "each close writes one at its log end"
    with running_broker(data_dir=str(tmp_path)) as broker:
        assert snapshot_offsets(tmp_path / "t-0") == [5], "the stray at 2 is gone, none is written"
        client = WireClient(broker.bootstrap_servers)
        assert _producers(client)[producer_id]["last_sequence"] == 4
        client.close()


def producer_batch(sequence: int) -> bytes:
    return build_batch([Record(0, 1000 + sequence, b"k", b"v")], producer_id=7, producer_epoch=0, base_sequence=sequence)


def test_a_start_after_a_crash_writes_one_at_the_log_end_and_drops_those_past_the_recovered_segment(tmp_path: pathlib.Path) -> None:
    storage = Storage.open(tmp_path)
    storage.create_topic("t", 2)
    for sequence in range(3):
        storage.partition("t", 0).append(producer_batch(sequence))
        storage.partition("t", 1).append(build_batch([Record(0, 1000, b"k", b"v")]))
    storage.close()
    assert [snapshot_offsets(tmp_path / f"t-{index}") for index in (0, 1)] == [[3], [3]]
    crash_after(tmp_path, """
        for sequence in range(3, 5):
            log.append(producer_batch(sequence))
            storage.partition("t", 1).append(build_batch([Record(0, 1000, b"k", b"v")]))
    """)
    assert [snapshot_offsets(tmp_path / f"t-{index}") for index in (0, 1)] == [[3], [3]], "a crash leaves the close's"
    storage = Storage.open(tmp_path)
    try:
        # The recovery point (3) lies in the one segment: it is recovered from its start, the snapshot
        # past its base goes, and the state replayed is written at the log end, without producers too.
        assert [snapshot_offsets(tmp_path / f"t-{index}") for index in (0, 1)] == [[5], [5]]
        assert storage.partition("t", 0).producer_state.producers[7].last_seq == 4
        assert storage.partition("t", 1).producer_state.producers == {}
    finally:
        storage.close()
    assert [snapshot_offsets(tmp_path / f"t-{index}") for index in (0, 1)] == [[5], [5]], "the close has nothing new to write"


def test_a_start_after_a_crash_keeps_the_snapshots_up_to_the_recovered_segments_base(tmp_path: pathlib.Path) -> None:
    storage = Storage.open(tmp_path)
    storage.create_topic("t", 1)
    log = storage.partition("t", 0)
    for sequence in range(6):
        log.append(producer_batch(sequence))
        if sequence % 2 == 1:
            log.roll()  # a snapshot at each new segment's base: 2, 4, 6
    storage.close()
    directory = tmp_path / "t-0"
    assert snapshot_offsets(directory) == [2, 4, 6], "each stays while its segment does, as in Kafka"
    crash_after(tmp_path, """
        log.append(producer_batch(6))
    """)
    # Strays: one below the last segment's base, one past the log end.
    for stray in (3, 9):
        (directory / f"{stray:020d}.snapshot").write_bytes((directory / f"{4:020d}.snapshot").read_bytes())
    reopened = Storage.open(tmp_path)
    try:
        # The recovery point (6, the clean close's) is the last segment's base: the snapshot there
        # stays and is loaded, the strays go, and the replayed state is written at the log end.
        assert snapshot_offsets(directory) == [2, 4, 6, 7]
        assert reopened.partition("t", 0).producer_state.producers[7].last_seq == 6
    finally:
        reopened.close()


def test_a_snapshot_at_or_below_the_log_start_goes_at_load(tmp_path: pathlib.Path) -> None:
    """Kafka's truncateAndReload deletes the snapshots at or below the log start: DeleteRecords
    up to a segment's base leaves the roll's snapshot there, which the next start deletes."""
    storage = Storage.open(tmp_path)
    storage.create_topic("t", 1)
    log = storage.partition("t", 0)
    log.append(producer_batch(0))
    log.roll()  # the snapshot at 1
    log.append(producer_batch(1))
    log.delete_records(1)
    storage.close()
    assert snapshot_offsets(tmp_path / "t-0") == [1, 2]
    reopened = Storage.open(tmp_path)
    try:
        assert snapshot_offsets(tmp_path / "t-0") == [2]
        assert reopened.partition("t", 0).producer_state.producers[7].last_seq == 1
    finally:
        reopened.close()


def test_segments_merged_by_the_cleaner_take_their_snapshots_along(tmp_path: pathlib.Path) -> None:
    """As Kafka's UnifiedLog.replaceSegments: the snapshots at the bases of segments merged into another go."""
    storage = Storage.open(tmp_path)
    fill(storage)  # segments at 0, 5, 9 and 10, a roll's snapshot at each base but the first
    assert snapshot_offsets(tmp_path / "c-0") == [5, 9, 10]
    storage.compact(now_ms=2000)
    assert [segment.base_offset for segment in storage.partition("c", 0).segments] == [0, 10]
    assert snapshot_offsets(tmp_path / "c-0") == [10]
    storage.close()
