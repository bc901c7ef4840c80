"""OffsetDelete (KIP-496): drop a group's offsets for topics it no longer reads."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        OffsetDeleteRequest,
        OffsetDeleteResponse,
        OffsetDeleteResponseOffsetDeleteResponseTopic,
    )

API = ApiKey.OFFSET_DELETE
VERSIONS = (0, 0)


def handle(context: RequestContext, header: RequestHeader, request: OffsetDeleteRequest) -> OffsetDeleteResponse:
    storage = context.storage
    known: list[tuple[str, list[int]]] = []
    unknown: list[tuple[str, list[int]]] = []
    for topic in request["topics"]:
        indexes = [partition["partition_index"] for partition in topic["partitions"]]
        (known if storage.topic(topic["name"]) is not None else unknown).append((topic["name"], indexes))
    error, results = context.groups.delete_offsets(request["group_id"], known)
    if error is not ErrorCode.NONE:
        return {"error_code": error, "throttle_time_ms": 0, "topics": []}
    # KafkaApis answers topics it does not know without asking the coordinator.
    results += [(name, [(index, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION) for index in indexes]) for name, indexes in unknown]
    topics: list[OffsetDeleteResponseOffsetDeleteResponseTopic] = [
        {"name": name, "partitions": [{"partition_index": index, "error_code": code} for index, code in partitions]}
        for name, partitions in results
    ]
    return {"error_code": ErrorCode.NONE, "throttle_time_ms": 0, "topics": topics}
