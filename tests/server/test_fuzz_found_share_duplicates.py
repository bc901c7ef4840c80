"""The differential fuzzer's known DescribeShareGroupOffsets crash when the refused group is named
twice (seen on the reference, seed 1717 --populated 0.6 --api DESCRIBE_SHARE_GROUP_OFFSETS):
Kafka answers each group entry apart, the one DefaultStatePersister.validate throws on
UNKNOWN_SERVER_ERROR with no topics; the fuzzer merges entries of one name, so when a later
entry of that group is answered, the error is covered and only the refused entry's topics,
listed by Ottla alone, remain as a difference."""

from __future__ import annotations

from typing import Any

from compat.fuzz_differential import known_crash
from ottla.wire.api import ApiKey

_GROUP, _ONE_PARTITION = "fz0a1b2c-20-0", "fz0a1b2c-a"


def _crash(groups: list[dict[str, Any]], answer: str = "<absent>") -> str | None:
    crash = known_crash(ApiKey.DESCRIBE_SHARE_GROUP_OFFSETS, 0, {"groups": groups}, answer)
    return None if crash is None else crash.what


def _entry(group: str, topic: str, partitions: list[int]) -> dict[str, Any]:
    return {"group_id": group, "topics": [{"topic_name": topic, "partitions": partitions}]}


def test_a_refused_entry_of_a_group_named_twice_is_the_known_crash() -> None:
    refused, answered = _entry(_GROUP, _ONE_PARTITION, []), _entry(_GROUP, "bad/name", [1])
    for groups in ([refused, answered], [answered, refused], [refused, {"group_id": _GROUP, "topics": None}]):
        found = _crash(groups)
        assert found is not None and "a group twice" in found, groups


def test_a_group_named_once_or_named_twice_with_no_refused_entry_is_no_crash() -> None:
    assert _crash([_entry(_GROUP, _ONE_PARTITION, []), _entry("fz0a1b2c-20-1", "bad/name", [1])]) is None
    assert _crash([_entry(_GROUP, _ONE_PARTITION, [0]), _entry(_GROUP, "bad/name", [])]) is None
    assert _crash([_entry(_GROUP, "bad/name", []), _entry(_GROUP, _ONE_PARTITION, [0])]) is None
