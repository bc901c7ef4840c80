"""A full disk under a live broker: producers get KAFKA_STORAGE_ERROR, reads keep working,
writes resume once space is back, and no acknowledged record is lost across a restart.

The data dir sits on a real 4 MiB tmpfs mounted for the test (as root, or in a user namespace)."""

from __future__ import annotations

import os
import pathlib
import shlex
import subprocess
from collections.abc import Iterator

import pytest
from kafka.protocol.consumer.fetch import FetchRequest, FetchResponse
from kafka.protocol.consumer.offsets import ListOffsetsRequest, ListOffsetsResponse
from kafka.protocol.metadata.metadata import MetadataRequest, MetadataResponse
from kafka.protocol.producer import ProduceRequest, ProduceResponse
from kafka_wire import RawClient, build_records, make, read_records

from ottla.testing import running_broker
from unavailable import unavailable

TOPIC = "full"
PARTITIONS = 2
VALUE = 3000


@pytest.fixture
def small_fs(tmp_path: pathlib.Path) -> Iterator[pathlib.Path]:
    """A 4 MiB tmpfs: mounted here as root; otherwise in a user and mount namespace of a
    helper process, whose mounts this process reaches through /proc/<helper>/root."""
    mountpoint = tmp_path / "fs"
    mountpoint.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mountpoint)]
    if subprocess.run(mount, capture_output=True).returncode == 0:
        try:
            yield mountpoint
        finally:
            subprocess.run(["umount", "-l", str(mountpoint)], check=True)
        return
    # The helper holds the namespace until its stdin closes.
    helper = subprocess.Popen(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", f"{shlex.join(mount)} && echo mounted && exec cat"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if helper.stdout.readline().strip() != "mounted":
            why = f"cannot mount a small tmpfs, as root or in a user namespace: {helper.stderr.read().strip()}"
            unavailable(why)
        yield pathlib.Path(f"/proc/{helper.pid}/root{mountpoint}")
    finally:
        helper.stdin.close()
        helper.wait(10)


def produce(client: RawClient, partition: int, value: bytes) -> tuple[int, int]:
    body = dict(acks=-1, timeout_ms=5000, transactional_id=None,
                topic_data=[dict(name=TOPIC, partition_data=[dict(index=partition, records=build_records(2, [(b"k", value)]))])])
    answer = client.call(make(ProduceRequest, body), 9, ProduceResponse).responses[0].partition_responses[0]
    return answer.error_code, answer.base_offset


def fetch_all(client: RawClient, partition: int) -> list[tuple[int, bytes, bytes]]:
    records: list[tuple[int, bytes, bytes]] = []
    while True:
        start = records[-1][0] + 1 if records else 0
        topic = dict(topic=TOPIC, partitions=[dict(partition=partition, fetch_offset=start, partition_max_bytes=1 << 20,
                                                    current_leader_epoch=-1, log_start_offset=-1, last_fetched_epoch=-1)])
        body = dict(replica_id=-1, max_wait_ms=0, min_bytes=0, max_bytes=1 << 20, isolation_level=0, session_id=0,
                    session_epoch=-1, topics=[topic], forgotten_topics_data=[], rack_id="")
        answer = client.call(make(FetchRequest, body), 12, FetchResponse).responses[0].partitions[0]
        assert answer.error_code == 0
        batch = [record for record in read_records(bytes(answer.records or b"")) if record[0] >= start]
        if not batch:
            return records
        records.extend(batch)


def log_end(client: RawClient, partition: int) -> int:
    request = make(ListOffsetsRequest, dict(replica_id=-1, isolation_level=0, timeout_ms=1000, topics=[dict(
        name=TOPIC, partitions=[dict(partition_index=partition, timestamp=-1, max_num_offsets=1, current_leader_epoch=-1)])]))
    answer = client.call(request, 5, ListOffsetsResponse).topics[0].partitions[0]
    assert answer.error_code == 0
    return answer.offset


def test_full_disk_fails_produce_keeps_reads_and_recovers(small_fs: pathlib.Path) -> None:
    acked: dict[int, dict[int, bytes]] = {p: {} for p in range(PARTITIONS)}
    counter = iter(range(1 << 30))

    def attempt(client: RawClient, partition: int) -> int:
        value = b"%08d" % next(counter) + b"v" * VALUE
        error, offset = produce(client, partition, value)
        if error == 0:
            acked[partition][offset] = value
        return error

    with running_broker(data_dir=str(small_fs / "data"), log_segment_bytes=100_000) as broker:
        broker.create_topic(TOPIC, PARTITIONS)
        with RawClient(broker.bootstrap_servers) as client:
            for partition in range(PARTITIONS):
                assert attempt(client, partition) == 0
            # Leave ~300 KiB free: enough for a few segment rolls before the disk runs out.
            free = os.statvfs(small_fs).f_bavail * os.statvfs(small_fs).f_frsize
            filler = small_fs / "filler"
            filler.write_bytes(b"\0" * max(0, free - 300_000))

            failed: set[int] = set()
            for _ in range(400):
                for partition in range(PARTITIONS):
                    error = attempt(client, partition)
                    assert error in (0, 56), error  # 56: KAFKA_STORAGE_ERROR
                    if error:
                        failed.add(partition)
                if failed == set(range(PARTITIONS)):
                    break
            assert failed == set(range(PARTITIONS)), "the disk never filled"

            # Full: every write fails per partition, reads keep working on the same connection.
            for partition in range(PARTITIONS):
                assert attempt(client, partition) == 56
                assert log_end(client, partition) == len(acked[partition])
                assert [(o, v) for o, _, v in fetch_all(client, partition)] == sorted(acked[partition].items())
            metadata = client.call(make(MetadataRequest, dict(topics=[dict(name=TOPIC)], allow_auto_topic_creation=False)), 1, MetadataResponse)
            assert metadata.topics[0].error_code == 0 and len(metadata.topics[0].partitions) == PARTITIONS

            filler.unlink()
            for _ in range(5):
                for partition in range(PARTITIONS):
                    assert attempt(client, partition) == 0

        broker.restart()
        with RawClient(broker.bootstrap_servers) as client:
            for partition in range(PARTITIONS):
                records = fetch_all(client, partition)
                assert [offset for offset, _, _ in records] == list(range(len(records)))
                assert {o: v for o, _, v in records} == acked[partition]
                assert attempt(client, partition) == 0
