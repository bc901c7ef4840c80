"""AlterShareGroupOffsets: move share-partitions' start offsets, dropping what is in flight.

As Kafka 4.4 does, a group with members is refused (NON_EMPTY_GROUP), a group id unknown
to every coordinator creates an empty share group (`kafka-share-groups --reset-offsets` before
the first consumer starts), and any offset is taken: the share-partition makes sense of it at
the next fetch (ShareCoordinator.alter_start_offset).
KafkaApis.handleAlterShareGroupOffsetsRequest asks READ on the group, then on each topic
(TOPIC_AUTHORIZATION_FAILED for its partitions).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.cluster.coordinators import GROUP, elsewhere
from ottla.server.context import RequestContext
from ottla.server.security.authorizer import AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        AlterShareGroupOffsetsRequest,
        AlterShareGroupOffsetsResponse,
        AlterShareGroupOffsetsResponseAlterShareGroupOffsetsResponsePartition,
        AlterShareGroupOffsetsResponseAlterShareGroupOffsetsResponseTopic,
    )

API = ApiKey.ALTER_SHARE_GROUP_OFFSETS
VERSIONS = (0, 0)


def handle(context: RequestContext, header: RequestHeader, request: AlterShareGroupOffsetsRequest) -> AlterShareGroupOffsetsResponse:
    share = context.services.share
    group_id = request["group_id"]
    if not context.authorize(AclOperation.READ, ResourceType.GROUP, group_id):
        return _error(ErrorCode.GROUP_AUTHORIZATION_FAILED, "Group authorization failed.")
    if (moved := elsewhere(context, GROUP, group_id)) is not None:
        return _error(moved, None)  # the client asks its coordinator
    if group_id in context.groups.groups:
        return _error(ErrorCode.GROUP_ID_NOT_FOUND, f"Group {group_id} is not a share group.")
    try:
        group = share.group(group_id)
    except KafkaError as exc:
        return _error(exc.code, None)
    if group.members:
        return _error(ErrorCode.NON_EMPTY_GROUP, "The group is not empty.")
    responses: list[AlterShareGroupOffsetsResponseAlterShareGroupOffsetsResponseTopic] = []
    for topic in request["topics"]:
        info = context.storage.topic(topic["topic_name"])
        partitions: list[AlterShareGroupOffsetsResponseAlterShareGroupOffsetsResponsePartition] = []
        for wanted in topic["partitions"]:
            index, error = wanted["partition_index"], ErrorCode.NONE
            if not context.authorize(AclOperation.READ, ResourceType.TOPIC, topic["topic_name"]):
                error = ErrorCode.TOPIC_AUTHORIZATION_FAILED
            elif info is None or not 0 <= index < info.partitions:
                error = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            else:
                try:
                    share.alter_start_offset(group.group_id, info.topic_id, index, wanted["start_offset"])
                except KafkaError as exc:
                    error = exc.code
            partitions.append({"partition_index": index, "error_code": error, "error_message": None})
        responses.append({"topic_name": topic["topic_name"], "topic_id": b"\0" * 16 if info is None else info.topic_id,
                          "partitions": partitions})
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": None, "responses": responses}


def _error(code: ErrorCode, message: str | None) -> AlterShareGroupOffsetsResponse:
    return {"throttle_time_ms": 0, "error_code": code, "error_message": message, "responses": []}
