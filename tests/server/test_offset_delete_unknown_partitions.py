"""OffsetDelete of partitions a topic does not have: Kafka 4.4's KafkaApis answers them
UNKNOWN_TOPIC_OR_PARTITION itself, before the coordinator could find the group subscribed to
the topic, and merges them with the coordinator's answers into one entry per topic; a topic
left with no partition to ask about is not asked about. Raw requests to a real broker; every
answer here is the reference Kafka 4.4's."""

from __future__ import annotations

from typing import Any

from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode


def test_partitions_a_topic_does_not_have_are_unknown_whatever_the_group_reads() -> None:
    with running_broker(data_dir=None) as broker:
        connection = _Connection(broker.bootstrap_servers)
        created = connection.call(ApiKey.CREATE_TOPICS, 7, {"timeout_ms": 5000, "validate_only": False, "topics": [
            {"name": name, "num_partitions": 2, "replication_factor": 1, "assignments": [], "configs": []} for name in ("read", "unread")]})
        assert [t["error_code"] for t in created["topics"]] == [ErrorCode.NONE, ErrorCode.NONE]
        committed = connection.call(ApiKey.OFFSET_COMMIT, 2, {
            "group_id": "g", "generation_id_or_member_epoch": -1, "member_id": "", "retention_time_ms": -1, "topics": [
                {"name": name, "partitions": [{"partition_index": 0, "committed_offset": 0, "committed_metadata": ""}]} for name in ("read", "unread")]})
        assert [p["error_code"] for t in committed["topics"] for p in t["partitions"]] == [ErrorCode.NONE, ErrorCode.NONE]
        joined = connection.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 1, {
            "group_id": "g", "member_id": "m1", "member_epoch": 0, "instance_id": None, "rack_id": None, "rebalance_timeout_ms": 30_000,
            "subscribed_topic_names": ["read"], "subscribed_topic_regex": None, "server_assignor": None, "topic_partitions": []})
        assert joined["error_code"] == ErrorCode.NONE

        def deleted(topics: list[tuple[str, list[int]]]) -> Any:
            answer = connection.call(ApiKey.OFFSET_DELETE, 0, {"group_id": "g", "topics": [
                {"name": name, "partitions": [{"partition_index": index} for index in indexes]} for name, indexes in topics]})
            return answer["error_code"], sorted((t["name"], sorted((p["partition_index"], p["error_code"]) for p in t["partitions"]))
                                                for t in answer["topics"])

        unknown, subscribed = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC
        assert deleted([("read", [0, 100, -1, 1])]) == (ErrorCode.NONE, [("read", [(-1, unknown), (0, subscribed), (1, subscribed), (100, unknown)])])
        assert deleted([("read", [5]), ("unread", []), ("nope", [0])]) == (ErrorCode.NONE, [("nope", [(0, unknown)]), ("read", [(5, unknown)])])
        assert deleted([("unread", [0, 9])]) == (ErrorCode.NONE, [("unread", [(0, ErrorCode.NONE), (9, unknown)])])
        connection.close()
