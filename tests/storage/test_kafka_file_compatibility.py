"""Kafka's own kafka-dump-log (DumpLogSegments) reads a partition directory we wrote:
every codec, legacy conversion, LogAppendTime, control batches, compaction rewrites,
and both indexes, which it checks against the log. Needs the reference Kafka
(`python -m compat.kafka --fetch`, part of the README's test command); skipped
without it, failed without it under CI."""

from __future__ import annotations

import os
import pathlib
import re

import pytest
from kafka.record import MemoryRecordsBuilder

from compat import kafka as reference
from storage import Storage
from wire.records import Compression, Record, build_batch


def require_reference_kafka() -> None:
    if not reference.is_fetched():
        why = f"reference Kafka {reference.KAFKA_VERSION} not fetched: run `python -m compat.kafka --fetch`"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)


def write_partition(root: pathlib.Path) -> pathlib.Path:
    """A compacted topic's partition directory with a batch of each kind."""
    storage = Storage.open(root)
    storage.create_topic("t", 1, {"index.interval.bytes": "150", "cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0"})
    log = storage.partition("t", 0)
    for round_number, keys in enumerate((4, 2)):  # the second round supersedes half the first's keys
        for codec in Compression:
            records = [Record(i, 1_700_000_000_000 + i, b"key-%d-%d" % (codec, i), b"v%d " % round_number * 40, (("h", b"x"),)) for i in range(keys)]
            log.append(build_batch(records, compression=codec))
        legacy = MemoryRecordsBuilder(magic=1, compression_type=1, batch_size=1 << 16)
        legacy.append(timestamp=1_700_000_000_100, key=b"legacy", value=b"from a v1 message set", headers=[])
        legacy.close()
        log.append(bytes(legacy.buffer()))
    commit_marker = build_batch([Record(0, 1_700_000_000_200, b"\x00\x00\x00\x01", b"\x00\x00\x00\x00\x00\x00")], producer_id=7, producer_epoch=0, transactional=True, control=True)
    log.append(commit_marker, from_client=False)
    log.roll()
    log.append(build_batch([Record(0, 1_700_000_000_300, b"tail", b"in the active segment")]))
    assert storage.compact(now_ms=1_700_000_010_000) > 0
    storage.close()
    return root / "t-0"


def test_kafka_dump_log_reads_every_batch_and_finds_the_indexes_consistent(tmp_path: pathlib.Path) -> None:
    require_reference_kafka()
    directory = write_partition(tmp_path)
    files = sorted(str(path) for path in directory.iterdir() if path.suffix in (".log", ".index", ".timeindex"))
    dumped = reference.run_tool("kafka-dump-log", "--files", ",".join(files), "--deep-iteration")
    assert dumped.returncode == 0, dumped.stderr
    output = dumped.stdout
    batches = re.findall(r"^baseOffset: (\d+) lastOffset: (\d+) count: (\d+).*isvalid: (\w+)", output, re.MULTILINE)
    assert batches and all(valid == "true" for *_, valid in batches)
    assert {"none", "gzip", "snappy", "lz4", "zstd"} <= set(re.findall(r"compresscodec: (\w+)", output))
    assert "isControl: true" in output
    # The compacted first segment keeps each batch's offsets, with fewer records in some.
    assert any(int(last) - int(base) + 1 > int(count) for base, last, count, _ in batches)
    for problem in ("mismatch", "Mismatch", "not found", "Exception", "corrupt"):
        assert problem not in output + dumped.stderr
    assert output.count("Dumping") == len(files)
