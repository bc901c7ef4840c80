"""A deleted topic's committed offsets and share state go with it, as in Kafka 4.4: GroupCoordinatorService.
onMetadataUpdate has every shard write an offset tombstone for each group's offset of the topic,
committed or pending in a transaction (GroupCoordinatorShard.onTopicsDeleted,
OffsetMetadataManager.onTopicsDeleted). Checked against the reference broker: OffsetFetch
answers -1 for the partitions after the deletion and after the topic is created again under the
same name, fetching every offset no longer names it, and the group stays listed, Empty, until
the expiry sweep deletes it. Here also after a restart on the same data: the tombstones are in
`__consumer_offsets`. A share group forgets the topic too (GroupMetadataManager.
maybeCleanupShareGroupState, ShareCoordinatorShard.maybeCleanupShareState)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compat.differential import _Connection
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from share_member import ShareMember
from txn_offsets import offsets_in_transaction

GONE, KEPT = "gone", "kept"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=tmp_path / "data", group_initial_rebalance_delay_ms=0) as handle:
        handle.create_topic(GONE, partitions=2)
        handle.create_topic(KEPT, partitions=1)
        yield handle


def _commit(conn: _Connection, group: str, offsets: dict[tuple[str, int], int]) -> None:
    """A simple group's OffsetCommit v8 of `offsets` ((topic, partition) -> offset)."""
    topics: dict[str, list[dict[str, Any]]] = {}
    for (topic, partition), offset in offsets.items():
        topics.setdefault(topic, []).append({"partition_index": partition, "committed_offset": offset, "committed_leader_epoch": -1,
                                             "committed_metadata": ""})
    answer = conn.call(ApiKey.OFFSET_COMMIT, 8, {"group_id": group, "generation_id_or_member_epoch": -1, "member_id": "", "group_instance_id": None,
                                                 "topics": [{"name": name, "partitions": partitions} for name, partitions in topics.items()]})
    assert [p["error_code"] for t in answer["topics"] for p in t["partitions"]] == [ErrorCode.NONE] * len(offsets), answer


def _fetch(conn: _Connection, group: str, wanted: dict[str, list[int]] | None, require_stable: bool = False) -> dict[tuple[str, int], tuple[int, int]]:
    """OffsetFetch v8 of one group: (topic, partition) -> (committed offset, error); every
    committed offset when `wanted` is None."""
    topics = None if wanted is None else [{"name": name, "partition_indexes": partitions} for name, partitions in wanted.items()]
    answer = conn.call(ApiKey.OFFSET_FETCH, 8, {"groups": [{"group_id": group, "topics": topics}], "require_stable": require_stable})
    found = answer["groups"][0]
    assert found["error_code"] == ErrorCode.NONE, answer
    return {(t["name"], p["partition_index"]): (p["committed_offset"], p["error_code"]) for t in found["topics"] for p in t["partitions"]}


def _delete(conn: _Connection, topic: str) -> None:
    answer = conn.call(ApiKey.DELETE_TOPICS, 6, {"topics": [{"name": topic, "topic_id": bytes(16)}], "timeout_ms": 10000})
    assert answer["responses"][0]["error_code"] == ErrorCode.NONE, answer


def _groups(conn: _Connection) -> list[tuple[str, str, str]]:
    answer = conn.call(ApiKey.LIST_GROUPS, 5, {"states_filter": [], "types_filter": []})
    return sorted((g["group_id"], g["group_state"], g["group_type"]) for g in answer["groups"])


def _check_gone(bootstrap: str) -> None:
    """What Kafka 4.4 answers once GONE is deleted: no offset of it in either group, KEPT's kept;
    an empty group without offsets stays listed until the expiry sweep."""
    conn = _Connection(bootstrap)
    try:
        wanted = {GONE: [0, 1], KEPT: [0]}
        gone = {(GONE, 0): (-1, 0), (GONE, 1): (-1, 0)}
        assert _fetch(conn, "both", wanted) == {**gone, (KEPT, 0): (3, 0)}
        assert _fetch(conn, "only", wanted) == {**gone, (KEPT, 0): (-1, 0)}
        assert _fetch(conn, "both", None) == {(KEPT, 0): (3, 0)}
        assert _fetch(conn, "only", None) == {}
        assert _groups(conn) == [("both", "Empty", "classic"), ("only", "Empty", "classic")]
    finally:
        conn.close()


def test_a_deleted_topics_offsets_go_from_every_group_and_stay_gone(broker: ThreadedBroker) -> None:
    conn = _Connection(broker.bootstrap_servers)
    try:
        _commit(conn, "both", {(GONE, 0): 5, (GONE, 1): 7, (KEPT, 0): 3})
        _commit(conn, "only", {(GONE, 1): 9})
        assert _fetch(conn, "both", {GONE: [0, 1]}) == {(GONE, 0): (5, 0), (GONE, 1): (7, 0)}
        _delete(conn, GONE)
    finally:
        conn.close()
    _check_gone(broker.bootstrap_servers)
    broker.create_topic(GONE, partitions=2)
    _check_gone(broker.bootstrap_servers)
    broker.restart()
    _check_gone(broker.bootstrap_servers)


def test_a_deleted_topics_offsets_pending_in_a_transaction_go_too(broker: ThreadedBroker) -> None:
    """The tombstone ends the partition's pending offset (OffsetMetadataManager.replay), so the
    transaction's commit brings none back."""
    bootstrap = broker.bootstrap_servers
    producer = offsets_in_transaction(bootstrap, "tx", "txg", GONE, {0: 100})
    conn = _Connection(bootstrap)
    try:
        assert _fetch(conn, "txg", {GONE: [0]}, require_stable=True) == {(GONE, 0): (-1, ErrorCode.UNSTABLE_OFFSET_COMMIT)}
        _delete(conn, GONE)
        assert _fetch(conn, "txg", {GONE: [0]}, require_stable=True) == {(GONE, 0): (-1, 0)}
        producer.commit_transaction(30)
        assert _fetch(conn, "txg", {GONE: [0]}) == {(GONE, 0): (-1, 0)}
        conn.close()
        broker.restart()
        conn = _Connection(broker.bootstrap_servers)
        assert _fetch(conn, "txg", {GONE: [0]}, require_stable=True) == {(GONE, 0): (-1, 0)}
    finally:
        conn.close()


def test_a_topic_deleted_through_another_node_loses_its_offsets_at_the_groups_coordinator() -> None:
    """Cluster mode: the group's coordinator is one node, the DeleteTopics goes to another."""
    with running_broker(nodes=3, group_initial_rebalance_delay_ms=0) as cluster:
        cluster.create_topic(GONE, partitions=2, replication_factor=3)
        addresses = cluster.bootstrap_servers.split(",")
        found = _Connection(addresses[0]).call(ApiKey.FIND_COORDINATOR, 4, {"key_type": 0, "coordinator_keys": ["g"]})["coordinators"][0]
        assert found["error_code"] == ErrorCode.NONE, found
        coordinator = f"{found['host']}:{found['port']}"
        other = next(address for address in addresses if address.rsplit(":", 1)[1] != str(found["port"]))
        at_coordinator, elsewhere = _Connection(coordinator), _Connection(other)
        try:
            _commit(at_coordinator, "g", {(GONE, 0): 5, (GONE, 1): 7})
            _delete(elsewhere, GONE)
            cluster.create_topic(GONE, partitions=2, replication_factor=3)
            assert _fetch(at_coordinator, "g", {GONE: [0, 1]}) == {(GONE, 0): (-1, 0), (GONE, 1): (-1, 0)}
        finally:
            at_coordinator.close()
            elsewhere.close()


def _share_state_of(broker: ThreadedBroker, group_id: str, topic_id: bytes) -> list[str]:
    """What the broker's share coordinator still holds of the topic for the group."""
    assert broker.broker is not None and broker.broker.share is not None
    share = broker.broker.share
    group = share.groups[group_id]
    held = [name for name, kept in (("topics", group.topics), ("initialized", group.initialized)) if topic_id in kept]
    return held + [f"partition {key[2]}" for key in share.partitions if key[:2] == (group_id, topic_id)]


def test_a_deleted_topics_share_state_goes_from_its_share_groups(broker: ThreadedBroker) -> None:
    member = ShareMember(broker)
    try:
        assert member.join_until_assigned("sg", [GONE])
    finally:
        member.close()
    assert broker.broker is not None and broker.broker.storage is not None
    info = broker.broker.storage.topic(GONE)
    assert info is not None
    assert "initialized" in _share_state_of(broker, "sg", info.topic_id)
    conn = _Connection(broker.bootstrap_servers)
    try:
        _delete(conn, GONE)
    finally:
        conn.close()
    assert _share_state_of(broker, "sg", info.topic_id) == []
    broker.restart()
    assert _share_state_of(broker, "sg", info.topic_id) == []
