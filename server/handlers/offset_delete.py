"""OffsetDelete (KIP-496): drop a group's offsets for topics it no longer reads.

With an authorizer (KafkaApis.handleOffsetDeleteRequest): DELETE on the group (else
GROUP_AUTHORIZATION_FAILED), then READ on each topic (else TOPIC_AUTHORIZATION_FAILED).
KafkaApis also answers UNKNOWN_TOPIC_OR_PARTITION itself for a topic or partition its
metadata does not have, so before the coordinator can find the group subscribed to it.
The topics answered here are listed before those the coordinator answered, one entry per
topic, as Kafka's response builder merges them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.server.security.authorizer import AclOperation, ResourceType
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
    if not context.authorize(AclOperation.DELETE, ResourceType.GROUP, request["group_id"]):
        return {"error_code": ErrorCode.GROUP_AUTHORIZATION_FAILED, "throttle_time_ms": 0, "topics": []}
    storage = context.storage
    allowed = context.authorized(AclOperation.READ, ResourceType.TOPIC, (topic["name"] for topic in request["topics"]))
    known: list[tuple[str, list[int]]] = []
    # Answered without asking the coordinator, as KafkaApis does, by topic.
    answered: dict[str, list[tuple[int, ErrorCode]]] = {}
    for topic in request["topics"]:
        name = topic["name"]
        indexes = [partition["partition_index"] for partition in topic["partitions"]]
        info = storage.topic(name) if name in allowed else None
        if name not in allowed:
            answered.setdefault(name, []).extend((index, ErrorCode.TOPIC_AUTHORIZATION_FAILED) for index in indexes)
        elif info is None:
            answered.setdefault(name, []).extend((index, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION) for index in indexes)
        else:
            # A partition the topic does not have is unknown, whatever the group reads.
            missing = [index for index in indexes if not 0 <= index < info.partitions]
            if missing:
                answered.setdefault(name, []).extend((index, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION) for index in missing)
            present = [index for index in indexes if 0 <= index < info.partitions]
            if present:
                known.append((name, present))
    error, results = context.groups.delete_offsets(request["group_id"], known)
    if error is not ErrorCode.NONE:
        return {"error_code": error, "throttle_time_ms": 0, "topics": []}
    # The topics answered here first, then the coordinator's, one entry per topic
    # (OffsetDeleteResponse.Builder.merge).
    for name, partitions in results:
        answered.setdefault(name, []).extend(partitions)
    topics: list[OffsetDeleteResponseOffsetDeleteResponseTopic] = [
        {"name": name, "partitions": [{"partition_index": index, "error_code": code} for index, code in partitions]}
        for name, partitions in answered.items()
    ]
    return {"error_code": ErrorCode.NONE, "throttle_time_ms": 0, "topics": topics}
