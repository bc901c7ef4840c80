"""Fetch's last_fetched_epoch (v12+, KIP-320/KIP-595) answered as Kafka 4.4's Partition.readRecords
answers it, for a consumer's fetch as for a follower's: before the read, the largest epoch at or
below the last fetched one and where it ends here (lastOffsetForLeaderEpoch) decide. An epoch the
partition does not know is OFFSET_OUT_OF_RANGE; one lower than the fetcher's, or ending before its
fetch offset, is answered as `diverging_epoch` with no records; a negative one names none.
The expected answers are those the reference Kafka 4.4 gave to the same requests: on one node
(epoch 0), and after its epoch grew to 2 with no batch in epoch 1 (epochs 0 from 0, 2 from 5)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ottla.server.admin.client import Connection
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.records import Record, build_batch

OUT_OF_RANGE = (ErrorCode.OFFSET_OUT_OF_RANGE, -1, -1, -1, None, False, None)


def _connect(address: str) -> Connection:
    host, port = address.rsplit(":", 1)
    return Connection(host, int(port), 10.0, "diverging-epoch-test")


def _produce(connection: Connection, topic: str, count: int) -> None:
    """`count` batches of one record each."""
    for i in range(count):
        batch = build_batch([Record(0, 1_700_000_000_000, None, b"v%d" % i, ())])
        answer = connection.request(ApiKey.PRODUCE, 9, {"acks": -1, "timeout_ms": 5000, "transactional_id": None, "topic_data": [
            {"name": topic, "partition_data": [{"index": 0, "records": batch}]}]})
        assert answer["responses"][0]["partition_responses"][0]["error_code"] == ErrorCode.NONE


def _topic_id(connection: Connection, topic: str) -> bytes:
    described = connection.request(ApiKey.METADATA, 12, {"topics": [{"name": topic, "topic_id": bytes(16)}], "allow_auto_topic_creation": False,
                                                         "include_topic_authorized_operations": False})["topics"][0]
    return bytes(described["topic_id"])


def _fetch(connection: Connection, version: int, topic: str, topic_id: bytes, offset: int, last_fetched_epoch: int,
           isolation_level: int = 0) -> tuple[Any, ...]:
    """(error, high watermark, last stable offset, log start, aborted transactions, whether records
    came, diverging epoch) of one partition's answer."""
    answer = connection.request(ApiKey.FETCH, version, {
        "replica_id": -1, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1 << 20, "isolation_level": isolation_level, "session_id": 0,
        "session_epoch": -1, "rack_id": "", "forgotten_topics_data": [], "topics": [{"topic": topic, "topic_id": topic_id, "partitions": [
            {"partition": 0, "current_leader_epoch": -1, "fetch_offset": offset, "last_fetched_epoch": last_fetched_epoch,
             "log_start_offset": -1, "partition_max_bytes": 1 << 20}]}]})
    partition = answer["responses"][0]["partitions"][0]
    return (partition["error_code"], partition["high_watermark"], partition["last_stable_offset"], partition["log_start_offset"],
            partition["aborted_transactions"], bool(partition["records"]), partition.get("diverging_epoch") or None)


@pytest.fixture
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None) as running:
        yield running


def test_one_node_checks_the_last_fetched_epoch_against_its_one_epoch(broker: ThreadedBroker) -> None:
    broker.create_topic("diverging", 1)
    connection = _connect(broker.bootstrap_servers)
    _produce(connection, "diverging", 5)
    topic_id = _topic_id(connection, "diverging")
    records = (ErrorCode.NONE, 5, 5, 0, None, True, None)
    at_end = (ErrorCode.NONE, 5, 5, 0, None, False, None)
    diverged = (ErrorCode.NONE, 5, 5, 0, None, False, {"epoch": 0, "end_offset": 5})
    for version in (12, 16):
        for last_fetched_epoch in (-2, -1, 0):
            answers = [_fetch(connection, version, "diverging", topic_id, offset, last_fetched_epoch) for offset in (0, 3, 5, 7)]
            # Past the log end: epoch 0 ends before the fetch offset, where no epoch is named the read is out of range.
            assert answers == [records, records, at_end, diverged if last_fetched_epoch == 0 else OUT_OF_RANGE], (version, last_fetched_epoch)
        for last_fetched_epoch in (1, 5):  # an epoch this node never had
            assert [_fetch(connection, version, "diverging", topic_id, offset, last_fetched_epoch) for offset in (0, 5, 7)] == [OUT_OF_RANGE] * 3
    # read_committed too: FetchDataInfo.empty carries no aborted transactions (null, not []).
    assert _fetch(connection, 12, "diverging", topic_id, 7, 0, isolation_level=1) == diverged
    assert _fetch(connection, 12, "diverging", topic_id, 5, 0, isolation_level=1) == (ErrorCode.NONE, 5, 5, 0, [], False, None)
    connection.close()


def test_a_cluster_checks_the_last_fetched_epoch_against_the_partitions_epoch_history() -> None:
    with running_broker(nodes=3, data_dir=None) as cluster:
        cluster.create_topic("diverging", partitions=1, replication_factor=2)
        state = cluster.partition_state("diverging", 0)
        leader = state["leader"]
        follower = next(node for node in state["replicas"] if node != leader)
        addresses = dict(zip((1, 2, 3), cluster.bootstrap_servers.split(",")))
        connection = _connect(addresses[leader])
        _produce(connection, "diverging", 5)
        # Epoch 1 (from 5) has no batch and goes when epoch 2 starts at the same offset, as in
        # Kafka's LeaderEpochFileCache: the history is epoch 0 from 0, epoch 2 from 5.
        cluster.move_leader("diverging", 0, follower)
        cluster.move_leader("diverging", 0, leader)
        assert cluster.partition_state("diverging", 0)["leader_epoch"] == 2
        _produce(connection, "diverging", 3)
        topic_id = _topic_id(connection, "diverging")
        records = (ErrorCode.NONE, 8, 8, 0, None, True, None)
        at_end = (ErrorCode.NONE, 8, 8, 0, None, False, None)

        def diverged(epoch: int, end_offset: int) -> tuple[Any, ...]:
            return (ErrorCode.NONE, 8, 8, 0, None, False, {"epoch": epoch, "end_offset": end_offset})

        offsets = (0, 4, 5, 6, 8, 9)
        expected = {
            0: [records, records, records, diverged(0, 5), diverged(0, 5), diverged(0, 5)],
            1: [diverged(0, 5)] * 6,  # the largest epoch at or below 1 is 0, lower than the fetcher's
            2: [records, records, records, records, at_end, diverged(2, 8)],
            3: [OUT_OF_RANGE] * 6,
        }
        follower_connection = _connect(addresses[follower])
        # The leader, and a follower serving a consumer (v11+, KIP-392), answer from the same history.
        for serving, version in ((connection, 12), (connection, 16), (follower_connection, 12)):
            for last_fetched_epoch, answers in expected.items():
                assert [_fetch(serving, version, "diverging", topic_id, offset, last_fetched_epoch) for offset in offsets] == answers, (
                    serving.address, version, last_fetched_epoch)
        follower_connection.close()
        connection.close()


def test_an_incremental_session_sends_a_diverging_partition_whose_offsets_stand(broker: ThreadedBroker) -> None:
    """CachedPartition.maybeUpdateResponseData sends a diverging epoch (FetchResponse.isDivergingEpoch)
    even when the high watermark and log start are those the session last sent."""
    broker.create_topic("diverging-session", 1)
    connection = _connect(broker.bootstrap_servers)
    _produce(connection, "diverging-session", 5)
    topic_id = _topic_id(connection, "diverging-session")

    def fetch(session_id: int, epoch: int, last_fetched_epoch: int) -> Any:
        return connection.request(ApiKey.FETCH, 13, {
            "replica_id": -1, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1 << 20, "isolation_level": 0, "session_id": session_id,
            "session_epoch": epoch, "rack_id": "", "forgotten_topics_data": [], "topics": [{"topic_id": topic_id, "partitions": [
                {"partition": 0, "current_leader_epoch": -1, "fetch_offset": 7, "last_fetched_epoch": last_fetched_epoch,
                 "log_start_offset": -1, "partition_max_bytes": 1 << 20}]}]})

    opened = fetch(0, 0, -1)  # past the log end with no epoch named: out of range, in a new session
    assert opened["session_id"] != 0 and opened["responses"][0]["partitions"][0]["error_code"] == ErrorCode.OFFSET_OUT_OF_RANGE
    settled = fetch(opened["session_id"], 1, 0)
    # The error sent cleared the partition's high watermark, so this answer goes out whatever it holds.
    assert settled["responses"][0]["partitions"][0]["diverging_epoch"] == {"epoch": 0, "end_offset": 5}
    again = fetch(opened["session_id"], 2, 0)
    assert [partition.get("diverging_epoch") for topic in again["responses"] for partition in topic["partitions"]] == [{"epoch": 0, "end_offset": 5}]


def test_a_negative_current_leader_epoch_names_none(broker: ThreadedBroker) -> None:
    """FetchRequest.optionalEpoch reads every negative epoch as none: the reference Kafka 4.4 served
    current_leader_epoch -2 and -100 as -1, where 1, ahead of its epoch 0, is UNKNOWN_LEADER_EPOCH."""
    broker.create_topic("unnamed-epoch", 1)
    connection = _connect(broker.bootstrap_servers)
    _produce(connection, "unnamed-epoch", 2)
    topic_id = _topic_id(connection, "unnamed-epoch")
    answers = []
    for current_leader_epoch in (-1, -2, -100, 0, 1):
        answer = connection.request(ApiKey.FETCH, 13, {
            "replica_id": -1, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1 << 20, "isolation_level": 0, "session_id": 0,
            "session_epoch": -1, "rack_id": "", "forgotten_topics_data": [], "topics": [{"topic_id": topic_id, "partitions": [
                {"partition": 0, "current_leader_epoch": current_leader_epoch, "fetch_offset": 0, "last_fetched_epoch": -1,
                 "log_start_offset": -1, "partition_max_bytes": 1 << 20}]}]})
        partition = answer["responses"][0]["partitions"][0]
        answers.append((partition["error_code"], bool(partition["records"])))
    assert answers == [(ErrorCode.NONE, True)] * 4 + [(ErrorCode.UNKNOWN_LEADER_EPOCH, False)]
