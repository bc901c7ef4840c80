"""ShareGroupHeartbeat and ConsumerGroupHeartbeat check the request itself before the group,
and the group before the member, as Kafka 4.4's GroupCoordinatorService
(throwIf...HeartbeatRequestIsInvalid) then GroupMetadataManager do. Raw requests to a real
broker; every answer here is the reference Kafka 4.4's."""

from __future__ import annotations

from typing import Any


from raw_broker import connection  # noqa: F401 (the fixture)
from compat.differential import _Connection
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode


def _share(connection: _Connection, group_id: str, member_id: str, member_epoch: int, rack_id: str | None = None,
           names: list[str] | None = None) -> tuple[int, str | None]:
    answer = connection.call(ApiKey.SHARE_GROUP_HEARTBEAT, 1, {
        "group_id": group_id, "member_id": member_id, "member_epoch": member_epoch, "rack_id": rack_id, "subscribed_topic_names": names})
    return answer["error_code"], answer["error_message"]


def _consumer(connection: _Connection, group_id: str, member_id: str, member_epoch: int, **fields: Any) -> tuple[int, str | None]:
    body = {"group_id": group_id, "member_id": member_id, "member_epoch": member_epoch, "instance_id": None, "rack_id": None,
            "rebalance_timeout_ms": -1, "subscribed_topic_names": None, "subscribed_topic_regex": None, "server_assignor": None,
            "topic_partitions": None} | fields
    answer = connection.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 1, body)
    return answer["error_code"], answer["error_message"]


def test_a_share_heartbeat_is_checked_before_its_group(connection: _Connection) -> None:
    """Blank ids and rack, a join subscribing to nothing and an epoch below -1 are
    INVALID_REQUEST, whether or not the group exists."""
    assert _share(connection, "sg", "m", 5, rack_id="") == (ErrorCode.INVALID_REQUEST, "RackId can't be empty.")
    assert _share(connection, "sg", " ", 0, names=["t"]) == (ErrorCode.INVALID_REQUEST, "MemberId can't be empty.")
    assert _share(connection, " ", "m", 0, names=["t"]) == (ErrorCode.INVALID_REQUEST, "GroupId can't be empty.")
    assert _share(connection, "sg", "m", 0, rack_id="  ", names=["t"]) == (ErrorCode.INVALID_REQUEST, "RackId can't be empty.")
    assert _share(connection, "sg", "m", 0, names=[]) == (ErrorCode.INVALID_REQUEST, "SubscribedTopicNames must be set in first request.")
    assert _share(connection, "sg", "m", -2) == (ErrorCode.INVALID_REQUEST, "MemberEpoch is invalid.")


def test_a_share_heartbeat_to_a_missing_group_is_group_id_not_found(connection: _Connection) -> None:
    """Only a join creates the group; the leave's lookup words it differently."""
    assert _share(connection, "sg", "m", 5) == (ErrorCode.GROUP_ID_NOT_FOUND, "Share group sg not found.")
    assert _share(connection, "sg", "m", -1) == (ErrorCode.GROUP_ID_NOT_FOUND, "Group sg not found.")
    assert _share(connection, "sg", "m", 0, names=["t"])[0] == ErrorCode.NONE
    assert _share(connection, "sg", "x", 9) == (ErrorCode.UNKNOWN_MEMBER_ID, "Member x is not a member of group sg.")
    assert _share(connection, "sg", "x", -1) == (ErrorCode.UNKNOWN_MEMBER_ID, "Member x is not a member of group sg.")


def test_a_consumer_heartbeat_is_checked_before_a_share_group_holding_its_id(connection: _Connection) -> None:
    assert _share(connection, "sg", "m", 0, names=["t"])[0] == ErrorCode.NONE
    assert _consumer(connection, "sg", "m", 0, rebalance_timeout_ms=30_000, topic_partitions=[{"topic_id": bytes(16), "partitions": [0]}]) == (
        ErrorCode.INVALID_REQUEST, "TopicPartitions must be empty when (re-)joining.")
    assert _consumer(connection, "sg", "m", 3, server_assignor="nope") == (
        ErrorCode.UNSUPPORTED_ASSIGNOR, "ServerAssignor nope is not supported. Supported assignors: uniform, range.")
    assert _consumer(connection, "sg", "m", 5) == (ErrorCode.GROUP_ID_NOT_FOUND, "Group sg is not a consumer group.")
    assert _consumer(connection, "sg", "m", -1) == (ErrorCode.GROUP_ID_NOT_FOUND, "Group sg is not a consumer group.")


def test_a_consumer_heartbeat_checks_its_regex_after_the_group(connection: _Connection) -> None:
    """GroupMetadataManager.maybeUpdateRegularExpressions checks a regex once the group and
    member were found: after GROUP_ID_NOT_FOUND and UNSUPPORTED_ASSIGNOR."""
    assert _consumer(connection, "cg", "m", 3, subscribed_topic_regex="(") == (ErrorCode.GROUP_ID_NOT_FOUND, "Consumer group cg not found.")
    assert _consumer(connection, "cg", "m", 0, rebalance_timeout_ms=30_000, topic_partitions=[], subscribed_topic_regex="(",
                     server_assignor="x")[0] == ErrorCode.UNSUPPORTED_ASSIGNOR
    assert _consumer(connection, "cg", "m", 0, rebalance_timeout_ms=30_000, topic_partitions=[],
                     subscribed_topic_regex="(")[0] == ErrorCode.INVALID_REGULAR_EXPRESSION


def test_consumer_heartbeat_ids_are_checked_in_kafkas_order(connection: _Connection) -> None:
    """The member id first, blank counting as empty; Kafka's words for a join subscribing to
    nothing and for an epoch below -2."""
    assert _consumer(connection, " ", "", 0, rebalance_timeout_ms=30_000, topic_partitions=[], subscribed_topic_names=[]) == (
        ErrorCode.INVALID_REQUEST, "MemberId can't be empty.")
    assert _consumer(connection, "cg", "m", 0, rebalance_timeout_ms=30_000, topic_partitions=[], rack_id=" ") == (
        ErrorCode.INVALID_REQUEST, "RackId can't be empty.")
    assert _consumer(connection, "cg", "m", 0, rebalance_timeout_ms=30_000, topic_partitions=[]) == (
        ErrorCode.INVALID_REQUEST, "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.")
    assert _consumer(connection, "cg", "m", -3) == (ErrorCode.INVALID_REQUEST, "MemberEpoch is invalid.")


def test_ids_of_control_characters_are_blank_as_java_trims_them(connection: _Connection) -> None:
    """String.trim strips every character up to U+0020, NUL included."""
    assert _share(connection, "sg", "\x00", 1) == (ErrorCode.INVALID_REQUEST, "MemberId can't be empty.")
    assert _consumer(connection, "cg", "\x00", 1) == (ErrorCode.INVALID_REQUEST, "MemberId can't be empty.")
    assert _consumer(connection, "cg", "m", 1, instance_id="\x00 ", server_assignor="") == (ErrorCode.INVALID_REQUEST, "InstanceId can't be empty.")


def test_a_join_listing_a_topic_with_no_partitions_is_invalid(connection: _Connection) -> None:
    assert _consumer(connection, "cg", "m", 0, rebalance_timeout_ms=30_000, subscribed_topic_names=["t"],
                     topic_partitions=[{"topic_id": bytes(16), "partitions": []}]) == (
        ErrorCode.INVALID_REQUEST, "TopicPartitions must be empty when (re-)joining.")
