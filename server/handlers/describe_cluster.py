"""DescribeCluster (KIP-700; v1 endpoint types, KIP-919; v2 fenced brokers, KIP-1073): this node
is the whole cluster and its controller, and never fenced while it answers. In a cluster
(server/cluster/) every running node is listed, and v2's `include_fenced_brokers` adds the
stopped and isolated ones as fenced, as Kafka's controller fences a broker it lost."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.cluster.routing import endpoint_of
from ottla.server.context import RequestContext
from ottla.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import DescribeClusterRequest, DescribeClusterResponse

API = ApiKey.DESCRIBE_CLUSTER
VERSIONS = (0, 2)

_BROKERS, _CONTROLLERS = 1, 2
# Kafka's sentinel for "authorized operations not requested".
_OPERATIONS_OMITTED = -(2**31)


def handle(context: RequestContext, header: RequestHeader, request: DescribeClusterRequest) -> DescribeClusterResponse:
    endpoint_type = request.get("endpoint_type", _BROKERS)
    response: DescribeClusterResponse = {
        "throttle_time_ms": 0,
        "error_code": ErrorCode.NONE,
        "error_message": None,
        "endpoint_type": _BROKERS,
        "cluster_id": "",
        "controller_id": -1,
        "brokers": [],
        "cluster_authorized_operations": _OPERATIONS_OMITTED,
    }
    if endpoint_type == _CONTROLLERS:
        # Kafka's brokers refuse to describe controllers: clients must ask a controller listener.
        response["error_code"] = ErrorCode.MISMATCHED_ENDPOINT_TYPE
        response["error_message"] = "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER"
        return response
    if endpoint_type != _BROKERS:
        response["error_code"] = ErrorCode.UNSUPPORTED_ENDPOINT_TYPE
        response["error_message"] = f"Unsupported endpoint type {endpoint_type}"
        return response
    response["cluster_id"] = context.config.cluster_id
    cluster = context.services.cluster
    if cluster is None:
        response["controller_id"] = context.node.node_id
        response["brokers"] = [
            {"broker_id": context.node.node_id, "host": context.node.host, "port": context.node.port, "rack": None, "is_fenced": False}
        ]
    else:
        include_fenced = request.get("include_fenced_brokers", False)
        running = cluster.running_nodes()
        response["controller_id"] = running[0].node_id if running else -1
        for node in cluster.nodes.values():
            endpoint = endpoint_of(context, cluster, node.node_id)
            if endpoint is not None and (node.running or include_fenced):
                response["brokers"].append(
                    {"broker_id": node.node_id, "host": endpoint.host, "port": endpoint.port, "rack": node.rack, "is_fenced": not node.running}
                )
    if request.get("include_cluster_authorized_operations"):
        # Without an authorizer every cluster operation: 8096, as a real Kafka 4 answers; with
        # one, none at all unless the principal may DESCRIBE the cluster (KafkaApis.handleDescribeCluster).
        response["cluster_authorized_operations"] = (
            context.authorized_operations(ResourceType.CLUSTER, CLUSTER_NAME)
            if context.authorize(AclOperation.DESCRIBE, ResourceType.CLUSTER, CLUSTER_NAME) else 0
        )
    return response
