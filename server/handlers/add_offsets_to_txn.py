"""AddOffsetsToTxn: the group's `__consumer_offsets` partition joins the transaction, so
a later TxnOffsetCommit is committed or aborted with it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import AddOffsetsToTxnRequest, AddOffsetsToTxnResponse

API = ApiKey.ADD_OFFSETS_TO_TXN
VERSIONS = (0, 4)


def handle(context: RequestContext, header: RequestHeader, request: AddOffsetsToTxnRequest) -> AddOffsetsToTxnResponse:
    error = context.txn.add_offsets(request["transactional_id"], request["producer_id"], request["producer_epoch"], request["group_id"])
    if error is ErrorCode.PRODUCER_FENCED and header.api_version < 2:
        error = ErrorCode.INVALID_PRODUCER_EPOCH  # KIP-588: older clients do not know PRODUCER_FENCED
    return {"throttle_time_ms": 0, "error_code": error}
