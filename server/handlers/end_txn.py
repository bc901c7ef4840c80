"""EndTxn: commit or abort; the markers are in every partition before the answer (in a
PostgreSQL partition too: written by a task, awaited, and the Complete state after it, before
the answer).
v5 (KIP-890, transaction version 2) bumps the epoch with each end and returns it.
With an authorizer it needs WRITE on the transactional id (KafkaApis.handleEndTxnRequest)."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from ottla.server.context import RequestContext
from ottla.server.security.authorizer import AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import EndTxnRequest, EndTxnResponse

API = ApiKey.END_TXN
VERSIONS = (0, 5)


def handle(context: RequestContext, header: RequestHeader, request: EndTxnRequest) -> EndTxnResponse | Coroutine[Any, Any, EndTxnResponse]:
    version = header.api_version
    if not context.authorize(AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID, request["transactional_id"]):
        return {"throttle_time_ms": 0, "error_code": ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, "producer_id": -1, "producer_epoch": -1}
    result = context.txn.end_transaction(
        request["transactional_id"], request["producer_id"], request["producer_epoch"], request["committed"], tv2=version >= 5
    )
    error = result.error
    if error is ErrorCode.PRODUCER_FENCED and version < 2:
        error = ErrorCode.INVALID_PRODUCER_EPOCH  # KIP-588: older clients do not know PRODUCER_FENCED
    response: EndTxnResponse = {"throttle_time_ms": 0, "error_code": error, "producer_id": result.producer_id, "producer_epoch": result.producer_epoch}
    if context.storage.is_async and error is not ErrorCode.INVALID_REQUEST:
        # An empty id is refused before any transaction is looked at: no markers to wait for.
        return _after_markers(context, response, request["transactional_id"])
    return response


async def _after_markers(context: RequestContext, response: EndTxnResponse, transactional_id: str) -> EndTxnResponse:
    """The answer once the markers are in and the transaction completed. An end that exhausted
    the epoch moved the id to a new producer id at completion: v5 answers that one."""
    await context.txn.database_markers.settled()
    await context.txn.completion(transactional_id)
    txn = context.txn.describe(transactional_id)
    if response["error_code"] == ErrorCode.NONE and txn is not None and txn.previous_producer_id == response["producer_id"] >= 0:
        response["producer_id"], response["producer_epoch"] = txn.producer_id, txn.producer_epoch
    return response
