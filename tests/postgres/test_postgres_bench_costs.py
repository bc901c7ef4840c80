"""`python -m compat.bench_postgres` (compat/SCALING-postgresql.md's per-MB figures) runs end to
end on a tiny scale and reports every row. Rates and CPU on a shared CI machine say nothing; what
is asserted holds at any load: each produce row took append statements and wrote at least one
byte of WAL per byte produced (the batches are stored whole, uncompressed), each consume row
took read statements."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from unavailable import unavailable

from compat.bench_postgres import COST_ROWS
from compat.postgres import PostgresUnavailable, server_bin_dir

pytestmark = [pytest.mark.external, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def test_costs_report_every_row() -> None:
    try:
        server_bin_dir()
    except PostgresUnavailable as exc:
        unavailable(str(exc))
    run = subprocess.run(
        [sys.executable, "-m", "compat.bench_postgres", "--scale", "0.01"], cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    header, *lines = run.stdout.strip().splitlines()
    assert header.split()[:2] == ["row", "MB"]
    assert len(lines) == len(COST_ROWS)
    for line, (label, kind, *_) in zip(lines, COST_ROWS):
        assert line.startswith(label), line
        megabytes, broker_ms, database_ms, wal, appends, _, _, reads, _ = line[len(label):].split()
        assert float(megabytes) > 0 and float(broker_ms) > 0, line
        if kind == "produce":
            assert int(appends) > 0 and reads == "0" and float(wal) >= 1.0, line
        else:
            assert int(reads) > 0 and appends == "0", line
