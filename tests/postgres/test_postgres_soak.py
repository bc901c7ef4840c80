"""`python -m compat.soak --quick --storage postgresql --brokers 3`: three brokers over one private
PostgreSQL, SIGKILLed in turn under idempotent acks=all producers and a churning group, lose no
acknowledged record, store none twice nor out of order per producer and partition, and commit no
offset ahead of what the group consumed. The load is one the brokers keep up with: a producer whose
requests wait past its delivery timeout bumps its epoch and sends again what may have been stored,
as librdkafka does against Kafka too. Rates and memory on a shared CI machine say nothing."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from unavailable import unavailable

from compat.postgres import PostgresUnavailable, server_bin_dir

pytestmark = [pytest.mark.external, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def test_three_postgresql_brokers_killed_in_turn_lose_duplicate_and_reorder_nothing() -> None:
    try:
        server_bin_dir()
    except PostgresUnavailable as exc:
        unavailable(str(exc))
    run = subprocess.run(
        [sys.executable, "-m", "compat.soak", "--quick", "--connections", "30", "--storage", "postgresql", "--brokers", "3"],
        cwd=REPO, capture_output=True, text=True, timeout=150,
    )
    report = run.stdout + run.stderr[-2000:]

    def figure(pattern: str) -> int:
        found = re.search(pattern, run.stdout, re.M)
        assert found, report
        return int(found[1])

    assert figure(r"^records acknowledged: (\d+)") > 0, report
    assert figure(r"^run: .* restarts survived: (\d+)") == 2, report
    assert figure(r"^records lost: (\d+)$") == 0, report
    assert figure(r"^duplicates: (\d+);") == 0, report
    assert figure(r"out of order per producer and partition: (\d+)$") == 0, report
    assert figure(r"^committed offsets ahead of consumption: (\d+)") == 0, report
