"""ShareAcknowledge (KIP-932): acknowledge records a member holds, outside a ShareFetch.

The request continues the member's share session (epoch > 0; -1 also closes it, releasing
what the member still holds): ACCEPT, RELEASE, REJECT per offset range, and from v2
RENEW (KIP-1222), which restarts the records' acquisition lock.

As KafkaApis.handleShareAcknowledgeRequest: a null group id is INVALID_REQUEST (an empty one
is a group like any other), then READ on the group (GROUP_AUTHORIZATION_FAILED), then the
member id (`member_id_valid`, INVALID_REQUEST), then the session; READ on each topic
(TOPIC_AUTHORIZATION_FAILED per partition).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ottla.server.cluster.routing import leader_hint, leader_partition
from ottla.server.context import RequestContext
from ottla.server.security.authorizer import AclOperation, ResourceType
from ottla.server.share.sessions import FINAL_EPOCH, INITIAL_EPOCH, member_id_valid
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        ShareAcknowledgeRequest,
        ShareAcknowledgeResponse,
        ShareAcknowledgeResponseLeaderIdAndEpoch,
        ShareAcknowledgeResponsePartitionData,
        ShareAcknowledgeResponseShareAcknowledgeTopicResponse,
    )

API = ApiKey.SHARE_ACKNOWLEDGE
VERSIONS = (1, 2)


def handle(context: RequestContext, header: RequestHeader, request: ShareAcknowledgeRequest) -> ShareAcknowledgeResponse:
    share = context.services.share
    group_id, member_id, epoch = request.get("group_id"), request.get("member_id"), request["share_session_epoch"]
    if group_id is None:
        return _error(header.api_version, ErrorCode.INVALID_REQUEST)
    if not context.authorize(AclOperation.READ, ResourceType.GROUP, group_id):
        return _error(header.api_version, ErrorCode.GROUP_AUTHORIZATION_FAILED)
    if not member_id_valid(member_id):
        return _error(header.api_version, ErrorCode.INVALID_REQUEST)
    if epoch == INITIAL_EPOCH:
        return _error(header.api_version, ErrorCode.INVALID_SHARE_SESSION_EPOCH)
    node_id = context.node.node_id
    if epoch != FINAL_EPOCH:
        session = share.sessions.advance(node_id, group_id, member_id, epoch)
        if isinstance(session, ErrorCode):
            return _error(header.api_version, session)
        session.connection = context.client.address
    elif share.sessions.get(node_id, group_id, member_id) is None:
        return _error(header.api_version, ErrorCode.SHARE_SESSION_NOT_FOUND)
    responses: list[ShareAcknowledgeResponseShareAcknowledgeTopicResponse] = []
    endpoints: dict[int, Any] = {}
    for topic in request["topics"]:
        partitions: list[ShareAcknowledgeResponsePartitionData] = []
        for partition in topic["partitions"]:
            error, message = acknowledge(context, group_id, member_id, topic["topic_id"], partition,
                                         header.api_version >= 2 and request.get("is_renew_ack", False))
            moved = error is ErrorCode.NOT_LEADER_FOR_PARTITION
            partitions.append({"partition_index": partition["partition_index"], "error_code": error, "error_message": message,
                               "current_leader": moved_to(context, topic["topic_id"], partition["partition_index"], endpoints)
                               if moved else leader(context)})
        responses.append({"topic_id": topic["topic_id"], "partitions": partitions})
    if epoch == FINAL_EPOCH:
        share.close_session(node_id, group_id, member_id)
    response: ShareAcknowledgeResponse = {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": None,
                                          "responses": responses, "node_endpoints": list(endpoints.values())}
    if header.api_version >= 2:
        response["acquisition_lock_timeout_ms"] = share.lock_duration_ms(group_id)
    return response


def acknowledge(context: RequestContext, group_id: str, member_id: str, topic_id: bytes, partition: Any,
                allow_renew: bool) -> tuple[ErrorCode, str | None]:
    """One partition's acknowledgement batches (ShareFetch's and ShareAcknowledge's alike): the
    error and its message."""
    info = context.storage.topic_by_id(topic_id)
    if info is None:
        return ErrorCode.UNKNOWN_TOPIC_ID, None
    if not context.authorize(AclOperation.READ, ResourceType.TOPIC, info.name):
        return ErrorCode.TOPIC_AUTHORIZATION_FAILED, None
    cluster = context.services.cluster
    if cluster is not None:
        try:
            leader_partition(context, cluster, info.name, partition["partition_index"])
        except KafkaError as exc:
            return exc.code, None  # its leader holds the share-partition
    batches = [(batch["first_offset"], batch["last_offset"], list(batch["acknowledge_types"]))
               for batch in partition["acknowledgement_batches"]]
    return context.services.share.acknowledge(group_id, member_id, topic_id, partition["partition_index"], batches, allow_renew)


def leader(context: RequestContext) -> ShareAcknowledgeResponseLeaderIdAndEpoch:
    """This node leads every partition, at the epoch Metadata reports (ShareFetch's
    LeaderIdAndEpoch has the same fields)."""
    return {"leader_id": context.node.node_id, "leader_epoch": 0}


def moved_to(context: RequestContext, topic_id: bytes, index: int, endpoints: dict[int, Any]) -> ShareAcknowledgeResponseLeaderIdAndEpoch:
    """The partition's leader for a NOT_LEADER_OR_FOLLOWER answer (KIP-951), with its endpoint
    added to `endpoints` (the response's node_endpoints)."""
    info = context.storage.topic_by_id(topic_id)
    cluster = context.services.cluster
    if info is None or cluster is None:
        return leader(context)
    hint = leader_hint(context, cluster, info.name, index, endpoints)
    return {"leader_id": hint["leader_id"], "leader_epoch": hint["leader_epoch"]}


def _error(version: int, code: ErrorCode) -> ShareAcknowledgeResponse:
    """A refusal of the whole request: it renews no lock, so (as Kafka) it names no lock duration."""
    response: ShareAcknowledgeResponse = {"throttle_time_ms": 0, "error_code": code, "error_message": None,
                                          "responses": [], "node_endpoints": []}
    if version >= 2:
        response["acquisition_lock_timeout_ms"] = 0
    return response
