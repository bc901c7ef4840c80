"""OffsetFetch: one group before v8, a batch of groups from v8 (KIP-709).

A partition with no committed offset answers -1 with no error; null topics (v2+) ask
for every offset the group has. With `require_stable` (v7+, KIP-447) a partition whose
offset is pending in an open transaction answers UNSTABLE_OFFSET_COMMIT, so the client
retries until the transaction ends (OffsetMetadataManager.fetchOffsets).

From v10 (KIP-848) topics are named by id: an id no topic has answers UNKNOWN_TOPIC_ID for
each partition asked, and a request for every offset leaves out those of deleted topics,
which no longer have an id. Offsets are stored by name, so every version reads the same ones.

With an authorizer (KafkaApis.fetchOffsetsForGroup): a group needs DESCRIBE (else
GROUP_AUTHORIZATION_FAILED and no topics; before v2, which has no top-level error, each
partition asked for carries it); a topic asked for needs DESCRIBE (else its
partitions answer TOPIC_AUTHORIZATION_FAILED), and a request for every offset leaves out the
topics the principal may not DESCRIBE. The topics refused here (unknown ids too) follow the
coordinator's in request order, and a group the coordinator fails lists none of them.

In a cluster each group of a v8+ request is answered by its own coordinator: another node's
group is NOT_COORDINATOR (or COORDINATOR_NOT_AVAILABLE, or COORDINATOR_LOAD_IN_PROGRESS) and
the others are answered in full. Before v8 the one group is refused whole (cluster/coordinators.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TYPE_CHECKING

from ottla.server.cluster.coordinators import GROUP, elsewhere
from ottla.server.context import RequestContext
from ottla.server.security.authorizer import AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        OffsetFetchRequest,
        OffsetFetchResponse,
        OffsetFetchResponseOffsetFetchResponseGroup,
        OffsetFetchResponseOffsetFetchResponsePartitions,
        OffsetFetchResponseOffsetFetchResponseTopic,
        OffsetFetchResponseOffsetFetchResponseTopics,
    )

API = ApiKey.OFFSET_FETCH
VERSIONS = (0, 10)


def handle(context: RequestContext, header: RequestHeader, request: OffsetFetchRequest) -> OffsetFetchResponse:
    version = header.api_version
    require_stable = request.get("require_stable", False)
    if version >= 8:
        groups: list[OffsetFetchResponseOffsetFetchResponseGroup] = []
        for group in request["groups"]:
            # Each group goes to its own coordinator (KafkaApis.handleOffsetFetchRequest), which
            # answers another node's group NOT_COORDINATOR, once the principal may DESCRIBE it
            # (else `_fetch` refuses it). From v9 a consumer group's member names itself and its
            # epoch (KIP-848), checked by the coordinator.
            group_error = ErrorCode.NONE
            if context.authorize(AclOperation.DESCRIBE, ResourceType.GROUP, group["group_id"]):
                moved = elsewhere(context, GROUP, group["group_id"])
                group_error = moved if moved is not None else context.groups.validate_offset_fetch(
                    group["group_id"], group.get("member_id"), group.get("member_epoch", -1))
            group_topics: list[OffsetFetchResponseOffsetFetchResponseTopics] = []
            if group_error is ErrorCode.NONE:
                group_error, group_topics = _fetch(context, group["group_id"], group["topics"], require_stable, by_id=version >= 10)
            groups.append({"group_id": group["group_id"], "error_code": group_error, "topics": group_topics})
        return {"throttle_time_ms": 0, "groups": groups}
    error, found = _fetch(context, request["group_id"], request["topics"], require_stable, by_id=False)
    if version < 2 and error is ErrorCode.GROUP_AUTHORIZATION_FAILED:
        # OffsetFetchResponse.groupError: with no top-level error field, the request's topics as
        # listed carry it.
        found = [_refused(topic["name"], bytes(16), list(topic["partition_indexes"]), error) for topic in request["topics"] or ()]
    topics: list[OffsetFetchResponseOffsetFetchResponseTopic] = [
        {"name": topic["name"], "partitions": [{**partition} for partition in topic["partitions"]]} for topic in found
    ]
    if version < 2 and error is not ErrorCode.NONE:
        # No top-level error before v2: each partition carries it.
        for topic in topics:
            for partition in topic["partitions"]:
                partition["error_code"] = error
    return {"throttle_time_ms": 0, "error_code": error, "topics": topics}


def _fetch(
    context: RequestContext, group_id: str, requested: Sequence[Mapping[str, Any]] | None, require_stable: bool, by_id: bool
) -> tuple[ErrorCode, list[OffsetFetchResponseOffsetFetchResponseTopics]]:
    """The committed offsets of one group, as v8+ lists them (older versions copy them)."""
    if not context.authorize(AclOperation.DESCRIBE, ResourceType.GROUP, group_id):
        return ErrorCode.GROUP_AUTHORIZATION_FAILED, []
    storage = context.storage
    # The topics answered here, listed in request order after the coordinator's ones
    # (KafkaApis.fetchOffsetsForGroup): an id no topic has, or a topic the principal may not DESCRIBE.
    refused: list[OffsetFetchResponseOffsetFetchResponseTopics] = []
    wanted: list[tuple[str, list[int]]] | None = None
    if requested is not None:
        resolved = [(asked, storage.topic_by_id(asked.get("topic_id", bytes(16))) if by_id else None) for asked in requested]
        known = [info.name if info is not None else asked.get("name", "") for asked, info in resolved if not by_id or info is not None]
        allowed = None if context.authorizer is None else context.authorized(AclOperation.DESCRIBE, ResourceType.TOPIC, known)
        wanted = []
        for asked, info in resolved:
            topic_id, indexes = asked.get("topic_id", bytes(16)), list(asked["partition_indexes"])
            name = info.name if info is not None else asked.get("name", "")
            if by_id and info is None:
                refused.append(_refused("", topic_id, indexes, ErrorCode.UNKNOWN_TOPIC_ID))
            elif allowed is not None and name not in allowed:
                refused.append(_refused(name, topic_id, indexes, ErrorCode.TOPIC_AUTHORIZATION_FAILED))
            else:
                wanted.append((name, indexes))
    error, found = context.groups.fetch_offsets(group_id, wanted)
    if error is not ErrorCode.NONE and wanted is not None:
        found = [(topic, [(partition, None) for partition in partitions]) for topic, partitions in wanted]
    elif requested is None and context.authorizer is not None:
        allowed = context.authorized(AclOperation.DESCRIBE, ResourceType.TOPIC, (topic for topic, _ in found))
        found = [(topic, partitions) for topic, partitions in found if topic in allowed]
    topics: list[OffsetFetchResponseOffsetFetchResponseTopics] = []
    for topic, partitions in found:
        topic_id = bytes(16)
        if by_id:
            info = storage.topic(topic)
            if info is None:
                continue  # a deleted topic's offsets: it has no id to name it by
            topic_id = info.topic_id
        entries: list[OffsetFetchResponseOffsetFetchResponsePartitions] = []
        for partition, value in partitions:
            entry = _unknown(partition, ErrorCode.NONE)
            if require_stable and context.groups.has_pending_transactional_offset(group_id, topic, partition):
                entry["error_code"] = ErrorCode.UNSTABLE_OFFSET_COMMIT
            elif value is not None:
                entry.update({"committed_offset": value.offset, "committed_leader_epoch": value.leader_epoch, "metadata": value.metadata})
            entries.append(entry)
        topics.append({"name": topic, "topic_id": topic_id, "partitions": entries})
    if error is ErrorCode.NONE:
        topics += refused
    return error, topics


def _refused(name: str, topic_id: bytes, indexes: list[int], error: ErrorCode) -> OffsetFetchResponseOffsetFetchResponseTopics:
    return {"name": name, "topic_id": topic_id, "partitions": [_unknown(index, error) for index in indexes]}


def _unknown(partition: int, error: ErrorCode) -> OffsetFetchResponseOffsetFetchResponsePartitions:
    """A partition with no committed offset to show."""
    return {"partition_index": partition, "committed_offset": -1, "committed_leader_epoch": -1, "metadata": "", "error_code": error}
