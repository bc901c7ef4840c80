"""ListTransactions (KIP-664): transactional ids by state and producer id; v1 adds
`duration_filter` (KIP-994), transactions open longer than that many ms; v2 adds
`transactional_id_pattern` (KIP-1152), a regular expression in RE2/J's syntax the whole id must
match (Kafka 4.4's TransactionStateManager.listTransactionStates compiles it with
`com.google.re2j.Pattern` and tests `Matcher.matches`). One that does not compile is refused as
INVALID_REGULAR_EXPRESSION by an exception, so the answer is ListTransactionsRequest's error
response: no transactions and no unknown state filters either.
In a cluster a node lists the transactions it coordinates; while it is reading any of its
`__transaction_state` partitions again (brokers over one database, one just gained) it answers
COORDINATOR_LOAD_IN_PROGRESS and nothing else, as Kafka 4.4's
TransactionStateManager.listTransactionStates does while `loadingPartitions` is not empty, before
any filter. With an authorizer the ids the principal may not DESCRIBE are left out
(KafkaApis.handleListTransactionsRequest)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.cluster.coordinators import TRANSACTION, coordinator_node
from ottla.server.context import RequestContext
from ottla.server.re2j import compile_re2j, re2j_problem
from ottla.server.security.authorizer import AclOperation, ResourceType
from ottla.server.txn.state import TxnState
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import ListTransactionsRequest, ListTransactionsResponse

API = ApiKey.LIST_TRANSACTIONS
VERSIONS = (0, 2)

_STATE_NAMES = {state.value for state in TxnState}


def handle(context: RequestContext, header: RequestHeader, request: ListTransactionsRequest) -> ListTransactionsResponse:
    if context.txn.log.loading_any():
        return {"throttle_time_ms": 0, "error_code": ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, "unknown_state_filters": [], "transaction_states": []}
    pattern = request.get("transactional_id_pattern")
    if pattern and re2j_problem(pattern) is not None:
        return {"throttle_time_ms": 0, "error_code": ErrorCode.INVALID_REGULAR_EXPRESSION, "unknown_state_filters": [], "transaction_states": []}
    wanted = set(request["state_filters"])
    found = context.txn.list_transactions(wanted & _STATE_NAMES, set(request["producer_id_filters"]), request.get("duration_filter", -1))
    if wanted and not wanted & _STATE_NAMES:
        found = []  # only unknown states asked for: none can match
    if pattern:
        matcher = compile_re2j(pattern)
        found = [txn for txn in found if matcher.fullmatch(txn.transactional_id)]
    cluster = context.services.cluster
    if cluster is not None:
        # Each coordinator lists its own transactions (TransactionStateManager.listTransactionStates),
        # so a client asking every node (AdminClient's listTransactions) sees each once.
        here = context.node.node_id
        found = [txn for txn in found if coordinator_node(context, cluster, TRANSACTION, txn.transactional_id) == here]
    if context.authorizer is not None:
        described = context.authorized(AclOperation.DESCRIBE, ResourceType.TRANSACTIONAL_ID, (txn.transactional_id for txn in found))
        found = [txn for txn in found if txn.transactional_id in described]
    return {
        "throttle_time_ms": 0,
        "error_code": ErrorCode.NONE,
        "unknown_state_filters": sorted(wanted - _STATE_NAMES),
        "transaction_states": [
            {"transactional_id": txn.transactional_id, "producer_id": txn.producer_id, "transaction_state": txn.state.value} for txn in found
        ],
    }
