"""OffsetCommit: partitions of unknown topics are refused here, as KafkaApis does; the
rest go to the coordinator, which stores them in `__consumer_offsets` before answering
(a share group's id holds none: GROUP_ID_NOT_FOUND).

From v10 (KIP-848) topics are named by id alone: an id no topic has (the zero id too)
answers UNKNOWN_TOPIC_ID for each of its partitions, and the answer names topics by id.
Offsets are stored by topic name either way, so every version reads the same commits.

With an authorizer (KafkaApis.handleOffsetCommitRequest): without READ on the group every
partition is GROUP_AUTHORIZATION_FAILED; without READ on a topic (named, or resolved from a
known id) its partitions are TOPIC_AUTHORIZATION_FAILED, even when it does not exist.

In a cluster only the partitions that reach the coordinator carry its NOT_COORDINATOR (or
COORDINATOR_NOT_AVAILABLE, or COORDINATOR_LOAD_IN_PROGRESS) when another node coordinates
the group: those refused here keep their own error, as KafkaApis merges the two answers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.cluster.coordinators import GROUP, elsewhere
from ottla.server.context import RequestContext
from ottla.server.groups import CommitEntry
from ottla.server.security.authorizer import AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import OffsetCommitRequest, OffsetCommitResponse, OffsetCommitResponseOffsetCommitResponseTopic

API = ApiKey.OFFSET_COMMIT
VERSIONS = (0, 10)


def handle(context: RequestContext, header: RequestHeader, request: OffsetCommitRequest) -> OffsetCommitResponse:
    version = header.api_version
    storage = context.storage
    if not context.authorize(AclOperation.READ, ResourceType.GROUP, request["group_id"]):
        return {"throttle_time_ms": 0, "topics": [
            {"name": topic.get("name", ""), "topic_id": topic.get("topic_id", bytes(16)), "partitions": [
                {"partition_index": p["partition_index"], "error_code": ErrorCode.GROUP_AUTHORIZATION_FAILED} for p in topic["partitions"]]}
            for topic in request["topics"]]}
    # As Kafka's response builder builds the answer: the topics refused here first (in request
    # order), each once, and the coordinator's answers merged into them (OffsetCommitResponse.
    # Builder.merge); with none refused here, the coordinator's answer as it gave it, one topic per
    # request topic that reached it, repeats included. Keyed by slot: (name, id), or the position.
    answered: dict[tuple[str, bytes] | int, OffsetCommitResponseOffsetCommitResponseTopic] = {}

    def answer(slot: tuple[str, bytes] | int, name: str, topic_id: bytes, index: int | None, error: ErrorCode = ErrorCode.NONE) -> None:
        """Adds partition `index` (none: only the topic) to the answer's topic in `slot`."""
        topic = answered.get(slot)
        if topic is None:
            topic = answered[slot] = {"name": name, "topic_id": topic_id, "partitions": []}
        if index is not None:
            topic["partitions"].append({"partition_index": index, "error_code": error})

    valid: list[tuple[int, str, bytes, int]] = []  # the request topic's position, response topic and partition of each entry
    entries: list[CommitEntry] = []
    for position, topic in enumerate(request["topics"]):
        name, topic_id = topic.get("name", ""), topic.get("topic_id", bytes(16))
        info = storage.topic_by_id(topic_id) if version >= 10 else storage.topic(name)
        missing = ErrorCode.UNKNOWN_TOPIC_ID if version >= 10 else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        # An unknown id answers as such before any check; a name is checked whether it exists or not.
        named = info.name if info is not None else (None if version >= 10 else name)
        if named is not None and not context.authorize(AclOperation.READ, ResourceType.TOPIC, named):
            info, missing = None, ErrorCode.TOPIC_AUTHORIZATION_FAILED
        if info is None:
            # Refused whole, a topic is answered even with no partitions (the response builder's
            # addPartitions makes its entry first); a known one only through its partitions.
            answer((name, topic_id), name, topic_id, None)
        for partition in topic["partitions"]:
            index = partition["partition_index"]
            if info is None:
                answer((name, topic_id), name, topic_id, index, missing)
            elif not 0 <= index < info.partitions:
                answer((name, topic_id), name, topic_id, index, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
            else:
                valid.append((position, name, topic_id, index))
                entries.append(
                    CommitEntry(info.name, index, partition["committed_offset"], partition.get("committed_leader_epoch", -1), partition["committed_metadata"])
                )
    errors: list[ErrorCode] = []
    if entries and (moved := elsewhere(context, GROUP, request["group_id"])) is not None:
        errors = [moved] * len(entries)
    elif entries:
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
            share_group=lambda group_id: group_id in context.services.share.groups,
        )
    merged = bool(answered)
    for (position, name, topic_id, index), error in zip(valid, errors):
        answer((name, topic_id) if merged else position, name, topic_id, index, error)
    return {"throttle_time_ms": 0, "topics": list(answered.values())}
