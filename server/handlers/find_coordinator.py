"""FindCoordinator: this node coordinates every group and, later, every transaction; in a
cluster, the leader of the key's `__consumer_offsets` / `__transaction_state` /
`__share_group_state` partition does (server/cluster/coordinators.py).

v4+ asks for a batch of keys (KIP-699). Key type 0 is a group, 1 a transactional id, 2 (v6+,
KIP-932) a share partition's state, keyed "groupId:topicId:partition", which only brokers ask
for (KafkaApis.getCoordinator, as Kafka 4.4 answers it, checked against it): below v6 each key
is INVALID_REQUEST; from v6 the whole request needs CLUSTER_ACTION (else every key is
CLUSTER_AUTHORIZATION_FAILED), a key SharePartitionKey.getInstance refuses is INVALID_REQUEST,
and share.version is not consulted. Any other key type is INVALID_REQUEST.

Messages, as KafkaApis words them: below v4 a found coordinator says "NONE" (Errors.NONE.message())
and an error its code's default words (FindCoordinatorResponse.prepareOldResponse). From v4 a
key's own answer never sets one, so it is the generated default "" (its error or not); only
what fails the whole request (no CLUSTER_ACTION, an unknown key type: CoordinatorType.forId
throws) gives every key the error's default words (prepareErrorResponse).

A key that passes those checks has its coordinator's topic created if it does not exist yet
(`ensure_coordinator_topic`), as KafkaApis.getCoordinator asks AutoTopicCreationManager to: a
fresh broker lists no internal topic until a coordinator is first looked up. Kafka answers that
first lookup COORDINATOR_NOT_AVAILABLE while its controller creates the topic; ours is created
synchronously before the answer, so the coordinator is named at once, deliberately (clients
retry the former and accept either).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from ottla.server.cluster.coordinators import SHARE, find_coordinator
from ottla.server.context import RequestContext
from ottla.server.coordinator.first_use import ensure_coordinator_topic
from ottla.server.coordinator.topics import OFFSETS_TOPIC, SHARE_GROUP_STATE, TRANSACTION_STATE_TOPIC
from ottla.server.java_strings import java_trim
from ottla.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, KafkaError, default_message
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        FindCoordinatorRequest,
        FindCoordinatorResponse,
        FindCoordinatorResponseCoordinator,
    )

log = logging.getLogger("ottla.coordinator")

API = ApiKey.FIND_COORDINATOR
VERSIONS = (0, 6)

_KEY_TYPES = (0, 1)
# KafkaApis.getCoordinator: the key's resource, and the error when the principal may not DESCRIBE it.
_REFUSALS = {
    0: (ResourceType.GROUP, ErrorCode.GROUP_AUTHORIZATION_FAILED),
    1: (ResourceType.TRANSACTIONAL_ID, ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED),
}
# Uuid.fromString: at most 24 characters of URL-safe base64 (padding optional) decoding to 16 bytes.
_TOPIC_ID = re.compile(r"[A-Za-z0-9_-]{22}(?:==)?")
# Integer.parseInt: a sign, then decimal digits (Character.digit takes any Unicode ones).
_PARTITION = re.compile(r"[+-]?\d+")


def handle(context: RequestContext, header: RequestHeader, request: FindCoordinatorRequest) -> FindCoordinatorResponse:
    key_type = request.get("key_type", 0)
    version = header.api_version
    if version >= 4:
        keys = request["coordinator_keys"]
        whole = _whole_request_error(context, key_type, version) if keys else None
        if whole is not None:
            return {"throttle_time_ms": 0, "coordinators": [_refused(key, whole, default_message(whole)) for key in keys]}
        coordinators = [_coordinator(context, key, key_type, version) for key in keys]
        for coordinator in coordinators:
            coordinator["error_message"] = ""
        return {"throttle_time_ms": 0, "coordinators": coordinators}
    whole = _whole_request_error(context, key_type, version)
    found = _coordinator(context, request["key"], key_type, version) if whole is None else _refused(request["key"], whole, None)
    code = ErrorCode(found["error_code"])
    return {
        "throttle_time_ms": 0,
        "error_code": code,
        "error_message": default_message(code) or ErrorCode.NONE.name,
        "node_id": found["node_id"],
        "host": found["host"],
        "port": found["port"],
    }


def _whole_request_error(context: RequestContext, key_type: int, version: int) -> ErrorCode | None:
    """The error KafkaApis.getCoordinator throws (rather than returns) for the request's first
    key, failing them all: share keys from v6 without CLUSTER_ACTION, or a key type
    CoordinatorType.forId does not know (share keys below v6 are a key's own INVALID_REQUEST)."""
    if key_type == SHARE:
        if version >= 6 and not context.authorize(AclOperation.CLUSTER_ACTION, ResourceType.CLUSTER, CLUSTER_NAME):
            return ErrorCode.CLUSTER_AUTHORIZATION_FAILED
        return None
    return None if key_type in _KEY_TYPES else ErrorCode.INVALID_REQUEST


def _coordinator(context: RequestContext, key: str, key_type: int, version: int) -> FindCoordinatorResponseCoordinator:
    """The key's own answer, its error_message left for `handle` to word per version."""
    cluster = context.services.cluster
    if key_type == SHARE:
        if version < 6 or not _is_share_key(key):
            return _refused(key, ErrorCode.INVALID_REQUEST, None)
        if not _topic_created(lambda: ensure_coordinator_topic(context, SHARE_GROUP_STATE.name)):
            return _refused(key, ErrorCode.COORDINATOR_NOT_AVAILABLE, None)
        if cluster is not None:
            return find_coordinator(context, cluster, SHARE, key)  # type: ignore[return-value]
        return _this_node(context, key)
    resource_type, error = _REFUSALS[key_type]
    if not context.authorize(AclOperation.DESCRIBE, resource_type, key):
        return _refused(key, error, None)
    if not _topic_created(lambda: ensure_coordinator_topic(context, OFFSETS_TOPIC if key_type == 0 else TRANSACTION_STATE_TOPIC)):
        return _refused(key, ErrorCode.COORDINATOR_NOT_AVAILABLE, None)
    if cluster is not None:
        return find_coordinator(context, cluster, key_type, key)  # type: ignore[return-value]
    return _this_node(context, key)


def _is_share_key(key: str) -> bool:
    """Whether SharePartitionKey.getInstance takes `key`. The group id is everything before the
    last two fields, colons and all; Java's split drops trailing empty fields, so "g:id:0:" is
    taken as "g:id:0"."""
    fields = key.split(":")
    while fields and not fields[-1]:
        fields.pop()
    return (
        len(fields) >= 3
        and bool(java_trim(":".join(fields[:-2])))
        and _TOPIC_ID.fullmatch(fields[-2]) is not None
        and _PARTITION.fullmatch(fields[-1]) is not None
        and -(2**31) <= int(fields[-1]) < 2**31
    )


def _topic_created(ensure: Callable[[], object]) -> bool:
    """Whether the coordinator's topic exists, `ensure` having created it if it was missing. A
    creation the storage refuses (a full or failed disk) leaves the key COORDINATOR_NOT_AVAILABLE,
    which clients retry, as Kafka answers while its topic is not there."""
    try:
        ensure()
    except KafkaError as exc:
        log.warning("could not create a coordinator's topic: %s", exc)
        return False
    return True


def _this_node(context: RequestContext, key: str) -> FindCoordinatorResponseCoordinator:
    return {"key": key, "node_id": context.node.node_id, "host": context.node.host, "port": context.node.port, "error_code": ErrorCode.NONE, "error_message": None}


def _refused(key: str, error: ErrorCode, message: str | None) -> FindCoordinatorResponseCoordinator:
    return {"key": key, "node_id": -1, "host": "", "port": -1, "error_code": error, "error_message": message}
