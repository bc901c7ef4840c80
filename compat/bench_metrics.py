"""What a Prometheus scrape of `/metrics` costs a broker with many partitions and groups.

    python -m compat.bench_metrics [--topics 100] [--partitions 10] [--groups 100] [--scrapes 50]

Starts `ottla serve --memory --http-port 0`, creates topics*partitions partitions with one
record each and `groups` consumer groups that have committed an offset on every partition of
one topic (so lag is computed for topics*partitions series when groups >= topics), then times
GET /metrics over HTTP, as a scraper sees it. Target: under 50 ms for 1,000 partitions and
100 groups. A scrape while the broker is idle; `python -m compat.bench` measures the Kafka
side, to be run beside a polling scrape for the cost of an open console.
"""

from __future__ import annotations

import argparse
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.request

from kafka import KafkaAdminClient, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.structs import OffsetAndMetadata

_READY = re.compile(r"^ottla ready bootstrap=(?P<bootstrap>\S+) .*http=(?P<http>\S+)")


def _start() -> tuple[subprocess.Popen[str], str, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "ottla", "serve", "--port", "0", "--memory", "--http-port", "0"], stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    line = process.stderr.readline()
    match = _READY.match(line)
    if match is None:
        process.kill()
        raise RuntimeError(f"ottla serve did not start: {line!r}")
    return process, match["bootstrap"], match["http"]


def _populate(bootstrap: str, topics: int, partitions: int, groups: int) -> None:
    names = [f"bench-{index:04d}" for index in range(topics)]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(name, partitions, 1) for name in names])
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    for name in names:
        for partition in range(partitions):
            producer.send(name, b"x" * 100, partition=partition)
    producer.flush()
    producer.close()
    for index in range(groups):
        name = names[index % topics]
        admin.alter_group_offsets(f"bench-group-{index:04d}", {TopicPartition(name, p): OffsetAndMetadata(0, "", -1) for p in range(partitions)})
    admin.close()


def _scrape(url: str) -> tuple[float, int]:
    started = time.perf_counter()
    with urllib.request.urlopen(url + "/metrics", timeout=30) as answer:
        size = len(answer.read())
    return time.perf_counter() - started, size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compat.bench_metrics", description=__doc__.split("\n\n")[0])
    parser.add_argument("--topics", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=10)
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--scrapes", type=int, default=50)
    args = parser.parse_args(argv)
    process, bootstrap, http = _start()
    try:
        _populate(bootstrap, args.topics, args.partitions, args.groups)
        _scrape(http)  # the first one waits for aiohttp to start serving
        timings = []
        size = 0
        for _ in range(args.scrapes):
            elapsed, size = _scrape(http)
            timings.append(elapsed * 1000)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    timings.sort()
    print(f"broker: ottla serve --memory, {args.topics * args.partitions} partitions, {args.groups} groups; {sys.version.split()[0]}")
    print(f"GET /metrics ({size / 1024:.0f} KiB), {args.scrapes} scrapes: median {statistics.median(timings):.1f} ms, "
          f"p90 {timings[int(len(timings) * 0.9) - 1]:.1f} ms, max {timings[-1]:.1f} ms   target < 50 ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
