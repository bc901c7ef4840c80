"""The compatibility matrix under pytest: every stock client through every scenario, each
against its own real Ottla process (`python -m compat` runs the same and writes REPORT.md).
Below it, the scenario's checks are pinned without sockets, so a lenient check cannot turn a
broken broker green."""

from __future__ import annotations

import signal
from types import SimpleNamespace

import pytest

from compat.clients import CLIENTS, Client, NotInstalled
from compat.harness import OttlaBroker
from compat.matrix import FAIL, NOT_INSTALLED, run_matrix, run_scenario
from compat.scenarios import (
    CLUSTER_SCENARIOS, SCENARIOS, SECURITY_SCENARIOS, ScenarioFailure, check_read, check_read_once, not_applicable, splits_partitions,
)

# Only the pairs that run; the matrix lists the others as n/a, with the reason. The security and
# cluster columns run in test_security_matrix.py and test_cluster_matrix.py, on one broker each.
RUNS = [(client, scenario) for scenario in SCENARIOS if scenario not in SECURITY_SCENARIOS | CLUSTER_SCENARIOS
        for client in CLIENTS.values() if not_applicable(client, scenario) is None]


@pytest.mark.parametrize(("compat_client", "scenario"), RUNS, ids=[f"{c.name}-{s}" for c, s in RUNS], indirect=["compat_client"])
def test_client(compat_client: Client, scenario: str, ottla_serve: OttlaBroker) -> None:
    result = run_scenario(compat_client, scenario, ottla_serve)
    if result.status == FAIL:
        sent = ", ".join(f"{api} {versions}" for api, versions in ottla_serve.requests_seen().items())
        pytest.fail(f"{result.reason}\n\n{result.detail}\n\nrequests sent: {sent}\n{ottla_serve.log_tail()}",
                    pytrace=False)


def test_ottla_serve_keeps_its_data_dir_and_port_and_stops_on_sigint(ottla_serve: OttlaBroker) -> None:
    """The harness's contract with `ottla serve`: ready line, same port on restart, exit 0 on SIGINT."""
    port = ottla_serve.port
    ottla_serve.restart()
    assert ottla_serve.port == port
    assert f"data={ottla_serve.data_dir}" in ottla_serve.log_path.read_text()
    ottla_serve.stop(signal.SIGINT)  # raises unless the broker exits 0


def _good_read() -> tuple[dict, list[list]]:
    """A read as the scenario expects it: keys round-robin over 3 partitions."""
    records, delivered = [], []
    for i in range(1000):
        partition, offset = i % 3, i // 3
        records.append([partition, offset, f"k{i}", f"v{i}"])
        delivered.append([f"k{i}", partition, offset])
    return {"partitions": 3, "records": records}, delivered


def test_check_read_accepts_exactly_what_was_produced() -> None:
    read, delivered = _good_read()
    assert check_read(read, delivered) == []
    assert check_read(read, None) == []


def _lose_one(read: dict) -> None:
    read["records"].pop()


def _repeat_one(read: dict) -> None:
    read["records"].append(read["records"][0])


def _corrupt_value(read: dict) -> None:
    read["records"][5][3] = "v0"


def _skip_offset_zero(read: dict) -> None:
    for record in read["records"][:3]:  # the first record of each partition
        record[1] += 1


def _swap_first_two_of_partition_0(read: dict) -> None:
    records = read["records"]
    records[0][2:], records[3][2:] = records[3][2:], records[0][2:]


def _lose_partitions(read: dict) -> None:
    read["partitions"] = 1


@pytest.mark.parametrize(("damage", "expected"), [
    (_lose_one, "1 of 1000 records missing"),
    (_repeat_one, "seen more than once"),
    (_corrupt_value, "wrong values"),
    (_skip_offset_zero, "offsets not 0.."),
    (_swap_first_two_of_partition_0, "out of send order"),
    (_lose_partitions, "metadata shows 1 partitions"),
])
def test_check_read_names_each_kind_of_damage(damage, expected: str) -> None:
    read, delivered = _good_read()
    damage(read)
    assert any(expected in problem for problem in check_read(read, delivered)), check_read(read, delivered)


def test_check_read_holds_records_to_where_produce_acked_them() -> None:
    read, delivered = _good_read()
    delivered[0] = ["k0", 1, 0]
    assert any("not where Produce said" in p for p in check_read(read, delivered))


def test_missing_client_is_never_reported_as_passed(tmp_path) -> None:
    def absent() -> str:
        raise NotInstalled("not on PATH")

    def no_broker(_: object):
        raise AssertionError("a client that is not installed needs no broker")

    ghost = Client("ghost", ("false",), absent)
    versions, results = run_matrix([ghost], list(SCENARIOS), no_broker, tmp_path)
    assert [r.status for r in results] == [NOT_INSTALLED] * len(SCENARIOS)
    assert "not on PATH" in results[0].reason


def test_group_checks_name_repeats_gaps_and_overlapping_assignments() -> None:
    produced = {(p, o) for p in range(4) for o in range(3)}
    check_read_once("ok", sorted(produced), produced)
    with pytest.raises(ScenarioFailure, match="read twice"):
        check_read_once("dup", sorted(produced) + [(0, 0)], produced)
    with pytest.raises(ScenarioFailure, match="never read"):
        check_read_once("gap", sorted(produced - {(3, 2)}), produced)

    def member(*partitions: int) -> SimpleNamespace:
        return SimpleNamespace(assignment=list(partitions) if partitions else None)

    assert splits_partitions(member(0, 1), member(2, 3))
    assert not splits_partitions(member(0, 1, 2), member(2, 3))  # partition 2 twice
    assert not splits_partitions(member(0, 1), member(2))  # partition 3 read by nobody
    assert not splits_partitions(member(0, 1, 2, 3), member())  # one member idle: no split


def test_a_matrix_report_keeps_the_sections_other_runners_own(tmp_path) -> None:
    """`python -m compat` writes REPORT.md whole: the client suites' sections, written by their
    own runners, must survive it, in their order, and a new matrix never duplicates them."""
    from compat import connect, streams, suite_franz_go, suite_kafka_go, suite_librdkafka
    from compat.report_sections import RUNNER_SECTIONS, carry_over

    owned = {suite_franz_go.SECTION_TITLE, suite_kafka_go.SECTION_TITLE, suite_librdkafka.SECTION_TITLE,
             streams.REPORT_TITLE, connect.REPORT_TITLE}
    assert owned <= set(RUNNER_SECTIONS)
    report = tmp_path / "REPORT.md"
    report.write_text("# old matrix\n\n## Scenarios\n\nold\n\n## franz-go suite\n\nkgo: 36 of 36\n\n"
                      "## librdkafka suite\n\n### table\n\nrdkafka: 90 of 92\n")
    new = carry_over(report, "# new matrix\n\n## Scenarios\n\nnew\n")
    assert new == ("# new matrix\n\n## Scenarios\n\nnew\n\n## franz-go suite\n\nkgo: 36 of 36\n\n"
                   "## librdkafka suite\n\n### table\n\nrdkafka: 90 of 92\n")
    assert carry_over(report, new) == new
