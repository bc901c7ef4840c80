"""AlterShareGroupOffsets: move share-partitions' start offsets, dropping what is in flight.

As Kafka 4.4 does, a group with members is refused (NON_EMPTY_GROUP), a group id unknown
to every coordinator creates an empty share group (`kafka-share-groups --reset-offsets` before
the first consumer starts), and any offset is taken: the share-partition makes sense of it at
the next fetch (ShareCoordinator.alter_start_offset).
KafkaApis.handleAlterShareGroupOffsetsRequest asks READ on the group, then on each topic,
and answers a refused or unknown topic itself (TOPIC_AUTHORIZATION_FAILED or
UNKNOWN_TOPIC_OR_PARTITION for each partition, none when no partition is named);
GroupCoordinatorService then refuses an empty group id (INVALID_GROUP_ID), and
GroupMetadataManager.alterShareGroupOffsets answers a partition index an existing topic does
not have with UNKNOWN_TOPIC_OR_PARTITION and its default message.
The answer has one entry per topic name, as AlterShareGroupOffsetsResponse.Builder gathers
them by name: first the topics KafkaApis answered, then the coordinator's, each entry's
partitions in request order (a topic named twice is one entry; a partition named twice is
answered twice), as asked of the reference broker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.cluster.coordinators import GROUP, elsewhere
from ottla.server.context import RequestContext
from ottla.server.security.authorizer import AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, KafkaError, default_message
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        AlterShareGroupOffsetsRequest,
        AlterShareGroupOffsetsResponse,
        AlterShareGroupOffsetsResponseAlterShareGroupOffsetsResponseTopic,
    )

API = ApiKey.ALTER_SHARE_GROUP_OFFSETS
VERSIONS = (0, 0)


def handle(context: RequestContext, header: RequestHeader, request: AlterShareGroupOffsetsRequest) -> AlterShareGroupOffsetsResponse:
    share = context.services.share
    group_id = request["group_id"]
    if not context.authorize(AclOperation.READ, ResourceType.GROUP, group_id):
        return _error(ErrorCode.GROUP_AUTHORIZATION_FAILED, "Group authorization failed.")
    if not group_id:
        # GroupCoordinatorService refuses an empty id before any coordinator looks for the group.
        return _error(ErrorCode.INVALID_GROUP_ID, "The group id is invalid.")
    if (moved := elsewhere(context, GROUP, group_id)) is not None:
        return _error(moved, default_message(moved))  # the client asks its coordinator
    if group_id in context.groups.groups:
        return _error(ErrorCode.GROUP_ID_NOT_FOUND, f"Group {group_id} is not a share group.")
    try:
        group = share.group(group_id)
    except KafkaError as exc:
        return _error(exc.code, None)
    if group.members:
        return _error(ErrorCode.NON_EMPTY_GROUP, "The group is not empty.")
    # Topics KafkaApis answers itself, partition by partition (no entry for a topic named with
    # no partition), then those the coordinator answers: one entry per name in each.
    answered: dict[str, AlterShareGroupOffsetsResponseAlterShareGroupOffsetsResponseTopic] = {}
    altered: dict[str, AlterShareGroupOffsetsResponseAlterShareGroupOffsetsResponseTopic] = {}
    for topic in request["topics"]:
        name = topic["topic_name"]
        info = context.storage.topic(name)
        authorized = context.authorize(AclOperation.READ, ResourceType.TOPIC, name)
        if not authorized or info is None:
            refusal = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION if authorized else ErrorCode.TOPIC_AUTHORIZATION_FAILED
            if topic["partitions"]:
                # AlterShareGroupOffsetsResponse.Builder.addPartition: a refused topic that exists keeps its id.
                topic_id = b"\0" * 16 if info is None else info.topic_id
                entry = answered.setdefault(name, {"topic_name": name, "topic_id": topic_id, "partitions": []})
                entry["partitions"].extend({"partition_index": wanted["partition_index"], "error_code": refusal,
                                            "error_message": default_message(refusal)} for wanted in topic["partitions"])
            continue
        partitions = altered.setdefault(name, {"topic_name": name, "topic_id": info.topic_id, "partitions": []})["partitions"]
        for wanted in topic["partitions"]:
            index, error = wanted["partition_index"], ErrorCode.NONE
            message: str | None = None
            if not 0 <= index < info.partitions:
                error = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                message = default_message(error)
            else:
                try:
                    share.alter_start_offset(group.group_id, info.topic_id, index, wanted["start_offset"])
                except KafkaError as exc:
                    error = exc.code
            partitions.append({"partition_index": index, "error_code": error, "error_message": message})
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": None,
            "responses": [*answered.values(), *altered.values()]}



def _error(code: ErrorCode, message: str | None) -> AlterShareGroupOffsetsResponse:
    return {"throttle_time_ms": 0, "error_code": code, "error_message": message, "responses": []}
