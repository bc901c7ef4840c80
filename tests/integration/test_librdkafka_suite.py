"""librdkafka's own integration tests (its test-runner) against a real `ottla serve`.

A CI-sized selection (compat/suites/librdkafka/tests.toml, `[ci]`), the tests that need
three brokers against `ottla serve --nodes 3` (`[cluster]`), and the one-node SASL tests on a
SASL_PLAINTEXT listener (`[sasl]`); the long form is
`python -m compat.suite_librdkafka`. A test that fails, hangs or crashes fails here unless it is
listed, with its cause, among Ottla's known failures.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from compat import suite_librdkafka as suite
from unavailable import unavailable


def _built() -> None:
    if not suite.is_built():
        why = "librdkafka's test-runner is not built: run `python -m compat.install`"
        unavailable(why)


@pytest.fixture(scope="module")
def ci_results(tmp_path_factory: pytest.TempPathFactory) -> list[suite.Result]:
    _built()
    work: Path = tmp_path_factory.mktemp("librdkafka")
    return suite.run("ottla", suite.CI_TESTS, work, timeout=240)


@pytest.fixture(scope="module")
def cluster_results(tmp_path_factory: pytest.TempPathFactory) -> list[suite.Result]:
    _built()
    work: Path = tmp_path_factory.mktemp("librdkafka-cluster")
    return suite.run("ottla", suite.CLUSTER_TESTS, work, timeout=240, nodes=suite.CLUSTER_NODES)


@pytest.fixture(scope="module")
def sasl_results(tmp_path_factory: pytest.TempPathFactory) -> list[suite.Result]:
    _built()
    work: Path = tmp_path_factory.mktemp("librdkafka-sasl")
    return suite.run("ottla", suite.SASL_TESTS, work, timeout=240, sasl=True)


@pytest.mark.parametrize("number", suite.CI_TESTS)
def test_librdkafka_test_passes_on_ottla(ci_results: list[suite.Result], number: str) -> None:
    results = [r for r in ci_results if r.number == number]
    assert results, f"test-runner reported nothing for {number}"
    assert [(r.name, r.state, r.detail) for r in suite.unexpected(results, "ottla")] == []


@pytest.mark.parametrize("number", suite.CLUSTER_TESTS)
def test_librdkafka_multi_broker_test_passes_on_an_ottla_cluster(cluster_results: list[suite.Result], number: str) -> None:
    results = [r for r in cluster_results if r.number == number]
    assert results, f"test-runner reported nothing for {number}"
    assert [(r.name, r.state, r.detail) for r in results if r.state != "PASSED"] == []


@pytest.mark.parametrize("number", suite.SASL_TESTS)
def test_librdkafka_sasl_test_passes_on_ottla(sasl_results: list[suite.Result], number: str) -> None:
    """Over SCRAM-SHA-256 on a SASL_PLAINTEXT listener; a skip would mean the login never happened."""
    results = [r for r in sasl_results if r.number == number]
    assert results, f"test-runner reported nothing for {number}"
    assert [(r.name, r.state, r.detail) for r in results if r.state != "PASSED"] == []


def test_known_failures_are_still_failures(ci_results: list[suite.Result]) -> None:
    """A documented Ottla failure that now passes must leave the list, so the list stays true."""
    fixed = [r.name for r in ci_results if r.name in suite.KNOWN_OTTLA_FAILURES and r.state == "PASSED"]
    assert fixed == []


def test_selection_and_exclusions_are_disjoint() -> None:
    """Every test number is either run or excluded with a reason, never both."""
    assert set(suite.SELECTED) & set(suite.EXCLUDED) == set()
    assert set(suite.CLUSTER_TESTS) & (set(suite.SELECTED) | set(suite.EXCLUDED)) == set()
    passes = [set(suite.SELECTED), set(suite.EXCLUDED), set(suite.CLUSTER_TESTS) | set(suite.CLUSTER_LONG_TESTS), set(suite.ACL_TESTS),
              set(suite.SASL_TESTS) | set(suite.SASL_CLUSTER_TESTS)]
    assert sum(map(len, passes)) == len(set().union(*passes))
    assert set(suite.NOAUTOCREATE_TESTS) <= set(suite.SELECTED)
    assert set(suite.NOAUTOCREATE_CLUSTER_TESTS) & set().union(*passes) == set()
    assert set(suite.CI_TESTS) <= set(suite.SELECTED)
