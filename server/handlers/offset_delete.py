"""OffsetDelete (KIP-496): drop a group's offsets for topics it no longer reads."""

from __future__ import annotations

from typing import Any

from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

API = ApiKey.OFFSET_DELETE
VERSIONS = (0, 0)


def handle(broker, header, request: dict[str, Any]) -> dict[str, Any]:
    storage = broker.storage
    known = []
    unknown = []
    for topic in request["topics"]:
        indexes = [partition["partition_index"] for partition in topic["partitions"]]
        (known if storage.topic(topic["name"]) is not None else unknown).append((topic["name"], indexes))
    error, results = broker.groups.delete_offsets(request["group_id"], known)
    if error is not ErrorCode.NONE:
        return {"error_code": error, "throttle_time_ms": 0, "topics": []}
    # KafkaApis answers topics it does not know without asking the coordinator.
    results += [(name, [(index, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION) for index in indexes]) for name, indexes in unknown]
    topics = [
        {"name": name, "partitions": [{"partition_index": index, "error_code": code} for index, code in partitions]}
        for name, partitions in results
    ]
    return {"error_code": ErrorCode.NONE, "throttle_time_ms": 0, "topics": topics}
