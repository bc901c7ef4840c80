"""KIP-1222's RENEW acknowledgements over raw ShareFetch v2 requests, as Kafka (KafkaApis since
KAFKA-19844) answers them: a request with is_renew_ack only acknowledges (its fetch fields must
be 0, and nothing is acquired for it), and a RENEW acknowledgement in any other request is
INVALID_REQUEST."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from share_member import ShareMember

from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.records import Record, build_batch

_RELEASE, _RENEW = 2, 4


class _Member(ShareMember):
    """A share group member of group "g" speaking ShareFetch v2."""

    def __init__(self, broker: ThreadedBroker) -> None:
        super().__init__(broker)
        self.epoch = 0

    def fetch(self, topic_id: bytes, acks: list[dict[str, Any]] = (), renew: bool = False, **fields: Any) -> dict[str, Any]:  # type: ignore[assignment]
        body = {"group_id": "g", "member_id": self.member_id, "share_session_epoch": self.epoch, "max_wait_ms": 0, "min_bytes": 0,
                "max_bytes": 1 << 20, "max_records": 500, "batch_size": 0, "share_acquire_mode": 0, "is_renew_ack": renew,
                "topics": [{"topic_id": topic_id, "partitions": [{"partition_index": 0, "acknowledgement_batches": list(acks)}]}],
                "forgotten_topics_data": [], **fields}
        answer = self.call(ApiKey.SHARE_FETCH, 2, body)
        if answer["error_code"] == ErrorCode.NONE:
            self.epoch += 1
        return answer


def _partition(answer: dict[str, Any]) -> dict[str, Any]:
    return answer["responses"][0]["partitions"][0] if answer["responses"] else {}


@pytest.fixture
def holding() -> Iterator[tuple[_Member, bytes]]:
    """A member holding records 0-9 of topic t."""
    with running_broker(data_dir=None) as broker:
        broker.create_topic("t")
        assert broker.broker is not None and broker.broker.storage is not None
        info = broker.broker.storage.topic("t")
        assert info is not None
        topic_id = info.topic_id
        member = _Member(broker)
        assert member.join_until_assigned("g", ["t"])
        # share.auto.offset.reset is latest: the records come after the share-partition starts.
        assert _partition(member.fetch(topic_id)).get("acquired_records", []) == []
        for i in range(10):
            member.call(ApiKey.PRODUCE, 9, {"transactional_id": None, "acks": -1, "timeout_ms": 5000, "topic_data": [
                {"name": "t", "partition_data": [{"index": 0, "records": build_batch([Record(0, 0, None, b"v%d" % i)])}]}]})
        held = [(r["first_offset"], r["last_offset"]) for r in _partition(member.fetch(topic_id)).get("acquired_records", [])]
        assert held == [(0, 9)]
        yield member, topic_id
        member.sock.close()


def test_a_renew_request_must_not_ask_to_fetch_and_acquires_nothing(holding: tuple[_Member, bytes]) -> None:
    member, topic_id = holding
    release = [{"first_offset": 5, "last_offset": 9, "acknowledge_types": [_RELEASE]}]
    assert member.fetch(topic_id, release, renew=True)["error_code"] == ErrorCode.INVALID_REQUEST  # it asks for records
    answer = member.fetch(topic_id, release, renew=True, max_bytes=0, max_records=0)
    assert answer["error_code"] == ErrorCode.NONE
    partition = _partition(answer)
    assert partition["acknowledge_error_code"] == ErrorCode.NONE and partition["acquired_records"] == []  # released, not handed back
    renewed = member.fetch(topic_id, [{"first_offset": 0, "last_offset": 0, "acknowledge_types": [_RENEW]}], renew=True, max_bytes=0, max_records=0)
    assert _partition(renewed)["acknowledge_error_code"] == ErrorCode.NONE


def test_a_renew_acknowledgement_needs_a_renew_request(holding: tuple[_Member, bytes]) -> None:
    member, topic_id = holding
    answer = member.fetch(topic_id, [{"first_offset": 0, "last_offset": 0, "acknowledge_types": [_RENEW]}])
    assert _partition(answer)["acknowledge_error_code"] == ErrorCode.INVALID_REQUEST
