"""`python -m compat.bench_metrics`, CI-sized, runs end to end and its scrapes are whole: every
partition's log size and every committed lag is in both the Prometheus text and the OpenMetrics
page, read by prometheus_client's parsers. Its timings are printed, never asserted: figures on
a shared CI machine say nothing (the full run, 1,000 partitions and 100 groups, is the
benchmark's default)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_scrape_benchmark_reports_complete_parsed_scrapes(tmp_path: Path) -> None:
    out = tmp_path / "bench_metrics.json"
    topics, partitions, groups, scrapes = 6, 4, 9, 3
    run = subprocess.run(
        [sys.executable, "-m", "compat.bench_metrics", "--topics", str(topics), "--partitions", str(partitions),
         "--groups", str(groups), "--scrapes", str(scrapes), "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "rerun: python -m compat.bench_metrics --topics 6" in run.stdout

    report = json.loads(out.read_text())
    assert (report["partitions"], report["groups"]) == (topics * partitions, groups)
    # Group i commits every partition of topic i % topics: more groups than topics share some.
    assert report["expected"] == {"log_size_series": topics * partitions, "lag_series": groups * partitions}
    for page in ("text", "openmetrics"):
        figures = report[page]
        assert figures["scrapes"] == scrapes
        assert {key: figures[key] for key in report["expected"]} == report["expected"], page
        assert figures["families"] > 20 and figures["samples"] > figures["lag_series"] + figures["log_size_series"]
        assert 0 < figures["median_ms"] <= figures["p90_ms"] <= figures["max_ms"] and figures["bytes"] > 0
