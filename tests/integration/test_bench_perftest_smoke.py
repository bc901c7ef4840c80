"""`python -m compat.bench --only perftest` runs Kafka's perf-test tools end to end: each pass's
producer figures come from the tools' steady-state summaries, the latencies from the throttled
run, and the pass that warms the broker up is not counted. Figures on a shared CI machine say
nothing, so none is asserted beyond being measured at all."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from compat import kafka
from unavailable import unavailable

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_perf_tools_report_steady_state_rates_and_throttled_latencies(tmp_path: Path) -> None:
    if not kafka.is_fetched():
        unavailable("Kafka's tools are not fetched: python -m compat.kafka --fetch")
    out = tmp_path / "bench.json"
    run = subprocess.run(
        [sys.executable, "-m", "compat.bench", "--quick", "--only", "perftest", "--repeat", "2", "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ottla perf tools warmed up (not counted)" in run.stderr
    result = json.loads(out.read_text())
    passes = result["perf_tools_passes"]["ottla"]
    assert len(passes) == 2
    for figures in passes:
        assert figures["produce_rate_records_s"] == 25_000
        assert all(value > 0 for key, value in figures.items() if key != "consume_rebalance_ms"), figures
    rows = {row["metric"]: row for row in result["summary"]}
    for metric in ("kafka-producer-perf-test p50_ms at 25,000/s", "kafka-producer-perf-test p99_ms at 25,000/s", "kafka-producer-perf-test mb_s"):
        assert rows[metric]["spread"] is not None, rows
