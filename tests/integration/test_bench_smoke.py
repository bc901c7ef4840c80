"""`python -m compat.bench --quick` runs end to end and reports every section, the minimal
responder's ceiling among them. It must run, not meet the benchmark's targets: figures on a shared
CI machine say nothing, so none is asserted here. It runs with the brokers on one core and
Ottla on uvloop, so that those switches work too (on asyncio's loop, unpinned, every other
test runs it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from compat import kafka
from unavailable import unavailable

REPO = Path(__file__).resolve().parents[2]


def _numbers(value: object, path: str = ""):
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, (int, float)):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _numbers(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _numbers(item, f"{path}[{index}]")


def _quick_bench(tmp_path: Path, *args: str, timeout: float = 300) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """`python -m compat.bench --quick *args`, which must exit 0; its output and its JSON."""
    out = tmp_path / "bench.json"
    run = subprocess.run(
        [sys.executable, "-m", "compat.bench", "--quick", *args, "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=timeout,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return run, json.loads(out.read_text())


def test_quick_bench_reports_every_section(tmp_path: Path) -> None:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        unavailable("uvloop is not installed: python3 -m pip install -e '.[test]'")
    run, result = _quick_bench(tmp_path, "--cores", "1", "--event-loop", "uvloop")
    assert "rerun: python -m compat.bench --quick" in run.stdout
    # The clients keep to the CPUs past the first two, where there are two or more such.
    clients = sorted(os.sched_getaffinity(0))[2:]
    expected = f"on CPU(s) {','.join(map(str, clients))}" if len(clients) >= 2 else "unpinned"
    assert f"(--cores 1), clients {expected}; Ottla on the uvloop event loop" in run.stdout

    ottla, ceiling = result["ottla"], result["ceiling"]
    # The minimal responder (compat.bench_ceiling) runs every workload Ottla runs but cold start.
    for figures in (ottla, ceiling):
        assert {(r["size"], r["acks"], r["partitions"]) for r in figures["produce"]} == {
            (size, acks, partitions) for size in (1024, 100) for acks in ("1", "all") for partitions in (1, 8)
        }
        assert {(r["size"], r["partitions"]) for r in figures["consume"]} == {(1024, 1), (1024, 8), (100, 1), (100, 8)}
        assert [r["rate"] for r in figures["latency"]] == [1000, 10_000]
        assert set(figures["small_requests"]) == {"connections", "produce_rps", "metadata_rps"}
    assert set(ottla["cold_start"]) == {"ready_s", "first_produce_s", "idle_rss_mb"}
    assert set(result["limits"]) == {"disk_write_mb_s", "loopback_sink_mb_s", "pingpong_rps"}
    assert result["summary"] and result["meta"]["seconds"] > 0
    assert (result["meta"]["cores"], result["meta"]["event_loop"]) == (1, "uvloop")

    # Every workload row has its share of the ceiling, in the JSON and in the printed table.
    assert "of ceiling" in run.stdout
    shares = {row["metric"]: row["of_ceiling"] for row in result["summary"] if not row["metric"].startswith("cold start") and "RSS" not in row["metric"]}
    assert shares and all(share is not None and share > 0 for share in shares.values()), shares
    # The broker's memory is sampled while the workloads run, not only when idle.
    assert ottla["peak_rss_mb"] >= ottla["cold_start"]["idle_rss_mb"] / 2 > 0
    assert "peak RSS under the workloads" in run.stdout

    measured = dict(_numbers({key: result[key] for key in ("limits", "ottla", "ceiling")}))
    assert measured and all(value > 0 for value in measured.values()), {k: v for k, v in measured.items() if v <= 0}


def test_quick_bench_runs_one_section_alone(tmp_path: Path) -> None:
    """`--only latency` measures the end-to-end latency rows on Ottla and the responder and
    nothing else: no cold start, no machine limits, no throughput or small-request rows. With
    `--repeat 2` each row carries each broker's spread over the two passes, printed and kept."""
    run, result = _quick_bench(tmp_path, "--only", "latency", "--repeat", "2")
    assert "one section: latency (--only)" in run.stdout
    for figures in (result["ottla"], result["ceiling"]):
        assert [r["rate"] for r in figures["latency"]] == [1000, 10_000]
        assert (figures["produce"], figures["consume"]) == ([], [])
        assert "small_requests" not in figures
    assert "cold_start" not in result["ottla"] and result["limits"] == {}
    assert {row["metric"].split(" at ")[0] for row in result["summary"]} == {
        "e2e latency p50", "e2e latency p99", "e2e latency p999", "peak RSS under the workloads"}
    assert "spread: (max - min) / max of its passes" in run.stdout
    assert len(result["passes"]) == 2
    for row in result["summary"]:
        measured_twice = row["metric"].startswith("e2e latency")
        for key in ("spread", "ceiling_spread"):
            assert (row[key] is not None and 0 <= row[key] < 1) if measured_twice else row[key] is None, row
        assert row["kafka_spread"] is None


@pytest.mark.slow
def test_perf_tools_report_steady_state_rates_and_throttled_latencies(tmp_path: Path) -> None:
    """`--only perftest` runs Kafka's perf-test tools end to end: each pass's producer figures
    come from the tools' steady-state summaries, the latencies from the throttled run, and the
    pass that warms the broker up is not counted."""
    if not kafka.is_fetched():
        unavailable("Kafka's tools are not fetched: python -m compat.kafka --fetch")
    run, result = _quick_bench(tmp_path, "--only", "perftest", "--repeat", "2", timeout=600)
    assert "ottla perf tools warmed up (not counted)" in run.stderr
    passes = result["perf_tools_passes"]["ottla"]
    assert len(passes) == 2
    for figures in passes:
        assert figures["produce_rate_records_s"] == 25_000
        assert all(value > 0 for key, value in figures.items() if key != "consume_rebalance_ms"), figures
    rows = {row["metric"]: row for row in result["summary"]}
    for metric in ("kafka-producer-perf-test p50_ms at 25,000/s", "kafka-producer-perf-test p99_ms at 25,000/s", "kafka-producer-perf-test mb_s"):
        assert rows[metric]["spread"] is not None, rows
