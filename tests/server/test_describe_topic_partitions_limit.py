"""DescribeTopicPartitions with a ResponsePartitionLimit of 0 or less answers one partition per
page, as Kafka 4.4's DescribeTopicPartitionsRequestHandler takes max(min(broker limit, asked), 1):
paging on the cursor then ends. Raw requests to a real broker."""

from __future__ import annotations

import pytest

from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode


@pytest.mark.parametrize("limit", [0, -5])
def test_a_limit_below_one_pages_one_partition_at_a_time(limit: int) -> None:
    with running_broker() as broker:
        broker.create_topic("paged", partitions=2)
        connection = _Connection(broker.bootstrap_servers)
        cursor = None
        pages = []
        while len(pages) < 4:
            answer = connection.call(ApiKey.DESCRIBE_TOPIC_PARTITIONS, 0,
                                     {"topics": [{"name": "paged"}], "response_partition_limit": limit, "cursor": cursor})
            assert all(topic["error_code"] == ErrorCode.NONE for topic in answer["topics"])
            pages.append([p["partition_index"] for topic in answer["topics"] for p in topic["partitions"]])
            cursor = answer["next_cursor"]
            if cursor is None:
                break
        assert pages == [[0], [1]]
