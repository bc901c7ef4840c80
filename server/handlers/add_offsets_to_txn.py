"""AddOffsetsToTxn: the group's `__consumer_offsets` partition joins the transaction, so
a later TxnOffsetCommit is committed or aborted with it.

With an authorizer (KafkaApis.handleAddOffsetsToTxnRequest): WRITE on the transactional id
(else TRANSACTIONAL_ID_AUTHORIZATION_FAILED), then READ on the group (else GROUP_AUTHORIZATION_FAILED)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.server.security.authorizer import AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import AddOffsetsToTxnRequest, AddOffsetsToTxnResponse

API = ApiKey.ADD_OFFSETS_TO_TXN
VERSIONS = (0, 4)


def handle(context: RequestContext, header: RequestHeader, request: AddOffsetsToTxnRequest) -> AddOffsetsToTxnResponse:
    if not context.authorize(AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID, request["transactional_id"]):
        return {"throttle_time_ms": 0, "error_code": ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED}
    if not context.authorize(AclOperation.READ, ResourceType.GROUP, request["group_id"]):
        return {"throttle_time_ms": 0, "error_code": ErrorCode.GROUP_AUTHORIZATION_FAILED}
    error = context.txn.add_offsets(request["transactional_id"], request["producer_id"], request["producer_epoch"], request["group_id"])
    if error is ErrorCode.PRODUCER_FENCED and header.api_version < 2:
        error = ErrorCode.INVALID_PRODUCER_EPOCH  # KIP-588: older clients do not know PRODUCER_FENCED
    return {"throttle_time_ms": 0, "error_code": error}
