"""DeleteShareGroupOffsets: an empty share group forgets topics; its next fetch of one
initializes it again from share.auto.offset.reset.

As KafkaApis.handleDeleteShareGroupOffsetsRequest: DELETE on the group
(GROUP_AUTHORIZATION_FAILED), then READ per topic; refused topics are answered first."""

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
    if (moved := elsewhere(context, GROUP, request["group_id"])) is not None:
        return _error(moved, None)  # the client asks its coordinator
    allowed = context.authorized(AclOperation.READ, ResourceType.TOPIC, [topic["topic_name"] for topic in request["topics"]])
    group = share.groups.get(request["group_id"])
    if group is None:
        return _error(ErrorCode.GROUP_ID_NOT_FOUND, f"Group {request['group_id']} not found.")
    if group.members:
        return _error(ErrorCode.NON_EMPTY_GROUP, "The group is not empty.")
    responses: list[DeleteShareGroupOffsetsResponseDeleteShareGroupOffsetsResponseTopic] = [
        {"topic_name": topic["topic_name"], "topic_id": b"\0" * 16, "error_code": ErrorCode.TOPIC_AUTHORIZATION_FAILED,
         "error_message": "Topic authorization failed."}
        for topic in request["topics"] if topic["topic_name"] not in allowed]
    for topic in request["topics"]:
        if topic["topic_name"] not in allowed:
            continue
        info = context.storage.topic(topic["topic_name"])
        error = ErrorCode.NONE
        if info is None:
            error = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        else:
            try:
                share.delete_partition_state(group.group_id, info.topic_id)
            except KafkaError as exc:
                error = exc.code
        responses.append({"topic_name": topic["topic_name"], "topic_id": b"\0" * 16 if info is None else info.topic_id,
                          "error_code": error, "error_message": None})
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": None, "responses": responses}


def _error(code: ErrorCode, message: str | None) -> DeleteShareGroupOffsetsResponse:
    return {"throttle_time_ms": 0, "error_code": code, "error_message": message, "responses": []}
