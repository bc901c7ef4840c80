"""CreatePartitions: grow a topic. Existing partitions keep their data; keys may now hash to
other partitions, as in Kafka. Manual assignments may name only this node; in a cluster
(server/cluster/) any of its nodes, as many as each existing partition has, and the new
partitions are placed as the cluster places a topic's otherwise. A topic's new files (its topic
file, a directory and partition.metadata per partition, with their fsyncs) are written on a
thread (server/topic_creation.py), so other clients are answered meanwhile. An async engine's
topics (PostgreSQL) grow together after the others, their new partitions' rows written in the database."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from ottla.server.cluster.routing import partition_state
from ottla.server.cluster.state import ClusterState
from ottla.server.context import RequestContext
from ottla.server.security.authorizer import AclOperation, ResourceType
from ottla.server.handlers.create_topics import MAX_PARTITIONS_PER_REQUEST, NO_UNCORDONED_BROKER, all_dirs_cordoned, check_node_assignments
from ottla.server.topic_creation import write_and_grow
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.header import RequestHeader
from ottla.storage import TopicInfo

if TYPE_CHECKING:
    from ottla.server.security.quotas import MutationQuota
    from ottla.wire.messages.types import (
        CreatePartitionsRequest,
        CreatePartitionsRequestCreatePartitionsTopic,
        CreatePartitionsResponse,
        CreatePartitionsResponseCreatePartitionsTopicResult,
    )

API = ApiKey.CREATE_PARTITIONS
VERSIONS = (0, 3)


def handle(
    context: RequestContext, header: RequestHeader, request: CreatePartitionsRequest
) -> CreatePartitionsResponse | Coroutine[Any, Any, CreatePartitionsResponse]:
    names = [topic["name"] for topic in request["topics"]]
    # ControllerApis.createPartitions answers a name given more than once once, INVALID_REQUEST,
    # then the topics the caller may not ALTER (ALTER on the cluster is not enough), then what
    # the controller's event answers for the others.
    duplicated = [name for name, count in Counter(names).items() if count > 1]
    alterable = context.authorized(AclOperation.ALTER, ResourceType.TOPIC, names)
    growable = [topic for topic in request["topics"] if topic["name"] not in duplicated and topic["name"] in alterable]
    if growable and request["timeout_ms"] <= 0:
        # The event is due by timeout_ms from its arrival (ControllerRequestContext.requestTimeoutMsToDeadlineNs)
        # and its queue times it out before running it; the failed event answers every topic of
        # the request, each copy too (CreatePartitionsRequest.getErrorResponse).
        return {"throttle_time_ms": 0, "results": [{"name": name, "error_code": ErrorCode.REQUEST_TIMED_OUT, "error_message": None} for name in names]}
    if _added(context, growable) > MAX_PARTITIONS_PER_REQUEST:
        # The controller's event refuses it before writing anything
        # (ReplicationControlManager.validateTotalNumberOfPartitions) and fails whole, answering
        # every topic as above.
        message = "Excessively large number of additional partitions per request."
        return {"throttle_time_ms": 0, "results": [{"name": name, "error_code": ErrorCode.POLICY_VIOLATION, "error_message": message} for name in names]}
    results: list[CreatePartitionsResponseCreatePartitionsTopicResult] = [
        {"name": name, "error_code": ErrorCode.INVALID_REQUEST, "error_message": "Duplicate topic name."} for name in duplicated
    ]
    results.extend(
        {"name": name, "error_code": ErrorCode.TOPIC_AUTHORIZATION_FAILED, "error_message": None}
        for name in dict.fromkeys(names) if name not in duplicated and name not in alterable
    )
    # An async engine's growths, awaited in request order after this loop.
    pending: list[tuple[CreatePartitionsResponseCreatePartitionsTopicResult, Callable[[], Awaitable[None]]]] = []
    # controller_mutation_rate, strict from v3 (ControllerApis.createPartitions).
    mutations = context.services.quotas.mutation_quota(context.client.principal, header.client_id or "", header.api_version >= 3)
    for topic in growable:
        entry: CreatePartitionsResponseCreatePartitionsTopicResult = {"name": topic["name"], "error_code": ErrorCode.NONE, "error_message": None}
        try:
            growing = _grow(context, topic, request["validate_only"], mutations)
            if growing is not None:
                pending.append((entry, growing))
        except KafkaError as exc:
            entry["error_code"] = exc.code
            entry["error_message"] = exc.message
        results.append(entry)
    response: CreatePartitionsResponse = {"throttle_time_ms": 0 if mutations is None else mutations.throttle_time_ms, "results": results}
    if pending:
        return _grow_all(response, pending)
    return response


async def _grow_all(
    response: CreatePartitionsResponse, pending: list[tuple[CreatePartitionsResponseCreatePartitionsTopicResult, Callable[[], Awaitable[None]]]]
) -> CreatePartitionsResponse:
    for entry, growing in pending:
        try:
            await growing()
        except KafkaError as exc:
            entry["error_code"] = exc.code
            entry["error_message"] = exc.message
    return response


def _added(context: RequestContext, topics: list[CreatePartitionsRequestCreatePartitionsTopic]) -> int:
    total = 0
    for topic in topics:
        info = context.storage.topic(topic["name"])
        if info is not None:
            total += max(topic["count"] - info.partitions, 0)
    return total


def _grow(
    context: RequestContext, topic: CreatePartitionsRequestCreatePartitionsTopic, validate_only: bool, mutations: MutationQuota | None,
) -> Callable[[], Awaitable[None]] | None:
    """Kafka's messages (ReplicationControlManager.createPartitions). A topic whose files a
    thread writes, or an async engine's, is grown by the call returned; None when the growth
    is done (or only validated). A growth of the topic still under way is finished first, so
    the count is checked against it. The new partitions count against `mutations` once every
    check has passed."""
    name, count = topic["name"], topic["count"]
    context.storage.finish_growth(name)
    info = context.storage.topic(name)
    if info is None:
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)  # without a message, as UnknownTopicOrPartitionException()
    if count == info.partitions:
        raise KafkaError(ErrorCode.INVALID_PARTITIONS, f"Topic already has {info.partitions} partition(s).")
    if count < info.partitions:
        raise KafkaError(
            ErrorCode.INVALID_PARTITIONS, f"The topic {name} currently has {info.partitions} partition(s); {count} would not be an increase."
        )
    assignments = topic["assignments"]
    if assignments is not None:
        added = count - info.partitions
        if len(assignments) != added:
            raise KafkaError(
                ErrorCode.INVALID_REPLICATION_ASSIGNMENT,
                f"Attempted to add {added} additional partition(s), but only {len(assignments)} assignment(s) were specified.",
            )
        cluster = context.services.cluster
        if cluster is not None:
            _check_cluster_assignments(cluster, info, [tuple(a["broker_ids"]) for a in assignments], context)
        else:
            check_node_assignments(context, [a["broker_ids"] for a in assignments])
    elif context.services.cluster is None and all_dirs_cordoned(context):
        raise KafkaError(ErrorCode.INVALID_REPLICATION_FACTOR, NO_UNCORDONED_BROKER)
    if mutations is not None:
        mutations.record(count - info.partitions)
    if validate_only:
        return None
    storage = context.storage

    def place(grown: TopicInfo) -> None:
        cluster = context.services.cluster
        if cluster is not None and assignments is not None:
            placed = {info.partitions + offset: tuple(a["broker_ids"]) for offset, a in enumerate(assignments)}
            cluster.assign(name, grown.topic_id, placed, len(next(iter(placed.values()))), placed)

    if storage.is_database_topic(name):

        async def grow_in_database() -> None:
            place(await storage.add_database_partitions(name, count))  # type: ignore[attr-defined]

        return grow_in_database
    growth = storage.reserve_partitions(name, count)
    if growth is None:
        place(storage.add_partitions(name, count))
        return None
    written = write_and_grow(storage, growth, place)

    async def grow_on_thread() -> None:
        outcome = await asyncio.shield(written)
        if outcome is None:
            raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, "the broker is stopping")
        if isinstance(outcome, KafkaError):
            raise outcome

    return grow_on_thread


def _check_cluster_assignments(cluster: ClusterState, info: TopicInfo, given: list[tuple[int, ...]], context: RequestContext) -> None:
    """ReplicationControlManager.createPartitions: existing nodes, each once, as many replicas as the topic has."""
    factor = len(partition_state(context, cluster, info, 0).replicas)
    for replicas in given:
        unknown = [node for node in replicas if node not in cluster.nodes]
        if unknown:
            raise KafkaError(ErrorCode.INVALID_REPLICATION_ASSIGNMENT, f"The manual partition assignment includes broker {unknown[0]}, but no such broker is registered.")
        if len(set(replicas)) != len(replicas):
            raise KafkaError(ErrorCode.INVALID_REPLICATION_ASSIGNMENT, f"The manual partition assignment includes the broker {replicas[0]} more than once.")
        if len(replicas) != factor:
            raise KafkaError(
                ErrorCode.INVALID_REPLICATION_ASSIGNMENT,
                f"The manual partition assignment includes a partition with {len(replicas)} replica(s), but this is not consistent with previous partitions, which have {factor} replica(s).",
            )
