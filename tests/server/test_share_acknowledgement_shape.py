"""Acknowledgement batches of a malformed shape are INVALID_REQUEST for the partition before
any share-partition is looked for (KafkaApis.validateAcknowledgementBatches), so also for a
partition the group never fetched. Raw requests to a real broker; every answer here is the
reference Kafka 4.4's."""

from __future__ import annotations

from typing import Any

from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode


def test_malformed_batches_are_invalid_for_a_partition_never_fetched() -> None:
    with running_broker(data_dir=None) as broker:
        connection = _Connection(broker.bootstrap_servers)
        created = connection.call(ApiKey.CREATE_TOPICS, 7, {"timeout_ms": 5000, "validate_only": False, "topics": [
            {"name": "t", "num_partitions": 1, "replication_factor": 1, "assignments": [], "configs": []}]})
        assert created["topics"][0]["error_code"] == ErrorCode.NONE
        topic_id = created["topics"][0]["topic_id"]
        opened = connection.call(ApiKey.SHARE_FETCH, 1, {
            "group_id": "g", "member_id": "m", "share_session_epoch": 0, "max_wait_ms": 0, "min_bytes": 1, "max_bytes": 1 << 20,
            "max_records": 10, "batch_size": 10, "topics": [], "forgotten_topics_data": []})
        assert opened["error_code"] == ErrorCode.NONE

        def acknowledged(epoch: int, first: int, last: int, types: list[int]) -> Any:
            answer = connection.call(ApiKey.SHARE_ACKNOWLEDGE, 1, {"group_id": "g", "member_id": "m", "share_session_epoch": epoch, "topics": [
                {"topic_id": topic_id, "partitions": [{"partition_index": 0, "acknowledgement_batches": [
                    {"first_offset": first, "last_offset": last, "acknowledge_types": types}]}]}]})
            return answer["error_code"], [p["error_code"] for t in answer["responses"] for p in t["partitions"]]

        assert acknowledged(1, -1, 1, []) == (ErrorCode.NONE, [ErrorCode.INVALID_REQUEST])
        assert acknowledged(2, 3, 1, [1]) == (ErrorCode.NONE, [ErrorCode.INVALID_REQUEST])
        assert acknowledged(3, 0, 2, [1, 1]) == (ErrorCode.NONE, [ErrorCode.INVALID_REQUEST])
        assert acknowledged(4, 0, 0, [9]) == (ErrorCode.NONE, [ErrorCode.INVALID_REQUEST])
        connection.close()
