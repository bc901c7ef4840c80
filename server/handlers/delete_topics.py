"""DeleteTopics, by name (v0-5) or by name or id (v6).

With an authorizer (ControllerApis.deleteTopics): DELETE on the cluster allows every topic;
else a topic needs DELETE on itself, and TOPIC_AUTHORIZATION_FAILED answers otherwise. A name
the principal may not DESCRIBE is refused before it is looked up, so that it reveals nothing;
an id is resolved first (UNKNOWN_TOPIC_ID), and its refusal names the topic only when the
principal may DESCRIBE it.

A timeout_ms of 0 or less fails every entry REQUEST_TIMED_OUT, as Kafka's passed deadline does,
unless its own checks refused every entry (nothing left to look up).

A local topic goes at once (Storage.begin_deletion: gone from Metadata, its name free); its
directories are renamed on a thread (server/topic_creation.py rename_deleted), and the answer
waits for that, so that a deletion answered is durable as before.

Kafka shuffles its results (Collections.shuffle at the end of ControllerApis.deleteTopics, so
that positions tell no absent topic from a forbidden one): no order is Kafka's, and Ottla
answers in request order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from ottla.server.context import RequestContext
from ottla.server.handlers._topics import resolve_topic_name
from ottla.server.topic_creation import rename_deleted
from ottla.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType
from ottla.storage import TopicInfo
from ottla.storage.engine import TopicDeletion
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, KafkaError, default_message
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        DeleteTopicsRequest,
        DeleteTopicsResponse,
        DeleteTopicsResponseDeletableTopicResult,
    )

API = ApiKey.DELETE_TOPICS
VERSIONS = (0, 6)

_UNKNOWN = (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.UNKNOWN_TOPIC_ID)


def handle(
    context: RequestContext, header: RequestHeader, request: DeleteTopicsRequest
) -> DeleteTopicsResponse | Coroutine[Any, Any, DeleteTopicsResponse]:
    if header.api_version >= 6:
        wanted: list[tuple[str | None, bytes | None]] = [(t["name"], t["topic_id"]) for t in request["topics"]]
    else:
        wanted = [(name, None) for name in request["topic_names"]]
    refused = _refused_entries(context, wanted)
    if request["timeout_ms"] <= 0 and len(refused) < len(wanted):
        # ControllerApis looks the entries its own checks left up in the controller, with a
        # deadline of timeout_ms from now, already passed: the whole request fails, each entry
        # answered as given (DeleteTopicsRequest.getErrorResponse).
        timed_out: list[DeleteTopicsResponseDeletableTopicResult] = [
            {"name": name, "topic_id": topic_id or bytes(16), "error_code": ErrorCode.REQUEST_TIMED_OUT, "error_message": None}
            for name, topic_id in wanted
        ]
        return {"throttle_time_ms": 0, "responses": timed_out}
    storage = context.storage
    checked = context.authorizer is not None and not context.authorize(AclOperation.DELETE, ResourceType.CLUSTER, CLUSTER_NAME)
    responses: list[DeleteTopicsResponseDeletableTopicResult] = []
    # An engine that deletes topics with coroutines: the topics to delete, deleted together.
    pending: list[tuple[DeleteTopicsResponseDeletableTopicResult, TopicInfo]] | None = [] if storage.is_async else None
    # Local topics' file work, for a thread.
    deletions: list[TopicDeletion] = []
    # controller_mutation_rate, strict from v5 (ControllerApis.deleteTopics).
    mutations = context.services.quotas.mutation_quota(context.client.principal, header.client_id or "", header.api_version >= 5)
    for position, (name, topic_id) in enumerate(wanted):
        entry: DeleteTopicsResponseDeletableTopicResult = {"name": name, "topic_id": topic_id or bytes(16), "error_code": ErrorCode.NONE, "error_message": None}
        if position in refused:
            message = refused[position]
            if message is None:
                continue  # a copy answered with its first
            entry["error_code"], entry["error_message"] = ErrorCode.INVALID_REQUEST, message
            responses.append(entry)
            continue
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
            if mutations is not None:
                mutations.record(info.partitions)
            if pending is not None:
                pending.append((entry, info))
            else:
                deletion = storage.begin_deletion(resolved)
                if deletion is not None:
                    deletions.append(deletion)
                _deleted(context, entry, info)
        except KafkaError as exc:
            entry["error_code"] = exc.code
            # An unknown name or id: ControllerApis' ApiError(error), Errors' own words.
            entry["error_message"] = default_message(exc.code) if exc.code in _UNKNOWN else exc.message
        responses.append(entry)
    response: DeleteTopicsResponse = {"throttle_time_ms": 0 if mutations is None else mutations.throttle_time_ms, "responses": responses}
    if pending:
        return _delete_all(context, response, pending)
    if deletions:
        return _renamed(context, response, deletions)
    return response


async def _renamed(context: RequestContext, response: DeleteTopicsResponse, deletions: list[TopicDeletion]) -> DeleteTopicsResponse:
    """The answer, once the deleted topics' files are renamed (on a thread). Shielded: a client
    gone meanwhile cancels this task, never the renames' completion."""
    await asyncio.shield(rename_deleted(context.storage, deletions))
    return response


def _refused_entries(context: RequestContext, wanted: list[tuple[str | None, bytes | None]]) -> dict[int, str | None]:
    """ControllerApis.deleteTopics' checks before anything is deleted: the entries it answers
    INVALID_REQUEST, by position, with the message; None for a copy of a duplicate, which is
    answered once. An entry naming both a topic and an id, or neither, a name or id given twice,
    and a name whose topic's id is given too are refused, so that none deletes a topic the
    caller did not mean."""
    refused: dict[int, str | None] = {}
    first_of_name: dict[str, int] = {}
    first_of_id: dict[bytes, int] = {}
    for position, (name, topic_id) in enumerate(wanted):
        by_id = bool(topic_id and any(topic_id))
        if by_id and name is not None:
            refused[position] = "You may not specify both topic name and topic id."
        elif not by_id and name is None:
            refused[position] = "Neither topic name nor id were specified."
        elif by_id:
            assert topic_id is not None
            if topic_id in first_of_id:
                refused[first_of_id[topic_id]], refused[position] = "Duplicate topic id.", None
            else:
                first_of_id[topic_id] = position
        else:
            assert name is not None
            if name in first_of_name:
                refused[first_of_name[name]], refused[position] = "Duplicate topic name.", None
            else:
                first_of_name[name] = position
    for name, position in first_of_name.items():
        info = context.storage.topic(name)
        id_position = None if info is None else first_of_id.get(info.topic_id)
        if position not in refused and id_position is not None and id_position not in refused:
            refused[position] = "The provided topic name maps to an ID that was already supplied."
            refused[id_position] = None
    return refused


async def _delete_all(
    context: RequestContext, response: DeleteTopicsResponse, pending: list[tuple[DeleteTopicsResponseDeletableTopicResult, TopicInfo]]
) -> DeleteTopicsResponse:
    """An async engine's deletions, together, each answered as `handle` answers it."""
    outcomes = await asyncio.gather(
        *(context.storage.delete_database_topic(info.name) for _, info in pending),  # type: ignore[attr-defined]
        return_exceptions=True,
    )
    for (entry, info), outcome in zip(pending, outcomes):
        if isinstance(outcome, KafkaError):
            entry["error_code"] = outcome.code
            entry["error_message"] = outcome.message
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            _deleted(context, entry, info)
    return response


def _deleted(context: RequestContext, entry: DeleteTopicsResponseDeletableTopicResult, info: TopicInfo) -> None:
    """A deleted topic's answer; its parked fetches wake to find it gone."""
    entry["name"] = info.name
    entry["topic_id"] = info.topic_id
    for index in range(info.partitions):
        context.wakeups.notify_data(info.name, index)
