"""CreateTopics, with validate-only, under Kafka's rules for counts, names and topic configs.

With an authorizer (ControllerApis.createTopics): a topic needs CREATE on the cluster or on
itself, else it answers TOPIC_AUTHORIZATION_FAILED after the others; one created without
DESCRIBE_CONFIGS on it answers topic_config_error_code TOPIC_AUTHORIZATION_FAILED and no
partition count, replication factor or configs (ReplicationControlManager.createTopic).

In a cluster (server/cluster/) a topic has up to as many replicas as nodes run (-1:
`default.replication.factor`), placed as server/cluster/state.py says, or as `assignments`
give them (existing nodes, each once per partition, as many for every partition).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from ottla.server.broker_configs import CORDONED_LOG_DIRS_LEVEL
from ottla.server.cluster.state import ClusterState, ReplicaPlacementError
from ottla.server.context import RequestContext
from ottla.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType
from ottla.server.topic_config import check_together, validate_configs
from ottla.server.topic_creation import write_and_open
from ottla.storage.engine import TopicInfo
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        CreateTopicsRequest,
        CreateTopicsRequestCreatableReplicaAssignment,
        CreateTopicsRequestCreatableTopic,
        CreateTopicsResponse,
        CreateTopicsResponseCreatableTopicResult,
    )

API = ApiKey.CREATE_TOPICS
VERSIONS = (0, 7)

# Kafka's Topic.CLUSTER_METADATA_TOPIC_NAME: ControllerApis.createTopics refuses it by name.
METADATA_TOPIC = "__cluster_metadata"

# Kafka's ReplicationControlManager.MAX_PARTITIONS_PER_BATCH: a request for more partitions
# than this fails whole, before anything is allocated (validateTotalNumberOfPartitions).
MAX_PARTITIONS_PER_REQUEST = 10_000


def handle(
    context: RequestContext, header: RequestHeader, request: CreateTopicsRequest
) -> CreateTopicsResponse | Coroutine[Any, Any, CreateTopicsResponse]:
    storage = context.storage
    validate_only = request.get("validate_only", False)
    cluster = context.services.cluster
    names = [topic["name"] for topic in request["topics"]]
    # ControllerApis.createTopics: a name given more than once is answered once, after the
    # others, and none of its copies is created.
    duplicated = [name for name, count in Counter(names).items() if count > 1]
    creatable: set[str] | None = None
    describable: set[str] | None = None
    if context.authorizer is not None:
        creatable = set(names) if context.authorize(AclOperation.CREATE, ResourceType.CLUSTER, CLUSTER_NAME) else context.authorized(
            AclOperation.CREATE, ResourceType.TOPIC, names
        )
        describable = context.authorized(AclOperation.DESCRIBE_CONFIGS, ResourceType.TOPIC, names)
    if request["timeout_ms"] <= 0 and any(_reaches_controller(name, duplicated, creatable) for name in names):
        # The controller's event is due by timeout_ms from its arrival (ControllerRequestContext.
        # requestTimeoutMsToDeadlineNs) and its queue times it out before running it; the failed
        # event answers every topic of the request, each copy too (CreateTopicsRequest.getErrorResponse).
        return {"throttle_time_ms": 0, "topics": [
            {"name": name, "topic_id": bytes(16), "error_code": ErrorCode.REQUEST_TIMED_OUT, "error_message": None, "configs": []} for name in names
        ]}
    if _total_partitions(context, [topic for topic in request["topics"] if _reaches_controller(topic["name"], duplicated, creatable)]) > MAX_PARTITIONS_PER_REQUEST:
        # Checked in the controller's event (ReplicationControlManager.createTopics), so after its
        # deadline, on the topics passed on to it: a duplicate or refused one's count is not summed.
        message = "Excessively large number of partitions per request."
        return {"throttle_time_ms": 0, "topics": [
            {"name": name, "topic_id": bytes(16), "error_code": ErrorCode.POLICY_VIOLATION, "error_message": message, "configs": []} for name in names
        ]}
    # controller_mutation_rate, strict from v6 (ControllerApis.createTopics).
    mutations = context.services.quotas.mutation_quota(context.client.principal, header.client_id or "", header.api_version >= 6)
    results: list[CreateTopicsResponseCreatableTopicResult] = []
    # Refused before the controller, answered after the duplicates: the metadata log's name and
    # the topics the caller may not create.
    refused: list[CreateTopicsResponseCreatableTopicResult] = []
    # An engine that creates topics with coroutines: each checked topic to create, then created together.
    pending: list[tuple[CreateTopicsResponseCreatableTopicResult, int, int, dict[str, str]]] | None = [] if storage.is_async else None
    # Topics whose files a thread writes (Storage.reserve_topic), each with what answers it.
    reserved: list[_Reserved] = []
    # The names this request created or reserved so far: none collides with another (Storage.check_name_free).
    siblings: list[str] = []
    for topic in request["topics"]:
        name = topic["name"]
        entry: CreateTopicsResponseCreatableTopicResult = {"name": name, "topic_id": bytes(16), "error_code": ErrorCode.NONE, "error_message": None}
        if name in duplicated:
            continue
        if name == METADATA_TOPIC:
            refused.append({**entry, "error_code": ErrorCode.INVALID_REQUEST, "error_message": f"Creation of internal topic {METADATA_TOPIC} is prohibited.", "configs": []})
            continue
        if creatable is not None and name not in creatable:
            refused.append({**entry, "error_code": ErrorCode.TOPIC_AUTHORIZATION_FAILED, "error_message": "Authorization failed.", "configs": []})
            continue
        assignments: dict[int, tuple[int, ...]] | None = None
        try:
            # ReplicationControlManager.createTopics' order: the name and whether the topic exists
            # first, so that creating an existing topic is TOPIC_ALREADY_EXISTS whatever else it
            # asks; then its configs (computeConfigChanges, then ConfigurationControlManager's
            # checks); then, in createTopic, the replication factor's and the partition count's own values.
            storage.check_name_free(name, siblings)
            configs = _checked_configs(context, topic)
            partitions = topic["num_partitions"]
            if topic["assignments"]:
                # createTopic: manual assignments leave both counts at -1, the factor checked first.
                if topic["replication_factor"] != -1:
                    raise KafkaError(ErrorCode.INVALID_REQUEST, "A manual partition assignment was specified, but replication factor was not set to -1.")
                if partitions != -1:
                    raise KafkaError(ErrorCode.INVALID_REQUEST, "A manual partition assignment was specified, but numPartitions was not set to -1.")
                if cluster is not None:
                    assignments = _checked_assignments(cluster, topic["assignments"])
                else:
                    _check_manual_assignments(context, topic["assignments"])
                partitions = len(topic["assignments"])
            else:
                if topic["replication_factor"] == 0 or topic["replication_factor"] < -1:
                    raise KafkaError(ErrorCode.INVALID_REPLICATION_FACTOR, "Replication factor must be larger than 0, or -1 to use the default value.")
                if partitions == 0 or partitions < -1:
                    raise KafkaError(ErrorCode.INVALID_PARTITIONS, "Number of partitions was set to an invalid non-positive value.")
                if partitions == -1:
                    partitions = context.config.num_partitions
            replication_factor = 1
            if cluster is not None:
                replication_factor = _replication_factor(context, cluster, topic, assignments)
            elif topic["replication_factor"] not in (-1, 1):
                # StripedReplicaPlacer's refusal, as ReplicationControlManager.createTopic words it.
                raise KafkaError(
                    ErrorCode.INVALID_REPLICATION_FACTOR,
                    f"Unable to replicate the partition {topic['replication_factor']} time(s): The target replication factor of "
                    f"{topic['replication_factor']} cannot be reached because only 1 broker(s) are registered or some brokers have "
                    "all their log directories cordoned.",
                )
            if not topic["assignments"] and cluster is None and all_dirs_cordoned(context):
                raise KafkaError(ErrorCode.INVALID_REPLICATION_FACTOR, f"Unable to replicate the partition {replication_factor} time(s): {NO_UNCORDONED_BROKER}")
            if mutations is not None:
                mutations.record(partitions)  # after every check, validate-only too (ReplicationControlManager.createTopic)
            if validate_only:
                info = None
            elif pending is not None:
                pending.append((entry, partitions, replication_factor, configs))
                results.append(entry)
                continue
            else:
                info = storage.reserve_topic(name, partitions, configs, siblings)
                if info is not None:
                    siblings.append(name)
                    reserved.append((entry, info, replication_factor, configs, assignments))
                    results.append(entry)
                    continue
                info = storage.create_topic_in_request(name, partitions, configs, siblings)
                siblings.append(name)
                if cluster is not None:
                    cluster.assign(name, info.topic_id, range(partitions), replication_factor, assignments)
        except KafkaError as exc:
            _failed(entry, exc)
        else:
            _created(context, entry, partitions, replication_factor, configs, info, describable)
        results.append(entry)
    results.extend(
        {"name": name, "topic_id": bytes(16), "error_code": ErrorCode.INVALID_REQUEST, "error_message": "Duplicate topic name.", "configs": []}
        for name in duplicated
    )
    response: CreateTopicsResponse = {"throttle_time_ms": 0 if mutations is None else mutations.throttle_time_ms, "topics": results + refused}
    if pending:
        return _create_all(context, response, pending, describable)
    if reserved:
        return _create_reserved(context, response, reserved, describable)
    return response


def _checked_configs(context: RequestContext, topic: CreateTopicsRequestCreatableTopic) -> dict[str, str]:
    """The topic's configs validated and normalised as the controller checks them
    (`validate_configs`), then the values against one another; a key given more than once takes
    its last value."""
    configs = validate_configs({c["name"]: c["value"] for c in topic["configs"]})
    check_together(configs, context.storage.defaults)
    return configs


def _reaches_controller(name: str, duplicated: list[str], creatable: set[str] | None) -> bool:
    """Whether ControllerApis.createTopics passes the topic on to the controller's event: not
    duplicated, not the metadata log, and one the caller may create."""
    return name not in duplicated and name != METADATA_TOPIC and (creatable is None or name in creatable)


# A reserved topic: its answer, the topic, its replication factor, configs and assignments.
_Reserved = tuple["CreateTopicsResponseCreatableTopicResult", TopicInfo, int, dict[str, str], "dict[int, tuple[int, ...]] | None"]


async def _create_reserved(
    context: RequestContext,
    response: CreateTopicsResponse,
    reserved: list[_Reserved],
    describable: set[str] | None,
) -> CreateTopicsResponse:
    """The reserved topics created (server/topic_creation.py) and answered as `handle` answers
    them."""
    cluster = context.services.cluster
    assigned = {info.name: (replication_factor, assignments) for _, info, replication_factor, _, assignments in reserved}

    def assign(info: TopicInfo) -> None:
        if cluster is not None:
            replication_factor, assignments = assigned[info.name]
            cluster.assign(info.name, info.topic_id, range(info.partitions), replication_factor, assignments)

    outcomes = await write_and_open(context.storage, [info for _, info, _, _, _ in reserved], assign)
    for (entry, _, replication_factor, configs, _), info in zip(reserved, outcomes):
        if info is None:
            _failed(entry, KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, "the broker is stopping"))
        elif isinstance(info, KafkaError):
            _failed(entry, info)
        else:
            _created(context, entry, info.partitions, replication_factor, configs, info, describable)
    return response


async def _create_all(
    context: RequestContext,
    response: CreateTopicsResponse,
    pending: list[tuple[CreateTopicsResponseCreatableTopicResult, int, int, dict[str, str]]],
    describable: set[str] | None,
) -> CreateTopicsResponse:
    """An async engine's topics, created together, each answered as `handle` answers it; one
    id for the request lets the database refuse a name colliding with another request's topic
    while creating both names of this one."""
    storage = context.storage
    request_id = uuid.uuid4()
    outcomes = await asyncio.gather(
        *(storage.create_database_topic(entry["name"], partitions, configs, request_id) for entry, partitions, _, configs in pending),  # type: ignore[attr-defined]
        return_exceptions=True,
    )
    for (entry, partitions, replication_factor, configs), outcome in zip(pending, outcomes):
        if isinstance(outcome, KafkaError):
            _failed(entry, outcome)
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            _created(context, entry, partitions, replication_factor, configs, outcome, describable)
    return response


def _failed(entry: CreateTopicsResponseCreatableTopicResult, exc: KafkaError) -> None:
    entry["error_code"] = exc.code
    entry["error_message"] = exc.message
    # Kafka leaves a failed topic's configs at the generated default, the empty array (not null).
    entry["configs"] = []


def _created(
    context: RequestContext,
    entry: CreateTopicsResponseCreatableTopicResult,
    partitions: int,
    replication_factor: int,
    configs: dict[str, str],
    info: TopicInfo | None,
    describable: set[str] | None,
) -> None:
    """A topic created (or, `info` None, validated only) as CreateTopics answers it."""
    if describable is not None and entry["name"] not in describable:
        entry.update({"topic_config_error_code": ErrorCode.TOPIC_AUTHORIZATION_FAILED, "num_partitions": -1, "replication_factor": -1, "configs": []})
    else:
        entry["num_partitions"] = partitions
        entry["replication_factor"] = replication_factor
        # v5+ (KIP-525): the new topic's effective configs, as DescribeConfigs would give them.
        entry["configs"] = [
            {"name": item.key.name, "value": item.value, "read_only": False, "config_source": item.source, "is_sensitive": False}
            for item in context.services.broker_configs.resolve_topic(configs)
        ]
    if info is not None:
        entry["topic_id"] = info.topic_id


# StripedReplicaPlacer's refusal when no node may take a new replica.
NO_UNCORDONED_BROKER = "All brokers are currently fenced, or have all their log directories cordoned."


def all_dirs_cordoned(context: RequestContext) -> bool:
    """Whether Kafka 4.4's controller would place no new replica on this node: from
    metadata.version 4.3-IV0 (below it the controller knows no cordoned directory), every
    log directory of the node is in cordoned.log.dirs (BrokerRegistration.hasUncordonedDirs)."""
    return context.services.features.level("metadata.version") >= CORDONED_LOG_DIRS_LEVEL and not context.storage.has_uncordoned_dirs()


def _check_manual_assignments(context: RequestContext, given: list[CreateTopicsRequestCreatableReplicaAssignment]) -> None:
    """ReplicationControlManager.createTopic's order: assignment by assignment as listed, its
    partition not named before, then its replica list (`check_node_assignments`); only then
    that the partitions are 0 to n-1."""
    indexes: set[int] = set()
    for assignment in given:
        index = assignment["partition_index"]
        if index in indexes:
            raise KafkaError(ErrorCode.INVALID_REPLICATION_ASSIGNMENT, f"Found multiple manual partition assignments for partition {index}")
        check_node_assignments(context, [assignment["broker_ids"]])
        indexes.add(index)
    if indexes != set(range(len(indexes))):
        raise KafkaError(ErrorCode.INVALID_REPLICATION_ASSIGNMENT, "partitions should be a consecutive 0-based integer sequence")


def check_node_assignments(context: RequestContext, given: list[list[int]]) -> None:
    """ReplicationControlManager.validateManualPartitionAssignment on the one node, for
    CreateTopics and CreatePartitions: each replica list, its broker ids in ascending order,
    names only this node, whose log dirs are not all cordoned, and no broker twice."""
    cordoned = all_dirs_cordoned(context)
    for broker_ids in given:
        replicas = sorted(broker_ids)
        if not replicas:
            raise KafkaError(ErrorCode.INVALID_REPLICATION_ASSIGNMENT, "The manual partition assignment includes an empty replica list.")
        for previous, node in zip([None, *replicas], replicas):
            if node != context.node.node_id:
                raise KafkaError(ErrorCode.INVALID_REPLICATION_ASSIGNMENT, f"The manual partition assignment includes broker {node}, but no such broker is registered.")
            if cordoned:
                raise KafkaError(ErrorCode.INVALID_REPLICATION_ASSIGNMENT, f"The manual partition assignment includes broker {node}, but all its log directories are cordoned.")
            if node == previous:
                raise KafkaError(ErrorCode.INVALID_REPLICATION_ASSIGNMENT, f"The manual partition assignment includes the broker {node} more than once.")


def _checked_assignments(cluster: ClusterState, given: list[CreateTopicsRequestCreatableReplicaAssignment]) -> dict[int, tuple[int, ...]]:
    """Replica lists by partition as ReplicationControlManager.createTopic checks them."""
    assignments: dict[int, tuple[int, ...]] = {}
    for position, assignment in enumerate(sorted(given, key=lambda a: a["partition_index"])):
        index, replicas = assignment["partition_index"], tuple(assignment["broker_ids"])
        if index != position:
            raise KafkaError(ErrorCode.INVALID_REPLICATION_ASSIGNMENT, "partitions should be a consecutive 0-based integer sequence")
        if not replicas:
            raise KafkaError(ErrorCode.INVALID_REPLICATION_FACTOR, "The manual partition assignment includes an empty replica list.")
        if len(set(replicas)) != len(replicas):
            raise KafkaError(ErrorCode.INVALID_REPLICATION_ASSIGNMENT, f"The manual partition assignment includes the broker {replicas[0]} more than once.")
        unknown = [node for node in replicas if node not in cluster.nodes]
        if unknown:
            raise KafkaError(ErrorCode.INVALID_REPLICATION_ASSIGNMENT, f"The manual partition assignment includes broker {unknown[0]}, but no such broker is registered.")
        if assignments and len(replicas) != len(assignments[0]):
            raise KafkaError(ErrorCode.INVALID_REPLICATION_ASSIGNMENT, "The manual partition assignment includes partitions with different replication factors.")
        assignments[index] = replicas
    return assignments


def _replication_factor(
    context: RequestContext, cluster: ClusterState, topic: CreateTopicsRequestCreatableTopic, assignments: dict[int, tuple[int, ...]] | None
) -> int:
    if assignments:
        return len(assignments[0])
    factor = topic["replication_factor"]
    if factor == -1:
        factor = int(context.config.value("default.replication.factor"))
    if factor < 1:
        raise KafkaError(ErrorCode.INVALID_REPLICATION_FACTOR, "Replication factor must be larger than 0, or -1 to use the default value.")
    try:
        cluster.check_replication_factor(factor)
    except ReplicaPlacementError as exc:
        raise KafkaError(ErrorCode.INVALID_REPLICATION_FACTOR, str(exc)) from None
    return factor


def _total_partitions(context: RequestContext, topics: list[CreateTopicsRequestCreatableTopic]) -> int:
    total = 0
    for topic in topics:
        if topic["assignments"]:
            total += len(topic["assignments"])
        elif topic["num_partitions"] == -1:
            total += context.config.num_partitions
        else:
            total += max(topic["num_partitions"], 0)
    return total
