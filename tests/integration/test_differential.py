"""The differential suite: every scenario and every API version both brokers advertise, run
against Ottla and the reference Apache Kafka, with any difference either explained (LEGITIMATE,
DEVIATIONS in compat/differential.py and the README) or a reported open finding (OPEN).
Below, the comparison rules are pinned without sockets."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from compat.differential import (
    OPEN, REFERENCE_SETTINGS, Difference, RequestOutcome, compare, run_requests, run_scenario, scenarios,
)
from compat.harness import OttlaBroker
from unavailable import unavailable

TAG = uuid.uuid4().hex[:8]  # one per session: the same names on both brokers, fresh on the shared Kafka


@pytest.fixture(scope="module")
def ottla(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with OttlaBroker(tmp_path_factory.mktemp("differential") / "ottla", settings=REFERENCE_SETTINGS) as broker:
        yield broker.bootstrap


def _unexplained(differences: list[Difference]) -> list[Difference]:
    return [d for d in differences if d.deviation() is None and d.open_finding() is None]


@pytest.mark.parametrize("scenario", scenarios(), ids=lambda s: s.name)
def test_scenario_observes_the_same_on_both(scenario, ottla: str, reference_kafka: str) -> None:
    outcome = run_scenario(scenario, ottla, reference_kafka, TAG)
    if outcome.skipped:
        unavailable(outcome.skipped)
    unexplained = _unexplained(outcome.differences)
    assert unexplained == [], "\n".join(map(str, unexplained))


@pytest.fixture(scope="module")
def requests(ottla: str, reference_kafka: str) -> RequestOutcome:
    return run_requests(ottla, reference_kafka, TAG)


def test_every_api_both_advertise_is_compared(requests: RequestOutcome) -> None:
    assert requests.skipped == [], "no request body for these APIs: add one to compat.differential._request_body"
    assert len(requests.compared) >= 150


def test_requests_answer_the_same_on_both(requests: RequestOutcome) -> None:
    unexplained = _unexplained(requests.differences)
    assert unexplained == [], "\n".join(map(str, unexplained))


def test_open_findings_are_still_open(requests: RequestOutcome) -> None:
    """An entry of OPEN that no longer shows was fixed: remove it, so the suite guards the fix.
    Only the request differ's findings show here; a tool step's shows in the tools' comparison."""
    seen = {d.open_finding().name for d in requests.differences if d.open_finding()}  # type: ignore[union-attr]
    assert [o.name for o in OPEN if o.where.startswith("^request") and o.name not in seen] == []


def test_legitimate_fields_and_order_do_not_count() -> None:
    ottla = {"cluster_id": "a", "throttle_time_ms": 0, "topics": [{"name": "x", "topic_id": b"1", "error_code": 0},
                                                                  {"name": "y", "topic_id": b"2", "error_code": 0}]}
    kafka = {"cluster_id": "b", "throttle_time_ms": 7, "topics": [{"name": "y", "topic_id": b"3", "error_code": 0},
                                                                  {"name": "x", "topic_id": b"4", "error_code": 0}]}
    assert compare(ottla, kafka, "t: ") == []


def test_a_difference_names_its_field_by_the_struct_it_is_in() -> None:
    ottla = {"topics": [{"name": "x", "error_code": 0}, {"name": "y", "error_code": 0}]}
    kafka = {"topics": [{"name": "y", "error_code": 36}, {"name": "x", "error_code": 0}]}
    assert [(d.where, d.ottla, d.kafka) for d in compare(ottla, kafka, "t: ")] == [("t: .topics.[y].error_code", 0, 36)]


def test_a_missing_field_and_a_null_are_different() -> None:
    (difference,) = compare({"configs": None}, {"configs": []}, "request CREATE_TOPICS v5: .topics.[t]")
    assert (difference.ottla, difference.kafka) == (None, [])
    assert difference.deviation() is None and difference.open_finding() is None


def test_deviations_match_only_what_they_document() -> None:
    closed = Difference("request PRODUCE v1: .connection", "<absent>", "closed (ConnectionError)")
    assert closed.deviation() is not None and closed.deviation().name == "old Produce versions"  # type: ignore[union-attr]
    assert Difference("request PRODUCE v3: .responses", 1, 2).deviation() is None
