"""ShareAcknowledge (KIP-932): acknowledge records a member holds, outside a ShareFetch.

The request continues the member's share session (epoch > 0; -1 also closes it, releasing
what the member still holds): ACCEPT, RELEASE, REJECT per offset range, and from v2
RENEW (KIP-1222), which restarts the records' acquisition lock.

As KafkaApis.handleShareAcknowledgeRequest: a null group id is INVALID_REQUEST (an empty one
is a group like any other), then READ on the group (GROUP_AUTHORIZATION_FAILED), then the
member id (`member_id_valid`, INVALID_REQUEST), then the session; per partition, its topic
id (UNKNOWN_TOPIC_ID), the shape of its batches (`malformed`, INVALID_REQUEST), then READ on
its topic (TOPIC_AUTHORIZATION_FAILED).

KafkaApis keys the acknowledgements by partition (a partition named twice answers once, with
its last entry's batches) and answers from maps: every partition refused before
SharePartitionManager (`_CHECKED_BEFORE`, without a message), each partition whose batches it
took, and, only when it took some, the partitions that acknowledged nothing (NONE).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ottla.server.cluster.routing import leader_hint, leader_partition
from ottla.server.context import RequestContext
from ottla.server.security.authorizer import AclOperation, ResourceType
from ottla.server.share.coordinator import malformed
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
    answers = acknowledge_all(context, group_id, member_id, request["topics"], header.api_version >= 2 and request.get("is_renew_ack", False))
    by_topic: dict[bytes, list[ShareAcknowledgeResponsePartitionData]] = {}
    endpoints: dict[int, Any] = {}
    for (topic_id, index), (error, message) in answers.items():
        moved = error is ErrorCode.NOT_LEADER_FOR_PARTITION
        by_topic.setdefault(topic_id, []).append({
            "partition_index": index, "error_code": error, "error_message": message,
            "current_leader": moved_to(context, topic_id, index, endpoints) if moved else leader(context)})
    responses: list[ShareAcknowledgeResponseShareAcknowledgeTopicResponse] = [
        {"topic_id": topic_id, "partitions": partitions} for topic_id, partitions in by_topic.items()]
    if epoch == FINAL_EPOCH:
        share.close_session(node_id, group_id, member_id)
    response: ShareAcknowledgeResponse = {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": None,
                                          "responses": responses, "node_endpoints": list(endpoints.values())}
    if header.api_version >= 2:
        response["acquisition_lock_timeout_ms"] = share.lock_duration_ms(group_id)
    return response


def acknowledge_all(context: RequestContext, group_id: str, member_id: str, topics: Any,
                    allow_renew: bool) -> dict[tuple[bytes, int], tuple[ErrorCode, str | None]]:
    """The acknowledgements of every partition `topics` names (ShareAcknowledge's, or a
    ShareFetch's that carries any), by (topic id, partition), as KafkaApis keys them: a
    partition named twice counts once, with its last entry's batches. The answer lists each
    partition refused before SharePartitionManager, each whose batches it took, and, only when
    it took some, those that acknowledged nothing (NONE)."""
    entries = {(topic["topic_id"], partition["partition_index"]): partition for topic in topics for partition in topic["partitions"]}
    answers = {key: acknowledge(context, group_id, member_id, key[0], partition, allow_renew) for key, partition in entries.items()}
    taken = any(entries[key]["acknowledgement_batches"] and not refused_before(*answer) for key, answer in answers.items())
    return {key: answer for key, answer in answers.items()
            if entries[key]["acknowledgement_batches"] or answer[0] is not ErrorCode.NONE or taken}


def acknowledge(context: RequestContext, group_id: str, member_id: str, topic_id: bytes, partition: Any,
                allow_renew: bool) -> tuple[ErrorCode, str | None]:
    """One partition's acknowledgement batches (ShareFetch's and ShareAcknowledge's alike): the
    error and its message."""
    info = context.storage.topic_by_id(topic_id)
    if info is None:
        return ErrorCode.UNKNOWN_TOPIC_ID, None
    batches = [(batch["first_offset"], batch["last_offset"], list(batch["acknowledge_types"]))
               for batch in partition["acknowledgement_batches"]]
    # KafkaApis.handleAcknowledgements validates the batches before it authorizes the topic.
    if malformed(batches, allow_renew):
        return ErrorCode.INVALID_REQUEST, None
    if not context.authorize(AclOperation.READ, ResourceType.TOPIC, info.name):
        return ErrorCode.TOPIC_AUTHORIZATION_FAILED, None
    cluster = context.services.cluster
    if cluster is not None:
        try:
            leader_partition(context, cluster, info.name, partition["partition_index"])
        except KafkaError as exc:
            return exc.code, None  # its leader holds the share-partition
    index = partition["partition_index"]
    in_range = 0 <= index < info.partitions
    if not batches and in_range:
        return ErrorCode.NONE, None
    error, message = context.services.share.acknowledge(group_id, member_id, topic_id, index, batches, allow_renew)
    if not in_range and error is ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
        return error, None  # KafkaApis' metadata check, ahead of SharePartitionManager's (which has a message)
    return error, message


# What KafkaApis refuses before SharePartitionManager sees a partition's batches: these come
# without a message (SharePartitionManager's own refusals carry one, or are not among these).
_CHECKED_BEFORE = frozenset({ErrorCode.UNKNOWN_TOPIC_ID, ErrorCode.INVALID_REQUEST, ErrorCode.TOPIC_AUTHORIZATION_FAILED,
                             ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.NOT_LEADER_FOR_PARTITION})


def refused_before(error: ErrorCode, message: str | None) -> bool:
    """Whether `acknowledge`'s answer is a refusal KafkaApis makes before SharePartitionManager."""
    return error in _CHECKED_BEFORE and message is None


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
