"""DeleteShareGroupOffsets: an empty share group forgets topics; its next fetch of one
initializes it again from share.auto.offset.reset.

As KafkaApis.handleDeleteShareGroupOffsetsRequest: DELETE on the group
(GROUP_AUTHORIZATION_FAILED), then READ per topic; refused topics are answered first. Then as
GroupCoordinatorService: an empty group id is INVALID_GROUP_ID; a missing topic, or one the
group has no initialized share state for, is UNKNOWN_TOPIC_OR_PARTITION, each in Kafka's words.
After the refused topics come the deleted ones in HashMap order, then those errors, as named
(GroupCoordinatorShard.completeDeleteShareGroupOffsets).

Divergence: a group that never initialized any topic answers those errors per topic; Kafka,
which keeps no share-state metadata for such a group, answers no topic at all."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.cluster.coordinators import GROUP, elsewhere
from ottla.server.context import RequestContext
from ottla.server.java_hashing import chain_order, default_capacity, java_order, uuid_hash
from ottla.server.security.authorizer import AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, default_message
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        DeleteShareGroupOffsetsRequest,
        DeleteShareGroupOffsetsResponse,
        DeleteShareGroupOffsetsResponseDeleteShareGroupOffsetsResponseTopic,
    )

API = ApiKey.DELETE_SHARE_GROUP_OFFSETS
VERSIONS = (0, 0)


def handle(context: RequestContext, header: RequestHeader, request: DeleteShareGroupOffsetsRequest) -> DeleteShareGroupOffsetsResponse:
    share = context.services.share
    if not context.authorize(AclOperation.DELETE, ResourceType.GROUP, request["group_id"]):
        return _error(ErrorCode.GROUP_AUTHORIZATION_FAILED, "Group authorization failed.")
    if not request["group_id"]:
        # GroupCoordinatorService refuses an empty id before any coordinator looks for the group.
        return _error(ErrorCode.INVALID_GROUP_ID, "The group id is invalid.")
    if (moved := elsewhere(context, GROUP, request["group_id"])) is not None:
        return _error(moved, default_message(moved))  # the client asks its coordinator
    allowed = context.authorized(AclOperation.READ, ResourceType.TOPIC, [topic["topic_name"] for topic in request["topics"]])
    group_id = request["group_id"]
    group = share.groups.get(group_id)
    if group is None:
        # GroupMetadataManager.shareGroup: an id a group of another type holds is named so.
        held = (group_id in context.groups.groups or context.groups.consumer_group(group_id) is not None
                or context.groups.streams_group(group_id) is not None)
        return _error(ErrorCode.GROUP_ID_NOT_FOUND, f"Group {group_id} is not a share group." if held else f"Group {group_id} not found.")
    if group.members:
        return _error(ErrorCode.NON_EMPTY_GROUP, "The group is not empty.")
    responses: list[DeleteShareGroupOffsetsResponseDeleteShareGroupOffsetsResponseTopic] = [
        {"topic_name": topic["topic_name"], "topic_id": b"\0" * 16, "error_code": ErrorCode.TOPIC_AUTHORIZATION_FAILED,
         "error_message": "Topic authorization failed."}
        for topic in request["topics"] if topic["topic_name"] not in allowed]
    failed: list[DeleteShareGroupOffsetsResponseDeleteShareGroupOffsetsResponseTopic] = []
    eligible: dict[bytes, str] = {}
    for topic in request["topics"]:
        if topic["topic_name"] not in allowed:
            continue
        info = context.storage.topic(topic["topic_name"])
        if info is None:
            failed.append({"topic_name": topic["topic_name"], "topic_id": b"\0" * 16, "error_code": ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                           "error_message": "This server does not host this topic-partition."})
        elif info.topic_id in group.initialized or info.topic_id in eligible:
            # GroupMetadataManager.sharePartitionsEligibleForOffsetDeletion: only a topic the
            # group initialized has offsets to delete (so a second delete of one is refused);
            # one named again in the same request is being deleted, and answered once.
            eligible[info.topic_id] = topic["topic_name"]
        else:
            failed.append({"topic_name": topic["topic_name"], "topic_id": b"\0" * 16, "error_code": ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                           "error_message": "There is no offset information to delete."})
    # The deleted topics come first, as GroupMetadataManager.completeDeleteShareGroupOffsets
    # lists its HashMap of them, filled (put) as DefaultStatePersister.deleteState's HashMap by
    # topic id (computeIfAbsent) iterates; then the refused ones (GroupCoordinatorShard).
    deleted = chain_order([(topic_id, True) for topic_id in eligible], uuid_hash, default_capacity(max(len(eligible) - 1, 0)))
    done: list[DeleteShareGroupOffsetsResponseDeleteShareGroupOffsetsResponseTopic] = []
    errors = share.delete_offsets(group.group_id, deleted)
    for topic_id in java_order(deleted, uuid_hash, default_capacity(len(deleted))):
        if topic_id in errors:
            code = errors[topic_id]
            failed.append({"topic_name": eligible[topic_id], "topic_id": topic_id, "error_code": code, "error_message": default_message(code)})
            continue
        done.append({"topic_name": eligible[topic_id], "topic_id": topic_id, "error_code": ErrorCode.NONE, "error_message": None})
    responses += done + failed
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": None, "responses": responses}


def _error(code: ErrorCode, message: str | None) -> DeleteShareGroupOffsetsResponse:
    return {"throttle_time_ms": 0, "error_code": code, "error_message": message, "responses": []}
