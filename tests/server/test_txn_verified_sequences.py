"""What a partition answers the first transactional batch of a producer it holds no batches of,
once the coordinator was asked about it (KIP-890), on the local engine over a real socket.

Kafka 4.4's ProducerAppendInfo.checkSequence (storage module) takes such a producer at any
sequence, except against the partition's VerificationStateEntry, which
UnifiedLog.maybeStartTransactionVerification creates before the coordinator is asked and
UnifiedLog.updateProducers drops once a transactional batch of the producer is appended:
`verificationStateEntry.supportsEpochBump() && seq != 0 && currentEntry.isEmpty()` (transaction
version 2: Produce v12+) and `seq > verificationStateEntry.lowestSequence()` are
OUT_OF_ORDER_SEQUENCE_NUMBER (checked with `javap -c -p` on the 4.4.0 kafka-storage jar)."""

from __future__ import annotations

from txn_wire import TxnClient

from ottla.testing import running_broker
from ottla.wire.errors import ErrorCode

TOPIC = "verified"


def test_under_transaction_version_2_an_unknown_producer_starts_its_transaction_at_sequence_0() -> None:
    with running_broker(data_dir=None) as broker:
        broker.create_topic(TOPIC, 1)
        with TxnClient(broker.bootstrap_servers, TOPIC) as client:
            producer_id, epoch = client.init("tv2")
            assert client.produce(12, "tv2", producer_id, epoch, 3) is ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
            assert client.produce(12, "tv2", producer_id, epoch, 0) is ErrorCode.NONE
            assert client.produce(12, "tv2", producer_id, epoch, 1) is ErrorCode.NONE


def test_no_batch_gets_ahead_of_the_lowest_sequence_the_coordinator_was_asked_about() -> None:
    """Transaction version 1: the batch at 0 was refused (its partition not yet added), the
    verification it started stays, and the producer's batch at 5 may not go first. A producer
    with no refused batch behind it is taken at any sequence."""
    with running_broker(data_dir=None) as broker:
        broker.create_topic(TOPIC, 2)
        with TxnClient(broker.bootstrap_servers, TOPIC) as client:
            producer_id, epoch = client.init("tv1")
            assert client.produce(11, "tv1", producer_id, epoch, 0) is ErrorCode.TRANSACTION_ABORTABLE
            assert client.add_partition("tv1", producer_id, epoch, 0) is ErrorCode.NONE
            assert client.produce(11, "tv1", producer_id, epoch, 5) is ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
            assert client.produce(11, "tv1", producer_id, epoch, 0) is ErrorCode.NONE
            assert client.produce(11, "tv1", producer_id, epoch, 1) is ErrorCode.NONE

            other_id, other_epoch = client.init("tv1-other")
            assert client.add_partition("tv1-other", other_id, other_epoch, 1) is ErrorCode.NONE
            assert client.produce(11, "tv1-other", other_id, other_epoch, 5, partition=1) is ErrorCode.NONE
