"""ConsumerGroupHeartbeat (KIP-848): join, stay in and leave a consumer group, and learn
the partitions the broker assigned. Fields a heartbeat leaves null did not change since
the member's last one; the coordinator's answer carries an assignment only when it
changed or the member sent a full request (`ottla.server.groups.consumer.manager`).

With `group.version` finalized at 0 the API stays advertised but every request is answered
UNSUPPORTED_VERSION, as Kafka 4.4's KafkaApis does while the consumer protocol is disabled.
Then, as KafkaApis.handleConsumerGroupHeartbeat: READ on the group (GROUP_AUTHORIZATION_FAILED),
DESCRIBE on every subscribed topic name (TOPIC_AUTHORIZATION_FAILED when any is refused). After
the coordinator's checks of the request, a group id a streams or share group holds is
GROUP_ID_NOT_FOUND, as GroupMetadataManager.getOrMaybeCreateConsumerGroup answers."""

from __future__ import annotations

import functools

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.server.groups.consumer import HeartbeatRequest
from ottla.server.security.authorizer import AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        ConsumerGroupHeartbeatRequest,
        ConsumerGroupHeartbeatRequestTopicPartitions,
        ConsumerGroupHeartbeatResponse,
    )

API = ApiKey.CONSUMER_GROUP_HEARTBEAT
VERSIONS = (0, 1)


def handle(context: RequestContext, header: RequestHeader, request: ConsumerGroupHeartbeatRequest) -> ConsumerGroupHeartbeatResponse:
    if context.services.features.level("group.version") < 1:
        return _error(ErrorCode.UNSUPPORTED_VERSION)
    group_id = request["group_id"]
    if not context.authorize(AclOperation.READ, ResourceType.GROUP, group_id):
        return _error(ErrorCode.GROUP_AUTHORIZATION_FAILED)
    owned = request["topic_partitions"]
    names = request["subscribed_topic_names"]
    if names and len(context.authorized(AclOperation.DESCRIBE, ResourceType.TOPIC, names)) < len(set(names)):
        return _error(ErrorCode.TOPIC_AUTHORIZATION_FAILED)
    result = context.groups.consumer_heartbeat(
        HeartbeatRequest(
            group_id=request["group_id"],
            member_id=request["member_id"],
            member_epoch=request["member_epoch"],
            instance_id=request["instance_id"],
            rack_id=request["rack_id"],
            rebalance_timeout_ms=request["rebalance_timeout_ms"],
            subscribed_topic_names=None if names is None else tuple(names),
            subscribed_topic_regex=request.get("subscribed_topic_regex"),
            server_assignor=request["server_assignor"],
            owned=None if owned is None else _assignment(owned),
            owned_listed=bool(owned),
            client_id=header.client_id or "",
            # Kafka reports the client's InetAddress as Java prints it.
            client_host="/" + context.client_host,
            api_version=header.api_version,
            may_describe=None if context.authorizer is None else functools.partial(context.authorize, AclOperation.DESCRIBE, ResourceType.TOPIC),
            held_by_another_type=lambda: context.groups.streams_group(group_id) is not None or group_id in context.services.share.groups,
        )
    )
    return {
        "throttle_time_ms": 0,
        "error_code": result.error,
        "error_message": result.message,
        "member_id": result.member_id,
        "member_epoch": result.member_epoch,
        "heartbeat_interval_ms": result.heartbeat_interval_ms,
        "assignment": None
        if result.listing is None
        else {"topic_partitions": [{"topic_id": t, "partitions": p} for t, p in result.listing]},
    }


def _error(code: ErrorCode, message: str | None = None) -> ConsumerGroupHeartbeatResponse:
    return {"throttle_time_ms": 0, "error_code": code, "error_message": message, "member_id": None,
            "member_epoch": 0, "heartbeat_interval_ms": 0, "assignment": None}


def _assignment(owned: list[ConsumerGroupHeartbeatRequestTopicPartitions]) -> dict[bytes, frozenset[int]]:
    result: dict[bytes, frozenset[int]] = {}
    for topic in owned:
        result[topic["topic_id"]] = result.get(topic["topic_id"], frozenset()) | frozenset(topic["partitions"])
    return {topic_id: partitions for topic_id, partitions in result.items() if partitions}
