"""The embedding API and the pytest plugin, used the way a project's own tests would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import venv
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KafkaTopicPartition

from ottla import Broker
from ottla.testing import running_broker
from compat.harness import wait_for

REPO = Path(__file__).resolve().parents[2]


def test_kafka_python_round_trip_on_a_fresh_broker(ottla_broker_fn):
    ottla_broker_fn.create_topic("greetings", partitions=2)
    producer = KafkaProducer(bootstrap_servers=ottla_broker_fn.bootstrap_servers)
    for i in range(10):
        producer.send("greetings", key=b"k%d" % i, value=b"hello %d" % i, partition=i % 2)
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=ottla_broker_fn.bootstrap_servers, consumer_timeout_ms=2000)
    consumer.assign([KafkaTopicPartition("greetings", 0), KafkaTopicPartition("greetings", 1)])
    consumer.seek_to_beginning()
    values = sorted(message.value for message in consumer)
    consumer.close()
    assert values == sorted(b"hello %d" % i for i in range(10))


def test_session_broker_and_bootstrap_agree(ottla_broker, ottla_bootstrap):
    assert ottla_bootstrap == ottla_broker.bootstrap_servers


def _open_descriptors() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_nothing_outlives_the_context(tmp_path):
    """Sockets, files and threads: those that send large fetch answers and those that remove a
    deleted topic's files included."""
    threads_before = set(threading.enumerate())
    fds_before = _open_descriptors()
    with running_broker(data_dir=tmp_path / "data", log_segment_delete_delay_ms=0) as broker:
        broker.create_topic("leak-check", partitions=3)
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, batch_size=1 << 20, linger_ms=50)
        for _ in range(LARGE_ANSWER_RECORDS):
            producer.send("leak-check", b"v" * 1000, partition=0)
        producer.flush()
        producer.close()
        consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap_servers, max_partition_fetch_bytes=4 << 20, consumer_timeout_ms=10000)
        consumer.assign([KafkaTopicPartition("leak-check", 0)])
        consumer.seek_to_beginning()
        assert sum(1 for _, message in zip(range(LARGE_ANSWER_RECORDS), consumer)) == LARGE_ANSWER_RECORDS
        consumer.close()
        broker.create_topic("removed", partitions=1)
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        admin.delete_topics(["removed"])
        admin.close()
        assert wait_for(lambda: not list((tmp_path / "data").glob("removed-*")), timeout=30)
        assert len(_open_descriptors()) > len(fds_before)  # the broker did hold sockets and files
        assert any(thread.name.startswith("ottla-sendfile") for thread in set(threading.enumerate()) - threads_before)
    assert set(threading.enumerate()) <= threads_before
    assert _open_descriptors() <= fds_before


# Records of 1 KB enough for a fetch answer past THREAD_SENDFILE_BYTES (256 KiB): the sendfile workers send it.
LARGE_ANSWER_RECORDS = 600


async def test_async_broker_with_aiokafka_and_restart(tmp_path):
    async with Broker(port=0, data_dir=tmp_path / "data", group_initial_rebalance_delay_ms=0) as broker:
        broker.create_topic("async-topic")
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers)
        await producer.start()
        await producer.send_and_wait("async-topic", b"before restart")
        await producer.stop()
        port = broker.port
        await broker.restart()
        assert broker.port == port
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap_servers)
        await consumer.start()
        consumer.assign([TopicPartition("async-topic", 0)])
        await consumer.seek_to_beginning()
        batch = await consumer.getmany(timeout_ms=5000)
        await consumer.stop()
    assert [m.value for messages in batch.values() for m in messages] == [b"before restart"]


def _serve(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ottla", "serve", "--port", "0", "--memory", *args], stderr=subprocess.PIPE, text=True)


def _bootstrap(process: subprocess.Popen) -> str:
    for line in process.stderr:
        if line.startswith("ottla ready"):
            return line.split()[2].split("=", 1)[1]
    raise AssertionError("the broker never became ready")


def test_debug_log_has_one_line_per_request_in_json():
    process = _serve("--log-level", "debug", "--log-format", "json")
    try:
        bootstrap = None
        lines = []
        for line in process.stderr:
            if line.startswith("ottla ready"):
                bootstrap = line.split()[2].split("=", 1)[1]
                break
            lines.append(json.loads(line))
        producer = KafkaProducer(bootstrap_servers=bootstrap, client_id="log-test")
        producer.send("logged", b"v").get(timeout=10)
        producer.close()
    finally:
        process.terminate()
        rest = process.communicate(timeout=10)[1]
    entries = lines + [json.loads(line) for line in rest.splitlines() if line.startswith("{")]
    requests = [e["message"] for e in entries if e["logger"] == "ottla.request"]
    assert any(m.startswith("PRODUCE v") and "'log-test'" in m and "error_code=0" in m for m in requests)
    assert any(e["logger"] == "ottla.connection" and e["message"].startswith("connection opened") for e in entries)


def test_a_clients_mistake_leaves_no_traceback_at_info():
    import socket
    import struct

    process = _serve("--log-level", "info")
    try:
        host, port = _bootstrap(process).rsplit(":", 1)
        with socket.create_connection((host, int(port))) as rogue:
            rogue.sendall(struct.pack(">ihhih", 10, 0, 9, 1, -1))  # Produce v9 with no body
            rogue.recv(10)
    finally:
        process.terminate()
        log = process.communicate(timeout=10)[1]
    assert "malformed request" in log
    assert "Traceback" not in log


@pytest.mark.slow
def test_plugin_works_in_a_fresh_venv_without_conftest(tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "-q", str(REPO), "pytest"], check=True, timeout=600)
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_uses_fixture.py").write_text(
        "from kafka import KafkaProducer\n"
        "def test_produce(ottla_bootstrap):\n"
        "    producer = KafkaProducer(bootstrap_servers=ottla_bootstrap)\n"
        "    assert producer.send('t', b'v').get(timeout=10).offset == 0\n"
    )
    result = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_running_broker_keeps_its_data_in_memory_unless_given_a_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """It leaves nothing behind: no ./ottla-data in the working directory, which two of them
    (pytest-xdist workers, parallel scripts) would otherwise share."""
    monkeypatch.chdir(tmp_path)
    with running_broker() as broker:
        assert broker.broker is not None and broker.broker.storage is not None and broker.broker.storage.data_dir is None
    assert list(tmp_path.iterdir()) == []


async def test_a_broker_whose_start_fails_leaves_nothing_open(tmp_path: Path) -> None:
    """An HTTP port taken: the start raises after the storage and the Kafka listener opened;
    both are closed again (the directory's lock given back, the port no longer accepting)."""
    import socket

    from ottla import Broker

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        failed = Broker(port=0, http_port=port, data_dir=str(tmp_path))
        with pytest.raises(OSError):
            await failed.start()
        async with Broker(port=0, data_dir=str(tmp_path)) as again:  # the directory is free again
            assert again.bootstrap_servers
    assert not failed.connections and failed.storage is None
