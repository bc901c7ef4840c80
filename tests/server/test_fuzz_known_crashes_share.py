"""The differential fuzzer's known crashes of Kafka 4.4's share APIs, each seen on the reference.
DescribeShareGroupOffsets: only set-up topics reach its share state persister, whose validate
throws (UNKNOWN_SERVER_ERROR) on group id "", an empty partition list or a negative partition,
and whose share coordinator never answers a partition past the topic's count. ShareFetch:
its constructor throws on an acquire mode other than 0 or 1 (v2+), and a negative max_bytes
fails each partition read (LogSegment.read), which Ottla, fetching nothing, does not list."""

from __future__ import annotations

from typing import Any

from compat.fuzz_differential import known_crash
from ottla.wire.api import ApiKey

_TOPIC, _ONE_PARTITION, _MISSING = "fz0a1b2c-topic", "fz0a1b2c-a", "fz0a1b2c-no-topic"


def _describe(group: str, topic: str, partitions: list[int]) -> dict[str, Any]:
    return {"groups": [{"group_id": group, "topics": [{"topic_name": topic, "partitions": partitions}]}]}


def _crash(body: dict[str, Any], answer: str) -> str | None:
    crash = known_crash(ApiKey.DESCRIBE_SHARE_GROUP_OFFSETS, 1, body, answer)
    return None if crash is None else crash.answer


def test_the_persisters_validation_crashes_only_for_set_up_topics() -> None:
    for body in (_describe("g", _TOPIC, []), _describe("g", _TOPIC, [0, -1]), _describe("", _ONE_PARTITION, [0])):
        assert _crash(body, "UNKNOWN_SERVER_ERROR") == "UNKNOWN_SERVER_ERROR", body
        assert _crash(body, "NONE") is None, body  # Kafka did not crash
    for body in (_describe("g", _MISSING, []), _describe("g", _MISSING, [-1]), _describe("", _MISSING, [0]),
                 _describe("g", _TOPIC, [0, 2]), {"groups": [{"group_id": "", "topics": []}]}, {"groups": [{"group_id": "", "topics": None}]}):
        assert _crash(body, "UNKNOWN_SERVER_ERROR") is None, body


def test_a_partition_past_a_set_up_topics_count_is_never_answered() -> None:
    assert _crash(_describe("g", _TOPIC, [3]), "no answer") == "no answer"
    assert _crash(_describe("g", _ONE_PARTITION, [0, 1]), "no answer") == "no answer"
    assert _crash(_describe("g", _TOPIC, [2]), "no answer") is None
    assert _crash(_describe("g", _MISSING, [100]), "no answer") is None


def test_a_share_fetch_with_an_unknown_acquire_mode_crashes_from_v2() -> None:
    fetch = {"group_id": "g", "share_acquire_mode": 2, "topics": [], "forgotten_topics_data": []}
    assert known_crash(ApiKey.SHARE_FETCH, 2, fetch, "UNKNOWN_SERVER_ERROR") is not None
    assert known_crash(ApiKey.SHARE_FETCH, 2, fetch | {"share_acquire_mode": -1}, "UNKNOWN_SERVER_ERROR") is not None
    assert known_crash(ApiKey.SHARE_FETCH, 2, fetch | {"share_acquire_mode": 1}, "UNKNOWN_SERVER_ERROR") is None
    assert known_crash(ApiKey.SHARE_FETCH, 2, fetch, "NONE") is None  # Kafka did not crash


def test_a_share_fetch_with_a_negative_max_bytes_crashes_whatever_the_difference() -> None:
    fetch = {"group_id": "g", "max_bytes": -2, "topics": [], "forgotten_topics_data": []}
    assert known_crash(ApiKey.SHARE_FETCH, 1, fetch, "present") is not None  # a partition Kafka failed, Ottla did not list
    assert known_crash(ApiKey.SHARE_FETCH, 1, fetch | {"max_bytes": 0}, "present") is None
