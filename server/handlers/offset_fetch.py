"""OffsetFetch: one group before v8, a batch of groups from v8 (KIP-709).

A partition with no committed offset answers -1 with no error; null topics (v2+) ask
for every offset the group has. With `require_stable` (v7+, KIP-447) a partition whose
offset is pending in an open transaction answers UNSTABLE_OFFSET_COMMIT, so the client
retries until the transaction ends (OffsetMetadataManager.fetchOffsets).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ottla.server.context import RequestContext
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader
from ottla.wire.messages.types import (
    OffsetFetchRequest,
    OffsetFetchResponse,
    OffsetFetchResponseOffsetFetchResponseGroup,
    OffsetFetchResponseOffsetFetchResponsePartitions,
    OffsetFetchResponseOffsetFetchResponseTopic,
    OffsetFetchResponseOffsetFetchResponseTopics,
)

API = ApiKey.OFFSET_FETCH
VERSIONS = (0, 9)


def handle(context: RequestContext, header: RequestHeader, request: OffsetFetchRequest) -> OffsetFetchResponse:
    version = header.api_version
    require_stable = request.get("require_stable", False)
    if version >= 8:
        groups: list[OffsetFetchResponseOffsetFetchResponseGroup] = []
        for group in request["groups"]:
            group_error, group_topics = _fetch(context, group["group_id"], group["topics"], require_stable)
            groups.append({"group_id": group["group_id"], "error_code": group_error, "topics": group_topics})
        return {"throttle_time_ms": 0, "groups": groups}
    error, found = _fetch(context, request["group_id"], request["topics"], require_stable)
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
    context: RequestContext, group_id: str, requested: Sequence[Mapping[str, Any]] | None, require_stable: bool
) -> tuple[ErrorCode, list[OffsetFetchResponseOffsetFetchResponseTopics]]:
    """The committed offsets of one group, as v8+ lists them (older versions copy them)."""
    wanted = None if requested is None else [(topic["name"], list(topic["partition_indexes"])) for topic in requested]
    error, found = context.groups.fetch_offsets(group_id, wanted)
    if error is not ErrorCode.NONE and wanted is not None:
        found = [(topic, [(partition, None) for partition in partitions]) for topic, partitions in wanted]
    topics: list[OffsetFetchResponseOffsetFetchResponseTopics] = []
    for topic, partitions in found:
        entries: list[OffsetFetchResponseOffsetFetchResponsePartitions] = []
        for partition, value in partitions:
            entry: OffsetFetchResponseOffsetFetchResponsePartitions = {"partition_index": partition, "committed_offset": -1, "committed_leader_epoch": -1, "metadata": "", "error_code": ErrorCode.NONE}
            if require_stable and context.groups.has_pending_transactional_offset(group_id, topic, partition):
                entry["error_code"] = ErrorCode.UNSTABLE_OFFSET_COMMIT
            elif value is not None:
                entry.update({"committed_offset": value.offset, "committed_leader_epoch": value.leader_epoch, "metadata": value.metadata})
            entries.append(entry)
        topics.append({"name": topic, "partitions": entries})
    return error, topics
