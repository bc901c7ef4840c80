"""ListConfigResources (KIP-1142; v0 was ListClientMetricsResources, KIP-714): the resources
of the asked types that have configs, as Kafka 4.4 lists them.

Topics: every topic. Brokers and broker loggers: every registered broker (this node; in a
cluster every node, a stopped one too, as MetadataCache.getBrokerNodes lists the fenced).
Groups: those with a group config set, by name. Client metrics subscriptions (KIP-714): those
with a config set. An empty type list means all of those; a type with no configs at all (or
unknown) fails the whole request with UNSUPPORTED_VERSION.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.cluster.routing import endpoint_of
from ottla.server.context import RequestContext
from ottla.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import ListConfigResourcesRequest, ListConfigResourcesResponse, ListConfigResourcesResponseConfigResource

API = ApiKey.LIST_CONFIG_RESOURCES
VERSIONS = (0, 1)

# ConfigResource.Type ids.
TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP = 2, 4, 8, 16, 32
# In the order Kafka 4.4 lists them, whatever order the request names them in
# (KafkaApis.handleListConfigResources).
_LISTABLE = (GROUP, CLIENT_METRICS, BROKER_LOGGER, BROKER, TOPIC)


def handle(context: RequestContext, header: RequestHeader, request: ListConfigResourcesRequest) -> ListConfigResourcesResponse:
    if not context.authorize(AclOperation.DESCRIBE_CONFIGS, ResourceType.CLUSTER, CLUSTER_NAME):
        return {"throttle_time_ms": 0, "error_code": ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "config_resources": []}
    # v0 asks for client metrics resources only.
    types = request.get("resource_types", [CLIENT_METRICS]) or list(_LISTABLE)
    if any(kind not in _LISTABLE for kind in types):
        return {"throttle_time_ms": 0, "error_code": ErrorCode.UNSUPPORTED_VERSION, "config_resources": []}
    resources: list[ListConfigResourcesResponseConfigResource] = []
    for kind in (kind for kind in _LISTABLE if kind in types):
        if kind == TOPIC:
            resources += [{"resource_name": topic.name, "resource_type": TOPIC} for topic in context.storage.topics()]
        elif kind in (BROKER, BROKER_LOGGER):
            resources += [{"resource_name": str(node_id), "resource_type": kind} for node_id in _broker_ids(context)]
        elif kind == GROUP:
            resources += [{"resource_name": group_id, "resource_type": GROUP} for group_id in sorted(context.groups.configs.overrides)]
        elif kind == CLIENT_METRICS:
            resources += [{"resource_name": name, "resource_type": CLIENT_METRICS} for name in context.services.telemetry.names()]
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "config_resources": resources}


def _broker_ids(context: RequestContext) -> list[int]:
    """The brokers registered with an endpoint, by id (Kafka's cluster image holds them by id)."""
    cluster = context.services.cluster
    if cluster is None:
        return [context.node.node_id]
    return sorted(node_id for node_id in cluster.nodes if endpoint_of(context, cluster, node_id) is not None)
