"""Transactions across brokers over one PostgreSQL: three `ottla serve --storage postgresql://...`
processes, a transactional producer whose transactional id's coordinator, the partition's leader
and its consumer group's coordinator are three different brokers. The partition's leader asks the
transaction's coordinator over the network whether (Produce v12+: adds) the partition is in the
transaction, and the group's coordinator asks it whether the offsets may join (KIP-890), so the
transactions commit and abort as on one broker: a read_committed consumer sees exactly the
committed records."""

from __future__ import annotations

import itertools
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka import TopicPartition as ConfluentPartition
from confluent_kafka.admin import AdminClient, NewTopic

from compat.harness import PostgresBrokers
from ottla.server.admin.client import KafkaClient
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.records import Record, build_batch

pytestmark = [pytest.mark.external, pytest.mark.slow]

_DEADLINE = 60.0
_PARTITIONS = 3
_TXN, _GROUP = 1, 0  # FindCoordinator key types


def _coordinator(client: KafkaClient, key_type: int, key: str) -> int:
    """The node FindCoordinator names for `key`, once the cluster has one."""
    deadline = time.monotonic() + _DEADLINE
    while True:
        entry = client.call(ApiKey.FIND_COORDINATOR, {"key_type": key_type, "coordinator_keys": [key]}, highest=4)[1]["coordinators"][0]
        if not entry["error_code"]:
            return int(entry["node_id"])
        assert time.monotonic() < deadline, f"no coordinator for {key}: {entry}"
        time.sleep(0.2)


def _key_on(client: KafkaClient, key_type: int, prefix: str, avoid: set[int]) -> tuple[str, int]:
    """A key whose coordinator is none of the nodes in `avoid`, and that coordinator."""
    for attempt in itertools.count():
        key = f"{prefix}-{attempt}"
        node = _coordinator(client, key_type, key)
        if node not in avoid:
            return key, node
        assert attempt < 200, f"every {prefix} key is coordinated by {avoid}"
    raise AssertionError("unreachable")


def _read_committed(bootstrap: str, topic: str, index: int, end: int) -> list[bytes]:
    """Every committed value of partition `index`, read until the consumer's position passes `end`
    (the last transaction's marker)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4().hex[:6]}", "enable.auto.commit": False,
                         "isolation.level": "read_committed"})
    try:
        consumer.assign([ConfluentPartition(topic, index, 0)])
        values: list[bytes] = []
        deadline = time.monotonic() + _DEADLINE
        while consumer.position([ConfluentPartition(topic, index)])[0].offset < end:
            assert time.monotonic() < deadline, f"read {len(values)} values, position short of {end}"
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                values.append(message.value())
        return values
    finally:
        consumer.close()


def _tv2_rounds(client: KafkaClient, topic: str, transactional_id: str, txn_node: int, leader: int, group: str, group_node: int) -> list[ErrorCode]:
    """A committed then an aborted transaction of one record each into partition 1 (led by
    `leader`), the first with the group's offsets: each request's error, in order."""
    init = client.call(ApiKey.INIT_PRODUCER_ID, {"transactional_id": transactional_id, "transaction_timeout_ms": 60000,
                                                 "producer_id": -1, "producer_epoch": -1}, node=txn_node, highest=5)[1]
    assert init["error_code"] == ErrorCode.NONE, init
    producer_id, epoch = init["producer_id"], init["producer_epoch"]
    errors: list[ErrorCode] = []
    for value, commit in ((b"tv2-committed", True), (b"tv2-aborted", False)):
        batch = build_batch([Record(0, 1_700_000_000_000, b"k", value)], producer_id=producer_id, producer_epoch=epoch, base_sequence=0, transactional=True)
        version, produced = client.call(ApiKey.PRODUCE, {"acks": -1, "timeout_ms": 30000, "transactional_id": transactional_id, "topic_data": [
            {"name": topic, "partition_data": [{"index": 1, "records": batch}]}]}, node=leader, highest=12)
        assert version == 12
        errors.append(ErrorCode(produced["responses"][0]["partition_responses"][0]["error_code"]))
        if commit:
            version, offsets = client.call(ApiKey.TXN_OFFSET_COMMIT, {
                "transactional_id": transactional_id, "group_id": group, "producer_id": producer_id, "producer_epoch": epoch,
                "generation_id": -1, "member_id": "", "group_instance_id": None,
                "topics": [{"name": topic, "partitions": [{"partition_index": 2, "committed_offset": 7, "committed_leader_epoch": -1,
                                                           "committed_metadata": ""}]}]}, node=group_node, highest=5)
            assert version == 5
            errors.append(ErrorCode(offsets["topics"][0]["partitions"][0]["error_code"]))
        version, ended = client.call(ApiKey.END_TXN, {"transactional_id": transactional_id, "producer_id": producer_id,
                                                      "producer_epoch": epoch, "committed": commit}, node=txn_node, highest=5)
        assert version == 5
        errors.append(ErrorCode(ended["error_code"]))
        epoch = ended["producer_epoch"]
    return errors


def test_transactions_whose_coordinator_is_another_broker_commit_and_abort(postgres_url: str, tmp_path: Path) -> None:
    with PostgresBrokers(tmp_path, storage=postgres_url, nodes=3) as brokers:
        bootstrap = brokers.bootstrap
        topic = f"txn-across-{uuid.uuid4().hex[:8]}"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic(topic, _PARTITIONS, 1)])[topic].result(timeout=30)
        with KafkaClient(bootstrap) as client:
            deadline = time.monotonic() + _DEADLINE
            while True:
                found = client.metadata([topic])["topics"][0]
                leaders = {p["partition_index"]: p["leader_id"] for p in found["partitions"]} if not found["error_code"] else {}
                if len(leaders) == _PARTITIONS and all(leader >= 0 for leader in leaders.values()):
                    break
                assert time.monotonic() < deadline, f"no leaders for {topic}: {found}"
                time.sleep(0.2)
            index, leader = 0, leaders[0]
            transactional_id, txn_node = _key_on(client, _TXN, f"txn-{topic}", {leader})
            group, group_node = _key_on(client, _GROUP, f"group-{topic}", {leader, txn_node})
            # Transaction version 2 (as the Java client sends it): Produce v12 and TxnOffsetCommit
            # v5 add their partitions themselves, so their brokers ask the coordinator to add them.
            tv2_id, tv2_node = _key_on(client, _TXN, f"tv2-{topic}", {leaders[1], group_node})
            assert _tv2_rounds(client, topic, tv2_id, tv2_node, leaders[1], group, group_node) == [ErrorCode.NONE] * 5

        producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id, "enable.idempotence": True})
        producer.init_transactions(30)
        group_member = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
        committed: list[bytes] = []
        consumed_offset = 0
        for round_, commit in enumerate((True, False, True, False, True)):
            producer.begin_transaction()
            values = [f"{round_}-{n}".encode() for n in range(5)]
            for value in values:
                producer.produce(topic, value, partition=index)
            consumed_offset += 10
            producer.send_offsets_to_transaction([ConfluentPartition(topic, 1, consumed_offset)], group_member.consumer_group_metadata(), 30)
            producer.flush(30)
            if commit:
                producer.commit_transaction(30)
                committed.extend(values)
            else:
                producer.abort_transaction(30)
        group_member.close()
        # 25 records and 5 markers: the last marker is at offset 29.
        assert _read_committed(bootstrap, topic, index, 30) == committed
        assert _read_committed(bootstrap, topic, 1, 4) == [b"tv2-committed"]
        assert len({leader, txn_node, group_node}) == 3
