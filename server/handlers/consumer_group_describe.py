"""ConsumerGroupDescribe (KIP-848): a consumer group's epochs, assignor and members, each
with its current and target assignment, as Kafka's ConsumerGroup.asDescribedGroup, in its
order: members as its members table holds them, topics and partitions as its HashMaps do
(`ottla.server.groups.consumer.orders`). With `group.version` finalized at 0 every group is
answered UNSUPPORTED_VERSION, as Kafka 4.4 does.

As KafkaApis.handleConsumerGroupDescribe: a group the principal may not DESCRIBE is answered
GROUP_AUTHORIZATION_FAILED, ahead of the others; a described group carries its authorized
operations when asked; and, with an authorizer, a group with a current or target assignment
of a topic the principal may not DESCRIBE is answered TOPIC_AUTHORIZATION_FAILED, without members."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.cluster.coordinators import GROUP, elsewhere
from ottla.server.context import RequestContext
from ottla.server.groups.consumer import ConsumerMember
from ottla.server.groups.consumer.orders import Listing, described_listing, names_order, replayed_listing, subscription_order, target_listing
from ottla.server.groups.consumer.records import Assignment
from ottla.server.security.authorizer import AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.storage import Storage
    from ottla.wire.messages.types import (
        ConsumerGroupDescribeRequest,
        ConsumerGroupDescribeResponse,
        ConsumerGroupDescribeResponseAssignment,
        ConsumerGroupDescribeResponseDescribedGroup,
        ConsumerGroupDescribeResponseMember,
        ConsumerGroupDescribeResponseTopicPartitions,
    )

API = ApiKey.CONSUMER_GROUP_DESCRIBE
VERSIONS = (0, 1)

# MemberType (v1, KIP-1099): a classic member of a consumer group (the online upgrade) or not.
_CLASSIC_MEMBER = 0
_CONSUMER_MEMBER = 1
# Kafka's value when authorized operations were not asked for (Integer.MIN_VALUE).
_NO_OPERATIONS = -(2**31)


def handle(context: RequestContext, header: RequestHeader, request: ConsumerGroupDescribeRequest) -> ConsumerGroupDescribeResponse:
    if context.services.features.level("group.version") < 1:
        return {"throttle_time_ms": 0, "groups": [_refused(group_id, ErrorCode.UNSUPPORTED_VERSION) for group_id in request["group_ids"]]}
    allowed = context.authorized(AclOperation.DESCRIBE, ResourceType.GROUP, request["group_ids"])
    groups: list[ConsumerGroupDescribeResponseDescribedGroup] = [_refused(group_id, ErrorCode.GROUP_AUTHORIZATION_FAILED)
                         for group_id in request["group_ids"] if group_id not in allowed]
    for group_id in request["group_ids"]:
        if group_id not in allowed:
            continue
        # GroupCoordinatorService.consumerGroupDescribe refuses an empty id before it routes the others.
        if (error := ErrorCode.INVALID_GROUP_ID if not group_id else elsewhere(context, GROUP, group_id)) is not None:
            groups.append(_refused(group_id, error))  # else the client asks its coordinator
            continue
        answer = _describe(context, group_id)
        if answer["error_code"] == ErrorCode.NONE:
            if request.get("include_authorized_operations"):
                answer["authorized_operations"] = context.authorized_operations(ResourceType.GROUP, group_id)
            if context.authorizer is not None:
                names = {tp["topic_name"] for member in answer["members"]
                         for assignment in (member["assignment"], member["target_assignment"]) for tp in assignment["topic_partitions"]}
                if len(context.authorized(AclOperation.DESCRIBE, ResourceType.TOPIC, names)) < len(names):
                    answer = _refused(group_id, ErrorCode.TOPIC_AUTHORIZATION_FAILED,
                                      "The group has described topic(s) that the client is not authorized to describe.")
        groups.append(answer)
    return {"throttle_time_ms": 0, "groups": groups}


def _refused(group_id: str, error: ErrorCode, message: str | None = None) -> ConsumerGroupDescribeResponseDescribedGroup:
    """The answer for a group that is not described: Kafka's defaults with the error."""
    answer = _empty(group_id)
    answer["error_code"] = error
    answer["error_message"] = message
    return answer


def _empty(group_id: str) -> ConsumerGroupDescribeResponseDescribedGroup:
    return {
        "error_code": ErrorCode.NONE,
        "error_message": None,
        "group_id": group_id,
        "group_state": "",
        "group_epoch": 0,
        "assignment_epoch": 0,
        "assignor_name": "",
        "members": [],
        "authorized_operations": _NO_OPERATIONS,
    }


def _describe(context: RequestContext, group_id: str) -> ConsumerGroupDescribeResponseDescribedGroup:
    answer = _empty(group_id)
    group = context.groups.consumer_group(group_id)
    if group is None:
        other = (group_id in context.groups.groups or context.groups.streams_group(group_id) is not None
                 or group_id in context.services.share.groups)
        answer["error_code"] = ErrorCode.GROUP_ID_NOT_FOUND
        answer["error_message"] = f"Group {group_id} is not a consumer group." if other else f"Group {group_id} not found."
        return answer
    assignors = context.groups.consumer.config.assignors
    storage = context.storage
    answer["group_state"] = group.state.value
    answer["group_epoch"] = group.group_epoch
    answer["assignment_epoch"] = group.assignment_epoch
    answer["assignor_name"] = group.preferred_assignor(assignors[0], assignors)
    answer["members"] = [_member(storage, group.target.get(member.member_id, {}), member) for member in group.members_in_map_order()]
    return answer


def _member(storage: Storage, target: Assignment, member: ConsumerMember) -> ConsumerGroupDescribeResponseMember:
    def topic_id_of(name: str) -> bytes | None:
        info = storage.topic(name)
        return None if info is None else info.topic_id

    first = subscription_order(member.metadata.subscribed_topic_names, topic_id_of)
    return {
        "member_id": member.member_id,
        "instance_id": member.instance_id,
        "rack_id": member.metadata.rack_id,
        "member_epoch": member.member_epoch,
        "client_id": member.metadata.client_id,
        "client_host": member.metadata.client_host,
        "subscribed_topic_names": names_order(member.metadata.subscribed_topic_names),
        # ConsumerGroupMember.Builder's default: a member without a regex describes "".
        "subscribed_topic_regex": member.metadata.subscribed_topic_regex or "",
        "assignment": _named(storage, described_listing(replayed_listing(member.current.assigned, first, member.listing),
                                                        replayed_listing(member.current.pending_revocation, first))),
        "target_assignment": _named(storage, target_listing(target)),
        "member_type": _CLASSIC_MEMBER if member.is_classic else _CONSUMER_MEMBER,
    }


def _named(storage: Storage, listing: Listing) -> ConsumerGroupDescribeResponseAssignment:
    """Partitions by topic id and name, in Kafka's order; a topic deleted since is left out,
    as Kafka does. A member asked to revoke is described with the partitions it has not yet
    given up after its assigned ones (read off the reference broker mid-revocation)."""
    topics: list[ConsumerGroupDescribeResponseTopicPartitions] = []
    for topic_id, partitions in listing:
        info = storage.topic_by_id(topic_id)
        if info is not None:
            topics.append({"topic_id": topic_id, "topic_name": info.name, "partitions": partitions})
    return {"topic_partitions": topics}
