"""InitProducerId: a producer id and epoch, through the transaction coordinator.

Without a transactional id every call gets a fresh id at epoch 0 (idempotent producers,
which bump their own epoch after an error, KIP-360). With one, the coordinator bumps
the id's epoch, fencing the previous producer and aborting what it left open; v3+ may
name the producer id and epoch being bumped, and get PRODUCER_FENCED when they are
stale. Ids are unique across restarts (server/txn/coordinator.py ProducerIdManager).

With an authorizer (KafkaApis.handleInitProducerIdRequest): a transactional id needs WRITE on
it (else TRANSACTIONAL_ID_AUTHORIZATION_FAILED); an idempotent producer needs IDEMPOTENT_WRITE
on the cluster or, since KIP-679, WRITE on any topic (else CLUSTER_AUTHORIZATION_FAILED).
Then, before the coordinator looks at anything, a producer id and epoch of which exactly one is
-1 name no producer: INVALID_REQUEST (v3+ carry them; older versions read as both -1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import InitProducerIdRequest, InitProducerIdResponse

API = ApiKey.INIT_PRODUCER_ID
VERSIONS = (0, 5)


def handle(context: RequestContext, header: RequestHeader, request: InitProducerIdRequest) -> InitProducerIdResponse:
    refusal = _refusal(context, request["transactional_id"])
    if refusal is not None:
        return {"throttle_time_ms": 0, "error_code": refusal, "producer_id": -1, "producer_epoch": -1}
    if (request.get("producer_id", -1) == -1) != (request.get("producer_epoch", -1) == -1):
        return {"throttle_time_ms": 0, "error_code": ErrorCode.INVALID_REQUEST, "producer_id": -1, "producer_epoch": -1}
    result = context.txn.init_producer_id(
        request["transactional_id"], request["transaction_timeout_ms"], request.get("producer_id", -1), request.get("producer_epoch", -1)
    )
    error = result.error
    if error is ErrorCode.PRODUCER_FENCED and header.api_version < 4:
        error = ErrorCode.INVALID_PRODUCER_EPOCH  # KafkaApis: older clients do not know PRODUCER_FENCED (KIP-588)
    return {"throttle_time_ms": 0, "error_code": error, "producer_id": result.producer_id, "producer_epoch": result.producer_epoch}


def _refusal(context: RequestContext, transactional_id: str | None) -> ErrorCode | None:
    authorizer = context.authorizer
    if authorizer is None:
        return None
    if transactional_id is not None:
        if context.authorize(AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID, transactional_id):
            return None
        return ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    if context.authorize(AclOperation.IDEMPOTENT_WRITE, ResourceType.CLUSTER, CLUSTER_NAME) or authorizer.authorize_by_resource_type(
        context.client.principal, context.client_host, AclOperation.WRITE, ResourceType.TOPIC
    ):
        return None
    return ErrorCode.CLUSTER_AUTHORIZATION_FAILED
