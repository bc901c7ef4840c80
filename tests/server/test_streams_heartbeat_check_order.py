"""StreamsGroupHeartbeat is checked as Kafka 4.4's GroupCoordinatorService.streamsGroupHeartbeat
checks it before any group is looked at: unsupported features first (a source topic regex,
whatever the epoch), then throwIfStreamsGroupHeartbeatRequestIsInvalid in its order: blank
ids, the join's or leave's fields, the task lists' nullness, a topology outside a join. Raw
requests to a real broker; every answer here is the reference Kafka 4.4's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

REGEX_TOPOLOGY = {"epoch": 1, "subtopologies": [
    {"subtopology_id": "0", "source_topics": [], "source_topic_regex": ["in-.*"], "repartition_sink_topics": [],
     "copartition_groups": [], "state_changelog_topics": [], "repartition_source_topics": []}]}
TOPOLOGY = {"epoch": 1, "subtopologies": [
    {"subtopology_id": "0", "source_topics": ["in"], "source_topic_regex": [], "repartition_sink_topics": [],
     "copartition_groups": [], "state_changelog_topics": [], "repartition_source_topics": []}]}


@pytest.fixture
def connection() -> Iterator[_Connection]:
    with running_broker(data_dir=None, group_streams_initial_rebalance_delay_ms=0) as broker:
        connection = _Connection(broker.bootstrap_servers)
        yield connection
        connection.close()


def beat(connection: _Connection, member_id: str, member_epoch: int, **fields: Any) -> tuple[int, str | None]:
    body = {"group_id": "app", "member_id": member_id, "member_epoch": member_epoch, "endpoint_information_epoch": 0,
            "instance_id": None, "rack_id": None, "rebalance_timeout_ms": -1, "topology": None, "active_tasks": None,
            "standby_tasks": None, "warmup_tasks": None, "process_id": "p", "user_endpoint": None, "client_tags": None,
            "task_offsets": None, "task_end_offsets": None, "shutdown_application": False} | fields
    answer = connection.call(ApiKey.STREAMS_GROUP_HEARTBEAT, 0, body)
    return answer["error_code"], answer["error_message"]


def invalid(message: str) -> tuple[int, str]:
    return ErrorCode.INVALID_REQUEST, message


JOIN = {"rebalance_timeout_ms": 30_000}
# (member id, member epoch, other fields, answer), each also asked of the reference broker.
CASES: list[tuple[str, int, dict[str, Any], tuple[int, str | None]]] = [
    ("", 5, {"topology": REGEX_TOPOLOGY}, invalid("Regular expressions for source topics are not supported yet.")),
    ("", 5, {"active_tasks": []}, invalid("MemberId can't be empty.")),
    (" ", 5, {}, invalid("MemberId can't be empty.")),
    ("m", 5, {"group_id": "\t"}, invalid("GroupId can't be empty.")),
    ("m", 5, {"instance_id": " ", "active_tasks": []}, invalid("InstanceId can't be empty.")),
    ("m", 5, {"rack_id": " "}, invalid("RackId can't be empty.")),
    ("m", 0, {"active_tasks": []}, invalid("RebalanceTimeoutMs must be provided in first request.")),
    # Utils.throwIfNotEmptyCollection refuses a null list as well as one with entries.
    ("m", 0, JOIN | {"active_tasks": [{"subtopology_id": "0", "partitions": []}], "standby_tasks": [], "warmup_tasks": [],
                     "topology": TOPOLOGY}, invalid("ActiveTasks must be empty when (re-)joining.")),
    ("m", 0, JOIN | {"standby_tasks": []}, invalid("ActiveTasks must be empty when (re-)joining.")),
    ("m", 0, JOIN | {"active_tasks": [], "standby_tasks": [], "warmup_tasks": []}, invalid("Topology must be non-null when (re-)joining.")),
    ("m", -3, {"warmup_tasks": []}, invalid("MemberEpoch is -3, but must be greater than or equal to -2.")),
    ("m", -2, {"warmup_tasks": []}, invalid("InstanceId can't be null.")),
    ("m", 3, {"warmup_tasks": [], "topology": TOPOLOGY}, invalid("If one task-type is non-null, all must be non-null.")),
    ("m", 3, {"topology": TOPOLOGY}, invalid("Topology can only be provided when (re-)joining.")),
    ("m", 3, {}, (ErrorCode.GROUP_ID_NOT_FOUND, "Streams group app not found.")),
]


@pytest.mark.parametrize(("member_id", "member_epoch", "fields", "answer"), CASES)
def test_a_streams_heartbeat_is_checked_in_the_coordinators_order(
        connection: _Connection, member_id: str, member_epoch: int, fields: dict[str, Any], answer: tuple[int, str | None]) -> None:
    assert beat(connection, member_id, member_epoch, **fields) == answer
