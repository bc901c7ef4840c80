"""DescribeTopicPartitions with a cursor near 2**31, as Kafka 4.4's
KRaftMetadataCache.partitionMetadataForDescribeTopicResponse answers it: the page ends at
min(partition count, cursor + limit) computed in int32, so the sum wraps negative, no partition
is answered and the wrapped end comes back as the next cursor, ending the page. Expected answers
are the reference broker's (compat.kafka.ReferenceKafka). Raw requests to a real broker."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

INT32_MAX = 2**31 - 1


@pytest.fixture(scope="module")
def connection() -> Iterator[_Connection]:
    with running_broker(data_dir=None) as broker:
        broker.create_topic("wrap-a", partitions=3)
        broker.create_topic("wrap-b", partitions=1)
        conn = _Connection(broker.bootstrap_servers)
        yield conn
        conn.close()


def _describe(connection: _Connection, limit: int, partition_index: int) -> dict[str, Any]:
    return connection.call(ApiKey.DESCRIBE_TOPIC_PARTITIONS, 0, {
        "topics": [{"name": "wrap-a"}, {"name": "wrap-b"}], "response_partition_limit": limit,
        "cursor": {"topic_name": "wrap-a", "partition_index": partition_index}})


def test_a_cursor_whose_end_wraps_answers_the_wrapped_end_as_next_cursor(connection: _Connection) -> None:
    answer = _describe(connection, limit=2, partition_index=INT32_MAX)
    assert [(t["name"], t["error_code"], t["partitions"]) for t in answer["topics"]] == [("wrap-a", ErrorCode.NONE, [])]
    assert answer["next_cursor"] == {"topic_name": "wrap-a", "partition_index": -INT32_MAX}


def test_a_cursor_past_the_last_partition_without_wrapping_pages_on(connection: _Connection) -> None:
    answer = _describe(connection, limit=2, partition_index=INT32_MAX - 2)
    assert [(t["name"], len(t["partitions"])) for t in answer["topics"]] == [("wrap-a", 0), ("wrap-b", 1)]
    assert answer["next_cursor"] is None
