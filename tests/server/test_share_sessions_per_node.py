"""A cluster's nodes each keep a member's share session of their own, as each Kafka broker keeps
its ShareSessionCache: a member's ShareFetches go to each partition's leader, one session per
leader, and one node's epochs, partitions and closing leave the other nodes' sessions alone.

Raw requests over real sockets to two leaders: stock clients recover from a session another
node disturbed (at the cost of lost acknowledgements and redeliveries, which is how franz-go's
TestShareGroupETL lost records on three nodes), so only the requests show which session answered.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from ottla.server.admin.client import Connection
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.records.record import Record, build_batch

TOPIC = "spread"
GROUP = "per-node"
RECORDS = 5
ACCEPT = 1


@pytest.fixture(scope="module")
def cluster() -> Iterator[ThreadedBroker]:
    with running_broker(nodes=3, data_dir=None) as running:
        running.create_topic(TOPIC, partitions=3, replication_factor=3)
        yield running


def _connect(cluster: ThreadedBroker, node: int) -> Connection:
    host, port = cluster.bootstrap_servers.split(",")[node - 1].rsplit(":", 1)
    return Connection(host, int(port), 30.0, "share-sessions-per-node")


def _share_fetch(connection: Connection, member: str, epoch: int, partitions: list[int], topic_id: bytes) -> dict[str, Any]:
    topics = [{"topic_id": topic_id, "partitions": [{"partition_index": index, "acknowledgement_batches": []} for index in partitions]}]
    return connection.request(ApiKey.SHARE_FETCH, 1, {
        "group_id": GROUP, "member_id": member, "share_session_epoch": epoch, "max_wait_ms": 0, "min_bytes": 1,
        "max_bytes": 1 << 20, "max_records": 500, "batch_size": 500, "topics": topics if partitions else [],
        "forgotten_topics_data": []})


def _acquired(answer: dict[str, Any]) -> dict[int, list[tuple[int, int]]]:
    """Partition -> the (first, last) offsets acquired, of every partition the answer names."""
    return {p["partition_index"]: [(r["first_offset"], r["last_offset"]) for r in p["acquired_records"]]
            for t in answer["responses"] for p in t["partitions"]}


def test_each_leader_keeps_its_own_share_session_of_a_member(cluster: ThreadedBroker) -> None:
    leaders = {cluster.partition_state(TOPIC, index)["leader"]: index for index in range(3)}
    (node_a, first), (node_b, second) = sorted(leaders.items())[:2]
    a, b = _connect(cluster, node_a), _connect(cluster, node_b)
    try:
        topic_id = bytes(cluster.broker.storage.topic(TOPIC).topic_id)
        member = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        # Each leader's session opens on its partition, which starts at its (empty) log's end.
        assert _share_fetch(a, member, 0, [first], topic_id)["error_code"] == ErrorCode.NONE
        assert _share_fetch(b, member, 0, [second], topic_id)["error_code"] == ErrorCode.NONE
        for connection, index in ((a, first), (b, second)):
            batch = build_batch([Record(i, int(time.time() * 1000), None, b"job", ()) for i in range(RECORDS)])
            produced = connection.request(ApiKey.PRODUCE, 11, {"transactional_id": None, "acks": -1, "timeout_ms": 5000,
                "topic_data": [{"name": TOPIC, "partition_data": [{"index": index, "records": batch}]}]})
            assert produced["responses"][0]["partition_responses"][0]["error_code"] == ErrorCode.NONE

        # Each session goes on from its own epoch 1 and hands out its own partition only.
        from_a, from_b = _share_fetch(a, member, 1, [], topic_id), _share_fetch(b, member, 1, [], topic_id)
        assert (from_a["error_code"], _acquired(from_a)) == (ErrorCode.NONE, {first: [(0, RECORDS - 1)]})
        assert (from_b["error_code"], _acquired(from_b)) == (ErrorCode.NONE, {second: [(0, RECORDS - 1)]})

        # A's session ends (as a consumer's close ends each in turn); what B handed out stays
        # the member's, and B's session takes its acknowledgement.
        closed = a.request(ApiKey.SHARE_ACKNOWLEDGE, 1, {"group_id": GROUP, "member_id": member, "share_session_epoch": -1, "topics": []})
        assert closed["error_code"] == ErrorCode.NONE
        acknowledged = b.request(ApiKey.SHARE_ACKNOWLEDGE, 1, {
            "group_id": GROUP, "member_id": member, "share_session_epoch": 2, "topics": [{"topic_id": topic_id, "partitions": [
                {"partition_index": second, "acknowledgement_batches": [
                    {"first_offset": 0, "last_offset": RECORDS - 1, "acknowledge_types": [ACCEPT]}]}]}]})
        assert acknowledged["error_code"] == ErrorCode.NONE
        assert acknowledged["responses"][0]["partitions"][0]["error_code"] == ErrorCode.NONE
        share = cluster.broker.share
        assert share.start_offset(GROUP, topic_id, second) == RECORDS
        # A's close released what A handed out: a new session there acquires it again.
        again = _share_fetch(a, member, 0, [first], topic_id)
        assert (again["error_code"], _acquired(again)) == (ErrorCode.NONE, {first: [(0, RECORDS - 1)]})
    finally:
        a.close()
        b.close()
