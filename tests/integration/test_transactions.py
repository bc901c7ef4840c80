"""Idempotence and transactions with stock clients over real sockets (issue 5).

Retries are forced with the test hook `TestHooks.drop_produce_response_every`: the
batch is written, then the connection is closed unanswered, so the client sends it again
and only de-duplication keeps the log free of copies.
"""

from __future__ import annotations

import time
import uuid
from contextlib import closing

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition as CTopicPartition
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from ottla.testing import TestHooks, running_broker
from unavailable import unavailable


def _topic() -> str:
    return f"txn-{uuid.uuid4().hex[:8]}"


def _kafka_python_values(bootstrap: str, topic: str, isolation: str = "read_uncommitted", partitions: int = 1) -> list[bytes]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level=isolation, consumer_timeout_ms=1500, enable_auto_commit=False)
    consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
    consumer.seek_to_beginning()
    values = [message.value for message in consumer]
    consumer.close()
    return values


def _confluent_values(bootstrap: str, topic: str, isolation: str, expect: int) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex, "isolation.level": isolation, "enable.auto.commit": False})
    consumer.assign([CTopicPartition(topic, 0, 0)])
    values: list[bytes] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        message = consumer.poll(0.2)
        if message is not None and message.error() is None:
            values.append(message.value())
        elif len(values) >= expect and message is None:
            break
    consumer.close()
    return values


def test_kafka_python_idempotent_retries_are_not_written_twice() -> None:
    with running_broker(data_dir=None, test_hooks=TestHooks(drop_produce_response_every=3)) as broker:
        topic = _topic()
        broker.create_topic(topic, 1)
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, enable_idempotence=True, retries=10, linger_ms=0)
        for i in range(12):
            producer.send(topic, b"v%d" % i).get(timeout=30)
        producer.close()
        (drops,) = broker.faults.list()
        assert drops.fired >= 4  # the client did have to retry
        assert _kafka_python_values(broker.bootstrap_servers, topic) == [b"v%d" % i for i in range(12)]


def test_confluent_idempotent_retries_are_not_written_twice() -> None:
    with running_broker(data_dir=None, test_hooks=TestHooks(drop_produce_response_every=2)) as broker:
        topic = _topic()
        broker.create_topic(topic, 1)
        producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "enable.idempotence": True, "linger.ms": 0})
        for i in range(10):
            producer.produce(topic, b"v%d" % i)
            assert producer.flush(30) == 0
        (drops,) = broker.faults.list()
        assert drops.matched >= 10
        assert _kafka_python_values(broker.bootstrap_servers, topic) == [b"v%d" % i for i in range(10)]


def test_confluent_abort_then_commit_by_isolation_level(ottla_broker_fn) -> None:
    topic = _topic()
    ottla_broker_fn.create_topic(topic, 1)
    bootstrap = ottla_broker_fn.bootstrap_servers
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": "confluent-" + topic})
    producer.init_transactions(10)
    producer.begin_transaction()
    producer.produce(topic, b"aborted-1")
    producer.produce(topic, b"aborted-2")
    producer.flush(10)
    producer.abort_transaction(10)
    producer.begin_transaction()
    producer.produce(topic, b"committed")
    producer.commit_transaction(10)
    assert _confluent_values(bootstrap, topic, "read_committed", 1) == [b"committed"]
    assert _confluent_values(bootstrap, topic, "read_uncommitted", 3) == [b"aborted-1", b"aborted-2", b"committed"]
    assert _kafka_python_values(bootstrap, topic, "read_committed") == [b"committed"]


def test_read_committed_waits_for_an_open_transaction(ottla_broker_fn) -> None:
    topic = _topic()
    ottla_broker_fn.create_topic(topic, 1)
    bootstrap = ottla_broker_fn.bootstrap_servers
    with (closing(KafkaProducer(bootstrap_servers=bootstrap)) as plain,
          closing(KafkaProducer(bootstrap_servers=bootstrap, transactional_id="kp-" + topic)) as producer,
          closing(KafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed")) as consumer):
        plain.send(topic, b"before").get(timeout=10)
        producer.init_transactions()
        producer.begin_transaction()
        producer.send(topic, b"pending")
        producer.flush()
        plain.send(topic, b"after").get(timeout=10)
        assert _kafka_python_values(bootstrap, topic, "read_committed") == [b"before"]
        tp = TopicPartition(topic, 0)
        assert consumer.end_offsets([tp])[tp] == 1  # ListOffsets latest under read_committed is the LSO
        producer.commit_transaction()
        assert _kafka_python_values(bootstrap, topic, "read_committed") == [b"before", b"pending", b"after"]
        assert consumer.end_offsets([tp])[tp] == 4  # three records and the COMMIT marker


def test_confluent_consume_transform_produce_commits_offsets_with_the_transaction(ottla_broker_fn) -> None:
    source, sink, group = _topic(), _topic(), "ctp-" + uuid.uuid4().hex[:6]
    ottla_broker_fn.create_topic(source, 1)
    ottla_broker_fn.create_topic(sink, 1)
    bootstrap = ottla_broker_fn.bootstrap_servers
    seed = Producer({"bootstrap.servers": bootstrap})
    for i in range(4):
        seed.produce(source, b"in%d" % i)
    seed.flush(10)

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    consumer.assign([CTopicPartition(source, 0, 0)])
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": "ctp-" + source})
    producer.init_transactions(10)

    def transform(count: int, commit: bool) -> None:
        producer.begin_transaction()
        last = None
        for _ in range(count):
            message = None
            while message is None or message.error() is not None:
                message = consumer.poll(5)
            producer.produce(sink, message.value().replace(b"in", b"out"))
            last = message.offset()
        producer.send_offsets_to_transaction([CTopicPartition(source, 0, last + 1)], consumer.consumer_group_metadata(), 10)
        if commit:
            producer.commit_transaction(10)
        else:
            producer.abort_transaction(10)

    transform(2, commit=True)
    assert consumer.committed([CTopicPartition(source, 0)], 10)[0].offset == 2
    transform(2, commit=False)
    assert consumer.committed([CTopicPartition(source, 0)], 10)[0].offset == 2  # the aborted offsets never show
    consumer.close()
    assert _confluent_values(bootstrap, sink, "read_committed", 2) == [b"out0", b"out1"]


def test_kafka_python_send_offsets_visible_only_after_commit(ottla_broker_fn) -> None:
    topic, group = _topic(), "kp-" + uuid.uuid4().hex[:6]
    ottla_broker_fn.create_topic(topic, 1)
    bootstrap = ottla_broker_fn.bootstrap_servers
    with (closing(KafkaProducer(bootstrap_servers=bootstrap, transactional_id="kp-" + topic)) as producer,
          closing(KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)) as watcher):
        producer.init_transactions()
        producer.begin_transaction()
        producer.send(topic, b"x")
        producer.send_offsets_to_transaction({TopicPartition(topic, 0): _offset(7)}, group)
        assert watcher.committed(TopicPartition(topic, 0)) is None
        producer.commit_transaction()
        assert watcher.committed(TopicPartition(topic, 0)) == 7


def _offset(offset: int):
    from kafka.structs import OffsetAndMetadata

    try:
        return OffsetAndMetadata(offset, "", -1)
    except TypeError:
        return OffsetAndMetadata(offset, "")


def test_a_second_producer_with_the_same_id_fences_the_first(ottla_broker_fn) -> None:
    topic = _topic()
    ottla_broker_fn.create_topic(topic, 1)
    bootstrap = ottla_broker_fn.bootstrap_servers
    config = {"bootstrap.servers": bootstrap, "transactional.id": "fence-" + topic}
    zombie = Producer(config)
    zombie.init_transactions(10)
    zombie.begin_transaction()
    zombie.produce(topic, b"zombie")
    zombie.flush(10)
    successor = Producer(config)
    successor.init_transactions(10)  # aborts the zombie's open transaction
    successor.begin_transaction()
    successor.produce(topic, b"successor")
    successor.commit_transaction(10)
    with pytest.raises(KafkaException) as raised:
        zombie.commit_transaction(10)
    assert raised.value.args[0].fatal() or "fenced" in str(raised.value).lower()
    assert _confluent_values(bootstrap, topic, "read_committed", 1) == [b"successor"]


@pytest.mark.parametrize("outcome", ["commit", "timeout"])
def test_a_transaction_open_across_a_restart_completes_or_times_out(tmp_path, outcome: str) -> None:
    """Stop the broker mid-transaction: after the restart read_committed sees nothing of it
    until the same producer commits, or until transaction.timeout.ms aborts it."""
    with running_broker(data_dir=tmp_path, transaction_abort_timed_out_transaction_cleanup_interval_ms=200) as broker:
        topic = _topic()
        broker.create_topic(topic, 1)
        bootstrap = broker.bootstrap_servers
        producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": "restart-" + topic, "transaction.timeout.ms": 3000})
        producer.init_transactions(10)
        producer.begin_transaction()
        producer.produce(topic, b"one")
        producer.flush(10)
        broker.restart()
        assert _kafka_python_values(bootstrap, topic, "read_committed") == []
        if outcome == "commit":
            producer.produce(topic, b"two")
            producer.commit_transaction(30)
            assert _kafka_python_values(bootstrap, topic, "read_committed") == [b"one", b"two"]
        else:
            time.sleep(4)
            assert _kafka_python_values(bootstrap, topic, "read_committed") == []
            assert _kafka_python_values(bootstrap, topic, "read_uncommitted") == [b"one"]
            with closing(KafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed")) as consumer:
                tp = TopicPartition(topic, 0)
                assert consumer.end_offsets([tp])[tp] == 2  # no longer held back: the ABORT marker closed it
        producer.flush(1)


def test_idempotent_state_survives_a_restart(tmp_path) -> None:
    """kafka-python keeps its producer id and sequence across the broker's restart; the
    broker must still know them (snapshot), or the next batch is UNKNOWN_PRODUCER_ID/out of order."""
    with running_broker(data_dir=tmp_path) as broker:
        topic = _topic()
        broker.create_topic(topic, 1)
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, enable_idempotence=True)
        for i in range(3):
            producer.send(topic, b"a%d" % i).get(timeout=10)
        broker.restart()
        for i in range(3):
            producer.send(topic, b"b%d" % i).get(timeout=30)
        producer.close()
        assert _kafka_python_values(broker.bootstrap_servers, topic) == [b"a0", b"a1", b"a2", b"b0", b"b1", b"b2"]


@pytest.mark.parametrize("version", [7, 8, 9])
def test_require_stable_offset_fetch_waits_for_the_transaction(ottla_broker_fn, version: int) -> None:
    """KIP-447: while sent offsets are pending, OffsetFetch with require_stable answers
    UNSTABLE_OFFSET_COMMIT for them (the client retries); without it, the last committed offset."""
    from kafka.protocol.consumer.group import OffsetFetchRequest, OffsetFetchResponse

    from kafka_wire import RawClient, make

    topic, group = _topic(), "stable-" + uuid.uuid4().hex[:6]
    ottla_broker_fn.create_topic(topic, 1)
    bootstrap = ottla_broker_fn.bootstrap_servers
    with closing(KafkaProducer(bootstrap_servers=bootstrap, transactional_id="stable-" + topic)) as producer:
        producer.init_transactions()
        producer.begin_transaction()
        producer.send(topic, b"x")
        producer.send_offsets_to_transaction({TopicPartition(topic, 0): _offset(7)}, group)

        def fetch(require_stable: bool) -> tuple[int, int]:
            topics = [dict(name=topic, partition_indexes=[0])]
            request = make(OffsetFetchRequest, dict(
                group_id=group, topics=topics, require_stable=require_stable,
                groups=[dict(group_id=group, member_id=None, member_epoch=-1, topics=topics)],
            ))
            with RawClient(bootstrap) as raw:
                response = raw.call(request, version, OffsetFetchResponse)
            topics_out = response.groups[0].topics if version >= 8 else response.topics
            (partition,) = topics_out[0].partitions
            return partition.committed_offset, partition.error_code

        assert fetch(require_stable=True) == (-1, 88)  # UNSTABLE_OFFSET_COMMIT
        assert fetch(require_stable=False) == (-1, 0)
        producer.commit_transaction()
        assert fetch(require_stable=True) == (7, 0)


def test_kafkas_transactions_tool_reads_our_state(ottla_broker_fn) -> None:
    """Kafka's own kafka-transactions (TransactionsCommand) lists, describes and finds the
    producers of an open transaction through ListTransactions, DescribeTransactions and
    DescribeProducers."""
    from compat import kafka as reference

    if not reference.is_fetched():
        why = f"reference Kafka {reference.KAFKA_VERSION} not fetched: run `python -m compat.kafka --fetch`"
        unavailable(why)
    topic = _topic()
    ottla_broker_fn.create_topic(topic, 1)
    bootstrap = ottla_broker_fn.bootstrap_servers
    with closing(KafkaProducer(bootstrap_servers=bootstrap, transactional_id="tool-" + topic)) as producer:
        producer.init_transactions()
        producer.begin_transaction()
        producer.send(topic, b"x")
        producer.flush()

        def tool(*args: str) -> list[list[str]]:
            proc = reference.run_tool("kafka-transactions", "--bootstrap-server", bootstrap, *args, timeout=90)
            assert proc.returncode == 0, proc.stderr[-500:]
            return [line.split() for line in proc.stdout.splitlines() if line.strip()]

        assert ["tool-" + topic, "1", "Ongoing"] == [row[i] for row in tool("list")[1:] for i in (0, 1, 3)]
        # ListTransactions v2 (KIP-1152): the pattern must match the whole transactional id.
        assert [row[0] for row in tool("list", "--transactional-id-pattern", "tool-.*")[1:]] == ["tool-" + topic]
        assert tool("list", "--transactional-id-pattern", "tool")[1:] == []
        (described,) = tool("describe", "--transactional-id", "tool-" + topic)[1:]
        assert described[4] == "Ongoing" and described[-1] == f"{topic}-0"
        (active,) = tool("describe-producers", "--topic", topic, "--partition", "0")[1:]
        assert active[-1] == "0"  # CurrentTransactionStartOffset: the open transaction's first offset
        producer.commit_transaction()
        (described,) = tool("describe", "--transactional-id", "tool-" + topic)[1:]
        assert described[4] == "CompleteCommit"


def _serve(data_dir, port: int):
    """`ottla serve` as its own process (so it can be SIGKILLed), ready when it says so."""
    import subprocess
    import sys
    import threading
    from pathlib import Path

    proc = subprocess.Popen(
        [sys.executable, "-m", "ottla", "serve", "--port", str(port), "--data-dir", str(data_dir),
         "--set", "transaction.abort.timed.out.transaction.cleanup.interval.ms=200"],
        cwd=Path(__file__).resolve().parents[2], stderr=subprocess.PIPE, text=True,
    )
    for line in proc.stderr:
        if line.startswith("ottla ready"):
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            return proc, line.split()[2].split("=", 1)[1]
    raise AssertionError(f"the broker exited {proc.wait()} before its ready line")


def test_producer_and_transaction_state_survive_a_sigkill(tmp_path) -> None:
    """kill -9 with a transaction open and an idempotent producer mid-stream, no clean close
    and so no fresh snapshot: on restart the open transaction is still held back and then
    commits, and the idempotent producer goes on without duplicates or UNKNOWN_PRODUCER_ID."""
    import signal
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc, bootstrap = _serve(tmp_path, port)
    try:
        topic = _topic()
        txn = Producer({"bootstrap.servers": bootstrap, "transactional.id": "kill-" + topic, "transaction.timeout.ms": 60000})
        txn.init_transactions(10)
        txn.begin_transaction()
        txn.produce(topic, b"txn-1", partition=0)
        txn.flush(10)
        idem = KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
        for i in range(3):
            idem.send(topic, b"idem-%d" % i, partition=0).get(timeout=10)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc, bootstrap = _serve(tmp_path, port)
        assert _kafka_python_values(bootstrap, topic, "read_committed") == []  # the open transaction holds the LSO
        for i in range(3, 6):
            idem.send(topic, b"idem-%d" % i, partition=0).get(timeout=30)
        idem.close()
        txn.produce(topic, b"txn-2", partition=0)
        txn.commit_transaction(30)
        assert _kafka_python_values(bootstrap, topic, "read_committed") == [b"txn-1"] + [b"idem-%d" % i for i in range(3)] + [
            b"idem-%d" % i for i in range(3, 6)
        ] + [b"txn-2"]
    finally:
        proc.kill()
        proc.wait()
