"""Fetch in cluster mode checks the client's current leader epoch before leadership, as Kafka's
Partition.localLogWithEpochOrThrow does on any replica (getLocalLog: the epoch, then
requireLeader): a stale epoch is FENCED_LEADER_EPOCH, a future one UNKNOWN_LEADER_EPOCH, even
on a follower a consumer may not read from (before v11, KIP-392); a node without a replica
answers NOT_LEADER_OR_FOLLOWER whatever the epoch (ReplicaManager.getPartitionOrError)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ottla.server.admin.client import Connection
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode


@pytest.fixture
def cluster() -> Iterator[ThreadedBroker]:
    with running_broker(nodes=3, data_dir=None) as broker:
        yield broker


def _connect(cluster: ThreadedBroker, node: int) -> Connection:
    host, port = cluster.bootstrap_servers.split(",")[node - 1].rsplit(":", 1)
    return Connection(host, int(port), 10.0, "fetch-epoch-test")


def _fetch_error(connection: Connection, version: int, topic: str, claimed_epoch: int) -> Any:
    answer = connection.request(ApiKey.FETCH, version, {
        "replica_id": -1, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1 << 20, "isolation_level": 0, "session_id": 0,
        "session_epoch": -1, "rack_id": "", "forgotten_topics_data": [], "topics": [{"topic": topic, "partitions": [
            {"partition": 0, "current_leader_epoch": claimed_epoch, "fetch_offset": 0, "last_fetched_epoch": -1,
             "log_start_offset": -1, "partition_max_bytes": 1 << 20}]}]})
    return answer["responses"][0]["partitions"][0]["error_code"]


def test_a_fetch_is_checked_for_its_leader_epoch_before_leadership(cluster: ThreadedBroker) -> None:
    cluster.create_topic("fetch-epochs", partitions=1, replication_factor=2)
    state = cluster.partition_state("fetch-epochs", 0)
    stranger = next(node for node in (1, 2, 3) if node not in state["replicas"])
    cluster.stop_node(state["leader"])
    cluster.start_node(state["leader"])
    moved = cluster.partition_state("fetch-epochs", 0)
    assert moved["leader_epoch"] >= 1
    follower = next(node for node in moved["replicas"] if node != moved["leader"])
    claims = (moved["leader_epoch"] - 1, moved["leader_epoch"] + 1, -1)
    answers: dict[tuple[int, int], list[int]] = {}
    for node in (moved["leader"], follower, stranger):
        connection = _connect(cluster, node)
        for version in (10, 12):
            answers[(node, version)] = [_fetch_error(connection, version, "fetch-epochs", claimed) for claimed in claims]
        connection.close()
    checked = [ErrorCode.FENCED_LEADER_EPOCH, ErrorCode.UNKNOWN_LEADER_EPOCH]
    not_leader = ErrorCode.NOT_LEADER_FOR_PARTITION
    assert answers[(moved["leader"], 10)] == answers[(moved["leader"], 12)] == [*checked, ErrorCode.NONE]
    assert answers[(follower, 10)] == [*checked, not_leader]
    assert answers[(follower, 12)] == [*checked, ErrorCode.NONE]
    assert answers[(stranger, 10)] == answers[(stranger, 12)] == [not_leader] * 3
