"""The differential fuzzer (compat/fuzz_differential.py) on a tiny budget, against a real
`ottla serve` and the reference Kafka: it sends every input it draws to both, and reports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from compat.differential import REFERENCE_SETTINGS
from compat.fuzz_differential import SKIPPED, run
from compat.harness import OttlaBroker
from ottla.wire.api import ApiKey


@pytest.fixture(scope="module")
def ottla(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with OttlaBroker(tmp_path_factory.mktemp("fuzz-differential") / "ottla", settings=REFERENCE_SETTINGS) as broker:
        yield broker.bootstrap


def test_the_fuzzer_runs_against_both_and_reports(ottla: str, reference_kafka: str) -> None:
    report = run(ottla, reference_kafka, seed=3, count=40)
    assert report.sent + report.not_sent == 40 and report.sent > 0
    assert report.targets > 100  # every version of every client API both advertise
    assert not set(report.per_api) & {ApiKey(key).name for key in SKIPPED}
    lines = report.lines(lambda index: f"replay {index}")
    assert lines[0].startswith("seed 3: ")
    assert all(line.strip().startswith("replay: replay ") for line in lines[2::2])


def test_a_replay_sends_one_input_and_shows_both_answers(ottla: str, reference_kafka: str) -> None:
    shown: list[str] = []
    report = run(ottla, reference_kafka, seed=3, count=0, only=5, show=shown.append)
    assert report.sent + report.not_sent == 1
    if report.sent:
        assert [line.split(":")[0].strip() for line in shown[1:]] == ["Ottla", "Kafka"]


def test_the_module_is_a_command() -> None:
    from compat.fuzz_differential import main

    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0


def test_order_ids_and_duplicates_do_not_count_but_error_codes_do() -> None:
    from compat.fuzz_differential import Names, Peer, differences, skeleton

    names = Names("t")
    ottla, kafka = Peer("Ottla", "-", {"fzt-a": b"1" * 16}), Peer("Kafka", "-", {"fzt-a": b"2" * 16})
    body: dict[str, object] = {"topics": [{"name": "x"}, {"name": "y"}, {"name": "y"}]}  # named: not a listing
    ours = {"throttle_time_ms": 0, "topics": [{"name": "x", "topic_id": b"1" * 16, "error_code": 0},
                                              {"name": "y", "topic_id": bytes(16), "error_code": 3},
                                              {"name": "y", "topic_id": bytes(16), "error_code": 3}]}
    theirs = {"throttle_time_ms": 9, "topics": [{"name": "y", "topic_id": bytes(16), "error_code": 3},
                                                {"name": "x", "topic_id": b"2" * 16, "error_code": 36}]}
    shapes = skeleton(3, body, ours, ottla, names), skeleton(3, body, theirs, kafka, names)
    assert differences(*shapes) == [(".topics.<duplicates>", 1, "<absent>"),
                                    (".topics[x,<id of fzt-a>].error_code", "NONE", "TOPIC_ALREADY_EXISTS")]
