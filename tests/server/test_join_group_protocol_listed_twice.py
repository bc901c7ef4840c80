"""JoinGroup with a protocol name a member lists twice, over raw requests to a live broker.

Kafka 4.4 counts a group's protocols per entry (ClassicGroup.incrementSupportedProtocols), and
a protocol is a candidate only when its count equals the number of members: a name the sole
member lists twice is passed over for the member's next choice, and a second member naming
only that protocol is refused. Where no candidate is left Kafka's vote throws and the join is
never answered; Ottla answers with the names every member lists instead."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kafka.protocol.consumer.group import JoinGroupRequest, JoinGroupResponse

from kafka_wire import RawClient, make
from ottla.testing import running_broker
from ottla.wire.errors import ErrorCode


@pytest.fixture(scope="module")
def broker() -> Iterator[Any]:
    with running_broker(data_dir=None, group_initial_rebalance_delay_ms=0) as handle:
        yield handle


@pytest.fixture
def client(broker: Any) -> Iterator[RawClient]:
    with RawClient(broker.bootstrap_servers) as raw:
        yield raw


def _join(client: RawClient, group: str, protocols: list[tuple[str, bytes]], **fields: Any) -> Any:
    """A JoinGroup v9 of a static member (answered in one round trip, no MEMBER_ID_REQUIRED)."""
    request = dict(group_id=group, session_timeout_ms=30_000, rebalance_timeout_ms=30_000, member_id="",
                   group_instance_id=f"i-{uuid.uuid4().hex[:6]}", protocol_type="consumer",
                   protocols=[dict(name=name, metadata=metadata) for name, metadata in protocols], reason=None)
    return client.call(make(JoinGroupRequest, {**request, **fields}), 9, JoinGroupResponse)


def _group() -> str:
    return f"g-{uuid.uuid4().hex[:8]}"


def test_a_name_listed_twice_is_passed_over_for_the_next(client: RawClient) -> None:
    joined = _join(client, _group(), [("x", b"x1"), ("x", b"x2"), ("y", b"y1")])
    assert joined.error_code == ErrorCode.NONE
    assert joined.protocol_name == "y"
    assert [m.metadata for m in joined.members] == [b"y1"]


def test_a_member_naming_only_a_protocol_counted_twice_is_refused(client: RawClient) -> None:
    group = _group()
    assert _join(client, group, [("x", b""), ("x", b""), ("y", b"")]).error_code == ErrorCode.NONE
    refused = _join(client, group, [("x", b"")], group_instance_id=None)
    assert refused.error_code == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    assert _join(client, group, [("y", b"")], group_instance_id=None).error_code == ErrorCode.MEMBER_ID_REQUIRED


def test_no_candidate_left_still_answers_with_the_name_every_member_lists(client: RawClient) -> None:
    joined = _join(client, _group(), [("x", b"first"), ("x", b"second")])
    assert joined.error_code == ErrorCode.NONE
    assert joined.protocol_name == "x"
    assert [m.metadata for m in joined.members] == [b"first"]
