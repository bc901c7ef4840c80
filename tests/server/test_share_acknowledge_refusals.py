"""The messages of INVALID_RECORD_STATE when a member acknowledges records it does not hold, as
Kafka 4.4's SharePartition words them (acknowledgeBatchRecords, validateAcknowledgementBatchMemberId,
acknowledgePerOffsetBatchRecords): an in-flight batch still whole is refused as a batch (not
acquired, or another member's) even when the request names part of it; one an acknowledgement
took part of is refused offset by offset from then on. Asked of Kafka 4.4 with the same requests.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from share_member import ShareFetcher, ShareMember

ACCEPT, RELEASE, REJECT = 1, 2, 3
BATCH_NOT_ACQUIRED = "The batch cannot be acknowledged. The batch is not in the acquired state."
NOT_BATCH_OWNER = "Member is not the owner of batch record"
OFFSET_NOT_ACQUIRED = "The offset cannot be acknowledged. The offset is not acquired."
NOT_OFFSET_OWNER = "Member is not the owner of offset"


class Acknowledger:
    """A member of the fetcher's group with a share session open, acknowledging by ShareAcknowledge."""

    def __init__(self, member: ShareMember, fetcher: ShareFetcher, epoch: int) -> None:
        self.member, self.fetcher, self.epoch = member, fetcher, epoch

    def __call__(self, first: int, last: int, types: list[int]) -> tuple[int, str | None]:
        """The partition's error and message."""
        answer: dict[str, Any] = self.member.call(ApiKey.SHARE_ACKNOWLEDGE, 1, {
            "group_id": self.fetcher.group, "member_id": self.member.member_id, "share_session_epoch": self.epoch,
            "topics": [{"topic_id": self.fetcher.topic_id, "partitions": [{"partition_index": 0, "acknowledgement_batches": [
                {"first_offset": first, "last_offset": last, "acknowledge_types": types}]}]}]})
        self.epoch += 1
        assert answer["error_code"] == 0
        ((partition,),) = [topic["partitions"] for topic in answer["responses"]]
        return partition["error_code"], partition["error_message"]


@pytest.fixture()
def members() -> Iterator[tuple[ShareFetcher, Acknowledger, Acknowledger]]:
    """The fetcher (its session open, so it acquires what is produced next) and a second member
    of its group, each with an Acknowledger."""
    broker: ThreadedBroker
    with running_broker(data_dir=None) as broker:
        fetcher = ShareFetcher(broker, "refusals")
        other = ShareMember(broker)
        other.join_until_assigned(fetcher.group, [fetcher.topic])
        opened = other.call(ApiKey.SHARE_FETCH, 1, {
            "group_id": fetcher.group, "member_id": other.member_id, "share_session_epoch": 0, "max_wait_ms": 0, "min_bytes": 1,
            "max_bytes": 1 << 20, "max_records": 500, "batch_size": 500,
            "topics": [{"topic_id": fetcher.topic_id, "partitions": [{"partition_index": 0, "acknowledgement_batches": []}]}],
            "forgotten_topics_data": []})
        assert opened["error_code"] == 0
        yield fetcher, _own(fetcher), Acknowledger(other, fetcher, 1)
        other.close()
        fetcher.member.close()


def _own(fetcher: ShareFetcher) -> Acknowledger:
    """The fetcher's own acknowledgements, on its session (its epochs shared with its fetches)."""

    class Own(Acknowledger):
        def __call__(self, first: int, last: int, types: list[int]) -> tuple[int, str | None]:
            self.epoch = fetcher.epoch
            answer = super().__call__(first, last, types)
            fetcher.epoch = self.epoch
            return answer

    return Own(fetcher.member, fetcher, fetcher.epoch)


def test_a_whole_batch_is_refused_as_a_batch(members: tuple[ShareFetcher, Acknowledger, Acknowledger]) -> None:
    fetcher, own, other = members
    fetcher.produce_batch(count=10)
    assert fetcher.fetch().ranges == [(0, 9, 1)]
    assert other(0, 9, [ACCEPT]) == (121, NOT_BATCH_OWNER)
    assert other(2, 4, [ACCEPT]) == (121, NOT_BATCH_OWNER)
    assert own(0, 9, [RELEASE]) == (0, None)
    assert own(0, 9, [ACCEPT]) == (121, BATCH_NOT_ACQUIRED)
    assert own(2, 3, [ACCEPT]) == (121, BATCH_NOT_ACQUIRED)


def test_an_archived_batch_is_refused_as_a_batch_even_offset_by_offset(
        members: tuple[ShareFetcher, Acknowledger, Acknowledger]) -> None:
    fetcher, own, _ = members
    fetcher.produce_batch(count=5)
    assert fetcher.fetch().ranges == [(0, 4, 1)]
    fetcher.produce_batch(count=10)
    assert fetcher.fetch().ranges == [(5, 14, 1)]
    # Offsets 0-4 still held: the rejected batch stays in flight.
    assert own(5, 14, [REJECT]) == (0, None)
    assert own(5, 14, [ACCEPT]) == (121, BATCH_NOT_ACQUIRED)
    assert own(5, 14, [ACCEPT] * 10) == (121, BATCH_NOT_ACQUIRED)


def test_a_batch_acknowledged_in_part_is_refused_offset_by_offset(members: tuple[ShareFetcher, Acknowledger, Acknowledger]) -> None:
    fetcher, own, other = members
    fetcher.produce_batch(count=10)
    assert fetcher.fetch().ranges == [(0, 9, 1)]
    assert own(0, 4, [ACCEPT]) == (0, None)
    assert other(5, 9, [ACCEPT]) == (121, NOT_OFFSET_OWNER)
    assert other(6, 6, [ACCEPT]) == (121, NOT_OFFSET_OWNER)
    assert own(5, 9, [RELEASE]) == (0, None)
    assert own(5, 9, [ACCEPT]) == (121, OFFSET_NOT_ACQUIRED)
