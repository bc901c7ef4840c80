"""Transactional offsets (TxnOffsetCommit) against the other ways an offset changes, with real
clients against a real broker: as in Kafka's OffsetMetadataManager, a transaction that commits
never undoes a later plain commit or a deletion, and expiry leaves alone what a transaction may
still commit. The restarts check that replaying `__consumer_offsets` reaches the same answer."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from compat.differential import call_once
from compat.harness import wait_for
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from txn_offsets import offsets_in_transaction
from tests.server.test_features import Client

TOPIC = "t"


@pytest.fixture
def broker(tmp_path) -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=tmp_path / "data", group_initial_rebalance_delay_ms=0, offsets_retention_check_interval_ms=100) as handle:
        handle.create_topic(TOPIC, partitions=2)
        yield handle


def _committed(bootstrap: str, group: str, partitions: tuple[int, ...] = (0,)) -> list[int]:
    """The group's committed offsets, read without waiting for stable ones (OffsetFetch v7)."""
    client = Client(bootstrap)
    try:
        answer = client.call(ApiKey.OFFSET_FETCH, 7, {"group_id": group, "require_stable": False,
                                                      "topics": [{"name": TOPIC, "partition_indexes": list(partitions)}]})
    finally:
        client.close()
    assert answer["error_code"] == ErrorCode.NONE, answer
    return [partition["committed_offset"] for partition in answer["topics"][0]["partitions"]]


def test_a_plain_commit_made_while_a_transaction_is_open_outlives_its_commit(broker) -> None:
    """t-0: the transaction's 100, then a plain commit of 200: the later record, 200, stays.
    t-1: a plain 300 first, then the transaction's 400: the transaction's is the later one."""
    bootstrap = broker.bootstrap_servers
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions("g", [TopicPartition(TOPIC, 1, 300)])])["g"].result(30)
    producer = offsets_in_transaction(bootstrap, "tx", "g", TOPIC, {0: 100, 1: 400})
    admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions("g", [TopicPartition(TOPIC, 0, 200)])])["g"].result(30)
    producer.commit_transaction(30)
    assert _committed(bootstrap, "g", (0, 1)) == [200, 400]
    broker.restart()
    assert _committed(bootstrap, "g", (0, 1)) == [200, 400]


def test_a_deleted_group_stays_deleted_when_its_pending_transaction_commits(broker) -> None:
    """DeleteGroups writes a tombstone for a partition with only a pending transactional
    offset, and the tombstone ends that offset: the commit brings nothing back."""
    bootstrap = broker.bootstrap_servers
    producer = offsets_in_transaction(bootstrap, "tx", "g", TOPIC, {0: 100})
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.delete_consumer_groups(["g"])["g"].result(30)
    producer.commit_transaction(30)
    assert _committed(bootstrap, "g") == [-1]
    broker.restart()
    assert _committed(bootstrap, "g") == [-1]


def test_offset_delete_ends_a_pending_transactional_offset(broker) -> None:
    """OffsetDelete of a partition whose only offset is pending in a transaction."""
    bootstrap = broker.bootstrap_servers
    producer = offsets_in_transaction(bootstrap, "tx", "g", TOPIC, {0: 100})
    deleted = call_once(bootstrap, ApiKey.OFFSET_DELETE, 0, {"group_id": "g", "topics": [{"name": TOPIC, "partitions": [{"partition_index": 0}]}]})
    assert deleted["error_code"] == ErrorCode.NONE and deleted["topics"][0]["partitions"][0]["error_code"] == ErrorCode.NONE
    producer.commit_transaction(30)
    assert _committed(bootstrap, "g") == [-1]
    broker.restart()
    assert _committed(bootstrap, "g") == [-1]


def test_expiry_keeps_an_offset_while_a_transaction_holds_its_partition(broker) -> None:
    """A plain offset past its retention (OffsetCommit v2's retention_time_ms) is not expired
    while a transaction has an offset pending for its partition; once that one aborts, it is."""
    bootstrap = broker.bootstrap_servers
    producer = offsets_in_transaction(bootstrap, "tx", "g", TOPIC, {0: 100})  # first, so no sweep can run between the two
    committed = call_once(bootstrap, ApiKey.OFFSET_COMMIT, 2, {
        "group_id": "g", "generation_id_or_member_epoch": -1, "member_id": "", "retention_time_ms": 200,
        "topics": [{"name": TOPIC, "partitions": [{"partition_index": 0, "committed_offset": 5, "committed_metadata": ""}]}]})
    assert committed["topics"][0]["partitions"][0]["error_code"] == ErrorCode.NONE
    time.sleep(1)  # retention 200 ms, a sweep every 100 ms
    assert _committed(bootstrap, "g") == [5]
    producer.abort_transaction(30)
    assert wait_for(lambda: _committed(bootstrap, "g") == [-1], timeout=10)


def test_expiry_keeps_a_group_whose_only_offsets_are_pending(broker) -> None:
    """A group with no committed offset but one pending in a transaction is not deleted as
    empty by the expiry sweep; the commit then gives it its offset."""
    bootstrap = broker.bootstrap_servers
    producer = offsets_in_transaction(bootstrap, "tx", "g", TOPIC, {0: 100})
    time.sleep(0.5)  # a sweep every 100 ms
    listed = call_once(bootstrap, ApiKey.LIST_GROUPS, 4, {"states_filter": []})
    assert "g" in [group["group_id"] for group in listed["groups"]]
    producer.commit_transaction(30)
    assert _committed(bootstrap, "g") == [100]
