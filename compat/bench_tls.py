"""Consume throughput over TLS beside PLAINTEXT, on one Ottla with both listeners.

    python -m compat.bench_tls [--mib N]

Starts `ottla serve` in memory with a PLAINTEXT and an SSL listener (certificates from
`ottla certs`), produces N MiB of 1 KiB records through PLAINTEXT with confluent-kafka, then
consumes all of it from offset 0 (assigned, no group) through each listener in turn and prints
MB/s for each and their ratio. The PLAINTEXT fetch goes by sendfile, the TLS one through
OpenSSL (asyncio cannot sendfile a TLS transport); the ratio is what TLS costs the broker and
the client together. Kafka over TLS (the issue's third column) is not driven here yet.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition

TOPIC = "bench-tls"
RECORD = b"x" * 1024


def _start(certs: Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    settings = [
        "listeners=PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL",
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={certs / 'broker-keystore.pem'}",
    ]
    command = [sys.executable, "-m", "ottla", "serve", "--memory", "--set", "message.max.bytes=10485760"]
    for setting in settings:
        command += ["--set", setting]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    for line in process.stderr:
        if line.startswith("ottla ready"):
            listeners = re.search(r"listeners=(\S+)", line)
            assert listeners, line
            return process, {name: address for name, address in (item.split("://") for item in listeners.group(1).split(","))}
    raise RuntimeError("ottla serve did not start")


def _consume(settings: dict[str, str], total: int) -> float:
    consumer = Consumer({**settings, "group.id": "bench-tls", "enable.auto.commit": False, "fetch.max.bytes": 52428800})
    consumer.assign([TopicPartition(TOPIC, 0, 0)])
    received = 0
    started = time.perf_counter()
    while received < total:
        for message in consumer.consume(10000, timeout=5):
            if message.error() is None:
                received += 1
    elapsed = time.perf_counter() - started
    consumer.close()
    return total * len(RECORD) / elapsed / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compat.bench_tls", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=512, help="data produced, then consumed over each listener (default 512)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ottla-bench-tls-") as directory:
        certs = Path(directory)
        subprocess.run([sys.executable, "-m", "ottla", "certs", str(certs)], check=True, stdout=subprocess.DEVNULL)
        process, addresses = _start(certs)
        try:
            total = args.mib * 1024
            producer = Producer({"bootstrap.servers": addresses["PLAINTEXT"], "linger.ms": 5, "batch.size": 1048576})
            for _ in range(total):
                while True:
                    try:
                        producer.produce(TOPIC, RECORD)
                        break
                    except BufferError:
                        producer.poll(0.01)
            producer.flush()
            del producer  # librdkafka closes its connections now, not at the broker's exit
            plaintext = _consume({"bootstrap.servers": addresses["PLAINTEXT"]}, total)
            tls = _consume({"bootstrap.servers": addresses["SSL"], "security.protocol": "SSL", "ssl.ca.location": str(certs / "ca.pem")}, total)
        finally:
            process.terminate()
            process.wait()
    print(f"| consume, {args.mib} MiB of 1 KiB records | PLAINTEXT {plaintext:.0f} MB/s | SSL {tls:.0f} MB/s | SSL/PLAINTEXT {tls / plaintext:.0%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
