"""When a ShareFetch waits, as Kafka 4.4 answers (timings asked of the reference broker with
the same requests): its DelayedShareFetch waits on the partitions it may read, so the
partitions refused before it (unknown topic id, partition past the end) answer with whatever
ends the wait; only a fetch with no readable partition answers at once. A fetch that may take
nothing (max_bytes or max_records 0) answers at once, before any share-partition is made
(SharePartitionManager.processShareFetch)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from share_member import ShareMember

from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.records import Record, build_batch

_UNKNOWN_TOPIC_ID = bytes(range(1, 17))
_ACCEPT = 1


@pytest.fixture(scope="module")
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None) as running:
        yield running


class _Fetcher(ShareMember):
    """The only member of `topic`-group on a fresh one-partition `topic`."""

    def __init__(self, broker: ThreadedBroker, topic: str) -> None:
        super().__init__(broker)
        broker.create_topic(topic, partitions=1)
        self.topic, self.group = topic, f"{topic}-group"
        self.topic_id = bytes(self.join_until_assigned(self.group, [topic])[0]["topic_id"])

    def fetch(self, epoch: int, named: dict[tuple[bytes, int], list[tuple[int, int, int]]] | None = None,
              **fields: Any) -> tuple[float, dict[tuple[bytes, int], tuple[int, int, list[tuple[int, int, int]]]]]:
        """One ShareFetch v1 naming `named` partitions with their (first, last, type)
        acknowledgements: the seconds it took, and each partition answered as (error,
        acknowledge error, acquired ranges with their delivery counts)."""
        started = time.monotonic()
        answer = self.call(ApiKey.SHARE_FETCH, 1, {
            "group_id": self.group, "member_id": self.member_id, "share_session_epoch": epoch, "max_wait_ms": 500, "min_bytes": 1,
            "max_bytes": 1 << 20, "max_records": 500, "batch_size": 500,
            "topics": [{"topic_id": topic_id, "partitions": [{"partition_index": index, "acknowledgement_batches": [
                {"first_offset": first, "last_offset": last, "acknowledge_types": [kind]} for first, last, kind in acks]}]}
                for (topic_id, index), acks in (named or {}).items()],
            "forgotten_topics_data": [], **fields})
        took = time.monotonic() - started
        assert answer["error_code"] == 0
        return took, {(topic["topic_id"], p["partition_index"]): (p["error_code"], p["acknowledge_error_code"],
                                                                  [(r["first_offset"], r["last_offset"], r["delivery_count"]) for r in p["acquired_records"]])
                      for topic in answer["responses"] for p in topic["partitions"]}

    def produce(self, records: int) -> None:
        produced = self.call(ApiKey.PRODUCE, 9, {"transactional_id": None, "acks": -1, "timeout_ms": 5000, "topic_data": [
            {"name": self.topic, "partition_data": [{"index": 0, "records": build_batch([Record(i, 0, None, b"v") for i in range(records)])}]}]})
        assert produced["responses"][0]["partition_responses"][0]["error_code"] == 0


def test_refused_partitions_do_not_end_the_wait_of_a_readable_one(broker: ThreadedBroker) -> None:
    member = _Fetcher(broker, "refused-wait")
    valid, past_end, unknown = (member.topic_id, 0), (member.topic_id, 5), (_UNKNOWN_TOPIC_ID, 0)
    took, answered = member.fetch(0, {valid: [], past_end: [], unknown: []})
    assert took >= 0.45
    assert answered == {valid: (0, 0, []), past_end: (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, 0, []),
                        unknown: (ErrorCode.UNKNOWN_TOPIC_ID, 0, [])}
    took, answered = member.fetch(1)
    assert took >= 0.45 and set(answered) == {past_end, unknown}
    # Nothing readable: answered at once.
    took, answered = member.fetch(0, {past_end: [], unknown: []})
    assert took < 0.3 and set(answered) == {past_end, unknown}
    member.close()


def test_an_acknowledgement_is_answered_when_the_wait_ends(broker: ThreadedBroker) -> None:
    member = _Fetcher(broker, "ack-wait")
    valid, unknown = (member.topic_id, 0), (_UNKNOWN_TOPIC_ID, 0)
    member.fetch(0, {valid: [], unknown: []}, max_wait_ms=0)
    member.produce(3)
    assert member.fetch(1)[1][valid] == (0, 0, [(0, 2, 1)])
    took, answered = member.fetch(2, {valid: [(0, 2, _ACCEPT)]})
    assert took >= 0.45 and answered[valid] == (0, 0, [])
    member.close()


@pytest.mark.parametrize("nothing", [{"max_bytes": 0}, {"max_records": 0}], ids=["max_bytes", "max_records"])
def test_a_fetch_that_may_take_nothing_answers_at_once_and_makes_no_share_partition(broker: ThreadedBroker, nothing: dict[str, int]) -> None:
    member = _Fetcher(broker, f"nothing-{next(iter(nothing))}")
    valid, past_end, unknown = (member.topic_id, 0), (member.topic_id, 5), (_UNKNOWN_TOPIC_ID, 0)
    member.produce(3)
    took, answered = member.fetch(0, {valid: [], past_end: [], unknown: []}, **nothing)
    # Only the refused partitions are listed.
    assert took < 0.3 and answered == {past_end: (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, 0, []), unknown: (ErrorCode.UNKNOWN_TOPIC_ID, 0, [])}
    member.produce(2)
    # The share-partition is made now, at the end of the log (share.auto.offset.reset latest).
    took, answered = member.fetch(1)
    assert took >= 0.45 and valid not in answered
    member.produce(1)
    assert member.fetch(2)[1][valid] == (0, 0, [(5, 5, 1)])
    member.close()
