"""PostgreSQL out of disk under a live broker: the batches' tablespace sits on a real 2 MiB tmpfs
(mounted for the test, as root), so appends fail with PostgreSQL's disk-full error. Producers get
KAFKA_STORAGE_ERROR (retriable, as Kafka answers for a failed log directory), reads keep working,
nothing is half-appended, and appends resume by themselves once the filesystem has room again."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from kafka import KafkaProducer, TopicPartition
from kafka.errors import KafkaStorageError
from test_postgres_broker import _kafka_python_values
from unavailable import unavailable

from compat.harness import OttlaBroker
from compat.postgres import SERVICE_USER, PostgresUnavailable, PrivatePostgres

pytestmark = pytest.mark.external

TOPIC = "pg-full"
VALUE = bytes(range(256)) * 80  # 20 KiB, stored out of line (TOAST) in the tablespace too


@contextmanager
def _small_fs(server: PrivatePostgres) -> Iterator[pathlib.Path]:
    """A 2 MiB tmpfs in the server's own directory (PostgreSQL's user must reach it), owned by
    that user; the server must see the mount, so it is mounted in this namespace: root only."""
    if os.geteuid() != 0:
        unavailable("mounting a small tmpfs for PostgreSQL's tablespace needs root")
    mountpoint = server.directory / "small"
    mountpoint.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mountpoint)], capture_output=True, text=True)
    if mounted.returncode != 0:
        unavailable(f"cannot mount a small tmpfs: {mounted.stderr.strip()}")
    try:
        shutil.chown(mountpoint, user=SERVICE_USER)
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=True)


def _read_all(bootstrap: str, expected: int) -> list[tuple[int, bytes]]:
    return _kafka_python_values(bootstrap, TopicPartition(TOPIC, 0), expected, fetch_max_bytes=64 << 20)


def test_a_full_database_disk_answers_kafka_storage_error_and_appends_resume_with_room() -> None:
    try:
        server = PrivatePostgres()
    except PostgresUnavailable as exc:
        unavailable(str(exc))
    with server, _small_fs(server) as small_fs, OttlaBroker(storage=server.url, ready_timeout=60, stop_timeout=30) as broker:
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks=1, enable_idempotence=False, retries=0, max_request_size=1 << 20)
        try:
            assert producer.send(TOPIC, b"first", partition=0).get(timeout=30).offset == 0
            server.psql(f"CREATE TABLESPACE small LOCATION '{small_fs}'", f"\\connect {server.database}", "ALTER TABLE batches SET TABLESPACE small")
            acknowledged = [b"first"]
            refused = None
            for index in range(1000):  # 2 MiB holds about a hundred of them
                try:
                    offset = producer.send(TOPIC, VALUE + b"%d" % index, partition=0).get(timeout=30).offset
                except KafkaStorageError as exc:
                    refused = exc
                    break
                assert offset == len(acknowledged)
                acknowledged.append(VALUE + b"%d" % index)
            assert refused is not None, "2 MiB never filled"
            assert len(acknowledged) > 1
            # Still full: refused again, the same way; reads are untouched.
            with pytest.raises(KafkaStorageError):
                producer.send(TOPIC, VALUE, partition=0).get(timeout=30)
            assert _read_all(broker.bootstrap, len(acknowledged)) == list(enumerate(acknowledged))

            subprocess.run(["mount", "-o", "remount,size=64m", str(small_fs)], check=True)
            # Room again: the next append takes the next offset (nothing refused was half-stored).
            assert producer.send(TOPIC, b"after", partition=0).get(timeout=30).offset == len(acknowledged)
        finally:
            producer.close()
        acknowledged.append(b"after")
        assert _read_all(broker.bootstrap, len(acknowledged)) == list(enumerate(acknowledged))
        assert "could not extend file" in server.server_log() or "No space left" in server.server_log()
        assert not [line for line in broker.log_lines() if "handler failed" in line or "Traceback" in line]
