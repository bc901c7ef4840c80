"""KIP-848 consumer groups in the offsets cleanup (Kafka's cleanupGroupMetadata), over raw requests
to a real broker: an empty group left with no offsets goes, and while members are in, the offsets
of topics none of them subscribes to expire from their commit."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from compat.differential import _Connection
from compat.harness import wait_for
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

_MEMBER = "cleanup-member-000000"


@pytest.fixture
def connection() -> Iterator[_Connection]:
    with running_broker(data_dir=None, group_initial_rebalance_delay_ms=0, offsets_retention_check_interval_ms=200) as broker:
        broker.create_topic("t", partitions=2)
        broker.create_topic("u", partitions=1)
        yield _Connection(broker.bootstrap_servers)


def _heartbeat(connection: _Connection, epoch: int, **changes: Any) -> dict[str, Any]:
    body = {"group_id": "cg", "member_id": _MEMBER, "member_epoch": epoch, "instance_id": None, "rack_id": None, "rebalance_timeout_ms": -1,
            "subscribed_topic_names": None, "subscribed_topic_regex": None, "server_assignor": None, "topic_partitions": None}
    answer: dict[str, Any] = connection.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 1, {**body, **changes})
    assert answer["error_code"] == ErrorCode.NONE, answer
    return answer


def _join(connection: _Connection) -> int:
    return int(_heartbeat(connection, 0, rebalance_timeout_ms=30000, subscribed_topic_names=["t"], topic_partitions=[])["member_epoch"])


def _listed(connection: _Connection) -> list[str]:
    return [group["group_id"] for group in connection.call(ApiKey.LIST_GROUPS, 5, {"states_filter": [], "types_filter": []})["groups"]]


def test_an_empty_consumer_group_with_no_offsets_is_deleted(connection: _Connection) -> None:
    _join(connection)
    _heartbeat(connection, -1)  # the member leaves
    assert wait_for(lambda: "cg" not in _listed(connection), timeout=10), _listed(connection)


def test_offsets_of_topics_no_member_subscribes_to_expire_while_members_are_in(connection: _Connection) -> None:
    # u's offset lives 300 ms; t's the default retention, so that it cannot expire before the member joins.
    for topic, retention_ms in (("t", -1), ("u", 300)):
        committed = connection.call(ApiKey.OFFSET_COMMIT, 2, {
            "group_id": "cg", "generation_id_or_member_epoch": -1, "member_id": "", "retention_time_ms": retention_ms,
            "topics": [{"name": topic, "partitions": [{"partition_index": 0, "committed_offset": 5, "committed_metadata": ""}]}],
        })
        assert committed["topics"][0]["partitions"][0]["error_code"] == ErrorCode.NONE
    epoch = _join(connection)

    def offsets() -> set[str]:
        nonlocal epoch
        epoch = int(_heartbeat(connection, epoch)["member_epoch"])  # the member stays in
        fetched = connection.call(ApiKey.OFFSET_FETCH, 8, {"groups": [{"group_id": "cg", "topics": None}], "require_stable": False})
        return {topic["name"] for topic in fetched["groups"][0]["topics"]}

    assert wait_for(lambda: offsets() == {"t"}, timeout=10)
    time.sleep(0.5)  # more cleanups: the subscribed topic's offset stays
    assert offsets() == {"t"}
    assert "cg" in _listed(connection)
