"""FindCoordinator: this node coordinates every group and, later, every transaction; in a
cluster, the leader of the key's `__consumer_offsets` / `__transaction_state` /
`__share_group_state` partition does (server/cluster/coordinators.py).

v4+ asks for a batch of keys (KIP-699). Key type 0 is a group, 1 a transactional id, 2 (v6+,
KIP-932) a share partition's state, keyed "groupId:topicId:partition", which only brokers ask
for (KafkaApis.getCoordinator, as Kafka 4.4 answers it, checked against it): below v6 each key
is INVALID_REQUEST; from v6 the whole request needs CLUSTER_ACTION (else every key is
CLUSTER_AUTHORIZATION_FAILED), a key SharePartitionKey.getInstance refuses is INVALID_REQUEST,
and share.version is not consulted. Any other key type is INVALID_REQUEST.

A key that passes those checks has its coordinator's topic created if it does not exist yet
(`ensure_internal_topic`), as KafkaApis.getCoordinator asks AutoTopicCreationManager to: a
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
from ottla.server.coordinator.log import ensure_internal_topic
from ottla.server.coordinator.topics import OFFSETS_TOPIC, SHARE_GROUP_STATE, SHARE_STATE_PARTITIONS, TRANSACTION_STATE_TOPIC
from ottla.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, KafkaError
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
# What Kafka 4.4 answers (v4+) with COORDINATOR_NOT_AVAILABLE while it creates the topic.
_NOT_AVAILABLE = ""
# Uuid.fromString: at most 24 characters of URL-safe base64 (padding optional) decoding to 16 bytes.
_TOPIC_ID = re.compile(r"[A-Za-z0-9_-]{22}(?:==)?")
# Integer.parseInt: a sign, then decimal digits (Character.digit takes any Unicode ones).
_PARTITION = re.compile(r"[+-]?\d+")
# String.trim: every character up to the space.
_TRIMMED = "".join(map(chr, range(33)))
# KafkaApis.getCoordinator: the key's resource, and the error (with its exception's default
# message, which the response carries) when the principal may not DESCRIBE it.
_REFUSALS = {
    0: (ResourceType.GROUP, ErrorCode.GROUP_AUTHORIZATION_FAILED, "Group authorization failed."),
    1: (ResourceType.TRANSACTIONAL_ID, ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, "Transactional Id authorization failed."),
}


def handle(context: RequestContext, header: RequestHeader, request: FindCoordinatorRequest) -> FindCoordinatorResponse:
    key_type = request.get("key_type", 0)
    if header.api_version >= 4:
        keys = request["coordinator_keys"]
        if key_type == SHARE and header.api_version >= 6 and keys and not context.authorize(
                AclOperation.CLUSTER_ACTION, ResourceType.CLUSTER, CLUSTER_NAME):
            # The check throws out of the loop over the keys: the whole request is refused
            # (FindCoordinatorRequest.getErrorResponse, with the error's default message).
            return {"throttle_time_ms": 0, "coordinators": [
                _refused(key, ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "Cluster authorization failed.") for key in keys]}
        return {"throttle_time_ms": 0, "coordinators": [_coordinator(context, key, key_type, header.api_version) for key in keys]}
    found = _coordinator(context, request["key"], key_type, header.api_version)
    return {
        "throttle_time_ms": 0,
        "error_code": found["error_code"],
        "error_message": found["error_message"],
        "node_id": found["node_id"],
        "host": found["host"],
        "port": found["port"],
    }


def _coordinator(context: RequestContext, key: str, key_type: int, version: int) -> FindCoordinatorResponseCoordinator:
    cluster = context.services.cluster
    if key_type == SHARE:
        if version < 6:
            return _refused(key, ErrorCode.INVALID_REQUEST, "share coordinator keys need FindCoordinator v6 or later")
        problem = _share_key_problem(key)
        if problem is not None:
            return _refused(key, ErrorCode.INVALID_REQUEST, problem)
        if not _topic_created(lambda: ensure_coordinator_topic(context, SHARE_GROUP_STATE.name)):
            return _refused(key, ErrorCode.COORDINATOR_NOT_AVAILABLE, _NOT_AVAILABLE)
        if cluster is not None:
            return find_coordinator(context, cluster, SHARE, key)  # type: ignore[return-value]
        return _this_node(context, key)
    if key_type not in _KEY_TYPES:
        return _refused(key, ErrorCode.INVALID_REQUEST, f"unknown key type {key_type}")
    resource_type, error, message = _REFUSALS[key_type]
    if not context.authorize(AclOperation.DESCRIBE, resource_type, key):
        return _refused(key, error, message)
    if not _topic_created(lambda: ensure_coordinator_topic(context, OFFSETS_TOPIC if key_type == 0 else TRANSACTION_STATE_TOPIC)):
        return _refused(key, ErrorCode.COORDINATOR_NOT_AVAILABLE, _NOT_AVAILABLE)
    if cluster is not None:
        return find_coordinator(context, cluster, key_type, key)  # type: ignore[return-value]
    return _this_node(context, key)


def _share_key_problem(key: str) -> str | None:
    """Why SharePartitionKey.getInstance refuses `key`, or None. The group id is everything
    before the last two fields, colons and all; Java's split drops trailing empty fields, so
    "g:id:0:" is taken as "g:id:0"."""
    if not key:
        return "Share partition key cannot be empty"
    fields = key.split(":")
    while fields and not fields[-1]:
        fields.pop()
    if len(fields) < 3:
        return f"Invalid key format: expected - groupId:topicId:partition, found -  {key}"
    if not ":".join(fields[:-2]).strip(_TRIMMED):
        return "GroupId must not be empty"
    if not _TOPIC_ID.fullmatch(fields[-2]):
        return f"Invalid topic ID: {fields[-2]}"
    if not _PARTITION.fullmatch(fields[-1]) or not -(2**31) <= int(fields[-1]) < 2**31:
        return f"Invalid partition: {fields[-1]}"
    return None


def ensure_coordinator_topic(context: RequestContext, name: str) -> None:
    """Create the internal topic `name` if it does not exist yet, as its coordinator creates it
    (its partition count and configs). Raises KafkaError when the storage refuses."""
    if name == OFFSETS_TOPIC:
        context.groups.log.ensure_topic()
    elif name == TRANSACTION_STATE_TOPIC:
        context.txn.log.ensure_topic()
    else:
        ensure_internal_topic(context.storage, SHARE_GROUP_STATE, SHARE_STATE_PARTITIONS)


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


def _refused(key: str, error: ErrorCode, message: str) -> FindCoordinatorResponseCoordinator:
    return {"key": key, "node_id": -1, "host": "", "port": -1, "error_code": error, "error_message": message}
