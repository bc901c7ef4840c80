"""OffsetCommit: partitions of unknown topics are refused here, as KafkaApis does; the
rest go to the coordinator, which stores them in `__consumer_offsets` before answering.

From v10 (KIP-848) topics are named by id alone: an id no topic has (the zero id too)
answers UNKNOWN_TOPIC_ID for each of its partitions, and the answer names topics by id.
Offsets are stored by topic name either way, so every version reads the same commits.

With an authorizer (KafkaApis.handleOffsetCommitRequest): without READ on the group every
partition is GROUP_AUTHORIZATION_FAILED; without READ on a topic (named, or resolved from a
known id) its partitions are TOPIC_AUTHORIZATION_FAILED, even when it does not exist."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.server.groups import CommitEntry
from ottla.server.security.authorizer import AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        OffsetCommitRequest,
        OffsetCommitResponse,
        OffsetCommitResponseOffsetCommitResponsePartition,
        OffsetCommitResponseOffsetCommitResponseTopic,
    )

API = ApiKey.OFFSET_COMMIT
VERSIONS = (0, 10)


def handle(context: RequestContext, header: RequestHeader, request: OffsetCommitRequest) -> OffsetCommitResponse:
    version = header.api_version
    storage = context.storage
    entries: list[CommitEntry] = []
    slots: list[tuple[OffsetCommitResponseOffsetCommitResponsePartition, int]] = []  # (response partition, index into entries)
    topics: list[OffsetCommitResponseOffsetCommitResponseTopic] = []
    if not context.authorize(AclOperation.READ, ResourceType.GROUP, request["group_id"]):
        for topic in request["topics"]:
            topics.append({"name": topic.get("name", ""), "topic_id": topic.get("topic_id", bytes(16)), "partitions": [
                {"partition_index": p["partition_index"], "error_code": ErrorCode.GROUP_AUTHORIZATION_FAILED} for p in topic["partitions"]]})
        return {"throttle_time_ms": 0, "topics": topics}
    for topic in request["topics"]:
        topic_id = topic.get("topic_id", bytes(16))
        info = storage.topic_by_id(topic_id) if version >= 10 else storage.topic(topic.get("name", ""))
        missing = ErrorCode.UNKNOWN_TOPIC_ID if version >= 10 else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        # An unknown id answers as such before any check; a name is checked whether it exists or not.
        named = info.name if info is not None else (None if version >= 10 else topic.get("name", ""))
        if named is not None and not context.authorize(AclOperation.READ, ResourceType.TOPIC, named):
            info, missing = None, ErrorCode.TOPIC_AUTHORIZATION_FAILED
        partitions: list[OffsetCommitResponseOffsetCommitResponsePartition] = []
        for partition in topic["partitions"]:
            index = partition["partition_index"]
            answer: OffsetCommitResponseOffsetCommitResponsePartition = {
                "partition_index": index,
                "error_code": missing if info is None else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
            }
            if info is not None and 0 <= index < info.partitions:
                slots.append((answer, len(entries)))
                entries.append(
                    CommitEntry(info.name, index, partition["committed_offset"], partition.get("committed_leader_epoch", -1), partition["committed_metadata"])
                )
            partitions.append(answer)
        topics.append({"name": topic.get("name", ""), "topic_id": topic_id, "partitions": partitions})
    if entries:
        errors = context.groups.commit_offsets(
            request["group_id"],
            request.get("generation_id_or_member_epoch", -1),
            request.get("member_id", ""),
            request.get("group_instance_id"),
            entries,
            # v2-v4 may set a retention for these offsets; -1 means the broker's. Added to the
            # commit time it must stay an int64 (Kafka's long silently wraps): 2**62 ms is forever.
            retention_ms=min(request.get("retention_time_ms", -1), 2**62),
            # From v9 a missing group is named as such (KIP-848) rather than ILLEGAL_GENERATION.
            missing_group_error=ErrorCode.GROUP_ID_NOT_FOUND if version >= 9 else ErrorCode.ILLEGAL_GENERATION,
            api_version=version,
        )
        for answer, index in slots:
            answer["error_code"] = errors[index]
    return {"throttle_time_ms": 0, "topics": topics}
