"""StreamsGroupHeartbeat requests Kafka refuses before its coordinator looks at them, over raw
requests to a real broker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode


@pytest.fixture
def connection() -> Iterator[_Connection]:
    with running_broker(data_dir=None, group_streams_initial_rebalance_delay_ms=0) as broker:
        yield _Connection(broker.bootstrap_servers)


def test_a_streams_heartbeat_naming_some_task_lists_and_not_others_is_invalid(connection: _Connection) -> None:
    """throwIfStreamsGroupHeartbeatRequestIsInvalid: a null list read as empty would release
    tasks the member still holds."""
    answer = connection.call(ApiKey.STREAMS_GROUP_HEARTBEAT, 0, {
        "group_id": "app", "member_id": "m", "member_epoch": 3, "endpoint_information_epoch": 0, "instance_id": None, "rack_id": None,
        "rebalance_timeout_ms": -1, "topology": None, "active_tasks": [], "standby_tasks": None, "warmup_tasks": [],
        "process_id": "p", "user_endpoint": None, "client_tags": None, "task_offsets": None, "task_end_offsets": None, "shutdown_application": False})
    assert (answer["error_code"], answer["error_message"]) == (ErrorCode.INVALID_REQUEST, "If one task-type is non-null, all must be non-null.")


def _topic_info(name: str, partitions: int = 0) -> dict[str, object]:
    return {"name": name, "partitions": partitions, "replication_factor": 0, "topic_configs": []}


def test_the_stored_topology_is_described_while_not_ready_and_after_a_restart(tmp_path: Path) -> None:
    """StreamsGroup.asDescribedGroup describes the topology as stored when it is not configured
    (a source topic missing here; or no heartbeat yet since a restart): subtopologies by id,
    topics by name, internal topics' counts as given. It answered null subtopologies."""
    topology = {"epoch": 1, "subtopologies": [
        {"subtopology_id": "1", "source_topics": [], "source_topic_regex": [], "repartition_sink_topics": [], "copartition_groups": [],
         "state_changelog_topics": [_topic_info("app-z-changelog"), _topic_info("app-a-changelog")],
         "repartition_source_topics": [_topic_info("app-repartition", 3)]},
        {"subtopology_id": "0", "source_topics": ["words-b", "words-a"], "source_topic_regex": [], "repartition_sink_topics": ["app-repartition"],
         "copartition_groups": [], "state_changelog_topics": [], "repartition_source_topics": []},
    ]}
    expected = {"epoch": 1, "subtopologies": [
        {"subtopology_id": "0", "source_topics": ["words-a", "words-b"], "repartition_sink_topics": ["app-repartition"],
         "state_changelog_topics": [], "repartition_source_topics": []},
        {"subtopology_id": "1", "source_topics": [], "repartition_sink_topics": [],
         "state_changelog_topics": [_topic_info("app-a-changelog"), _topic_info("app-z-changelog")],
         "repartition_source_topics": [_topic_info("app-repartition", 3)]},
    ]}

    def described(connection: _Connection) -> object:
        answer = connection.call(ApiKey.STREAMS_GROUP_DESCRIBE, 0, {"group_ids": ["app"], "include_authorized_operations": False})
        return answer["groups"][0]["topology"]

    with running_broker(data_dir=str(tmp_path), group_streams_initial_rebalance_delay_ms=0) as broker:
        connection = _Connection(broker.bootstrap_servers)
        joined = connection.call(ApiKey.STREAMS_GROUP_HEARTBEAT, 0, {
            "group_id": "app", "member_id": "m", "member_epoch": 0, "endpoint_information_epoch": 0, "instance_id": None, "rack_id": None,
            "rebalance_timeout_ms": 30_000, "topology": topology, "active_tasks": [], "standby_tasks": [], "warmup_tasks": [],
            "process_id": "p", "user_endpoint": None, "client_tags": [], "task_offsets": [], "task_end_offsets": [], "shutdown_application": False})
        assert joined["error_code"] == ErrorCode.NONE
        assert described(connection) == expected  # words-a and words-b do not exist: not ready
        connection.close()
    with running_broker(data_dir=str(tmp_path), group_streams_initial_rebalance_delay_ms=0) as broker:
        connection = _Connection(broker.bootstrap_servers)
        assert described(connection) == expected
        connection.close()
