"""`python -m compat.bench_isolation --quick` runs every abuse scenario against `ottla serve` and
the bystander gets answers in each. Latencies are not asserted: on a shared CI machine they say
nothing, and issue 8's question (does the bystander keep its latency?) is the benchmark's to show."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from compat.bench_isolation import SCENARIOS

REPO = Path(__file__).resolve().parents[2]


def test_quick_isolation_bench_serves_the_bystander_in_every_scenario(tmp_path: Path) -> None:
    out = tmp_path / "isolation.json"
    run = subprocess.run(
        [sys.executable, "-m", "compat.bench_isolation", "--quick", "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=240,
    )
    assert run.returncode == 0, run.stdout + run.stderr[-2000:]
    assert "rerun: python -m compat.bench_isolation --quick" in run.stdout

    rows = {row["scenario"]: row for row in json.loads(out.read_text())["ottla"]["scenarios"]}
    assert list(rows) == list(SCENARIOS)
    assert all(row["requests"] > 0 for row in rows.values()), {name: row["requests"] for name, row in rows.items()}
    assert all(row["abusers"] > 0 for name, row in rows.items() if name != "baseline")
    assert all(row["counted_back"] for row in rows.values()), "abusers' connections were not counted back"
