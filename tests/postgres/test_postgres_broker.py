"""`ottla serve --storage postgresql://...` with real clients over real sockets, on a private
PostgreSQL server: topics (created, auto-created, deleted), produce at every acks, fetch by
assignment and by a consumer group, long polls woken by appends, ListOffsets by time, and a restart of the broker keeping every record, since they are in the
database (each broker process starts on an empty data dir of its own: nothing of a client topic is
on its disk or in its memory across the restart)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import urllib.request

import asyncpg
import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka import TopicPartition as ConfluentPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaStorageError
from kafka.protocol.producer import ProduceRequest, ProduceResponse
from kafka_wire import RawClient, make
from unavailable import unavailable

from compat.harness import OttlaBroker
from compat.postgres import PostgresUnavailable, PrivatePostgres
from ottla.wire.errors import ErrorCode
from ottla.wire.records import Record, build_batch

pytestmark = pytest.mark.external

_START_TIMEOUT = 60.0
_T0 = 1_700_000_000_000


def _serve(url: str, http: bool = False) -> OttlaBroker:
    """A broker on a free port over `url`, with an HTTP listener on another when `http`; its
    `bootstrap` and `log_lines()` once started."""
    return OttlaBroker(storage=url, settings={"group.initial.rebalance.delay.ms": "0"}, serve_args=["--http-port", "0"] if http else [],
                       ready_timeout=_START_TIMEOUT, stop_timeout=30)


def _kafka_python_values(bootstrap: str, partition: TopicPartition, expected: int, fetch_max_bytes: int = 50 << 20) -> list[tuple[int, bytes]]:
    """The first `expected` (offset, value) pairs of `partition`, read from its start."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=10_000, fetch_max_bytes=fetch_max_bytes)
    try:
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        got: list[tuple[int, bytes]] = []
        for message in consumer:
            got.append((message.offset, message.value))
            if len(got) == expected:
                break
        return got
    finally:
        consumer.close()


def test_clients_produce_and_consume_through_postgresql_and_a_restart_keeps_every_record(postgres_url: str) -> None:
    with _serve(postgres_url) as broker:
        bootstrap = broker.bootstrap
        warnings = [line for line in broker.log_lines() if "WARNING" in line]
        assert len(warnings) == 1 and "PostgreSQL engine is incomplete" in warnings[0]
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            admin.create_topics([NewTopic("pg-data", 2, 1), NewTopic("pg-doomed", 1, 1)])
            assert {"pg-data", "pg-doomed"} <= set(admin.list_topics())
        finally:
            admin.close()

        # kafka-python at acks 1, -1 and 0, to partition 0, with timestamps for ListOffsets.
        for acks, first in ((1, 0), ("all", 4), (0, 8)):
            producer = KafkaProducer(bootstrap_servers=bootstrap, acks=acks, linger_ms=0, enable_idempotence=False)
            sent = [producer.send("pg-data", f"kp-{i}".encode(), partition=0, timestamp_ms=_T0 + i * 10) for i in range(first, first + 4)]
            producer.flush()
            for future in sent:
                future.get(timeout=10)
            producer.close()

        # confluent-kafka to partition 1, one record per batch.
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
        delivered: list[KafkaError | None] = []
        for i in range(5):
            producer.produce("pg-data", f"ck-{i}".encode(), partition=1, on_delivery=lambda error, _: delivered.append(error))
            producer.flush(10)
        assert delivered == [None] * 5
        assert not [line for line in broker.log_lines() if "Traceback" in line or "handler failed" in line]

        partition0 = TopicPartition("pg-data", 0)
        assert _kafka_python_values(bootstrap, partition0, 12) == [(i, f"kp-{i}".encode()) for i in range(12)]

        consumer = KafkaConsumer(bootstrap_servers=bootstrap)
        try:
            found = consumer.offsets_for_times({partition0: _T0 + 55})[partition0]
            assert (found.offset, found.timestamp) == (6, _T0 + 60)
            assert consumer.offsets_for_times({partition0: _T0 + 1_000})[partition0] is None
            assert consumer.beginning_offsets([partition0]) == {partition0: 0}
            assert consumer.end_offsets([partition0]) == {partition0: 12}
        finally:
            consumer.close()
        # KIP-734's max timestamp (-3), through confluent-kafka's admin client.
        confluent_admin = AdminClient({"bootstrap.servers": bootstrap})
        latest = confluent_admin.list_offsets({ConfluentPartition("pg-data", 0): OffsetSpec.max_timestamp()})
        found = next(iter(latest.values())).result(timeout=10)
        assert (found.offset, found.timestamp) == (11, _T0 + 110)

        # confluent-kafka parks at the end of partition 1 (a long fetch.wait.max.ms): an append wakes it.
        confluent = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "fetch.wait.max.ms": 30_000, "enable.auto.commit": False})
        try:
            confluent.assign([ConfluentPartition("pg-data", 1, 0)])
            values = []
            while len(values) < 5:
                message = confluent.poll(10)
                assert message is not None and message.error() is None
                values.append(message.value())
            assert values == [f"ck-{i}".encode() for i in range(5)]
            threading.Timer(1.0, lambda: (producer.produce("pg-data", b"wake", partition=1), producer.flush(10))).start()
            message = confluent.poll(20)
            assert message is not None and message.error() is None and (message.offset(), message.value()) == (5, b"wake")
        finally:
            confluent.close()

        # A topic created by a producer's Metadata (auto.create.topics.enable) is in the database
        # too, and a consumer group reads it (the group's offsets are the broker's, not the database's).
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1, enable_idempotence=False)
        for i in range(6):
            producer.send("pg-auto", f"auto-{i}".encode())
        producer.flush()
        producer.close()
        group = KafkaConsumer("pg-auto", bootstrap_servers=bootstrap, group_id="pg-group", auto_offset_reset="earliest", consumer_timeout_ms=10_000)
        try:
            values: list[bytes] = []
            for message in group:
                values.append(message.value)
                if len(values) == 6:
                    break
            assert sorted(values) == [f"auto-{i}".encode() for i in range(6)]
        finally:
            group.close()

        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            admin.delete_topics(["pg-doomed"])
            assert "pg-doomed" not in admin.list_topics()
        finally:
            admin.close()

    # A new broker process (nothing on its disk) finds the topics and every record in PostgreSQL, and
    # appends after them; its console and metrics describe them.
    with _serve(postgres_url, http=True) as broker:
        bootstrap = broker.bootstrap
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            topics = set(admin.list_topics())
            assert {"pg-data", "pg-auto"} <= topics and "pg-doomed" not in topics
        finally:
            admin.close()
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1)
        producer.send("pg-data", b"after-restart", partition=0).get(timeout=10)
        producer.close()
        expected = [(i, f"kp-{i}".encode()) for i in range(12)] + [(12, b"after-restart")]
        assert _kafka_python_values(bootstrap, partition0, 13) == expected
        partition1 = TopicPartition("pg-data", 1)
        assert _kafka_python_values(bootstrap, partition1, 6) == [(i, f"ck-{i}".encode()) for i in range(5)] + [(5, b"wake")]
        http = broker.http
        with urllib.request.urlopen(f"{http}/api/topics", timeout=10) as answer:
            listed = {topic["name"]: topic for topic in json.load(answer)["topics"]}
        assert listed["pg-data"]["messages_estimate"] == 19 and listed["pg-data"]["size"] > 0
        with urllib.request.urlopen(f"{http}/metrics", timeout=10) as answer:
            assert 'kafka_log_log_logendoffset{topic="pg-data",partition="0"} 13' in answer.read().decode()


def test_while_postgresql_is_down_clients_get_a_retriable_error_and_the_broker_recovers_by_itself() -> None:
    """A server of its own, stopped and started again under the broker: a produce meanwhile is
    answered KAFKA_STORAGE_ERROR (retriable: clients refresh metadata and retry), never a dropped
    connection, and the broker's pool connects again once the server is back."""
    try:
        server = PrivatePostgres()
    except PostgresUnavailable as exc:
        unavailable(str(exc))
    with server, _serve(server.url) as broker:
        bootstrap = broker.bootstrap
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1, enable_idempotence=False, retries=0)
        try:
            assert producer.send("pg-outage", b"before", partition=0).get(timeout=10).offset == 0
            server.stop()
            with pytest.raises(KafkaStorageError):
                producer.send("pg-outage", b"during", partition=0).get(timeout=10)
            server.start_again()
            assert producer.send("pg-outage", b"after", partition=0).get(timeout=10).offset == 1
        finally:
            producer.close()
        assert _kafka_python_values(bootstrap, TopicPartition("pg-outage", 0), 2) == [(0, b"before"), (1, b"after")]
        # asyncpg's pool logs its reconnection attempts (with a traceback); no handler failed.
        assert not [line for line in broker.log_lines() if "handler failed" in line]


async def test_a_lock_timeout_in_postgresql_answers_a_retriable_error_and_keeps_the_connection(postgres_url: str) -> None:
    """A statement the database refuses for a passing state (here lock_timeout, set for the
    broker's sessions through the URL, while another session holds the partition's row) is
    KAFKA_STORAGE_ERROR for that partition, as for a database gone away: the client retries,
    and the connection and the broker go on."""
    with _serve(f"{postgres_url}&lock_timeout=200") as broker:
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        admin.create_topics([NewTopic("locked", 1, 1)])
        admin.close()
        body = {"transactional_id": None, "acks": -1, "timeout_ms": 5000,
                "topic_data": [{"name": "locked", "partition_data": [{"index": 0, "records": build_batch([Record(0, 0, None, b"v")])}]}]}

        def produce(client: RawClient) -> tuple[int, int]:
            answer = client.call(make(ProduceRequest, body), 9, ProduceResponse).responses[0].partition_responses[0]
            return answer.error_code, answer.base_offset

        holder = await asyncpg.connect(postgres_url)
        with RawClient(broker.bootstrap) as client:
            assert produce(client) == (0, 0)
            transaction = holder.transaction()
            await transaction.start()
            await holder.execute("SELECT * FROM partitions FOR UPDATE")
            assert produce(client)[0] == ErrorCode.KAFKA_STORAGE_ERROR
            await transaction.rollback()
            assert produce(client) == (0, 1)
        await holder.close()


def test_a_database_that_cannot_be_used_stops_the_start_with_a_message(private_postgres) -> None:
    """Nothing listening where the URL points: the broker says so and exits 1, not a traceback."""
    url = re.sub(r":\d+/", ":1/", private_postgres.url)
    done = subprocess.run(
        [sys.executable, "-m", "ottla", "serve", "--port", "0", "--memory", "--http-port", "-1", "--storage", url],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 1
    assert "cannot connect to PostgreSQL" in done.stderr and "Traceback" not in done.stderr
    help_text = " ".join(subprocess.run([sys.executable, "-m", "ottla", "serve", "--help"], capture_output=True, text=True, timeout=60).stdout.split())
    assert "--storage postgresql://USER@HOST/DB keep topics, records, offsets and transactions in this PostgreSQL database" in help_text
