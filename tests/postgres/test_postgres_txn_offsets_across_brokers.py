"""Offsets sent in a transaction when the group's coordinator is a third broker, over one
PostgreSQL: three `ottla serve --storage postgresql://...` processes, a consume-transform-produce
transaction (confluent-kafka's send_offsets_to_transaction) whose transaction coordinator, group
coordinator and output partition's leader are three different brokers.

The group coordinator holds TxnOffsetCommit's offsets pending until the transaction's marker
reaches the group's `__consumer_offsets` partition: the transaction coordinator sends it
WriteTxnMarkers, as Kafka's TransactionMarkerChannelManager does, and keeps sending it while the
group's coordinator is away, until the partition has a new leader, which then completes them."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka import TopicPartition as ConfluentPartition
from confluent_kafka.admin import AdminClient, NewTopic

from compat.harness import PostgresBrokers
from ottla.server.admin.client import ClientError, KafkaClient
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

pytestmark = [pytest.mark.external, pytest.mark.slow]

_DEADLINE = 60.0
_TXN, _GROUP = 1, 0  # FindCoordinator key types
_OUTPUT, _INPUT = 0, 1  # the topic's partitions: written by the transactions, and "consumed" (its offsets sent)
# A short lease, so a killed broker's partitions move soon (Kafka's default is 9 s).
_LEASE = {"broker.session.timeout.ms": "3000", "broker.heartbeat.interval.ms": "500"}


def _until(check: Any, what: str) -> Any:
    """`check()`'s first truthy answer, asked until the deadline."""
    deadline = time.monotonic() + _DEADLINE
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.2)


def _coordinator(client: KafkaClient, key_type: int, key: str) -> int:
    """The node FindCoordinator names for `key` (-1 while there is none)."""
    entry = client.call(ApiKey.FIND_COORDINATOR, {"key_type": key_type, "coordinator_keys": [key]}, highest=4)[1]["coordinators"][0]
    return -1 if entry["error_code"] else int(entry["node_id"])


def _key_on(client: KafkaClient, key_type: int, prefix: str, avoid: set[int]) -> tuple[str, int]:
    """A key whose coordinator is none of the nodes in `avoid`, and that coordinator."""
    for attempt in itertools.count():
        key = f"{prefix}-{attempt}"
        node = _until(lambda key=key: (found := _coordinator(client, key_type, key)) >= 0 and found, f"{key} has a coordinator")
        if node not in avoid:
            return key, node
        assert attempt < 200, f"every {prefix} key is coordinated by {avoid}"
    raise AssertionError("unreachable")


def _offset_fetch(client: KafkaClient, node: int, group: str, topic: str, require_stable: bool) -> tuple[ErrorCode, int]:
    """The group's committed offset of the input partition as OffsetFetch v7 answers it on `node`."""
    answer = client.call(ApiKey.OFFSET_FETCH, {"group_id": group, "topics": [{"name": topic, "partition_indexes": [_INPUT]}],
                                               "require_stable": require_stable}, node=node, highest=7)[1]
    if answer["error_code"]:
        return ErrorCode(answer["error_code"]), -1
    partition = answer["topics"][0]["partitions"][0]
    return ErrorCode(partition["error_code"]), partition["committed_offset"]


def _committed(bootstrap: str, group: str, topic: str) -> int:
    """The input partition's offset a new consumer of the group starts from: librdkafka's
    committed() asks with require_stable (read_committed), retrying while offsets are pending."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False, "isolation.level": "read_committed"})
    try:
        return int(consumer.committed([ConfluentPartition(topic, _INPUT)], timeout=_DEADLINE)[0].offset)
    finally:
        consumer.close()


def _leaders(client: KafkaClient, topic: str) -> dict[int, int] | None:
    """Each partition's leader, once every partition of the topic has one."""
    found = client.metadata([topic])["topics"][0]
    led = {p["partition_index"]: p["leader_id"] for p in found["partitions"]} if not found["error_code"] else {}
    return led if len(led) == 2 and min(led.values()) >= 0 else None


def _txn_state(client: KafkaClient, node: int, transactional_id: str) -> str | None:
    """The transaction's state as DescribeTransactions answers it on `node` (None: an error)."""
    try:
        state = client.call(ApiKey.DESCRIBE_TRANSACTIONS, {"transactional_ids": [transactional_id]}, node=node)[1]["transaction_states"][0]
    except (ClientError, OSError):
        return None
    return None if state["error_code"] else str(state["transaction_state"])


def _read_committed(bootstrap: str, topic: str, end: int) -> list[bytes]:
    """Every committed value of the output partition, read until the position passes `end`."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4().hex[:6]}", "enable.auto.commit": False,
                         "isolation.level": "read_committed"})
    try:
        consumer.assign([ConfluentPartition(topic, _OUTPUT, 0)])
        values: list[bytes] = []
        deadline = time.monotonic() + _DEADLINE
        while consumer.position([ConfluentPartition(topic, _OUTPUT)])[0].offset < end:
            assert time.monotonic() < deadline, f"read {len(values)} values, position short of {end}"
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                values.append(message.value())
        return values
    finally:
        consumer.close()


def test_transactional_offsets_reach_a_group_coordinated_by_a_third_broker(postgres_url: str, tmp_path: Path) -> None:
    with PostgresBrokers(tmp_path, storage=postgres_url, nodes=3, settings=_LEASE) as brokers:
        bootstrap = brokers.bootstrap
        topic = f"txn-offsets-{uuid.uuid4().hex[:8]}"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(timeout=30)
        with KafkaClient(bootstrap) as client:
            leader = _until(lambda: _leaders(client, topic), f"{topic} has leaders")[_OUTPUT]
            transactional_id, txn_node = _key_on(client, _TXN, f"txn-{topic}", {leader})
            group, group_node = _key_on(client, _GROUP, f"group-{topic}", {leader, txn_node})

            producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id, "enable.idempotence": True})
            producer.init_transactions(30)
            member = Consumer({"bootstrap.servers": bootstrap, "group.id": group})

            def transaction(name: str, consumed: int) -> None:
                """A transaction that writes `name` and sends the input offset `consumed`, left open."""
                producer.begin_transaction()
                producer.produce(topic, name.encode(), partition=_OUTPUT)
                producer.send_offsets_to_transaction([ConfluentPartition(topic, _INPUT, consumed)], member.consumer_group_metadata(), 30)
                producer.flush(30)

            # Committed: the group's coordinator applies the offset (a new member starts there).
            transaction("first", 10)
            producer.commit_transaction(30)
            assert _committed(bootstrap, group, topic) == 10
            # While a transaction's offsets are pending, a stable fetch is refused with the
            # retriable UNSTABLE_OFFSET_COMMIT (and no offset, as Kafka's OffsetMetadataManager
            # answers it) and a plain one answers the last committed offset.
            transaction("aborted", 20)
            assert _offset_fetch(client, group_node, group, topic, require_stable=True) == (ErrorCode.UNSTABLE_OFFSET_COMMIT, -1)
            assert _offset_fetch(client, group_node, group, topic, require_stable=False) == (ErrorCode.NONE, 10)
            # Aborted: the pending offset is dropped, nothing stays unstable.
            producer.abort_transaction(30)
            assert _offset_fetch(client, group_node, group, topic, require_stable=True) == (ErrorCode.NONE, 10)
            assert _committed(bootstrap, group, topic) == 10

        # The group's coordinator killed with a transaction's offsets pending: the commit's
        # marker is retried until the group's partition has a new leader, which replays the
        # pending offset from the log and commits it when the marker arrives.
        transaction("after-kill", 30)
        brokers.brokers[group_node - 1].kill()
        producer.commit_transaction(90)
        member.close()
        live = ",".join(broker.bootstrap for broker in brokers.brokers if broker.node_id != group_node)
        with KafkaClient(live) as client:
            def stable_on_new_coordinator() -> tuple[ErrorCode, int] | None:
                node = _coordinator(client, _GROUP, group)
                if node < 0 or node == group_node:
                    return None
                try:
                    answer = _offset_fetch(client, node, group, topic, require_stable=True)
                except (ClientError, OSError):
                    return None
                return answer if answer[0] is ErrorCode.NONE else None

            assert _until(stable_on_new_coordinator, "the group's new coordinator answers a stable offset") == (ErrorCode.NONE, 30)
        assert _committed(live, group, topic) == 30
        # Two commits and one abort: three records and three markers.
        assert _read_committed(live, topic, 6) == [b"first", b"after-kill"]
        producer.flush(10)


def test_a_commit_whose_coordinator_dies_before_its_markers_are_in_is_finished_by_the_next(postgres_url: str, tmp_path: Path) -> None:
    """The group's coordinator killed, the commit started (its marker for the group's offsets now
    retried), then the transaction's coordinator killed too: it had left the transaction in
    PrepareCommit, so the one broker left, coordinating everything now, writes the markers again
    and commits the offset. Had the first coordinator written CompleteCommit before its markers
    were in, the offset would stay pending (UNSTABLE_OFFSET_COMMIT) for good."""
    with PostgresBrokers(tmp_path, storage=postgres_url, nodes=3, settings=_LEASE) as brokers:
        bootstrap = brokers.bootstrap
        topic = f"txn-kill-{uuid.uuid4().hex[:8]}"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(timeout=30)
        with KafkaClient(bootstrap) as client:
            leader = _until(lambda: _leaders(client, topic), f"{topic} has leaders")[_OUTPUT]
            transactional_id, txn_node = _key_on(client, _TXN, f"txn-{topic}", {leader})
            group, group_node = _key_on(client, _GROUP, f"group-{topic}", {leader, txn_node})
        producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id, "enable.idempotence": True})
        producer.init_transactions(30)
        member = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
        producer.begin_transaction()
        producer.produce(topic, b"kept", partition=_OUTPUT)
        producer.send_offsets_to_transaction([ConfluentPartition(topic, _INPUT, 42)], member.consumer_group_metadata(), 30)
        producer.flush(30)

        brokers.brokers[group_node - 1].kill()
        failures: list[str] = []
        committed: list[bool] = []

        def commit() -> None:
            """commit_transaction, called again after a retriable error, as librdkafka asks."""
            for _ in range(10):
                try:
                    producer.commit_transaction(90)
                    committed.append(True)
                    return
                except KafkaException as exc:
                    failures.append(str(exc))
                    if not exc.args[0].retriable():
                        return

        committing = threading.Thread(target=commit)
        committing.start()
        # The transaction's coordinator now (the first kill may have moved it) has begun to end it.
        live = {broker.node_id: broker for broker in brokers.brokers if broker.node_id != group_node}
        with KafkaClient(",".join(broker.bootstrap for broker in live.values())) as client:
            def ending_on() -> int | None:
                node = _coordinator(client, _TXN, transactional_id)
                return node if node in live and _txn_state(client, node, transactional_id) in ("PrepareCommit", "CompleteCommit") else None

            coordinator = _until(ending_on, "the transaction's coordinator ends it")
        live.pop(coordinator).kill()
        committing.join(150)
        assert committed, f"the commit did not succeed: {failures}"
        (survivor,) = live.values()
        with KafkaClient(survivor.bootstrap) as client:
            def stable() -> tuple[ErrorCode, int] | None:
                try:
                    answer = _offset_fetch(client, survivor.node_id, group, topic, require_stable=True)
                except (ClientError, OSError):
                    return None
                return answer if answer[0] is ErrorCode.NONE else None

            assert _until(stable, "the survivor answers a stable offset") == (ErrorCode.NONE, 42)
            assert _txn_state(client, survivor.node_id, transactional_id) == "CompleteCommit"
        assert _read_committed(survivor.bootstrap, topic, 2) == [b"kept"]
        member.close()
