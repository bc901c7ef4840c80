"""The tasks a streams member reports are checked as Kafka 4.4's
GroupMetadataManager.throwIfRequestContainsInvalidTasks checks them: ActiveTasks, then
StandbyTasks, then WarmupTasks, each entry in request order, an entry without partitions
included (its subtopology must still exist), and its partitions in the order sent; the
first that fails names the refusal (asked of the reference broker alike)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from compat.differential import _Connection
from compat.harness import wait_for
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode


def beat(connection: _Connection, group: str, member_epoch: int, active: Any, standby: Any, warmup: Any) -> dict[str, Any]:
    joining = member_epoch == 0
    return connection.call(ApiKey.STREAMS_GROUP_HEARTBEAT, 0, {
        "group_id": group, "member_id": "m", "member_epoch": member_epoch, "endpoint_information_epoch": 0, "instance_id": None,
        "rack_id": None, "rebalance_timeout_ms": 30_000 if joining else -1,
        "topology": {"epoch": 0, "subtopologies": [{
            "subtopology_id": "0", "source_topics": ["tasks-in"], "source_topic_regex": [], "state_changelog_topics": [],
            "repartition_sink_topics": [], "repartition_source_topics": [], "copartition_groups": []}]} if joining else None,
        "active_tasks": active, "standby_tasks": standby, "warmup_tasks": warmup, "process_id": "m", "user_endpoint": None,
        "client_tags": [] if joining else None, "task_offsets": None, "task_end_offsets": None, "shutdown_application": False})


def refusal_of(bootstrap: str, group: str, active: Any, standby: Any, warmup: Any) -> tuple[int, str | None]:
    """A member joined to `group` (its topology over `tasks-in`, two partitions, made ready)
    heartbeats reporting these tasks: the error code and message."""
    connection = _Connection(bootstrap)
    try:
        joined = beat(connection, group, 0, [], [], [])
        epoch, tasks = joined["member_epoch"], joined["active_tasks"]

        def assigned() -> bool:
            nonlocal epoch, tasks
            if not tasks:
                answer = beat(connection, group, epoch, None, None, None)
                epoch, tasks = answer["member_epoch"], answer["active_tasks"]
            return bool(tasks)

        assert wait_for(assigned, timeout=30)
        answer = beat(connection, group, epoch, active, standby, warmup)
        return answer["error_code"], answer["error_message"]
    finally:
        connection.close()


@pytest.fixture(scope="module")
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None, group_streams_initial_rebalance_delay_ms=0) as running:
        running.create_topic("tasks-in", partitions=2)
        yield running


def test_an_entry_without_partitions_is_checked_first_in_request_order(broker: ThreadedBroker) -> None:
    assert refusal_of(broker.bootstrap_servers, "order-empty", [{"subtopology_id": "nope", "partitions": []}],
                      [{"subtopology_id": "", "partitions": [1]}], []) == (
        ErrorCode.INVALID_REQUEST, "Subtopology nope does not exist in the topology.")


def test_partitions_are_checked_in_the_order_sent(broker: ThreadedBroker) -> None:
    assert refusal_of(broker.bootstrap_servers, "order-partitions", [{"subtopology_id": "0", "partitions": [5, -1]}], [], []) == (
        ErrorCode.INVALID_REQUEST, "Task 5 for subtopology 0 is invalid. Number of tasks for this subtopology: 2")
