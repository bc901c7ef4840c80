"""KIP-1331 streams topology descriptions (StreamsGroupTopologyDescriptionUpdate, API 93), over
raw requests to a real broker, as Kafka 4.4 answers them: without a description plugin (its
default) pushes are refused and no heartbeat asks for one; with its InMemoryTopologyDescriptionPlugin
a member is asked once, its push is checked and converted, and StreamsGroupDescribe shows it.
Each sequence was run against the reference Kafka 4.4 with the same settings and answered alike."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compat.differential import _Connection
from ottla.server.groups.streams.descriptions import DescriptionStore, InvalidDescription, convert
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

PLUGIN = {"group.streams.topology.description.plugin.class": "org.apache.kafka.server.streams.InMemoryTopologyDescriptionPlugin"}
TOPOLOGY = {"epoch": 1, "subtopologies": [{"subtopology_id": "0", "source_topics": ["words"], "source_topic_regex": [], "repartition_sink_topics": [],
                                          "copartition_groups": [], "state_changelog_topics": [], "repartition_source_topics": []}]}
NOT_STORED, AVAILABLE = 1, 3


def _node(name: str, node_type: int, sources: list[str] | None = None, sink: str | None = None, stores: list[str] | None = None,
          successors: list[str] | None = None) -> dict[str, Any]:
    return {"name": name, "node_type": node_type, "source_topics": sources or [], "sink_topic": sink, "stores": stores or [], "successors": successors or []}


# What Kafka Streams sends: here with fields a node's type does not define, and repeats.
DESCRIPTION = {
    "subtopologies": [{"subtopology_id": "0", "nodes": [
        _node("KSTREAM-SOURCE-0000000000", 1, ["words", "words"], sink="ignored", stores=["ignored"], successors=["P", "P"]),
        _node("P", 2, ["ignored"], stores=["counts", "counts", "totals"], successors=["K"]),
        _node("K", 3, sink="counted"),
    ]}],
    "global_stores": [{"source": _node("GS", 1, ["global"], successors=["GP"]), "processor": _node("GP", 2, stores=["global-store"])}],
}
# As the reference Kafka 4.4 describes it (StreamsGroupTopologyDescriptionConverter).
DESCRIBED = {
    "subtopologies": [{"subtopology_id": "0", "nodes": [
        _node("KSTREAM-SOURCE-0000000000", 1, ["words"], successors=["P"]),
        _node("P", 2, stores=["counts", "totals"], successors=["K"]),
        _node("K", 3, sink="counted"),
    ]}],
    "global_stores": [{"source": _node("GS", 1, ["global"], successors=["GP"]), "processor": _node("GP", 2, stores=["global-store"])}],
}


@pytest.fixture
def plugin_broker() -> Iterator[_Connection]:
    with running_broker(group_streams_initial_rebalance_delay_ms=0, **PLUGIN) as broker:
        connection = _Connection(broker.bootstrap_servers)
        yield connection
        connection.close()


def _join(connection: _Connection, member_id: str = "m", topology: dict[str, Any] = TOPOLOGY) -> dict[str, Any]:
    return connection.call(ApiKey.STREAMS_GROUP_HEARTBEAT, 1, {
        "group_id": "app", "member_id": member_id, "member_epoch": 0, "endpoint_information_epoch": 0, "instance_id": None, "rack_id": None,
        "rebalance_timeout_ms": 30_000, "topology": topology, "active_tasks": [], "standby_tasks": [], "warmup_tasks": [],
        "process_id": "p", "user_endpoint": None, "client_tags": [], "task_offsets": [], "task_end_offsets": [], "shutdown_application": False})


def _heartbeat(connection: _Connection, member_epoch: int, member_id: str = "m") -> dict[str, Any]:
    return connection.call(ApiKey.STREAMS_GROUP_HEARTBEAT, 1, {
        "group_id": "app", "member_id": member_id, "member_epoch": member_epoch, "endpoint_information_epoch": 0, "instance_id": None,
        "rack_id": None, "rebalance_timeout_ms": -1, "topology": None, "active_tasks": None, "standby_tasks": None, "warmup_tasks": None,
        "process_id": None, "user_endpoint": None, "client_tags": None, "task_offsets": None, "task_end_offsets": None, "shutdown_application": False})


def _push(connection: _Connection, member_id: str = "m", epoch: int = 1, description: dict[str, Any] = DESCRIPTION, group_id: str = "app") -> tuple[int, str | None]:
    answer = connection.call(ApiKey.STREAMS_GROUP_TOPOLOGY_DESCRIPTION_UPDATE, 0, {
        "group_id": group_id, "member_id": member_id, "topology_epoch": epoch, "topology_description": description})
    return answer["error_code"], answer["error_message"]


def _described(connection: _Connection) -> tuple[int, Any]:
    group = connection.call(ApiKey.STREAMS_GROUP_DESCRIBE, 1, {
        "group_ids": ["app"], "include_authorized_operations": False, "include_topology_description": True})["groups"][0]
    assert group["error_code"] == ErrorCode.NONE
    return group["topology_description_status"], group["topology_description"]


def test_without_a_plugin_pushes_are_refused_and_no_member_is_asked() -> None:
    """Kafka 4.4's default names no plugin: the API is advertised, a push is UNSUPPORTED_VERSION
    (throwIfStreamsGroupTopologyDescriptionUpdateInvalid, before any other check) and a
    description is never asked for nor stored."""
    with running_broker(group_streams_initial_rebalance_delay_ms=0) as broker:
        connection = _Connection(broker.bootstrap_servers)
        versions = connection.call(ApiKey.API_VERSIONS, 3, {"client_software_name": "t", "client_software_version": "1"})["api_keys"]
        assert [(v["min_version"], v["max_version"]) for v in versions if v["api_key"] == ApiKey.STREAMS_GROUP_TOPOLOGY_DESCRIPTION_UPDATE] == [(0, 0)]
        joined = _join(connection)
        assert (joined["error_code"], joined["topology_description_required"]) == (ErrorCode.NONE, False)
        refused = (ErrorCode.UNSUPPORTED_VERSION, "The broker has no streams group topology description plugin configured.")
        assert _push(connection) == refused
        assert _push(connection, member_id="") == refused
        assert _described(connection) == (NOT_STORED, None)
        connection.close()


def test_with_the_in_memory_plugin_a_member_is_asked_once_and_its_push_is_described(plugin_broker: _Connection) -> None:
    """maybeSetTopologyDescriptionRequired asks at the group's topology epoch, then not again
    within the backoff; a push stores the description, converted, which StreamsGroupDescribe
    answers AVAILABLE; the stored epoch then matches and no heartbeat asks."""
    joined = _join(plugin_broker)
    assert (joined["error_code"], joined["topology_description_required"]) == (ErrorCode.NONE, True)
    assert _heartbeat(plugin_broker, joined["member_epoch"])["topology_description_required"] is False
    assert _described(plugin_broker) == (NOT_STORED, None)
    assert _push(plugin_broker) == (ErrorCode.NONE, None)
    assert _described(plugin_broker) == (AVAILABLE, DESCRIBED)
    assert _heartbeat(plugin_broker, joined["member_epoch"])["topology_description_required"] is False
    # A v0 describe, or one that does not ask, carries no description.
    group = plugin_broker.call(ApiKey.STREAMS_GROUP_DESCRIBE, 1, {
        "group_ids": ["app"], "include_authorized_operations": False, "include_topology_description": False})["groups"][0]
    assert (group["topology_description_status"], group["topology_description"]) == (0, None)


def test_a_push_must_come_from_a_member_at_the_topology_epoch(plugin_broker: _Connection) -> None:
    """GroupMetadataManager.validateStreamsGroupTopologyDescriptionUpdate and the converter."""
    assert _push(plugin_broker, group_id="other") == (ErrorCode.GROUP_ID_NOT_FOUND, "Group other not found.")
    assert _join(plugin_broker)["error_code"] == ErrorCode.NONE
    assert _push(plugin_broker, member_id="") == (ErrorCode.INVALID_REQUEST, "MemberId can't be empty.")
    assert _push(plugin_broker, member_id="stranger") == (ErrorCode.UNKNOWN_MEMBER_ID, "Member stranger is not a member of group app.")
    assert _push(plugin_broker, epoch=2) == (ErrorCode.INVALID_REQUEST, "Topology epoch 2 does not match the group's current topology epoch 1.")
    unknown = {"subtopologies": [{"subtopology_id": "0", "nodes": [_node("x", 7)]}], "global_stores": []}
    assert _push(plugin_broker, description=unknown) == (ErrorCode.INVALID_REQUEST, "Unknown topology node type: 7")
    two_processors = {"subtopologies": [], "global_stores": [{"source": _node("a", 2), "processor": _node("b", 2)}]}
    assert _push(plugin_broker, description=two_processors) == (ErrorCode.INVALID_REQUEST, "Global store must be composed of a source and a processor node.")
    assert _described(plugin_broker) == (NOT_STORED, None)


def test_the_stored_epoch_outlives_a_restart_and_the_description_does_not(tmp_path: Path) -> None:
    """The stored epoch is in the group's metadata record; the in-memory plugin's description
    is gone after a restart: described NOT_STORED, and a member joining at that epoch is not
    asked (the reference Kafka 4.4 answers the same)."""
    settings = {"data_dir": str(tmp_path), "group_streams_initial_rebalance_delay_ms": 0, **PLUGIN}
    with running_broker(**settings) as broker:
        connection = _Connection(broker.bootstrap_servers)
        assert _join(connection)["topology_description_required"] is True
        assert _push(connection) == (ErrorCode.NONE, None)
        connection.close()
    with running_broker(**settings) as broker:
        connection = _Connection(broker.bootstrap_servers)
        assert _described(connection) == (NOT_STORED, None)
        joined = _join(connection, member_id="m2")
        assert (joined["error_code"], joined["topology_description_required"]) == (ErrorCode.NONE, False)
        connection.close()


def test_the_converter_and_the_backoff_without_sockets() -> None:
    """fromRequest keeps what a node's type defines, without repeats; the backoff asks once
    per epoch until it passes, at once for another epoch, and ends when that epoch is stored."""
    assert convert(DESCRIPTION) == DESCRIBED
    with pytest.raises(InvalidDescription):
        convert({"subtopologies": [], "global_stores": [{"source": _node("a", 1), "processor": _node("b", 3)}]})
    store = DescriptionStore()
    assert store.arm_if_not_active("app", 1, now_ms=0) is True
    assert store.arm_if_not_active("app", 1, now_ms=23_999) is False  # 30 s less 20 % jitter at most
    assert store.arm_if_not_active("app", 2, now_ms=1) is True
    assert store.arm_if_not_active("app", 2, now_ms=36_001) is True  # 30 s plus 20 % at most
    store.clear_backoff("app", 2)
    assert store.arm_if_not_active("app", 2, now_ms=36_002) is True
