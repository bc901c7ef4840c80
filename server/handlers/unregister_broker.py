"""UnregisterBroker (KIP-631): Kafka removes a broker's registration and a live broker registers
again at its next heartbeat. Ottla's only broker is the node answering, always registered, so
unregistering it succeeds as that round trip would and changes nothing; any other id is unknown."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import UnregisterBrokerRequest, UnregisterBrokerResponse

API = ApiKey.UNREGISTER_BROKER
VERSIONS = (0, 0)


def handle(context: RequestContext, header: RequestHeader, request: UnregisterBrokerRequest) -> UnregisterBrokerResponse:
    if not context.authorize(AclOperation.ALTER, ResourceType.CLUSTER, CLUSTER_NAME):  # ControllerApis: authorizeClusterOperation
        return {"throttle_time_ms": 0, "error_code": ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "error_message": "Request is not authorized."}
    broker_id = request["broker_id"]
    if broker_id != context.node.node_id:
        return {"throttle_time_ms": 0, "error_code": ErrorCode.BROKER_ID_NOT_REGISTERED,
                "error_message": f"Broker ID {broker_id} is not currently registered"}
    # Kafka 4.4 words success as an empty message, not null.
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": ""}
