"""`python -m compat.bench_scaling --tls` (compat/SCALING.md's TLS section) runs end to end against
a real Ottla with an SSL listener: its generator, over TLS, moves the volume it was given, every
Produce answered with error code 0 at the base offset expected, and reads all of it back to the
same offsets, on one core and two. Figures on a shared CI machine say nothing, so none is asserted
beyond being measured at all."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from compat.bench_scaling import PARTITIONS, RECORDS_PER_BATCH, TLS_KINDS
from unavailable import unavailable

REPO = Path(__file__).resolve().parents[2]


def test_bench_scaling_moves_the_volume_over_tls_on_one_core_and_two(tmp_path: Path) -> None:
    if not {0, 1} <= os.sched_getaffinity(0):
        unavailable("compat.bench_scaling pins to CPUs 0 and 1")
    out = tmp_path / "scaling.json"
    spy = shutil.which("py-spy") is not None
    run = subprocess.run(
        [sys.executable, "-m", "compat.bench_scaling", "--tls", "--volume-mb", "10", "--warmup-mb", "0", "--reads", "2",
         "--repeat", "1", "--wait-quiet", "0", "--json", str(out), *(["--spy"] if spy else [])],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(out.read_text())
    runs = result["runs"]
    assert sorted((r["broker"], r["workload"], r["cores"]) for r in runs) == [
        ("ottla", workload, cores) for workload in ("consume", "produce") for cores in (1, 2)
    ]
    for cores in (1, 2):
        produced, consumed = (next(r for r in runs if (r["workload"], r["cores"]) == (workload, cores)) for workload in ("produce", "consume"))
        ends = produced["offsets"]
        assert len(ends) == PARTITIONS and len(set(ends)) == 1 and ends[0] % RECORDS_PER_BATCH == 0 and ends[0] > 0, produced
        assert 5 <= produced["megabytes"] <= 15 and produced["answers"] == sum(ends) // RECORDS_PER_BATCH, produced
        assert consumed["offsets"] == ends and abs(consumed["megabytes"] - 2 * produced["megabytes"]) < 0.01, consumed
        for figures in (produced, consumed):
            assert figures["seconds"] > 0 and figures["broker_cpu"] > 0 and figures["generator_cpu"] > 0, figures
            assert "loop" in figures["threads"], figures
    one_core_consume = next(r for r in runs if (r["workload"], r["cores"]) == ("consume", 1))
    if spy and one_core_consume["split"]:
        # Sampled (py-spy may be refused ptrace): the loop's samples split with TLS's kinds apart.
        assert set(TLS_KINDS) <= set(one_core_consume["split"]), one_core_consume["split"]
    assert {row["workload"] for row in result["summary"]} == {"produce", "consume"}
