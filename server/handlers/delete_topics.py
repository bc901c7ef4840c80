"""DeleteTopics, by name (v0-5) or by name or id (v6).

With an authorizer (ControllerApis.deleteTopics): DELETE on the cluster allows every topic;
else a topic needs DELETE on itself, and TOPIC_AUTHORIZATION_FAILED answers otherwise. A name
the principal may not DESCRIBE is refused before it is looked up, so that it reveals nothing;
an id is resolved first (UNKNOWN_TOPIC_ID), and its refusal names the topic only when the
principal may DESCRIBE it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.server.handlers._topics import resolve_topic_name
from ottla.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        DeleteTopicsRequest,
        DeleteTopicsResponse,
        DeleteTopicsResponseDeletableTopicResult,
    )

API = ApiKey.DELETE_TOPICS
VERSIONS = (0, 6)


def handle(context: RequestContext, header: RequestHeader, request: DeleteTopicsRequest) -> DeleteTopicsResponse:
    if header.api_version >= 6:
        wanted: list[tuple[str | None, bytes | None]] = [(t["name"], t["topic_id"]) for t in request["topics"]]
    else:
        wanted = [(name, None) for name in request["topic_names"]]
    storage = context.storage
    checked = context.authorizer is not None and not context.authorize(AclOperation.DELETE, ResourceType.CLUSTER, CLUSTER_NAME)
    responses: list[DeleteTopicsResponseDeletableTopicResult] = []
    for name, topic_id in wanted:
        entry: DeleteTopicsResponseDeletableTopicResult = {"name": name, "topic_id": topic_id or bytes(16), "error_code": ErrorCode.NONE, "error_message": None}
        try:
            resolved = resolve_topic_name(context, name, topic_id)
            if checked and not context.authorize(AclOperation.DELETE, ResourceType.TOPIC, resolved):
                by_id = bool(topic_id and any(topic_id))
                describable = context.authorize(AclOperation.DESCRIBE, ResourceType.TOPIC, resolved)
                if by_id and describable:
                    entry["name"] = resolved
                if by_id or not describable or storage.topic(resolved) is not None:
                    raise KafkaError(ErrorCode.TOPIC_AUTHORIZATION_FAILED, "Topic authorization failed.")
            info = storage.topic(resolved)
            if info is None:
                raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
            storage.delete_topic(resolved)
            entry["name"] = resolved
            entry["topic_id"] = info.topic_id
            for index in range(info.partitions):
                context.wakeups.notify_data(resolved, index)
        except KafkaError as exc:
            entry["error_code"] = exc.code
            entry["error_message"] = exc.message
        responses.append(entry)
    return {"throttle_time_ms": 0, "responses": responses}
