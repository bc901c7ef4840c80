"""Acknowledgement batches that meet at one offset, as Kafka 4.4 answers them (asked of the
reference broker): KafkaApis.validateAcknowledgementBatches refuses only a batch starting below
the previous one's last offset, so a batch may start where the previous ended. SharePartition
then finds that offset acknowledged already: INVALID_RECORD_STATE for the partition, nothing of
the request applied; an offset the earlier batch left below the start offset is skipped."""

from __future__ import annotations

from typing import Any

from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from share_member import ShareFetcher

_ACCEPT, _RELEASE = 1, 2


def test_batches_meeting_at_an_offset_pass_validation_and_meet_the_records_state() -> None:
    with running_broker(data_dir=None) as broker:
        fetcher = ShareFetcher(broker, "ack-overlap")
        fetcher.produce_one_per_batch(3)
        assert fetcher.fetch(max_wait_ms=5000).ranges == [(0, 2, 1)]

        def acknowledge(*batches: tuple[int, int, int]) -> Any:
            answer = fetcher.member.call(ApiKey.SHARE_ACKNOWLEDGE, 1, {
                "group_id": fetcher.group, "member_id": fetcher.member.member_id, "share_session_epoch": fetcher.epoch, "topics": [
                    {"topic_id": fetcher.topic_id, "partitions": [{"partition_index": 0, "acknowledgement_batches": [
                        {"first_offset": first, "last_offset": last, "acknowledge_types": [kind]} for first, last, kind in batches]}]}]})
            fetcher.epoch += 1
            ((partition,),) = [t["partitions"] for t in answer["responses"]]
            return partition["error_code"], partition["error_message"]

        assert acknowledge((1, 1, _ACCEPT), (1, 2, _ACCEPT)) == (
            ErrorCode.INVALID_RECORD_STATE, "The offset cannot be acknowledged. The offset is not acquired.")
        # Nothing was applied: offset 1 is still acquired. Accepting 0 moves the start past it,
        # so batches starting at 0 again only acknowledge what follows.
        assert acknowledge((0, 0, _ACCEPT)) == (ErrorCode.NONE, None)
        assert acknowledge((0, 0, _ACCEPT), (0, 1, _RELEASE)) == (ErrorCode.NONE, None)
        assert acknowledge((2, 2, _ACCEPT)) == (ErrorCode.NONE, None)
        fetcher.member.close()
