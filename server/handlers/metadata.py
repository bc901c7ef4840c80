"""Metadata: brokers, the controller, topics and their partitions.

Unknown topics are created on the spot when the request allows it (always before v4)
and `auto.create.topics.enable` is on, synchronously, so the answer already carries
the new topic with its leader: clients need no LEADER_NOT_AVAILABLE retry loop.

With an authorizer (KafkaApis.handleTopicMetadataRequest): a listing of all topics leaves out
those the principal may not DESCRIBE, a named one it may not DESCRIBE is
TOPIC_AUTHORIZATION_FAILED, and creating a missing one needs CREATE on the cluster or the topic
(else TOPIC_AUTHORIZATION_FAILED). The authorized-operations fields are filled when asked for,
every supported operation without an authorizer, as Kafka's.

The top-level error code (v13, KIP-1102) is for a broker that wants the client to
re-bootstrap (REBOOTSTRAP_REQUIRED); a single node never does, so it is always NONE.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, cast

from ottla.server.cluster.routing import endpoint_of
from ottla.server.cluster.state import ClusterState
from ottla.server.context import Encoded, RequestContext
from ottla.server.coordinator.first_use import ensure_coordinator_topic
from ottla.server.groups import INTERNAL_TOPICS
from ottla.server.handlers._topics import partition_metadata
from ottla.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType
from ottla.server.topic_creation import write_and_open
from ottla.storage import Storage, TopicInfo
from ottla.storage.engine import validate_topic_name
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.header import RequestHeader
from ottla.wire.protocol import response_struct
from ottla.wire.schema import encode

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        MetadataRequest,
        MetadataRequestMetadataRequestTopic,
        MetadataResponse,
        MetadataResponseMetadataResponseBroker,
        MetadataResponseMetadataResponseTopic,
    )

API = ApiKey.METADATA
VERSIONS = (0, 13)

# Kafka's sentinel for "authorized operations not requested".
_OPERATIONS_OMITTED = -(2**31)
# Metadata answers kept at most (`_keep`): a client asking for ever new topic lists cannot grow them.
_ANSWERS_KEPT = 256


def handle(context: RequestContext, header: RequestHeader, request: MetadataRequest) -> MetadataResponse | Coroutine[Any, Any, MetadataResponse]:
    version = header.api_version
    storage = context.storage
    requested = request["topics"]
    key: tuple[Any, ...] | None = None
    if requested and context.authorizer is None and context.services.cluster is None and not storage.is_async:
        key = (
            version, context.node, request.get("include_cluster_authorized_operations"), request.get("include_topic_authorized_operations"),
            *[(entry["name"], entry.get("topic_id")) for entry in requested],
        )
        kept = context.services.metadata_answers.get(key)
        if kept is not None and not storage.has_offline_partitions:
            infos, answer = kept
            for info in infos:
                if storage.topic(info.name) is not info:
                    break
            else:
                return cast("MetadataResponse", answer)
    if requested is None or (version == 0 and not requested):
        topics = [_topic_entry(context, info) for info in storage.topics()]
        if context.authorizer is not None:
            described = context.authorized(AclOperation.DESCRIBE, ResourceType.TOPIC, [entry["name"] or "" for entry in topics])
            topics = [entry for entry in topics if entry["name"] in described]
    elif version < 12 and any(entry["name"] is None or any(entry.get("topic_id") or b"") for entry in requested):
        return _invalid_request(requested)
    elif any(any(entry.get("topic_id") or b"") for entry in requested):
        topics = _topics_by_id(context, requested)
    else:
        allow_create = request.get("allow_auto_topic_creation", True) and context.config.auto_create_topics_enable
        # The names to create before answering, where creating takes a coroutine: an async
        # engine's, or files written on a thread (server/topic_creation.py).
        to_create: list[str] | None = [] if storage.is_async or storage.creates_in_steps else None
        # Kafka takes the requested names as a set: a name asked twice is answered once.
        unique = list({entry["name"]: entry for entry in requested}.values())
        created: list[str] = []
        topics = [_requested_topic(context, entry, allow_create, to_create, created) for entry in unique]
        if to_create:
            return _create_then_answer(context, request, topics, to_create)
    answer = _answer(context, request, topics)
    if key is not None:
        return _keep(context, key, version, answer)
    return answer


def _keep(context: RequestContext, key: tuple[Any, ...], version: int, answer: MetadataResponse) -> MetadataResponse:
    """`answer`, kept for `key` with its encoding when every topic in it exists and is served
    here: what Kafka's MetadataCache does with its prebuilt images. A single node without an
    authorizer answers the same request for the same topics the same way whoever asks, as long
    as each topic is the one it was: a topic's TopicInfo is replaced when it is created again
    or gains partitions, and a failed log directory (offline partitions) is checked on each use.
    A cluster's leaders and ISRs, ACLs and an async engine's topics (other brokers create them)
    change without that, so those answers are built each time."""
    storage = context.storage
    if storage.has_offline_partitions or any(topic["error_code"] != ErrorCode.NONE for topic in answer["topics"]):
        return answer
    infos = []
    for topic in answer["topics"]:
        info = storage.topic(topic["name"] or "")
        if info is None:
            return answer
        infos.append(info)
    answers = context.services.metadata_answers
    if len(answers) >= _ANSWERS_KEPT:
        answers.clear()
    kept = Encoded(answer, encode(response_struct(API, version), answer))
    answers[key] = (tuple(infos), kept)
    return cast("MetadataResponse", kept)


async def _create_then_answer(
    context: RequestContext, request: MetadataRequest, topics: list[MetadataResponseMetadataResponseTopic], to_create: list[str]
) -> MetadataResponse:
    """Auto-creation: the missing topics created together, then answered as if they had
    existed (one created meanwhile by another request is answered as it is)."""
    storage = context.storage
    names = list(dict.fromkeys(to_create))
    outcomes: list[Any]
    if storage.is_async:
        # One id for the request's names: the database creates them all, and refuses one
        # colliding with another request's topic (as CreateTopics' _create_all).
        request_id = uuid.uuid4()
        outcomes = await asyncio.gather(
            *(storage.create_database_topic(name, context.config.num_partitions, None, request_id) for name in names),  # type: ignore[attr-defined]
            return_exceptions=True,
        )
    else:
        outcomes = await _create_in_steps(storage, names, context.config.num_partitions)
    entries: dict[str, MetadataResponseMetadataResponseTopic] = {}
    for name, outcome in zip(names, outcomes):
        if isinstance(outcome, BaseException) and not isinstance(outcome, KafkaError):
            raise outcome
        info = storage.topic(name)
        if info is not None:
            entries[name] = _topic_entry(context, info)
        else:
            refused = _refused(outcome) if isinstance(outcome, KafkaError) else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            entries[name] = _error_entry(name, bytes(16), refused)
    return _answer(context, request, [entries.get(topic["name"] or "", topic) for topic in topics])


async def _create_in_steps(storage: Storage, names: list[str], partitions: int) -> list[Any]:
    """Each name reserved, their files written on a thread and the topics opened: for each,
    None or the KafkaError that refused it (a name taken but not yet a topic, another request
    writing its files, is TOPIC_ALREADY_EXISTS, which `_refused` answers as unknown)."""
    outcomes: dict[str, Any] = {}
    reserved: list[TopicInfo] = []
    siblings: list[str] = []  # one request's names never collide with each other (Storage.check_name_free)
    for name in names:
        try:
            info = storage.reserve_topic(name, partitions, siblings=siblings)
            if info is None:  # the log directory went offline since the request was read
                storage.create_topic_in_request(name, partitions, None, siblings)
            else:
                reserved.append(info)
            siblings.append(name)
        except KafkaError as exc:
            outcomes[name] = exc
    if reserved:
        for info, outcome in zip(reserved, await write_and_open(storage, reserved)):
            if isinstance(outcome, KafkaError):
                outcomes[info.name] = outcome
    return [outcomes.get(name) for name in names]


def _answer(context: RequestContext, request: MetadataRequest, topics: list[MetadataResponseMetadataResponseTopic]) -> MetadataResponse:
    cluster_operations = _OPERATIONS_OMITTED
    if request.get("include_cluster_authorized_operations"):
        # None unless the principal may DESCRIBE the cluster (KafkaApis.handleTopicMetadataRequest).
        cluster_operations = (
            context.authorized_operations(ResourceType.CLUSTER, CLUSTER_NAME)
            if context.authorize(AclOperation.DESCRIBE, ResourceType.CLUSTER, CLUSTER_NAME) else 0
        )
    if request.get("include_topic_authorized_operations"):
        # KafkaApis appends the topics refused for DESCRIBE or CREATE afterwards, left without.
        for topic in topics:
            if topic["name"] is not None and topic["error_code"] != ErrorCode.TOPIC_AUTHORIZATION_FAILED:
                topic["topic_authorized_operations"] = context.authorized_operations(ResourceType.TOPIC, topic["name"])
    return {
        "throttle_time_ms": 0,
        "brokers": _brokers(context),
        "cluster_id": context.config.cluster_id,
        "controller_id": context.node.node_id if context.services.cluster is None else _controller(context.services.cluster),
        "topics": topics,
        "cluster_authorized_operations": cluster_operations,
        "error_code": ErrorCode.NONE,
    }


def _invalid_request(requested: list[MetadataRequestMetadataRequestTopic]) -> MetadataResponse:
    """Before v12 a null name or a topic id is an invalid request (KafkaApis.handleTopicMetadataRequest
    throws): MetadataRequest.getErrorResponse answers each topic as asked, a null name as "",
    with no brokers and no controller."""
    return {
        "throttle_time_ms": 0,
        "brokers": [],
        "cluster_id": None,
        "controller_id": -1,
        "topics": [_error_entry(entry["name"] or "", entry.get("topic_id") or bytes(16), ErrorCode.INVALID_REQUEST) for entry in requested],
        "cluster_authorized_operations": _OPERATIONS_OMITTED,
        "error_code": ErrorCode.NONE,
    }


def _topics_by_id(context: RequestContext, requested: list[MetadataRequestMetadataRequestTopic]) -> list[MetadataResponseMetadataResponseTopic]:
    """v12+: a request giving any topic id is answered by its ids alone, as KafkaApis'
    `useTopicId`: the names beside them are ignored (a name with an unknown id is that id's
    UNKNOWN_TOPIC_ID), each id is answered once, the unknown ones first with a null name."""
    ids = list(dict.fromkeys(entry["topic_id"] for entry in requested if any(entry.get("topic_id") or b"")))
    known = {topic_id: context.storage.topic_by_id(topic_id) for topic_id in ids}
    unknown = [_error_entry(None, topic_id, ErrorCode.UNKNOWN_TOPIC_ID) for topic_id, info in known.items() if info is None]
    topics = []
    for topic_id, info in known.items():
        if info is None:
            continue
        if not context.authorize(AclOperation.DESCRIBE, ResourceType.TOPIC, info.name):
            # Topic ids are not secret (KafkaApis): the refusal names the id, not the topic.
            topics.append(_error_entry(None, topic_id, ErrorCode.TOPIC_AUTHORIZATION_FAILED))
        else:
            topics.append(_topic_entry(context, info))
    return unknown + topics


def _requested_topic(
    context: RequestContext, entry: MetadataRequestMetadataRequestTopic, allow_create: bool, to_create: list[str] | None, created: list[str]
) -> MetadataResponseMetadataResponseTopic:
    """The entry of a topic asked by name; with `to_create` (an async engine's), a topic to
    create is added there and answered LEADER_NOT_AVAILABLE until `_create_then_answer`
    replaces the entry. `created`: the topics this request created so far (each one created
    here is added), which the next one's name never collides with."""
    name = entry.get("name")
    storage = context.storage
    if name is None:  # v12: neither a name nor a topic id
        return _error_entry(None, bytes(16), ErrorCode.INVALID_REQUEST)
    if context.authorizer is not None and not context.authorize(AclOperation.DESCRIBE, ResourceType.TOPIC, name):
        return _error_entry(name, bytes(16), ErrorCode.TOPIC_AUTHORIZATION_FAILED, described=False)
    info = storage.topic(name)
    if info is None:
        if allow_create and not (
            context.authorize(AclOperation.CREATE, ResourceType.CLUSTER, CLUSTER_NAME)
            or context.authorize(AclOperation.CREATE, ResourceType.TOPIC, name)
        ):
            return _error_entry(name, bytes(16), ErrorCode.TOPIC_AUTHORIZATION_FAILED)
        # KafkaApis.getTopicMetadata: a name no topic could have is INVALID_TOPIC, fatal to the
        # client, where an unknown one is retried, whether or not it is to be created.
        try:
            validate_topic_name(name)
        except KafkaError as exc:
            return _error_entry(name, bytes(16), exc.code)
        if not allow_create:
            return _error_entry(name, bytes(16), ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
        if name in INTERNAL_TOPICS:
            # An internal topic is created as its coordinator creates it (its own partition count
            # and compaction: as a client's topic its coordinator would keep state in a log
            # retention deletes), and still answered unknown this time, as Kafka's
            # AutoTopicCreationManager creates it and KafkaApis answers UNKNOWN_TOPIC_OR_PARTITION.
            try:
                ensure_coordinator_topic(context, name)
            except KafkaError:
                pass  # unknown all the same; the next lookup tries again
            return _error_entry(name, bytes(16), ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
        if to_create is not None:
            to_create.append(name)
            return _error_entry(name, bytes(16), ErrorCode.LEADER_NOT_AVAILABLE)
        try:
            info = storage.create_topic_in_request(name, context.config.num_partitions, None, created)
        except KafkaError as exc:
            return _error_entry(name, bytes(16), _refused(exc))
        created.append(name)
    return _topic_entry(context, info)


def _refused(error: KafkaError) -> ErrorCode:
    """What Metadata answers for a topic whose auto-creation was refused. Kafka's broker hands
    the creation to its controller and answers UNKNOWN_TOPIC_OR_PARTITION whatever the
    controller then says (DefaultAutoTopicCreationManager.createTopics; one already in flight
    is not sent again, unknown all the same), so a legal name colliding with an existing
    topic's (INVALID_TOPIC from the controller: illegal names were answered before) or taken by
    a creation under way (TOPIC_ALREADY_EXISTS) stays unknown, never LEADER_NOT_AVAILABLE; our
    own refusals (a full or failed disk) are told."""
    unknown = (ErrorCode.INVALID_TOPIC, ErrorCode.TOPIC_ALREADY_EXISTS)
    return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION if error.code in unknown else error.code


def _topic_entry(context: RequestContext, info: TopicInfo) -> MetadataResponseMetadataResponseTopic:
    return {
        "error_code": ErrorCode.NONE,
        "name": info.name,
        "topic_id": info.topic_id,
        "is_internal": info.name in INTERNAL_TOPICS,
        "partitions": partition_metadata(context, info),
        "topic_authorized_operations": _OPERATIONS_OMITTED,
    }


def _brokers(context: RequestContext) -> list[MetadataResponseMetadataResponseBroker]:
    """This node; in a cluster every running node, as the listener the client came through
    advertises it (Kafka's MetadataCache leaves fenced brokers out)."""
    cluster = context.services.cluster
    if cluster is None:
        return [{"node_id": context.node.node_id, "host": context.node.host, "port": context.node.port, "rack": None}]
    brokers: list[MetadataResponseMetadataResponseBroker] = []
    for node in cluster.running_nodes():
        endpoint = endpoint_of(context, cluster, node.node_id)
        if endpoint is not None:
            brokers.append({"node_id": node.node_id, "host": endpoint.host, "port": endpoint.port, "rack": node.rack})
    return brokers


def _controller(cluster: ClusterState) -> int:
    """Kafka 4 clients are told a random broker as the controller (KRaft hides the quorum);
    here the first running node, so every node answers the same."""
    running = cluster.running_nodes()
    return running[0].node_id if running else -1


def _error_entry(name: str | None, topic_id: bytes, code: ErrorCode, *, described: bool = True) -> MetadataResponseMetadataResponseTopic:
    """A topic answered with an error; an internal topic's name is said internal even so
    (KafkaApis.getTopicMetadata: Topic.isInternal), unless the principal may not DESCRIBE it."""
    return {
        "error_code": code,
        "name": name,
        "topic_id": topic_id,
        "is_internal": described and name in INTERNAL_TOPICS,
        "partitions": [],
        "topic_authorized_operations": _OPERATIONS_OMITTED,
    }
