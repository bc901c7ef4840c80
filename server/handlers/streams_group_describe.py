"""StreamsGroupDescribe (KIP-1071): a streams group's epochs, its topology as configured, and
its members, each with its current and target tasks, as Kafka's StreamsGroup.asDescribedGroup.
Asked for the topology description (KIP-1331, v1), a described group answers it AVAILABLE when
the in-memory plugin is configured and holds one at the topology's epoch, else NOT_STORED
(StreamsGroupTopologyDescriptionManager.attachTopologyDescriptions). With `streams.version`
finalized at 0 every group is answered UNSUPPORTED_VERSION.

As KafkaApis.handleStreamsGroupDescribe: a group the principal may not DESCRIBE is answered
GROUP_AUTHORIZATION_FAILED, ahead of the others; a described group carries its authorized
operations when asked; and, with an authorizer, a group whose topology names a topic the
principal may not DESCRIBE is answered TOPIC_AUTHORIZATION_FAILED, without members or topology."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from ottla.server.cluster.coordinators import GROUP, elsewhere
from ottla.server.context import RequestContext
from ottla.server.groups.streams import StreamsGroup, TasksTuple
from ottla.server.groups.streams.assignor import ASSIGNOR
from ottla.server.groups.streams.descriptions import plugin_configured
from ottla.server.groups.streams.group import NO_TASK_OFFSETS
from ottla.server.security.authorizer import AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        StreamsGroupDescribeRequest,
        StreamsGroupDescribeResponse,
        StreamsGroupDescribeResponseAssignment,
        StreamsGroupDescribeResponseDescribedGroup,
        StreamsGroupDescribeResponseTaskOffset,
        StreamsGroupDescribeResponseTopology,
        StreamsGroupDescribeResponseTopologyDescription,
    )

API = ApiKey.STREAMS_GROUP_DESCRIBE
VERSIONS = (0, 1)

# Kafka's value when authorized operations were not asked for (Integer.MIN_VALUE).
_NO_OPERATIONS = -(2**31)
# TopologyDescriptionStatus: 0 NOT_REQUESTED, 1 NOT_STORED, 3 AVAILABLE.
_NOT_REQUESTED, _NOT_STORED, _AVAILABLE = 0, 1, 3


def handle(context: RequestContext, header: RequestHeader, request: StreamsGroupDescribeRequest) -> StreamsGroupDescribeResponse:
    enabled = context.services.features.level("streams.version") >= 1
    description = request.get("include_topology_description", False)
    if not enabled:
        return {"throttle_time_ms": 0, "groups": [_refused(group_id, ErrorCode.UNSUPPORTED_VERSION) for group_id in request["group_ids"]]}
    allowed = context.authorized(AclOperation.DESCRIBE, ResourceType.GROUP, request["group_ids"])
    groups: list[StreamsGroupDescribeResponseDescribedGroup] = [_refused(group_id, ErrorCode.GROUP_AUTHORIZATION_FAILED)
                         for group_id in request["group_ids"] if group_id not in allowed]
    for group_id in request["group_ids"]:
        if group_id not in allowed:
            continue
        # GroupCoordinatorService.streamsGroupDescribe refuses an empty id before it routes the others.
        if (error := ErrorCode.INVALID_GROUP_ID if not group_id else elsewhere(context, GROUP, group_id)) is not None:
            groups.append(_refused(group_id, error))  # else the client asks its coordinator
            continue
        answer = _empty(group_id)
        _describe(context, group_id, answer, description)
        if answer["error_code"] == ErrorCode.NONE:
            if request.get("include_authorized_operations"):
                answer["authorized_operations"] = context.authorized_operations(ResourceType.GROUP, group_id)
            if context.authorizer is not None and _hides_topics(context, answer):
                answer = _refused(group_id, ErrorCode.TOPIC_AUTHORIZATION_FAILED,
                                  "The described group uses topics that the client is not authorized to describe.")
        groups.append(answer)
    return {"throttle_time_ms": 0, "groups": groups}


def _hides_topics(context: RequestContext, answer: StreamsGroupDescribeResponseDescribedGroup) -> bool:
    """Whether the described topology names a topic the principal may not DESCRIBE."""
    topology = answer["topology"]
    names: set[str] = set()
    for subtopology in (topology["subtopologies"] if topology is not None else None) or ():
        names.update(subtopology["source_topics"], subtopology["repartition_sink_topics"])
        names.update(topic["name"] for topic in subtopology["repartition_source_topics"])
        names.update(topic["name"] for topic in subtopology["state_changelog_topics"])
    return len(context.authorized(AclOperation.DESCRIBE, ResourceType.TOPIC, names)) < len(names)


def _refused(group_id: str, error: ErrorCode, message: str | None = None) -> StreamsGroupDescribeResponseDescribedGroup:
    """The answer for a group that is not described: Kafka's defaults with the error."""
    answer = _empty(group_id)
    answer["error_code"] = error
    answer["error_message"] = message
    return answer


def _empty(group_id: str) -> StreamsGroupDescribeResponseDescribedGroup:
    return {
        "error_code": ErrorCode.NONE,
        "error_message": None,
        "group_id": group_id,
        "group_state": "",
        "group_epoch": 0,
        "assignment_epoch": 0,
        "topology": None,
        "members": [],
        "authorized_operations": _NO_OPERATIONS,
        "topology_description": None,
        "topology_description_status": _NOT_REQUESTED,
        "assignor_name": None,
    }


def _describe(context: RequestContext, group_id: str, answer: StreamsGroupDescribeResponseDescribedGroup, description: bool) -> None:
    group = context.groups.streams_group(group_id)
    if group is None:
        answer["error_code"] = ErrorCode.GROUP_ID_NOT_FOUND
        other = (group_id in context.groups.groups or context.groups.consumer_group(group_id) is not None
                 or group_id in context.services.share.groups)
        answer["error_message"] = f"Group {group_id} is not a streams group." if other else f"Group {group_id} not found."
        return
    answer["group_state"] = group.state.value
    answer["group_epoch"] = group.group_epoch
    answer["assignment_epoch"] = group.assignment_epoch
    answer["topology"] = _topology(context, group)
    if description:
        stored = context.groups.streams.stored_description(group) if plugin_configured(context.config.value) else None
        answer["topology_description_status"] = _NOT_STORED if stored is None else _AVAILABLE
        answer["topology_description"] = cast("StreamsGroupDescribeResponseTopologyDescription | None", stored)
    answer["assignor_name"] = ASSIGNOR
    answer["members"] = [
        {
            "member_id": member.member_id,
            "member_epoch": member.member_epoch,
            "instance_id": member.metadata.instance_id,
            "rack_id": member.metadata.rack_id,
            "client_id": member.metadata.client_id,
            "client_host": member.metadata.client_host,
            "topology_epoch": member.metadata.topology_epoch,
            "process_id": member.process_id,
            "user_endpoint": None if member.metadata.user_endpoint is None else {"host": member.metadata.user_endpoint[0], "port": member.metadata.user_endpoint[1]},
            "client_tags": [{"key": k, "value": v} for k, v in member.metadata.client_tags],
            "task_offsets": _task_offsets(group.task_offsets.get(member.member_id, NO_TASK_OFFSETS).offsets),
            "task_end_offsets": _task_offsets(group.task_offsets.get(member.member_id, NO_TASK_OFFSETS).end_offsets),
            "assignment": _assignment(member.current.assigned),
            "target_assignment": _assignment(group.target.get(member.member_id, TasksTuple())),
            "is_classic": False,
        }
        for member in group.members_in_map_order()
    ]


def _topology(context: RequestContext, group: StreamsGroup) -> StreamsGroupDescribeResponseTopology | None:
    """StreamsGroup.asDescribedGroup's topology: the configured one (partition counts decided)
    once it is ready, else the one stored (an internal topic's count as the members gave it, 0
    when undecided): after a restart, or while topics are missing, too. Subtopologies by id,
    each one's topics by name."""
    if group.topology is None:
        return None
    configured = context.groups.streams.configured.get(group.group_id)
    ready = configured is not None and configured.ready

    def with_count(topic: dict[str, Any], partitions: int) -> dict[str, Any]:
        return {"name": topic["name"], "partitions": partitions, "replication_factor": topic["replication_factor"],
                "topic_configs": [{"key": c["key"], "value": c["value"]} for c in topic["topic_configs"]]}

    def count(name: str) -> int:
        info = context.storage.topic(name)
        return 0 if info is None else info.partitions

    def by_name(topics: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(topics, key=lambda topic: topic["name"])

    subtopologies: list[Any] = []
    for subtopology in sorted(group.topology["subtopologies"], key=lambda s: s["subtopology_id"]):
        tasks = configured.tasks.get(subtopology["subtopology_id"], 0) if configured is not None and ready else None
        subtopologies.append({
            "subtopology_id": subtopology["subtopology_id"],
            "source_topics": sorted(subtopology["source_topics"]),
            "repartition_sink_topics": sorted(subtopology["repartition_sink_topics"]),
            "state_changelog_topics": by_name([with_count(t, t["partitions"] if tasks is None else tasks) for t in subtopology["state_changelog_topics"]]),
            "repartition_source_topics": by_name([with_count(t, t["partitions"] if tasks is None else count(t["name"]))
                                                  for t in subtopology["repartition_source_topics"]]),
        })
    return {"epoch": group.topology_epoch, "subtopologies": subtopologies}


def _task_offsets(offsets: dict[tuple[str, int], int]) -> list[StreamsGroupDescribeResponseTaskOffset]:
    """What the member last reported (StreamsGroupMember.taskOffsetsFromMap), by task."""
    return [{"subtopology_id": s, "partition": p, "offset": offset} for (s, p), offset in sorted(offsets.items())]


def _assignment(tasks: TasksTuple) -> StreamsGroupDescribeResponseAssignment:
    def ids(by_subtopology: dict[str, frozenset[int]]) -> list[Any]:
        return [{"subtopology_id": s, "partitions": sorted(p)} for s, p in sorted(by_subtopology.items())]

    return {"active_tasks": ids(tasks.active), "standby_tasks": ids(tasks.standby), "warmup_tasks": ids(tasks.warmup)}
