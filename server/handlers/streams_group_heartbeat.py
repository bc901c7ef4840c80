"""StreamsGroupHeartbeat (KIP-1071): a Kafka Streams member joins, stays in and leaves a
streams group, sends its topology when it joins, and learns the tasks the broker assigned
(`ottla.server.groups.streams.manager`). Fields a heartbeat leaves null did not change since
the member's last one; the answer carries the tasks only when they changed or the member
joined, and the endpoints of every member when the member's endpoint epoch is behind.

With `streams.version` finalized at 0 every request is answered UNSUPPORTED_VERSION, as Kafka
4.4's KafkaApis does while the streams protocol is disabled. Then, as
KafkaApis.handleStreamsGroupHeartbeat: READ on the group (GROUP_AUTHORIZATION_FAILED), and
DESCRIBE on every topic a topology it sends names (TOPIC_AUTHORIZATION_FAILED when any is
refused). Before that authorization, a topology naming a Kafka internal topic, then one naming
an illegal topic name, is refused STREAMS_INVALID_TOPOLOGY, ahead of the coordinator's checks
of the request (an empty group or member id). The missing internal topics are created only if
the principal may create them all (CREATE on the cluster or on each topic), else the
MISSING_INTERNAL_TOPICS status names the refused ones.

A v1 answer asks the member to push its topology description (TopologyDescriptionRequired,
KIP-1331) only when the broker runs the in-memory description plugin
(`StreamsGroupManager.description_required`); Kafka's default runs none and never asks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ottla.server.context import RequestContext
from ottla.server.groups.streams import HeartbeatRequest, TasksTuple
from ottla.server.groups.streams.descriptions import plugin_configured
from ottla.server.groups import INTERNAL_TOPICS
from ottla.server.groups.streams.manager import ACCEPTABLE_RECOVERY_LAG, TASK_OFFSET_INTERVAL_MS
from ottla.server.security.authorizer import AclOperation, ResourceType
from ottla.storage.engine import invalid_topic_message
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        StreamsGroupHeartbeatRequest,
        StreamsGroupHeartbeatRequestTaskIds,
        StreamsGroupHeartbeatRequestTaskOffset,
        StreamsGroupHeartbeatRequestTopology,
        StreamsGroupHeartbeatResponse,
        StreamsGroupHeartbeatResponseTaskIds,
    )

API = ApiKey.STREAMS_GROUP_HEARTBEAT
VERSIONS = (0, 1)


def handle(context: RequestContext, header: RequestHeader, request: StreamsGroupHeartbeatRequest) -> StreamsGroupHeartbeatResponse:
    if context.services.features.level("streams.version") < 1:
        return _answer(ErrorCode.UNSUPPORTED_VERSION, None)
    if not context.authorize(AclOperation.READ, ResourceType.GROUP, request["group_id"]):
        return _answer(ErrorCode.GROUP_AUTHORIZATION_FAILED, None)
    if request["topology"] is not None:
        required = _topology_topics(request["topology"])
        internal = [name for name in required if name in INTERNAL_TOPICS]
        if internal:
            return _answer(ErrorCode.STREAMS_INVALID_TOPOLOGY,
                           f"Use of Kafka internal topics {','.join(internal)} in a Kafka Streams topology is prohibited.")
        invalid = [name for name in required if invalid_topic_message(name) is not None]
        if invalid:
            return _answer(ErrorCode.STREAMS_INVALID_TOPOLOGY, f"Topic names {','.join(invalid)} are not valid topic names.")
        if required and len(context.authorized(AclOperation.DESCRIBE, ResourceType.TOPIC, required)) < len(required):
            return _answer(ErrorCode.TOPIC_AUTHORIZATION_FAILED, None)
    active, standby, warmup = request["active_tasks"], request["standby_tasks"], request["warmup_tasks"]
    # Lists some null and some not are refused by the manager, in the coordinator's order.
    owned = None if None in (active, standby, warmup) else TasksTuple(_tasks(active), _tasks(standby), _tasks(warmup))
    endpoint = request["user_endpoint"]
    tags = request["client_tags"]
    result = context.groups.streams_heartbeat(
        HeartbeatRequest(
            group_id=request["group_id"],
            member_id=request["member_id"],
            member_epoch=request["member_epoch"],
            endpoint_information_epoch=request["endpoint_information_epoch"],
            instance_id=request["instance_id"],
            rack_id=request["rack_id"],
            rebalance_timeout_ms=request["rebalance_timeout_ms"],
            topology=dict(request["topology"]) if request["topology"] is not None else None,
            owned=owned,
            listed_tasks=(_count(active), _count(standby), _count(warmup)),
            sent_tasks=None if owned is None else tuple(
                tuple((entry["subtopology_id"], tuple(entry["partitions"])) for entry in entries or ()) for entries in (active, standby, warmup)),
            process_id=request["process_id"],
            user_endpoint=None if endpoint is None else (endpoint["host"], endpoint["port"]),
            client_tags=None if tags is None else tuple((t["key"], t["value"]) for t in tags),
            task_offsets=_offsets(request["task_offsets"]),
            task_end_offsets=_offsets(request["task_end_offsets"]),
            shutdown_application=request["shutdown_application"],
            client_id=header.client_id or "",
            # Kafka reports the client's InetAddress as Java prints it.
            client_host="/" + context.client_host,
            refused_creates=lambda names: _refused_creates(context, names),
        )
    )
    answer = _answer(result.error, result.message)
    if result.error is not ErrorCode.NONE:
        return answer
    answer["member_id"] = result.member_id
    answer["member_epoch"] = result.member_epoch
    if result.member_epoch < 0:
        # streamsGroupLeave answers the member id and epoch only: every other field keeps
        # the schema's default (asked of the reference broker).
        return answer
    # Kafka 4.4 sets only AcceptableRecoveryLag (v1+): a v0 answer's legacy field stays 0.
    answer["task_offset_interval_ms"] = TASK_OFFSET_INTERVAL_MS
    answer["acceptable_recovery_lag"] = ACCEPTABLE_RECOVERY_LAG
    answer["heartbeat_interval_ms"] = result.heartbeat_interval_ms
    answer["status"] = [{"status_code": code, "status_detail": detail} for code, detail in result.status]
    if header.api_version >= 1 and plugin_configured(context.config.value):
        answer["topology_description_required"] = context.groups.streams.description_required(
            request["group_id"], request["member_epoch"], result.status)
    answer["endpoint_information_epoch"] = result.endpoint_information_epoch
    if result.assignment is not None:
        answer["active_tasks"] = _ids(result.assignment.active)
        answer["standby_tasks"] = _ids(result.assignment.standby)
        answer["warmup_tasks"] = _ids(result.assignment.warmup)
    if result.endpoints is not None:
        answer["partitions_by_user_endpoint"] = [
            {
                "user_endpoint": {"host": host, "port": port},
                "active_partitions": [{"topic": topic, "partitions": partitions} for topic, partitions in active_partitions],
                "standby_partitions": [{"topic": topic, "partitions": partitions} for topic, partitions in standby_partitions],
            }
            for (host, port), active_partitions, standby_partitions in result.endpoints
        ]
    return answer


def _refused_creates(context: RequestContext, names: list[str]) -> list[str]:
    """The internal topics this principal may not create: none with CREATE on the cluster,
    else those without CREATE on the topic (KafkaApis.handleStreamsGroupHeartbeat)."""
    if context.authorize(AclOperation.CREATE, ResourceType.CLUSTER, "kafka-cluster"):
        return []
    allowed = context.authorized(AclOperation.CREATE, ResourceType.TOPIC, names)
    return [name for name in names if name not in allowed]


def _answer(error: ErrorCode, message: str | None) -> StreamsGroupHeartbeatResponse:
    """The answer's skeleton; a refusal is sent as it is, with the schema's defaults, as Kafka's."""
    return {
        "throttle_time_ms": 0,
        "error_code": error,
        "error_message": message,
        "member_id": "",
        "member_epoch": 0,
        "heartbeat_interval_ms": 0,
        "acceptable_recovery_lag_legacy": 0,
        "task_offset_interval_ms": 0,
        "acceptable_recovery_lag": -1,
        "status": [],
        "active_tasks": None,
        "standby_tasks": None,
        "warmup_tasks": None,
        "topology_description_required": False,
        "endpoint_information_epoch": 0,
        "partitions_by_user_endpoint": None,
    }


def _topology_topics(topology: StreamsGroupHeartbeatRequestTopology) -> list[str]:
    """Every topic a topology reads, writes or keeps state in, once each, in the order
    KafkaApis lists them (which orders the names its refusals quote)."""
    names: dict[str, None] = {}
    for subtopology in topology["subtopologies"]:
        names.update(dict.fromkeys(subtopology["source_topics"]))
        names.update(dict.fromkeys(subtopology["repartition_sink_topics"]))
        names.update(dict.fromkeys(topic["name"] for topic in subtopology["repartition_source_topics"]))
        names.update(dict.fromkeys(topic["name"] for topic in subtopology["state_changelog_topics"]))
    return list(names)


def _tasks(entries: list[StreamsGroupHeartbeatRequestTaskIds] | None) -> dict[str, frozenset[int]]:
    result: dict[str, frozenset[int]] = {}
    for entry in entries or ():
        if entry["partitions"]:
            result[entry["subtopology_id"]] = result.get(entry["subtopology_id"], frozenset()) | frozenset(entry["partitions"])
    return result


def _count(entries: list[StreamsGroupHeartbeatRequestTaskIds] | None) -> int | None:
    return None if entries is None else len(entries)


def _offsets(entries: list[StreamsGroupHeartbeatRequestTaskOffset] | None) -> tuple[tuple[str, int, int], ...] | None:
    return None if entries is None else tuple((e["subtopology_id"], e["partition"], e["offset"]) for e in entries)


def _ids(tasks: dict[str, frozenset[int]]) -> list[StreamsGroupHeartbeatResponseTaskIds]:
    return [{"subtopology_id": subtopology, "partitions": sorted(partitions)} for subtopology, partitions in sorted(tasks.items())]
