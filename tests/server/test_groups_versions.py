"""Every version of every group API over a real socket, encoded and decoded by kafka-python's
generated protocol classes (an independent codec), against a live broker."""

from __future__ import annotations

import uuid

import pytest
from kafka.protocol.admin.groups import (
    DeleteGroupsRequest,
    DeleteGroupsResponse,
    DescribeGroupsRequest,
    DescribeGroupsResponse,
    ListGroupsRequest,
    ListGroupsResponse,
)
from kafka.protocol.consumer.group import (
    HeartbeatRequest,
    HeartbeatResponse,
    JoinGroupRequest,
    JoinGroupResponse,
    LeaveGroupRequest,
    LeaveGroupResponse,
    OffsetCommitRequest,
    OffsetCommitResponse,
    OffsetDeleteRequest,
    OffsetDeleteResponse,
    OffsetFetchRequest,
    OffsetFetchResponse,
    SyncGroupRequest,
    SyncGroupResponse,
)
from kafka.protocol.metadata.api_versions import ApiVersionsRequest, ApiVersionsResponse
from kafka.protocol.metadata.find_coordinator import FindCoordinatorRequest, FindCoordinatorResponse
from kafka.protocol.metadata.metadata import MetadataRequest, MetadataResponse

from kafka_wire import RawClient, make
from ottla.testing import running_broker

GROUP_APIS = {8: (0, 10), 9: (0, 10), 10: (0, 6), 11: (0, 9), 12: (0, 4), 13: (0, 5), 14: (0, 5), 15: (0, 6), 16: (0, 5), 42: (0, 3), 47: (0, 0)}
TOPIC = "orders"
SESSION_MS = 10_000


@pytest.fixture(scope="module")
def broker():
    with running_broker(data_dir=None, group_initial_rebalance_delay_ms=0) as handle:
        handle.create_topic(TOPIC, 4)
        yield handle


@pytest.fixture(scope="module")
def topic_id(broker) -> bytes:
    """TOPIC's id, which OffsetCommit and OffsetFetch v10 name it by (KIP-848)."""
    with RawClient(broker.bootstrap_servers) as raw:
        response = raw.call(make(MetadataRequest, dict(topics=[dict(name=TOPIC, topic_id=None)], allow_auto_topic_creation=False)), 12, MetadataResponse)
    return response.topics[0].topic_id.bytes


@pytest.fixture
def client(broker):
    with RawClient(broker.bootstrap_servers) as raw:
        yield raw


def _group() -> str:
    return f"g-{uuid.uuid4().hex[:8]}"


def _join(client: RawClient, group: str, version: int, member_id: str = "", instance_id: str | None = None):
    request = make(JoinGroupRequest, dict(
        group_id=group, session_timeout_ms=SESSION_MS, rebalance_timeout_ms=SESSION_MS, member_id=member_id,
        group_instance_id=instance_id, protocol_type="consumer", protocols=[dict(name="range", metadata=b"sub")], reason=None,
    ))
    return client.call(request, version, JoinGroupResponse)


def _joined_member(client: RawClient, group: str, version: int):
    """A sole member through JoinGroup at `version` (twice from v4: MEMBER_ID_REQUIRED first)."""
    response = _join(client, group, version)
    if version >= 4:
        assert response.error_code == 79 and response.member_id
        response = _join(client, group, version, member_id=response.member_id)
    assert response.error_code == 0
    return response


def _sync(client: RawClient, group: str, joined, version: int, assignment: bytes = b"asg"):
    request = make(SyncGroupRequest, dict(
        group_id=group, generation_id=joined.generation_id, member_id=joined.member_id, group_instance_id=None,
        protocol_type="consumer", protocol_name="range", assignments=[dict(member_id=joined.member_id, assignment=assignment)],
    ))
    return client.call(request, version, SyncGroupResponse)


def _stable_member(client: RawClient, group: str):
    joined = _joined_member(client, group, 5)
    assert _sync(client, group, joined, 3).error_code == 0
    return joined


def test_api_versions_advertises_every_group_api(client):
    response = client.call(ApiVersionsRequest(client_software_name="t", client_software_version="1"), 3, ApiVersionsResponse)
    advertised = {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}
    assert {key: advertised.get(key) for key in GROUP_APIS} == GROUP_APIS


@pytest.mark.parametrize("version", range(0, 7))
def test_find_coordinator_names_this_node(client, broker, version):
    host, port = broker.bootstrap_servers.rsplit(":", 1)
    request = make(FindCoordinatorRequest, dict(key="g", key_type=0, coordinator_keys=["g", "txn"]))
    response = client.call(request, version, FindCoordinatorResponse)
    if version >= 4:
        assert [(c.key, c.node_id, c.host, c.port, c.error_code) for c in response.coordinators] == [
            ("g", 1, host, int(port), 0),
            ("txn", 1, host, int(port), 0),
        ]
    else:
        assert (response.error_code, response.node_id, response.host, response.port) == (0, 1, host, int(port))


@pytest.mark.parametrize("version", [1, 4])
def test_find_coordinator_transactions_and_unknown_key_types(client, version):
    request = make(FindCoordinatorRequest, dict(key="t", key_type=1, coordinator_keys=["t"]))
    response = client.call(request, version, FindCoordinatorResponse)
    assert (response.coordinators[0].error_code if version >= 4 else response.error_code) == 0
    request = make(FindCoordinatorRequest, dict(key="t", key_type=7, coordinator_keys=["t"]))
    response = client.call(request, version, FindCoordinatorResponse)
    assert (response.coordinators[0].error_code if version >= 4 else response.error_code) == 42  # INVALID_REQUEST


@pytest.mark.parametrize("version", range(0, 10))
def test_join_group_every_version(client, version):
    group = _group()
    response = _joined_member(client, group, version)
    assert (response.generation_id, response.leader) == (1, response.member_id)
    assert response.protocol_name == "range"
    assert [(m.member_id, m.metadata) for m in response.members] == [(response.member_id, b"sub")]
    if version >= 7:
        assert response.protocol_type == "consumer"
    # A join that fails still encodes at every version (nullable protocol name from v7).
    refused = _join(client, group, version, member_id="stranger")
    assert refused.error_code == 25 and refused.generation_id == -1
    assert refused.protocol_name in ("", None)


@pytest.mark.parametrize("version", range(0, 6))
def test_sync_group_every_version(client, version):
    group = _group()
    joined = _joined_member(client, group, 5)
    response = _sync(client, group, joined, version, b"my partitions")
    assert (response.error_code, response.assignment) == (0, b"my partitions")
    if version >= 5:
        assert (response.protocol_type, response.protocol_name) == ("consumer", "range")


@pytest.mark.parametrize("version", range(0, 5))
def test_heartbeat_every_version(client, version):
    group = _group()
    joined = _stable_member(client, group)

    def beat(generation: int, member_id: str) -> int:
        request = make(HeartbeatRequest, dict(group_id=group, generation_id=generation, member_id=member_id, group_instance_id=None))
        return client.call(request, version, HeartbeatResponse).error_code

    assert beat(joined.generation_id, joined.member_id) == 0
    assert beat(joined.generation_id + 1, joined.member_id) == 22  # ILLEGAL_GENERATION
    assert beat(joined.generation_id, "stranger") == 25  # UNKNOWN_MEMBER_ID


@pytest.mark.parametrize("version", range(0, 6))
def test_leave_group_every_version(client, version):
    group = _group()
    joined = _stable_member(client, group)
    request = make(LeaveGroupRequest, dict(
        group_id=group, member_id=joined.member_id,
        members=[dict(member_id=joined.member_id, group_instance_id=None, reason="done"), dict(member_id="stranger", group_instance_id=None, reason=None)],
    ))
    response = client.call(request, version, LeaveGroupResponse)
    if version >= 3:
        assert response.error_code == 0
        assert [(m.member_id, m.error_code) for m in response.members] == [(joined.member_id, 0), ("stranger", 25)]
    else:
        assert response.error_code == 0
        assert client.call(request, version, LeaveGroupResponse).error_code == 25  # already gone
    assert _describe(client, group).group_state == "Empty"


def _describe(client: RawClient, group: str, version: int = 5):
    request = make(DescribeGroupsRequest, dict(groups=[group], include_authorized_operations=False))
    (described,) = client.call(request, version, DescribeGroupsResponse).groups
    return described


def _commit(client: RawClient, group: str, version: int, offsets: dict[int, int], generation: int = -1, member_id: str = "", topic_id: bytes | None = None):
    request = make(OffsetCommitRequest, dict(
        group_id=group, generation_id_or_member_epoch=generation, member_id=member_id, group_instance_id=None, retention_time_ms=-1,
        topics=[dict(name=TOPIC, topic_id=_uuid(topic_id), partitions=[
            dict(partition_index=p, committed_offset=o, committed_leader_epoch=2, commit_timestamp=-1, committed_metadata=f"m{p}")
            for p, o in offsets.items()
        ])],
    ))
    return client.call(request, version, OffsetCommitResponse)


def _uuid(topic_id: bytes | None) -> uuid.UUID | None:
    return None if topic_id is None else uuid.UUID(bytes=topic_id)


def _fetch(client: RawClient, group: str, version: int, partitions: list[int] | None, topic_id: bytes | None = None):
    """{(topic, partition): (offset, metadata, error)}; v10 answers by id, keyed here by TOPIC's."""
    topics = None if partitions is None else [dict(name=TOPIC, partition_indexes=partitions)]
    by_id = None if topics is None else [dict(topic, topic_id=_uuid(topic_id)) for topic in topics]
    request = make(OffsetFetchRequest, dict(
        group_id=group, topics=topics, require_stable=False,
        groups=[dict(group_id=group, member_id=None, member_epoch=-1, topics=by_id)],
    ))
    response = client.call(request, version, OffsetFetchResponse)
    if version >= 8:
        (fetched,) = response.groups
        assert fetched.error_code == 0
        topics_out = fetched.topics
    else:
        topics_out = response.topics
    if version >= 10:
        assert {t.topic_id.bytes for t in topics_out} <= {topic_id}
        return {(TOPIC, p.partition_index): (p.committed_offset, p.metadata, p.error_code) for t in topics_out for p in t.partitions}
    return {(t.name, p.partition_index): (p.committed_offset, p.metadata, p.error_code) for t in topics_out for p in t.partitions}


@pytest.mark.parametrize("version", range(0, 11))
def test_offset_commit_every_version_then_fetch(client, topic_id, version):
    group = _group()
    response = _commit(client, group, version, {0: 11, 1: 22}, topic_id=topic_id)
    assert [(p.partition_index, p.error_code) for p in response.topics[0].partitions] == [(0, 0), (1, 0)]
    if version >= 10:
        assert response.topics[0].topic_id.bytes == topic_id
    fetched = _fetch(client, group, 5, [0, 1, 2])
    assert fetched == {(TOPIC, 0): (11, "m0", 0), (TOPIC, 1): (22, "m1", 0), (TOPIC, 2): (-1, "", 0)}


@pytest.mark.parametrize("version", range(1, 11))
def test_offset_commit_by_a_member_of_a_stable_group(client, topic_id, version):
    group = _group()
    joined = _stable_member(client, group)
    response = _commit(client, group, version, {3: 7}, joined.generation_id, joined.member_id, topic_id)
    assert response.topics[0].partitions[0].error_code == 0
    stale = _commit(client, group, version, {3: 8}, joined.generation_id + 1, joined.member_id, topic_id)
    assert stale.topics[0].partitions[0].error_code == 22  # ILLEGAL_GENERATION
    missing = _commit(client, _group(), version, {3: 8}, 5, "m", topic_id)
    # KIP-848: from v9 a commit to a group that does not exist names the problem.
    assert missing.topics[0].partitions[0].error_code == (69 if version >= 9 else 22)


def test_offset_commit_to_an_unknown_topic_partition(client):
    request = make(OffsetCommitRequest, dict(
        group_id=_group(), generation_id_or_member_epoch=-1, member_id="", group_instance_id=None, retention_time_ms=-1,
        topics=[
            dict(name="no-such-topic", partitions=[dict(partition_index=0, committed_offset=1, committed_leader_epoch=-1, commit_timestamp=-1, committed_metadata="")]),
            dict(name=TOPIC, partitions=[dict(partition_index=99, committed_offset=1, committed_leader_epoch=-1, commit_timestamp=-1, committed_metadata="")]),
        ],
    ))
    response = client.call(request, 8, OffsetCommitResponse)
    assert [t.partitions[0].error_code for t in response.topics] == [3, 3]


def test_offset_commit_and_fetch_v10_name_topics_by_id(client, topic_id):
    """KIP-848: an id no topic has answers UNKNOWN_TOPIC_ID; a known one reaches the same
    offsets as its name does in older versions."""
    group, unknown = _group(), bytes(range(16))
    committed = _commit(client, group, 10, {0: 4}, topic_id=topic_id)
    assert committed.topics[0].partitions[0].error_code == 0
    assert _commit(client, group, 10, {0: 5}, topic_id=unknown).topics[0].partitions[0].error_code == 100
    assert _fetch(client, group, 9, [0]) == {(TOPIC, 0): (4, "m0", 0)}
    request = make(OffsetFetchRequest, dict(require_stable=False, groups=[dict(group_id=group, member_id=None, member_epoch=-1, topics=[
        dict(topic_id=_uuid(unknown), partition_indexes=[0])])]))
    (fetched,) = client.call(request, 10, OffsetFetchResponse).groups
    assert [(t.topic_id.bytes, p.committed_offset, p.error_code) for t in fetched.topics for p in t.partitions] == [(unknown, -1, 100)]


@pytest.mark.parametrize("version", range(0, 11))
def test_offset_fetch_every_version(client, topic_id, version):
    group = _group()
    _commit(client, group, 8, {0: 5, 2: 9})
    assert _fetch(client, group, version, [0, 1], topic_id) == {(TOPIC, 0): (5, "m0", 0), (TOPIC, 1): (-1, "", 0)}
    if version >= 2:  # null topics: every committed offset
        assert _fetch(client, group, version, None, topic_id) == {(TOPIC, 0): (5, "m0", 0), (TOPIC, 2): (9, "m2", 0)}


def test_offset_fetch_v8_answers_several_groups(client):
    first, second = _group(), _group()
    _commit(client, first, 8, {0: 1})
    _commit(client, second, 8, {0: 2})
    topics = [dict(name=TOPIC, partition_indexes=[0])]
    request = make(OffsetFetchRequest, dict(
        require_stable=False,
        groups=[dict(group_id=first, member_id=None, member_epoch=-1, topics=topics), dict(group_id=second, member_id=None, member_epoch=-1, topics=topics)],
    ))
    response = client.call(request, 8, OffsetFetchResponse)
    assert [(g.group_id, g.topics[0].partitions[0].committed_offset) for g in response.groups] == [(first, 1), (second, 2)]


@pytest.mark.parametrize("version", range(0, 6))
def test_list_groups_every_version(client, version):
    stable, simple = _group(), _group()
    _stable_member(client, stable)
    _commit(client, simple, 8, {0: 1})
    request = make(ListGroupsRequest, dict(states_filter=["stable"], types_filter=[]))
    listed = {g.group_id: g for g in client.call(request, version, ListGroupsResponse).groups}
    assert listed[stable].protocol_type == "consumer"
    if version >= 4:
        assert simple not in listed and listed[stable].group_state == "Stable"
    else:
        assert listed[simple].protocol_type == ""
    if version >= 5:
        request = make(ListGroupsRequest, dict(states_filter=[], types_filter=["consumer"]))
        assert client.call(request, version, ListGroupsResponse).groups == []


@pytest.mark.parametrize("version", range(0, 7))
def test_describe_groups_every_version(client, version):
    group = _group()
    joined = _stable_member(client, group)
    described = _describe(client, group, version)
    assert (described.error_code, described.group_state, described.protocol_type, described.protocol_data) == (0, "Stable", "consumer", "range")
    (member,) = described.members
    assert (member.member_id, member.member_metadata, member.member_assignment) == (joined.member_id, b"sub", b"asg")
    unknown = _describe(client, "never-seen", version)
    # KIP-1043: from v6 an unknown group is named as such.
    assert (unknown.error_code, unknown.group_state, unknown.members) == (69 if version >= 6 else 0, "Dead", [])


@pytest.mark.parametrize("version", range(0, 3))
def test_delete_groups_every_version(client, version):
    busy, idle = _group(), _group()
    _stable_member(client, busy)
    _commit(client, idle, 8, {0: 3})
    request = make(DeleteGroupsRequest, dict(groups_names=[busy, idle, "never-seen"]))
    results = client.call(request, version, DeleteGroupsResponse).results
    # In Kafka's order, by partition and hash of these random ids (test_group_deletion_orders.py).
    assert sorted((r.group_id, r.error_code) for r in results) == sorted([(busy, 68), (idle, 0), ("never-seen", 69)])
    assert _fetch(client, idle, 5, [0]) == {(TOPIC, 0): (-1, "", 0)}


def test_offset_delete(client):
    group = _group()
    _commit(client, group, 8, {0: 3, 1: 4})
    request = make(OffsetDeleteRequest, dict(group_id=group, topics=[dict(name=TOPIC, partitions=[dict(partition_index=0)]), dict(name="nope", partitions=[dict(partition_index=0)])]))
    response = client.call(request, 0, OffsetDeleteResponse)
    assert response.error_code == 0
    # The topic refused without the coordinator first, as Kafka 4.4's KafkaApis merges them.
    assert [(t.name, t.partitions[0].error_code) for t in response.topics] == [("nope", 3), (TOPIC, 0)]
    assert _fetch(client, group, 5, [0, 1]) == {(TOPIC, 0): (-1, "", 0), (TOPIC, 1): (4, "m1", 0)}
    request = make(OffsetDeleteRequest, dict(group_id="never-seen", topics=[]))
    assert client.call(request, 0, OffsetDeleteResponse).error_code == 69


def test_consumer_offsets_is_listed_as_internal(client):
    response = client.call(make(MetadataRequest, dict(topics=None, allow_auto_topic_creation=False)), 9, MetadataResponse)
    internal = {t.name: t.is_internal for t in response.topics}
    assert internal["__consumer_offsets"] is True and internal[TOPIC] is False
