"""`python -m compat.bench_admin_stall` runs end to end against a real Ottla: each admin
operation it times is printed with the probe's round trips beside it. Figures on a shared CI
machine say nothing, so none is asserted beyond being measured at all."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_admin_stall_times_each_operation_with_the_probe(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "compat.bench_admin_stall", "--partitions", "8", "--rounds", "1", "--work-dir", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    # A short operation may end before any probe round trip does ("no round trip").
    rows = {match[1]: int(match[2] or 0) for match in re.finditer(r"^  (\S.*?)\s+[\d.]+ ms\s+probe: (?:n=(\d+)|no round trip)", run.stdout, re.MULTILINE)}
    assert set(rows) == {"idle (baseline)", "CreateTopics 1x8", "CreatePartitions 1->8", "DeleteTopics 8"}, run.stdout
    assert rows["idle (baseline)"] > 0, run.stdout
