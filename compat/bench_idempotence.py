"""What idempotence and transactions cost on produce throughput (issue 5).

    python -m compat.bench_idempotence [--records 1000000] [--size 100] [--rounds 3]

Two layers, each measured with the guarantee off and on, best of `--rounds`:

* broker: PartitionLog.append in this process (memory log) of 16-record batches, plain vs
  with a producer id and sequence (the producer state check and record on each append),
  vs transactional. This isolates the broker's own added work per batch.
* end to end: librdkafka (confluent-kafka) producing `--records` records of `--size` bytes
  over a socket to `ottla serve`, acks=all, with enable.idempotence false vs true; the
  same with kafka-python (a twentieth of the records: it is that much slower). The ratio
  is the figure that matters to a user.

Not a test: figures depend on the machine; the off rows are the baseline they sit beside.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Callable

from compat.harness import OttlaBroker
from ottla.storage import LogConfig, PartitionLog
from ottla.wire.records import Record, build_batch

RERUN = "python -m compat.bench_idempotence"


def _best(rounds: int, run: Callable[[], float]) -> float:
    return min(run() for _ in range(rounds))


def broker_append(batches: int, size: int, producer: str) -> float:
    """Seconds to append `batches` 16-record batches to a fresh memory log."""
    log = PartitionLog(None, LogConfig.from_overrides({}))
    records = [Record(i, 1000, None, b"x" * size) for i in range(16)]
    if producer == "none":
        prebuilt = [build_batch(records) for _ in range(batches)]
    else:
        transactional = producer == "transactional"
        prebuilt = [build_batch(records, producer_id=1, producer_epoch=0, base_sequence=i * 16, transactional=transactional) for i in range(batches)]
    start = time.perf_counter()
    for batch in prebuilt:
        log.append(batch)
    return time.perf_counter() - start


def confluent_produce(bootstrap: str, topic: str, records: int, size: int, idempotent: bool) -> float:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": idempotent, "acks": "all", "linger.ms": 5})
    payload = b"x" * size
    producer.produce(topic, payload)  # connect and fetch metadata outside the timing
    producer.flush(30)
    start = time.perf_counter()
    for _ in range(records):
        while True:
            try:
                producer.produce(topic, payload)
                break
            except BufferError:
                producer.poll(0.01)
    if producer.flush(120) != 0:
        raise RuntimeError("records left undelivered")
    return time.perf_counter() - start


def kafka_python_produce(bootstrap: str, topic: str, records: int, size: int, idempotent: bool) -> float:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=idempotent, acks="all", linger_ms=5)
    payload = b"x" * size
    producer.send(topic, payload).get(timeout=30)
    start = time.perf_counter()
    for _ in range(records):
        producer.send(topic, payload)
    producer.flush(timeout=300)
    elapsed = time.perf_counter() - start
    producer.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    batches = max(args.records // 160, 1000)
    print(f"broker: PartitionLog.append, {batches} batches of 16 x {args.size} B, memory log, best of {args.rounds}")
    kinds = ("none", "idempotent", "transactional")
    # Interleaved rounds, so a noisy moment of the machine does not land on one kind only.
    timings = {kind: min(times) for kind, times in zip(kinds, zip(*([broker_append(batches, args.size, k) for k in kinds] for _ in range(args.rounds))))}
    plain = timings["none"]
    for label, producer in (("no producer id", "none"), ("idempotent", "idempotent"), ("transactional", "transactional")):
        seconds = timings[producer]
        print(f"  {label:16} {batches / seconds:>10,.0f} batches/s  {seconds / batches * 1e6:6.1f} µs/batch  ({seconds / plain:.2f}x)")

    print(f"end to end: {args.records} records of {args.size} B, acks=all, to `ottla serve` (on disk), best of {args.rounds}")
    with OttlaBroker() as broker:
        for name, produce, scale in (("librdkafka", confluent_produce, 1), ("kafka-python", kafka_python_produce, 20)):
            records = max(args.records // scale, 1000)
            base = None
            for idempotent in (False, True):
                def run(idempotent: bool = idempotent) -> float:
                    topic = f"bench-{name}-{idempotent}-{time.monotonic_ns()}"
                    return produce(broker.bootstrap, topic, records, args.size, idempotent)

                seconds = _best(args.rounds, run)
                base = base or seconds
                label = f"{name} idempotence={'on' if idempotent else 'off'}"
                print(f"  {label:30} {records / seconds:>10,.0f} records/s  {records * args.size / seconds / 1e6:6.1f} MB/s  ({seconds / base:.2f}x)")
    print(f"rerun: {RERUN} --records {args.records} --size {args.size} --rounds {args.rounds}")


if __name__ == "__main__":
    sys.exit(main())
