"""Produce: append each partition's batches to its log and answer with the base offset.

acks=0 gets no response at all (an error closes the connection once the requests before it
are answered, as Kafka closes it: the client's only sign); acks=1 and acks=-1 are the same on
a single node (the leader is the whole ISR), answered once the batch is in the log. In a cluster
(server/cluster/) only the partition's leader appends (else NOT_LEADER_OR_FOLLOWER, with the
current leader and its endpoint from v10, KIP-951), and acks=-1 needs an ISR of at least
min.insync.replicas (else NOT_ENOUGH_REPLICAS, before the append, as Partition.appendRecordsToLeader).
Replicas share the one log, so a running ISR member is caught up the moment it is one; only a
crashed node still in the ISR holds the high watermark back (server/cluster/state.py). An
acks=-1 append above the high watermark parks, as Kafka's DelayedProduce, until the high
watermark covers it (then NONE, or NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR shrank below
min.insync.replicas meanwhile; NOT_LEADER_OR_FOLLOWER if the leadership moved) or the
request's timeout_ms passes (REQUEST_TIMED_OUT, the base offset kept). A retried
idempotent batch is answered with the offsets it was first written at and no error,
as Kafka does; the log decides (storage/producer_state.py).

With an authorizer (KafkaApis.handleProduceRequest): a transactional produce needs WRITE on
its transactional id (else every partition is TRANSACTIONAL_ID_AUTHORIZATION_FAILED), and each
topic needs WRITE (else its partitions are TOPIC_AUTHORIZATION_FAILED). An idempotent produce
needs nothing more (KIP-679: IDEMPOTENT_WRITE on the cluster is no longer required).
"""

from __future__ import annotations

import asyncio
import functools
import struct
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from ottla.server.cluster.routing import leader_hint, leader_partition, min_insync_replicas
from ottla.server.cluster.state import ClusterState, PartitionState
from ottla.server.context import CloseWhenAnswered, RequestContext
from ottla.server.groups import INTERNAL_TOPICS
from ottla.server.security.authorizer import AclOperation, ResourceType
from ottla.server.java_hashing import chain_order, default_capacity, mutable_map_order, response_map_order, topic_id_partition_hash
from ottla.server.txn.verification import (
    ask_coordinator,
    raise_for_answer,
    remote_coordinator,
    start_verification,
    unverified_producer,
    verify_transactional_produce,
)
from ottla.storage import PartitionLog
from ottla.storage.validator import RecordValidationError
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.header import RequestHeader
from ottla.wire.records import BATCH_HEADER_SIZE, read_header
from ottla.wire.records.batch import TRANSACTIONAL_BIT

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        ProduceRequest,
        ProduceResponse,
        ProduceResponsePartitionProduceResponse,
        ProduceResponseTopicProduceResponse,
    )

API = ApiKey.PRODUCE
VERSIONS = (0, 13)


def handle(
    context: RequestContext, header: RequestHeader, request: ProduceRequest
) -> ProduceResponse | None | Coroutine[Any, Any, ProduceResponse | None]:
    try:
        transactional = any(_first_batch_is_transactional(partition["records"]) for topic in request["topic_data"] for partition in topic["partition_data"])
        if transactional:
            _check_transactional_id(context, request.get("transactional_id"))
        merged = _merged(request, header.api_version)
        if merged is None:
            return _produce(context, header, request, transactional)
        answer = _produce(context, header, merged[0], transactional)
    except _RequestRefused as exc:
        return _refuse_all(request, exc)
    overrides = merged[1]
    if not overrides:
        return answer
    if asyncio.iscoroutine(answer):
        return _overridden_later(answer, overrides, header.api_version)
    return _overridden(answer, overrides, header.api_version)


def _produce(
    context: RequestContext, header: RequestHeader, request: ProduceRequest, transactional: bool
) -> ProduceResponse | None | Coroutine[Any, Any, ProduceResponse | None]:
    """The request whose partitions are each named once (`_merged`)."""
    acks = request["acks"]
    storage = context.storage
    transactional_id = request.get("transactional_id")
    responses: list[ProduceResponseTopicProduceResponse] = []
    version = header.api_version
    authorizer = context.authorizer
    cluster = context.services.cluster
    # KIP-951's node_endpoints, made only when a cluster answers NOT_LEADER_OR_FOLLOWER.
    leader_endpoints: dict[int, Any] | None = None
    metrics = context.services.metrics
    # An engine whose appends are coroutines (PostgreSQL): the partitions to append to, all
    # awaited at once after this loop; None for the local engine, which appends inline.
    pending: list[tuple[ProduceResponsePartitionProduceResponse, Any, str, memoryview]] | None = [] if storage.is_async else None
    # A cluster's acks=-1 appends the high watermark does not cover yet, made only when there is one.
    unreplicated: list[_Unreplicated] | None = None
    # The broker coordinating the transactional id when it is another process (brokers over one
    # database), and the batches to ask it about before they are appended: None on the hot path.
    coordinator_node: int | None = None
    unverified: list[_Unverified] | None = None
    # Whether a batch's partition is verified with the coordinator, which changes the kind of
    # map Kafka answers from (see `_in_kafka_order`).
    asked_coordinator = False
    if transactional_id is not None and cluster is not None:
        coordinator_node = remote_coordinator(context, transactional_id)
    if transactional and len(_transactional_producers(context, request, version)) > 1:
        raise _MixedProducers("Transactional records contained more than one producer ID")
    invalid_acks = acks not in (-1, 0, 1)
    # ReplicaManager.handleProduceAppend verifies a partition's transactional records with the
    # coordinator (on its leader) before appendRecords judges acks, so other partitions' acks are
    # judged before leadership; a coordinator in another process is asked after this loop, so
    # there acks are judged first.
    acks_after_verification = transactional and coordinator_node is None
    # Each result's key in the KafkaApis map that answers it (see `_in_kafka_order`).
    kafka_keys: list[_KafkaKey] = []
    for topic in request["topic_data"]:
        topic_id = _NO_TOPIC_ID
        name: str | None
        if version >= 13:
            # KIP-516: v13 names each topic by its id; an id no topic has is UNKNOWN_TOPIC_ID.
            topic_id = topic["topic_id"]
            info = storage.topic_by_id(topic_id)
            name = None if info is None else info.name
        else:
            name = topic["name"]
            info = storage.topic(name)
        # Why every partition of this topic is refused, if it is: None on the hot path.
        topic_refusal = ErrorCode.UNKNOWN_TOPIC_ID if name is None else None
        if authorizer is not None and topic_refusal is None and not context.authorize(AclOperation.WRITE, ResourceType.TOPIC, name or ""):
            topic_refusal = ErrorCode.TOPIC_AUTHORIZATION_FAILED
        results: list[ProduceResponsePartitionProduceResponse] = []
        for partition in topic["partition_data"]:
            index = partition["index"]
            result: ProduceResponsePartitionProduceResponse = {"index": index, "error_code": ErrorCode.NONE, "base_offset": -1, "log_append_time_ms": -1, "log_start_offset": -1}
            records = partition["records"]
            appending_to: PartitionLog | None = None
            verifying = False
            validated = False
            try:
                if name is None:
                    raise KafkaError(ErrorCode.UNKNOWN_TOPIC_ID)
                if topic_refusal is not None:
                    raise KafkaError(topic_refusal)
                # Kafka's order: KafkaApis.handleProduceRequest refuses unknown partitions, then
                # malformed records; ReplicaManager.appendRecords then judges acks (after the
                # transaction's verification), and appendToLocalLog the topic and the partition's log.
                if info is None or not 0 <= index < info.partitions:
                    raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
                if records is None or not len(records):
                    raise KafkaError(ErrorCode.INVALID_RECORD)
                records = _check_batches_for_version(version, records)
                validated = True
                if invalid_acks and not (acks_after_verification and _first_batch_is_transactional(records)):
                    raise KafkaError(ErrorCode.INVALID_REQUIRED_ACKS)
                if name in INTERNAL_TOPICS:
                    # Clients may not write the coordinators' logs.
                    raise KafkaError(ErrorCode.INVALID_TOPIC)
                if cluster is not None:
                    replicated = _check_leader_and_isr(context, cluster, name, index, acks)
                log = storage.partition(name, index)
                if transactional_id is not None:
                    # KIP-890: the coordinator verifies (v12+: adds) the partition first.
                    if coordinator_node is None:
                        verifying = True
                        asked_coordinator = asked_coordinator or unverified_producer(log, records) is not None
                        verify_transactional_produce(context.txn, log, name, index, transactional_id, records, version)
                        verifying = False
                    elif (producer := unverified_producer(log, records)) is not None:
                        start_verification(log, records, producer, version, context.txn.wall_clock_ms())
                        unverified = [] if unverified is None else unverified
                        asked_coordinator = True
                        unverified.append((result, log, name, records, producer))
                        results.append(result)
                        kafka_keys.append((_APPENDED, name, _topic_id(topic_id, info), index, result))
                        continue
                if invalid_acks:
                    raise KafkaError(ErrorCode.INVALID_REQUIRED_ACKS)
                if pending is not None and storage.is_database_topic(name):
                    pending.append((result, log, name, records))
                    results.append(result)
                    kafka_keys.append((_APPENDED, name, _topic_id(topic_id, info), index, result))
                    continue
                appending_to = log
                appended = log.append(records)
            except KafkaError as exc:
                if metrics is not None and name is not None:
                    metrics.produce_failed(name)
                result["error_code"] = exc.code
                if verifying:
                    # LogAppendResult.errorMessage: Kafka words only the transaction verification's
                    # answers and record errors (below); any other refusal is its code alone.
                    result["error_message"] = exc.message
                if cluster is not None and exc.code == ErrorCode.NOT_LEADER_FOR_PARTITION and version >= 10:
                    leader_endpoints = {} if leader_endpoints is None else leader_endpoints
                    result["current_leader"] = leader_hint(context, cluster, name or "", index, leader_endpoints)  # type: ignore[typeddict-item]
                if appending_to is not None and exc.code not in _NO_APPEND_INFO:
                    result["log_start_offset"] = appending_to.log_start_offset
                if isinstance(exc, RecordValidationError):
                    _name_records(result, exc)
            else:
                result["base_offset"] = appended.base_offset
                result["log_append_time_ms"] = appended.log_append_time_ms
                result["log_start_offset"] = appended.log_start_offset
                context.wakeups.notify_data(name, index)
                if metrics is not None:
                    metrics.produced(name, len(records), appended.last_offset - appended.base_offset + 1)
                if cluster is not None and acks == -1 and replicated.high_watermark(log.log_end_offset) <= appended.last_offset:
                    unreplicated = [] if unreplicated is None else unreplicated
                    unreplicated.append((result, name, index, replicated, replicated.leader_epoch, appended.last_offset + 1))
            results.append(result)
            kafka_map = _APPENDED if validated else _REFUSED_BEFORE_APPEND.get(ErrorCode(result["error_code"]), _INVALID_RECORDS)
            kafka_keys.append((kafka_map, name or "", _topic_id(topic_id, info), index, result))
        responses.append({"name": name or "", "topic_id": topic_id, "partition_responses": results})
    if len(kafka_keys) > 1:
        responses[:] = _in_kafka_order(kafka_keys, version, asked_coordinator)
    if unverified:
        assert pending is not None and transactional_id is not None and coordinator_node is not None
        return _verify_and_append(context, acks, responses, pending, leader_endpoints, transactional_id, coordinator_node, unverified, version)
    if pending:
        return _append_all(context, acks, responses, pending, leader_endpoints)
    if unreplicated:
        return _await_replication(context, unreplicated, request["timeout_ms"], _response(acks, responses, leader_endpoints))
    return _response(acks, responses, leader_endpoints)


# The maps KafkaApis.handleProduceRequest answers a partition from, in the order it merges them:
# ReplicaManager's results for the partitions it appended to (or refused), then the partitions
# refused by topic authorization, as unknown (a topic, a partition, a v13 topic id) and for
# malformed records.
_APPENDED, _UNAUTHORIZED, _NON_EXISTING, _INVALID_RECORDS = range(4)
_REFUSED_BEFORE_APPEND = {
    ErrorCode.TOPIC_AUTHORIZATION_FAILED: _UNAUTHORIZED,
    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION: _NON_EXISTING,
    ErrorCode.UNKNOWN_TOPIC_ID: _NON_EXISTING,
}
# (its map, topic name, topic id, partition, its result): the TopicIdPartition keying the result.
_KafkaKey = tuple[int, str, bytes, int, "ProduceResponsePartitionProduceResponse"]


def _topic_id(requested: bytes, info: Any) -> bytes:
    """The id in Kafka's TopicIdPartition key: the request's (v13), else the named topic's, else zero."""
    return requested if requested != _NO_TOPIC_ID or info is None else info.topic_id


def _in_kafka_order(keys: list[_KafkaKey], version: int, asked_coordinator: bool) -> list[ProduceResponseTopicProduceResponse]:
    """The topics and partitions as Kafka 4.4 lists them: it merges its maps (`_APPENDED`...)
    with scala's immutable `++`, which keeps up to four entries in the order they came (each map
    iterating as a mutable HashMap: ReplicaManager's, made immutable, as `response_map_order`
    says) and orders more by hash (a CHAMP trie). When a partition was verified with the
    transaction coordinator, ReplicaManager's map is a mutable HashMap (the coordinator's
    errors, from a java map, `++` the appends), and so is every merge after it: all entries
    come by bucket (`mutable_map_order`). ProduceResponse then lists each topic where its
    first partition comes, its partitions in that order."""

    merged = _merged_order(tuple(key[:4] for key in keys), asked_coordinator)
    topics: dict[tuple[str, bytes], list[ProduceResponsePartitionProduceResponse]] = {}
    for _, name, topic_id, _, result in (keys[at] for at in merged):
        topics.setdefault((name, topic_id), []).append(result)
    return [{"name": name, "topic_id": topic_id if version >= 13 else _NO_TOPIC_ID, "partition_responses": results}
            for (name, topic_id), results in topics.items()]


@functools.lru_cache(maxsize=1024)
def _merged_order(keys: tuple[tuple[int, str, bytes, int], ...], mutable: bool) -> tuple[int, ...]:
    """The positions of `keys` (map, name, topic id, partition) in Kafka's merged map, a
    mutable HashMap if `mutable`; cached, as a producer sends the same partitions request
    after request."""

    def key_hash(at: int) -> int:
        _, name, topic_id, index = keys[at]
        return topic_id_partition_hash(topic_id, name, index)

    if mutable:
        return tuple(mutable_map_order(range(len(keys)), key_hash))
    if len(keys) > 4:
        return tuple(response_map_order(range(len(keys)), key_hash))
    return tuple(at for kafka_map in range(4) for at in response_map_order([at for at, key in enumerate(keys) if key[0] == kafka_map], key_hash))


def _response(acks: int, responses: list[ProduceResponseTopicProduceResponse], leader_endpoints: dict[int, Any] | None) -> ProduceResponse | None:
    """The answer; none for acks=0, whose client learns of an error only by the connection's
    close, once what it asked before is answered (KafkaApis.handleProduceRequest)."""
    if acks == 0:
        if any(p["error_code"] for topic in responses for p in topic["partition_responses"]):
            failed = [f"{topic['name']}-{p['index']} {ErrorCode(p['error_code']).name}" for topic in responses for p in topic["partition_responses"] if p["error_code"]]
            raise CloseWhenAnswered(f"after an acks=0 Produce failed: {', '.join(failed[:3])}{' and more' if len(failed) > 3 else ''}")
        return None
    response: ProduceResponse = {"responses": responses, "throttle_time_ms": 0}
    if leader_endpoints:
        response["node_endpoints"] = list(leader_endpoints.values())
    return response


async def _append_all(
    context: RequestContext,
    acks: int,
    responses: list[ProduceResponseTopicProduceResponse],
    pending: list[tuple[ProduceResponsePartitionProduceResponse, Any, str, memoryview]],
    leader_endpoints: dict[int, Any] | None,
) -> ProduceResponse | None:
    """An async engine's appends, every partition's at once; each result is filled in as the
    local engine's inline append fills it. An acks=0 request is answered with nothing, once its
    appends are done. A request received is carried out even if its client goes away before
    the answer (its connection cancels this task), as Kafka handles a request it has read."""
    return await asyncio.shield(_append_and_answer(context, acks, responses, pending, leader_endpoints))


async def _append_and_answer(
    context: RequestContext,
    acks: int,
    responses: list[ProduceResponseTopicProduceResponse],
    pending: list[tuple[ProduceResponsePartitionProduceResponse, Any, str, memoryview]],
    leader_endpoints: dict[int, Any] | None,
) -> ProduceResponse | None:
    outcomes = await asyncio.gather(*(log.append(records) for _, log, _, records in pending), return_exceptions=True)
    metrics = context.services.metrics
    for (result, log, name, records), outcome in zip(pending, outcomes):
        index = result["index"]
        if isinstance(outcome, KafkaError):
            if metrics is not None:
                metrics.produce_failed(name)
            result["error_code"] = outcome.code
            if isinstance(outcome, RecordValidationError):
                _name_records(result, outcome)
            if outcome.code not in _NO_APPEND_INFO:
                result["log_start_offset"] = log.log_start_offset
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            result["base_offset"] = outcome.base_offset
            result["log_append_time_ms"] = outcome.log_append_time_ms
            result["log_start_offset"] = outcome.log_start_offset
            context.wakeups.notify_data(name, index)
            if metrics is not None:
                metrics.produced(name, len(records), outcome.last_offset - outcome.base_offset + 1)
    return _response(acks, responses, leader_endpoints)


# A transactional batch whose partition another broker's coordinator must verify (or add) first:
# its result, log, topic, records, and the producer id and epoch the batch carries.
_Unverified = tuple["ProduceResponsePartitionProduceResponse", Any, str, memoryview, tuple[int, int]]


async def _verify_and_append(
    context: RequestContext,
    acks: int,
    responses: list[ProduceResponseTopicProduceResponse],
    pending: list[tuple[ProduceResponsePartitionProduceResponse, Any, str, memoryview]],
    leader_endpoints: dict[int, Any] | None,
    transactional_id: str,
    coordinator_node: int,
    unverified: list[_Unverified],
    version: int,
) -> ProduceResponse | None:
    """ReplicaManager.handleProduceAppend with the coordinator on another broker: one
    AddPartitionsToTxn for every batch to verify, then the batches it accepted are appended
    with the rest. A request whose batches carry different producers is refused, as Kafka
    refuses it (InvalidPidMappingException)."""
    producers = {producer for *_, producer in unverified}
    if len(producers) > 1:
        errors: dict[tuple[str, int], ErrorCode] = {(name, result["index"]): ErrorCode.INVALID_PRODUCER_ID_MAPPING for result, _, name, _, _ in unverified}
    else:
        (producer_id, producer_epoch), = producers
        partitions = [(name, result["index"]) for result, _, name, _, _ in unverified]
        errors = await asyncio.shield(ask_coordinator(
            context, coordinator_node, transactional_id, producer_id, producer_epoch, partitions, add=version >= _PRODUCE_ADDS_PARTITION
        ))
    for result, log, name, records, _ in unverified:
        try:
            raise_for_answer(errors[(name, result["index"])], version)
        except KafkaError as exc:
            result["error_code"] = exc.code
            result["error_message"] = exc.message
            if context.services.metrics is not None:
                context.services.metrics.produce_failed(name)
        else:
            pending.append((result, log, name, records))
    if pending:
        return await _append_all(context, acks, responses, pending, leader_endpoints)
    return _response(acks, responses, leader_endpoints)


# An acks=-1 append waiting for the high watermark: its result, topic, partition, the
# partition's state and leader epoch then, and the offset the high watermark must reach.
_Unreplicated = tuple["ProduceResponsePartitionProduceResponse", str, int, PartitionState, int, int]


async def _await_replication(context: RequestContext, waiting: list[_Unreplicated], timeout_ms: int, response: ProduceResponse | None) -> ProduceResponse | None:
    """Kafka's DelayedProduce: park until every partition's high watermark covers its append
    (woken by what moves one: the fence of a crashed replica, its restart, a new leader) or
    `timeout_ms` passes. Each partition is settled as Partition.checkEnoughReplicasReachOffset
    settles it."""
    wakeups = context.wakeups
    keys = [(name, index) for _, name, index, _, _, _ in waiting]
    deadline = time.monotonic() + timeout_ms / 1000
    seen_version = wakeups.data_version
    waiting = [entry for entry in waiting if not _settled(context, *entry)]
    while waiting:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        await wakeups.wait_for_data(keys, remaining, seen_version)
        if time.monotonic() >= deadline:
            break  # expired: as DelayedProduce.onExpiration, without looking again
        seen_version = wakeups.data_version
        waiting = [entry for entry in waiting if not _settled(context, *entry)]
    for result, *_ in waiting:
        result["error_code"] = ErrorCode.REQUEST_TIMED_OUT
    return response


def _settled(
    context: RequestContext, result: ProduceResponsePartitionProduceResponse, name: str, index: int, state: PartitionState,
    leader_epoch: int, required_offset: int,
) -> bool:
    """Whether a parked append is answered now, with its error set if it has one."""
    info = context.storage.topic(name)
    if info is None or state.leader_epoch != leader_epoch:
        # Deleted, or its leadership moved (Kafka: no longer the leader) meanwhile.
        result["error_code"] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION if info is None else ErrorCode.NOT_LEADER_FOR_PARTITION
    elif state.high_watermark(context.storage.partition(name, index).log_end_offset) < required_offset:
        return False
    elif len(state.isr) < min_insync_replicas(context, info):
        result["error_code"] = ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND
    return True


def _check_leader_and_isr(context: RequestContext, cluster: ClusterState, name: str, index: int, acks: int) -> PartitionState:
    """The partition's state, when this node leads it and (acks=-1) its ISR is large enough."""
    state = leader_partition(context, cluster, name, index)
    if acks == -1:
        info = context.storage.topic(name)
        required = 1 if info is None else min_insync_replicas(context, info)
        if len(state.isr) < required:
            raise KafkaError(ErrorCode.NOT_ENOUGH_REPLICAS)
    return state


def _name_records(result: ProduceResponsePartitionProduceResponse, refusal: RecordValidationError) -> None:
    """KIP-467: the records at fault by index, so the client fails only those, and Kafka's
    summary of them (the only refusal by the log it words)."""
    result["error_message"] = refusal.message
    result["record_errors"] = [{"batch_index": e.batch_index, "batch_index_error_message": e.message} for e in refusal.record_errors]


_PRODUCE_ADDS_PARTITION = 12  # Produce v12+ adds its partition to the transaction (KIP-890 part 2)
_NO_TOPIC_ID = bytes(16)  # Uuid.ZERO_UUID: versions before 13 name topics instead
# ReplicaManager.appendToLocalLog: a batch the log refuses is answered with the log start
# offset, except for these refusals (LogAppendInfo.UNKNOWN_LOG_APPEND_INFO).
_NO_APPEND_INFO = frozenset(
    {ErrorCode.CORRUPT_MESSAGE, ErrorCode.MESSAGE_SIZE_TOO_LARGE, ErrorCode.RECORD_LIST_TOO_LARGE, ErrorCode.KAFKA_STORAGE_ERROR}
)
_MAGIC_AT = 16
_ATTRIBUTES_AT = 21
_CODEC_AT = 22  # low byte of the int16 attributes
_ZSTD = 4
# LegacyRecord.RECORD_OVERHEAD_V0: no batch of any magic is shorter.
_SMALLEST_RECORD = 14
# A batch's length (bytes 8-11), magic (16) and the low byte of its attributes (22), in one read.
_BATCH_PREFIX = struct.Struct(">8xi4xB5xB")


# Answers made before a partition's records are read (KafkaApis.handleProduceRequest's topic
# and partition checks): every copy of a partition named twice gets the same one.
_BEFORE_RECORDS = frozenset({ErrorCode.TOPIC_AUTHORIZATION_FAILED, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.UNKNOWN_TOPIC_ID})


def _merged(request: ProduceRequest, version: int) -> tuple[ProduceRequest, dict[tuple[Any, int], ErrorCode]] | None:
    """The request as KafkaApis.handleProduceRequest reads it, or None when it already is:
    its partitions go into maps keyed by topic and partition, so a topic named with no
    partitions has no answer, a topic named twice one entry, a partition named twice one
    answer, and of its copies the last whose records pass ProduceRequest.validateRecords is
    appended (null records pass it: a null copy named before a batch is replaced by it). When
    another copy failed that check, the answer is that copy's error, though the valid copy was
    appended (the error map is merged over the appends'): returned by
    partition, for `_overridden`."""
    field = "topic_id" if version >= 13 else "name"
    topics = request["topic_data"]
    keys = [topic[field] for topic in topics]  # type: ignore[literal-required]
    if len(set(keys)) == len(keys) and all(_each_once(topic["partition_data"]) for topic in topics):
        return None
    copies: dict[Any, dict[int, list[Any]]] = {}
    first_of_topic: dict[Any, Any] = {}
    for topic in topics:
        key = topic[field]  # type: ignore[literal-required]
        first_of_topic.setdefault(key, topic)
        by_index = copies.setdefault(key, {})
        for partition in topic["partition_data"]:
            by_index.setdefault(partition["index"], []).append(partition)
    overrides: dict[tuple[Any, int], ErrorCode] = {}
    merged_topics: list[Any] = []
    for key, by_index in copies.items():
        if not by_index:
            continue
        partitions = []
        for index, named_copies in by_index.items():
            refusals = [_records_refusal(version, copy["records"]) for copy in named_copies]
            valid = [copy for copy, refusal in zip(named_copies, refusals) if refusal is None]
            refused = [refusal for refusal in refusals if refusal is not None]
            partitions.append(valid[-1] if valid else named_copies[-1])
            if valid and refused:
                overrides[(key, index)] = refused[-1]
        merged_topics.append({**first_of_topic[key], "partition_data": partitions})
    return {**request, "topic_data": merged_topics}, overrides


def _each_once(partitions: list[Any]) -> bool:
    """Whether a topic's entry names at least one partition and none twice."""
    count = len(partitions)
    return count == 1 or (count > 1 and len({partition["index"] for partition in partitions}) == count)


def _records_refusal(version: int, records: memoryview | None) -> ErrorCode | None:
    """ProduceRequest.validateRecords' answer to one partition's records, None if they pass:
    null records pass (they are no `Records`); Kafka fails later on them, Ottla answers
    INVALID_RECORD then (`_produce`)."""
    if records is None:
        return None
    if not len(records):
        return ErrorCode.INVALID_RECORD
    try:
        _check_batches_for_version(version, records)
    except KafkaError as exc:
        return ErrorCode(exc.code)
    return None


def _overridden(answer: ProduceResponse | None, overrides: dict[tuple[Any, int], ErrorCode], version: int) -> ProduceResponse:
    """The answer with each partition of `overrides` answered its refused copy's error, unless
    it was refused before its records were read; acks=0 has none, so its connection closes."""
    if answer is None:
        raise CloseWhenAnswered("after an acks=0 Produce failed: a partition named twice had refused records")
    field = "topic_id" if version >= 13 else "name"
    for topic in answer["responses"]:
        for partition in topic["partition_responses"]:
            error = overrides.get((topic[field], partition["index"]))  # type: ignore[literal-required]
            if error is not None and partition["error_code"] not in _BEFORE_RECORDS:
                partition.update({"error_code": error, "base_offset": -1, "log_append_time_ms": -1, "log_start_offset": -1,
                                  "record_errors": [], "error_message": None})
    return answer


async def _overridden_later(answer: Coroutine[Any, Any, ProduceResponse | None], overrides: dict[tuple[Any, int], ErrorCode], version: int) -> ProduceResponse:
    return _overridden(await answer, overrides, version)


class _RequestRefused(Exception):
    """A refusal of the whole request, answered by ProduceRequest.getErrorResponse (`_refuse_all`)."""

    error: ErrorCode


class _CorruptFirstBatch(_RequestRefused):
    """A partition's first batch header has a size or magic no batch can have: Kafka's
    ByteBufferLogInputStream throws while KafkaApis asks whether the request is
    transactional, and the whole request fails CORRUPT_MESSAGE with its words."""

    error = ErrorCode.CORRUPT_MESSAGE


def _first_batch_is_transactional(records: memoryview | None) -> bool:
    """RequestUtils.hasTransactionalRecords for one partition: whether its first whole batch
    (the only one it reads) is a transactional batch of magic 2. A header too short to judge,
    or a partial batch, is none; a size below any batch's or a magic outside 0-2 raises
    `_CorruptFirstBatch`, checked in ByteBufferLogInputStream.nextBatchSize's order."""
    if records is None:
        return False
    available = len(records)
    if available < 12:
        return False
    length = int.from_bytes(records[8:12], "big", signed=True)
    if length < _SMALLEST_RECORD:
        raise _CorruptFirstBatch(f"Record size {length} is less than the minimum record overhead ({_SMALLEST_RECORD})")
    if available <= _MAGIC_AT:
        return False
    magic = records[_MAGIC_AT]
    if magic > 2:
        raise _CorruptFirstBatch(f"Invalid magic found in record: {magic - 256 if magic > 127 else magic}")
    if 12 + length > available:
        return False
    return magic == 2 and bool(records[_ATTRIBUTES_AT + 1] & TRANSACTIONAL_BIT)


class _MixedProducers(_RequestRefused):
    """Transactional batches of more than one (producer id, epoch) in one request:
    ReplicaManager.handleProduceAppend throws InvalidPidMappingException, and the whole request
    fails INVALID_PRODUCER_ID_MAPPING with its words."""

    error = ErrorCode.INVALID_PRODUCER_ID_MAPPING


class _TransactionalIdRefused(_RequestRefused):
    """Transactional records with no transactional id, or one the principal may not write:
    KafkaApis.handleProduceRequest answers TRANSACTIONAL_ID_AUTHORIZATION_FAILED for the whole
    request, with no words (the exception's default message)."""

    error = ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED


def _check_transactional_id(context: RequestContext, transactional_id: str | None) -> None:
    """Raise `_TransactionalIdRefused` unless transactional records may be written under
    `transactional_id` (no coordinator would verify them, nor ever end the transaction they
    open). An id sent with no transactional records is not checked."""
    if transactional_id is None or (
        context.authorizer is not None and not context.authorize(AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID, transactional_id)
    ):
        raise _TransactionalIdRefused()


def _transactional_producers(context: RequestContext, request: ProduceRequest, version: int) -> set[tuple[int, int]]:
    """The (producer id, epoch) of each transactional batch that reaches
    ReplicaManager.handleProduceAppend: in a partition that exists, of a topic that may be
    written, whose records pass ProduceRequest.validateRecords (v3+: one batch of magic 2)."""
    producers: set[tuple[int, int]] = set()
    if version < 3:
        return producers
    storage = context.storage
    for topic in request["topic_data"]:
        info = storage.topic_by_id(topic["topic_id"]) if version >= 13 else storage.topic(topic["name"])
        if info is None or (context.authorizer is not None and not context.authorize(AclOperation.WRITE, ResourceType.TOPIC, info.name)):
            continue
        for partition in topic["partition_data"]:
            records = partition["records"]
            if not 0 <= partition["index"] < info.partitions:
                continue
            try:
                batch = _check_batches_for_version(version, records) if records is not None else None
            except KafkaError:
                continue
            if batch is not None and len(batch) >= BATCH_HEADER_SIZE:
                header = read_header(batch)
                if header.is_transactional:
                    producers.add((header.producer_id, header.producer_epoch))
    return producers


def _refuse_all(request: ProduceRequest, refusal: _RequestRefused) -> ProduceResponse | None:
    """ProduceRequest.getErrorResponse: every partition named fails with the refusal's error
    and words (v8+ carries them), once, in the order of its partitionSizes, a java.util.HashMap
    keyed by each partition's TopicIdPartition as the request names it (v13: the id and no
    name; else the name and no id), filled by compute, which links a new key at the head of its
    bucket and grows the table only when it finds it past 3/4 full already (13 keys stay in 16
    buckets). A topic's entry comes where its first partition does. An acks=0 request is not answered: its connection closes."""
    message = str(refusal) or None
    keys: dict[tuple[str, bytes, int], None] = {}
    for topic in request["topic_data"]:
        name = topic.get("name") or ""
        topic_id = topic.get("topic_id", _NO_TOPIC_ID)
        for partition in topic["partition_data"]:
            keys[(name, topic_id, partition["index"])] = None
    capacity = default_capacity(len(keys) - 1)
    ordered = chain_order([(key, True) for key in keys], lambda key: topic_id_partition_hash(key[1], key[0], key[2]), capacity)
    topics: dict[tuple[str, bytes], list[ProduceResponsePartitionProduceResponse]] = {}
    for name, topic_id, index in ordered:
        topics.setdefault((name, topic_id), []).append(
            {"index": index, "error_code": refusal.error, "error_message": message, "base_offset": -1, "log_append_time_ms": -1, "log_start_offset": -1})
    responses: list[ProduceResponseTopicProduceResponse] = [
        {"name": name, "topic_id": topic_id, "partition_responses": results} for (name, topic_id), results in topics.items()]
    return _response(request["acks"], responses, None)


def _check_batches_for_version(version: int, records: memoryview) -> memoryview:
    """The records to append: Kafka's ProduceRequest.validateRecords, reading batches as its
    ByteBufferLogInputStream does. From v3 a partition carries exactly one whole batch of
    magic 2, and zstd (KIP-110) needs v7. The first batch's size and magic were judged with
    the whole request (`_first_batch_is_transactional`); one no batch can have in the bytes
    after it is CORRUPT_MESSAGE; bytes that hold no whole batch, or a second whole batch,
    are INVALID_RECORD. Bytes after the batch that hold no whole batch are
    dropped, as UnifiedLog.trimInvalidBytes drops them: the batch alone is appended and
    acknowledged."""
    if version < 3:
        return records
    available = len(records)
    if available >= _BATCH_PREFIX.size:
        # What every stock client sends: one whole batch of magic 2, answered with one read.
        length, magic, codec = _BATCH_PREFIX.unpack_from(records)
        if magic == 2 and length >= _SMALLEST_RECORD and 12 + length == available:
            if version < 7 and codec & 0x07 == _ZSTD:
                raise KafkaError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE)
            return records
    if available <= _MAGIC_AT or 12 + int.from_bytes(records[8:12], "big", signed=True) > available:
        raise KafkaError(ErrorCode.INVALID_RECORD)
    if records[_MAGIC_AT] != 2:
        raise KafkaError(ErrorCode.INVALID_RECORD)
    if version < 7 and records[_CODEC_AT] & 0x07 == _ZSTD:
        raise KafkaError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE)
    end = 12 + int.from_bytes(records[8:12], "big", signed=True)
    if available - end >= 12:
        following = int.from_bytes(records[end + 8 : end + 12], "big", signed=True)
        if following < _SMALLEST_RECORD or (available - end > _MAGIC_AT and records[end + _MAGIC_AT] > 2):
            raise KafkaError(ErrorCode.CORRUPT_MESSAGE)
        if end + 12 + following <= available:
            raise KafkaError(ErrorCode.INVALID_RECORD)
    return records[:end]
