"""What a Prometheus scrape of `/metrics` costs a broker with many partitions and groups.

    python -m compat.bench_metrics [--topics 100] [--partitions 10] [--groups 100] [--scrapes 50] [--json FILE]

Starts `ottla serve --memory --http-port 0`, creates topics*partitions partitions with one
record each and `groups` consumer groups that have committed an offset on every partition of
one topic (so lag is computed for topics*partitions series when groups >= topics), then times
GET /metrics over HTTP, as a scraper sees it. Target: under 50 ms for 1,000 partitions and
100 groups. A scrape while the broker is idle; `python -m compat.bench --console` measures the
Kafka side with a console page polling the broker.

A timing of a page that is not a whole exposition is worthless, so the last scrape of each
format (Prometheus text, then OpenMetrics) is read with prometheus_client's parsers, as a
Prometheus server would, and the report counts its series: one log size per partition, one lag
per group and partition the groups committed.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

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


def _scrape(url: str, openmetrics: bool = False) -> tuple[float, bytes]:
    headers = {"Accept": "application/openmetrics-text; version=1.0.0"} if openmetrics else {}
    started = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(url + "/metrics", headers=headers), timeout=30) as answer:
        body = answer.read()
    return time.perf_counter() - started, body


def _series(body: bytes, openmetrics: bool) -> dict[str, Any]:
    """What a Prometheus server reads of one scrape: families, samples, and the series counted
    for the report; raises ValueError when the page does not parse."""
    if openmetrics:
        from prometheus_client.openmetrics.parser import text_string_to_metric_families
    else:
        from prometheus_client.parser import text_string_to_metric_families
    families = list(text_string_to_metric_families(body.decode()))
    samples = [sample for family in families for sample in family.samples]
    return {
        "families": len(families),
        "samples": len(samples),
        "log_size_series": sum(1 for sample in samples if sample.name == "kafka_log_log_size" and sample.labels["topic"].startswith("bench-")),
        "lag_series": sum(1 for sample in samples if sample.name == "kafka_consumergroup_lag" and sample.labels["consumergroup"].startswith("bench-group-")),
    }


def _timed(url: str, scrapes: int, openmetrics: bool) -> dict[str, Any]:
    timings, body = [], b""
    for _ in range(scrapes):
        elapsed, body = _scrape(url, openmetrics)
        timings.append(elapsed * 1000)
    timings.sort()
    return {
        "scrapes": scrapes, "bytes": len(body), "median_ms": statistics.median(timings),
        "p90_ms": timings[max(int(len(timings) * 0.9) - 1, 0)], "max_ms": timings[-1], **_series(body, openmetrics),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compat.bench_metrics", description=__doc__.split("\n\n")[0])
    parser.add_argument("--topics", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=10)
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--scrapes", type=int, default=50)
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    process, bootstrap, http = _start()
    try:
        _populate(bootstrap, args.topics, args.partitions, args.groups)
        _scrape(http)  # the first one waits for aiohttp to start serving
        formats = {name: _timed(http, args.scrapes, openmetrics) for name, openmetrics in (("text", False), ("openmetrics", True))}
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    # Group i commits every partition of topic i % topics.
    expected = {"log_size_series": args.topics * args.partitions, "lag_series": args.groups * args.partitions}
    print(f"broker: ottla serve --memory, {args.topics * args.partitions} partitions, {args.groups} groups; {sys.version.split()[0]}")
    for name, figures in formats.items():
        print(f"GET /metrics {name} ({figures['bytes'] / 1024:.0f} KiB, {figures['samples']:,} samples in {figures['families']} families; "
              f"{figures['log_size_series']} log sizes, {figures['lag_series']} lags), {figures['scrapes']} scrapes: median {figures['median_ms']:.1f} ms, "
              f"p90 {figures['p90_ms']:.1f} ms, max {figures['max_ms']:.1f} ms   target < 50 ms")
    print("rerun: python -m compat.bench_metrics " + shlex.join(sys.argv[1:] if argv is None else argv))
    if args.json:
        report = {"topics": args.topics, "partitions": args.topics * args.partitions, "groups": args.groups, "expected": expected, **formats}
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    missing = [f"{name} {key}: {figures[key]} of {want}" for name, figures in formats.items() for key, want in expected.items() if figures[key] != want]
    if missing:
        print("incomplete scrape: " + "; ".join(missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
