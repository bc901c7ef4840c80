"""Fetch: whole batches from the batch holding the fetch offset, with long polling.

A fetch that finds fewer than `min_bytes` parks until an append to one of its
partitions wakes it (Broker.notify_data) or `max_wait_ms` passes, then reads again.
A read_committed fetch (isolation_level 1) stops at the last stable offset and lists the
aborted transactions overlapping what it returns, so the client drops their records
(Kafka's UnifiedLog.read with FetchIsolation.TXN_COMMITTED, collectAbortedTransactions).
Fetch sessions (KIP-227) are kept as Kafka keeps them (server/fetch_sessions.py): a full
request opens one, an incremental request reads every partition of its session and is
answered with only the partitions that changed. A session's answer is returned unsettled
(SessionFetch): the dispatcher gives it to the session only if it is sent, not throttled.
Version 18 adds a replica's high watermark (KIP-1166), which only a follower sends and a
consumer leaves at its default: it is not read.
With an authorizer, a topic the principal may not READ is TOPIC_AUTHORIZATION_FAILED in each of
its partitions (KafkaApis.handleFetchRequest).
From v13 topics are named by id: an id no topic has (the all-zero one too) is UNKNOWN_TOPIC_ID.
A topic-id session's partitions keep the name they joined with (server/fetch_sessions.py).
A single node checks a partition's current_leader_epoch as a cluster's leader does (a negative
one: no check).
A partition's last_fetched_epoch (v12+; Kafka's followers send it, the stock consumers send -1)
is checked against the partition's epoch history before the read (Partition.readRecords): where
the fetcher's log diverges from this one is answered as `diverging_epoch`, with no records.
Errors come with aborted_transactions as Kafka's do: refused before any read (KafkaApis: unknown
topic or partition, not authorized) an empty list; a failed read (ReplicaManager.readFromLog) null.
A partition named twice in a sessionless or full request is read once, where first named, with
what it was last asked for (FetchRequest.fetchData). An isolation_level other than 0 and 1 fails
the request once a partition is to be read (IsolationLevel.forId: UNKNOWN_SERVER_ERROR); a
negative partition_max_bytes fails the partition's read below where it stops (LogSegment.read);
a replica id (>= 0) is no follower of a single node: NOT_LEADER_OR_FOLLOWER.
The answer lists the partitions as KafkaApis.handleFetchRequest's map holds them: those read, in
request order, then those refused before any read, in the order its checks find them (a
consumer's in two passes: those of an unknown topic id, then those not authorized or of no
known partition); a topic's partitions that end up next to each other share one entry, and a
topic without partitions has none.

In a cluster (server/cluster/) the leader serves every fetch of a partition; a follower serves
a consumer's from v11 (KIP-392: Kafka's ReplicaManager reads from the leader only for followers
and for consumers without client metadata), any other node answers NOT_LEADER_OR_FOLLOWER, with
the current leader (v12) and its endpoint (v16, KIP-951). A current_leader_epoch behind the
leader's is FENCED_LEADER_EPOCH, ahead UNKNOWN_LEADER_EPOCH. With `replica.selector.class`
set to Kafka's RackAwareReplicaSelector, the leader sends a consumer whose `rack_id` names the
rack of an in-sync follower (and not its own) to it: `preferred_read_replica`, no records.
Replicas share one log, so a follower is never behind: it serves up to the high watermark too.
Every read stops at the cluster's high watermark, which a crashed node still in the ISR holds
where it crashed (server/cluster/state.py), and the last stable offset never passes it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ottla.server.cluster.routing import check_current_leader_epoch, leader_hint, partition_state
from ottla.server.cluster.state import ClusterState
from ottla.server.context import Answer, RequestContext
from ottla.server.fetch_sessions import SESSIONLESS, FetchContext, SessionFetch
from ottla.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType
from ottla.storage import FileRegion, ReadResult, Storage
from ottla.wire.header import RequestHeader
from ottla.wire.primitives import Spliced
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        FetchRequest,
        FetchRequestFetchTopic,
        FetchResponse,
        FetchResponseFetchableTopicResponse,
        FetchResponsePartitionData,
    )

API = ApiKey.FETCH
VERSIONS = (0, 18)

_READ_COMMITTED = 1
_TOPIC_ID_VERSION = 13
# Errors KafkaApis answers before any read (FetchResponse.partitionResponse): aborted_transactions
# is then an empty list; a read's error (createLogReadResult) leaves it null.
_REFUSED = frozenset({ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.UNKNOWN_TOPIC_ID, ErrorCode.TOPIC_AUTHORIZATION_FAILED})


def handle(context: RequestContext, header: RequestHeader, request: FetchRequest) -> Answer[FetchResponse | SessionFetch]:
    session_id = request.get("session_id", 0)
    session_epoch = request.get("session_epoch", -1)
    # An incremental request's partitions join its session as a dict's keys: no need.
    requested = request["topics"] if session_epoch > 0 else _distinct(request["topics"], header.api_version)
    if session_id == 0 and session_epoch == -1:
        fetch_context = SESSIONLESS
    else:
        opened = context.fetch_sessions.new_context(
            header.api_version, session_id, session_epoch, requested, request.get("forgotten_topics_data", []),
            _from_follower(request), int(time.monotonic() * 1000),
            _topic_names(context.storage) if header.api_version >= _TOPIC_ID_VERSION else None)
        if isinstance(opened, ErrorCode):
            return _session_error(opened)
        fetch_context = opened
    topics = fetch_context.topics(requested)
    seen_version = context.wakeups.data_version
    if context.storage.is_async:
        return _fetch_deferred(context, header.api_version, request, fetch_context, topics, seen_version)
    response, size, keys, answer_now = _read(context, header.api_version, request, topics)
    if not 0 <= request.get("isolation_level", 0) <= _READ_COMMITTED and _read_any(response):
        return _isolation_error(header.api_version, request)
    max_wait_ms = request["max_wait_ms"]
    if size >= _min_bytes(context, request) or max_wait_ms <= 0 or answer_now or not keys:
        return fetch_context.answer(response)
    return _long_poll(context, header.api_version, request, fetch_context, topics, keys,
                      time.monotonic() + max_wait_ms / 1000, seen_version)


async def _fetch_deferred(
    context: RequestContext, version: int, request: FetchRequest, fetch_context: FetchContext,
    topics: list[FetchRequestFetchTopic], seen_version: int
) -> FetchResponse | SessionFetch:
    """`handle` for an engine whose reads are coroutines."""
    response, size, keys, answer_now = await _read_deferred(context, version, request, topics)
    if not 0 <= request.get("isolation_level", 0) <= _READ_COMMITTED and _read_any(response):
        return _isolation_error(version, request)
    max_wait_ms = request["max_wait_ms"]
    if size >= _min_bytes(context, request) or max_wait_ms <= 0 or answer_now or not keys:
        return fetch_context.answer(response)
    return await _long_poll(context, version, request, fetch_context, topics, keys, time.monotonic() + max_wait_ms / 1000, seen_version)


async def _long_poll(
    context: RequestContext, version: int, request: FetchRequest, fetch_context: FetchContext,
    topics: list[FetchRequestFetchTopic], keys: list[tuple[str, int]], deadline: float, seen_version: int
) -> FetchResponse | SessionFetch:
    """Park until data arrives or the deadline passes. Appends that land between the read in
    `handle` and the first park are not lost: `seen_version` was taken before that read."""
    deferred = context.storage.is_async
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        await context.wakeups.wait_for_data(keys, remaining, seen_version)
        seen_version = context.wakeups.data_version
        if deferred:
            response, size, keys, answer_now = await _read_deferred(context, version, request, topics)
        else:
            response, size, keys, answer_now = _read(context, version, request, topics)
        if size >= _min_bytes(context, request) or answer_now:
            return fetch_context.answer(response)
    if deferred:
        return fetch_context.answer((await _read_deferred(context, version, request, topics))[0])
    return fetch_context.answer(_read(context, version, request, topics)[0])


def _distinct(topics: list[FetchRequestFetchTopic], version: int) -> list[FetchRequestFetchTopic]:
    """The request's partitions as FetchRequest.fetchData keys them, in a LinkedHashMap: a
    partition named twice (in one topic entry or two) is read once, where it was first named,
    with what it was last asked for; the same topic's partitions then next to each other share
    an entry."""
    field = "topic_id" if version >= _TOPIC_ID_VERSION else "topic"
    if len(topics) == 1:
        partitions = topics[0]["partitions"]
        if len(partitions) <= 1 or len({partition["partition"] for partition in partitions}) == len(partitions):
            return topics
    elif len({topic[field] for topic in topics}) == len(topics) and all(  # type: ignore[literal-required]
            len({partition["partition"] for partition in topic["partitions"]}) == len(topic["partitions"]) for topic in topics):
        return topics
    wanted = {(topic[field], partition["partition"]): partition for topic in topics for partition in topic["partitions"]}  # type: ignore[literal-required]
    first = {topic[field]: topic for topic in reversed(topics)}  # type: ignore[literal-required]
    distinct: list[FetchRequestFetchTopic] = []
    for (key, _), partition in wanted.items():
        if not distinct or distinct[-1][field] != key:  # type: ignore[literal-required]
            distinct.append({**first[key], "partitions": []})
        distinct[-1]["partitions"].append(partition)
    return distinct


def _read_any(response: FetchResponse) -> bool:
    """Whether any partition got past the checks KafkaApis makes before the read (_REFUSED)."""
    return any(entry["error_code"] not in _REFUSED for topic in response["responses"] for entry in topic["partitions"])


def _isolation_error(version: int, request: FetchRequest) -> FetchResponse:
    """An isolation_level other than 0 and 1: KafkaApis.handleFetchRequest, about to read,
    fails in IsolationLevel.forId and answers FetchRequest.getErrorResponse: UNKNOWN_SERVER_ERROR,
    the request's session id, and before v13 each partition as the request named it with the
    error; the session context was already made (an incremental request's epoch advanced)."""
    error = ErrorCode.UNKNOWN_SERVER_ERROR
    responses: list[FetchResponseFetchableTopicResponse] = []
    if version < _TOPIC_ID_VERSION:
        responses = [{"topic": topic["topic"], "partitions": [
            {"partition_index": wanted["partition"], "error_code": error, "high_watermark": -1, "last_stable_offset": -1,
             "log_start_offset": -1, "aborted_transactions": [], "preferred_read_replica": -1, "records": b""}
            for wanted in topic["partitions"]]} for topic in request["topics"]]
    return {"throttle_time_ms": 0, "error_code": error, "session_id": request.get("session_id", 0), "responses": responses}


def _from_follower(request: FetchRequest) -> bool:
    """A replica's fetch (replica id >= 0; in ReplicaState from v15, a tagged field decoded as
    {} when absent): its session is privileged."""
    replica_id = request.get("replica_id", -1)
    replica_state = request.get("replica_state")
    if replica_state:
        replica_id = replica_state.get("replica_id", replica_id)
    return replica_id >= 0


def _topic_names(storage: Storage) -> Callable[[bytes], str | None]:
    def name(topic_id: bytes) -> str | None:
        info = storage.topic_by_id(topic_id)
        return None if info is None else info.name
    return name


def _min_bytes(context: RequestContext, request: FetchRequest) -> int:
    return min(request["min_bytes"], _max_bytes(context, request))


def _max_bytes(context: RequestContext, request: FetchRequest) -> int:
    """The broker's `fetch.max.bytes` (55 MiB by default) caps what a request asks for, as
    KafkaApis.handleFetchRequest does: no client (v0-2 carry no max_bytes at all) gets a
    whole 1 GiB segment per partition in one response."""
    return min(request.get("max_bytes", 2**31 - 1), context.config.fetch_max_bytes)


def _session_error(code: ErrorCode) -> FetchResponse:
    return {"throttle_time_ms": 0, "error_code": code, "session_id": 0, "responses": []}


def _read(
    context: RequestContext, version: int, request: FetchRequest, topics: list[FetchRequestFetchTopic],
    pending: list[_PendingRead] | None = None,
) -> tuple[FetchResponse, int, list[tuple[str, int]], bool]:
    """One pass over `topics` (the request's, or its session's): (response, bytes, partition
    keys, whether to answer at once: a partition's error, or a partition sent to its preferred
    read replica, which the client must hear of without waiting, as Kafka's ReplicaManager
    answers). With `pending` (an async engine's), the database partitions' reads are
    left there for `_read_deferred`, their entries still to fill."""
    storage = context.storage
    read_committed = request.get("isolation_level", 0) == _READ_COMMITTED
    budget = _max_bytes(context, request)
    total = 0
    answer_now = False
    keys: list[tuple[str, int]] = []
    responses: list[FetchResponseFetchableTopicResponse] = []
    # Partitions KafkaApis refuses before any read: answered after those read, in request order.
    refused: list[tuple[FetchRequestFetchTopic, FetchResponsePartitionData]] = []
    authorizer = context.authorizer
    # KafkaApis.handleFetchRequest: a replica's fetch needs CLUSTER_ACTION, which stands for
    # READ on every topic; without it every partition is TOPIC_AUTHORIZATION_FAILED.
    replica_allowed: bool | None = None
    from_follower = _from_follower(request)
    if authorizer is not None and from_follower:
        replica_allowed = context.authorize(AclOperation.CLUSTER_ACTION, ResourceType.CLUSTER, CLUSTER_NAME)
    cluster = context.services.cluster
    # A replica's fetch on a single node: no replica id is one of its partitions' followers
    # (Partition.fetchRecords: localLogWithEpochOrThrow, then followerReplicaOrThrow).
    no_follower = from_follower and cluster is None
    # KIP-951's node_endpoints, made only when a cluster answers NOT_LEADER_OR_FOLLOWER.
    endpoints: dict[int, Any] | None = None
    for topic in topics:
        name = topic.get("topic")
        topic_error = None
        # A session's name that now names no topic (0) or another topic: how many partitions that has.
        renamed: int | None = None
        if version >= _TOPIC_ID_VERSION:
            topic_id = topic["topic_id"]
            if name is None:
                info = storage.topic_by_id(topic_id)
                if info is None:
                    topic_error = ErrorCode.UNKNOWN_TOPIC_ID
                else:
                    name = info.name
            else:
                info = storage.topic(name)
                if info is None or info.topic_id != topic_id:
                    renamed = 0 if info is None else info.partitions
        if replica_allowed is False or (
            authorizer is not None and replica_allowed is None and name is not None and not context.authorize(AclOperation.READ, ResourceType.TOPIC, name)
        ):
            name, topic_error = None, ErrorCode.TOPIC_AUTHORIZATION_FAILED
        partitions: list[FetchResponsePartitionData] = []
        for wanted in topic["partitions"]:
            index = wanted["partition"]
            entry: FetchResponsePartitionData = {
                "partition_index": index,
                "error_code": ErrorCode.NONE,
                "high_watermark": -1,
                "last_stable_offset": -1,
                "log_start_offset": -1,
                "aborted_transactions": [] if read_committed else None,
                "preferred_read_replica": -1,
                "records": b"",
            }
            try:
                if name is None:
                    raise KafkaError(topic_error or ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
                if renamed is not None:
                    # KafkaApis checks the session's name (authorized above by it): a partition the
                    # topic of that name lacks is UNKNOWN_TOPIC_OR_PARTITION (metadataCache.contains);
                    # one it has, under another id, INCONSISTENT_TOPIC_ID (ReplicaManager.readFromLog).
                    raise KafkaError(ErrorCode.INCONSISTENT_TOPIC_ID if 0 <= index < renamed else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
                # FetchRequest.optionalEpoch: a negative current_leader_epoch names none, as -1 does.
                claimed_epoch = wanted.get("current_leader_epoch", -1)
                if claimed_epoch < -1:
                    claimed_epoch = -1
                if cluster is not None:
                    preferred = _cluster_check(context, cluster, version, request, name, index, claimed_epoch)
                    if preferred is not None:
                        entry["preferred_read_replica"] = preferred
                        answer_now = True
                        log = storage.partition(name, index)
                        high_watermark = cluster.high_watermark(name, index, log.log_end_offset)
                        entry["high_watermark"] = high_watermark
                        entry["last_stable_offset"] = min(log.last_stable_offset, high_watermark)
                        entry["log_start_offset"] = log.log_start_offset
                        partitions.append(entry)
                        continue
                log = storage.partition(name, index)
                if claimed_epoch != -1 and cluster is None:
                    # Partition.localLogWithEpochOrThrow (a cluster's was checked above).
                    check_current_leader_epoch(claimed_epoch, log.leader_epoch)
                if no_follower:
                    raise KafkaError(ErrorCode.NOT_LEADER_FOR_PARTITION)
                # KIP-320/KIP-595: a fetcher naming the epoch of its last fetched batch (a negative
                # one names none: FetchRequest.optionalEpoch) has it checked before the read, as
                # Partition.readRecords does for consumers and followers alike. A cluster's history
                # over its database is the database's, looked up with the read (_read_deferred).
                last_fetched_epoch = wanted.get("last_fetched_epoch", -1)
                deferred_epoch = -1
                if last_fetched_epoch >= 0:
                    if cluster is not None and pending is not None and storage.is_database_topic(name):
                        deferred_epoch = last_fetched_epoch
                    elif _diverged(context, cluster, entry, name, index, log, last_fetched_epoch, wanted["fetch_offset"]):
                        answer_now = True
                        partitions.append(entry)
                        continue
                if pending is not None and storage.is_database_topic(name):
                    pending.append((entry, log, wanted["fetch_offset"], wanted["partition_max_bytes"], name, deferred_epoch))
                    partitions.append(entry)
                    continue
                limit = min(wanted["partition_max_bytes"], max(budget - total, 0))
                stable = log.last_stable_offset
                cluster_high_watermark = None if cluster is None else cluster.high_watermark(name, index, log.log_end_offset)
                if cluster_high_watermark is not None and cluster_high_watermark < stable:
                    stable = cluster_high_watermark
                result = log.read(wanted["fetch_offset"], limit, min_one=total == 0, max_offset=stable if read_committed else cluster_high_watermark)
                if limit < 0:
                    _check_max_bytes(wanted["fetch_offset"], stable if read_committed else result.high_watermark if cluster_high_watermark is None
                                     else cluster_high_watermark)
                data = _records(result, copy=total + result.size <= _COPY_AT_MOST)
            except KafkaError as exc:
                entry["error_code"] = exc.code
                answer_now = True
                if exc.code in _REFUSED:
                    entry["aborted_transactions"] = []
                    refused.append((topic, entry))
                    continue
                entry["aborted_transactions"] = None
                if cluster is not None and version >= 12 and exc.code in _LEADER_ERRORS and name is not None:
                    endpoints = {} if endpoints is None else endpoints
                    entry["current_leader"] = leader_hint(context, cluster, name, index, endpoints)  # type: ignore[typeddict-item]
            else:
                entry["high_watermark"] = result.high_watermark if cluster_high_watermark is None else cluster_high_watermark
                entry["last_stable_offset"] = stable
                if read_committed and result.size:
                    entry["aborted_transactions"] = [
                        {"producer_id": aborted.producer_id, "first_offset": aborted.first_offset}
                        for aborted in log.aborted_transactions(wanted["fetch_offset"], stable)
                    ]
                entry["log_start_offset"] = result.log_start_offset
                entry["records"] = data
                total += result.size
                keys.append((name, index))
            partitions.append(entry)
        _add(responses, version, topic, partitions)
    if not from_follower:
        # A consumer's unknown topic ids are refused as its fetch context is walked, the rest after.
        refused.sort(key=lambda item: item[1]["error_code"] != ErrorCode.UNKNOWN_TOPIC_ID)
    for topic, entry in refused:
        _add(responses, version, topic, [entry])
    response: FetchResponse = {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "session_id": 0, "responses": responses}
    if endpoints and version >= 16:
        response["node_endpoints"] = list(endpoints.values())
    return response, total, keys, answer_now


def _check_max_bytes(fetch_offset: int, up_to: int) -> None:
    """A negative partition_max_bytes, once the offset is found in range: Kafka's LocalLog.read
    answers a fetch offset at or past where the read stops with nothing, and below it reaches
    LogSegment.read, whose IllegalArgumentException is the partition's UNKNOWN_SERVER_ERROR."""
    if fetch_offset < up_to:
        raise KafkaError(ErrorCode.UNKNOWN_SERVER_ERROR)


def _add(responses: list[FetchResponseFetchableTopicResponse], version: int, topic: FetchRequestFetchTopic,
         partitions: list[FetchResponsePartitionData]) -> None:
    """Add a topic's answered partitions as FetchResponse.of lays out its partition map: a topic
    without any is left out, and one that follows the same topic joins its entry."""
    if not partitions:
        return
    field = "topic_id" if version >= _TOPIC_ID_VERSION else "topic"
    if responses and responses[-1][field] == topic[field]:  # type: ignore[literal-required]
        responses[-1]["partitions"].extend(partitions)
    else:
        responses.append({field: topic[field], "partitions": partitions})  # type: ignore[misc]


# A database partition's read still to do: its entry, partition, fetch offset, partition_max_bytes,
# topic, and the last fetched epoch to check against the database's epoch history first (-1: none).
_PendingRead = tuple["FetchResponsePartitionData", Any, int, int, str, int]


def _diverged(
    context: RequestContext, cluster: ClusterState | None, entry: FetchResponsePartitionData, name: str, index: int,
    log: Any, last_fetched_epoch: int, fetch_offset: int,
) -> bool:
    """Whether the fetcher's log diverges from this one (see `_diverging`), from the epoch history
    OffsetForLeaderEpoch answers from: a single node's one epoch, its log's, ending at the log
    end; a cluster's partition history (PartitionState.end_offset_for)."""
    if cluster is None:
        epoch, end_offset = (last_fetched_epoch, log.log_end_offset) if last_fetched_epoch == log.leader_epoch else (-1, -1)
        high_watermark = log.high_watermark
        stable = log.last_stable_offset
    else:
        info = context.storage.topic(name)
        assert info is not None  # _cluster_check found it
        epoch, end_offset = partition_state(context, cluster, info, index).end_offset_for(last_fetched_epoch, log.log_end_offset)
        high_watermark = cluster.high_watermark(name, index, log.log_end_offset)
        stable = min(log.last_stable_offset, high_watermark)
    return _diverging(entry, epoch, end_offset, last_fetched_epoch, fetch_offset, high_watermark, stable, log.log_start_offset)


def _diverging(
    entry: FetchResponsePartitionData, epoch: int, end_offset: int, last_fetched_epoch: int, fetch_offset: int,
    high_watermark: int, stable: int, log_start_offset: int,
) -> bool:
    """Kafka's Partition.readRecords given (epoch, end offset), the largest epoch at or below the
    last fetched one and where it ends here: an epoch this log does not know, or a fetch offset
    below the log start, is OFFSET_OUT_OF_RANGE; an epoch lower than the fetcher's, or ending
    before its fetch offset, is where the logs diverge, answered as `diverging_epoch` with no
    records (and null aborted transactions: FetchDataInfo.empty), the offsets as they stand and
    at once (ReplicaManager.fetchMessages). Whether the entry was so answered."""
    if epoch == -1 or end_offset == -1 or fetch_offset < log_start_offset:
        raise KafkaError(ErrorCode.OFFSET_OUT_OF_RANGE)
    if epoch >= last_fetched_epoch and end_offset >= fetch_offset:
        return False
    entry["diverging_epoch"] = {"epoch": epoch, "end_offset": end_offset}
    entry["high_watermark"] = high_watermark
    entry["last_stable_offset"] = stable
    entry["log_start_offset"] = log_start_offset
    entry["aborted_transactions"] = None
    return True


async def _look_up_epochs(pending: list[_PendingRead]) -> list[_PendingRead]:
    """The reads left once those whose last fetched epoch the database's history (DatabasePartition.
    end_offset_for_epoch, looked up together) finds diverging or unknown are answered so."""
    checked = [read for read in pending if read[5] >= 0]
    if not checked:
        return pending
    outcomes = await asyncio.gather(*(log.end_offset_for_epoch(epoch) for _, log, _, _, _, epoch in checked), return_exceptions=True)
    answered: set[int] = set()
    for (entry, log, offset, _, _, last_fetched_epoch), outcome in zip(checked, outcomes):
        if isinstance(outcome, BaseException) and not isinstance(outcome, KafkaError):
            raise outcome
        try:
            if isinstance(outcome, KafkaError):
                raise outcome
            epoch, end_offset = outcome
            if not _diverging(entry, epoch, end_offset, last_fetched_epoch, offset, log.high_watermark, log.last_stable_offset, log.log_start_offset):
                continue
        except KafkaError as exc:
            entry["error_code"] = exc.code
            entry["aborted_transactions"] = [] if exc.code in _REFUSED else None
        answered.add(id(entry))
    return [read for read in pending if id(read[0]) not in answered]


async def _confirmed(pending: list[_PendingRead]) -> list[_PendingRead]:
    """The reads whose partition's producer state is confirmed (a leader among brokers over one
    database confirms it once it leads: DatabasePartition.confirm), after waiting for those
    that are not; one that cannot be confirmed is answered with the error instead."""
    unconfirmed = [read for read in pending if not read[1].producers_confirmed]
    if not unconfirmed:
        return pending
    outcomes = await asyncio.gather(*(log.confirm() for _, log, _, _, _, _ in unconfirmed), return_exceptions=True)
    failed: set[int] = set()
    for (entry, _, _, _, _, _), outcome in zip(unconfirmed, outcomes):
        if isinstance(outcome, KafkaError):
            entry["error_code"] = outcome.code
            entry["aborted_transactions"] = None
            failed.add(id(entry))
        elif isinstance(outcome, BaseException):
            raise outcome
    return [read for read in pending if id(read[0]) not in failed]


async def _read_deferred(
    context: RequestContext, version: int, request: FetchRequest, topics: list[FetchRequestFetchTopic]
) -> tuple[FetchResponse, int, list[tuple[str, int]], bool]:
    """`_read` for an engine whose reads are coroutines: every database partition read at
    once, each with the whole request budget, then cut in request order to what the local
    engine's reads, one after the other, would have returned (the first partition with
    data gets its first batch whatever its size, as Kafka's minOneMessage)."""
    pending: list[_PendingRead] = []
    response, total, keys, answer_now = _read(context, version, request, topics, pending)
    if not pending:
        return response, total, keys, answer_now
    looked_up = await _look_up_epochs(pending)
    answer_now = answer_now or len(looked_up) < len(pending)  # a divergence or an error is answered at once
    pending = looked_up
    budget = _max_bytes(context, request)
    read_committed = request.get("isolation_level", 0) == _READ_COMMITTED
    if read_committed:
        confirmed = await _confirmed(pending)
        answer_now = answer_now or len(confirmed) < len(pending)  # an error is answered at once
        pending = confirmed
    # Each partition's LSO as the local engine's read takes it: before the read, which stops there for read_committed.
    stables = [log.last_stable_offset for _, log, _, _, _, _ in pending]
    outcomes = await asyncio.gather(
        *(log.read(offset, min(partition_max_bytes, budget), max_offset=stable if read_committed else None)
          for (_, log, offset, partition_max_bytes, _, _), stable in zip(pending, stables)),
        return_exceptions=True,
    )
    for (entry, log, offset, partition_max_bytes, name, _), stable, outcome in zip(pending, stables, outcomes):
        if isinstance(outcome, KafkaError):
            entry["error_code"] = outcome.code
            entry["aborted_transactions"] = [] if outcome.code in _REFUSED else None
            answer_now = True
            continue
        if isinstance(outcome, BaseException):
            raise outcome
        try:
            if partition_max_bytes < 0:
                _check_max_bytes(offset, stable if read_committed else outcome.high_watermark)
        except KafkaError as exc:
            entry["error_code"] = exc.code
            entry["aborted_transactions"] = None
            answer_now = True
            continue
        room = min(partition_max_bytes, max(budget - total, 0))
        kept: list[Any] = []
        size = 0
        for chunk in outcome.chunks:
            if size + len(chunk) > room and (kept or total > 0):
                break
            kept.append(chunk)
            size += len(chunk)
        entry["high_watermark"] = outcome.high_watermark
        entry["last_stable_offset"] = stable
        if read_committed and size:
            entry["aborted_transactions"] = [
                {"producer_id": aborted.producer_id, "first_offset": aborted.first_offset} for aborted in log.aborted_transactions(offset, stable)
            ]
        entry["log_start_offset"] = outcome.log_start_offset
        entry["records"] = _records(ReadResult(kept, size, outcome.high_watermark, outcome.log_start_offset))
        total += size
        keys.append((name, entry["partition_index"]))
    return response, total, keys, answer_now


_LEADER_ERRORS = (ErrorCode.NOT_LEADER_FOR_PARTITION, ErrorCode.FENCED_LEADER_EPOCH)
_RACK_AWARE_SELECTOR = "org.apache.kafka.common.replica.RackAwareReplicaSelector"


def _cluster_check(
    context: RequestContext, cluster: ClusterState, version: int, request: FetchRequest, name: str, index: int, claimed_epoch: int
) -> int | None:
    """Raise what keeps this node from serving the partition; else the follower the leader
    sends this consumer to (RackAwareReplicaSelector), or None to serve it here."""
    info = context.storage.topic(name)
    if info is None or not 0 <= index < info.partitions:
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    state = partition_state(context, cluster, info, index)
    node_id = context.node.node_id
    consumer = not _from_follower(request)
    if state.leader != node_id and not (consumer and version >= 11 and node_id in state.replicas):
        if node_id in state.replicas:
            check_current_leader_epoch(claimed_epoch, state.leader_epoch)  # Partition.localLogWithEpochOrThrow: epoch first
        raise KafkaError(ErrorCode.NOT_LEADER_FOR_PARTITION)
    check_current_leader_epoch(claimed_epoch, state.leader_epoch)
    rack = request.get("rack_id") or ""
    if state.leader != node_id or not rack or not consumer or context.config.value("replica.selector.class") != _RACK_AWARE_SELECTOR:
        return None
    in_rack = [node for node in state.isr if cluster.nodes[node].rack == rack and cluster.nodes[node].running]
    if not in_rack or node_id in in_rack:
        return None
    return in_rack[0]


# An answer's log data up to this size is read into it (one pread from the page cache) and
# the answer leaves in one write, as its handler finishes. Larger data stays in the files, by
# reference, for the connection to sendfile: zero-copy, but the answer then waits for a task
# of its own and for asyncio's sendfile, which stops reading the socket, sends, waits a turn of
# the loop for the socket to be writable again and starts reading again. For a record or two
# that wait was half of the time from a producer's send to a long-polling consumer's receipt;
# copying 64 KiB costs a few microseconds.
_COPY_AT_MOST = 64 * 1024


def _records(result: ReadResult, copy: bool = False) -> bytes | memoryview | Spliced:
    """Log data by reference where it sits in files, so the connection can sendfile it; with
    `copy`, read into bytes instead. A file that reads short (cut under us) stays by reference,
    so the connection reports it as it reports any region it cannot send whole."""
    chunks = result.chunks
    if not chunks:
        return b""
    if len(chunks) == 1 and not isinstance(chunks[0], FileRegion):
        return chunks[0]
    if copy:
        data = b"".join(chunk.file.pread(chunk.length, chunk.position) if isinstance(chunk, FileRegion) else chunk for chunk in chunks)
        if len(data) == result.size:
            return data
    return Spliced(chunks, result.size)
