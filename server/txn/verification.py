"""Server-side checks of transactional writes (KIP-890): a partition accepts a transaction's
first batch only once the transaction coordinator knows the partition is in it.

Part 1 (Kafka 3.6+): before a transactional Produce reaches a partition where its producer
has no open transaction, the broker asks the coordinator whether the partition was added
(AddPartitionsToTxn verify_only, ReplicaManager.handleProduceAppend), so a late or
hanging write of a transaction that already ended cannot open a new one there. Part 2
(transaction version 2, Produce v12+): the client no longer sends AddPartitionsToTxn;
the Produce itself adds the partition (AddPartitionsToTxnManager's ADD_PARTITION).

Kafka's broker sends that question to the coordinator over the network. When the
coordinator is in the same process (one broker, or an in-process cluster) it is a call, and
the answer arrives before the append: no verification guard is needed to catch a marker
written in between. Brokers over one database run each coordinator in the process of the
broker leading its partition: a transactional id coordinated elsewhere is asked over the
network (an inter-broker AddPartitionsToTxn v5, server/cluster/peers.py), as Kafka's
AddPartitionsToTxnManager asks, and only then is the batch appended. Kafka's verification
guard also refuses the append when the coordinator ended the transaction in that round trip
(a timeout abort); that guard is not kept here, so such a late batch is appended. What the
partition was asked about is kept (`start_verification`, before either kind of asking) for the
sequence rules Kafka applies to the batch.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from ottla.server.txn.coordinator import TransactionCoordinator, verification_error
from ottla.storage.log import PartitionLog
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.records import BATCH_HEADER_SIZE, read_header

if TYPE_CHECKING:
    from ottla.server.context import RequestContext

# Produce v11 is the first that knows TRANSACTION_ABORTABLE, v12 the first that adds its
# partition (AddPartitionsToTxnManager.produceRequestVersionToTransactionSupportedOperation).
_PRODUCE_ABORTABLE_KNOWN = 11
_PRODUCE_ADDS_PARTITION = 12
# The batched, broker-only form with verify_only (v4) that knows TRANSACTION_ABORTABLE (v5).
_INTER_BROKER_VERSION = 5

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
    producer = unverified_producer(log, records)
    if producer is None:
        return
    producer_id, producer_epoch = producer
    start_verification(log, records, producer, version, coordinator.wall_clock_ms())
    wanted = {(topic, partition)}
    if version >= _PRODUCE_ADDS_PARTITION:
        error = coordinator.add_partitions(transactional_id, producer_id, producer_epoch, wanted, tv2=True)
    else:
        error = coordinator.verify_partitions(transactional_id, producer_id, producer_epoch, wanted)[(topic, partition)]
    raise_for_answer(error, version)


def unverified_producer(log: PartitionLog, records: memoryview) -> tuple[int, int] | None:
    """The producer id and epoch of a transactional batch the coordinator must be asked
    about; None when there is nothing to ask (not transactional, or a transaction of the
    producer at this epoch is open in the partition already). An epoch below the producer's
    in the partition is INVALID_PRODUCER_EPOCH (no message) before anything is asked, whatever
    transactional id the request names (UnifiedLog.maybeStartTransactionVerification)."""
    if len(records) < BATCH_HEADER_SIZE:
        return None
    header = read_header(records)
    if not header.is_transactional or header.producer_id < 0:
        return None
    known = log.producer_state.producers.get(header.producer_id)
    if known is not None and header.producer_epoch < known.epoch:
        raise KafkaError(ErrorCode.INVALID_PRODUCER_EPOCH)
    if log.producer_state.has_ongoing_transaction(header.producer_id, header.producer_epoch):
        return None
    return header.producer_id, header.producer_epoch


def start_verification(log: PartitionLog, records: memoryview, producer: tuple[int, int], version: int, now_ms: int) -> None:
    """Record that the coordinator is about to be asked about the batch of `producer`
    (`unverified_producer`), as UnifiedLog.maybeStartTransactionVerification does before it asks:
    the append is then held to what was asked (ProducerAppendInfo.checkSequence), and the record
    stays if the answer refuses."""
    producer_id, producer_epoch = producer
    sequence = read_header(records).base_sequence
    log.producer_state.start_verification(producer_id, sequence, producer_epoch, version >= _PRODUCE_ADDS_PARTITION, now_ms)


def raise_for_answer(error: ErrorCode, version: int) -> None:
    """Raise what a Produce of `version` answers for the coordinator's `error` (NONE: nothing)."""
    error = verification_error(error, abortable_known=version >= _PRODUCE_ABORTABLE_KNOWN)
    if error is ErrorCode.NONE:
        return
    if error is ErrorCode.INVALID_TXN_STATE:
        raise KafkaError(error, "Partition was not added to the transaction")
    if error in _RETRIABLE or (error is ErrorCode.CONCURRENT_TRANSACTIONS and version < _PRODUCE_ADDS_PARTITION):
        raise KafkaError(ErrorCode.NOT_ENOUGH_REPLICAS, f"Unable to verify the partition has been added to the transaction. Underlying error: {error.name}")
    raise KafkaError(error)


def remote_coordinator(context: RequestContext, transactional_id: str) -> int | None:
    """The node coordinating `transactional_id` when it is a broker in another process (brokers
    over one database); None when the coordinator can be called here."""
    cluster = context.services.cluster
    database = sys.modules.get("ottla.server.cluster.database")
    if cluster is None or database is None or not isinstance(cluster, database.DatabaseClusterState):
        return None
    from ottla.server.cluster.coordinators import TRANSACTION, coordinator_node

    node = coordinator_node(context, cluster, TRANSACTION, transactional_id)
    return None if node == context.node.node_id else node


async def ask_coordinator(
    context: RequestContext, node: int, transactional_id: str, producer_id: int, producer_epoch: int, partitions: list[tuple[str, int]], add: bool
) -> dict[tuple[str, int], ErrorCode]:
    """The coordinator on broker `node`'s answer for each partition: whether it is in the
    producer's transaction (`add`: added to it), as AddPartitionsToTxnManager asks and maps it.
    A failed connection is NETWORK_EXCEPTION, and a refusal of the whole request (a top-level
    error) is each partition's, CLUSTER_AUTHORIZATION_FAILED as INVALID_TXN_STATE, since a
    client cannot act on the broker's own authorization."""
    from ottla.server.cluster.peers import peers_of
    from ottla.wire.api import ApiKey

    assert context.services.cluster is not None
    by_topic: dict[str, list[int]] = {}
    for name, index in partitions:
        by_topic.setdefault(name, []).append(index)
    request: dict[str, Any] = {"transactions": [{
        "transactional_id": transactional_id, "producer_id": producer_id, "producer_epoch": producer_epoch, "verify_only": not add,
        "topics": [{"name": name, "partitions": indexes} for name, indexes in by_topic.items()],
    }]}
    try:
        peer = peers_of(context.services.cluster, context.config, context.node.node_id).connection(node)
        answer = await peer.request(ApiKey.ADD_PARTITIONS_TO_TXN, _INTER_BROKER_VERSION, request)
    except (ConnectionError, TimeoutError, OSError):
        return dict.fromkeys(partitions, ErrorCode.NETWORK_EXCEPTION)
    top = ErrorCode(answer.get("error_code", 0))
    if top is not ErrorCode.NONE:
        return dict.fromkeys(partitions, ErrorCode.INVALID_TXN_STATE if top is ErrorCode.CLUSTER_AUTHORIZATION_FAILED else top)
    errors = dict.fromkeys(partitions, ErrorCode.NETWORK_EXCEPTION)
    for transaction in answer.get("results_by_transaction", ()):
        for topic in transaction["topic_results"]:
            for result in topic["results_by_partition"]:
                key = (topic["name"], result["partition_index"])
                if key in errors:
                    errors[key] = ErrorCode(result["partition_error_code"])
    return errors
