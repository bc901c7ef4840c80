"""TxnOffsetCommit: offsets written inside a transaction, visible to OffsetFetch only once
it commits (the group coordinator holds them pending; server/groups/coordinator.py).

The group's `__consumer_offsets` partition must be in the transaction: joined by
AddOffsetsToTxn before v5, joined by this request itself from v5, which transaction
version 2 clients send instead of AddOffsetsToTxn (KIP-890 part 2).

As KafkaApis.handleTxnOffsetCommitRequest: WRITE on the transactional id, then READ on the
group (else every partition carries TRANSACTIONAL_ID_ or GROUP_AUTHORIZATION_FAILED). Then
each topic is answered on its own before the transaction is looked at: without READ on it,
TOPIC_AUTHORIZATION_FAILED; a topic or partition that does not exist, UNKNOWN_TOPIC_OR_PARTITION.
Only the partitions left reach the coordinators, so a request naming none of them changes no
transaction. From v6 (KIP-1319) topics are named by id alone, as OffsetCommit v10 names
them: an id no topic has (the zero id too) is UNKNOWN_TOPIC_ID, before any authorization,
and the group coordinator answers GROUP_ID_NOT_FOUND and STALE_MEMBER_EPOCH where older
versions get ILLEGAL_GENERATION.
The answer is built as Kafka's response builder builds it: a topic refused whole is answered
even when it lists no partitions; when something was refused here, those topics come first (in
request order) and the coordinator's answers merge into them, each topic once; when nothing
was, the coordinator's answer stands as it gave it, one topic per request topic that reached it,
repeats included (TxnOffsetCommitResponse.Builder.merge). In a cluster
only the partitions that reach the group's coordinator carry its NOT_COORDINATOR (or
COORDINATOR_NOT_AVAILABLE, or COORDINATOR_LOAD_IN_PROGRESS) when another node coordinates the
group, as the group coordinator answers before it looks at the transaction; before that, on
every node, an empty group id is INVALID_GROUP_ID for them (GroupCoordinatorService checks it
before it routes the group).

Among brokers over one database the transaction's coordinator may be another broker than the
group's: it is asked over the network (an inter-broker AddPartitionsToTxn, as Kafka's group
coordinator asks through AddPartitionsToTxnManager), and what it cannot answer (it moved,
is loading, or is unreachable) is COORDINATOR_NOT_AVAILABLE, which the client retries."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from ottla.server.cluster.coordinators import GROUP, elsewhere, refusal
from ottla.server.context import RequestContext
from ottla.server.coordinator.topics import OFFSETS_TOPIC
from ottla.server.groups import CommitEntry
from ottla.server.security.authorizer import AclOperation, ResourceType
from ottla.server.txn.coordinator import verification_error
from ottla.server.txn.verification import ask_coordinator, remote_coordinator
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        TxnOffsetCommitRequest,
        TxnOffsetCommitResponse,
        TxnOffsetCommitResponseTxnOffsetCommitResponseTopic as _Topic,
    )

    # A partition that reaches the coordinators: its request topic's position and key, its index, its offset.
    _Valid = tuple[int, str | bytes, int, CommitEntry]

API = ApiKey.TXN_OFFSET_COMMIT
VERSIONS = (0, 6)

_BY_ID = 6  # the first version that names topics by id


def handle(
    context: RequestContext, header: RequestHeader, request: TxnOffsetCommitRequest
) -> TxnOffsetCommitResponse | Coroutine[Any, Any, TxnOffsetCommitResponse]:
    by_id = header.api_version >= _BY_ID
    group_id = request["group_id"]
    # What is refused here, each topic once, keyed as the request names it, in the order first answered.
    answered: dict[str | bytes, _Topic] = {}

    refusal = ErrorCode.NONE
    if not context.authorize(AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID, request["transactional_id"]):
        refusal = ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    elif not context.authorize(AclOperation.READ, ResourceType.GROUP, group_id):
        refusal = ErrorCode.GROUP_AUTHORIZATION_FAILED
    if refusal is not ErrorCode.NONE:
        # TxnOffsetCommitRequest.getErrorResponse: one answer per request topic, as it came.
        as_asked: dict[int, _Topic] = {}
        for position, topic in enumerate(request["topics"]):
            asked = _topic(as_asked, topic.get("topic_id", bytes(16)) if by_id else topic.get("name", ""), position)
            for partition in topic["partitions"]:
                _answer(asked, partition["partition_index"], refusal)
        return {"throttle_time_ms": 0, "topics": list(as_asked.values())}

    storage = context.storage
    valid: list[_Valid] = []
    for position, topic in enumerate(request["topics"]):
        key = topic.get("topic_id", bytes(16)) if by_id else topic.get("name", "")
        info = storage.topic_by_id(key) if isinstance(key, bytes) else storage.topic(key)
        if isinstance(key, bytes) and info is None:
            error = ErrorCode.UNKNOWN_TOPIC_ID
        elif not context.authorize(AclOperation.READ, ResourceType.TOPIC, info.name if info is not None else str(key)):
            error = ErrorCode.TOPIC_AUTHORIZATION_FAILED
        else:
            error = ErrorCode.NONE if info is not None else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        if error is not ErrorCode.NONE:
            # Refused whole, a topic is answered even with no partitions (the response builder's
            # addPartitions makes its entry first); a known one only through its partitions.
            _topic(answered, key)
        for partition in topic["partitions"]:
            index = partition["partition_index"]
            if error is not ErrorCode.NONE:
                _answer(_topic(answered, key), index, error)
            elif info is None or not 0 <= index < info.partitions:
                _answer(_topic(answered, key), index, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
            else:
                entry = CommitEntry(info.name, index, partition["committed_offset"], partition.get("committed_leader_epoch", -1),
                                    partition["committed_metadata"])
                valid.append((position, key, index, entry))
    unrouted = (ErrorCode.INVALID_GROUP_ID if not group_id else elsewhere(context, GROUP, group_id)) if valid else None
    if unrouted is not None:
        return _response(answered, valid, [unrouted] * len(valid))
    coordinator_node = None if not valid or context.services.cluster is None else remote_coordinator(context, request["transactional_id"])
    if coordinator_node is not None:
        return _commit_remotely(context, header.api_version, request, valid, coordinator_node, answered)
    errors = _commit(context, header.api_version, request, [entry for *_, entry in valid]) if valid else []
    return _response(answered, valid, errors)


def _topic(topics: dict[Any, _Topic], key: str | bytes, slot: Any = None) -> _Topic:
    """The answer's topic in `slot` (its key unless given), made on first use."""
    slot = key if slot is None else slot
    topic = topics.get(slot)
    if topic is None:
        topic = topics[slot] = {"topic_id": key, "partitions": []} if isinstance(key, bytes) else {"name": key, "partitions": []}
    return topic


def _answer(topic: _Topic, index: int, error: ErrorCode) -> None:
    topic["partitions"].append({"partition_index": index, "error_code": error})


def _response(answered: dict[str | bytes, _Topic], valid: list[_Valid], errors: list[ErrorCode]) -> TxnOffsetCommitResponse:
    """The coordinator's `errors` for the `valid` partitions, added to what was refused here as
    TxnOffsetCommitResponse.Builder.merge adds them: into those topics, by key, when there are
    any; else as the coordinator answers, a topic per request topic, repeats included."""
    if not answered:
        reached: dict[int, _Topic] = {}
        for (position, key, index, _), error in zip(valid, errors):
            _answer(_topic(reached, key, position), index, error)
        return {"throttle_time_ms": 0, "topics": list(reached.values())}
    for (_, key, index, _), error in zip(valid, errors):
        _answer(_topic(answered, key), index, error)
    return {"throttle_time_ms": 0, "topics": list(answered.values())}


async def _commit_remotely(
    context: RequestContext,
    version: int,
    request: TxnOffsetCommitRequest,
    valid: list[_Valid],
    coordinator_node: int,
    answered: dict[str | bytes, _Topic],
) -> TxnOffsetCommitResponse:
    """`_commit` with the transaction's coordinator on broker `coordinator_node`."""
    group_id = request["group_id"]
    offsets_partition = (OFFSETS_TOPIC, context.groups.offsets_partition(group_id))
    asked = await ask_coordinator(
        context, coordinator_node, request["transactional_id"], request["producer_id"], request["producer_epoch"], [offsets_partition], add=version >= 5
    )
    error = verification_error(asked[offsets_partition], abortable_known=version >= 4)
    if error in _COORDINATOR_UNAVAILABLE:
        error = ErrorCode.COORDINATOR_NOT_AVAILABLE
    cluster = context.services.cluster
    assert cluster is not None  # a remote transaction coordinator is a cluster's
    # The group's partition may have moved, or begun loading again, while the other broker
    # answered: this broker's copy of the group would then take offsets the record never gets.
    moved = refusal(context, cluster, GROUP, group_id)
    if error is ErrorCode.NONE and moved is not None:
        error = moved
    entries = [entry for *_, entry in valid]
    if error is ErrorCode.NONE:
        errors = context.groups.commit_transactional_offsets(
            group_id, request["producer_id"], request["producer_epoch"], request.get("generation_id", -1), request.get("member_id", ""),
            request.get("group_instance_id"), entries, api_version=version, share_group=_share_group(context),
        )
    else:
        errors = [error] * len(entries)
    return _response(answered, valid, errors)


# What the transaction's coordinator could not answer: the group coordinator's retriable
# COORDINATOR_NOT_AVAILABLE (GroupCoordinatorService maps a failed verification so).
_COORDINATOR_UNAVAILABLE = frozenset({ErrorCode.NETWORK_EXCEPTION, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, ErrorCode.NOT_COORDINATOR})


def _commit(context: RequestContext, version: int, request: TxnOffsetCommitRequest, entries: list[CommitEntry]) -> list[ErrorCode]:
    """Each entry's error: the transaction's refusal for all of them, else the group coordinator's."""
    error = _offsets_partition_check(context, request["producer_id"], request["producer_epoch"], request["group_id"])
    if error is None:
        error = context.txn.check_offsets_commit(
            request["transactional_id"], request["producer_id"], request["producer_epoch"], request["group_id"], version
        )
    if error in _COORDINATOR_UNAVAILABLE:
        error = ErrorCode.COORDINATOR_NOT_AVAILABLE
    if error is not ErrorCode.NONE:
        return [error] * len(entries)
    return context.groups.commit_transactional_offsets(
        request["group_id"],
        request["producer_id"],
        request["producer_epoch"],
        request.get("generation_id", -1),
        request.get("member_id", ""),
        request.get("group_instance_id"),
        entries,
        api_version=version,
        share_group=_share_group(context),
    )


def _offsets_partition_check(context: RequestContext, producer_id: int, producer_epoch: int, group_id: str) -> ErrorCode | None:
    """What the group's `__consumer_offsets` partition decides before the transaction's
    coordinator is asked (UnifiedLog.maybeStartTransactionVerification, keyed by producer id
    whatever transactional id is named): an epoch below the producer's there is
    INVALID_PRODUCER_EPOCH; a transaction of this producer at this epoch open there already
    needs no asking (NONE); else None, and the coordinator is asked (also when the partition
    is not made yet, or offline: it holds no producer then)."""
    try:
        log = context.storage.partition(OFFSETS_TOPIC, context.groups.offsets_partition(group_id))
    except KafkaError:
        return None
    known = log.producer_state.producers.get(producer_id)
    if known is not None and producer_epoch < known.epoch:
        return ErrorCode.INVALID_PRODUCER_EPOCH
    if log.producer_state.has_ongoing_transaction(producer_id, producer_epoch):
        return ErrorCode.NONE
    return None


def _share_group(context: RequestContext) -> Callable[[str], bool]:
    """Tells the group coordinator a share group's id, which takes no offsets."""
    return lambda group_id: group_id in context.services.share.groups
