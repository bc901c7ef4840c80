"""InitProducerId: a producer id and epoch, through the transaction coordinator.

Without a transactional id every call gets a fresh id at epoch 0 (idempotent producers,
which bump their own epoch after an error, KIP-360). With one, the coordinator bumps
the id's epoch, fencing the previous producer and aborting what it left open; v3+ may
name the producer id and epoch being bumped, and get PRODUCER_FENCED when they are
stale. Ids are unique across restarts (server/txn/coordinator.py ProducerIdManager).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import InitProducerIdRequest, InitProducerIdResponse

API = ApiKey.INIT_PRODUCER_ID
VERSIONS = (0, 5)


def handle(context: RequestContext, header: RequestHeader, request: InitProducerIdRequest) -> InitProducerIdResponse:
    result = context.txn.init_producer_id(
        request["transactional_id"], request["transaction_timeout_ms"], request.get("producer_id", -1), request.get("producer_epoch", -1)
    )
    error = result.error
    if error is ErrorCode.PRODUCER_FENCED and header.api_version < 4:
        error = ErrorCode.INVALID_PRODUCER_EPOCH  # KafkaApis: older clients do not know PRODUCER_FENCED (KIP-588)
    return {"throttle_time_ms": 0, "error_code": error, "producer_id": result.producer_id, "producer_epoch": result.producer_epoch}
