"""Coordinators placed as Kafka places them: the group coordinator of a group id, and the
transaction coordinator of a transactional id, is the leader of the key's partition of
`__consumer_offsets` / `__transaction_state` (Utils.abs(key.hashCode()) % partitions).

FindCoordinator answers that node (COORDINATOR_NOT_AVAILABLE while the partition has no
leader), and a coordinator request for a key sent to any other node answers NOT_COORDINATOR
(a leaderless partition's keys too: no node holds it), so clients look the coordinator up
again, as they must when a coordinator's node goes away.
Before the coordinator's topic exists no node coordinates any key, so every node answers
NOT_COORDINATOR, as Kafka 4.4 does until a FindCoordinator has the topic created.
It does so where Kafka does: KafkaApis checks the feature, the authorizations and the topics
before it hands the request to the coordinator, and only the coordinator tells the key is not
its own, once its service has made the checks it makes before it routes the key (an empty group
or transactional id, a session or transaction timeout out of range). So such a request runs its
handler, whose checks are KafkaApis's, with stand-ins for the coordinators, which run the
coordinators' own code on their configuration: its first use of anything else (a key's state,
the log, the timers) answers the request NOT_COORDINATOR, and a request answered before that
(refused, naming only unknown topics, or with an invalid id or timeout) keeps its answer.
An API whose answer is more than the coordinator's checks each key itself (`elsewhere`) where
KafkaApis hands it over: OffsetFetch v8+ routes each group on its own, and OffsetCommit and
TxnOffsetCommit merge the coordinator's answer for the partitions they pass it with their own
for the others (OffsetCommitResponse.Builder.merge).
The coordinators themselves are shared by every node of the process and hold the state
already: when leadership of a partition moves, the new leader serves its groups and
transactions at once, where Kafka would first replay the partition (answering
COORDINATOR_LOAD_IN_PROGRESS meanwhile). Brokers over one database do replay it (the broker
reads it again), and answer COORDINATOR_LOAD_IN_PROGRESS until they have.

`gated(HANDLERS)` is the handler table of a cluster: the coordinator APIs wrapped with that
check. A single node keeps the plain table and pays nothing.
"""

from __future__ import annotations

import base64
import dataclasses
import inspect
import types
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, NoReturn, cast

from ottla.server.cluster.routing import endpoint_of, partition_state
from ottla.server.cluster.state import NO_LEADER, ClusterState
from ottla.server.context import RequestContext
from ottla.server.coordinator.log import java_string_hash
from ottla.server.coordinator.topics import OFFSETS, SHARE_GROUP_STATE, TRANSACTION_STATE, share_state_key
from ottla.server.faults import Fault
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.header import RequestHeader

# FindCoordinator's key types (CoordinatorType): a group, a transactional id, a share-partition (KIP-932).
GROUP, TRANSACTION, SHARE = 0, 1, 2
# Each key type's coordinator topic.
_TOPICS = {GROUP: OFFSETS.name, TRANSACTION: TRANSACTION_STATE.name, SHARE: SHARE_GROUP_STATE.name}
Handle = Callable[[RequestContext, RequestHeader, Any], Any]


def _group(request: Mapping[str, Any], version: int) -> tuple[int, str] | None:
    return GROUP, request["group_id"]


def _offset_fetch_group(request: Mapping[str, Any], version: int) -> tuple[int, str] | None:
    """v8+ batches groups (KIP-709), each answered by its own coordinator: the handler checks them."""
    return (GROUP, request["group_id"]) if version < 8 else None


def _transaction(request: Mapping[str, Any], version: int) -> tuple[int, str] | None:
    transactional_id = request.get("transactional_id")
    return None if transactional_id is None else (TRANSACTION, transactional_id)


def _add_partitions(request: Mapping[str, Any], version: int) -> tuple[int, str] | None:
    """v4+ comes from brokers (KIP-890) and names many transactions: not checked."""
    return (TRANSACTION, request["v3_and_below_transactional_id"]) if version < 4 else None


# The key each coordinator API is for: Kafka's KafkaApis sends these to the group or
# transaction coordinator, which answers NOT_COORDINATOR for keys it does not own.
_KEYS: dict[ApiKey, Callable[[Mapping[str, Any], int], tuple[int, str] | None]] = {
    ApiKey.JOIN_GROUP: _group,
    ApiKey.SYNC_GROUP: _group,
    ApiKey.HEARTBEAT: _group,
    ApiKey.LEAVE_GROUP: _group,
    ApiKey.OFFSET_DELETE: _group,
    ApiKey.CONSUMER_GROUP_HEARTBEAT: _group,
    ApiKey.SHARE_GROUP_HEARTBEAT: _group,
    ApiKey.STREAMS_GROUP_HEARTBEAT: _group,
    ApiKey.OFFSET_FETCH: _offset_fetch_group,
    ApiKey.INIT_PRODUCER_ID: _transaction,
    ApiKey.ADD_OFFSETS_TO_TXN: _transaction,
    ApiKey.END_TXN: _transaction,
    ApiKey.ADD_PARTITIONS_TO_TXN: _add_partitions,
}


def share_state_partition(key: str, partitions: int) -> int:
    """The `__share_group_state` partition of share-partition key "groupId:topicId:partition"
    (one SharePartitionKey.getInstance takes): ShareCoordinatorService.partitionFor hashes
    asCoordinatorKey, the key rendered again ("%s:%s:%d", the topic id as Uuid.toString, the
    partition as parsed), so "g:<id>==:007" and "g:<id>:7" share a partition."""
    fields = key.split(":")
    while not fields[-1]:  # Java's String.split drops trailing empty fields
        fields.pop()
    topic_id = base64.urlsafe_b64decode(fields[-2][:22] + "==")
    code = java_string_hash(share_state_key(":".join(fields[:-2]), topic_id, int(fields[-1])))
    return (0 if code == -(1 << 31) else abs(code)) % partitions


def coordinator_node(context: RequestContext, cluster: ClusterState, key_type: int, key: str) -> int:
    """The node coordinating `key`: the leader of the key's partition of its coordinator's
    topic, NO_LEADER while that partition has no leader or the topic does not exist yet (it
    is created by the first FindCoordinator, as KafkaApis.getCoordinator asks for it)."""
    info = context.storage.topic(_TOPICS[key_type])
    if info is None:
        return NO_LEADER
    if key_type == SHARE:
        index = share_state_partition(key, info.partitions)
    elif key_type == GROUP:
        index = context.groups.offsets_partition(key)
    else:
        index = context.txn.log.partition_for(key)
    return partition_state(context, cluster, info, index).leader


def _loading(context: RequestContext, key_type: int, key: str) -> bool:
    """Whether this node is still loading the key's partition, just taken over (over a database)."""
    if key_type == GROUP:
        return context.groups.log.loading(context.groups.offsets_partition(key))
    return context.txn.log.loading(context.txn.log.partition_for(key))


def find_coordinator(context: RequestContext, cluster: ClusterState, key_type: int, key: str) -> dict[str, Any]:
    """FindCoordinator's answer for one key: the coordinator's endpoint on the client's listener."""
    node = coordinator_node(context, cluster, key_type, key)
    endpoint = None if node == NO_LEADER else endpoint_of(context, cluster, node)
    if endpoint is None:
        return {"key": key, "node_id": -1, "host": "", "port": -1, "error_code": ErrorCode.COORDINATOR_NOT_AVAILABLE,
                "error_message": "The coordinator is not available."}
    return {"key": key, "node_id": node, "host": endpoint.host, "port": endpoint.port, "error_code": ErrorCode.NONE, "error_message": None}


def refusal(context: RequestContext, cluster: ClusterState, key_type: int, key: str) -> ErrorCode | None:
    """What this node answers for a key it may not coordinate now: NOT_COORDINATOR when it
    does not lead the key's partition, whoever does (another node, none while the partition
    has no leader, none before the coordinator's topic exists), as Kafka's CoordinatorRuntime
    and TransactionStateManager answer for a partition they do not hold; only FindCoordinator
    tells a leaderless partition (COORDINATOR_NOT_AVAILABLE). COORDINATOR_LOAD_IN_PROGRESS
    while this node is reading the partition again; None when it coordinates the key."""
    if coordinator_node(context, cluster, key_type, key) != context.node.node_id:
        return ErrorCode.NOT_COORDINATOR
    if _loading(context, key_type, key):
        return ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
    return None


def elsewhere(context: RequestContext, key_type: int, key: str) -> ErrorCode | None:
    """`refusal` for an API naming many keys, each answered on its own; None on a single
    node, which coordinates every key."""
    cluster = context.services.cluster
    return None if cluster is None else refusal(context, cluster, key_type, key)


def gated(handlers: Mapping[int, tuple[Handle, int, int]]) -> dict[int, tuple[Handle, int, int]]:
    """The handler table with each coordinator API answering NOT_COORDINATOR (or
    COORDINATOR_LOAD_IN_PROGRESS) for a key this node does not coordinate now, once its
    handler's own checks have passed."""
    table = dict(handlers)
    for api, key_of in _KEYS.items():
        if api in table:
            handle, lowest, highest = table[api]
            table[api] = (_gate(handle, key_of), lowest, highest)
    return table


def _gate(handle: Handle, key_of: Callable[[Mapping[str, Any], int], tuple[int, str] | None]) -> Handle:
    def gated_handle(context: RequestContext, header: RequestHeader, request: Any) -> Any:
        cluster = context.services.cluster
        if cluster is not None:
            key = key_of(request, header.api_version)
            if key is not None:
                error = refusal(context, cluster, *key)
                if error is not None:
                    answer = _error_answer(header, request, error)
                    if answer is not None:
                        refused = _Refusal(error)
                        try:
                            result = handle(_without_coordinators(context, refused), header, request)
                        except _Refused:
                            return answer
                        if inspect.iscoroutine(result):
                            return _settled(result, answer, refused)
                        return answer if refused.used else result
        return handle(context, header, request)

    return gated_handle


async def _settled(result: Coroutine[Any, Any, Any], answer: dict[str, Any], refused: _Refusal) -> Any:
    """A handler that went on past its coordinator's checks (an EndTxn awaiting its markers on
    PostgreSQL) refused at its first use of the coordinator's state all the same."""
    try:
        settled = await result
    except _Refused:
        return answer
    return answer if refused.used else settled


class _Refused(KafkaError):
    """A handler reached the state of a coordinator of a key this node does not coordinate."""


class _Refusal:
    """The error a request's stand-ins refuse with, and whether any did: a handler answers
    NOT_COORDINATOR once it used another node's coordinator, even where the coordinator's own
    code catches the refusal as one of its errors."""

    __slots__ = ("error", "used")

    def __init__(self, error: ErrorCode) -> None:
        self.error = error
        self.used = False


class _Elsewhere:
    """A coordinator of another node, as Kafka's coordinator service is in front of a runtime
    that does not own the key's partition: the coordinator's own methods and properties run on
    it, reading its configuration (`_CONFIGURATION`), so the checks it makes before it looks at
    a key answer as on the coordinator; its first use of anything else raises `_Refused`. With
    no coordinator (the share coordinator, opened on first use) any use raises. The group
    coordinator's managers of KIP-848 and KIP-1071 groups (`_PARTS`) stand in the same way, so
    their checks of a heartbeat made before it is routed answer on every node, as
    GroupCoordinatorService makes them before it schedules the write."""

    __slots__ = ("_stood_for", "_refusal")

    def __init__(self, coordinator: object | None, refused: _Refusal) -> None:
        self._stood_for = coordinator
        self._refusal = refused

    def __getattr__(self, name: str) -> Any:
        coordinator = self._stood_for
        if coordinator is not None:
            if name in _CONFIGURATION:
                return getattr(coordinator, name)
            if name in _PARTS:
                return _Elsewhere(getattr(coordinator, name), self._refusal)
            member = inspect.getattr_static(type(coordinator), name, None)
            if isinstance(member, staticmethod):
                return member.__func__
            if isinstance(member, types.FunctionType):
                return types.MethodType(member, self)
            if isinstance(member, property) and member.fget is not None:
                return member.fget(self)
        return self._refuse()

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in _Elsewhere.__slots__:
            self._refuse()  # a change of the coordinator's state is a use of it
        object.__setattr__(self, name, value)

    def _refuse(self) -> NoReturn:
        self._refusal.used = True
        raise _Refused(self._refusal.error)


# What a stand-in reads of the coordinator it stands for: the configuration its checks use
# (GroupConfig's session timeouts, the assignors, TxnConfig's transaction.max.timeout.ms),
# never a key's state.
_CONFIGURATION = frozenset({"config"})
# The group coordinator's managers of consumer and streams groups, standing in as it does.
_PARTS = frozenset({"consumer", "streams"})


class _Rooms:
    """A node's rooms (`context.Rooms`) with the share coordinator another node's."""

    __slots__ = ("_rooms", "_share")

    def __init__(self, rooms: Any, share: _Elsewhere) -> None:
        self._rooms = rooms
        self._share = share

    def share_room(self) -> Any:
        return self._share

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rooms, name)


def _without_coordinators(context: RequestContext, refused: _Refusal) -> RequestContext:
    """`context` with the group, share group and transaction coordinators standing in for
    another node's: everything else, the authorizer and the features first, is this node's."""
    services = dataclasses.replace(
        context.services, groups=cast(Any, _Elsewhere(context.services.groups, refused)), txn=cast(Any, _Elsewhere(context.services.txn, refused)),
        rooms=_Rooms(context.services.rooms, _Elsewhere(None, refused)),
    )
    return RequestContext(services, context.client, context.sasl)


def _error_answer(header: RequestHeader, request: Mapping[str, Any], error: ErrorCode) -> dict[str, Any] | None:
    """The API's answer with `error` wherever it puts errors: the faults module knows where,
    but for OffsetFetch below v2, which has no group-level error code: there each requested
    partition carries it, with offset -1 and no metadata (OffsetFetchResponse.groupError)."""
    if header.api_key == ApiKey.OFFSET_FETCH and header.api_version < 2:
        return {"topics": [{"name": topic["name"], "partitions": [
            {"partition_index": index, "committed_offset": -1, "metadata": "", "error_code": error}
            for index in topic["partition_indexes"]]} for topic in request["topics"]]}
    fault = Fault(0, "coordinator", None, None, None, None, None, int(error), 0, None, 0, None, 1)
    answer = fault.error_response(header, request)
    if answer is not None:
        answer.setdefault("throttle_time_ms", 0)
    return answer
