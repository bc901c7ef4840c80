"""Ottla's performance with real clients, beside this machine's limits (and Apache Kafka's, on ask).

    python -m compat.bench [--quick] [--json FILE] [--against kafka] [--repeat N] [--nodes N] [--console [--console-pages PAGE,...]]
                           [--event-loop asyncio|uvloop] [--cores 1|2] [--only throughput|latency|small|perftest]
    python -m compat.bench --profile produce|produce-8p|fetch|small [--seconds N] [--event-loop asyncio|uvloop] [--cores 1|2]
    python -m compat.bench --storage postgresql [--brokers N] [any of the above]

Starts `ottla serve` on a free port with a fresh data dir (compat.harness) and measures, with
confluent-kafka (librdkafka) as the client: produce throughput (1 KiB and 100-byte records,
linger.ms=5, batch.size 1 MiB, acks=1 and all, 1 and 8 partitions); consume throughput of the same
data from offset 0 (assigned, no group); end-to-end latency at a steady 1,000 and 10,000 records/s;
with raw sockets, single-record acks=1 Produce and Metadata requests/s over several connections;
and cold start (launch to first acknowledged produce) with the idle broker's RSS. In the same run it
measures the machine's limits (compat.bench_limits) and prints each figure as a share of its limit
beside issue 9's target. The same run also drives the same workloads, with the same clients, against
a minimal Kafka responder (compat.bench_ceiling: append on produce, sendfile on fetch, nothing more),
the ceiling any broker faces on this machine with these clients, and prints each Ottla figure as a
share of the responder's ("of ceiling"; for latencies, the responder's over Ottla's, so 100% is
always as good as the ceiling). Each produce and consume run lasts at least 3 s, so that two runs
back to back can agree: a produce run sends at least its count of records and goes on until then (the
client stops adding to its queue once what is in flight would take the run past it), and a consume
run reads its topic from offset 0, again from offset 0 each time it has read it all, until then; each
rate is over the whole run. Before each broker's run of a step, the brokers having removed the
topics deleted before it (they remove them at once here: log.segment.delete.delay.ms=0), the
page cache is synced (settle_disk), so that no run pays for another's deletions or writeback;
and every other pass runs each step's brokers in the reverse order, so that none runs a step in
the same place (just after the same other broker) in every pass.
Under --quick each throughput run reads or writes its count once, about
0.1 s, mostly client start-up, so its shares swing well past 100% either way; read shares from a full run.
`--against kafka` runs the same workloads against the reference Kafka (compat.kafka) and Kafka's
own perf-test tools against both, and prints Ottla/Kafka ratios.
`--profile` runs one workload with the broker under py-spy (compat.bench_profile).
`--event-loop uvloop` runs every Ottla broker of the run on uvloop (`ottla serve --event-loop`).
`--cores N` pins each broker under test (Ottla, the reference Kafka, the minimal responder and the
limits' servers) to the first N CPUs this process may use, with taskset from their start. The
clients (this process and the tools it starts) keep to the CPUs past the first two when there are
at least two such, so `--cores 1` and `--cores 2` give them the same CPUs and never the brokers';
with fewer (a 2-core machine) they stay unpinned, and `--cores 1` leaves them a core of their own.
compat/SCALING.md says what the comparison can show: the clients need more CPU per MB than Ottla.
`--only SECTION` runs one section of the workloads (produce and consume throughput, end-to-end
latency, or small requests) on every broker of the run, and prints its rows alone: no cold start,
no perf-test tools, and the machine's limits only where the section's rows are judged by them.
`--only perftest` runs Kafka's perf-test tools alone (no workloads, limits or responder). The
tools run `--repeat` times on each broker, back to back in alternating order (the first broker of
a pass runs while the previous steps' writes are still being flushed to disk), after a shorter
pass on each broker that is not counted, and each figure is the best of its passes; every pass
is printed and kept in the JSON. kafka-producer-perf-test runs twice a pass, its figures taken
after its first records (`--warmup-records`, its fresh JVM compiling itself): 1,000,000 records
as fast as it can for the rates, then 150,000 at 25,000 records/s for the latencies (unthrottled,
they are the wait in the producer's buffer: see `perf_tools`); kafka-consumer-perf-test reads
the first run's records.
With `--repeat N` (N >= 2) each row shows, beside each broker's best, the spread of its passes,
(max - min) / max, marked with * past 15% (two runs back to back should agree within that), and
keeps it in the JSON's summary rows (`spread`, `ceiling_spread`, `kafka_spread`); every pass's
figures are kept under `passes` (the workloads) and `perf_tools_passes`.
`--console` runs Ottla's workloads a second time in each pass with the web console's pages
polling the broker's JSON API as a browser would (compat.bench_console), and prints both runs
side by side: what a console left open costs the Kafka side.
`--storage postgresql` runs the broker under test on the PostgreSQL engine over a PostgreSQL started
for the run, with a local-engine broker beside it in the same passes, and prints both side by side;
with `--profile`, PostgreSQL's statistics follow the broker's profile (compat.bench_postgres).
`--brokers N` makes the broker under test N `ottla serve --storage URL --node-id 1..N` processes
over the one database, one cluster, every workload bootstrapped with all of them (cold start and
the console are broker 1's; peak RSS is the largest of the brokers', each one's in the JSON).

Figures depend on the machine and its load; the report prints the load average with them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from compat import bench_ceiling, bench_console, bench_limits, bench_profile, bench_workloads as work
from compat.harness import OttlaBroker
from compat.kafka import ReferenceKafka, fetch, run_tool


@dataclass(frozen=True)
class Plan:
    records: dict[int, int]  # record size -> least records per produce run
    produce_seconds: float  # bound on each produce run
    step_seconds: float  # least time each produce and consume run lasts
    latency_seconds: float
    warmup_seconds: float
    small_seconds: float
    connections: int
    cold_runs: int
    disk_mb: int
    sink_mb: int
    tool_records: int  # records kafka-producer-perf-test sends as fast as it can (1 KiB), then the consumer reads
    tool_warmup_records: int  # of those, the first, left out of the producer's figures (its JVM compiling itself)
    tool_rate: int  # records/s of the producer's latency run: below what either broker takes on this machine
    tool_rate_records: int  # records of the latency run, the first tool_rate_records // 5 left out as warm-up


FULL = Plan(
    records={1024: 300_000, 100: 2_000_000}, produce_seconds=60, step_seconds=3, latency_seconds=10, warmup_seconds=1,
    small_seconds=5, connections=8, cold_runs=5, disk_mb=512, sink_mb=1024, tool_records=1_000_000,
    tool_warmup_records=300_000, tool_rate=25_000, tool_rate_records=150_000,
)
QUICK = Plan(
    records={1024: 10_000, 100: 50_000}, produce_seconds=10, step_seconds=0, latency_seconds=1.5, warmup_seconds=0.5,
    small_seconds=1, connections=8, cold_runs=1, disk_mb=32, sink_mb=64, tool_records=20_000,
    tool_warmup_records=5_000, tool_rate=25_000, tool_rate_records=20_000,
)

SIZES = (1024, 100)
ACKS = ("1", "all")
PARTITIONS = (1, 8)
RATES = (1000, 10_000)
SECTIONS = ("throughput", "latency", "small")
# Kafka's own perf-test tools, outside the workloads: a section of --only alone.
PERF_TOOLS = "perftest"


def _topic(size: int, acks: str, partitions: int, tag: str) -> str:
    return f"bench-{size}b-acks{acks}-{partitions}p-{tag}"


def workloads(
    brokers: dict[str, str], plan: Plan, say: Callable[[str], None], tag: str, sections: tuple[str, ...] = SECTIONS,
    settle: Callable[[], None] = lambda: None, reverse: bool = False,
) -> dict[str, dict[str, Any]]:
    """Every broker-side figure but cold start (of `sections` only), for each named broker, on
    topics named with `tag`. Each step runs on every broker back to back, in alternating order,
    so a ratio (Ottla over Kafka or over the responder) compares runs made under the same
    machine load; `settle` runs before each broker's run of a step (see settle_disk).
    `reverse` starts from the brokers' order reversed: passes alternate it, so that a step
    whose runs depend on what ran just before (the page cache a run finds) does not run each
    broker in the same place in every pass."""
    results: dict[str, dict[str, Any]] = {name: {"produce": [], "consume": [], "latency": []} for name in brokers}
    order = list(brokers.items())[::-1] if reverse else list(brokers.items())

    def each(measure: Callable[[str, str], Any], section: str, label: str) -> None:
        for name, bootstrap in order:
            settle()
            value = measure(name, bootstrap)
            if section in ("produce", "consume", "latency"):
                results[name][section].append(value)
            else:
                results[name][section] = value
            say(f"{name} {label}: {_brief(value)}")
        order.reverse()

    for size in SIZES if "throughput" in sections else ():
        for partitions in PARTITIONS:
            for acks in ACKS:
                topic = _topic(size, acks, partitions, tag)

                def produce(name: str, bootstrap: str) -> dict[str, Any]:
                    work.create_topic(bootstrap, topic, partitions)
                    run = work.produce(bootstrap, topic, partitions=partitions, size=size, acks=acks, count=plan.records[size], seconds=plan.produce_seconds, min_seconds=plan.step_seconds)
                    return {"size": size, "acks": acks, "partitions": partitions, **run.as_dict()}

                each(produce, "produce", f"produce {size} B acks={acks} {partitions}p")

            # Read back what acks=1 wrote; the acks=all topic holds the same shape of data.
            def consume(name: str, bootstrap: str) -> dict[str, Any]:
                records = next(r["records"] for r in reversed(results[name]["produce"]) if (r["size"], r["acks"], r["partitions"]) == (size, "1", partitions))
                run = work.consume(bootstrap, _topic(size, "1", partitions, tag), partitions=partitions, records=records, size=size, seconds=max(60, plan.produce_seconds), min_seconds=plan.step_seconds)
                return {"size": size, "partitions": partitions, **run.as_dict()}

            each(consume, "consume", f"consume {size} B {partitions}p")
            # Untimed: a run holds one shape's two topics on disk (1-2 GB a broker), not all it wrote.
            for _, bootstrap in order:
                work.delete_topics(bootstrap, [_topic(size, acks, partitions, tag) for acks in ACKS])
    for rate in RATES if "latency" in sections else ():
        def latency(name: str, bootstrap: str) -> dict[str, float]:
            topic = f"bench-latency-{rate}-{tag}"
            work.create_topic(bootstrap, topic, 1)
            return work.latency(bootstrap, topic, rate=rate, seconds=plan.latency_seconds, warmup=plan.warmup_seconds)

        each(latency, "latency", f"latency at {rate}/s")
    if "small" in sections:
        each(lambda name, bootstrap: work.small_requests(bootstrap, f"bench-small-{tag}", connections=plan.connections, seconds=plan.small_seconds), "small_requests", "small requests")
    return results


# Set on every broker of a run that keeps files (Ottla, the reference Kafka): a deleted topic's
# files go at once, not 60 s later in the middle of some later step (see settle_disk).
DELETE_AT_ONCE = {"log.segment.delete.delay.ms": "0"}


def settle_disk(data_dirs: list[Path], timeout: float = 60.0) -> None:
    """Start the next timed run from the same disk state whichever broker it is: no deleted
    topic's directory (`*-delete`, Ottla's and Kafka's) still waiting to go, then nothing dirty
    in the page cache (sync(2), which waits for the writeback).

    Otherwise a run pays for what others left. With file.delete.delay.ms at its 60 s default a
    broker removes a deleted topic's gigabytes in the middle of some later step, and the page
    cache that frees decides what the next writer's pwrites cost: on this VM, copying into
    pages the guest freed moments ago costs ~0.2 ms/MB, into pages it has not used lately
    ~2.3 ms/MB (the host takes free memory back and faults it in again), twice Ottla's whole
    produce cost. Measured in alternating runs (compat/SCALING.md, "Produce after Kafka's
    steps"): without this, a step's Ottla and responder runs got pages of different kinds in 4
    of 16 pairs, Ottla the cold ones each time; with it, in 1 of 16."""
    deadline = time.monotonic() + timeout
    while any(any(directory.glob("*-delete")) or any(directory.glob("*/*-delete")) for directory in data_dirs):
        if time.monotonic() > deadline:
            raise RuntimeError(f"deleted topics' files still in {[str(d) for d in data_dirs]} after {timeout:.0f} s")
        time.sleep(0.05)
    os.sync()


def best(passes: list[dict[str, Any]]) -> dict[str, Any]:
    """One broker's figures from repeated passes: each step's best run. Other load on the machine
    only ever slows a run down, so the best is the closest to what the broker can do."""
    first = passes[0]
    figures: dict[str, Any] = {
        "produce": [max(runs, key=lambda r: r["mb_s"]) for runs in zip(*(p["produce"] for p in passes))],
        "consume": [max(runs, key=lambda r: r["mb_s"]) for runs in zip(*(p["consume"] for p in passes))],
        "latency": [min(runs, key=lambda r: r["p99_ms"]) for runs in zip(*(p["latency"] for p in passes))],
    }
    if "small_requests" in first:
        figures["small_requests"] = {key: max(p["small_requests"][key] for p in passes) for key in first["small_requests"]}
    return figures


def _brief(value: Any) -> str:
    keys = ("mb_s", "records_s", "p50_ms", "p99_ms", "produce_rps", "metadata_rps")
    return ", ".join(f"{key} {value[key]:,.1f}" for key in keys if key in value)


def cpu_list(cores: int | None) -> str | None:
    """taskset's list of the first `cores` CPUs this process may run on; None pins nothing."""
    if cores is None:
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if not 1 <= cores <= len(allowed):
        raise ValueError(f"--cores {cores}: this process may use {len(allowed)} CPU(s)")
    return ",".join(str(cpu) for cpu in allowed[:cores])


def client_cpus(cores: int | None) -> list[int] | None:
    """The CPUs the clients keep to under `--cores`: those past the first two, which neither
    `--cores 1` nor `--cores 2` gives a broker; None (unpinned) unless there are two or more."""
    if cores is None:
        return None
    allowed = sorted(os.sched_getaffinity(0))
    return allowed[2:] if len(allowed) >= 4 else None


def ottla_cold_start(runs: int, event_loop: str, cpus: str | None, storage: Callable[[], str] | None = None) -> dict[str, float]:
    """Median over `runs` fresh brokers of launch -> ready line and launch -> first acknowledged
    produce; RSS after a second idle. Broker start is timed around OttlaBroker.start, which polls
    for the ready line every 10 ms. `storage` gives each broker a new, empty database (its URL)
    before its launch, so the time is the broker's, not the database's."""
    ready, first, rss = [], [], []
    for _ in range(runs):
        broker = OttlaBroker(event_loop=event_loop, cpus=cpus, storage=storage() if storage else None)
        try:
            started = time.perf_counter()
            broker.start()
            ready.append(time.perf_counter() - started)
            work.first_produce(broker.bootstrap, "bench-cold")
            first.append(time.perf_counter() - started)
            time.sleep(1)
            rss.append(broker.rss_bytes() / 1e6)
        finally:
            broker.close()
    return {"ready_s": statistics.median(ready), "first_produce_s": statistics.median(first), "idle_rss_mb": statistics.median(rss)}


def limits(data_dir: Path, plan: Plan, cpus: str | None) -> dict[str, float]:
    disk = bench_limits.disk_write_mb_s(data_dir, plan.disk_mb)
    with bench_limits.limit_server("sink", cpus) as address:
        sink = bench_limits.sink_mb_s(address, plan.sink_mb)
    with bench_limits.limit_server("echo", cpus) as (host, port):
        # The same client and Produce frame as the small-request test: the ratio is the broker's cost.
        count, seconds, _ = work.request_rate(f"{host}:{port}", work.produce_frame("bench-small"), connections=plan.connections, seconds=plan.small_seconds)
    return {"disk_write_mb_s": disk, "loopback_sink_mb_s": sink, "pingpong_rps": count / seconds}


_PRODUCER_TOOL = re.compile(
    r"(?P<records>\d+) (?:steady state )?records sent, (?P<records_s>[\d.]+) records/sec \((?P<mb_s>[\d.]+) MB/sec\), "
    r"(?P<avg_ms>[\d.]+) ms avg latency, (?P<max_ms>[\d.]+) ms max latency, (?P<p50_ms>\d+) ms 50th, "
    r"(?P<p95_ms>\d+) ms 95th, (?P<p99_ms>\d+) ms 99th, (?P<p999_ms>\d+) ms 99.9th"
)


def producer_tool(bootstrap: str, topic: str, records: int, warmup: int, rate: int) -> re.Match[str]:
    """kafka-producer-perf-test's steady-state summary (after `warmup` records, which its fresh JVM
    spends compiling itself) of `records` 1 KiB records at `rate` records/s (-1: as fast as it
    can), with the librdkafka run's producer settings."""
    ran = run_tool(
        "kafka-producer-perf-test", "--bootstrap-server", bootstrap, "--topic", topic, "--num-records", str(records),
        "--warmup-records", str(warmup), "--record-size", "1024", "--throughput", str(rate),
        "--command-property", "acks=1", "linger.ms=5", "batch.size=1048576", timeout=300,
    )
    summaries = [line for line in ran.stdout.splitlines() if "steady state records sent" in line]
    match = _PRODUCER_TOOL.search(summaries[-1]) if summaries else None
    if ran.returncode != 0 or not match:
        raise RuntimeError(f"kafka-producer-perf-test failed ({ran.returncode}):\n{ran.stdout[-2000:]}{ran.stderr[-2000:]}")
    return match


def perf_tools(bootstrap: str, plan: Plan, tag: str = "") -> dict[str, float]:
    """Kafka's kafka-producer-perf-test, twice, then kafka-consumer-perf-test (a group member), each
    producer run on a fresh 1-partition topic (named with `tag`) and each figure from its steady
    state. The rate is the unthrottled run's. Its latencies are not taken: with the tool sending
    faster than the records leave, they are the wait in the producer's 32 MiB buffer
    (buffer.memory over the rate, 100-600 ms), and a run whose records leave as fast as they come
    waits only its linger.ms, so they flip between the two run to run. The latencies are the
    throttled run's, at a rate both brokers take: send() to acknowledgement at a given load."""
    topic = f"bench-perf-tools{tag}"
    work.create_topic(bootstrap, topic, 1)
    fastest = producer_tool(bootstrap, topic, plan.tool_records, plan.tool_warmup_records, -1)
    work.create_topic(bootstrap, f"{topic}-rate", 1)
    paced = producer_tool(bootstrap, f"{topic}-rate", plan.tool_rate_records, plan.tool_rate_records // 5, plan.tool_rate)
    n = str(plan.tool_records)
    consumed = run_tool("kafka-consumer-perf-test", "--bootstrap-server", bootstrap, "--topic", topic, "--num-records", n, "--timeout", "30000", timeout=300)
    lines = [line for line in consumed.stdout.splitlines() if line.strip()]
    if consumed.returncode != 0 or len(lines) < 2:
        raise RuntimeError(f"kafka-consumer-perf-test failed ({consumed.returncode}):\n{consumed.stdout[-2000:]}{consumed.stderr[-2000:]}")
    stats = dict(zip((h.strip() for h in lines[-2].split(",")), (v.strip() for v in lines[-1].split(","))))
    if int(stats["data.consumed.in.nMsg"]) != plan.tool_records:
        raise RuntimeError(f"kafka-consumer-perf-test read {stats['data.consumed.in.nMsg']} of {n} records")
    # Untimed, as the throughput shapes' topics are: a pass's 1.2 GB left behind would decide
    # which pages the next passes' writes land in (settle_disk).
    work.delete_topics(bootstrap, [topic, f"{topic}-rate"])
    return {
        "produce_mb_s": float(fastest["mb_s"]), "produce_records_s": float(fastest["records_s"]),
        "produce_p50_ms": float(paced["p50_ms"]), "produce_p99_ms": float(paced["p99_ms"]), "produce_rate_records_s": float(plan.tool_rate),
        "consume_mb_s": float(stats["MB.sec"]), "consume_records_s": float(stats["nMsg.sec"]), "consume_fetch_mb_s": float(stats["fetch.MB.sec"]),
        "consume_rebalance_ms": float(stats["rebalance.time.ms"]),
    }


def best_perf_tools(passes: list[dict[str, float]]) -> dict[str, float]:
    """The best of each perf-tool figure over passes: the lowest time, the highest rate."""
    return {key: (min if key.endswith("_ms") else max)(p[key] for p in passes) for key in passes[0]}


def perf_tool_passes(brokers: dict[str, str], plan: Plan, repeat: int, say: Callable[[str], None]) -> dict[str, list[dict[str, float]]]:
    """The perf-test tools `repeat` times on each broker, back to back in alternating order, so
    the brokers' figures are taken under the same machine load, after a shorter pass on each that
    is not counted: a broker's first produce, fetch and group join (a JVM broker's compiling, a
    codec's first use) are not its steady state, and under --only they would fall in pass 1."""
    passes: dict[str, list[dict[str, float]]] = {name: [] for name in brokers}
    order = list(brokers.items())
    warmup = replace(
        plan, tool_records=plan.tool_warmup_records, tool_warmup_records=plan.tool_warmup_records // 2, tool_rate_records=plan.tool_rate
    )
    for name, bootstrap in order:
        perf_tools(bootstrap, warmup, "-warmup")
        say(f"{name} perf tools warmed up (not counted)")
    for i in range(repeat):
        for name, bootstrap in order:
            figures = perf_tools(bootstrap, plan, f"-p{i}")
            passes[name].append(figures)
            say(f"{name} perf tools pass {i + 1}: " + ", ".join(f"{key} {value:,.1f}" for key, value in figures.items()))
        order.reverse()
    return passes


class PeakRss:
    """The largest RSS each watched process reaches while the workloads run, sampled from a
    thread of its own every quarter second: a peak inside a step escapes samples taken only
    between steps."""

    def __init__(self) -> None:
        self.peaks_mb: dict[str, float] = {}
        self._watched: dict[str, Callable[[], int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="bench-peak-rss", daemon=True)

    def watch(self, name: str, rss_bytes: Callable[[], int]) -> None:
        self._watched[name] = rss_bytes

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.25):
            for name, rss_bytes in list(self._watched.items()):
                try:
                    megabytes = rss_bytes() / 1e6
                except OSError:  # the process ended between two samples
                    continue
                self.peaks_mb[name] = max(self.peaks_mb.get(name, 0.0), megabytes)


def start_kafka(stack: ExitStack, say: Callable[[str], None], cpus: str | None) -> tuple[ReferenceKafka, dict[str, float]]:
    """A fresh reference Kafka, and its cold start: launch (with `kafka-storage format`, as a
    fresh data dir needs) to the first acknowledged produce, and its RSS after a second idle."""
    fetch()
    started = time.perf_counter()
    kafka = stack.enter_context(ReferenceKafka(cpus=cpus, config=DELETE_AT_ONCE))
    ready = time.perf_counter() - started
    work.first_produce(kafka.bootstrap_servers, "bench-cold")
    first = time.perf_counter() - started
    time.sleep(1)
    cold = {"ready_s": ready, "first_produce_s": first, "idle_rss_mb": kafka.rss_bytes() / 1e6}
    say(f"kafka cold start {cold}")
    return kafka, cold


@dataclass(frozen=True)
class Row:
    metric: str
    unit: str
    ottla: float
    limit: float | None = None  # the machine's ceiling for this figure, same unit
    target: str = ""
    met: bool | None = None
    kafka: float | None = None
    lower_is_better: bool = False
    ceiling: float | None = None  # the minimal responder's figure (compat.bench_ceiling), same unit
    # Each broker's spread of this figure over the run's passes (see spread); None from one pass.
    spread: float | None = None
    ceiling_spread: float | None = None
    kafka_spread: float | None = None

    def as_dict(self) -> dict[str, Any]:
        share = self.ottla / self.limit if self.limit else None
        ratio = self.ottla / self.kafka if self.kafka else None
        return {
            "metric": self.metric, "unit": self.unit, "ottla": self.ottla, "limit": self.limit, "of_limit": share,
            "target": self.target, "met": self.met, "kafka": self.kafka, "ottla_over_kafka": ratio,
            "ceiling": self.ceiling, "of_ceiling": self.of_ceiling,
            "spread": self.spread, "ceiling_spread": self.ceiling_spread, "kafka_spread": self.kafka_spread,
        }

    @property
    def of_ceiling(self) -> float | None:
        """How close Ottla comes to the responder: 1.0 is as good, whichever way is better."""
        if not self.ceiling or not self.ottla:
            return None
        return self.ceiling / self.ottla if self.lower_is_better else self.ottla / self.ceiling


def rows(result: dict[str, Any]) -> list[Row]:
    """The report's lines: each figure beside its limit, issue 9's target, the responder's
    figure and Kafka's."""
    ottla, lim = result["ottla"], result["limits"]

    def figure(broker: str, section: str, index: int | None, key: str) -> float | None:
        figures = result.get(broker)
        if figures is None:
            return None
        value = figures[section] if index is None else figures[section][index]
        return float(value[key])

    def peer(section: str, index: int | None, key: str) -> float | None:
        return figure("kafka", section, index, key)

    def roof(section: str, index: int | None, key: str) -> float | None:
        return figure("ceiling", section, index, key)

    out = []
    for i, run in enumerate(ottla["produce"]):
        name = f"produce {run['size']} B acks={run['acks']} {run['partitions']}p"
        judged = run["size"] == 1024
        met = run["mb_s"] / lim["disk_write_mb_s"] >= 0.7 if judged else None
        out.append(Row(name, "MB/s", run["mb_s"], lim["disk_write_mb_s"], "≥ 70% of disk" if judged else "", met, peer("produce", i, "mb_s"), ceiling=roof("produce", i, "mb_s")))
        out.append(Row(name, "rec/s", run["records_s"], kafka=peer("produce", i, "records_s"), ceiling=roof("produce", i, "records_s")))
    for i, run in enumerate(ottla["consume"]):
        name = f"consume {run['size']} B {run['partitions']}p"
        judged = run["size"] == 1024
        met = run["mb_s"] / lim["loopback_sink_mb_s"] >= 0.5 if judged else None
        out.append(Row(name, "MB/s", run["mb_s"], lim["loopback_sink_mb_s"], "≥ 50% of sink" if judged else "", met, peer("consume", i, "mb_s"), ceiling=roof("consume", i, "mb_s")))
        out.append(Row(name, "rec/s", run["records_s"], kafka=peer("consume", i, "records_s"), ceiling=roof("consume", i, "records_s")))
    for i, run in enumerate(ottla["latency"]):
        for key in ("p50_ms", "p99_ms", "p999_ms"):
            judged = (run["rate"], key) == (1000, "p99_ms")
            met = run[key] <= 5 if judged else None
            out.append(Row(f"e2e latency {key[:-3]} at {run['rate']}/s", "ms", run[key], None, "≤ 5 ms" if judged else "", met, peer("latency", i, key), True, roof("latency", i, key)))
    if "small_requests" in ottla:
        small, echo = ottla["small_requests"], lim["pingpong_rps"]
        for key, label in (("produce_rps", "single-record produce"), ("metadata_rps", "metadata")):
            name = f"{label}, {small['connections']} conns"
            out.append(Row(name, "req/s", small[key], echo, "≥ 50% of ping-pong", small[key] / echo >= 0.5, kafka=peer("small_requests", None, key), ceiling=roof("small_requests", None, key)))
    if "cold_start" in ottla:
        cold = ottla["cold_start"]
        out.append(Row("cold start to first produce", "s", cold["first_produce_s"], None, "≤ 0.5 s", cold["first_produce_s"] <= 0.5, peer("cold_start", None, "first_produce_s"), True))
        out.append(Row("cold start to ready line", "s", cold["ready_s"], kafka=peer("cold_start", None, "ready_s"), lower_is_better=True))
        out.append(Row("idle RSS", "MB", cold["idle_rss_mb"], None, "≤ 60 MB", cold["idle_rss_mb"] <= 60, peer("cold_start", None, "idle_rss_mb"), True))
    if "peak_rss_mb" in ottla:
        peak = ottla["peak_rss_mb"]
        kafka_peak = result.get("kafka", {}).get("peak_rss_mb")
        out.append(Row("peak RSS under the workloads", "MB", peak, None, "≤ 100 MB", peak <= 100, kafka_peak, True))
    tools = result.get("perf_tools")
    if tools:
        for key, unit in (("produce_mb_s", "MB/s"), ("produce_records_s", "rec/s"), ("produce_p50_ms", "ms"), ("produce_p99_ms", "ms"), ("consume_mb_s", "MB/s"), ("consume_fetch_mb_s", "MB/s"), ("consume_records_s", "rec/s"), ("consume_rebalance_ms", "ms")):
            name = f"{'kafka-producer-perf-test' if key.startswith('produce') else 'kafka-consumer-perf-test'} {key.split('_', 1)[1]}"
            if key in ("produce_p50_ms", "produce_p99_ms"):
                name += f" at {tools['ottla']['produce_rate_records_s']:,.0f}/s"
            out.append(Row(name, unit, tools["ottla"][key], kafka=tools.get("kafka", {}).get(key), lower_is_better=key.endswith("_ms")))
    return out


# Two runs of a step back to back should agree within this (max - min) / max: a row past it is marked.
SPREAD_LIMIT = 0.15


def spread(values: list[float]) -> float | None:
    """(max - min) / max of a figure over its passes: 0 when they agree, None from fewer than two."""
    if len(values) < 2 or max(values) <= 0:
        return None
    return (max(values) - min(values)) / max(values)


def with_spreads(result: dict[str, Any], passes: list[dict[str, dict[str, Any]]], tool_passes: dict[str, list[dict[str, float]]]) -> list[Row]:
    """rows(result), each with every broker's spread over the passes: the rows of each pass alone
    (its workloads' figures and its perf-tool runs), matched by metric and unit. Cold start and
    peak RSS are taken once per run and get none."""
    count = max([len(passes), *(len(runs) for runs in tool_passes.values())])
    views = []
    for i in range(count):
        view: dict[str, Any] = {"limits": result["limits"], "ottla": {"produce": [], "consume": [], "latency": []}}
        if i < len(passes):
            view.update(passes[i])
        if tool_passes:
            view["perf_tools"] = {name: runs[i] for name, runs in tool_passes.items() if i < len(runs)}
        views.append({(row.metric, row.unit): row for row in rows(view)})

    def over(key: tuple[str, str], column: str) -> float | None:
        return spread([value for view in views if key in view and (value := getattr(view[key], column)) is not None])

    out = []
    for row in rows(result):
        key = (row.metric, row.unit)
        out.append(replace(row, spread=over(key, "ottla"), ceiling_spread=over(key, "ceiling"), kafka_spread=over(key, "kafka")))
    return out


def _spread(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.0%}" + ("*" if value > SPREAD_LIMIT else " ")


def _num(value: float | None) -> str:
    if value is None:
        return ""
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value < 10 else f"{value:.1f}"


def table(result: dict[str, Any], spread_rows: list[Row] | None = None) -> str:
    """The report: `spread_rows` (rows(result) with their spreads, from with_spreads) or rows(result)."""
    lim = result["limits"]
    header = (
        f"{'metric':44} {'unit':6} {'Ottla':>10} {'spread':>6} {'limit':>10} {'of limit':>8}  {'target':20} {'met':4} "
        f"{'ceiling':>10} {'spread':>6} {'of ceiling':>10} {'Kafka':>10} {'spread':>6} {'Ottla/Kafka':>11}"
    )
    meta = result["meta"]
    pinned = f"pinned to CPU(s) {meta['cpus_pinned']} (--cores {meta['cores']})" if meta.get("cores") else f"unpinned ({meta['cpus']} CPUs)"
    clients = f"on CPU(s) {meta['cpus_clients']}" if meta.get("cpus_clients") else "unpinned"
    lines = [f"brokers {pinned}, clients {clients}; Ottla on the {meta.get('event_loop', 'asyncio')} event loop"]
    if meta.get("only"):
        lines.append(f"one section: {meta['only']} (--only)")
    if lim:
        lines.append(
            f"machine limits: raw disk write {lim['disk_write_mb_s']:.0f} MB/s, asyncio loopback sink {lim['loopback_sink_mb_s']:.0f} MB/s, "
            f"asyncio ping-pong {lim['pingpong_rps']:,.0f} req/s ({result['meta']['connections']} conns)"
        )
    lines += [
        "ceiling: the same clients against a minimal Kafka responder (compat.bench_ceiling); of ceiling: Ottla's "
        "share of its figure (for latencies, its figure over Ottla's)",
    ]
    table_rows = spread_rows if spread_rows is not None else rows(result)
    if any(row.spread is not None for row in table_rows):
        lines.append(
            f"each figure is its best of {meta['repeat']} passes; spread: (max - min) / max of its passes, "
            f"* past {SPREAD_LIMIT:.0%} (two runs back to back should agree within it)"
        )
    lines += [header, "-" * len(header)]
    for row in table_rows:
        d = row.as_dict()
        share = f"{d['of_limit']:.0%}" if d["of_limit"] is not None else ""
        of_ceiling = f"{d['of_ceiling']:.0%}" if d["of_ceiling"] is not None else ""
        met = {True: "yes", False: "NO", None: ""}[row.met]
        ratio = ""
        if d["ottla_over_kafka"] is not None:
            ahead = d["ottla_over_kafka"] < 1 if row.lower_is_better else d["ottla_over_kafka"] > 1
            ratio = f"{d['ottla_over_kafka']:.2f} {'ahead' if ahead else 'behind'}"
        lines.append(
            f"{row.metric:44} {row.unit:6} {_num(row.ottla):>10} {_spread(row.spread):>6} {_num(row.limit):>10} {share:>8}  {row.target:20} {met:4} "
            f"{_num(row.ceiling):>10} {_spread(row.ceiling_spread):>6} {of_ceiling:>10} {_num(row.kafka):>10} {_spread(row.kafka_spread):>6} {ratio:>11}"
        )
    return "\n".join(lines)


def _commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compat.bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="everything small: under a minute")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--against", choices=["kafka"], help="run the same workloads against the reference Apache Kafka")
    parser.add_argument("--repeat", type=int, default=1, metavar="N", help="run the workloads N times and keep each step's best")
    parser.add_argument("--profile", choices=sorted(bench_profile.WORKLOADS), help="profile the broker under one workload instead")
    parser.add_argument("--seconds", type=float, default=20, help="with --profile: how long to sample")
    parser.add_argument(
        "--nodes", type=int, default=1, metavar="N",
        help="run Ottla as a cluster of N nodes in its process, every topic replicated N times (what cluster mode costs)",
    )
    parser.add_argument(
        "--event-loop", default="asyncio", choices=["asyncio", "uvloop"], help="the event loop every Ottla broker of the run uses (ottla serve --event-loop)",
    )
    parser.add_argument(
        "--cores", type=int, choices=[1, 2], metavar="N",
        help="pin each broker (Ottla, Kafka, the responder, the limits' servers) to the first N CPUs with taskset; clients stay unpinned",
    )
    parser.add_argument(
        "--only", choices=SECTIONS + (PERF_TOOLS,), metavar="SECTION",
        help=f"run one section of the workloads ({', '.join(SECTIONS)}) and print its rows: no cold start, no perf-test tools; "
        f"or {PERF_TOOLS}: Kafka's perf-test tools alone",
    )
    parser.add_argument("--console", action="store_true", help="also run Ottla's workloads with the web console's pages polling, and compare")
    parser.add_argument(
        "--console-pages", default=",".join(bench_console.PAGES), metavar="PAGE,...",
        help=f"which console pages poll with --console (of {', '.join(bench_console.PAGES)}; default all)",
    )
    parser.add_argument(
        "--storage", choices=["local", "postgresql"], default="local",
        help="postgresql: the broker under test on the PostgreSQL engine, beside a local-engine broker (compat.bench_postgres)",
    )
    parser.add_argument(
        "--brokers", type=int, default=1, metavar="N",
        help="with --storage postgresql: the broker under test is N brokers over the one database (--node-id 1..N), one cluster",
    )
    args = parser.parse_args(argv)
    rerun = "python -m compat.bench " + shlex.join(sys.argv[1:] if argv is None else argv)
    try:
        cpus = cpu_list(args.cores)
    except ValueError as exc:
        parser.error(str(exc))
    if cpus is not None and shutil.which("taskset") is None:
        parser.error("--cores needs taskset (util-linux)")
    clients = client_cpus(args.cores)
    if clients is not None:
        # This thread's affinity, inherited by every client thread and tool started after it.
        os.sched_setaffinity(0, clients)
    if args.storage == "postgresql" and args.nodes > 1:
        parser.error("--storage postgresql runs a cluster as separate brokers over one database: --brokers N")
    if args.brokers < 1 or (args.brokers > 1 and (args.storage != "postgresql" or args.profile)):
        parser.error("--brokers N is the PostgreSQL engine's (--storage postgresql), without --profile")
    if args.profile and args.storage == "postgresql":
        from compat import bench_postgres

        print(bench_postgres.profile(args.profile, args.seconds, event_loop=args.event_loop, cpus=cpus))
    elif args.profile:
        print(bench_profile.profile(args.profile, args.seconds, event_loop=args.event_loop, cpus=cpus))
    if args.profile:
        print(f"rerun: {rerun}")
        return 0

    if args.only and args.console:
        parser.error("--only runs without --console")
    perf_tools_only = args.only == PERF_TOOLS
    sections = () if perf_tools_only else (args.only,) if args.only else SECTIONS
    pages = tuple(args.console_pages.split(","))
    if not set(pages) <= set(bench_console.PAGES):
        parser.error(f"--console-pages: pages are {', '.join(bench_console.PAGES)}")
    plan = QUICK if args.quick else FULL

    loads = [os.getloadavg()[0]]

    def say(text: str) -> None:
        loads.append(os.getloadavg()[0])
        print(f"  [{time.monotonic() - started:6.1f}s] {text}", file=sys.stderr, flush=True)

    started = time.monotonic()
    result: dict[str, Any] = {"meta": {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "quick": args.quick, "commit": _commit(),
        "python": platform.python_version(), "cpus": os.cpu_count(), "connections": plan.connections, "repeat": args.repeat,
        "load_average_start": os.getloadavg()[0], "event_loop": args.event_loop, "cores": args.cores, "cpus_pinned": cpus,
        "cpus_clients": None if clients is None else ",".join(map(str, clients)),
        "only": args.only,
    }}
    result["ottla"] = {"produce": [], "consume": [], "latency": []}
    database = None
    if args.storage == "postgresql":
        from compat import bench_postgres

        # Closed at the end of the run, or at exit when the run fails (PrivatePostgres's atexit).
        database = bench_postgres.BenchDatabase().start()
        result["meta"]["storage"] = database.version
        result["local"] = {"produce": [], "consume": [], "latency": []}
    if not args.only:
        result["ottla"]["cold_start"] = ottla_cold_start(plan.cold_runs, args.event_loop, cpus, database.new_url if database else None)
        say(f"ottla cold start {result['ottla']['cold_start']}")
        if database is not None:
            result["local"]["cold_start"] = ottla_cold_start(plan.cold_runs, args.event_loop, cpus)
            say(f"local cold start {result['local']['cold_start']}")
    # Latency rows are judged by no machine limit: a latency section measures none.
    with_limits = not set(sections) <= {"latency"}
    if perf_tools_only:
        with_limits = False
    # The reference Kafka runs with no initial rebalance delay (compat.kafka); so does Ottla here,
    # or kafka-consumer-perf-test's group join would time Kafka's default 3 s wait.
    settings = {"group.initial.rebalance.delay.ms": "0", **DELETE_AT_ONCE}
    if args.nodes > 1:
        settings["default.replication.factor"] = str(args.nodes)
    result["meta"]["nodes"] = args.nodes
    result["meta"]["brokers"] = args.brokers
    serve_args = ["--nodes", str(args.nodes)] + (["--http-port", "0"] if args.console else [])
    storage = database.new_url() if database else None
    node_id = 1 if args.brokers > 1 else None
    with OttlaBroker(settings=settings, serve_args=serve_args, event_loop=args.event_loop, cpus=cpus, storage=storage, node_id=node_id) as broker, ExitStack() as stack:
        before = limits(broker.work_dir, plan, cpus) if with_limits else {}
        if with_limits:
            say(f"limits {before}")
        brokers = {"ottla": broker.bootstrap}
        others: list[OttlaBroker] = []
        if args.brokers > 1:
            # The rest of the cluster on the same database: clients find every partition's leader.
            others = [
                stack.enter_context(OttlaBroker(settings=settings, event_loop=args.event_loop, cpus=cpus, storage=storage, node_id=node))
                for node in range(2, args.brokers + 1)
            ]
            brokers["ottla"] = ",".join([broker.bootstrap, *(other.bootstrap for other in others)])
        if not perf_tools_only:
            host, port = stack.enter_context(bench_ceiling.responder(broker.work_dir / "ceiling", cpus))
            brokers["ceiling"] = f"{host}:{port}"
            result["ceiling"] = {}
        if database is not None:
            # The local engine in the same passes: the ratio is what the database costs.
            local = stack.enter_context(OttlaBroker(settings=settings, serve_args=serve_args, event_loop=args.event_loop, cpus=cpus))
            brokers["local"] = local.bootstrap
        data_dirs = [broker.data_dir] + ([local.data_dir] if database is not None else [])

        def settle() -> None:
            began = time.perf_counter()
            settle_disk(data_dirs)
            result["meta"]["settle_seconds"] = result["meta"].get("settle_seconds", 0.0) + time.perf_counter() - began

        peak_rss = stack.enter_context(PeakRss())
        peak_rss.watch("ottla", broker.rss_bytes)
        for node, other in enumerate(others, start=2):
            peak_rss.watch(f"ottla-{node}", other.rss_bytes)
        if database is not None:
            peak_rss.watch("local", local.rss_bytes)
        if args.against:
            kafka, cold = start_kafka(stack, say, cpus)
            brokers["kafka"] = kafka.bootstrap_servers
            data_dirs.append(kafka.dir / "data")
            peak_rss.watch("kafka", kafka.rss_bytes)
            result["kafka"] = {"cold_start": cold} if not perf_tools_only else {"produce": [], "consume": [], "latency": []}
        passes, polled, polls = [], [], []

        def polled_pass(i: int) -> None:
            assert broker.http is not None
            with bench_console.ConsolePoller(broker.http, pages) as poller:
                polled.append(workloads({"ottla": broker.bootstrap}, plan, lambda text: say(f"console open: {text}"), f"c{i}", settle=settle)["ottla"])
            polls.append(poller.report())

        if args.console:
            bench_console.prepare(broker.bootstrap)
        for i in range(0 if perf_tools_only else args.repeat):
            # With the console, passes alternate which of the two runs first (--repeat 2 or more).
            if args.console and i % 2:
                polled_pass(i)
            passes.append(workloads(brokers, plan, say, f"r{i}", sections, settle, reverse=bool(i % 2)))
            if args.console and not i % 2:
                polled_pass(i)
        for name in brokers if passes else ():
            result[name].update(best([figures[name] for figures in passes]))
        if perf_tools_only or (args.against and not args.only):
            # Kafka's consumer perf tool joins a group, which the responder does not serve.
            tool_passes = perf_tool_passes({name: address for name, address in brokers.items() if name != "ceiling"}, plan, args.repeat, say)
            result["perf_tools_passes"] = tool_passes
            result["perf_tools"] = {name: best_perf_tools(runs) for name, runs in tool_passes.items()}
        # Other load only ever slows a measurement down: the best of before and after is the ceiling.
        after = limits(broker.work_dir, plan, cpus) if with_limits else {}
        if with_limits:
            say(f"limits {after}")
        result["limits"] = {key: max(before[key], after[key]) for key in before}
        cluster = [megabytes for name, megabytes in peak_rss.peaks_mb.items() if name.startswith("ottla-")]
        for name, megabytes in peak_rss.peaks_mb.items():
            if not name.startswith("ottla-"):
                result.setdefault(name, {})["peak_rss_mb"] = megabytes
        if cluster and "peak_rss_mb" in result["ottla"]:
            # Each broker is held to the per-broker target: the row shows the largest.
            result["ottla"]["peak_rss_mb_each"] = [result["ottla"]["peak_rss_mb"], *cluster]
            result["ottla"]["peak_rss_mb"] = max(result["ottla"]["peak_rss_mb_each"])
    result["meta"]["load_average_end"] = os.getloadavg()[0]
    result["meta"]["seconds"] = time.monotonic() - started
    result["meta"]["load_average_min"], result["meta"]["load_average_max"] = min(loads), max(loads)
    result["passes"] = passes
    summary = with_spreads(result, passes, result.get("perf_tools_passes", {}))
    result["summary"] = [row.as_dict() for row in summary]
    result["meta"]["spread"] = "(max - min) / max over the passes"
    if args.console:
        # The same rows for the polled passes: their figures in Ottla's place, no one else's.
        console_rows = rows({"ottla": {**result["ottla"], **best(polled)}, "limits": result["limits"]})
        result["console"] = {"ottla": best(polled), "polls": polls, "summary": [row.as_dict() for row in console_rows]}

    print(table(result, summary))
    if database is not None:
        database.close()
        print(bench_postgres.beside_local(database.version, rows(result), rows(bench_postgres.local_view(result)), args.brokers))
    if args.console:
        print(bench_console.table(rows(result), console_rows, polls))
    meta = result["meta"]
    best_of = f", best of {args.repeat} passes" if args.repeat > 1 else ""
    print(f"ran {meta['seconds']:.0f} s{best_of} at commit {meta['commit']} on {meta['cpus']} cores; 1-min load average "
          f"{meta['load_average_start']:.1f} at start, {meta['load_average_end']:.1f} at end, {min(loads):.1f}-{max(loads):.1f} during the run")
    print(f"rerun: {rerun}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.console and any(poll["error_count"] or not poll["pages"] for poll in polls):
        print("the console's pages got errors or no answers: see above", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
