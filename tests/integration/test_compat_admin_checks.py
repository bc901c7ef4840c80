"""The compat admin scenario's check, pinned without sockets: a lenient check would let a broker
that answers admin requests wrongly show as green in the matrix."""

from __future__ import annotations

import copy
import re

import pytest

from compat import drivers
from compat.harness import REPO_ROOT
from compat.scenarios import check_admin

GOOD = {
    "configs": {
        "created": {"retention.ms": ["3600000", "DYNAMIC_TOPIC_CONFIG"], "cleanup.policy": ["compact,delete", "DYNAMIC_TOPIC_CONFIG"]},
        "altered": {"retention.ms": ["7200000", "DYNAMIC_TOPIC_CONFIG"], "cleanup.policy": ["compact,delete", "DYNAMIC_TOPIC_CONFIG"]},
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


def _pairs(literal: str) -> dict[str, str]:
    return dict(re.findall(r"""['"]([^'"]+)['"]\s*:\s*['"]([^'"]*)['"]""", literal))


def _spelled_in_node() -> dict[str, object]:
    source = (REPO_ROOT / "compat" / "node" / "driver.mjs").read_text()
    plan: dict[str, object] = {name: value.strip("'").rstrip("n") for name, value in re.findall(r"^export const (ADMIN_\w+) = ('[^']*'|\d+n?)$", source, re.M)}
    plan["ADMIN_CONFIGS"] = _pairs(re.search(r"^export const ADMIN_CONFIGS = (\{.*\})$", source, re.M)[1])
    return plan


def _spelled_in_go() -> dict[str, object]:
    source = (REPO_ROOT / "compat" / "go" / "driver" / "driver.go").read_text()
    plan: dict[str, object] = {
        "ADMIN_" + re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper(): value.strip('"')
        for name, value in re.findall(r"^\tAdmin(\w+)\s*=\s*(\"[^\"]*\"|\d+)$", source, re.M)
    }
    plan["ADMIN_CONFIGS"] = _pairs(re.search(r"^var AdminConfigs = map\[string\]string(\{.*\})$", source, re.M)[1])
    return plan


@pytest.mark.parametrize("spelled", [_spelled_in_node, _spelled_in_go], ids=["node", "go"])
def test_the_drivers_that_repeat_the_admin_plan_spell_it_as_the_harness_does(spelled):
    # The Python and Java drivers take the plan from compat.drivers; the Node drivers (through
    # driver.mjs) and the Go driver repeat it, so a change to it must reach them all (the scenario checks its values).
    harness = {"ADMIN_CONFIGS": drivers.ADMIN_CONFIGS, **{name: str(getattr(drivers, name)) for name in (
        "ADMIN_ALTERED_RETENTION", "ADMIN_PARTITIONS", "ADMIN_RECORDS", "ADMIN_DELETE_BEFORE", "ADMIN_COMMITTED")}}
    assert spelled() == harness
