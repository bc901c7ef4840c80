"""Admin requests at their edges, answered as Kafka answers them, over raw requests to a real
broker: ListOffsets checks the leader epoch a client names on a single broker too."""

from __future__ import annotations

from collections.abc import Iterator

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


@pytest.mark.parametrize("epoch, error", [(-1, ErrorCode.NONE), (0, ErrorCode.NONE), (5, ErrorCode.UNKNOWN_LEADER_EPOCH)])
def test_list_offsets_checks_the_leader_epoch_a_client_names(connection: _Connection, epoch: int, error: ErrorCode) -> None:
    answer = connection.call(ApiKey.LIST_OFFSETS, 9, {"replica_id": -1, "isolation_level": 0, "topics": [
        {"name": "paged", "partitions": [{"partition_index": 0, "current_leader_epoch": epoch, "timestamp": -1}]}]})
    assert answer["topics"][0]["partitions"][0]["error_code"] == error
