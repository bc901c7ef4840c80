"""A classic JoinGroup into a live KIP-848 consumer group, checked as Kafka 4.4's
GroupMetadataManager.classicGroupJoinToConsumerGroup does: the group size (a static member's
instance always has a place), the member (an id with a static instance must be that
instance's member) and only then the subscription, whose malformed bytes are
INCONSISTENT_GROUP_PROTOCOL (deserializeSubscription). A refusal names no member
(GroupCoordinatorService.joinGroup answers a thrown error with a bare response). Raw requests to a real broker; every
answer here is the reference Kafka 4.4's."""

from __future__ import annotations

import struct


from raw_broker import connection  # noqa: F401 (the fixture)
from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

# ConsumerProtocolSubscription v0 subscribing to "t", no user data.
SUBSCRIPTION = struct.pack(">hih", 0, 1, 1) + b"t" + struct.pack(">i", -1)


def _heartbeat(connection: _Connection, group_id: str, member_id: str, instance_id: str | None = None) -> int:
    answer = connection.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 0, {
        "group_id": group_id, "member_id": member_id, "member_epoch": 0, "instance_id": instance_id, "rack_id": None,
        "rebalance_timeout_ms": 30_000, "subscribed_topic_names": ["t"], "subscribed_topic_regex": None,
        "server_assignor": None, "topic_partitions": []})
    return int(answer["error_code"])


def _join(connection: _Connection, group_id: str, member_id: str, instance_id: str | None, metadata: bytes,
          version: int = 8) -> tuple[int, str]:
    answer = connection.call(ApiKey.JOIN_GROUP, version, {
        "group_id": group_id, "session_timeout_ms": 45_000, "rebalance_timeout_ms": 30_000, "member_id": member_id,
        "group_instance_id": instance_id, "protocol_type": "consumer", "protocols": [{"name": "range", "metadata": metadata}],
        "reason": None})
    return int(answer["error_code"]), answer["member_id"]


def test_a_subscription_that_is_no_consumer_protocol_is_an_inconsistent_protocol(connection: _Connection) -> None:
    """ConsumerProtocol throws SchemaException on short, empty or negative-version bytes."""
    assert _heartbeat(connection, "g", "m") == ErrorCode.NONE
    assert _join(connection, "g", "", None, b"\x00", version=3) == (ErrorCode.INCONSISTENT_GROUP_PROTOCOL, "")
    assert _join(connection, "g", "new", None, b"\x00\x00\x00") == (ErrorCode.INCONSISTENT_GROUP_PROTOCOL, "")
    assert _join(connection, "g", "new", None, b"") == (ErrorCode.INCONSISTENT_GROUP_PROTOCOL, "")
    assert _join(connection, "g", "new", None, b"\xff\xff") == (ErrorCode.INCONSISTENT_GROUP_PROTOCOL, "")


def test_the_member_is_checked_before_the_subscription(connection: _Connection) -> None:
    """getOrMaybeSubscribeStaticConsumerGroupMember: an id with an instance no member holds is
    UNKNOWN_MEMBER_ID (even a consumer-protocol member's own id); with another member's
    instance FENCED_INSTANCE_ID, whatever the subscription's bytes."""
    assert _heartbeat(connection, "g", "m") == ErrorCode.NONE
    assert _heartbeat(connection, "g", "s1", instance_id="i1") == ErrorCode.NONE
    assert _join(connection, "g", "m", "nope", b"\x00") == (ErrorCode.UNKNOWN_MEMBER_ID, "")
    assert _join(connection, "g", "m", "nope", SUBSCRIPTION) == (ErrorCode.UNKNOWN_MEMBER_ID, "")
    assert _join(connection, "g", "x", "nope", b"\x00") == (ErrorCode.UNKNOWN_MEMBER_ID, "")
    assert _join(connection, "g", "other", "i1", b"\x00") == (ErrorCode.FENCED_INSTANCE_ID, "")


def test_a_static_member_rejoining_a_full_group_takes_its_place() -> None:
    """throwIfConsumerGroupIsFull lets an instance the group knows in (group.consumer.max.size 2)."""
    with running_broker(data_dir=None, group_consumer_max_size=2) as broker:
        connection = _Connection(broker.bootstrap_servers)
        assert _heartbeat(connection, "g", "m") == ErrorCode.NONE
        assert _heartbeat(connection, "g", "s1", instance_id="i1") == ErrorCode.NONE
        assert _heartbeat(connection, "g", "s2") == ErrorCode.GROUP_MAX_SIZE_REACHED
        assert _join(connection, "g", "x", "nope", b"\x00") == (ErrorCode.GROUP_MAX_SIZE_REACHED, "")
        assert _join(connection, "g", "", "i1", SUBSCRIPTION)[0] == ErrorCode.NONE
        connection.close()
