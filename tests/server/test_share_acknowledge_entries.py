"""Which partitions a ShareAcknowledge answers, as KafkaApis.handleAcknowledgements builds its
maps (every answer here is the reference Kafka 4.4's): one entry per partition however often
the request names it, none for a topic named without partitions, none for a partition that
acknowledges nothing unless some partition's batches reached the share-partitions, and a
partition the topic does not have refused UNKNOWN_TOPIC_OR_PARTITION without a message."""

from __future__ import annotations

from typing import Any

from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from share_member import ShareFetcher

_ACCEPT = 1


def _entries(answer: dict[str, Any]) -> list[tuple[bytes, int, int, str | None]]:
    assert answer["error_code"] == ErrorCode.NONE
    return sorted((bytes(t["topic_id"]), p["partition_index"], p["error_code"], p["error_message"])
                  for t in answer["responses"] for p in t["partitions"])


def test_share_acknowledge_answers_each_partition_once_and_only_those_refused_or_taken() -> None:
    with running_broker(data_dir=None) as broker:
        fetcher = ShareFetcher(broker, "ack-entries")
        fetcher.produce_one_per_batch(1)
        assert fetcher.fetch(max_wait_ms=5000).ranges == [(0, 0, 1)]
        topic_id, member = fetcher.topic_id, fetcher.member

        def acknowledge(partitions: list[tuple[int, list[Any]]], *more: list[tuple[int, list[Any]]]) -> list[Any]:
            answer = member.call(ApiKey.SHARE_ACKNOWLEDGE, 1, {
                "group_id": fetcher.group, "member_id": member.member_id, "share_session_epoch": fetcher.epoch, "topics": [
                    {"topic_id": topic_id, "partitions": [{"partition_index": index, "acknowledgement_batches": batches}
                                                          for index, batches in listed]} for listed in (partitions, *more)]})
            fetcher.epoch += 1
            return _entries(answer)

        # Nothing reaches the share-partition: only the partition the topic lacks is answered.
        assert acknowledge([(0, []), (0, []), (5, [])], []) == [(topic_id, 5, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, None)]
        # Partition 0 named twice: its last entry's batches count, answered once.
        accepted = [{"first_offset": 0, "last_offset": 0, "acknowledge_types": [_ACCEPT]}]
        assert acknowledge([(0, []), (0, accepted)], [(7, [])]) == [
            (topic_id, 0, ErrorCode.NONE, None), (topic_id, 7, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, None)]
        member.close()
