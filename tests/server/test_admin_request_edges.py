"""Admin requests at their edges, answered as Kafka answers them, over raw requests to a real
broker: DescribeTopicPartitions pages at least one partition at a time and refuses a negative
cursor, and ListOffsets checks the leader epoch a client names on a single broker too."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode


@pytest.fixture
def connection() -> Iterator[_Connection]:
    with running_broker(data_dir=None) as broker:
        broker.create_topic("paged", partitions=3)
        yield _Connection(broker.bootstrap_servers)


def _describe(connection: _Connection, limit: int, cursor: dict[str, Any] | None) -> dict[str, Any]:
    answer: dict[str, Any] = connection.call(ApiKey.DESCRIBE_TOPIC_PARTITIONS, 0, {
        "topics": [{"name": "paged"}], "response_partition_limit": limit, "cursor": cursor,
    })
    return answer


@pytest.mark.parametrize("limit", [0, -5, 1])
def test_a_client_following_the_cursor_gets_every_partition_once(connection: _Connection, limit: int) -> None:
    seen: list[int] = []
    cursor = None
    for _ in range(10):
        page = _describe(connection, limit, cursor)
        seen += [p["partition_index"] for topic in page["topics"] for p in topic["partitions"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [0, 1, 2]


def test_a_negative_cursor_partition_is_an_invalid_request(connection: _Connection) -> None:
    page = _describe(connection, 10, {"topic_name": "paged", "partition_index": -1})
    assert [(topic["name"], topic["error_code"]) for topic in page["topics"]] == [("paged", ErrorCode.INVALID_REQUEST)]


@pytest.mark.parametrize("epoch, error", [(-1, ErrorCode.NONE), (0, ErrorCode.NONE), (5, ErrorCode.UNKNOWN_LEADER_EPOCH)])
def test_list_offsets_checks_the_leader_epoch_a_client_names(connection: _Connection, epoch: int, error: ErrorCode) -> None:
    answer = connection.call(ApiKey.LIST_OFFSETS, 9, {"replica_id": -1, "isolation_level": 0, "topics": [
        {"name": "paged", "partitions": [{"partition_index": 0, "current_leader_epoch": epoch, "timestamp": -1}]}]})
    assert answer["topics"][0]["partitions"][0]["error_code"] == error
