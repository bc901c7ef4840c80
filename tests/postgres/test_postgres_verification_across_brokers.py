"""The sequence rules of a verified transactional batch (KIP-890; Kafka 4.4's
ProducerAppendInfo.checkSequence against the leader's VerificationStateEntry) among brokers over
one PostgreSQL: the verification a partition's leader recorded outlives the leader's copy of the
producer state being replaced by the database's (another broker's marker moved it), and a batch
whose coordinator is another broker is held to the same rules as one coordinated here."""

from __future__ import annotations

import itertools
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from compat.harness import PostgresBrokers
from ottla.server.admin.client import KafkaClient
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.records import Record, build_batch

pytestmark = [pytest.mark.external, pytest.mark.slow]

_DEADLINE = 60.0
_TXN = 1  # FindCoordinator key type


def _retrying(call: Any) -> dict[str, Any]:
    """A coordinator's answer once it is not loading (brokers just started)."""
    deadline = time.monotonic() + _DEADLINE
    while True:
        answer: dict[str, Any] = call()
        if answer.get("error_code") not in (ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, ErrorCode.NOT_COORDINATOR):
            return answer
        assert time.monotonic() < deadline, answer
        time.sleep(0.1)


def _coordinator(client: KafkaClient, key: str) -> int:
    entry = _retrying(lambda: client.call(ApiKey.FIND_COORDINATOR, {"key_type": _TXN, "coordinator_keys": [key]}, highest=4)[1]["coordinators"][0])
    assert entry["error_code"] == ErrorCode.NONE, entry
    return int(entry["node_id"])


def _id_on(client: KafkaClient, prefix: str, wanted: int | None = None, avoid: int | None = None) -> str:
    """A transactional id coordinated by `wanted` (or by any node but `avoid`)."""
    for attempt in itertools.count():
        key = f"{prefix}-{attempt}"
        node = _coordinator(client, key)
        if (wanted is None or node == wanted) and node != avoid:
            return key
        assert attempt < 200, f"no {prefix} key for node {wanted}"
    raise AssertionError("unreachable")


class _Producer:
    """One transactional producer in raw requests, each sent to the node the test names."""

    def __init__(self, client: KafkaClient, topic: str, transactional_id: str, coordinator: int, leader: int) -> None:
        self.client, self.topic, self.transactional_id = client, topic, transactional_id
        self.coordinator, self.leader = coordinator, leader
        init = _retrying(lambda: client.call(ApiKey.INIT_PRODUCER_ID, {"transactional_id": transactional_id, "transaction_timeout_ms": 60000,
                                                                      "producer_id": -1, "producer_epoch": -1}, node=coordinator, highest=5)[1])
        assert init["error_code"] == ErrorCode.NONE, init
        self.producer_id, self.epoch = init["producer_id"], init["producer_epoch"]

    def produce(self, version: int, sequence: int) -> ErrorCode:
        batch = build_batch([Record(0, 1_700_000_000_000, b"k", f"{self.transactional_id}-{sequence}".encode())], producer_id=self.producer_id,
                            producer_epoch=self.epoch, base_sequence=sequence, transactional=True)
        used, answer = self.client.call(ApiKey.PRODUCE, {"acks": -1, "timeout_ms": 5000, "transactional_id": self.transactional_id, "topic_data": [
            {"name": self.topic, "partition_data": [{"index": 0, "records": batch}]}]}, node=self.leader, highest=version)
        assert used == version
        return ErrorCode(answer["responses"][0]["partition_responses"][0]["error_code"])

    def add_partition(self) -> ErrorCode:
        """AddPartitionsToTxn v3, as a transaction version 1 client sends it."""
        answer = self.client.call(ApiKey.ADD_PARTITIONS_TO_TXN, {
            "v3_and_below_transactional_id": self.transactional_id, "v3_and_below_producer_id": self.producer_id,
            "v3_and_below_producer_epoch": self.epoch, "v3_and_below_topics": [{"name": self.topic, "partitions": [0]}]},
            node=self.coordinator, highest=3)[1]
        return ErrorCode(answer["results_by_topic_v3_and_below"][0]["results_by_partition"][0]["partition_error_code"])

    def commit(self) -> ErrorCode:
        answer = self.client.call(ApiKey.END_TXN, {"transactional_id": self.transactional_id, "producer_id": self.producer_id,
                                                   "producer_epoch": self.epoch, "committed": True}, node=self.coordinator, highest=5)[1]
        self.epoch = answer["producer_epoch"]
        return ErrorCode(answer["error_code"])


def _topic_led(client: KafkaClient, topic: str) -> int:
    """Create `topic` (one partition) and return its leader once it has one."""
    created = client.call(ApiKey.CREATE_TOPICS, {"topics": [{"name": topic, "num_partitions": 1, "replication_factor": 1,
                                                             "assignments": [], "configs": []}], "timeout_ms": 30000}, highest=7)[1]
    assert created["topics"][0]["error_code"] == ErrorCode.NONE, created
    deadline = time.monotonic() + _DEADLINE
    while True:
        found = client.metadata([topic])["topics"][0]
        if not found["error_code"] and found["partitions"] and found["partitions"][0]["leader_id"] >= 0:
            return int(found["partitions"][0]["leader_id"])
        assert time.monotonic() < deadline, found
        time.sleep(0.2)


def test_a_verification_outlives_the_leaders_copy_being_reloaded(postgres_url: str, tmp_path: Path) -> None:
    with PostgresBrokers(tmp_path, storage=postgres_url, nodes=2) as brokers, KafkaClient(brokers.bootstrap) as client:
        topic = f"verified-reload-{uuid.uuid4().hex[:8]}"
        leader = _topic_led(client, topic)
        verified = _Producer(client, topic, _id_on(client, f"here-{topic}", wanted=leader), leader, leader)
        other_id = _id_on(client, f"there-{topic}", avoid=leader)
        other = _Producer(client, topic, other_id, _coordinator(client, other_id), leader)
        # Transaction version 1: a batch at 0 the coordinator had not added leaves its verification.
        assert verified.produce(11, 0) is ErrorCode.TRANSACTION_ABORTABLE
        # Another producer's transaction, whose marker its coordinator (the other broker) writes
        # into the database: the leader's copy of the producer state is replaced by the database's.
        assert other.produce(12, 0) is ErrorCode.NONE
        assert other.commit() is ErrorCode.NONE
        assert verified.add_partition() is ErrorCode.NONE
        assert verified.produce(11, 5) is ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
        assert verified.produce(11, 0) is ErrorCode.NONE
        assert verified.produce(11, 1) is ErrorCode.NONE


def test_a_batch_verified_by_another_brokers_coordinator_is_held_to_what_was_verified(postgres_url: str, tmp_path: Path) -> None:
    with PostgresBrokers(tmp_path, storage=postgres_url, nodes=2) as brokers, KafkaClient(brokers.bootstrap) as client:
        topic = f"verified-remote-{uuid.uuid4().hex[:8]}"
        leader = _topic_led(client, topic)
        tv2_id = _id_on(client, f"tv2-{topic}", avoid=leader)
        tv2 = _Producer(client, topic, tv2_id, _coordinator(client, tv2_id), leader)
        # Transaction version 2: a producer unknown to the partition starts at 0.
        assert tv2.produce(12, 3) is ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
        assert tv2.produce(12, 0) is ErrorCode.NONE
        assert tv2.produce(12, 1) is ErrorCode.NONE
        # Transaction version 1: the refused batch at 0 left its verification, which the batch
        # at 5 may not get ahead of; once the batch at 0 is in, it is used up.
        tv1_id = _id_on(client, f"tv1-{topic}", avoid=leader)
        tv1 = _Producer(client, topic, tv1_id, _coordinator(client, tv1_id), leader)
        assert tv1.produce(11, 0) is ErrorCode.TRANSACTION_ABORTABLE
        assert tv1.add_partition() is ErrorCode.NONE
        assert tv1.produce(11, 5) is ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
        assert tv1.produce(11, 0) is ErrorCode.NONE
        assert tv1.produce(11, 1) is ErrorCode.NONE
