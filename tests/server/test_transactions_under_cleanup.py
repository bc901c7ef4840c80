"""Transactions meet the log's cleanup, with real clients: compaction never lets an aborted
transaction's record displace a committed value of its key, and DeleteRecords past an open
transaction's first offset leaves read_committed readers an end offset that is still in the log."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer
from kafka import TopicPartition as KafkaTopicPartition

from compat.harness import wait_for
from ottla.testing import running_broker


def _read_all(bootstrap: str, topic: str, isolation: str) -> list[tuple[int, bytes, bytes]]:
    """(offset, key, value) of every data record, read from the start."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{isolation}", "enable.auto.commit": False,
                         "isolation.level": isolation, "enable.partition.eof": True})
    consumer.assign([TopicPartition(topic, 0, 0)])
    records = []
    try:
        while True:
            message = consumer.poll(10)
            assert message is not None, "no end of partition within 10 s"
            if message.error() is not None:
                assert message.error().code() == message.error()._PARTITION_EOF, message.error()
                return records
            records.append((message.offset(), message.key(), message.value()))
    finally:
        consumer.close()


def test_compaction_keeps_the_committed_value_an_aborted_transaction_wrote_over(tmp_path) -> None:
    """K is committed, then written in a transaction that aborts. The cleaner must keep the
    committed K: were the aborted one its key's latest, read_committed readers would find no K
    at all; the aborted K goes, as Kafka 4.4's cleaner drops an aborted transaction's batches
    (its answer to the same records). J, written twice outside any transaction, shows the
    cleaner has run."""
    with running_broker(data_dir=tmp_path / "data", log_cleaner_backoff_ms=200) as broker:
        bootstrap = broker.bootstrap_servers
        config = {"cleanup.policy": "compact", "segment.ms": "1000", "min.cleanable.dirty.ratio": "0"}
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for future in admin.create_topics([NewTopic("compacted", 1, 1, config=config)]).values():
            future.result(timeout=30)
        past = time.time_ns() // 1_000_000 - 60_000
        plain = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
        for key, value in ((b"J", b"old"), (b"K", b"committed"), (b"J", b"new")):
            plain.produce("compacted", value, key, partition=0, timestamp=past)
            assert plain.flush(30) == 0
        transactional = Producer({"bootstrap.servers": bootstrap, "transactional.id": "overwriter", "linger.ms": 0})
        transactional.init_transactions(30)
        transactional.begin_transaction()
        transactional.produce("compacted", b"aborted", b"K", partition=0, timestamp=past)
        assert transactional.flush(30) == 0
        transactional.abort_transaction(30)  # its marker, stamped now, rolls a segment
        plain.produce("compacted", b"rolls the marker's segment", b"L", partition=0, timestamp=time.time_ns() // 1_000_000 + 5_000)
        assert plain.flush(30) == 0

        assert wait_for(lambda: (b"J", b"old") not in [(key, value) for _, key, value in _read_all(bootstrap, "compacted", "read_uncommitted")],
                        timeout=30), "the cleaner did not run"
        uncommitted = [(key, value) for _, key, value in _read_all(bootstrap, "compacted", "read_uncommitted")]
        assert [value for key, value in uncommitted if key == b"K"] == [b"committed"]
        committed = [(key, value) for _, key, value in _read_all(bootstrap, "compacted", "read_committed")]
        assert [value for key, value in committed if key == b"K"] == [b"committed"]
        del plain, transactional, admin


def test_delete_records_past_an_open_transaction_leaves_read_committed_an_end_in_the_log() -> None:
    """A transaction open from offset 3, DeleteRecords to 5: the last stable offset is never
    below the log start (Kafka's maybeIncrementFirstUnstableOffset), so a read_committed
    consumer's end offset is one it can fetch, not 3, which is out of range."""
    with running_broker(data_dir=None) as broker:
        bootstrap = broker.bootstrap_servers
        broker.create_topic("deleted-under", partitions=1)
        plain = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
        for index in range(3):
            plain.produce("deleted-under", b"before %d" % index, partition=0)
        assert plain.flush(30) == 0
        transactional = Producer({"bootstrap.servers": bootstrap, "transactional.id": "open-across", "linger.ms": 0})
        transactional.init_transactions(30)
        transactional.begin_transaction()
        transactional.produce("deleted-under", b"open", partition=0)
        assert transactional.flush(30) == 0
        for index in range(3):
            plain.produce("deleted-under", b"after %d" % index, partition=0)
        assert plain.flush(30) == 0
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for future in admin.delete_records([TopicPartition("deleted-under", 0, 5)]).values():
            future.result(timeout=30)

        consumer = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed")
        try:
            partition = KafkaTopicPartition("deleted-under", 0)
            assert consumer.beginning_offsets([partition])[partition] == 5
            assert consumer.end_offsets([partition])[partition] == 5
        finally:
            consumer.close()
        transactional.abort_transaction(30)
        del plain, transactional, admin
