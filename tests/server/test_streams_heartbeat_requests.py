"""StreamsGroupHeartbeat requests Kafka refuses before its coordinator looks at them, over raw
requests to a real broker."""

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
        yield _Connection(broker.bootstrap_servers)


def test_a_streams_heartbeat_naming_some_task_lists_and_not_others_is_invalid(connection: _Connection) -> None:
    """throwIfStreamsGroupHeartbeatRequestIsInvalid: a null list read as empty would release
    tasks the member still holds."""
    answer = connection.call(ApiKey.STREAMS_GROUP_HEARTBEAT, 0, {
        "group_id": "app", "member_id": "m", "member_epoch": 3, "endpoint_information_epoch": 0, "instance_id": None, "rack_id": None,
        "rebalance_timeout_ms": -1, "topology": None, "active_tasks": [], "standby_tasks": None, "warmup_tasks": [],
        "process_id": "p", "user_endpoint": None, "client_tags": None, "task_offsets": None, "task_end_offsets": None, "shutdown_application": False})
    assert (answer["error_code"], answer["error_message"]) == (ErrorCode.INVALID_REQUEST, "If one task-type is non-null, all must be non-null.")
