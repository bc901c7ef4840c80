"""A ShareFetch carrying any acknowledgement has every partition it names acknowledged, as
KafkaApis.handleShareFetchRequest does: a partition the topic lacks, or a topic id no topic
has, answers that error as its acknowledgement error even without batches of its own; and the
first batch may start at -1 (KafkaApis.validateAcknowledgementBatches refuses only a first
offset below the previous end, which starts at -1). Every answer here is the reference Kafka 4.4's."""

from __future__ import annotations

from typing import Any

from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from share_member import ShareFetcher

_ACCEPT = 1
_NO_TOPIC = bytes(16)


def test_share_fetch_acknowledges_every_partition_it_names_once_it_carries_acknowledgements() -> None:
    with running_broker(data_dir=None) as broker:
        fetcher = ShareFetcher(broker, "fetch-ack-entries")
        fetcher.produce_one_per_batch(1)
        assert fetcher.fetch(max_wait_ms=5000).ranges == [(0, 0, 1)]
        topic_id, member = fetcher.topic_id, fetcher.member

        def fetch(topics: list[tuple[bytes, list[tuple[int, list[Any]]]]]) -> list[Any]:
            answer = member.call(ApiKey.SHARE_FETCH, 1, {
                "group_id": fetcher.group, "member_id": member.member_id, "share_session_epoch": fetcher.epoch, "max_wait_ms": 0,
                "min_bytes": 1, "max_bytes": 1 << 20, "max_records": 500, "batch_size": 500, "forgotten_topics_data": [], "topics": [
                    {"topic_id": tid, "partitions": [{"partition_index": index, "acknowledgement_batches": batches} for index, batches in listed]}
                    for tid, listed in topics]})
            fetcher.epoch += 1
            assert answer["error_code"] == ErrorCode.NONE
            return sorted((bytes(t["topic_id"]), p["partition_index"], p["error_code"], p["acknowledge_error_code"])
                          for t in answer["responses"] for p in t["partitions"])

        accepted = [{"first_offset": 0, "last_offset": 0, "acknowledge_types": [_ACCEPT]}]
        assert fetch([(topic_id, [(0, accepted), (5, [])]), (_NO_TOPIC, [(1, [])])]) == [
            (_NO_TOPIC, 1, ErrorCode.UNKNOWN_TOPIC_ID, ErrorCode.UNKNOWN_TOPIC_ID),
            (topic_id, 0, ErrorCode.NONE, ErrorCode.NONE),
            (topic_id, 5, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)]
        from_minus_one = [{"first_offset": -1, "last_offset": 0, "acknowledge_types": [_ACCEPT]}]
        # The session still holds the refused partitions: they fail the fetch again, acknowledging nothing.
        assert fetch([(topic_id, [(7, from_minus_one)])]) == [
            (_NO_TOPIC, 1, ErrorCode.UNKNOWN_TOPIC_ID, ErrorCode.NONE),
            (topic_id, 5, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.NONE),
            (topic_id, 7, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)]
        member.close()
