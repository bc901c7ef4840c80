"""A transactional batch at an epoch below its producer's in the partition is
INVALID_PRODUCER_EPOCH (no message) before the coordinator is asked, whatever transactional id
the Produce names (Kafka 4.4's UnifiedLog.maybeStartTransactionVerification); an epoch ahead
still goes to the coordinator, which knows no such producer under another id. Answers
confirmed on Kafka 4.4."""

from __future__ import annotations

import time

from txn_wire import TxnClient

from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.records import Record, build_batch


def test_a_stale_epoch_is_refused_by_the_partition_before_the_coordinator() -> None:
    with running_broker(data_dir=None) as broker, TxnClient(broker.bootstrap_servers, "t") as client:
        broker.create_topic("t", partitions=1)
        client.init("txn")
        producer_id, epoch = client.init("txn")  # epoch 1: one below it is a real epoch
        client.init("known")
        assert client.add_partition("txn", producer_id, epoch, 0) == ErrorCode.NONE
        assert client.produce(9, "txn", producer_id, epoch, 0) == ErrorCode.NONE

        def produce(version: int, transactional_id: str, producer_epoch: int) -> tuple[int, str | None]:
            batch = build_batch([Record(0, int(time.time() * 1000), b"k", b"v")], producer_id=producer_id,
                                producer_epoch=producer_epoch, base_sequence=0, transactional=True)
            answer = client.call(ApiKey.PRODUCE, version, {"acks": -1, "timeout_ms": 5000, "transactional_id": transactional_id,
                                                           "topic_data": [{"name": "t", "partition_data": [{"index": 0, "records": batch}]}]})
            partition = answer["responses"][0]["partition_responses"][0]
            return partition["error_code"], partition["error_message"]

        for version in (9, 12):
            for transactional_id in ("txn", "known", "other"):
                assert produce(version, transactional_id, epoch - 1) == (ErrorCode.INVALID_PRODUCER_EPOCH, None)
            assert produce(version, "other", epoch + 1)[0] == ErrorCode.INVALID_PRODUCER_ID_MAPPING


def test_transactional_batches_of_two_producers_refuse_the_whole_request() -> None:
    """Transactional batches of more than one (producer id, epoch) among the partitions that
    reach the append (ReplicaManager.handleProduceAppend's InvalidPidMappingException): every
    partition named, of unknown topics too, is INVALID_PRODUCER_ID_MAPPING, worded from v8."""
    with running_broker(data_dir=None) as broker, TxnClient(broker.bootstrap_servers, "t") as client:
        broker.create_topic("t", partitions=2)
        producer_id, epoch = client.init("txn")

        def batch(producer: int, producer_epoch: int) -> bytes:
            return build_batch([Record(0, int(time.time() * 1000), b"k", b"v")], producer_id=producer, producer_epoch=producer_epoch,
                               base_sequence=0, transactional=True)

        for version, message in ((3, None), (9, "Transactional records contained more than one producer ID")):
            for other in ((producer_id, epoch + 1), (producer_id + 1, epoch)):
                answer = client.call(ApiKey.PRODUCE, version, {"acks": -1, "timeout_ms": 5000, "transactional_id": "txn", "topic_data": [
                    {"name": "t", "partition_data": [{"index": 0, "records": batch(producer_id, epoch)}, {"index": 1, "records": batch(*other)},
                                                     {"index": 7, "records": batch(producer_id, epoch)}]},
                    {"name": "nope", "partition_data": [{"index": 0, "records": batch(producer_id, epoch)}]}]})
                assert sorted((t["name"], p["index"], p["error_code"], p.get("error_message")) for t in answer["responses"]
                              for p in t["partition_responses"]) == [
                    (name, index, ErrorCode.INVALID_PRODUCER_ID_MAPPING, message) for name, index in (("nope", 0), ("t", 0), ("t", 1), ("t", 7))]
