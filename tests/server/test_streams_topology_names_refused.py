"""StreamsGroupHeartbeat topologies naming Kafka's internal topics or illegal topic names:
KafkaApis.handleStreamsGroupHeartbeat refuses them STREAMS_INVALID_TOPOLOGY before the
coordinator looks at the request, so ahead of an empty group or member id. Raw requests to a
real broker; the answers are the reference Kafka 4.4's."""

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
    with running_broker(data_dir=None, group_streams_initial_rebalance_delay_ms=0) as broker:
        connection = _Connection(broker.bootstrap_servers)
        yield connection
        connection.close()


def _heartbeat(connection: _Connection, group_id: str, member_id: str, member_epoch: int, subtopology: dict[str, Any]) -> Any:
    def info(name: str) -> dict[str, Any]:
        return {"name": name, "partitions": 0, "replication_factor": 0, "topic_configs": []}

    topology = {"epoch": 1, "subtopologies": [{
        "subtopology_id": "0", "source_topics": subtopology.get("source", []), "source_topic_regex": [],
        "repartition_sink_topics": subtopology.get("sink", []), "copartition_groups": [],
        "state_changelog_topics": [info(n) for n in subtopology.get("changelog", [])],
        "repartition_source_topics": [info(n) for n in subtopology.get("repartition", [])]}]}
    answer = connection.call(ApiKey.STREAMS_GROUP_HEARTBEAT, 0, {
        "group_id": group_id, "member_id": member_id, "member_epoch": member_epoch, "endpoint_information_epoch": 0,
        "instance_id": None, "rack_id": None, "rebalance_timeout_ms": 30_000, "topology": topology, "active_tasks": [],
        "standby_tasks": [], "warmup_tasks": [], "process_id": "p", "user_endpoint": None, "client_tags": [], "task_offsets": [],
        "task_end_offsets": [], "shutdown_application": False})
    return answer["error_code"], answer["error_message"]


def test_internal_topics_are_refused_before_an_empty_group_id(connection: _Connection) -> None:
    """Internal topics first, named in the topology's order (sources, sinks, repartition, changelogs)."""
    assert _heartbeat(connection, "", "m", 0, {"source": ["bad/name", "__consumer_offsets", "ok"], "changelog": ["__transaction_state"]}) == (
        ErrorCode.STREAMS_INVALID_TOPOLOGY,
        "Use of Kafka internal topics __consumer_offsets,__transaction_state in a Kafka Streams topology is prohibited.")


def test_illegal_topic_names_are_refused_before_an_empty_member_id(connection: _Connection) -> None:
    """Each illegal name once, in the topology's order."""
    assert _heartbeat(connection, "g", "", 0, {"source": ["x y", "x y"], "sink": ["x y"], "repartition": ["..", "."]}) == (
        ErrorCode.STREAMS_INVALID_TOPOLOGY, "Topic names x y,..,. are not valid topic names.")


def test_topology_names_are_refused_before_the_epoch_is_checked(connection: _Connection) -> None:
    """A topology on a member epoch that may not carry one is still refused for its names."""
    assert _heartbeat(connection, "g", "m", -5, {"source": ["__share_group_state"]}) == (
        ErrorCode.STREAMS_INVALID_TOPOLOGY, "Use of Kafka internal topics __share_group_state in a Kafka Streams topology is prohibited.")
    assert _heartbeat(connection, "g", "m", 3, {"source": ["."]}) == (
        ErrorCode.STREAMS_INVALID_TOPOLOGY, "Topic names . are not valid topic names.")


def test_a_legal_topology_leaves_the_empty_group_id_to_the_coordinator(connection: _Connection) -> None:
    assert _heartbeat(connection, "", "m", 0, {"source": ["ok"]}) == (ErrorCode.INVALID_REQUEST, "GroupId can't be empty.")
