"""franz-go's own kgo integration tests against Ottla (compat/suite_franz_go.py), CI-sized.

Every integration test must pass, skip itself for a capability Ottla does not advertise,
or be listed in KNOWN_OTTLA_FAILURES with its cause; a listed test that passes must leave the
list, so the list stays the truth; one in RACY_TESTS (its race with the tests beside it written
down) that fails is run again alone on the same broker and must pass then. They run twice: on one node with KGO_TEST_RF=1 (and the SASL
tests on a SASL_PLAINTEXT listener beside it), and on
`ottla serve --nodes 3` with KGO_TEST_RF=3, every partition on every node, as franz-go's own CI
runs them against a three-broker Kafka. Below, the parsing of `go test -json` and the REPORT.md
section rewrite are pinned without sockets.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compat import suite_franz_go as suite
from compat.harness import OttlaBroker
from unavailable import unavailable

# Tests that skip themselves while Ottla lacks a capability: they report their own reason, and
# start running when it is advertised (helpers_test.go's adm() reads ApiVersions); one that
# runs must leave the list.
CAPABILITY_SKIPS = {
    "TestIssueProduceBrokerTooOldFailsRecords": "runs only against a broker that no longer takes Produce v2",
}


@pytest.mark.parametrize("nodes", [1, 3], ids=["one-node", "three-nodes-rf3"])
def test_kgo_integration_tests_pass_on_ottla(nodes: int, tmp_path: Path) -> None:
    if not suite.is_built():
        why = "franz-go's kgo tests are not built: run `python -m compat.install` (needs go)"
        unavailable(why)
    log_path = tmp_path / "go-test.json"
    serve_args = ["--nodes", str(nodes)] if nodes > 1 else []
    with OttlaBroker(tmp_path / "ottla", log_level="debug", serve_args=serve_args) as ottla_serve:
        # The SASL tests on one node, where the runner adds their listener (as for Kafka).
        sasl = suite.with_sasl_listener(ottla_serve) if nodes == 1 else None
        tests = suite.INTEGRATION_TESTS + (suite.SASL_TESTS if sasl else ())
        outcomes = suite.run_tests(ottla_serve.bootstrap, tests, records=suite.CI_RECORDS,
                                   timeout_s=600, log_path=log_path, replication_factor=nodes, sasl=sasl)
        raced = sorted(suite.ottla_only_failures(outcomes) & set(suite.RACY_TESTS))
        if raced:
            alone = suite.run_tests(ottla_serve.bootstrap, raced, records=suite.CI_RECORDS, timeout_s=120,
                                    log_path=tmp_path / "go-test-racy-alone.json", replication_factor=nodes)
            outcomes.update(alone)

    failed = suite.ottla_only_failures(outcomes)
    new = {name: outcomes[name].message for name in failed - set(suite.KNOWN_OTTLA_FAILURES)}
    assert not new, f"kgo tests failing on Ottla (go test -json in {log_path}; {ottla_serve.log_tail()}): {new}"
    fixed = {name for name in suite.KNOWN_OTTLA_FAILURES if outcomes.get(name, suite.Outcome(name)).status == "pass"}
    assert not fixed, f"now passing: remove them from KNOWN_OTTLA_FAILURES: {sorted(fixed)}"
    unexpected_skips = {n: o.message for n, o in outcomes.items() if o.status == "skip" and n not in CAPABILITY_SKIPS}
    assert not unexpected_skips, f"skipped for no known missing capability: {unexpected_skips}"
    running = {n for n in CAPABILITY_SKIPS if outcomes.get(n, suite.Outcome(n)).status == "pass"}
    assert not running, f"now running: remove them from CAPABILITY_SKIPS: {sorted(running)}"


def test_every_known_failure_names_an_integration_test_and_a_cause() -> None:
    for name, cause in {**suite.KNOWN_OTTLA_FAILURES, **suite.RACY_TESTS}.items():
        assert name in suite.INTEGRATION_TESTS and cause.strip(), name


def _event(action: str, test: str, **extra: object) -> str:
    return json.dumps({"Action": action, "Package": suite.PACKAGE, "Test": test, **extra})


def test_outcomes_come_from_top_level_events_and_name_failed_subtests() -> None:
    outcomes = {name: suite.Outcome(name) for name in ("TestA", "TestB", "TestC")}
    for line in [
        _event("run", "TestA"),
        _event("output", "TestA/range", Output="    group_test.go:42: got 3 keys != exp 4\n"),
        _event("fail", "TestA/range", Elapsed=1.5),
        _event("pass", "TestA/sticky", Elapsed=1.0),
        _event("fail", "TestA", Elapsed=2.5),
        _event("output", "TestB", Output="    share_test.go:9: broker does not support share groups\n"),
        _event("skip", "TestB", Elapsed=0),
        "not json: the test binary's own stderr",
        _event("pass", "TestUnselected", Elapsed=0),
    ]:
        suite._apply_event(outcomes, line)
    assert (outcomes["TestA"].status, outcomes["TestA"].seconds, outcomes["TestA"].failed_subtests) == ("fail", 2.5, ["range"])
    assert outcomes["TestA"].message == "group_test.go:42: got 3 keys != exp 4\n"
    assert outcomes["TestB"].status == "skip" and "share groups" in outcomes["TestB"].message
    assert outcomes["TestC"].status == "run"  # never finished: counted as a failure
    assert suite.ottla_only_failures(outcomes) == {"TestA", "TestC"}


def test_report_section_replaces_only_its_own_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(suite, "report_section", lambda: f"{suite.SECTION_TITLE}\n\nnew table\n")
    report = tmp_path / "REPORT.md"
    report.write_text(f"# Matrix\n\n## Other\n\nkept\n\n{suite.SECTION_TITLE}\n\nold table\n\n## Later\n\nkept too\n")
    suite.write_report_section(report)
    assert report.read_text() == (
        f"# Matrix\n\n## Other\n\nkept\n\n{suite.SECTION_TITLE}\n\nnew table\n\n## Later\n\nkept too\n"
    )
    report.write_text("# Matrix\n")
    suite.write_report_section(report)
    assert report.read_text() == f"# Matrix\n\n{suite.SECTION_TITLE}\n\nnew table\n"
