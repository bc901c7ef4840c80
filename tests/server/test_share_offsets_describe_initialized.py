"""DescribeShareGroupOffsets as Kafka 4.4's GroupCoordinatorService answers it: a topic that
does not exist has no share state and no error (start offset and lag -1), and a null topic
list describes every partition the group initialized, before any member fetched from it.
Raw requests to a real broker; every answer here is the reference Kafka 4.4's."""

from __future__ import annotations

from typing import Any


from raw_broker import connection  # noqa: F401 (the fixture)
from compat.differential import _Connection
from compat.harness import wait_for
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode


def _described(connection: _Connection, group_id: str, topics: list[dict[str, Any]] | None, version: int = 1) -> Any:
    answer = connection.call(ApiKey.DESCRIBE_SHARE_GROUP_OFFSETS, version, {"groups": [{"group_id": group_id, "topics": topics}]})
    return [(group["error_code"], [(topic["topic_name"], [(p["partition_index"], p["error_code"], p["start_offset"], p.get("lag"))
                                                          for p in topic["partitions"]]) for topic in group["topics"]])
            for group in answer["groups"]]


def test_a_missing_topic_has_no_state_and_no_error(connection: _Connection) -> None:
    assert _described(connection, "no-group", [{"topic_name": "nope", "partitions": [0, 5, -1]}]) == [
        (ErrorCode.NONE, [("nope", [(0, ErrorCode.NONE, -1, -1), (5, ErrorCode.NONE, -1, -1), (-1, ErrorCode.NONE, -1, -1)])])]
    assert _described(connection, "no-group", [{"topic_name": "nope", "partitions": [0]}], version=0) == [
        (ErrorCode.NONE, [("nope", [(0, ErrorCode.NONE, -1, None)])])]


def test_every_initialized_partition_is_described_before_any_fetch(connection: _Connection) -> None:
    created = connection.call(ApiKey.CREATE_TOPICS, 7, {"timeout_ms": 5000, "validate_only": False, "topics": [
        {"name": "e1", "num_partitions": 2, "replication_factor": 1, "assignments": [], "configs": []}]})
    assert created["topics"][0]["error_code"] == ErrorCode.NONE
    joined = connection.call(ApiKey.SHARE_GROUP_HEARTBEAT, 1, {
        "group_id": "sg", "member_id": "m1", "member_epoch": 0, "rack_id": None, "subscribed_topic_names": ["e1"]})
    assert joined["error_code"] == ErrorCode.NONE
    epoch = joined["member_epoch"]

    def described_all() -> bool:
        nonlocal epoch
        epoch = connection.call(ApiKey.SHARE_GROUP_HEARTBEAT, 1, {
            "group_id": "sg", "member_id": "m1", "member_epoch": epoch, "rack_id": None, "subscribed_topic_names": None})["member_epoch"]
        return bool(_described(connection, "sg", None)[0][1])

    assert wait_for(described_all, timeout=30)
    assert _described(connection, "sg", None) == [(ErrorCode.NONE, [("e1", [(0, ErrorCode.NONE, -1, -1), (1, ErrorCode.NONE, -1, -1)])])]
