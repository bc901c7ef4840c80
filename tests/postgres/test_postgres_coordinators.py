"""The coordinators' state in PostgreSQL: a broker killed (SIGKILL) and replaced by a new process
with nothing on its disk (a new data dir) finds every committed group offset, every transaction and the
producer ids already handed out in the database, with real clients (kafka-python, confluent-kafka)."""

from __future__ import annotations

import asyncio
import time

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka import TopicPartition as ConfluentPartition
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from compat.harness import OttlaBroker

pytestmark = pytest.mark.external

_START_TIMEOUT = 60.0
_DEADLINE_S = 60.0
# A transaction left open by a killed broker is aborted once this much has passed since it began.
_TRANSACTION_TIMEOUT_MS = 4000


def _serve(url: str) -> OttlaBroker:
    """A broker on a free port over `url`, its `bootstrap` and `log_lines()` once started;
    whoever kills it leaves nothing to stop."""
    settings = {"group.initial.rebalance.delay.ms": "0", "transaction.abort.timed.out.transaction.cleanup.interval.ms": "500"}
    return OttlaBroker(storage=url, settings=settings, ready_timeout=_START_TIMEOUT, stop_timeout=30)


def _producer_ids(url: str, topic: str) -> set[int]:
    """The producer ids of the batches stored in `topic`, read from the database."""
    import asyncpg

    async def query() -> set[int]:
        connection = await asyncpg.connect(url)
        try:
            rows = await connection.fetch(
                "SELECT DISTINCT b.producer_id FROM batches b JOIN topics t USING (topic_id) WHERE t.name = $1 AND b.producer_id >= 0", topic
            )
        finally:
            await connection.close()
        return {row["producer_id"] for row in rows}

    return asyncio.run(query())


def _read_committed(bootstrap: str, topic: str, until: bytes) -> list[bytes]:
    """What a read_committed consumer reads of `topic` from its start up to the record `until`."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "pgc-reader", "isolation.level": "read_committed",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        consumer.assign([ConfluentPartition(topic, 0, 0)])
        values: list[bytes] = []
        deadline = time.monotonic() + _DEADLINE_S
        while until not in values:
            assert time.monotonic() < deadline, f"read_committed is stuck after {values}"
            message = consumer.poll(1)
            if message is not None and message.error() is None:
                values.append(message.value())
        return values
    finally:
        consumer.close()


def test_group_offsets_transactions_and_producer_ids_survive_a_killed_broker(postgres_url: str) -> None:
    with _serve(postgres_url) as broker:
        bootstrap = broker.bootstrap
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            admin.create_topics([NewTopic("pgc-data", 1, 1), NewTopic("pgc-txn", 1, 1)])
        finally:
            admin.close()
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
        for i in range(10):
            producer.send("pgc-data", f"d-{i}".encode(), partition=0)
        producer.flush()
        producer.close()

        # kafka-python in a group reads five records and commits after them.
        group = KafkaConsumer("pgc-data", bootstrap_servers=bootstrap, group_id="pgc-group", auto_offset_reset="earliest",
                              enable_auto_commit=False, max_poll_records=5, consumer_timeout_ms=20_000)
        try:
            read = []
            for message in group:
                read.append(message.value)
                if len(read) == 5:
                    break
            group.commit({TopicPartition("pgc-data", 0): _offset_and_metadata(5)})
        finally:
            group.close()

        # confluent-kafka commits one transaction with a group's offsets in it (TxnOffsetCommit),
        # then leaves a second one open.
        transactional = Producer({"bootstrap.servers": bootstrap, "transactional.id": "pgc-tx", "transaction.timeout.ms": _TRANSACTION_TIMEOUT_MS})
        transactional.init_transactions(30)
        transactional.begin_transaction()
        transactional.produce("pgc-txn", b"committed", partition=0)
        transactional.send_offsets_to_transaction([ConfluentPartition("pgc-data", 0, 7)], _group_metadata(bootstrap, "pgc-txn-group"), 30)
        transactional.commit_transaction(30)
        assert _committed(bootstrap, "pgc-txn-group") == 7
        transactional.begin_transaction()
        for i in range(3):
            transactional.produce("pgc-txn", f"open-{i}".encode(), partition=0)
        transactional.flush(30)
        assert not [line for line in broker.log_lines() if "Traceback" in line or "lost" in line]
        broker.kill()
        before = _producer_ids(postgres_url, "pgc-data") | _producer_ids(postgres_url, "pgc-txn")
        assert before

    # A new process, nothing on its disk: everything the coordinators answered is in the database.
    with _serve(postgres_url) as broker:
        bootstrap = broker.bootstrap
        group = KafkaConsumer("pgc-data", bootstrap_servers=bootstrap, group_id="pgc-group", auto_offset_reset="earliest",
                              enable_auto_commit=False, consumer_timeout_ms=20_000)
        try:
            resumed = [(message.offset, message.value) for _, message in zip(range(5), group)]
            assert resumed == [(i, f"d-{i}".encode()) for i in range(5, 10)]
            assert group.committed(TopicPartition("pgc-data", 0)) == 5
        finally:
            group.close()
        assert _committed(bootstrap, "pgc-txn-group") == 7

        # The open transaction is aborted once its timeout has passed (its start survived too):
        # read_committed then reads past it, without its records.
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
        producer.send("pgc-txn", b"after-restart", partition=0).get(timeout=30)
        producer.close()
        assert _read_committed(bootstrap, "pgc-txn", b"after-restart") == [b"committed", b"after-restart"]

        # The transactional id carries on with a bumped epoch; its new transaction commits.
        transactional = Producer({"bootstrap.servers": bootstrap, "transactional.id": "pgc-tx"})
        transactional.init_transactions(30)
        transactional.begin_transaction()
        transactional.produce("pgc-txn", b"second-life", partition=0)
        transactional.commit_transaction(30)
        assert _read_committed(bootstrap, "pgc-txn", b"second-life") == [b"committed", b"after-restart", b"second-life"]
        assert not [line for line in broker.log_lines() if "Traceback" in line or "lost" in line]

    # Producer ids handed out after the restart were never handed out before it.
    new = (_producer_ids(postgres_url, "pgc-data") | _producer_ids(postgres_url, "pgc-txn")) - before
    assert new and min(new) > max(before)


def _committed(bootstrap: str, group_id: str) -> int:
    """The group's committed offset of pgc-data's partition, as confluent-kafka reads it."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group_id})
    try:
        offset: int = consumer.committed([ConfluentPartition("pgc-data", 0)], 30)[0].offset
        return offset
    finally:
        consumer.close()


def _offset_and_metadata(offset: int) -> object:
    from kafka.structs import OffsetAndMetadata

    return OffsetAndMetadata(offset, "", -1)


def _group_metadata(bootstrap: str, group_id: str) -> object:
    """A consumer group's metadata for send_offsets_to_transaction (a consumer that never joins)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group_id})
    try:
        return consumer.consumer_group_metadata()
    finally:
        consumer.close()
