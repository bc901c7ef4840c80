"""kill -9 of a broker under a producer with acks=all loses nothing that was acknowledged."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaTimeoutError



def _serve(data_dir: Path, port: int = 0) -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "ottla", "serve", "--port", str(port), "--data-dir", str(data_dir)],
        stderr=subprocess.PIPE,
        text=True,
    )
    line = process.stderr.readline()
    if not line.startswith("ottla ready"):
        process.kill()  # a broker that printed something else first must not outlive the test
        process.wait()
        raise AssertionError(f"ottla serve did not start: {line!r}")
    threading.Thread(target=process.stderr.read, daemon=True).start()
    return process, int(line.split()[2].rsplit(":", 1)[1])


def test_sigkill_mid_produce_keeps_every_acknowledged_record(tmp_path):
    data_dir = tmp_path / "data"
    broker, port = _serve(data_dir)
    bootstrap = f"127.0.0.1:{port}"
    acknowledged: dict[int, bytes] = {}
    lock = threading.Lock()

    def on_ack(value: bytes):
        def record(metadata):
            with lock:
                acknowledged[metadata.offset] = value

        return record

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=1, retries=0, max_block_ms=5000)
    try:
        sent = 0
        killed_at = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            value = b"value-%06d" % sent
            producer.send("durable", value=value, partition=0).add_callback(on_ack(value)).add_errback(lambda _: None)
            sent += 1
            if killed_at is None and len(acknowledged) >= 2000:
                broker.send_signal(signal.SIGKILL)  # mid-stream: requests are in flight
                broker.wait()
                killed_at = sent
            if killed_at is not None and sent >= killed_at + 200:
                break
            if sent % 100 == 0:
                time.sleep(0.01)
    finally:
        try:
            producer.close(timeout=5)
        except KafkaTimeoutError:
            pass  # records sent after the kill were never acknowledged; none is counted
    assert len(acknowledged) >= 2000

    broker, _ = _serve(data_dir, port)
    try:
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=3000, enable_auto_commit=False)
        consumer.assign([TopicPartition("durable", 0)])
        consumer.seek_to_beginning()
        stored = [(message.offset, message.value) for message in consumer]
        consumer.close()
    finally:
        broker.send_signal(signal.SIGTERM)
        assert broker.wait(timeout=10) == 0
    offsets = [offset for offset, _ in stored]
    assert offsets == list(range(len(stored)))  # no gaps, no duplicates, in order
    by_offset = dict(stored)
    assert all(by_offset.get(offset) == value for offset, value in acknowledged.items())
    values = [value for _, value in stored]
    assert len(values) == len(set(values))  # nothing written twice
