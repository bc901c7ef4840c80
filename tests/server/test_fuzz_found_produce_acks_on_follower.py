"""A transactional Produce with invalid acks sent to a follower: Kafka 4.4 verifies only the
partitions whose records are transactional (ReplicaManager.handleProduceAppend, on the leader)
before appendRecords refuses the acks, so a partition of plain records is INVALID_REQUIRED_ACKS
on a follower too, not NOT_LEADER_OR_FOLLOWER (seen on the reference cluster, seed 10
--cluster, input 1815)."""

from __future__ import annotations

from typing import Any

from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.records import Record, build_batch

from kafka_wire import WireClient


def _partition(index: int, transactional: bool) -> dict[str, Any]:
    batch = build_batch([Record(0, -1, None, b"v")], producer_id=7 if transactional else -1, producer_epoch=0 if transactional else -1,
                        base_sequence=0 if transactional else -1, transactional=transactional)
    return {"index": index, "records": batch}


def test_plain_records_of_a_transactional_produce_meet_the_acks_check_before_leadership() -> None:
    with running_broker(nodes=3, data_dir=None) as cluster:
        cluster.create_topic("acks-first", partitions=1, replication_factor=2)
        state = cluster.partition_state("acks-first", 0)
        follower = next(node for node in state["replicas"] if node != state["leader"])
        conn = WireClient(cluster.bootstrap_servers.split(",")[follower - 1])
        try:
            answer = conn.call(ApiKey.PRODUCE, 6, {"transactional_id": "acks-first-txn", "acks": -7906, "timeout_ms": 5000, "topic_data": [
                {"name": "acks-first-missing", "partition_data": [_partition(0, transactional=True)]},
                {"name": "acks-first", "partition_data": [_partition(0, transactional=False)]}]})
        finally:
            conn.close()
    errors = {(t["name"], p["index"]): p["error_code"] for t in answer["responses"] for p in t["partition_responses"]}
    assert errors == {("acks-first-missing", 0): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ("acks-first", 0): ErrorCode.INVALID_REQUIRED_ACKS}
