"""OffsetFetch: one group before v8, a batch of groups from v8 (KIP-709).

A partition with no committed offset answers -1 with no error; null topics (v2+) ask
for every offset the group has. With `require_stable` (v7+, KIP-447) a partition whose
offset is pending in an open transaction answers UNSTABLE_OFFSET_COMMIT, so the client
retries until the transaction ends (OffsetMetadataManager.fetchOffsets).
"""

from __future__ import annotations

from typing import Any

from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

API = ApiKey.OFFSET_FETCH
VERSIONS = (0, 9)


def handle(broker, header, request: dict[str, Any]) -> dict[str, Any]:
    version = header.api_version
    require_stable = request.get("require_stable", False)
    if version >= 8:
        groups = []
        for group in request["groups"]:
            error, topics = _fetch(broker, group["group_id"], group["topics"], require_stable)
            groups.append({"group_id": group["group_id"], "error_code": error, "topics": topics})
        return {"throttle_time_ms": 0, "groups": groups}
    error, topics = _fetch(broker, request["group_id"], request["topics"], require_stable)
    if version < 2 and error is not ErrorCode.NONE:
        # No top-level error before v2: each partition carries it.
        for topic in topics:
            for partition in topic["partitions"]:
                partition["error_code"] = error
    return {"throttle_time_ms": 0, "error_code": error, "topics": topics}


def _fetch(broker, group_id: str, requested: list[dict[str, Any]] | None, require_stable: bool) -> tuple[ErrorCode, list[dict[str, Any]]]:
    wanted = None if requested is None else [(topic["name"], list(topic["partition_indexes"])) for topic in requested]
    error, found = broker.groups.fetch_offsets(group_id, wanted)
    if error is not ErrorCode.NONE and wanted is not None:
        found = [(topic, [(partition, None) for partition in partitions]) for topic, partitions in wanted]
    topics = []
    for topic, partitions in found:
        entries = []
        for partition, value in partitions:
            entry = {"partition_index": partition, "committed_offset": -1, "committed_leader_epoch": -1, "metadata": "", "error_code": ErrorCode.NONE}
            if require_stable and broker.groups.has_pending_transactional_offset(group_id, topic, partition):
                entry["error_code"] = ErrorCode.UNSTABLE_OFFSET_COMMIT
            elif value is not None:
                entry.update(committed_offset=value.offset, committed_leader_epoch=value.leader_epoch, metadata=value.metadata)
            entries.append(entry)
        topics.append({"name": topic, "partitions": entries})
    return error, topics
