"""Share-group refusals with Kafka 4.4's codes and words, over raw requests to a real broker;
every answer pinned here is the reference broker's (compat.kafka.ReferenceKafka, asked the same).

- An acknowledgement of a partition whose share-partition this broker does not have is
  UNKNOWN_TOPIC_OR_PARTITION (SharePartitionManager.acknowledge); of one with nothing in flight,
  INVALID_RECORD_STATE; past what was handed out, INVALID_REQUEST (SharePartition.
  fetchSubMapForAcknowledgementBatch), each at the partition's level, with its message.
- A heartbeat with an epoch greater than the member's is fenced with GroupMetadataManager.
  throwIfShareGroupMemberEpochIsInvalid's message.
- AlterShareGroupOffsets answers one entry per topic name.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from share_member import ShareMember

from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.records import Record, build_batch

_ACCEPT = 1
_UNKNOWN = "This server does not host this topic-partition."
_NOT_CACHED = "Batch record not found. The request batch offsets are not found in the cache."
_PAST_FIRST = "Batch record not found. The first offset in request is past acquired records."
_PAST_LAST = "Batch record not found. The last offset in request is past acquired records."


class _Member(ShareMember):
    """A member of group "g" on topic "t" (two partitions), its share session on partition 0."""

    def __init__(self, broker: ThreadedBroker) -> None:
        super().__init__(broker)
        assert broker.broker is not None and broker.broker.storage is not None
        info = broker.broker.storage.topic("t")
        assert info is not None
        self.topic_id, self.epoch = info.topic_id, 0

    def fetch(self, acks: dict[int, tuple[int, int]] | None = None) -> dict[str, Any]:
        """A ShareFetch of partition 0, acknowledging (first, last) ACCEPT per partition."""
        partitions = {0: (), **(acks or {})}
        answer = self.call(ApiKey.SHARE_FETCH, 1, {
            "group_id": "g", "member_id": self.member_id, "share_session_epoch": self.epoch, "max_wait_ms": 0, "min_bytes": 1,
            "max_bytes": 1 << 20, "max_records": 500, "batch_size": 500, "forgotten_topics_data": [],
            "topics": [{"topic_id": self.topic_id, "partitions": [
                {"partition_index": index, "acknowledgement_batches": [
                    {"first_offset": ack[0], "last_offset": ack[1], "acknowledge_types": [_ACCEPT]}] if ack else []}
                for index, ack in partitions.items()]}]})
        assert answer["error_code"] == ErrorCode.NONE
        self.epoch += 1
        return answer

    def acknowledge(self, index: int, first: int, last: int) -> tuple[int, str | None]:
        """A ShareAcknowledge v2 of one ACCEPT batch: the partition's error and message."""
        answer = self.call(ApiKey.SHARE_ACKNOWLEDGE, 2, {
            "group_id": "g", "member_id": self.member_id, "share_session_epoch": self.epoch, "is_renew_ack": False,
            "topics": [{"topic_id": self.topic_id, "partitions": [{"partition_index": index, "acknowledgement_batches": [
                {"first_offset": first, "last_offset": last, "acknowledge_types": [_ACCEPT]}]}]}]})
        assert answer["error_code"] == ErrorCode.NONE
        self.epoch += 1
        (partition,) = answer["responses"][0]["partitions"]
        return partition["error_code"], partition["error_message"]


@pytest.fixture
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None) as broker:
        broker.create_topic("t", partitions=2)
        yield broker


@pytest.fixture
def member(broker: ThreadedBroker) -> Iterator[_Member]:
    """A member assigned both partitions, its session open on partition 0 (nothing in flight:
    share.auto.offset.reset latest starts it at the end of the empty log)."""
    member = _Member(broker)
    assert member.join_until_assigned("g", ["t"])
    member.fetch()
    yield member
    member.close()


def _produce(member: _Member, count: int) -> None:
    answer = member.call(ApiKey.PRODUCE, 9, {"transactional_id": None, "acks": -1, "timeout_ms": 5000, "topic_data": [
        {"name": "t", "partition_data": [{"index": 0, "records": build_batch([Record(i, 0, None, b"v") for i in range(count)])}]}]})
    assert answer["responses"][0]["partition_responses"][0]["error_code"] == ErrorCode.NONE


def test_acknowledging_without_a_share_partition_or_anything_in_flight(member: _Member) -> None:
    assert member.acknowledge(1, 0, 0) == (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, _UNKNOWN)
    assert member.acknowledge(0, 0, 0) == (ErrorCode.INVALID_RECORD_STATE, _NOT_CACHED)
    _produce(member, 3)  # in the log, not handed out
    assert member.acknowledge(0, 0, 2) == (ErrorCode.INVALID_RECORD_STATE, _NOT_CACHED)
    # A ShareFetch's acknowledgements are answered alike.
    answer = member.fetch({1: (0, 0)})
    refused = {p["partition_index"]: (p["acknowledge_error_code"], p["acknowledge_error_message"]) for p in answer["responses"][0]["partitions"]}
    assert refused[1] == (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, _UNKNOWN)


def test_acknowledging_past_the_records_handed_out(member: _Member) -> None:
    _produce(member, 3)
    (partition,) = member.fetch()["responses"][0]["partitions"]
    assert [(r["first_offset"], r["last_offset"]) for r in partition["acquired_records"]] == [(0, 2)]
    assert member.acknowledge(0, 3, 3) == (ErrorCode.INVALID_REQUEST, _PAST_FIRST)
    assert member.acknowledge(0, 1, 5) == (ErrorCode.INVALID_REQUEST, _PAST_LAST)
    assert member.acknowledge(0, 0, 2) == (ErrorCode.NONE, None)
    # Everything is acknowledged: nothing in flight; a batch wholly before the start is done already.
    assert member.acknowledge(0, 0, 0) == (ErrorCode.NONE, None)
    assert member.acknowledge(0, 3, 3) == (ErrorCode.INVALID_RECORD_STATE, _NOT_CACHED)


def test_a_heartbeat_ahead_of_the_members_epoch_is_fenced_with_kafkas_message(member: _Member) -> None:
    epoch = member.heartbeat("g", 0, ["t"])["member_epoch"]
    fenced = member.heartbeat("g", epoch + 4, ["t"])
    assert (fenced["error_code"], fenced["error_message"]) == (
        ErrorCode.FENCED_MEMBER_EPOCH,
        f"The share group member has a greater member epoch ({epoch + 4}) than the one known by the group coordinator ({epoch})."
        " The member must abandon all its partitions and rejoin.")


def test_altering_offsets_answers_one_entry_per_topic_name(broker: ThreadedBroker) -> None:
    """The topics KafkaApis answers first, then the coordinator's; partitions in request order."""
    admin = ShareMember(broker)
    answer = admin.call(ApiKey.ALTER_SHARE_GROUP_OFFSETS, 0, {"group_id": "g", "topics": [
        {"topic_name": "t", "partitions": [{"partition_index": 0, "start_offset": 0}, {"partition_index": 7, "start_offset": 0}]},
        {"topic_name": "nope", "partitions": [{"partition_index": 1, "start_offset": 0}]},
        {"topic_name": "t", "partitions": [{"partition_index": 1, "start_offset": 0}, {"partition_index": 0, "start_offset": 0}]}]})
    admin.close()
    assert answer["error_code"] == ErrorCode.NONE
    assert [(t["topic_name"], [(p["partition_index"], p["error_code"], p["error_message"]) for p in t["partitions"]])
            for t in answer["responses"]] == [
        ("nope", [(1, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, _UNKNOWN)]),
        ("t", [(0, ErrorCode.NONE, None), (7, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, _UNKNOWN), (1, ErrorCode.NONE, None),
               (0, ErrorCode.NONE, None)])]


def test_a_heartbeat_at_the_previous_epoch_is_answered_and_an_older_one_fenced(broker: ThreadedBroker, member: _Member) -> None:
    """A member that missed the answer moving it on heartbeats at its previous epoch: Kafka
    answers it with the current one; an epoch older still is fenced, in Kafka's words. A
    heartbeat naming its subscription gets the assignment even when it did not change."""
    first = member.heartbeat("g", 0, ["t"])["member_epoch"]
    other = ShareMember(broker)
    try:
        assert other.join_until_assigned("g", ["t"])  # the group's epoch moves on
        current = first
        for _ in range(300):
            current = member.heartbeat("g", current, [])["member_epoch"]
            if current != first:
                break
        assert current > first
        again = member.heartbeat("g", first, [])
        assert (again["error_code"], again["member_epoch"]) == (ErrorCode.NONE, current)
        assert first > 1  # the fixture's member was assigned after its join's epoch
        older = member.heartbeat("g", first - 1, [])
        assert (older["error_code"], older["error_message"]) == (
            ErrorCode.FENCED_MEMBER_EPOCH,
            f"The share group member has a smaller member epoch ({first - 1}) than the one known by the group coordinator"
            f" ({current}), and it does not match the previous member epoch ({first}). The member must abandon all its"
            " partitions and rejoin.")
        named = member.call(ApiKey.SHARE_GROUP_HEARTBEAT, 1, {"group_id": "g", "member_id": member.member_id, "member_epoch": current,
                                                              "rack_id": None, "subscribed_topic_names": ["t"]})
        assert named["error_code"] == ErrorCode.NONE and named["assignment"] is not None
    finally:
        other.close()
