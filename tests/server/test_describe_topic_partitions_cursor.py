"""DescribeTopicPartitions' cursor and unknown topics as Kafka 4.4's
DescribeTopicPartitionsRequestHandler and KRaftMetadataCache.describeTopicResponse answer them
(kafka-topics.sh --describe pages with it). Expected answers are the reference broker's
(compat.kafka.ReferenceKafka). Raw requests to a real broker."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

# Every topic operation Kafka supports, as it answers them without an authorizer.
ALL_TOPIC_OPERATIONS = 3576


@pytest.fixture(scope="module")
def connection() -> Iterator[_Connection]:
    with running_broker() as broker:
        broker.create_topic("paged-a", partitions=3)
        conn = _Connection(broker.bootstrap_servers)
        yield conn
        conn.close()


def _describe(connection: _Connection, names: list[str], limit: int = 2000, cursor: dict[str, Any] | None = None) -> dict[str, Any]:
    return connection.call(ApiKey.DESCRIBE_TOPIC_PARTITIONS, 0, {
        "topics": [{"name": name} for name in names], "response_partition_limit": limit, "cursor": cursor})


@pytest.mark.parametrize("cursor", [{"topic_name": "paged-a", "partition_index": -1}, {"topic_name": "unlisted", "partition_index": 0}])
def test_a_bad_cursor_answers_every_topic_invalid_in_request_order(connection: _Connection, cursor: dict[str, Any]) -> None:
    """InvalidRequestException, answered by getErrorResponse: each topic as the request lists it."""
    answer = _describe(connection, ["paged-a", "nope", "paged-a"], cursor=cursor)
    assert answer["next_cursor"] is None
    assert [(t["name"], t["error_code"], t["partitions"]) for t in answer["topics"]] == [
        ("paged-a", ErrorCode.INVALID_REQUEST, []), ("nope", ErrorCode.INVALID_REQUEST, []), ("paged-a", ErrorCode.INVALID_REQUEST, [])]


def test_a_negative_cursor_partition_over_every_topic_is_invalid(connection: _Connection) -> None:
    answer = _describe(connection, [], cursor={"topic_name": "paged-a", "partition_index": -2})
    assert answer == {"throttle_time_ms": 0, "topics": [], "next_cursor": None}


def test_unknown_and_invalid_names_are_told_apart_with_their_operations(connection: _Connection) -> None:
    """Topic.validate: INVALID_TOPIC for a name no topic could have; the operations are filled
    for every topic answered, known or not."""
    answer = _describe(connection, ["bad name!", "nope", "x" * 300])
    assert sorted((t["name"][:10], t["error_code"], t["topic_authorized_operations"]) for t in answer["topics"]) == [
        ("bad name!", ErrorCode.INVALID_TOPIC, ALL_TOPIC_OPERATIONS),
        ("nope", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ALL_TOPIC_OPERATIONS),
        ("x" * 10, ErrorCode.INVALID_TOPIC, ALL_TOPIC_OPERATIONS),
    ]


def test_a_full_page_ends_before_an_unknown_topic(connection: _Connection) -> None:
    """The limit is checked before each topic, known or not: the cursor names the unknown one."""
    answer = _describe(connection, ["paged-a", "zz-unknown"], limit=3)
    assert [t["name"] for t in answer["topics"]] == ["paged-a"]
    assert answer["next_cursor"] == {"topic_name": "zz-unknown", "partition_index": 0}
    answer = _describe(connection, ["paged-a", "zz-unknown"], limit=3, cursor=answer["next_cursor"])
    assert [(t["name"], t["error_code"]) for t in answer["topics"]] == [("zz-unknown", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)]
    assert answer["next_cursor"] is None
