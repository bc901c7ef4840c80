"""ListOffsets: earliest (-2), latest (-1), max timestamp (-3) or the first offset at a time.

Each special timestamp needs the version that introduced it; below that version, and for a
negative timestamp that is none of them, the partition answers UNSUPPORTED_VERSION before
its topic is even looked up (ReplicaManager.isListOffsetsTimestampUnsupported). Without
tiered storage the tiered ones (-5, KIP-1005; -6, KIP-1023) find nothing, and the first
local offset (-4, KIP-405) is the earliest.

A client's (replica_id -1) answers stop at the high watermark, with isolation_level 1
(read_committed, v2+) at the last stable offset too: latest is that offset, and a lookup landing
at or beyond it finds nothing. A replica's or a debugging request's (any other replica_id) stop
at the log end, whatever its isolation level (Partition.fetchOffsetForTimestamp,
lastFetchableOffset).

A partition named more than once in the request is answered once, INVALID_REQUEST: Kafka 4's
ReplicaManager.fetchOffset files its answers by partition, so the copies collapse into one, and
a topic named more than once is answered once, one named without partitions not at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from ottla.server.cluster.routing import DEBUGGING_REPLICA_ID, check_current_leader_epoch, leader_partition
from ottla.server.cluster.state import PartitionState
from ottla.server.context import RequestContext
from ottla.server.security.authorizer import AclOperation, ResourceType
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        ListOffsetsRequest,
        ListOffsetsResponse,
        ListOffsetsResponseListOffsetsPartitionResponse,
        ListOffsetsResponseListOffsetsTopicResponse,
    )

API = ApiKey.LIST_OFFSETS
VERSIONS = (0, 11)

LATEST = -1
EARLIEST = -2
MAX_TIMESTAMP = -3
EARLIEST_LOCAL = -4
LATEST_TIERED = -5
EARLIEST_PENDING_UPLOAD = -6

# The first version that may ask for each special timestamp (Kafka's
# timestampMinSupportedVersion; v0, which Kafka 4 no longer serves, always had -1 and -2).
_FIRST_VERSION = {LATEST: 0, EARLIEST: 0, MAX_TIMESTAMP: 7, EARLIEST_LOCAL: 8, LATEST_TIERED: 9, EARLIEST_PENDING_UPLOAD: 11}


def handle(
    context: RequestContext, header: RequestHeader, request: ListOffsetsRequest
) -> ListOffsetsResponse | Coroutine[Any, Any, ListOffsetsResponse]:
    if context.storage.is_async and request.get("isolation_level", 0) == 1 and request.get("replica_id", -1) == -1:
        unconfirmed = _unconfirmed(context, request)
        if unconfirmed:
            return _when_confirmed(context, header, request, unconfirmed)
    return _answer(context, header, request)


def _unconfirmed(context: RequestContext, request: ListOffsetsRequest) -> list[Any]:
    """The database partitions named whose producer state this broker has not confirmed since
    it became their leader (DatabasePartition.confirm): read_committed needs their LSO."""
    storage = context.storage
    found = []
    for topic in request["topics"]:
        if storage.is_database_topic(topic["name"]):
            for wanted in topic["partitions"]:
                try:
                    log = storage.partition(topic["name"], wanted["partition_index"])
                except KafkaError:
                    continue
                if not getattr(log, "producers_confirmed", True):
                    found.append(log)
    return found


async def _when_confirmed(context: RequestContext, header: RequestHeader, request: ListOffsetsRequest, logs: list[Any]) -> ListOffsetsResponse:
    """The answer once the partitions' producer states are confirmed; one that could not be is
    KAFKA_STORAGE_ERROR (retriable)."""
    await asyncio.gather(*(log.confirm() for log in logs), return_exceptions=True)
    answer = _answer(context, header, request)
    return await answer if asyncio.iscoroutine(answer) else answer


def _answer(
    context: RequestContext, header: RequestHeader, request: ListOffsetsRequest
) -> ListOffsetsResponse | Coroutine[Any, Any, ListOffsetsResponse]:
    version = header.api_version
    storage = context.storage
    # None: a replica's request, which no isolation level limits.
    read_committed = request.get("isolation_level", 0) == 1 if request.get("replica_id", -1) == -1 else None
    duplicates = _duplicates(request)
    cluster = context.services.cluster
    state: PartitionState | None = None
    # Each topic's answers, however many times the request names it (ReplicaManager.fetchOffset
    # files them by partition and groups them by topic): a topic named with no partition is not answered.
    answered: dict[str, list[ListOffsetsResponseListOffsetsPartitionResponse]] = {}
    # Unauthorized topics are answered as the request names them, each copy (KafkaApis.handleListOffsetRequest).
    refused: list[ListOffsetsResponseListOffsetsTopicResponse] = []
    # An engine whose lookups by time are coroutines: those partitions' lookups, awaited together.
    pending: list[_Pending] | None = [] if storage.is_async else None
    allowed = None if context.authorizer is None else context.authorized(AclOperation.DESCRIBE, ResourceType.TOPIC, (t["name"] for t in request["topics"]))
    for topic in request["topics"]:
        if allowed is not None and topic["name"] not in allowed:
            refused.append({"name": topic["name"], "partitions": [_failed(version, p["partition_index"], ErrorCode.TOPIC_AUTHORIZATION_FAILED) for p in topic["partitions"]]})
            continue
        partitions = answered.setdefault(topic["name"], [])
        for wanted in topic["partitions"]:
            if duplicates and (topic["name"], wanted["partition_index"]) in duplicates:
                if duplicates[(topic["name"], wanted["partition_index"])]:
                    duplicates[(topic["name"], wanted["partition_index"])] = False
                    partitions.append(_failed(version, wanted["partition_index"], ErrorCode.INVALID_REQUEST))
                continue
            entry: ListOffsetsResponseListOffsetsPartitionResponse = {"partition_index": wanted["partition_index"], "error_code": ErrorCode.NONE}
            try:
                if wanted["timestamp"] < 0 and _FIRST_VERSION.get(wanted["timestamp"], version + 1) > version:
                    raise KafkaError(ErrorCode.UNSUPPORTED_VERSION)
                if cluster is not None:
                    # ReplicaManager.fetchOffset: only a debugging request (replica_id -2) may ask a follower.
                    state = leader_partition(context, cluster, topic["name"], wanted["partition_index"], wanted.get("current_leader_epoch", -1),
                                             require_leader=request.get("replica_id", -1) != DEBUGGING_REPLICA_ID)
                log = storage.partition(topic["name"], wanted["partition_index"])
                if cluster is None:
                    # Partition.localLogWithEpochOrThrow, as OffsetForLeaderEpoch checks it here too.
                    check_current_leader_epoch(wanted.get("current_leader_epoch", -1), log.leader_epoch)
                if pending is not None and read_committed and not getattr(log, "producers_confirmed", True):
                    raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, "the partition's producer state could not be read from PostgreSQL")
                fetchable = _last_fetchable(log, read_committed, state)
                if pending is not None and (wanted["timestamp"] >= 0 or wanted["timestamp"] == MAX_TIMESTAMP) and storage.is_database_topic(topic["name"]):
                    pending.append((entry, log, wanted["timestamp"], state, fetchable))
                    partitions.append(entry)
                    continue
                timestamp, offset = _lookup(log, wanted["timestamp"], fetchable)
            except KafkaError as exc:
                entry["error_code"] = exc.code
                timestamp, offset = -1, -1
                found: list[int] = []
            else:
                found = [offset] if offset >= 0 else []
            if version == 0:
                entry["old_style_offsets"] = found
            else:
                epoch = (0 if state is None else state.epoch_for(offset)) if offset >= 0 else -1
                entry.update({"timestamp": timestamp, "offset": offset, "leader_epoch": epoch})
            partitions.append(entry)
    topics: list[ListOffsetsResponseListOffsetsTopicResponse] = [{"name": name, "partitions": found} for name, found in answered.items() if found]
    if pending:
        return _look_up_all(version, {"throttle_time_ms": 0, "topics": topics + refused}, pending)
    return {"throttle_time_ms": 0, "topics": topics + refused}


# An async engine's lookup still to do: its entry, partition, timestamp, cluster state, last fetchable offset.
_Pending = tuple["ListOffsetsResponseListOffsetsPartitionResponse", Any, int, "PartitionState | None", int]


def _duplicates(request: ListOffsetsRequest) -> dict[tuple[str, int], bool]:
    """Each partition the request names more than once, True until its one answer is made."""
    seen: set[tuple[str, int]] = set()
    duplicates: dict[tuple[str, int], bool] = {}
    for topic in request["topics"]:
        for wanted in topic["partitions"]:
            key = (topic["name"], wanted["partition_index"])
            if key in seen:
                duplicates[key] = True
            seen.add(key)
    return duplicates


async def _look_up_all(version: int, response: ListOffsetsResponse, pending: list[_Pending]) -> ListOffsetsResponse:
    """An async engine's lookups by time (the max timestamp too), all at once, each entry
    filled as `handle` fills it, up to the last fetchable offset taken when it was asked."""
    outcomes = await asyncio.gather(
        *(log.max_timestamp() if timestamp == MAX_TIMESTAMP else log.offset_for_timestamp(timestamp) for _, log, timestamp, _, _ in pending),
        return_exceptions=True,
    )
    for (entry, log, _, state, fetchable), outcome in zip(pending, outcomes):
        timestamp, offset = -1, -1
        if isinstance(outcome, KafkaError):
            entry["error_code"] = outcome.code
        elif isinstance(outcome, BaseException):
            raise outcome
        elif outcome is not None and outcome[1] < fetchable:
            timestamp, offset = outcome
        if version == 0:
            entry["old_style_offsets"] = [offset] if offset >= 0 else []
        else:
            epoch = (0 if state is None else state.epoch_for(offset)) if offset >= 0 else -1
            entry.update({"timestamp": timestamp, "offset": offset, "leader_epoch": epoch})
    return response


def _failed(version: int, partition: int, error: ErrorCode) -> ListOffsetsResponseListOffsetsPartitionResponse:
    """A partition answered with an error alone (KafkaApis.buildErrorResponse)."""
    if version == 0:
        return {"partition_index": partition, "error_code": error, "old_style_offsets": []}
    return {"partition_index": partition, "error_code": error, "timestamp": -1, "offset": -1, "leader_epoch": -1}


def _last_fetchable(log: Any, read_committed: bool | None, state: PartitionState | None) -> int:
    """Where answers stop: the log end for a replica (`read_committed` None), else the high
    watermark, a cluster's (held back by a crashed replica in the ISR) or the log's, and for
    read_committed the last stable offset if lower."""
    if read_committed is None:
        return log.log_end_offset
    high_watermark = log.high_watermark if state is None else state.high_watermark(log.log_end_offset)
    return min(log.last_stable_offset, high_watermark) if read_committed else high_watermark


def _lookup(log: Any, timestamp: int, fetchable: int) -> tuple[int, int]:
    """(timestamp, offset) as Kafka answers it; (-1, -1) when no record qualifies."""
    if timestamp == LATEST:
        return -1, fetchable
    if timestamp in (EARLIEST, EARLIEST_LOCAL):
        return -1, log.log_start_offset
    if timestamp in (LATEST_TIERED, EARLIEST_PENDING_UPLOAD):
        return -1, -1
    if timestamp == MAX_TIMESTAMP:
        found = log.max_timestamp()
    else:
        found = log.offset_for_timestamp(timestamp)
    return found if found is not None and found[1] < fetchable else (-1, -1)
