"""The cleaner merges small segments as Kafka 4.4's does (Cleaner.groupSegmentsBySize, then one
cleaned segment per group swapped in by LocalLog.replaceSegments), and a crash at any step of
that swap leaves, after a restart, either the old segments or the new one: nothing lost, nothing
read twice, offsets increasing. Reads go through a broker started on the files and a stock
client (kafka-python) fetching from offset 0."""

from __future__ import annotations

import os
import pathlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KafkaTopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from compat.harness import wait_for
from ottla.storage import Storage
from ottla.storage.compaction import group_segments_by_size
from ottla.testing import running_broker
from ottla.wire.records import Record, build_batch, iter_records, scan_batches

COMPACTED = {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0"}
Row = tuple[int, bytes, bytes | None]


def _name(base_offset: int, suffix: str) -> str:
    return f"{base_offset:020d}{suffix}"


def _keyed(key: str, value: str) -> bytes:
    return build_batch([Record(0, 1000, key.encode(), value.encode())])


def _rows_of(path: pathlib.Path) -> list[Row]:
    """The records of a .log file, as (offset, key, value)."""
    rows: list[Row] = []
    for _, batch in scan_batches(path.read_bytes(), verify_crc=True):
        rows.extend((r.offset, bytes(r.key or b""), None if r.value is None else bytes(r.value)) for r in iter_records(batch))
    return rows


def _read_all(bootstrap: str, topic: str) -> list[Row]:
    """Every record from offset 0 to the log end, in the order fetched."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    partition = KafkaTopicPartition(topic, 0)
    try:
        consumer.assign([partition])
        consumer.seek(partition, 0)
        end = consumer.end_offsets([partition])[partition]
        rows: list[Row] = []

        def caught_up() -> bool:
            for records in consumer.poll(timeout_ms=500).values():
                rows.extend((record.offset, record.key, record.value) for record in records)
            return consumer.position(partition) >= end

        assert wait_for(caught_up, timeout=30), f"stopped at {consumer.position(partition)} of {end}"
        return rows
    finally:
        consumer.close()


def _read_through_broker(data: pathlib.Path, topic: str) -> list[Row]:
    """Start a broker on `data` (its cleaner off: what it reads is what recovery left) and read."""
    with running_broker(data_dir=data, log_cleaner_enable=False) as broker:
        return _read_all(broker.bootstrap_servers, topic)


# --- grouping, without files --------------------------------------------------------------------


@dataclass
class _FakeSegment:
    base_offset: int
    next_offset: int
    size: int
    index_sizes: tuple[int, int] = (0, 0)
    first_batch_timestamp: int = 0
    max_timestamp_and_offset: tuple[int, int] = (0, 0)


def _bases(groups: list[list[_FakeSegment]]) -> list[list[int]]:
    return [[segment.base_offset for segment in group] for group in groups]


def test_groups_stay_within_segment_bytes_index_bytes_and_int_offsets() -> None:
    sizes = [40, 30, 30, 50, 10, 100, 0]
    segments, base = [], 0
    for size in sizes:
        segments.append(_FakeSegment(base, base + 10, size))
        base += 10
    # segment.bytes 100: 40+30+30, then 50+10, then 100, the empty one joining it.
    assert _bases(group_segments_by_size(segments, 100, 1 << 20)) == [[0, 10, 20], [30, 40], [50, 60]]
    # Index bytes bound a group too (segment.index.bytes), each index on its own.
    indexed = [_FakeSegment(i * 10, i * 10 + 10, 1, (8, 12)) for i in range(5)]
    assert _bases(group_segments_by_size(indexed, 1 << 30, 24)) == [[0, 10], [20, 30], [40]]
    # Offsets of a group stay within Int.MaxValue of its base, but an empty segment joins anyway.
    far = [_FakeSegment(0, 10, 1), _FakeSegment(10, 2**31, 1), _FakeSegment(2**31, 2**31 + 5, 0), _FakeSegment(2**31 + 5, 2**31 + 9, 1)]
    assert _bases(group_segments_by_size(far, 1 << 30, 1 << 20)) == [[0, 10, 2**31], [2**31 + 5]]


def test_a_merged_segment_never_exceeds_segment_bytes(tmp_path: pathlib.Path) -> None:
    """Twenty one-batch segments, segment.bytes of three batches: cleaned into groups of three."""
    size = len(_keyed("k00", "v00"))
    storage = Storage.open(tmp_path)
    try:
        storage.create_topic("c", 1, {**COMPACTED, "segment.bytes": str(3 * size)})
        log = storage.partition("c", 0)
        for n in range(20):
            log.append(_keyed(f"k{n:02d}", f"v{n:02d}"))  # distinct keys: nothing removed, only merged
            log.roll()
        storage.compact(now_ms=2000)
        closed = log.segments[:-1]
        assert [segment.base_offset for segment in closed] == list(range(0, 20, 3))
        assert all(segment.size <= 3 * size for segment in closed)
        assert sorted(p.name for p in (tmp_path / "c-0").glob("*.log")) == [_name(b, ".log") for b in [*range(0, 20, 3), 20]]
    finally:
        storage.close()
    assert [offset for offset, _, _ in _read_through_broker(tmp_path, "c")] == list(range(20))


# --- the broker's own cleaner, end to end ------------------------------------------------------


def test_many_small_segments_become_one_and_read_back_with_a_stock_client(tmp_path: pathlib.Path) -> None:
    """segment.ms rolls a segment per record; with segment.bytes at its default, the broker's
    cleaner merges every closed one into one segment, which keeps each key's latest value at its
    offset."""
    data = tmp_path / "data"
    with running_broker(data_dir=data, log_cleaner_backoff_ms=200) as broker:
        bootstrap = broker.bootstrap_servers
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.create_topics([NewTopic("merged", 1, 1, topic_configs={**COMPACTED, "segment.ms": "1000"})])
        admin.close()
        producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
        start = time.time_ns() // 1_000_000 - 600_000
        produced: list[Row] = []
        for n in range(30):  # two seconds of record time apart: each rolls a segment
            key, value = f"key-{n % 7}".encode(), f"value-{n}".encode()
            producer.send("merged", value, key, partition=0, timestamp_ms=start + 2000 * n).get(timeout=30)
            produced.append((n, key, value))
        producer.send("merged", b"active", b"last", partition=0, timestamp_ms=start + 2000 * 30).get(timeout=30)
        producer.close()
        partition = data / "merged-0"
        # The cleaner runs meanwhile, every 200 ms; in the end one merged segment precedes the active one.
        assert wait_for(lambda: sorted(p.name for p in partition.glob("*.log")) == [_name(0, ".log"), _name(30, ".log")], timeout=60)
        latest = {key: (offset, key, value) for offset, key, value in produced}
        expected = sorted([*latest.values(), (30, b"last", b"active")])
        assert _read_all(bootstrap, "merged") == expected


# --- crash safety of the swap ------------------------------------------------------------------

# Segments (one batch each) of the log the crash states are built from: [0, 1, 2] and [3, 4, 5]
# are the cleaner's two groups (segment.bytes of three batches); [6] is active. Segment 2's
# record is superseded in the next group: the first group's cleaned segment ends before it.
_RECORDS = [("a", "a0"), ("b", "b0"), ("c", "c0"), ("c", "c1"), ("a", "a1"), ("d", "d0"), ("z", "active")]
_GROUP = [0, 1, 2]


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, pathlib.Path]:
    """The partition's files before any clean, and the first group's cleaned .log."""
    size = len(_keyed("a", "a0"))
    before = tmp_path_factory.mktemp("before")
    storage = Storage.open(before)
    storage.create_topic("c", 1, {**COMPACTED, "segment.bytes": str(3 * size)})
    log = storage.partition("c", 0)
    for n, (key, value) in enumerate(_RECORDS):
        if n:
            log.roll()
        log.append(_keyed(key, value))
    storage.close()
    after = tmp_path_factory.mktemp("after")
    shutil.copytree(before, after, dirs_exist_ok=True)
    storage = Storage.open(after)
    storage.compact(now_ms=2000)
    assert [segment.base_offset for segment in storage.partition("c", 0).segments] == [0, 3, 6]
    storage.close()
    cleaned = after / "c-0" / _name(0, ".log")
    assert [offset for offset, _, _ in _rows_of(cleaned)] == [1], "the first group keeps b0 alone"
    return before, cleaned


def _cleaned_partial(partition: pathlib.Path, cleaned: bytes) -> None:
    (partition / _name(0, ".log.cleaned")).write_bytes(cleaned[: len(cleaned) // 2])


def _swap(partition: pathlib.Path, cleaned: bytes) -> None:
    (partition / _name(0, ".log.swap")).write_bytes(cleaned)


def _mark_deleted(partition: pathlib.Path, base: int, suffixes: tuple[str, ...] = (".index", ".timeindex", ".log")) -> None:
    """Segment.mark_deleted's renames, indexes first."""
    for suffix in suffixes:
        os.rename(partition / _name(base, suffix), partition / _name(base, suffix + ".deleted"))


def _swap_then(*steps: Callable[[pathlib.Path], None]) -> Callable[[pathlib.Path, bytes], None]:
    def build(partition: pathlib.Path, cleaned: bytes) -> None:
        _swap(partition, cleaned)
        for step in steps:
            step(partition)

    return build


def _first_segment_swapped_out(partition: pathlib.Path) -> None:
    """DiskFile.replace_contents before its last rename: the log `.deleted`, indexes removed."""
    _mark_deleted(partition, 0, (".log",))
    for suffix in (".index", ".timeindex"):
        (partition / _name(0, suffix)).unlink()


def _completed(partition: pathlib.Path) -> None:
    os.rename(partition / _name(0, ".log.swap"), partition / _name(0, ".log"))


# (name, how the crash left the files, whether the first group reads cleaned)
CRASHES: list[tuple[str, Callable[[pathlib.Path, bytes], None], bool]] = [
    ("cleaned file half written", _cleaned_partial, False),
    ("cleaned file whole, not yet renamed", lambda p, c: (p / _name(0, ".log.cleaned")).write_bytes(c), False),
    ("swap committed, old segments all there", _swap, True),
    ("swap, second segment's indexes renamed, not its log", _swap_then(lambda p: _mark_deleted(p, 1, (".index",))), True),
    ("swap, second segment deleted", _swap_then(lambda p: _mark_deleted(p, 1)), True),
    ("swap, second and third deleted", _swap_then(lambda p: _mark_deleted(p, 1), lambda p: _mark_deleted(p, 2)), True),
    (
        "swap, all old segments deleted",
        _swap_then(lambda p: _mark_deleted(p, 1), lambda p: _mark_deleted(p, 2), _first_segment_swapped_out),
        True,
    ),
    (
        "swap renamed in, deleted files left",
        _swap_then(lambda p: _mark_deleted(p, 1), lambda p: _mark_deleted(p, 2), _first_segment_swapped_out, _completed),
        True,
    ),
]


@pytest.mark.parametrize("crash", [name for name, _, _ in CRASHES])
def test_a_crash_at_any_step_of_the_swap_leaves_the_old_segments_or_the_new_one(
    crash: str, logs: tuple[pathlib.Path, pathlib.Path], tmp_path: pathlib.Path
) -> None:
    before, cleaned_path = logs
    build, swapped = next((build, swapped) for name, build, swapped in CRASHES if name == crash)
    data = tmp_path / "data"
    shutil.copytree(before, data)
    partition = data / "c-0"
    old = {base: _rows_of(partition / _name(base, ".log")) for base in range(len(_RECORDS))}
    cleaned = cleaned_path.read_bytes()
    build(partition, cleaned)
    last_of_group_left = (partition / _name(2, ".log")).exists()
    rows = _read_through_broker(data, "c")
    offsets = [offset for offset, _, _ in rows]
    assert offsets == sorted(set(offsets)), f"offsets not increasing or read twice: {offsets}"
    if swapped:
        # The cleaned segment ends before the group's last segment, which the clean emptied: until
        # renamed `.deleted` that one stays as it was (Kafka's LogLoader completes a swap over the
        # segments from its base offset to the offset after its last batch only); its offsets are
        # in no other file either way.
        expected = [*_rows_of(cleaned_path), *(old[2] if last_of_group_left else [])]
    else:
        expected = [row for base in _GROUP for row in old[base]]
    expected += [row for base in range(3, len(_RECORDS)) for row in old[base]]
    assert rows == expected
    assert not [name for name in os.listdir(partition) if name.endswith((".cleaned", ".swap", ".deleted"))]
    # A fetch by offset finds one copy: the files themselves must not hold any offset twice.
    on_disk = [offset for path in sorted(partition.glob("*.log")) for offset, _, _ in _rows_of(path)]
    assert on_disk == sorted(set(on_disk)) == offsets, "a record is in two segments"
