"""librdkafka's own integration tests (its test-runner) against a real `ottla serve`.

A CI-sized selection (compat/suites/librdkafka/tests.toml, `[ci]`); the long form is
`python -m compat.suite_librdkafka`. A test that fails, hangs or crashes fails here unless it is
listed, with its cause, among Ottla's known failures.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from compat import suite_librdkafka as suite


@pytest.fixture(scope="module")
def ci_results(tmp_path_factory: pytest.TempPathFactory) -> list[suite.Result]:
    if not suite.is_built():
        why = "librdkafka's test-runner is not built: run `python -m compat.install`"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    work: Path = tmp_path_factory.mktemp("librdkafka")
    return suite.run("ottla", suite.CI_TESTS, work, timeout=240)


@pytest.mark.parametrize("number", suite.CI_TESTS)
def test_librdkafka_test_passes_on_ottla(ci_results: list[suite.Result], number: str) -> None:
    results = [r for r in ci_results if r.number == number]
    assert results, f"test-runner reported nothing for {number}"
    assert [(r.name, r.state, r.detail) for r in suite.unexpected(results, "ottla")] == []


def test_known_failures_are_still_failures(ci_results: list[suite.Result]) -> None:
    """A documented Ottla failure that now passes must leave the list, so the list stays true."""
    fixed = [r.name for r in ci_results if r.name in suite.KNOWN_OTTLA_FAILURES and r.state == "PASSED"]
    assert fixed == []


def test_selection_and_exclusions_are_disjoint() -> None:
    """Every test number is either run or excluded with a reason, never both."""
    assert set(suite.SELECTED) & set(suite.EXCLUDED) == set()
    assert set(suite.CI_TESTS) <= set(suite.SELECTED)
