"""A ShareFetch's min_bytes, as Kafka 4.4's DelayedShareFetch checks it (isMinBytesSatisfied):
with fewer bytes of log ahead of its share-partitions than min_bytes it acquires nothing and
waits, answering once enough is produced or, at max_wait_ms, with what there is; the bytes
counted are the log's, not what max_records lets it acquire. Timings asked of Kafka 4.4 with
the same requests (2.0 s, 0.8 s and at once)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from share_member import ShareMember

from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.records import Record, build_batch


class _Fetcher(ShareMember):
    """A member of group "mb", alone on topic "mb" (one partition), its session open."""

    epoch = 0

    def fetch(self, topic_id: bytes, **fields: Any) -> tuple[float, list[tuple[int, int]]]:
        """The seconds a ShareFetch v1 took, and the ranges it acquired."""
        started = time.monotonic()
        answer = self.call(ApiKey.SHARE_FETCH, 1, {
            "group_id": "mb", "member_id": self.member_id, "share_session_epoch": self.epoch, "max_wait_ms": 0, "min_bytes": 1,
            "max_bytes": 1 << 20, "max_records": 500, "batch_size": 500,
            "topics": [{"topic_id": topic_id, "partitions": [{"partition_index": 0, "acknowledgement_batches": []}]}] if self.epoch == 0 else [],
            "forgotten_topics_data": [], **fields})
        took = time.monotonic() - started
        assert answer["error_code"] == 0
        self.epoch += 1
        return took, [(r["first_offset"], r["last_offset"]) for t in answer["responses"] for p in t["partitions"] for r in p["acquired_records"]]

    def produce(self, records: int, size: int = 1) -> None:
        """One batch of `records` records of `size` bytes each."""
        produced = self.call(ApiKey.PRODUCE, 9, {"transactional_id": None, "acks": -1, "timeout_ms": 5000, "topic_data": [
            {"name": "mb", "partition_data": [{"index": 0, "records": build_batch([Record(i, 0, None, b"v" * size) for i in range(records)])}]}]})
        assert produced["responses"][0]["partition_responses"][0]["error_code"] == 0


@pytest.fixture
def fetcher() -> Iterator[tuple[_Fetcher, _Fetcher, bytes]]:
    """The fetcher, a second connection to produce with, and the topic's id."""
    with running_broker(data_dir=None) as broker:
        broker.create_topic("mb")
        member, producer = _Fetcher(broker), _Fetcher(broker)
        topic_id = bytes(member.join_until_assigned("mb", ["mb"])[0]["topic_id"])
        assert member.fetch(topic_id)[1] == []
        yield member, producer, topic_id
        member.close()
        producer.close()


def test_too_few_bytes_wait_for_the_max_wait_then_are_handed_out(fetcher: tuple[_Fetcher, _Fetcher, bytes]) -> None:
    member, producer, topic_id = fetcher
    producer.produce(1)
    took, got = member.fetch(topic_id, min_bytes=100_000, max_wait_ms=1500)
    assert took >= 1.4 and got == [(0, 0)]


def test_enough_bytes_produced_meanwhile_answer_at_once(fetcher: tuple[_Fetcher, _Fetcher, bytes]) -> None:
    member, producer, topic_id = fetcher
    producer.produce(1)
    later = threading.Timer(0.5, producer.produce, (20, 200))
    later.start()
    took, got = member.fetch(topic_id, min_bytes=1000, max_wait_ms=10_000)
    later.join()
    assert 0.4 <= took < 5 and got == [(0, 20)]


def test_the_log_bytes_count_not_what_max_records_lets_through(fetcher: tuple[_Fetcher, _Fetcher, bytes]) -> None:
    member, producer, topic_id = fetcher
    producer.produce(20, 200)
    took, got = member.fetch(topic_id, min_bytes=1000, max_wait_ms=10_000, max_records=1)
    assert took < 5 and got == [(0, 19)]  # batch-optimized: the whole batch
