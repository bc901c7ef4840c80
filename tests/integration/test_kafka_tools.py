"""Kafka's own command-line tools against a real `ottla serve`: every step must pass, and print
what it prints against the reference Kafka, but for the differences compat.differential lists."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from compat.differential import REFERENCE_SETTINGS, compare_tools
from compat.harness import OttlaBroker
from compat.tools import NOT_APPLICABLE, NOT_INSTALLED, PASS, STEPS, Names, ToolResult, installed, run_tools, save_run
from unavailable import unavailable


@pytest.fixture(scope="module")
def tool_runs(tmp_path_factory: pytest.TempPathFactory, reference_kafka: str) -> Iterator[tuple[list[ToolResult], list[ToolResult]]]:
    """The same steps, names and records against Ottla and against the reference Kafka, side by side."""
    missing = installed()
    if missing:
        unavailable(missing)
    tag = uuid.uuid4().hex[:8]
    work: Path = tmp_path_factory.mktemp("tools")
    with OttlaBroker(work / "ottla", settings=REFERENCE_SETTINGS) as ottla, ThreadPoolExecutor(2) as pool:
        runs = [pool.submit(run_tools, Names(bootstrap, f"tools-{tag}", f"tools-{tag}"))
                for bootstrap in (ottla.bootstrap, reference_kafka)]
        results = runs[0].result(), runs[1].result()
        if os.environ.get("COMPAT_TOOLS_RUN"):  # for `python -m compat.tools --table`
            save_run(Path(os.environ["COMPAT_TOOLS_RUN"]), *results)
        yield results


@pytest.mark.parametrize("step", range(len(STEPS)), ids=[s.name for s in STEPS])
def test_tool_step_passes_against_ottla(tool_runs: tuple[list[ToolResult], list[ToolResult]], step: int) -> None:
    result = tool_runs[0][step]
    assert result.status != NOT_INSTALLED, result.reason
    if STEPS[step].not_applicable:
        assert result.status == NOT_APPLICABLE
        pytest.skip(result.reason)
    assert result.status == PASS, f"{result.reason}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr[-2000:]}"


def test_tool_steps_pass_against_kafka(tool_runs: tuple[list[ToolResult], list[ToolResult]]) -> None:
    """The checks themselves are right: the reference passes them all."""
    assert [(r.step, r.reason) for r in tool_runs[1] if r.status not in (PASS, NOT_APPLICABLE)] == []


def test_tools_print_what_they_print_against_kafka(tool_runs: tuple[list[ToolResult], list[ToolResult]]) -> None:
    unexplained = [d for d in compare_tools(*tool_runs) if d.deviation() is None and d.open_finding() is None]
    assert unexplained == [], "\n".join(map(str, unexplained))
