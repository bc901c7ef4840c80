"""KIP-848's online migration as a client sees it over a real socket: what the broker answers
when `group.consumer.migration.policy` or the classic group's state forbids a move between
the classic and the consumer protocol, and the member ids it makes for classic members of a
consumer group. Every expected answer was taken from the reference Kafka 4.4 given the same
requests (group.initial.rebalance.delay.ms=0, group.consumer.assignment.interval.ms=0)."""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from tests.server.test_features import Client

TOPIC = "mig"


def _subscription(topics: list[str]) -> bytes:
    """A ConsumerProtocolSubscription v1 owning nothing, as a classic consumer writes it."""
    out = struct.pack(">hi", 1, len(topics))
    for topic in topics:
        out += struct.pack(">h", len(topic)) + topic.encode()
    return out + struct.pack(">ii", -1, 0)


def _assignment(partitions: list[int], user_data: bytes | None) -> bytes:
    """A ConsumerProtocolAssignment v1 of TOPIC's `partitions`, with a custom assignor's user data."""
    out = struct.pack(">hih", 1, 1, len(TOPIC)) + TOPIC.encode() + struct.pack(">i", len(partitions))
    out += b"".join(struct.pack(">i", p) for p in partitions)
    return out + (struct.pack(">i", -1) if user_data is None else struct.pack(">i", len(user_data)) + user_data)


class _Member:
    """One client connection speaking for one member."""

    def __init__(self, bootstrap: str, group_id: str) -> None:
        self.client = Client(bootstrap)
        self.group_id = group_id

    def join(self, member_id: str) -> dict[str, Any]:
        return self.client.call(ApiKey.JOIN_GROUP, 9, {
            "group_id": self.group_id, "session_timeout_ms": 10_000, "rebalance_timeout_ms": 30_000, "member_id": member_id,
            "group_instance_id": None, "protocol_type": "consumer", "reason": None,
            "protocols": [{"name": "range", "metadata": _subscription([TOPIC])}]})

    def sync(self, generation_id: int, member_id: str, assignments: list[tuple[str, bytes]]) -> dict[str, Any]:
        return self.client.call(ApiKey.SYNC_GROUP, 5, {
            "group_id": self.group_id, "generation_id": generation_id, "member_id": member_id, "group_instance_id": None,
            "protocol_type": "consumer", "protocol_name": "range",
            "assignments": [{"member_id": m, "assignment": a} for m, a in assignments]})

    def consumer_heartbeat(self, member_id: str) -> dict[str, Any]:
        return self.client.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 1, {
            "group_id": self.group_id, "member_id": member_id, "member_epoch": 0, "instance_id": None, "rack_id": None,
            "rebalance_timeout_ms": 30_000, "subscribed_topic_names": [TOPIC], "subscribed_topic_regex": None,
            "server_assignor": None, "topic_partitions": []})

    def stable_alone(self, user_data: bytes | None = None) -> None:
        """The group's only classic member, Stable, having assigned itself every partition."""
        member_id = self.join("")["member_id"]
        joined = self.join(member_id)
        assert (joined["error_code"], joined["leader"]) == (ErrorCode.NONE, member_id)
        synced = self.sync(joined["generation_id"], member_id, [(member_id, _assignment([0, 1, 2, 3], user_data))])
        assert synced["error_code"] == ErrorCode.NONE

    def close(self) -> None:
        self.client.close()


@contextmanager
def _broker(policy: str) -> Iterator[str]:
    with running_broker(data_dir=None, group_initial_rebalance_delay_ms=0, group_consumer_assignment_interval_ms=0,
                        group_consumer_migration_policy=policy) as broker:
        admin = Client(broker.bootstrap_servers)
        try:
            created = admin.call(ApiKey.CREATE_TOPICS, 5, {"topics": [{"name": TOPIC, "num_partitions": 4, "replication_factor": 1,
                                                                       "assignments": [], "configs": []}], "timeout_ms": 10_000, "validate_only": False})
            assert created["topics"][0]["error_code"] == ErrorCode.NONE
        finally:
            admin.close()
        yield broker.bootstrap_servers


def test_with_migration_disabled_a_classic_member_may_not_join_a_consumer_group() -> None:
    """GroupMetadataManager.throwIfClassicMemberCannotJoinConsumerGroup, before any member id
    is made: Kafka 4.4 answers INCONSISTENT_GROUP_PROTOCOL with the request's member id."""
    with _broker("disabled") as bootstrap:
        consumer, classic = _Member(bootstrap, "g-disabled"), _Member(bootstrap, "g-disabled")
        try:
            assert consumer.consumer_heartbeat("c" * 22)["error_code"] == ErrorCode.NONE
            refused = classic.join("")
            assert (refused["error_code"], refused["member_id"], refused["generation_id"]) == (ErrorCode.INCONSISTENT_GROUP_PROTOCOL, "", -1)
            assert classic.join("someone")["error_code"] == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
            described = consumer.client.call(ApiKey.CONSUMER_GROUP_DESCRIBE, 1, {"group_ids": ["g-disabled"], "include_authorized_operations": False})
            assert [m["member_id"] for m in described["groups"][0]["members"]] == ["c" * 22]
        finally:
            consumer.close()
            classic.close()


def test_an_upgrade_refused_by_the_migration_policy_says_so() -> None:
    """GroupMetadataManager.validateOnlineUpgrade refuses with GROUP_ID_NOT_FOUND and a message
    naming the reason."""
    with _broker("disabled") as bootstrap:
        classic, consumer = _Member(bootstrap, "g-policy"), _Member(bootstrap, "g-policy")
        try:
            classic.stable_alone()
            refused = consumer.consumer_heartbeat("c" * 22)
            assert (refused["error_code"], refused["error_message"], refused["member_id"]) == (
                ErrorCode.GROUP_ID_NOT_FOUND, "Cannot upgrade classic group g-policy to consumer group because online upgrade is disabled.", None)
        finally:
            classic.close()
            consumer.close()


def test_an_upgrade_is_refused_while_a_custom_assignor_passes_user_data() -> None:
    """ConsumerGroup.fromClassicGroup: a consumer group could not keep a custom assignor's user
    data, so Kafka refuses to convert a group whose assignment carries any."""
    with _broker("bidirectional") as bootstrap:
        classic, consumer = _Member(bootstrap, "g-custom"), _Member(bootstrap, "g-custom")
        try:
            # A custom assignor's user data in the assignment could not be kept by a consumer group.
            classic.stable_alone(user_data=b"hello")
            refused = consumer.consumer_heartbeat("c" * 22)
            assert (refused["error_code"], refused["error_message"]) == (
                ErrorCode.GROUP_ID_NOT_FOUND,
                "Cannot upgrade classic group g-custom to consumer group because an unsupported custom assignor is in use. "
                "Please refer to the documentation or switch to a default assignor before re-attempting the upgrade.")
            listed = consumer.client.call(ApiKey.LIST_GROUPS, 5, {"states_filter": [], "types_filter": []})["groups"]
            assert [(g["group_id"], g["group_type"], g["group_state"]) for g in listed] == [("g-custom", "classic", "Stable")]
            # Empty user data is none: that group converts.
            other, joiner = _Member(bootstrap, "g-plain"), _Member(bootstrap, "g-plain")
            try:
                other.stable_alone(user_data=b"")
                assert joiner.consumer_heartbeat("d" * 22)["error_code"] == ErrorCode.NONE
            finally:
                other.close()
                joiner.close()
        finally:
            classic.close()
            consumer.close()


def test_a_classic_member_of_a_consumer_group_is_given_a_kafka_uuid_as_member_id() -> None:
    """classicGroupJoinToConsumerGroup makes the id with Uuid.randomUuid().toString(): 16 bytes
    in URL-safe base64 without padding (22 characters), not a dashed UUID."""
    with _broker("bidirectional") as bootstrap:
        consumer, classic = _Member(bootstrap, "g-ids"), _Member(bootstrap, "g-ids")
        try:
            assert consumer.consumer_heartbeat("c" * 22)["error_code"] == ErrorCode.NONE
            asked = classic.join("")
            member_id = asked["member_id"]
            assert asked["error_code"] == ErrorCode.MEMBER_ID_REQUIRED
            assert len(member_id) == 22 and not member_id.startswith("-")
            assert len(base64.urlsafe_b64decode(member_id + "==")) == 16
            joined = classic.join(member_id)
            assert (joined["error_code"], joined["member_id"], joined["leader"]) == (ErrorCode.NONE, member_id, "")
        finally:
            consumer.close()
            classic.close()


def test_leave_group_removes_a_consumer_protocol_member_of_a_mixed_group() -> None:
    """classicGroupLeaveToConsumerGroup checks only that the member is known, not that it speaks
    the classic protocol: LeaveGroup fences a ConsumerGroupHeartbeat member as well."""
    with _broker("bidirectional") as bootstrap:
        consumer, classic = _Member(bootstrap, "g-leave"), _Member(bootstrap, "g-leave")
        try:
            assert consumer.consumer_heartbeat("c" * 22)["error_code"] == ErrorCode.NONE
            assert consumer.consumer_heartbeat("e" * 22)["error_code"] == ErrorCode.NONE
            member_id = classic.join("")["member_id"]
            assert classic.join(member_id)["error_code"] == ErrorCode.NONE

            def leave(*member_ids: str) -> list[tuple[str, int]]:
                answer = classic.client.call(ApiKey.LEAVE_GROUP, 5, {"group_id": "g-leave", "members": [
                    {"member_id": m, "group_instance_id": None, "reason": None} for m in member_ids]})
                assert answer["error_code"] == ErrorCode.NONE
                return [(m["member_id"], m["error_code"]) for m in answer["members"]]

            def listed() -> list[tuple[str, str]]:
                groups = classic.client.call(ApiKey.LIST_GROUPS, 5, {"states_filter": [], "types_filter": []})["groups"]
                return [(g["group_type"], g["group_state"]) for g in groups]

            assert leave("c" * 22) == [("c" * 22, ErrorCode.NONE)]
            assert listed() == [("consumer", "Assigning")]
            assert leave("c" * 22) == [("c" * 22, ErrorCode.UNKNOWN_MEMBER_ID)]
            assert leave("e" * 22, member_id) == [("e" * 22, ErrorCode.NONE), (member_id, ErrorCode.NONE)]
            assert listed() == [("consumer", "Empty")]
        finally:
            consumer.close()
            classic.close()
