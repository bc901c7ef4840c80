"""ListGroups: every group this coordinator knows (in a cluster, those it coordinates), filtered
by state (v4, KIP-518) and by type (v5, KIP-848): classic groups, share, consumer and streams
groups. With an authorizer, every group takes DESCRIBE on the cluster; without it, only the
groups the principal may DESCRIBE."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.cluster.coordinators import GROUP, coordinator_node
from ottla.server.context import RequestContext
from ottla.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import ListGroupsRequest, ListGroupsResponse, ListGroupsResponseListedGroup

API = ApiKey.LIST_GROUPS
VERSIONS = (0, 5)

_CLASSIC = "classic"
_CONSUMER = "consumer"  # KIP-848 groups: their type and their protocol type
_SHARE = "share"
_STREAMS = "streams"  # KIP-1071 groups: their type and their protocol type


# Java's String.trim: every code point up to the space.
_JAVA_WHITESPACE = "".join(map(chr, range(0x21)))


def handle(context: RequestContext, header: RequestHeader, request: ListGroupsRequest) -> ListGroupsResponse:
    types = {name.lower() for name in request.get("types_filter") or ()}
    # GroupMetadataManager.listGroups compares each state filter lower-cased and trimmed.
    states = {state.lower().strip(_JAVA_WHITESPACE) for state in request.get("states_filter") or ()}
    groups = [] if types and _CLASSIC not in types else context.groups.list_groups(states)
    listed: list[ListGroupsResponseListedGroup] = [
        {"group_id": g.group_id, "protocol_type": g.protocol_type or "", "group_state": g.state.value, "group_type": _CLASSIC}
        for g in groups
    ]
    if not types or _SHARE in types:
        # Share groups (KIP-932) carry protocol type "share".
        listed += [
            {"group_id": g.group_id, "protocol_type": _SHARE, "group_state": g.state.value, "group_type": _SHARE}
            for g in context.services.share.groups.values()
            if not states or g.state.value.lower() in states
        ]
    if not types or _CONSUMER in types:
        listed += [
            {"group_id": g.group_id, "protocol_type": _CONSUMER, "group_state": g.state.value, "group_type": _CONSUMER}
            for g in context.groups.list_consumer_groups(states)
        ]
    if not types or _STREAMS in types:
        listed += [
            {"group_id": g.group_id, "protocol_type": _STREAMS, "group_state": g.state.value, "group_type": _STREAMS}
            for g in context.groups.list_streams_groups(states)
        ]
    cluster = context.services.cluster
    if cluster is not None:
        # Each coordinator lists its own groups, so a client asking every node (AdminClient's
        # listConsumerGroups) sees each group once.
        listed = [g for g in listed if coordinator_node(context, cluster, GROUP, g["group_id"]) == context.node.node_id]
    if context.authorizer is not None and not context.authorize(AclOperation.DESCRIBE, ResourceType.CLUSTER, CLUSTER_NAME):
        # KafkaApis.handleListGroupsRequest: without DESCRIBE on the cluster, the groups it may DESCRIBE.
        described = context.authorized(AclOperation.DESCRIBE, ResourceType.GROUP, (g["group_id"] for g in listed))
        listed = [g for g in listed if g["group_id"] in described]
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "groups": listed}
