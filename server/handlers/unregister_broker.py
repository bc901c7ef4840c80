"""UnregisterBroker (KIP-631), as Kafka's ReplicationControlManager.unregisterBroker: any
registered broker, fenced or not, is unregistered; an id never registered is
BROKER_ID_NOT_REGISTERED. A single Ottla node is the only broker, and unregistering it
succeeds as the round trip would and changes nothing.

In a cluster every node is registered. Unregistering one takes it out of every ISR and moves
its leadership away (handleBrokerUnregistered). A running node re-registers at its next
heartbeat, as a Kafka broker does, so it is fenced and unfenced at once: its leadership stays
moved and it rejoins the ISRs caught up. A crashed node sends no heartbeat, so it stays
fenced (stopped) until it starts again; a stopped, isolated or shutting-down one holds no
leadership or ISR place already."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.cluster.routing import unclean_allowed
from ottla.server.cluster.state import NodeState
from ottla.server.context import RequestContext
from ottla.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType
from ottla.server.security.refusals import needs_permission
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import UnregisterBrokerRequest, UnregisterBrokerResponse

API = ApiKey.UNREGISTER_BROKER
VERSIONS = (0, 0)


def handle(context: RequestContext, header: RequestHeader, request: UnregisterBrokerRequest) -> UnregisterBrokerResponse:
    if not context.authorize(AclOperation.ALTER, ResourceType.CLUSTER, CLUSTER_NAME):  # ControllerApis: authorizeClusterOperation
        return {"throttle_time_ms": 0, "error_code": ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "error_message": needs_permission(context, AclOperation.ALTER)}
    broker_id = request["broker_id"]
    cluster = context.services.cluster
    registered = context.node.node_id == broker_id if cluster is None else broker_id in cluster.nodes
    if not registered:
        return {"throttle_time_ms": 0, "error_code": ErrorCode.BROKER_ID_NOT_REGISTERED,
                "error_message": f"Broker ID {broker_id} is not currently registered"}
    if cluster is not None:
        state = cluster.nodes[broker_id].state

        def unclean(topic: str) -> bool:
            return unclean_allowed(context.storage, context.config, topic)

        if state is NodeState.RUNNING:
            cluster.set_node_state(broker_id, NodeState.STOPPED, unclean)
            cluster.set_node_state(broker_id, NodeState.RUNNING, unclean)
        elif state is NodeState.CRASHED:
            cluster.set_node_state(broker_id, NodeState.STOPPED, unclean)
    # Kafka 4.4 words success as an empty message, not null.
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": ""}

