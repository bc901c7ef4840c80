"""DescribeTransactions (KIP-664): each transactional id's state from the coordinator (in a
cluster, NOT_COORDINATOR for an id another node coordinates); an empty id is INVALID_REQUEST.

With an authorizer (KafkaApis.handleDescribeTransactionsRequest): an id the principal may not
DESCRIBE answers TRANSACTIONAL_ID_AUTHORIZATION_FAILED, and a transaction's topics it may not
DESCRIBE are left out of its answer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.cluster.coordinators import TRANSACTION, elsewhere
from ottla.server.context import RequestContext
from ottla.server.security.authorizer import AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        DescribeTransactionsRequest,
        DescribeTransactionsResponse,
        DescribeTransactionsResponseTransactionState,
    )

API = ApiKey.DESCRIBE_TRANSACTIONS
VERSIONS = (0, 0)


def handle(context: RequestContext, header: RequestHeader, request: DescribeTransactionsRequest) -> DescribeTransactionsResponse:
    states: list[DescribeTransactionsResponseTransactionState] = []
    for transactional_id in request["transactional_ids"]:
        allowed = context.authorize(AclOperation.DESCRIBE, ResourceType.TRANSACTIONAL_ID, transactional_id)
        refused = None
        if allowed:
            # TransactionCoordinator.handleDescribeTransactions refuses an empty id before it looks the id up;
            # in a cluster an id another node coordinates is NOT_COORDINATOR: the client asks that one.
            refused = ErrorCode.INVALID_REQUEST if not transactional_id else elsewhere(context, TRANSACTION, transactional_id)
        txn = context.txn.describe(transactional_id) if allowed and refused is None else None
        if txn is None:
            # The message's defaults, as Kafka fills an error entry (DescribeTransactionsResponse.json
            # gives ProducerId no default: 0, not the -1 of "no producer").
            error = refused or (ErrorCode.TRANSACTIONAL_ID_NOT_FOUND if allowed else ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
            states.append(
                {"error_code": error, "transactional_id": transactional_id, "transaction_state": "",
                 "transaction_timeout_ms": 0, "transaction_start_time_ms": 0, "producer_id": 0, "producer_epoch": 0, "topics": []}
            )
            continue
        by_topic: dict[str, list[int]] = {}
        for topic, partition in sorted(txn.partitions):
            by_topic.setdefault(topic, []).append(partition)
        if context.authorizer is not None:
            described = context.authorized(AclOperation.DESCRIBE, ResourceType.TOPIC, by_topic)
            by_topic = {topic: partitions for topic, partitions in by_topic.items() if topic in described}
        states.append(
            {
                "error_code": ErrorCode.NONE,
                "transactional_id": transactional_id,
                "transaction_state": txn.state.value,
                "transaction_timeout_ms": txn.timeout_ms,
                "transaction_start_time_ms": txn.start_ms,
                "producer_id": txn.producer_id,
                "producer_epoch": txn.producer_epoch,
                "topics": [{"topic": topic, "partitions": partitions} for topic, partitions in by_topic.items()],
            }
        )
    return {"throttle_time_ms": 0, "transaction_states": states}
