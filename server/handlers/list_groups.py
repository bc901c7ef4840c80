"""ListGroups: every group this coordinator knows (in a cluster, those it coordinates), filtered
by state (v4, KIP-518) and by type (v5, KIP-848): classic groups, share, consumer and streams
groups. With an authorizer, every group takes DESCRIBE on the cluster; without it, only the
groups the principal may DESCRIBE.

The groups are listed in Kafka's order: its coordinator runtime asks every `__consumer_offsets`
shard in the iteration order of its ConcurrentHashMap of shards, and each shard lists its groups
(of every type) in the iteration order of its TimelineHashMap. Clients keep that order where it
shows (AdminClient's HashMap of listings, for two ids in one bucket)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.cluster.coordinators import GROUP, coordinator_node
from ottla.server.context import RequestContext
from ottla.server.java_hashing import TIMELINE_INITIAL_SLOTS, string_hash, timeline_slot, timeline_slots_before_put
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


_OFFSETS_TOPIC = "__consumer_offsets"


def _shard_buckets(partitions: int) -> list[int]:
    """Each shard's bucket in CoordinatorRuntime's `new ConcurrentHashMap<>()` of
    TopicPartition(__consumer_offsets, p), all put: 16 buckets, doubled on reaching 3/4 full;
    TopicPartition.hashCode is 31 * (31 + partition) + topic.hashCode(). A node of a cluster
    holds only the shards it leads, in a map sized for them: Ottla sizes it for every shard."""
    capacity = 16
    while partitions >= capacity * 3 // 4:
        capacity *= 2
    topic_hash = string_hash(_OFFSETS_TOPIC)
    buckets = []
    for partition in range(partitions):
        h = (31 * (31 + partition) + topic_hash) & 0xFFFFFFFF
        buckets.append((h ^ (h >> 16)) & 0x7FFFFFFF & (capacity - 1))
    return buckets


def _table_slots(size: int) -> int:
    """The slots of a shard's TimelineHashMap of groups that has held at most `size`: 2 at
    first, doubled before an insertion that would make (size + 1) * 0.75 exceed them, never
    shrunk (so groups deleted since still count)."""
    slots = TIMELINE_INITIAL_SLOTS
    for held in range(size):
        slots = timeline_slots_before_put(slots, held)
    return slots


def _kafka_order(context: RequestContext, listed: list[ListGroupsResponseListedGroup]) -> list[ListGroupsResponseListedGroup]:
    """`listed` by shard bucket, then by slot of the shard's table; within a slot its
    iterators give the last inserted first (Ottla takes the listing order for insertion)."""
    partitions = context.groups.log.partitions
    buckets = _shard_buckets(partitions)
    sizes = context.groups.note_table_peaks(context.services.share.groups)

    def position(item: tuple[int, ListGroupsResponseListedGroup]) -> tuple[int, int, int]:
        index, group = item
        shard = context.groups.offsets_partition(group["group_id"])
        return buckets[shard], timeline_slot(group["group_id"], _table_slots(sizes.get(shard, 1))), -index

    return [group for _, group in sorted(enumerate(listed), key=position)]


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
    listed = _kafka_order(context, listed)
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
