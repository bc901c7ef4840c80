"""Transactional offsets replayed after a restart as Kafka keeps them live, with real clients
against a real broker restarted on its data dir.

Kafka's OffsetMetadataManager gives each offset the log offset of its record (recordOffset):
replay puts a TxnOffsetCommit record in the pending offsets of its producer where it stands in
the log, leaves it there when a plain OffsetCommit for the same partition follows, and
replayEndTransactionMarker makes it the committed offset only if its record comes after the
committed one's. Replaying `__consumer_offsets` must reach what the broker answered live."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from txn_offsets import offsets_in_transaction
from tests.server.test_features import Client

TOPIC = "t"


@pytest.fixture
def broker(tmp_path) -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=tmp_path / "data", group_initial_rebalance_delay_ms=0) as handle:
        handle.create_topic(TOPIC, partitions=1)
        yield handle


def _state(bootstrap: str, group: str) -> tuple[int, int]:
    """t-0 as OffsetFetch v7 sees it: the error asking for stable offsets (UNSTABLE_OFFSET_COMMIT
    while a transaction holds an offset for it), and the committed offset asking without."""
    client = Client(bootstrap)
    try:
        found = []
        for require_stable in (True, False):
            answer = client.call(ApiKey.OFFSET_FETCH, 7, {"group_id": group, "require_stable": require_stable,
                                                          "topics": [{"name": TOPIC, "partition_indexes": [0]}]})
            assert answer["error_code"] == ErrorCode.NONE, answer
            found.append(answer["topics"][0]["partitions"][0])
    finally:
        client.close()
    return found[0]["error_code"], found[1]["committed_offset"]


def test_the_later_record_wins_when_the_older_transaction_commits_first(broker) -> None:
    """tx-a's offset 100 is written before tx-b's 200; tx-a commits, then tx-b: tx-b's record is
    the later one, so 200 is committed, live and after a restart."""
    bootstrap = broker.bootstrap_servers
    older = offsets_in_transaction(bootstrap, "tx-a", "g", TOPIC, {0: 100})
    newer = offsets_in_transaction(bootstrap, "tx-b", "g", TOPIC, {0: 200})
    older.commit_transaction(30)
    assert _state(bootstrap, "g") == (ErrorCode.UNSTABLE_OFFSET_COMMIT, 100)
    newer.commit_transaction(30)
    assert _state(bootstrap, "g") == (ErrorCode.NONE, 200)
    broker.restart()
    assert _state(bootstrap, "g") == (ErrorCode.NONE, 200)


def test_the_later_record_wins_when_the_newer_transaction_commits_first(broker) -> None:
    """The same two transactions committing in the other order: tx-a's older record, committed
    last, does not replace tx-b's."""
    bootstrap = broker.bootstrap_servers
    older = offsets_in_transaction(bootstrap, "tx-a", "g", TOPIC, {0: 100})
    newer = offsets_in_transaction(bootstrap, "tx-b", "g", TOPIC, {0: 200})
    newer.commit_transaction(30)
    older.commit_transaction(30)
    assert _state(bootstrap, "g") == (ErrorCode.NONE, 200)
    broker.restart()
    assert _state(bootstrap, "g") == (ErrorCode.NONE, 200)


@pytest.mark.parametrize("commit", [True, False], ids=["commit", "abort"])
def test_a_plain_commit_leaves_an_open_transactions_offset_pending_across_a_restart(broker, commit: bool) -> None:
    """The transaction's 100, then a plain commit of 200, then a restart with the transaction
    still open: its offset is still pending (OffsetFetch with require_stable answers
    UNSTABLE_OFFSET_COMMIT), and when it ends, by a commit or an abort, 200 stays: the
    transaction's record is the older."""
    bootstrap = broker.bootstrap_servers
    producer = offsets_in_transaction(bootstrap, "tx", "g", TOPIC, {0: 100})
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions("g", [TopicPartition(TOPIC, 0, 200)])])["g"].result(30)
    assert _state(bootstrap, "g") == (ErrorCode.UNSTABLE_OFFSET_COMMIT, 200)
    broker.restart()
    assert _state(bootstrap, "g") == (ErrorCode.UNSTABLE_OFFSET_COMMIT, 200)
    if commit:
        producer.commit_transaction(30)
    else:
        producer.abort_transaction(30)
    assert _state(bootstrap, "g") == (ErrorCode.NONE, 200)
    broker.restart()
    assert _state(bootstrap, "g") == (ErrorCode.NONE, 200)
