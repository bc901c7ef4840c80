"""DeleteGroups: empty groups only (NON_EMPTY_GROUP otherwise), offsets included. The
message field of v3 stays null, as Kafka 4.4 leaves it for every error it answers here.
With an authorizer a group needs DELETE, else GROUP_AUTHORIZATION_FAILED after the others
(KafkaApis.handleDeleteGroupsRequest). In a cluster each group is deleted only by its
coordinator: elsewhere it is NOT_COORDINATOR (or COORDINATOR_NOT_AVAILABLE, or
COORDINATOR_LOAD_IN_PROGRESS while its partition is read again), as Kafka answers per group.
A group named more than once is answered once.

The results come in Kafka's order (GroupCoordinatorService.deleteGroups): the groups split by
`__consumer_offsets` partition into a `new HashMap<>()` (computeIfAbsent), whose iteration
order combines the partitions' futures; a partition this node coordinates answers its groups
in the order of `new HashSet<>(groups)` (updateResponseAndGetNonErrorGroupList), one it does
not in request order (the failed write's fallback). Refused groups follow (KafkaApis)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.cluster.coordinators import GROUP, refusal
from ottla.server.context import RequestContext
from ottla.server.java_hashing import chain_order, default_capacity, java_order, sized_capacity, string_hash
from ottla.server.security.authorizer import AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import DeleteGroupsRequest, DeleteGroupsResponse

API = ApiKey.DELETE_GROUPS
VERSIONS = (0, 3)

_OFFSETS_TOPIC_HASH = string_hash("__consumer_offsets")


def _kafka_order(context: RequestContext, names: list[str], elsewhere: set[str]) -> list[str]:
    """`names` (distinct) as GroupCoordinatorService.deleteGroups answers them."""
    by_partition: dict[int, list[str]] = {}
    for name in names:
        by_partition.setdefault(context.groups.offsets_partition(name), []).append(name)
    # TopicPartition.hashCode: 31 * (31 + partition) + topic.hashCode().
    partitions = chain_order(
        [(partition, True) for partition in by_partition], lambda p: (31 * (31 + p) + _OFFSETS_TOPIC_HASH) & 0xFFFFFFFF, default_capacity(len(by_partition))
    )
    ordered = []
    for partition in partitions:
        group = by_partition[partition]
        ordered += group if group[0] in elsewhere else java_order(group, string_hash, sized_capacity(len(group)))
    return ordered


def handle(context: RequestContext, header: RequestHeader, request: DeleteGroupsRequest) -> DeleteGroupsResponse:
    # Kafka answers from a map keyed by group id: a group named twice has one result.
    wanted = list(dict.fromkeys(request["groups_names"]))
    deletable = context.authorized(AclOperation.DELETE, ResourceType.GROUP, wanted)
    names = [name for name in wanted if name in deletable]
    refused = [name for name in wanted if name not in deletable]
    cluster = context.services.cluster
    elsewhere = {} if cluster is None else {name: error for name in names if (error := refusal(context, cluster, GROUP, name)) is not None}
    names = _kafka_order(context, names, set(elsewhere))
    here = [name for name in names if name not in elsewhere]
    share = context.services.share
    context.groups.note_table_peaks(share.groups)  # the tables ListGroups orders by keep their size
    # A share group's id is no classic group's: the classic answer for it is GROUP_ID_NOT_FOUND.
    deleted = iter([share.delete_group(name) if name in share.groups else error for name, error in zip(here, context.groups.delete_groups(here))])
    errors = [elsewhere[name] if name in elsewhere else next(deleted) for name in names]
    errors += [ErrorCode.GROUP_AUTHORIZATION_FAILED] * len(refused)
    return {"throttle_time_ms": 0, "results": [{"group_id": name, "error_code": error, "error_message": None} for name, error in zip(names + refused, errors)]}
