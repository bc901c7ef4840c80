"""CreateTopics with manual assignments on one node, checked in Kafka 4.4's order
(ReplicationControlManager.createTopic): each assignment as listed, its partition not named
before and then its replica list, before "partitions should be a consecutive 0-based integer
sequence"; a reference Kafka answers the first case so."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode


@pytest.fixture(scope="module")
def admin() -> Iterator[_Connection]:
    with running_broker() as handle:
        connection = _Connection(handle.bootstrap_servers)
        yield connection
        connection.close()


@pytest.mark.parametrize(("assignments", "message"), [
    ([(100, []), (0, [1])], "The manual partition assignment includes an empty replica list."),
    ([(7, [1]), (7, []), (0, [1])], "Found multiple manual partition assignments for partition 7"),
    ([(3, [1]), (2, [1]), (2, [1])], "Found multiple manual partition assignments for partition 2"),
    ([(1, [1]), (2, [1])], "partitions should be a consecutive 0-based integer sequence"),
])
def test_each_assignment_is_checked_before_the_sequence(admin, assignments, message):
    answer = admin.call(ApiKey.CREATE_TOPICS, 7, {"timeout_ms": 5000, "validate_only": True, "topics": [
        {"name": "assigned", "num_partitions": -1, "replication_factor": -1, "configs": [],
         "assignments": [{"partition_index": index, "broker_ids": brokers} for index, brokers in assignments]}]})
    assert [(t["error_code"], t["error_message"]) for t in answer["topics"]] == [(ErrorCode.INVALID_REPLICATION_ASSIGNMENT, message)]
