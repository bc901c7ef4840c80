"""The tool x step table `python -m compat.tools --table` prints from a saved run, without
sockets: a row per step, each broker's result with the reason of any that did not pass, and
the output comparison."""

from __future__ import annotations

from pathlib import Path

from compat.tools import FAIL, NOT_APPLICABLE, PASS, STEPS, ToolResult, load_run, main, save_run


def _run() -> tuple[list[ToolResult], list[ToolResult]]:
    ottla, kafka = [], []
    for index, step in enumerate(STEPS):
        if step.not_applicable:
            ottla.append(ToolResult(step.name, step.tool, NOT_APPLICABLE, step.not_applicable))
            kafka.append(ToolResult(step.name, step.tool, NOT_APPLICABLE, step.not_applicable))
        elif index == 0:
            ottla.append(ToolResult(step.name, step.tool, FAIL, "no 'Created topic' line", "nothing\n"))
            kafka.append(ToolResult(step.name, step.tool, PASS, "", "Created topic t.\n"))
        else:
            ottla.append(ToolResult(step.name, step.tool, PASS, "", "line\n", seconds=1.5))
            kafka.append(ToolResult(step.name, step.tool, PASS, "", "line\n", seconds=2.5))
    return ottla, kafka


def test_a_saved_run_prints_a_row_per_step(tmp_path: Path, capsys) -> None:
    path = tmp_path / "run.json"
    save_run(path, *_run())
    assert load_run(path) == _run()
    assert main(["--table", str(path)]) == 1  # a step failed on Ottla
    header, rule, *rows = capsys.readouterr().out.splitlines()
    assert header == "| step | Ottla | Kafka | output vs Kafka |" and rule == "|---|---|---|---|"
    assert [row.split(" | ")[0].strip("|` ") for row in rows] == [s.name for s in STEPS]
    assert rows[0].split(" | ")[1:3] == ["FAIL: no 'Created topic' line", "pass"]
    assert rows[0].split(" | ")[-1].startswith("NEW: 1, e.g. tool kafka-topics --create: status")
    for step, row in zip(STEPS[1:], rows[1:]):
        verdict = row.split(" | ")[-1]
        if step.not_applicable:
            assert row.split(" | ")[1].startswith("n/a: ") and verdict == "not run |"
        elif step.compare_output:
            assert verdict == "same |"
        else:
            assert verdict.startswith("not compared")
