"""segmentio/kafka-go's own tests (compat/suite_kafka_go.py) against Ottla, CI-sized.

CI_TESTS, the protocol-heavy selection, runs on a real `ottla serve` with kafka-go CI's broker
settings on the fixed ports 9092 and 9093 its code dials (nothing else in the suite binds them).
Every selected test must pass, skip itself (kafka-go decides its skips from KAFKA_VERSION alone),
or be listed with its cause; a listed one that passes must leave its list, so the lists stay true.
The whole run is by hand (`python -m compat.suite_kafka_go --broker ottla|kafka`, about four
minutes each on two cores). Below, the runner's lists, its -test.skip pattern and its REPORT.md
section are also pinned without sockets.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from compat import suite_kafka_go as suite
from unavailable import unavailable


def test_kafka_go_ci_tests_pass_on_ottla(tmp_path: Path) -> None:
    if not suite.is_built():
        unavailable("kafka-go's tests are not built: run `python -m compat.install` (needs go)")
    busy = suite.ports_in_use()
    if busy:
        unavailable(f"ports {busy} are in use: kafka-go's tests dial a broker on localhost:9092 and :9093")
    log_path = tmp_path / "go-test.json"
    with suite.broker_on_fixed_ports("ottla", tmp_path, "debug"):
        outcomes = suite.run_tests(300, log_path, suite.ci_run_pattern())

    where = f"go test -json in {log_path}, Ottla's log in {tmp_path / 'ottla' / 'broker.log'}"
    assert set(outcomes) == set(suite.CI_TESTS), f"selected tests missing from the binaries: {set(suite.CI_TESTS) - set(outcomes)}"
    failed = suite.unexpected_failures(outcomes) - set(suite.KNOWN_OTTLA_FAILURES)
    assert not failed, f"kafka-go tests failing on Ottla ({where}): {({n: outcomes[n].message for n in failed})}"
    listed = set(suite.KNOWN_OTTLA_FAILURES) | set(suite.FAILING_ON_KAFKA)
    passing = sorted(n for n in listed & set(outcomes) if outcomes[n].status == "pass")
    assert not passing, (
        f"listed as failing, passing on Ottla: a KNOWN_OTTLA_FAILURES entry leaves its list; a FAILING_ON_KAFKA "
        f"one means Ottla now answers unlike Kafka (check it on the reference): {passing}")


def test_every_listed_test_has_a_cause_and_no_list_overlaps() -> None:
    for name, why in {**suite.KNOWN_OTTLA_FAILURES, **suite.FAILING_ON_KAFKA, **suite.SKIPPED_SUBTESTS}.items():
        assert name.startswith("Test") and why.strip(), name
    assert not set(suite.KNOWN_OTTLA_FAILURES) & set(suite.FAILING_ON_KAFKA)
    assert len(set(suite.CI_TESTS)) == len(suite.CI_TESTS) and all(name.startswith("Test") for name in suite.CI_TESTS)


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
