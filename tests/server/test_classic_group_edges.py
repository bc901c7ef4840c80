"""Classic group APIs at their edges, against a live broker over raw requests, as Kafka 4.x's
group coordinator answers them: DescribeGroups during a rebalance, the member's client host,
the checks a JoinGroup passes before any group is looked up, a JoinGroup on an id a share or
streams group holds, ListGroups' state filter, and the record an id's first JoinGroup stores."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kafka.protocol.admin.groups import DescribeGroupsRequest, DescribeGroupsResponse, ListGroupsRequest, ListGroupsResponse
from kafka.protocol.consumer.group import JoinGroupRequest, JoinGroupResponse, SyncGroupRequest, SyncGroupResponse

from compat.differential import _Connection
from kafka_wire import RawClient, make
from ottla.server.groups import JoinRequest
from ottla.server.groups.group import JoinResult
from ottla.storage import Storage
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from tests.server.test_consumer_group_conversion import Harness, subscription

SESSION_MS = 10_000
TOPIC = "in"
STREAMS_TOPOLOGY = {"epoch": 1, "subtopologies": [{
    "subtopology_id": "0", "source_topics": [TOPIC], "source_topic_regex": [], "state_changelog_topics": [],
    "repartition_sink_topics": [], "repartition_source_topics": [], "copartition_groups": []}]}


@pytest.fixture(scope="module")
def broker() -> Iterator[Any]:
    with running_broker(data_dir=None, group_initial_rebalance_delay_ms=0, group_streams_initial_rebalance_delay_ms=0) as handle:
        handle.create_topic(TOPIC, 1)
        yield handle


def _group() -> str:
    return f"g-{uuid.uuid4().hex[:8]}"


def _join_request(group: str, member_id: str = "", session_ms: int = SESSION_MS) -> Any:
    return make(JoinGroupRequest, dict(
        group_id=group, session_timeout_ms=session_ms, rebalance_timeout_ms=SESSION_MS, member_id=member_id,
        group_instance_id=None, protocol_type="consumer", protocols=[dict(name="range", metadata=b"sub")], reason=None))


def _join(client: RawClient, group: str, member_id: str = "", session_ms: int = SESSION_MS) -> Any:
    return client.call(_join_request(group, member_id, session_ms), 9, JoinGroupResponse)


def _sole_member(client: RawClient, group: str, assignment: bytes) -> Any:
    """A Stable group of one member holding `assignment`."""
    joined = _join(client, group)
    assert joined.error_code == ErrorCode.MEMBER_ID_REQUIRED
    joined = _join(client, group, joined.member_id)
    assert joined.error_code == 0
    synced = client.call(make(SyncGroupRequest, dict(
        group_id=group, generation_id=joined.generation_id, member_id=joined.member_id, group_instance_id=None,
        protocol_type="consumer", protocol_name="range", assignments=[dict(member_id=joined.member_id, assignment=assignment)])),
        5, SyncGroupResponse)
    assert synced.error_code == 0
    return joined


def _describe(client: RawClient, group: str, version: int = 5) -> Any:
    return client.call(make(DescribeGroupsRequest, dict(groups=[group], include_authorized_operations=False)), version,
                       DescribeGroupsResponse).groups[0]


def _listed(client: RawClient, states: list[str] | None = None) -> list[tuple[str, str, str]]:
    response = client.call(make(ListGroupsRequest, dict(states_filter=states or [], types_filter=[])), 5, ListGroupsResponse)
    return [(g.group_id, g.group_type, g.group_state) for g in response.groups]


def _streams_heartbeat(connection: _Connection, group: str, member_id: str, epoch: int) -> dict[str, Any]:
    return connection.call(ApiKey.STREAMS_GROUP_HEARTBEAT, 0, {
        "group_id": group, "member_id": member_id, "member_epoch": epoch, "endpoint_information_epoch": 0, "instance_id": None,
        "rack_id": None, "rebalance_timeout_ms": 30000, "topology": STREAMS_TOPOLOGY if epoch == 0 else None,
        # A join names its (empty) task lists: Kafka refuses null ones then.
        "active_tasks": [] if epoch == 0 else None, "standby_tasks": [] if epoch == 0 else None, "warmup_tasks": [] if epoch == 0 else None, "process_id": "p", "user_endpoint": None, "client_tags": None,
        "task_offsets": None, "task_end_offsets": None, "shutdown_application": False})


def test_a_rebalancing_group_describes_each_members_current_assignment(broker: Any) -> None:
    """ClassicGroupMember.describeNoMetadata: outside Stable the metadata and the protocol stay
    empty, but each member's assignment is the one it holds."""
    group = _group()
    with RawClient(broker.bootstrap_servers) as first, RawClient(broker.bootstrap_servers) as second:
        member = _sole_member(first, group, b"held")
        second.send(_join_request(group), 3)  # JoinGroup v3 joins at once, and parks
        deadline = time.monotonic() + 10
        while (described := _describe(first, group)).group_state != "PreparingRebalance":
            assert time.monotonic() < deadline, described
            time.sleep(0.02)
        assert described.protocol_data == ""
        members = {m.member_id: (m.member_metadata, m.member_assignment) for m in described.members}
        assert members.pop(member.member_id) == (b"", b"held")
        assert list(members.values()) == [(b"", b"")]

        first.send(_join_request(group, member.member_id), 9)
        JoinGroupResponse[9].decode(first.receive_frame(), header=True)
        JoinGroupResponse[3].decode(second.receive_frame(), header=True)
        described = _describe(first, group)
        assert described.group_state == "CompletingRebalance"
        assert {m.member_id: m.member_assignment for m in described.members}[member.member_id] == b"held"


def test_a_classic_members_client_host_is_its_address_after_a_slash(broker: Any) -> None:
    """Kafka sets context.clientAddress().toString(): "/127.0.0.1", no host name."""
    group = _group()
    with RawClient(broker.bootstrap_servers) as client:
        _sole_member(client, group, b"")
        host = client.sock.getsockname()[0]
        assert [m.client_host for m in _describe(client, group).members] == [f"/{host}"]


def test_a_join_aimed_at_a_consumer_group_has_its_session_timeout_checked_first(broker: Any) -> None:
    """GroupCoordinatorService.joinGroup checks group.min/max.session.timeout.ms before it looks
    the group up, so a classic member of a KIP-848 group is held to them too."""
    group = _group()
    connection = _Connection(broker.bootstrap_servers)
    try:
        answer = connection.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 0, {
            "group_id": group, "member_id": str(uuid.uuid4()), "member_epoch": 0, "instance_id": None, "rack_id": None,
            "rebalance_timeout_ms": 30000, "subscribed_topic_names": [TOPIC], "server_assignor": None, "topic_partitions": []})
        assert answer["error_code"] == 0
    finally:
        connection.close()
    with RawClient(broker.bootstrap_servers) as client:
        for session_ms in (1000, 1_800_001):
            answer = _join(client, group, "m", session_ms=session_ms)
            assert (answer.error_code, answer.member_id) == (ErrorCode.INVALID_SESSION_TIMEOUT, "m")
        assert (group, "consumer", "Stable") in _listed(client)


def test_a_join_on_a_share_groups_id_is_an_inconsistent_protocol(broker: Any) -> None:
    """GroupMetadataManager.classicGroupJoin: the group exists and is no classic or consumer group."""
    group = _group()
    connection = _Connection(broker.bootstrap_servers)
    try:
        answer = connection.call(ApiKey.SHARE_GROUP_HEARTBEAT, 1, {
            "group_id": group, "member_id": str(uuid.uuid4()), "member_epoch": 0, "rack_id": None, "subscribed_topic_names": [TOPIC]})
        assert answer["error_code"] == 0
    finally:
        connection.close()
    with RawClient(broker.bootstrap_servers) as client:
        answer = _join(client, group)
        assert (answer.error_code, answer.member_id) == (ErrorCode.INCONSISTENT_GROUP_PROTOCOL, "")
        assert [g for g in _listed(client) if g[0] == group] == [(group, "share", "Stable")]


def test_a_join_on_a_streams_groups_id_is_refused_while_it_has_members_then_takes_it_over(broker: Any) -> None:
    """classicGroupJoin sends only an empty streams group to classicGroupJoinToClassicGroup, which
    deletes it (maybeDeleteEmptyStreamsGroup) and makes a classic group of its id. DescribeGroups
    of a streams group's id, its offsets held or not, is a Dead group that is no classic one."""
    group = _group()
    connection = _Connection(broker.bootstrap_servers)
    try:
        assert _streams_heartbeat(connection, group, "m", 0)["error_code"] == 0
        with RawClient(broker.bootstrap_servers) as client:
            answer = _join(client, group)
            assert (answer.error_code, answer.member_id) == (ErrorCode.INCONSISTENT_GROUP_PROTOCOL, "")
            assert [g for g in _listed(client) if g[0] == group] == [(group, "streams", "Stable")]

            assert _streams_heartbeat(connection, group, "m", -1)["error_code"] == 0
            committed = connection.call(ApiKey.OFFSET_COMMIT, 9, {
                "group_id": group, "generation_id_or_member_epoch": -1, "member_id": "", "group_instance_id": None, "retention_time_ms": -1,
                "topics": [{"name": TOPIC, "partitions": [{"partition_index": 0, "committed_offset": 3, "committed_leader_epoch": -1,
                                                          "committed_metadata": ""}]}]})
            assert committed["topics"][0]["partitions"][0]["error_code"] == 0
            described = _describe(client, group, version=6)
            assert (described.error_code, described.error_message, described.group_state, described.members) == (
                ErrorCode.GROUP_ID_NOT_FOUND, f"Group {group} is not a classic group.", "Dead", [])

            answer = _join(client, group)
            assert answer.error_code == ErrorCode.MEMBER_ID_REQUIRED
            assert [g for g in _listed(client) if g[0] == group] == [(group, "classic", "Empty")]
    finally:
        connection.close()


def test_the_list_state_filter_is_trimmed_and_case_insensitive(broker: Any) -> None:
    """GroupMetadataManager.listGroups lower-cases and trims each state filter."""
    group = _group()
    with RawClient(broker.bootstrap_servers) as client:
        _sole_member(client, group, b"")
        for states in ([" Stable "], ["\tSTABLE"], ["stable\n"]):
            assert (group, "classic", "Stable") in _listed(client, states), states
        assert _listed(client, [" "]) == []


def test_a_group_created_by_member_id_required_survives_a_restart(tmp_path: Any) -> None:
    """classicGroupJoinToClassicGroup: a new group whose join wrote nothing stores an empty
    GroupMetadata record (newEmptyGroupMetadataRecord)."""
    group = _group()
    with running_broker(data_dir=str(tmp_path), group_initial_rebalance_delay_ms=0) as handle:
        with RawClient(handle.bootstrap_servers) as client:
            assert _join(client, group).error_code == ErrorCode.MEMBER_ID_REQUIRED
            assert (group, "classic", "Empty") in _listed(client)
        handle.restart()
        with RawClient(handle.bootstrap_servers) as client:
            assert (group, "classic", "Empty") in _listed(client)


def test_a_consumer_group_taking_over_an_id_first_joined_classically_tombstones_its_record() -> None:
    """The empty GroupMetadata an id's first JoinGroup stored goes when a consumer group takes
    the id (maybeDeleteEmptyClassicGroup), so a reload finds no classic group beside it."""
    storage = Storage.open(None)
    harness = Harness(storage)
    storage.create_topic("t", 1)
    answers: list[JoinResult] = []
    harness.coordinator.join(JoinRequest("g", "", None, "consumer", (("range", subscription(["t"])),), SESSION_MS, 30_000), answers.append)
    assert [a.error for a in answers] == [ErrorCode.MEMBER_ID_REQUIRED]
    assert harness.beat("c1", 0).error is ErrorCode.NONE
    reloaded = Harness(storage).coordinator
    assert reloaded.consumer_group("g") is not None and "g" not in reloaded.groups
