"""DescribeShareGroupOffsets naming a partition index past the topic's count: Kafka 4.4 answers
it for a group that never initialized the topic as any partition with no share state (start
offset and lag -1, no error), not UNKNOWN_TOPIC_OR_PARTITION. Raw requests to a real broker;
the answers here are the reference Kafka 4.4's (partitions 3 and 7 of a three-partition topic)."""

from __future__ import annotations

from raw_broker import connection  # noqa: F401 (the fixture)
from compat.differential import _Connection
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode


def test_a_partition_past_the_count_has_no_state_and_no_error(connection: _Connection) -> None:
    created = connection.call(ApiKey.CREATE_TOPICS, 7, {"timeout_ms": 5000, "validate_only": False, "topics": [
        {"name": "three", "num_partitions": 3, "replication_factor": 1, "assignments": [], "configs": []}]})
    assert created["topics"][0]["error_code"] == ErrorCode.NONE
    for version in (0, 1):
        answer = connection.call(ApiKey.DESCRIBE_SHARE_GROUP_OFFSETS, version, {"groups": [
            {"group_id": "never-initialized", "topics": [{"topic_name": "three", "partitions": [3, 7]}]}]})
        group = answer["groups"][0]
        assert group["error_code"] == ErrorCode.NONE
        described = [(p["partition_index"], p["error_code"], p["start_offset"], p.get("lag")) for p in group["topics"][0]["partitions"]]
        no_lag = -1 if version >= 1 else None
        assert described == [(3, ErrorCode.NONE, -1, no_lag), (7, ErrorCode.NONE, -1, no_lag)]
