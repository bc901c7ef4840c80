"""Share-group throughput: 1, 3 and 10 consumers draining one partition, on Ottla or Kafka.

    python -m compat.bench_share [--consumers 1 3 10] [--records 20000] [--size 100] [--broker ottla|kafka]

The broker is an `ottla serve --memory` process, or the reference Kafka 4.4 with
`--broker kafka`. Each run creates a one-partition topic, starts the share group at the
log's start (the group config share.auto.offset.reset=earliest, as
`kafka-configs --entity-type groups` sets it), produces `--records` records, then starts N
confluent-kafka ShareConsumers (implicit
acknowledgement: a poll accepts what the previous one returned) in threads of this
process, and times from the first record received to the last one: records/s. Once that
backlog is drained, the group has formed and its consumers poll on; probe records are
then produced one at a time: the delivery latency (record timestamp to receipt) median and p99
are theirs (the backlog's would measure how long the group took to form). Each record
received more than once is counted and reported: with no consumer failing, there should be
none.

librdkafka does its network work on its own threads, so N consumers in one process are
N clients; the Python threads only count what they receive.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from confluent_kafka import Producer, ShareConsumer
from confluent_kafka.admin import AdminClient, NewTopic

from compat.sockets import read_frame
from ottla.wire.api import ApiKey
from ottla.wire.protocol import decode_response, encode_request

REPO = Path(__file__).resolve().parents[1]


def _call(bootstrap: str, api: ApiKey, version: int, body: dict[str, Any]) -> dict[str, Any]:
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(encode_request(api, version, 1, body, client_id="bench-share"))
        frame = read_frame(sock)
        assert frame is not None
        return decode_response(api, version, frame)[1]


def _start_at_earliest(bootstrap: str, group: str) -> None:
    """share.auto.offset.reset=earliest on the group before its first member joins. Not
    AlterShareGroupOffsets: Kafka answers it for a topic created a moment before with
    UNKNOWN_TOPIC_OR_PARTITION in the partition (error 0 at the top), and a group left at
    the default `latest` then waits for records after the ones produced, for ever."""
    body = {"validate_only": False, "resources": [{"resource_type": 32, "resource_name": group, "configs": [
        {"name": "share.auto.offset.reset", "config_operation": 0, "value": "earliest"}]}]}
    answer = _call(bootstrap, ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, body)["responses"][0]
    assert answer["error_code"] == 0, answer


def run(bootstrap: str, consumers: int, records: int, size: int) -> dict[str, float]:
    topic, group = f"bench-share-{uuid.uuid4().hex[:8]}", f"bench-share-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result()
    _start_at_earliest(bootstrap, group)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "batch.num.messages": 1000})
    payload = b"x" * size
    for index in range(records):
        producer.produce(topic, payload, key=b"%d" % index, partition=0)
        if index % 10000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0
    received: Counter[bytes] = Counter()
    latencies: list[float] = []
    lock = threading.Lock()
    first: list[float] = []
    last: list[float] = []
    drained = threading.Event()
    done = threading.Event()
    probes = max(50, min(500, records // 10))

    def work() -> None:
        consumer = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": group, "log_level": 3})
        consumer.subscribe([topic])
        while not done.is_set():
            batch = [m for m in consumer.poll(0.2) or [] if m.error() is None]
            now = time.time()
            with lock:
                if batch and not first:
                    first.append(time.monotonic())
                for message in batch:
                    key = message.key()
                    received[key] += 1
                    if key.startswith(b"probe-"):
                        latencies.append(now * 1000 - message.timestamp()[1])
                if len(received) >= records and not drained.is_set():
                    last.append(time.monotonic())
                    drained.set()
                if len(received) >= records + probes:
                    done.set()
        # librdkafka 2.16's close() leaves the group without the last poll's acknowledgements:
        # send them first, or those records go to the consumers still running.
        consumer.commit_sync()
        consumer.close()

    threads = [threading.Thread(target=work) for _ in range(consumers)]
    for thread in threads:
        thread.start()
    if drained.wait(600):
        probe = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
        for index in range(probes):
            probe.produce(topic, payload, key=b"probe-%d" % index, partition=0)
            probe.flush(10)
        done.wait(60)
    done.set()
    for thread in threads:
        thread.join()
    elapsed = last[0] - first[0] if first and last else float("nan")
    latencies.sort()
    return {
        "records_per_s": records / elapsed if elapsed else 0.0,
        "latency_median_ms": statistics.median(latencies) if latencies else float("nan"),
        "latency_p99_ms": latencies[int(len(latencies) * 0.99) - 1] if latencies else float("nan"),
        "redelivered": float(sum(count - 1 for count in received.values())),
        "missing": float(records + probes - len(received)),
    }


def _ottla() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([sys.executable, "-m", "ottla", "serve", "--memory", "--port", "0"],
                               stderr=subprocess.PIPE, text=True, cwd=REPO)
    assert process.stderr is not None
    line = process.stderr.readline()
    while line and not line.startswith("ottla ready"):
        line = process.stderr.readline()
    threading.Thread(target=process.stderr.read, daemon=True).start()
    return process, line.split()[2].split("=", 1)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--consumers", type=int, nargs="+", default=[1, 3, 10])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--broker", choices=["ottla", "kafka"], default="ottla")
    args = parser.parse_args()
    if args.broker == "kafka":
        from compat import kafka

        with kafka.ReferenceKafka() as reference:
            _report(reference.bootstrap_servers, args)
        return
    process, bootstrap = _ottla()
    try:
        _report(bootstrap, args)
    finally:
        process.terminate()
        process.wait(10)


def _report(bootstrap: str, args: argparse.Namespace) -> None:
    print(f"broker {args.broker}, {args.records} records of {args.size} bytes, one partition; latency of probes sent one by one")
    print(f"{'consumers':>9} {'records/s':>10} {'median ms':>10} {'p99 ms':>8} {'again':>6} {'missing':>8}")
    for consumers in args.consumers:
        figures = run(bootstrap, consumers, args.records, args.size)
        print(f"{consumers:>9} {figures['records_per_s']:>10.0f} {figures['latency_median_ms']:>10.1f} "
              f"{figures['latency_p99_ms']:>8.1f} {figures['redelivered']:>6.0f} {figures['missing']:>8.0f}")


if __name__ == "__main__":
    main()
