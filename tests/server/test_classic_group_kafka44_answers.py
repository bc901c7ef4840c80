"""Classic group APIs answered as Kafka 4.4 answers them, over raw requests to a live broker:
the SyncGroup check KafkaApis makes before a group is looked at, and the protocol
ClassicGroup.selectProtocol picks when the members' votes tie."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kafka.protocol.admin.groups import DescribeGroupsRequest, DescribeGroupsResponse
from kafka.protocol.consumer.group import JoinGroupRequest, JoinGroupResponse, SyncGroupRequest, SyncGroupResponse

from kafka_wire import RawClient, make
from ottla.server.java_hashing import default_capacity, java_order, string_hash
from ottla.testing import running_broker
from ottla.wire.errors import ErrorCode

SESSION_MS = 10_000


@pytest.fixture(scope="module")
def broker() -> Iterator[Any]:
    with running_broker(data_dir=None, group_initial_rebalance_delay_ms=0) as handle:
        yield handle


@pytest.fixture
def client(broker: Any) -> Iterator[RawClient]:
    with RawClient(broker.bootstrap_servers) as raw:
        yield raw


def _group() -> str:
    return f"g-{uuid.uuid4().hex[:8]}"


def _join(client: RawClient, group: str, member_id: str = "", version: int = 9, **fields: Any) -> Any:
    request = dict(group_id=group, session_timeout_ms=SESSION_MS, rebalance_timeout_ms=SESSION_MS, member_id=member_id,
                   group_instance_id=None, protocol_type="consumer", protocols=[dict(name="range", metadata=b"sub")], reason=None)
    return client.call(make(JoinGroupRequest, {**request, **fields}), version, JoinGroupResponse)


def _joined(client: RawClient, group: str) -> Any:
    """The sole member of a group in CompletingRebalance, the leader."""
    joined = _join(client, group)
    assert joined.error_code == ErrorCode.MEMBER_ID_REQUIRED
    joined = _join(client, group, joined.member_id)
    assert joined.error_code == ErrorCode.NONE
    return joined


def _describe(client: RawClient, group: str, version: int = 5) -> Any:
    return client.call(make(DescribeGroupsRequest, dict(groups=[group], include_authorized_operations=False)), version,
                       DescribeGroupsResponse).groups[0]


def _sync(client: RawClient, group: str, joined: Any, version: int = 5, **fields: Any) -> Any:
    request = dict(group_id=group, generation_id=joined.generation_id, member_id=joined.member_id, group_instance_id=None,
                   protocol_type="consumer", protocol_name="range", assignments=[dict(member_id=joined.member_id, assignment=b"a")])
    return client.call(make(SyncGroupRequest, {**request, **fields}), version, SyncGroupResponse)


@pytest.mark.parametrize("missing", ["protocol_type", "protocol_name"])
def test_sync_group_v5_without_protocol_type_or_name_is_an_inconsistent_protocol(client: RawClient, missing: str) -> None:
    """SyncGroupRequest.areMandatoryProtocolTypeAndNamePresent (KafkaApis.handleSyncGroupRequest):
    from v5 both are required, so a null one fails the request before the group is looked at;
    the leader's assignment is not taken, and a complete SyncGroup after it still is."""
    group = _group()
    joined = _joined(client, group)
    refused = _sync(client, group, joined, **{missing: None})
    assert (refused.error_code, refused.protocol_type, refused.protocol_name, refused.assignment) == (
        ErrorCode.INCONSISTENT_GROUP_PROTOCOL, None, None, b"")
    synced = _sync(client, group, joined)
    assert (synced.error_code, synced.protocol_type, synced.protocol_name, synced.assignment) == (0, "consumer", "range", b"a")
    # Before v5 the fields do not exist: nothing to check.
    assert _sync(client, group, joined, version=4).error_code == ErrorCode.NONE


@pytest.mark.parametrize(("first", "second", "chosen"), [
    (["roundrobin", "range"], ["range", "roundrobin"], "range"),
    (["cooperative-sticky", "range"], ["range", "cooperative-sticky"], "range"),
    (["b", "a"], ["a", "b"], "a"),
])
def test_a_tied_protocol_vote_goes_as_kafkas_hash_map_iterates(broker: Any, first: list[str], second: list[str], chosen: str) -> None:
    """ClassicGroup.selectProtocol keeps the first of the most voted protocols in its vote
    HashMap's order: with one vote each, the name in the lower bucket wins whoever joined
    first (what Kafka 4.4 answered to these very joins)."""
    group = _group()
    with RawClient(broker.bootstrap_servers) as one, RawClient(broker.bootstrap_servers) as two:
        # JoinGroup v3 needs no member id round trip.
        alone = _join(one, group, version=3, protocols=[dict(name=name, metadata=b"m") for name in first])
        assert (alone.error_code, alone.protocol_name) == (0, first[0])
        two.send(make(JoinGroupRequest, dict(
            group_id=group, session_timeout_ms=SESSION_MS, rebalance_timeout_ms=SESSION_MS, member_id="", group_instance_id=None,
            protocol_type="consumer", protocols=[dict(name=name, metadata=b"m") for name in second], reason=None)), 3)
        deadline = time.monotonic() + 10
        while _describe(one, group).group_state != "PreparingRebalance":  # the second member is parked
            assert time.monotonic() < deadline
            time.sleep(0.02)
        rejoined = _join(one, group, alone.member_id, version=3, protocols=[dict(name=name, metadata=b"m") for name in first])
        joined = JoinGroupResponse[3].decode(two.receive_frame(), header=True)
    assert [(answer.error_code, answer.protocol_name) for answer in (rejoined, joined)] == [(0, chosen), (0, chosen)]


def test_java_hash_map_order_is_javas() -> None:
    """What java.util.HashMap iterated for these keys put in order (printed by Java 17): a
    non-ASCII name hashed by UTF-16 unit, and 13 keys, one more than 16 slots hold."""
    def java_hash_map_order(keys: list[str]) -> list[str]:
        return java_order(keys, string_hash, default_capacity(len(keys)))

    keys = [f"p\u00e9-{index}-x" for index in range(13)]
    assert java_hash_map_order(keys) == [f"p\u00e9-{index}-x" for index in (0, 12, 8, 7, 6, 5, 4, 3, 2, 1, 9, 10, 11)]
    assert java_hash_map_order(["roundrobin", "cooperative-sticky", "range"]) == ["range", "roundrobin", "cooperative-sticky"]
