"""AddPartitionsToTxn: partitions join a transactional producer's open transaction.

v0-3 carry one transaction (from the producer); v4+ a batch of them, and `verify_only`
asks whether partitions already joined (KIP-890; sent between brokers, as brokers over one
database send it: server/txn/verification.py). A v5 add comes from a broker serving a
transaction version 2 client, whose Produce or TxnOffsetCommit adds its own partition. A
partition of an unknown topic gets UNKNOWN_TOPIC_OR_PARTITION and the others
OPERATION_NOT_ATTEMPTED, nothing added, as KafkaApis.handleAddPartitionsToTxnRequest. Those
per-partition answers come from a map (each partition once); one error for the whole
transaction (the coordinator's, or a refused transactional id) repeats the request's shape.

With an authorizer, as that method checks: v4+ come from brokers and need CLUSTER_ACTION
(else the whole answer is CLUSTER_AUTHORIZATION_FAILED); v0-3 need WRITE on the
transactional id (else every partition is TRANSACTIONAL_ID_AUTHORIZATION_FAILED) and on
each topic, an internal topic never (TOPIC_AUTHORIZATION_FAILED, before unknown topics).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.server.groups import INTERNAL_TOPICS
from ottla.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        AddPartitionsToTxnRequest,
        AddPartitionsToTxnRequestAddPartitionsToTxnTopic,
        AddPartitionsToTxnResponse,
        AddPartitionsToTxnResponseAddPartitionsToTxnPartitionResult,
        AddPartitionsToTxnResponseAddPartitionsToTxnTopicResult,
    )

API = ApiKey.ADD_PARTITIONS_TO_TXN
VERSIONS = (0, 5)


def handle(context: RequestContext, header: RequestHeader, request: AddPartitionsToTxnRequest) -> AddPartitionsToTxnResponse:
    version = header.api_version
    if version <= 3:
        results = _one(context, version, request["v3_and_below_transactional_id"], request["v3_and_below_producer_id"],
                       request["v3_and_below_producer_epoch"], False, request["v3_and_below_topics"])
        return {"throttle_time_ms": 0, "results_by_topic_v3_and_below": results}
    if not context.authorize(AclOperation.CLUSTER_ACTION, ResourceType.CLUSTER, CLUSTER_NAME):
        return {"throttle_time_ms": 0, "error_code": ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "results_by_transaction": []}
    return {
        "throttle_time_ms": 0,
        "error_code": ErrorCode.NONE,
        "results_by_transaction": [
            {
                "transactional_id": txn["transactional_id"],
                "topic_results": _one(context, version, txn["transactional_id"], txn["producer_id"], txn["producer_epoch"], txn["verify_only"], txn["topics"]),
            }
            for txn in request["transactions"]
        ],
    }


def _one(
    context: RequestContext,
    version: int,
    transactional_id: str,
    producer_id: int,
    producer_epoch: int,
    verify_only: bool,
    topics: list[AddPartitionsToTxnRequestAddPartitionsToTxnTopic],
) -> list[AddPartitionsToTxnResponseAddPartitionsToTxnTopicResult]:
    wanted = [(topic["name"], partition) for topic in topics for partition in topic["partitions"]]
    storage = context.storage
    refused: dict[tuple[str, int], ErrorCode] = {}
    if context.authorizer is not None and version <= 3:
        if not context.authorize(AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID, transactional_id):
            return _as_asked(topics, ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
        allowed = context.authorized(AclOperation.WRITE, ResourceType.TOPIC, (name for name, _ in wanted if name not in INTERNAL_TOPICS))
        refused = {tp: ErrorCode.TOPIC_AUTHORIZATION_FAILED for tp in wanted if tp[0] not in allowed}
    for name, partition in wanted:
        info = storage.topic(name)
        if (name, partition) not in refused and (info is None or not 0 <= partition < info.partitions):
            refused[(name, partition)] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    if refused:
        return _by_topic({tp: refused.get(tp, ErrorCode.OPERATION_NOT_ATTEMPTED) for tp in wanted})
    if verify_only:
        return _by_topic(context.txn.verify_partitions(transactional_id, producer_id, producer_epoch, set(wanted)))
    # A broker adds partitions for a transaction version 2 client's Produce v12+ or
    # TxnOffsetCommit v5+, from v5 (TransactionVersion.transactionVersionForAddPartitionsToTxn).
    error = context.txn.add_partitions(transactional_id, producer_id, producer_epoch, set(wanted), tv2=version >= 5)
    if error is ErrorCode.PRODUCER_FENCED and version < 2:
        error = ErrorCode.INVALID_PRODUCER_EPOCH  # KIP-588: older clients do not know PRODUCER_FENCED
    return _as_asked(topics, error)


def _as_asked(
    topics: list[AddPartitionsToTxnRequestAddPartitionsToTxnTopic], error: ErrorCode
) -> list[AddPartitionsToTxnResponseAddPartitionsToTxnTopicResult]:
    """One error for the whole transaction, answered in the request's own shape: each topic and
    partition as listed, repeats and topics without partitions included
    (AddPartitionsToTxnRequest.errorResponseForTransaction)."""
    return [
        {"name": topic["name"], "results_by_partition": [{"partition_index": p, "partition_error_code": error} for p in topic["partitions"]]}
        for topic in topics
    ]


def _by_topic(errors: dict[tuple[str, int], ErrorCode]) -> list[AddPartitionsToTxnResponseAddPartitionsToTxnTopicResult]:
    """Errors per partition, answered from the map (AddPartitionsToTxnResponse.resultForTransaction):
    each partition once, under its topic, and no topic without one."""
    by_topic: dict[str, list[AddPartitionsToTxnResponseAddPartitionsToTxnPartitionResult]] = {}
    for (name, partition), error in errors.items():
        by_topic.setdefault(name, []).append({"partition_index": partition, "partition_error_code": error})
    return [{"name": name, "results_by_partition": results} for name, results in by_topic.items()]
