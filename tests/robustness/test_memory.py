"""Issue 8: after a burst of load the broker's memory returns to its idle level. An `ottla
serve` process is measured from outside (its RSS in /proc) while real librdkafka producers
and group consumers come, move some 80 MB, and go."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from confluent_kafka import Consumer, Producer
from kafka.admin import KafkaAdminClient, NewTopic

from compat import procfs
from ottla.server.memory import CHECK_INTERVAL_S

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MIB = 1 << 20
QUIET = {"log_level": 0, "logger": lambda *_: None}


def _produce_then_consume(bootstrap: str, worker: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, **QUIET})
    for n in range(1500):
        while True:
            try:
                producer.produce("burst", bytes([worker]) * 100 * (n % 80 + 1))
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"burst-{worker % 8}", "auto.offset.reset": "earliest", **QUIET})
    consumer.subscribe(["burst"])
    empty_polls = 0
    while empty_polls < 3:
        empty_polls = 0 if consumer.consume(1000, timeout=1) else empty_polls + 1
    consumer.close()


@pytest.mark.slow
def test_memory_returns_to_idle_after_a_burst_of_load(tmp_path):
    """60 clients produce 1,500 records of 0.1-8 KB each and read the topic back. The
    broker's resident memory went from 33 MiB idle to 93 MiB and stayed there, all of it
    free inside malloc; the broker hands it back, and is within a few MiB of idle again."""
    process = subprocess.Popen([sys.executable, "-m", "ottla", "serve", "--port", "0", "--data-dir", str(tmp_path / "data")],
                               stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        bootstrap = process.stderr.readline().split()[2].split("=", 1)[1]
        threading.Thread(target=process.stderr.read, daemon=True).start()
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.create_topics([NewTopic("burst", 8, 1)])
        admin.close()
        time.sleep(1)
        idle = procfs.rss_bytes(process.pid)
        workers = [threading.Thread(target=_produce_then_consume, args=(bootstrap, n)) for n in range(60)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        peak = procfs.rss_bytes(process.pid)
        deadline = time.monotonic() + 3 * CHECK_INTERVAL_S
        while (after := procfs.rss_bytes(process.pid)) > idle + 8 * MIB and time.monotonic() < deadline:
            time.sleep(0.5)
        assert after <= idle + 8 * MIB, f"idle {idle / MIB:.1f} MiB, after the load {after / MIB:.1f} (peak {peak / MIB:.1f})"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
