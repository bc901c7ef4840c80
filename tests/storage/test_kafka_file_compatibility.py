"""Partition directories are interchangeable with Apache Kafka's, both ways:

* Kafka's own kafka-dump-log (DumpLogSegments) reads a partition we wrote (every
  codec, legacy conversion, control batches, compaction rewrites) and checks both
  indexes against the log;
* a partition the reference Kafka broker wrote opens here with every byte readable,
  and the indexes our recovery rebuilds from its log equal the ones Kafka wrote.

Needs the reference Kafka (`python -m compat.kafka --fetch`, part of the README's
test command); skipped without it, failed without it under CI."""

from __future__ import annotations

import base64
import json
import pathlib
import re
import shutil

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.record import MemoryRecordsBuilder

from compat import kafka as reference
from ottla.storage import FileRegion, Storage
from ottla.wire.records import Compression, Record, build_batch
from unavailable import unavailable


def require_reference_kafka() -> None:
    if not reference.is_fetched():
        why = f"reference Kafka {reference.KAFKA_VERSION} not fetched: run `python -m compat.kafka --fetch`"
        unavailable(why)


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


def test_a_partition_kafka_wrote_opens_here_and_our_rebuilt_indexes_equal_kafkas(tmp_path: pathlib.Path) -> None:
    require_reference_kafka()
    written = tmp_path / "kafka-wrote"
    with reference.ReferenceKafka() as broker:
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        admin.create_topics([NewTopic("kw", 1, 1, topic_configs={"index.interval.bytes": "300"})])
        admin.close()
        producer = KafkaProducer(
            bootstrap_servers=broker.bootstrap_servers, compression_type="gzip", max_in_flight_requests_per_connection=1
        )
        for i in range(60):  # timestamps out of order now and then, so the time index skips some
            producer.send("kw", key=b"k%d" % (i % 7), value=b"value %d " % i * (i % 5 + 1), timestamp_ms=1_700_000_000_000 + i * 10 - i % 3 * 15)
            if i % 3 == 2:
                producer.flush()  # one batch per append, so append and recovery index alike
        producer.close()
        broker.stop()  # a clean shutdown trims the preallocated index files
        shutil.copytree(broker.dir / "data" / "kw-0", written)
    segment = "00000000000000000000"

    root = tmp_path / "ottla"
    shutil.copytree(written, root / "kw-0")
    encoded_id = (written / "partition.metadata").read_text().split("topic_id: ")[1].strip()
    topic = {"name": "kw", "topic_id": base64.urlsafe_b64decode(encoded_id + "==").hex(), "partitions": 1, "configs": {"index.interval.bytes": "300"}}
    (root / "kw.topic.json").write_text(json.dumps(topic))
    for suffix in (".index", ".timeindex"):
        (root / "kw-0" / (segment + suffix)).unlink()

    storage = Storage.open(root)
    log = storage.partition("kw", 0)
    assert (log.log_start_offset, log.log_end_offset) == (0, 60)
    chunks = log.read(0, 1 << 20).chunks
    assert b"".join(c.read() if isinstance(c, FileRegion) else bytes(c) for c in chunks) == (written / (segment + ".log")).read_bytes()
    assert log.offset_for_timestamp(1_700_000_000_300) == (1_700_000_000_300, 30)
    storage.close()
    for suffix in (".index", ".timeindex"):
        assert (root / "kw-0" / (segment + suffix)).read_bytes() == (written / (segment + suffix)).read_bytes(), suffix
