"""Server-side checks of transactional writes (KIP-890): a partition accepts a transaction's
first batch only once the transaction coordinator knows the partition is in it.

Part 1 (Kafka 3.6+): before a transactional Produce reaches a partition where its producer
has no open transaction, the broker asks the coordinator whether the partition was added
(AddPartitionsToTxn verify_only, ReplicaManager.handleProduceAppend), so a late or
hanging write of a transaction that already ended cannot open a new one there. Part 2
(transaction version 2, Produce v12+): the client no longer sends AddPartitionsToTxn;
the Produce itself adds the partition (AddPartitionsToTxnManager's ADD_PARTITION).

Kafka's broker sends that question to the coordinator over the network; here the
coordinator is in the same process, so it is a call, and the answer arrives before the
append: no verification guard is needed to catch a marker written in between.
"""

from __future__ import annotations

from ottla.server.txn.coordinator import TransactionCoordinator, verification_error
from ottla.storage.log import PartitionLog
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.records import BATCH_HEADER_SIZE, read_header

# Produce v11 is the first that knows TRANSACTION_ABORTABLE, v12 the first that adds its
# partition (AddPartitionsToTxnManager.produceRequestVersionToTransactionSupportedOperation).
_PRODUCE_ABORTABLE_KNOWN = 11
_PRODUCE_ADDS_PARTITION = 12

# Coordinator answers a client may not retry correctly, sent as the retriable
# NOT_ENOUGH_REPLICAS, which does not trigger a metadata refresh (ReplicaManager).
_RETRIABLE = frozenset({ErrorCode.NETWORK_EXCEPTION, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
                        ErrorCode.COORDINATOR_NOT_AVAILABLE, ErrorCode.NOT_COORDINATOR})


def verify_transactional_produce(
    coordinator: TransactionCoordinator, log: PartitionLog, topic: str, partition: int, transactional_id: str, records: memoryview, version: int
) -> None:
    """Raise the KafkaError Kafka answers a transactional batch with when the coordinator
    does not have (v12+: could not add) the partition in the producer's transaction.
    Batches that are not transactional, and a producer that already has a transaction
    open in this partition at this epoch (UnifiedLog.maybeStartTransactionVerification),
    pass without asking."""
    if len(records) < BATCH_HEADER_SIZE:
        return
    header = read_header(records)
    if not header.is_transactional or header.producer_id < 0:
        return
    if log.producer_state.has_ongoing_transaction(header.producer_id, header.producer_epoch):
        return
    wanted = {(topic, partition)}
    if version >= _PRODUCE_ADDS_PARTITION:
        error = coordinator.add_partitions(transactional_id, header.producer_id, header.producer_epoch, wanted, tv2=True)
    else:
        error = coordinator.verify_partitions(transactional_id, header.producer_id, header.producer_epoch, wanted)[(topic, partition)]
    error = verification_error(error, abortable_known=version >= _PRODUCE_ABORTABLE_KNOWN)
    if error is ErrorCode.NONE:
        return
    if error is ErrorCode.INVALID_TXN_STATE:
        raise KafkaError(error, "Partition was not added to the transaction")
    if error in _RETRIABLE or (error is ErrorCode.CONCURRENT_TRANSACTIONS and version < _PRODUCE_ADDS_PARTITION):
        raise KafkaError(ErrorCode.NOT_ENOUGH_REPLICAS, f"Unable to verify the partition has been added to the transaction. Underlying error: {error.name}")
    raise KafkaError(error)
