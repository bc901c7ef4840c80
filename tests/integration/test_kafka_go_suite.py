"""The runner of segmentio/kafka-go's own tests (compat/suite_kafka_go.py), without sockets.

The tests themselves run by hand (`python -m compat.suite_kafka_go --broker ottla|kafka`, about
four minutes each on two cores, on the fixed ports 9092 and 9093 their code dials); here, the
lists of the runner, its -test.skip pattern and its REPORT.md section are pinned.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from compat import suite_kafka_go as suite


def test_every_listed_test_has_a_cause_and_no_list_overlaps() -> None:
    for name, why in {**suite.KNOWN_OTTLA_FAILURES, **suite.FAILING_ON_KAFKA, **suite.SKIPPED_SUBTESTS}.items():
        assert name.startswith("Test") and why.strip(), name
    assert not set(suite.KNOWN_OTTLA_FAILURES) & set(suite.FAILING_ON_KAFKA)


def test_skip_pattern_matches_each_skipped_subtest_at_its_level() -> None:
    parent, subtests = suite.skip_pattern().split("/", 1)
    for name in suite.SKIPPED_SUBTESTS:
        top, sub = name.split("/", 1)
        assert re.search(parent, top) and re.search(subtests, sub), name
    # Anchored: a subtest whose name only starts with a skipped one's still runs.
    assert not re.search(subtests, "consumer_group_rebalance_across_topics")


def test_report_section_lists_only_tests_not_passing_on_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = {
        "kafka": ("Kafka 4.4", {"TestA": suite.Outcome("TestA", "pass"), "TestClientElectLeaders": suite.Outcome("TestClientElectLeaders", "fail")}),
        "ottla": ("Ottla x", {"TestA": suite.Outcome("TestA", "pass"), "TestClientElectLeaders": suite.Outcome("TestClientElectLeaders", "fail")}),
    }
    monkeypatch.setattr(suite, "load_results", lambda broker: runs[broker])
    section = suite.report_section()
    assert "| TestA |" not in section
    assert f"| TestClientElectLeaders | fail | fail | {suite.FAILING_ON_KAFKA['TestClientElectLeaders']} |" in section
    report = tmp_path / "REPORT.md"
    report.write_text("# Matrix\n\n## Other\n\nkept\n")
    suite.write_report_section(report)
    assert report.read_text() == f"# Matrix\n\n## Other\n\nkept\n\n{section}"
