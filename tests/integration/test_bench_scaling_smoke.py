"""`python -m compat.bench_scaling` (compat/SCALING.md's measured scaling) runs end to end against a
real Ottla, and against two (`ottla-2proc`, each serving half the partitions): its raw-socket
generator moves the volume it was given, every Produce answered with
error code 0 at the base offset expected, and reads all of it back to the same offsets. Figures on
a shared CI machine say nothing, so none is asserted beyond being measured at all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from compat.bench_scaling import PARTITIONS, RECORDS_PER_BATCH
from unavailable import unavailable

REPO = Path(__file__).resolve().parents[2]


def test_bench_scaling_moves_the_volume_on_one_core_and_two(tmp_path: Path) -> None:
    if not {0, 1} <= os.sched_getaffinity(0):
        unavailable("compat.bench_scaling pins to CPUs 0 and 1")
    out = tmp_path / "scaling.json"
    run = subprocess.run(
        [sys.executable, "-m", "compat.bench_scaling", "--brokers", "ottla,ottla-2proc", "--volume-mb", "20", "--warmup-mb", "0",
         "--reads", "2", "--repeat", "1", "--wait-quiet", "0", "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(out.read_text())
    runs = result["runs"]
    assert sorted((r["broker"], r["workload"], r["cores"]) for r in runs) == [
        (broker, workload, cores) for broker in ("ottla", "ottla-2proc") for workload in ("consume", "produce") for cores in (1, 2)
    ]
    for broker, cores in ((broker, cores) for broker in ("ottla", "ottla-2proc") for cores in (1, 2)):
        produced, consumed = (next(r for r in runs if (r["broker"], r["workload"], r["cores"]) == (broker, workload, cores)) for workload in ("produce", "consume"))
        # Each partition's log end advanced by whole batches, the same for all, to 20 MB or so.
        ends = produced["offsets"]
        assert len(ends) == PARTITIONS and len(set(ends)) == 1 and ends[0] % RECORDS_PER_BATCH == 0 and ends[0] > 0, produced
        assert 15 <= produced["megabytes"] <= 25 and produced["answers"] == sum(ends) // RECORDS_PER_BATCH, produced
        assert consumed["offsets"] == ends and abs(consumed["megabytes"] - 2 * produced["megabytes"]) < 0.01, consumed
        for figures in (produced, consumed):
            assert figures["seconds"] > 0 and figures["broker_cpu"] > 0 and figures["generator_cpu"] > 0, figures
            assert "loop" in figures["threads"], figures
            # Each process served its half of the partitions.
            assert len(figures["process_cpu"]) == (2 if broker == "ottla-2proc" else 1) and min(figures["process_cpu"]) > 0.2 * max(figures["process_cpu"]), figures
    rows = {(row["broker"], row["workload"]): row for row in result["summary"]}
    assert set(rows) == {(broker, workload) for broker in ("ottla", "ottla-2proc") for workload in ("produce", "consume")}
    assert all(row["scaling"] > 0 for row in rows.values()), rows
