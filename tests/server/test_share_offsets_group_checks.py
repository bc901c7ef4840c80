"""AlterShareGroupOffsets and DeleteShareGroupOffsets as Kafka 4.4's GroupCoordinatorService
and GroupMetadataManager answer them: an empty group id is INVALID_GROUP_ID before any group
is looked for; a deleted topic must exist and hold share state the group initialized. Raw
requests to a real broker; every answer here is the reference Kafka 4.4's."""

from __future__ import annotations

from typing import Any


from raw_broker import connection  # noqa: F401 (the fixture)
from compat.differential import _Connection
from compat.harness import wait_for
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode


def _delete(connection: _Connection, group_id: str, names: list[str]) -> Any:
    answer = connection.call(ApiKey.DELETE_SHARE_GROUP_OFFSETS, 0, {"group_id": group_id, "topics": [{"topic_name": n} for n in names]})
    return answer["error_code"], answer["error_message"], sorted((t["topic_name"], t["error_code"], t["error_message"]) for t in answer["responses"])


def _heartbeat(connection: _Connection, group_id: str, epoch: int, names: list[str] | None = None) -> Any:
    return connection.call(ApiKey.SHARE_GROUP_HEARTBEAT, 1, {
        "group_id": group_id, "member_id": "m1", "member_epoch": epoch, "rack_id": None, "subscribed_topic_names": names})


def test_an_empty_group_id_is_invalid(connection: _Connection) -> None:
    altered = connection.call(ApiKey.ALTER_SHARE_GROUP_OFFSETS, 0, {
        "group_id": "", "topics": [{"topic_name": "t", "partitions": [{"partition_index": 0, "start_offset": 0}]}]})
    assert (altered["error_code"], altered["error_message"], altered["responses"]) == (ErrorCode.INVALID_GROUP_ID, "The group id is invalid.", [])
    assert _delete(connection, "", ["t"]) == (ErrorCode.INVALID_GROUP_ID, "The group id is invalid.", [])


def test_only_initialized_topics_have_offsets_to_delete(connection: _Connection) -> None:
    created = connection.call(ApiKey.CREATE_TOPICS, 7, {"timeout_ms": 5000, "validate_only": False, "topics": [
        {"name": name, "num_partitions": 1, "replication_factor": 1, "assignments": [], "configs": []} for name in ("d1", "d2")]})
    assert [t["error_code"] for t in created["topics"]] == [ErrorCode.NONE, ErrorCode.NONE]
    joined = _heartbeat(connection, "sg", 0, ["d1"])
    assert joined["error_code"] == ErrorCode.NONE
    epoch = joined["member_epoch"]

    def initialized() -> bool:
        """d1's share state is initialized once the group's assignment moves past the join's."""
        nonlocal epoch
        beat = _heartbeat(connection, "sg", epoch)
        epoch = beat["member_epoch"]
        return beat["error_code"] == ErrorCode.NONE and beat["assignment"] is not None and bool(beat["assignment"]["topic_partitions"])

    assert wait_for(initialized, timeout=30)
    assert _heartbeat(connection, "sg", -1)["error_code"] == ErrorCode.NONE
    assert _delete(connection, "sg", ["d1", "d2", "nope"]) == (ErrorCode.NONE, None, [
        ("d1", ErrorCode.NONE, None),
        ("d2", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "There is no offset information to delete."),
        ("nope", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "This server does not host this topic-partition.")])
    assert _delete(connection, "sg", ["d1"]) == (ErrorCode.NONE, None, [
        ("d1", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "There is no offset information to delete.")])


def test_altering_a_missing_topic_is_answered_per_partition_once_per_name(connection: _Connection) -> None:
    """KafkaApis answers a missing topic itself: every partition named, under one entry per
    name, and no entry when no partition is named; an existing topic's entry stays."""
    created = connection.call(ApiKey.CREATE_TOPICS, 7, {"timeout_ms": 5000, "validate_only": False, "topics": [
        {"name": "a", "num_partitions": 1, "replication_factor": 1, "assignments": [], "configs": []}]})
    assert created["topics"][0]["error_code"] == ErrorCode.NONE
    answer = connection.call(ApiKey.ALTER_SHARE_GROUP_OFFSETS, 0, {"group_id": "sg", "topics": [
        {"topic_name": "a", "partitions": []}, {"topic_name": "nope", "partitions": []}, {"topic_name": "bad/name", "partitions": []},
        {"topic_name": "", "partitions": [{"partition_index": 3, "start_offset": 1}]},
        {"topic_name": "", "partitions": [{"partition_index": 2, "start_offset": 0}]}]})
    assert answer["error_code"] == ErrorCode.NONE
    assert sorted((t["topic_name"], [(p["partition_index"], p["error_code"], p["error_message"]) for p in t["partitions"]])
                  for t in answer["responses"]) == [
        ("", [(3, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "This server does not host this topic-partition."),
              (2, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "This server does not host this topic-partition.")]),
        ("a", [])]
