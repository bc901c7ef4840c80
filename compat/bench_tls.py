"""What TLS and SASL cost: produce and consume throughput and a new client's set-up time over
PLAINTEXT, SSL (mutual TLS) and SASL_SSL (SCRAM-SHA-512), on Ottla and on the reference Kafka.

    python -m compat.bench_tls [--broker ottla|kafka ...] [--mib N] [--handshakes N] [--quick]

Each broker is secured as the compat matrix secures it (`compat.harness.secure`: the same
listeners, certificates from `ottla certs`, SCRAM users and ACLs, so both do the same work).
Per listener, confluent-kafka produces N MiB of 1 KiB records (acks=all) to a fresh
one-partition topic, then consumes them from offset 0 by assignment: MB/s each. "first answer"
is the median, over --handshakes new clients, of the time from creating a client to its first
Metadata answer: TCP connect, TLS handshake, SASL login, ApiVersions and Metadata. Ottla's
PLAINTEXT fetch goes by sendfile, its TLS one through OpenSSL a megabyte at a time (asyncio
cannot sendfile a TLS transport, and Python 3.11 has no kernel TLS); Kafka's goes through the
JVM's SSLEngine. `--quick` (8 MiB, 3 clients) shows the benchmark works; figures want the
defaults on a quiet machine.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from compat.harness import ALICE, TOPIC_PREFIX, OttlaBroker, SecureListeners, Target, secure

RECORD = b"x" * 1024
QUIET = {"log_level": 3}  # librdkafka's errors only, not its informational lines
LISTENERS = ("PLAINTEXT", "SSL", "SASL_SSL")


def client_settings(listeners: SecureListeners, listener: str) -> dict[str, str]:
    """confluent-kafka's settings for `listener`: the client certificate on SSL, alice's
    SCRAM-SHA-512 login on SASL_SSL."""
    if listener == "PLAINTEXT":
        return {**QUIET, "bootstrap.servers": listeners.plaintext}
    if listener == "SSL":
        return {**QUIET, "bootstrap.servers": listeners.ssl, "security.protocol": "SSL", "ssl.ca.location": str(listeners.ca),
                "ssl.certificate.location": str(listeners.client_certificate), "ssl.key.location": str(listeners.client_key)}
    return {**QUIET, "bootstrap.servers": listeners.sasl_ssl, "security.protocol": "SASL_SSL", "ssl.ca.location": str(listeners.ca),
            "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": ALICE[0], "sasl.password": ALICE[1]}


def _create(listeners: SecureListeners, topic: str) -> None:
    admin = AdminClient({**QUIET, "bootstrap.servers": listeners.plaintext})  # kept alive until its answer: its futures die with it
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result(timeout=30)


def produce(settings: dict[str, str], topic: str, records: int) -> float:
    producer = Producer({**settings, "acks": "all", "linger.ms": 5, "batch.size": 262144})
    started = time.perf_counter()
    for _ in range(records):
        while True:
            try:
                producer.produce(topic, RECORD)
                break
            except BufferError:
                producer.poll(0.01)
    if producer.flush(120) != 0:
        raise RuntimeError(f"produce to {topic}: records left undelivered")
    elapsed = time.perf_counter() - started
    del producer  # librdkafka closes its connections now, not at the broker's exit
    return records * len(RECORD) / elapsed / 1e6


def consume(settings: dict[str, str], topic: str, records: int) -> float:
    consumer = Consumer({**settings, "group.id": "compat-bench-tls", "enable.auto.commit": False, "fetch.max.bytes": 52428800})
    consumer.assign([TopicPartition(topic, 0, 0)])
    received = 0
    started = time.perf_counter()
    deadline = started + 300
    while received < records:
        if time.perf_counter() > deadline:
            raise RuntimeError(f"consume from {topic}: {received} of {records} records in 300 s")
        batch = consumer.consume(min(10000, records - received), timeout=5)
        received += sum(1 for message in batch if message.error() is None)
    elapsed = time.perf_counter() - started
    consumer.close()
    return records * len(RECORD) / elapsed / 1e6


def first_answer_ms(settings: dict[str, str], clients: int) -> float:
    """Median time from a new client to its first Metadata answer."""
    times = []
    for _ in range(clients):
        started = time.perf_counter()
        client = Producer(settings)
        client.list_topics(timeout=30)
        times.append((time.perf_counter() - started) * 1000)
        del client
    return statistics.median(times)


@contextmanager
def _broker(name: str, work_dir: Path) -> Iterator[Target]:
    if name == "ottla":
        with OttlaBroker(work_dir) as ottla:
            yield ottla
        return
    from compat.__main__ import _reference_kafka  # the matrix's ReferenceKafka target, which `secure` restarts

    with _reference_kafka(work_dir) as kafka:
        yield kafka


def run(name: str, mib: int, handshakes: int) -> list[str]:
    """One table row per listener of broker `name`."""
    rows = []
    with tempfile.TemporaryDirectory(prefix=f"ottla-bench-tls-{name}-") as directory, _broker(name, Path(directory)) as target:
        listeners = secure(target)
        records = mib * 1024
        for listener in LISTENERS:
            settings = client_settings(listeners, listener)
            topic = f"{TOPIC_PREFIX}bench-tls-{listener.lower()}"
            _create(listeners, topic)
            produced = produce(settings, topic, records)
            consumed = consume(settings, topic, records)
            answer = first_answer_ms(settings, handshakes)
            rows.append(f"| {name} | {listener} | {produced:.0f} | {consumed:.0f} | {answer:.1f} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compat.bench_tls", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", action="append", choices=["ottla", "kafka"], help="only these brokers (default both)")
    parser.add_argument("--mib", type=int, default=512, help="data produced, then consumed, over each listener (default 512)")
    parser.add_argument("--handshakes", type=int, default=20, help="new clients timed to their first answer (default 20)")
    parser.add_argument("--quick", action="store_true", help="8 MiB and 3 clients: to see it work, not for figures")
    args = parser.parse_args(argv)
    mib, handshakes = (8, 3) if args.quick else (args.mib, args.handshakes)
    print(f"{mib} MiB of 1 KiB records per listener; first answer: median of {handshakes} new clients")
    print("| broker | listener | produce MB/s | consume MB/s | first answer ms |")
    print("|---|---|---|---|---|")
    for name in args.broker or ["ottla", "kafka"]:
        for row in run(name, mib, handshakes):
            print(row, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
