"""The compat admin scenario's check, pinned without sockets: a lenient check would let a broker
that answers admin requests wrongly show as green in the matrix."""

from __future__ import annotations

import copy

import pytest

from compat.scenarios import check_admin

GOOD = {
    "configs": {
        "created": {"retention.ms": ["3600000", "DYNAMIC_TOPIC_CONFIG"], "cleanup.policy": ["compact", "DYNAMIC_TOPIC_CONFIG"]},
        "altered": {"retention.ms": ["7200000", "DYNAMIC_TOPIC_CONFIG"], "cleanup.policy": ["compact", "DYNAMIC_TOPIC_CONFIG"]},
    },
    "partitions": 3,
    "low_watermark": 4,
    "brokers": [1],
    "controller": 1,
    "group": {"listed": True, "state": "Empty", "deleted": True},
}


def _with(path: tuple[str, ...], value: object) -> dict:
    result = copy.deepcopy(GOOD)
    target = result
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return result


def test_a_correct_run_passes_and_a_client_without_delete_groups_too():
    assert check_admin(GOOD) == []
    assert check_admin(_with(("group", "deleted"), None)) == []


@pytest.mark.parametrize(
    "path, value, problem",
    [
        (("configs", "created", "retention.ms"), ["3600000", "DEFAULT_CONFIG"], "described after create"),
        (("configs", "altered", "cleanup.policy"), ["delete", "DEFAULT_CONFIG"], "described after alter"),
        (("configs", "altered", "retention.ms"), ["3600000", "DYNAMIC_TOPIC_CONFIG"], "described after alter"),
        (("partitions",), 1, "1 partitions"),
        (("low_watermark",), 0, "low watermark 0"),
        (("brokers",), [1, 2], "cluster of [1, 2]"),
        (("controller",), -1, "controller -1"),
        (("group", "listed"), False, "group listed=False"),
        (("group", "state"), "Dead", "state=Dead"),
        (("group", "deleted"), False, "deleted=False"),
    ],
)
def test_each_wrong_answer_is_named(path, value, problem):
    (found,) = check_admin(_with(path, value))
    assert problem in found
