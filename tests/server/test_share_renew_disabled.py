"""RENEW acknowledgements (KIP-1222) of a group whose share.renew.acknowledge.enable is false:
a renew request's RENEW batch gets past KafkaApis, and Kafka 4.4's SharePartition refuses it,
once it finds the member holds the records, with INVALID_RECORD_STATE ("Renewing acquisition
locks is not enabled for the group."), applying none of the partition's batches. Asked of Kafka 4.4."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from share_member import ShareMember

from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.records import Record, build_batch

_ACCEPT, _RENEW = 1, 4
_DISABLED = "Renewing acquisition locks is not enabled for the group."


class _Member(ShareMember):
    """A member of group "nr" (renewing disabled) on topic "nr", speaking v2."""

    epoch = 0

    def fetch(self, topic_id: bytes, acks: list[dict[str, Any]] = (), renew: bool = False, **fields: Any) -> dict[str, Any]:  # type: ignore[assignment]
        answer = self.call(ApiKey.SHARE_FETCH, 2, {
            "group_id": "nr", "member_id": self.member_id, "share_session_epoch": self.epoch, "max_wait_ms": 0, "min_bytes": 1,
            "max_bytes": 1 << 20, "max_records": 500, "batch_size": 500, "share_acquire_mode": 0, "is_renew_ack": renew,
            "topics": [{"topic_id": topic_id, "partitions": [{"partition_index": 0, "acknowledgement_batches": list(acks)}]}],
            "forgotten_topics_data": [], **fields})
        assert answer["error_code"] == ErrorCode.NONE
        self.epoch += 1
        return dict(answer["responses"][0]["partitions"][0]) if answer["responses"] else {}

    def acknowledge(self, topic_id: bytes, first: int, last: int, types: list[int], renew: bool) -> tuple[int, str | None]:
        answer = self.call(ApiKey.SHARE_ACKNOWLEDGE, 2, {
            "group_id": "nr", "member_id": self.member_id, "share_session_epoch": self.epoch, "is_renew_ack": renew,
            "topics": [{"topic_id": topic_id, "partitions": [{"partition_index": 0, "acknowledgement_batches": [
                {"first_offset": first, "last_offset": last, "acknowledge_types": types}]}]}]})
        self.epoch += 1
        partition = answer["responses"][0]["partitions"][0]
        return partition["error_code"], partition["error_message"]


@pytest.fixture
def holding() -> Iterator[tuple[_Member, bytes]]:
    """A member holding records 0-5 of topic nr."""
    with running_broker(data_dir=None) as broker:
        broker.create_topic("nr")
        member = _Member(broker)
        altered = member.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {"resources": [{
            "resource_type": 32, "resource_name": "nr",
            "configs": [{"name": "share.renew.acknowledge.enable", "config_operation": 0, "value": "false"}]}], "validate_only": False})
        assert altered["responses"][0]["error_code"] == 0
        topic_id = bytes(member.join_until_assigned("nr", ["nr"])[0]["topic_id"])
        assert member.fetch(topic_id).get("acquired_records", []) == []
        member.call(ApiKey.PRODUCE, 9, {"transactional_id": None, "acks": -1, "timeout_ms": 5000, "topic_data": [
            {"name": "nr", "partition_data": [{"index": 0, "records": build_batch([Record(i, 0, None, b"v") for i in range(6)])}]}]})
        held = member.fetch(topic_id)["acquired_records"]
        assert [(r["first_offset"], r["last_offset"]) for r in held] == [(0, 5)]
        yield member, topic_id
        member.close()


def test_a_renew_fetch_is_refused_by_the_share_partition(holding: tuple[_Member, bytes]) -> None:
    member, topic_id = holding
    partition = member.fetch(topic_id, [{"first_offset": 0, "last_offset": 0, "acknowledge_types": [_RENEW]}], renew=True,
                             max_bytes=0, max_records=0, min_bytes=0)
    assert (partition["acknowledge_error_code"], partition["acknowledge_error_message"]) == (ErrorCode.INVALID_RECORD_STATE, _DISABLED)


def test_a_renew_acknowledge_applies_none_of_its_batch(holding: tuple[_Member, bytes]) -> None:
    member, topic_id = holding
    assert member.acknowledge(topic_id, 1, 2, [_ACCEPT, _RENEW], renew=True) == (ErrorCode.INVALID_RECORD_STATE, _DISABLED)
    assert member.acknowledge(topic_id, 1, 1, [_ACCEPT], renew=False) == (ErrorCode.NONE, None)  # still held: nothing applied
    # The member's hold is checked first.
    assert member.acknowledge(topic_id, 1, 1, [_RENEW], renew=True) == (
        ErrorCode.INVALID_RECORD_STATE, "The offset cannot be acknowledged. The offset is not acquired.")
