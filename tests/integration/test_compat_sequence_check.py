"""The producer-guarantee scenarios' check, pinned without sockets: it must catch the
duplicates a retried batch would leave, gaps, moved offsets and strays."""

from __future__ import annotations

import pytest

from compat.scenarios import check_sequence

WANT = [(i, f"k{i}", f"v{i}") for i in range(4)]
GOOD = [[0, o, k, v] for o, k, v in WANT]


def test_check_sequence_accepts_exactly_the_expected_records() -> None:
    assert check_sequence(GOOD, WANT) == []


@pytest.mark.parametrize(("records", "expected"), [
    (GOOD[:2] + [[0, 2, "k1", "v1"]] + [[0, 3, "k2", "v2"], [0, 4, "k3", "v3"]], "1 extra: duplicates?"),
    (GOOD[:3], "3 records, want 4"),
    (GOOD[:3] + [[0, 5, "k3", "v3"]], "at position 3 got (5, 'k3', 'v3')"),
    (GOOD + [[1, 0, "k9", "v9"]], "1 records outside partition 0"),
])
def test_check_sequence_names_the_damage(records, expected: str) -> None:
    assert any(expected in problem for problem in check_sequence(records, WANT))
