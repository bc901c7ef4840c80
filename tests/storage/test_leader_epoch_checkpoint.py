"""Each partition directory holds Kafka's `leader-epoch-checkpoint` (LeaderEpochCheckpointFile:
version 0, an entry count, one "epoch start-offset" line each), as Kafka 4.4 writes it: the
epoch a partition is led at starts at the log end when leadership begins, even for an empty
partition (Partition.makeLeader, LeaderEpochFileCache.assign), and moving the log start (here
by DeleteRecords, as kafka-delete-records) moves the first entry's start with it
(LeaderEpochFileCache.truncateFromStart). The reference Kafka 4.4 wrote "0\\n1\\n0 0\\n" for a new
topic and "0\\n1\\n0 3\\n" after records below offset 3 were deleted."""

from __future__ import annotations

import pathlib

from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from ottla.storage import Storage
from ottla.testing import running_broker
from ottla.wire.records import Record, build_batch

CHECKPOINT = "leader-epoch-checkpoint"


def test_a_topic_partition_gets_kafkas_epoch_checkpoint_and_delete_records_moves_its_start(tmp_path: pathlib.Path) -> None:
    with running_broker(data_dir=str(tmp_path)) as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        for future in admin.create_topics([NewTopic("e", 1, 1), NewTopic("empty", 1, 1)]).values():
            future.result(30)
        assert (tmp_path / "empty-0" / CHECKPOINT).read_text() == "0\n1\n0 0\n"
        producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
        for _ in range(5):
            producer.produce("e", b"x", partition=0)
        assert producer.flush(30) == 0
        assert (tmp_path / "e-0" / CHECKPOINT).read_text() == "0\n1\n0 0\n"
        for future in admin.delete_records([TopicPartition("e", 0, 3)]).values():
            assert future.result(30).low_watermark == 3
        assert (tmp_path / "e-0" / CHECKPOINT).read_text() == "0\n1\n0 3\n"
    assert (tmp_path / "e-0" / CHECKPOINT).read_text() == "0\n1\n0 3\n"


def test_a_new_leader_epoch_starts_at_the_log_end_and_the_history_survives_a_restart(tmp_path: pathlib.Path) -> None:
    storage = Storage.open(tmp_path)
    storage.create_topic("t", 1)
    log = storage.partition("t", 0)
    log.append(build_batch([Record(i, 1000 + i, None, b"v") for i in range(4)]))
    log.leader_epoch = 2
    log.leader_epoch = 2  # the same epoch again: nothing new
    assert (tmp_path / "t-0" / CHECKPOINT).read_text() == "0\n2\n0 0\n2 4\n"
    storage.close()
    reopened = Storage.open(tmp_path)
    assert reopened.partition("t", 0).epochs == [(0, 0), (2, 4)]
    reopened.close()
