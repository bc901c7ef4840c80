"""ShareFetch (KIP-932): acknowledge what the request carries, then acquire records for the
member from each partition of its share session, parking until data arrives when none can
be acquired (woken by the same appends that wake Fetch, and by released records), or until
min_bytes of the log lie ahead of its share-partitions (`_short_of_min_bytes`), acquiring
nothing meanwhile, as Kafka's DelayedShareFetch acquires only once its minBytes check passes
or its max wait ends. The partitions it refuses (unknown topic id, past the topic's end) do
not end that wait; a fetch that may take nothing (max_bytes or max_records 0) answers at once
and makes no share-partition (`_fetches_nothing`).

Share sessions: epoch 0 opens one (replacing the member's previous session; what the member
holds stays acquired, as in Kafka 4.4; acknowledgements are refused on it), a later epoch
continues it, -1 closes it after its acknowledgements, fetching nothing, and releases what
the member still holds. A fetch parked on a session that ends (closed by either request,
replaced, or its member gone from the group) answers at once, empty: librdkafka's close
waits for a fetch in flight before it sends its final ShareAcknowledge. The log is read as
Fetch reads it, through `ShareCoordinator.acquire`; classic Fetch is untouched.

As KafkaApis.handleShareFetchRequest: a null group id is INVALID_REQUEST (an empty one is a
group like any other), then READ on the group (GROUP_AUTHORIZATION_FAILED), then the member id
(`member_id_valid`, INVALID_REQUEST), then the session; READ on each topic fetched or
acknowledged (TOPIC_AUTHORIZATION_FAILED per partition). From v2 a request with is_renew_ack
(KIP-1222) may carry RENEW acknowledgements (type 4, refused otherwise) and only acknowledges:
its max_bytes, min_bytes, max_records and max_wait_ms must be 0 (INVALID_REQUEST), and nothing
is acquired for it.
"""

from __future__ import annotations

import functools
import inspect
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ottla.server.cluster.routing import leader_partition
from ottla.server.context import Answer, DataWakeups, RequestContext
from ottla.server.handlers.share_acknowledge import acknowledge_all, leader, moved_to
from ottla.server.java_hashing import int_hash, mutable_map_order, response_map_order, topic_id_partition_hash, uuid_hash
from ottla.server.security.authorizer import AclOperation, ResourceType
from ottla.server.share import Acquired
from ottla.server.share.fetch_order import looked_at_last, rotated
from ottla.server.share.sessions import FINAL_EPOCH, INITIAL_EPOCH, ShareSession, member_id_valid
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from ottla.storage.log import ReadResult
    from ottla.wire.messages.types import ShareFetchRequest, ShareFetchResponse, ShareFetchResponsePartitionData

API = ApiKey.SHARE_FETCH
VERSIONS = (1, 2)

# ShareAcquireMode (v2, KIP-1206): 0 BATCH_OPTIMIZED, 1 RECORD_LIMIT.
_RECORD_LIMIT = 1
# The acknowledgement answer of a partition that acknowledged nothing.
_ACKNOWLEDGED: tuple[ErrorCode, str | None] = (ErrorCode.NONE, None)


def handle(context: RequestContext, header: RequestHeader, request: ShareFetchRequest) -> Answer[ShareFetchResponse]:
    share = context.services.share
    version = header.api_version
    group_id, member_id, epoch = request.get("group_id"), request.get("member_id"), request["share_session_epoch"]
    if group_id is None:
        return _error(ErrorCode.INVALID_REQUEST)
    if not context.authorize(AclOperation.READ, ResourceType.GROUP, group_id):
        return _error(ErrorCode.GROUP_AUTHORIZATION_FAILED)
    if not member_id_valid(member_id):
        return _error(ErrorCode.INVALID_REQUEST)
    # KIP-1222: a ShareFetch carrying RENEW acknowledgements only acknowledges; what it would
    # fetch with must be nothing (KafkaApis refuses it otherwise and never fetches for it).
    renewing = version >= 2 and request.get("is_renew_ack", False)
    if renewing and any(request.get(field, 0) for field in ("max_bytes", "min_bytes", "max_records", "max_wait_ms")):
        return _error(ErrorCode.INVALID_REQUEST)
    has_acks = any(p["acknowledgement_batches"] for t in request["topics"] for p in t["partitions"])
    node_id = context.node.node_id
    session: ShareSession | None = None
    # The group's first session here: what this broker holds of it may have been changed
    # through its coordinator meanwhile (an empty group's offsets altered or deleted).
    first_here = epoch == INITIAL_EPOCH and not any(key[:2] == (node_id, group_id) for key in share.sessions.sessions)
    if epoch == INITIAL_EPOCH:
        if has_acks:
            return _error(ErrorCode.INVALID_REQUEST)
        opened = share.sessions.open(node_id, group_id, member_id)
        if isinstance(opened, ErrorCode):
            return _error(opened)
        session = opened
    elif epoch != FINAL_EPOCH:
        advanced = share.sessions.advance(node_id, group_id, member_id, epoch)
        if isinstance(advanced, ErrorCode):
            return _error(advanced)
        session = advanced
    elif share.sessions.get(node_id, group_id, member_id) is None:
        # Kafka closes only a session it has: the acknowledgements of a closing fetch without one
        # are not applied.
        return _error(ErrorCode.SHARE_SESSION_NOT_FOUND)
    # As KafkaApis: a fetch carrying any acknowledgement has every partition it names acknowledged.
    ack_errors = acknowledge_all(context, group_id, member_id, request["topics"], renewing) if has_acks else {}
    if session is None:
        share.close_session(node_id, group_id, member_id)
        return _respond(context, group_id, {}, ack_errors)
    session.connection = context.client.address
    _update_partitions(session, request, opened=epoch == INITIAL_EPOCH)
    if renewing:
        return _respond(context, group_id, {}, ack_errors)
    seen_version = context.wakeups.data_version
    if context.storage.is_async:
        return _fetch_deferred(context, request, group_id, member_id, session, ack_errors, seen_version, first_here)
    if _fetches_nothing(context, request):
        return _answer_refusals(context, group_id, session, ack_errors)
    deadline = time.monotonic() + request["max_wait_ms"] / 1000
    if _waits(request) and _short_of_min_bytes(context, request, group_id, session):
        return _long_poll(context, request, group_id, member_id, session, ack_errors, _wait_keys(context, session), deadline, seen_version,
                          acquired_since_wake=False)
    acquired, keys, done = _acquire(context, request, group_id, member_id, session)
    if done or request["max_wait_ms"] <= 0 or not keys:
        return _answer(context, group_id, epoch, session, acquired, ack_errors)
    return _long_poll(context, request, group_id, member_id, session, ack_errors, keys, deadline, seen_version)


async def _fetch_deferred(context: RequestContext, request: ShareFetchRequest, group_id: str, member_id: str, session: ShareSession,
                          ack_errors: dict[tuple[bytes, int], tuple[ErrorCode, str | None]], seen_version: int, first_here: bool) -> ShareFetchResponse:
    """`handle` for an engine whose reads are coroutines. The group's first session on this
    broker reads the state log first, as does a fetch of a share-partition this broker leads and
    holds nothing of: among brokers over one database, its coordinator may have written it."""
    share = context.services.share
    reading = share.read_state_again() if first_here or share.holds_no_state(group_id, session.partitions) else None
    if reading is not None:
        held = share.idle_partitions(group_id)
        await reading
        share.take_written_elsewhere(held)
    if _fetches_nothing(context, request):
        return _answer_refusals(context, group_id, session, ack_errors)
    deadline = time.monotonic() + request["max_wait_ms"] / 1000
    if _waits(request) and await _short_of_min_bytes_deferred(context, request, group_id, session):
        return await _long_poll(context, request, group_id, member_id, session, ack_errors, _wait_keys(context, session), deadline,
                                seen_version, acquired_since_wake=False)
    acquired, keys, done = await _acquire_deferred(context, request, group_id, member_id, session)
    epoch = request["share_session_epoch"]
    if done or request["max_wait_ms"] <= 0 or not keys:
        return _answer(context, group_id, epoch, session, acquired, ack_errors)
    return await _long_poll(context, request, group_id, member_id, session, ack_errors, keys, deadline, seen_version)


async def _long_poll(context: RequestContext, request: ShareFetchRequest, group_id: str, member_id: str, session: ShareSession,
                     ack_errors: dict[tuple[bytes, int], tuple[ErrorCode, str | None]], keys: list[tuple[str, int]], deadline: float,
                     seen_version: int, acquired_since_wake: bool = True) -> ShareFetchResponse:
    """Park until records are acquired, the session ends (answered empty) or the deadline
    passes; a wake with less than min_bytes ahead acquires nothing, and a deadline reached
    without acquiring since the last wake acquires then what there is (Kafka's expiry
    completes the fetch with whatever it can acquire)."""
    sessions = context.services.share.sessions
    acquired: dict[tuple[bytes, int], Any] = {}
    while True:
        remaining = deadline - time.monotonic()
        # The session may have ended before this task first ran (a final ShareAcknowledge
        # taken from the same read as this fetch) or while it waited.
        if remaining <= 0 or sessions.get(session.node_id, group_id, member_id) is not session:
            break
        wake = functools.partial(_wake, context.wakeups, keys)
        session.on_end.append(wake)
        try:
            await context.wakeups.wait_for_data(keys, remaining, seen_version)
        finally:
            if wake in session.on_end:
                session.on_end.remove(wake)
        seen_version = context.wakeups.data_version
        if sessions.get(session.node_id, group_id, member_id) is not session:
            break
        if context.storage.is_async:
            if await _short_of_min_bytes_deferred(context, request, group_id, session):
                acquired_since_wake = False
                continue
            acquired, keys, done = await _acquire_deferred(context, request, group_id, member_id, session)
        else:
            if _short_of_min_bytes(context, request, group_id, session):
                acquired_since_wake = False
                continue
            acquired, keys, done = _acquire(context, request, group_id, member_id, session)
        acquired_since_wake = True
        if done:
            break
    if not acquired_since_wake and sessions.get(session.node_id, group_id, member_id) is session:
        if context.storage.is_async:
            acquired, keys, _ = await _acquire_deferred(context, request, group_id, member_id, session)
        else:
            acquired, keys, _ = _acquire(context, request, group_id, member_id, session)
    epoch = request["share_session_epoch"]
    return _answer(context, group_id, epoch, session, acquired, ack_errors)


def _waits(request: ShareFetchRequest) -> bool:
    """Whether the fetch may wait for min_bytes: one byte ahead is what anything acquirable
    needs anyway, so only a larger min_bytes (with a max wait) makes a difference."""
    return request["min_bytes"] > 1 and request["max_wait_ms"] > 0


def _wait_keys(context: RequestContext, session: ShareSession) -> list[tuple[str, int]]:
    return _partitions(context, session, INITIAL_EPOCH)[1]


def _ready_reads(context: RequestContext, request: ShareFetchRequest, group_id: str,
                 session: ShareSession) -> tuple[int, list[Awaitable[ReadResult]], int]:
    """DelayedShareFetch.isMinBytesSatisfied's count: for each readable partition whose
    share-partition is made, the log bytes from its next fetch offset up to the high watermark
    (the LSO for read_committed), at most its even share of max_bytes (the cap). The bytes
    counted at once, the reads of an engine whose reads are coroutines still to await, and
    the cap. No readable partition, or a read refused (the log moved under it), counts as
    min_bytes: Kafka answers such a fetch at once (its partitions' errors)."""
    share = context.services.share
    read_committed = share.read_committed(group_id)
    readable = _partitions(context, session, INITIAL_EPOCH)[2]
    if not readable:
        return request["min_bytes"], [], 0
    cap = max(1, _Left.of(context, request).bytes // len(readable))
    counted = 0
    pending: list[Awaitable[ReadResult]] = []
    for (topic_id, index), name in readable:
        partition = share.partitions.get((group_id, topic_id, index))
        if partition is None or partition.start_offset < 0:
            continue
        log_ = context.storage.partition(name, index)
        offset = max(partition.next_fetch_offset(), log_.log_start_offset)
        end = log_.last_stable_offset if read_committed else log_.high_watermark
        if offset >= end:
            continue
        try:
            result = log_.read(offset, cap, min_one=True, max_offset=end)
        except KafkaError:
            return request["min_bytes"], [], cap
        if inspect.isawaitable(result):
            pending.append(result)
        else:
            counted += min(result.size, cap)
    return counted, pending, cap


def _short_of_min_bytes(context: RequestContext, request: ShareFetchRequest, group_id: str, session: ShareSession) -> bool:
    counted, _, _ = _ready_reads(context, request, group_id, session)
    return counted < request["min_bytes"]


async def _short_of_min_bytes_deferred(context: RequestContext, request: ShareFetchRequest, group_id: str, session: ShareSession) -> bool:
    counted, pending, cap = _ready_reads(context, request, group_id, session)
    for read in pending:
        try:
            counted += min((await read).size, cap)
        except KafkaError:
            return False
    return counted < request["min_bytes"]


def _wake(wakeups: DataWakeups, keys: list[tuple[str, int]]) -> None:
    """Its session ended: a fetch parked on `keys` answers now, empty, rather than at its max
    wait (a client closing with a fetch in flight waits for that answer before it leaves)."""
    for topic, index in keys:
        wakeups.notify_data(topic, index)


def _fetches_nothing(context: RequestContext, request: ShareFetchRequest) -> bool:
    """SharePartitionManager.processShareFetch answers a fetch that may take no record
    (max_records 0) or no byte (max_bytes, capped by fetch.max.bytes, 0) at once, empty,
    before it looks up or makes any share-partition."""
    return request["max_records"] == 0 or min(request["max_bytes"], context.config.fetch_max_bytes) == 0


def _answer_refusals(context: RequestContext, group_id: str, session: ShareSession,
                     ack_errors: dict[tuple[bytes, int], tuple[ErrorCode, str | None]]) -> ShareFetchResponse:
    """The answer of a fetch that reads nothing (`_fetches_nothing`): KafkaApis' answer map
    holds only the partitions it refused, so only those are listed, and the partitions the
    session added stay unlisted (Kafka 4.4 answered so at epochs 0 and 1)."""
    refused = _partitions(context, session, INITIAL_EPOCH)[0]
    fetched = response_map_order(list(refused), functools.partial(_map_hash, context))
    return _respond(context, group_id, refused, ack_errors, fetched, fetched)


def _answers_now(acquired: dict[tuple[bytes, int], Any]) -> bool:
    """Whether acquisitions from the readable partitions answer the fetch now: one acquired
    records, failed, or archived an aborted transaction's records (`Acquired.archived`). The
    partitions refused before (`_partitions`) do not count: Kafka's DelayedShareFetch waits on
    the partitions it may read, its refusals answered with whatever ends the wait."""
    return any(isinstance(value, ErrorCode) or value.ranges or value.archived for value in acquired.values())


def _acquire(context: RequestContext, request: ShareFetchRequest, group_id: str, member_id: str,
             session: ShareSession) -> tuple[dict[tuple[bytes, int], Any], list[tuple[str, int]], bool]:
    """Acquire from every partition of the session: (topic id, partition) -> Acquired or an
    error (the refusals of `_partitions` included), the (topic, partition) keys a parked
    request waits on, and whether the acquisitions answer the fetch now (`_answers_now`)."""
    share = context.services.share
    read_committed = share.read_committed(group_id)
    left = _Left.of(context, request)
    refused, keys, readable = _partitions(context, session, request["share_session_epoch"])
    results: dict[tuple[bytes, int], Any] = {}
    # Kafka looks at no partition for a request that may fetch nothing (max_bytes 0).
    fetching = not left.spent()
    for (topic_id, index), name, moved in _acquisition_order(context, group_id, readable):
        if left.spent():
            if moved and fetching:
                share.look(group_id, topic_id, index, read_committed)
            continue
        try:
            got = share.acquire(group_id, member_id, name, topic_id, index, left.records, left.bytes, read_committed, left.whole_batches,
                                left.batch_size, looking=moved)
        except KafkaError as exc:
            results[(topic_id, index)] = exc.code
            continue
        assert isinstance(got, Acquired)
        results[(topic_id, index)] = left.took(got)
    return refused | results, keys, _answers_now(results)


async def _acquire_deferred(context: RequestContext, request: ShareFetchRequest, group_id: str, member_id: str,
                            session: ShareSession) -> tuple[dict[tuple[bytes, int], Any], list[tuple[str, int]], bool]:
    """`_acquire` for an engine whose reads are coroutines: each partition's read awaited in
    turn, since what one acquires is what the next may still take."""
    share = context.services.share
    read_committed = share.read_committed(group_id)
    left = _Left.of(context, request)
    refused, keys, readable = _partitions(context, session, request["share_session_epoch"])
    results: dict[tuple[bytes, int], Any] = {}
    # Kafka looks at no partition for a request that may fetch nothing (max_bytes 0).
    fetching = not left.spent()
    for (topic_id, index), name, moved in _acquisition_order(context, group_id, readable):
        if left.spent():
            if moved and fetching:
                share.look(group_id, topic_id, index, read_committed)
            continue
        try:
            got = share.acquire(group_id, member_id, name, topic_id, index, left.records, left.bytes, read_committed, left.whole_batches,
                                left.batch_size, looking=moved)
            if not isinstance(got, Acquired):
                got = await got
        except KafkaError as exc:
            results[(topic_id, index)] = exc.code
            continue
        results[(topic_id, index)] = left.took(got)
    return refused | results, keys, _answers_now(results)


@dataclass(slots=True)
class _Left:
    """What a ShareFetch may still acquire: records (max_records) and bytes (max_bytes), and
    how: whole batches or not (share_acquire_mode), in ranges of how many records (batch_size)."""

    records: int
    bytes: int
    whole_batches: bool
    batch_size: int

    @classmethod
    def of(cls, context: RequestContext, request: ShareFetchRequest) -> _Left:
        return cls(request["max_records"], min(request["max_bytes"], context.config.fetch_max_bytes),
                   request.get("share_acquire_mode", 0) != _RECORD_LIMIT, request["batch_size"])

    def spent(self) -> bool:
        return self.records <= 0 or self.bytes <= 0

    def took(self, got: Acquired) -> Acquired:
        self.records -= sum(r.last_offset - r.first_offset + 1 for r in got.ranges)
        self.bytes -= len(got.records)
        return got


def _partitions(context: RequestContext, session: ShareSession, epoch: int) -> tuple[
        dict[tuple[bytes, int], Any], list[tuple[str, int]], list[tuple[tuple[bytes, int], str]]]:
    """The session's partitions sorted out: the errors of those that cannot be read, the
    (topic, partition) keys a parked request waits on, and those to acquire from with their
    topic's name, rotated by the request's epoch (`fetch_order.rotated`, once those of unknown
    topics or not authorized are left out, as KafkaApis hands SharePartitionManager the rest).
    Among brokers, one this broker does not lead is NOT_LEADER_OR_FOLLOWER (its leader holds
    its share-partition), as Kafka's SharePartitionManager answers."""
    cluster = context.services.cluster
    errors: dict[tuple[bytes, int], Any] = {}
    keys: list[tuple[str, int]] = []
    readable: list[tuple[tuple[bytes, int], str]] = []
    named: list[tuple[tuple[bytes, int], str, int]] = []
    for topic_id, index in list(session.partitions):
        info = context.storage.topic_by_id(topic_id)
        if info is None:
            errors[(topic_id, index)] = ErrorCode.UNKNOWN_TOPIC_ID
        elif not context.authorize(AclOperation.READ, ResourceType.TOPIC, info.name):
            errors[(topic_id, index)] = ErrorCode.TOPIC_AUTHORIZATION_FAILED
        else:
            named.append(((topic_id, index), info.name, info.partitions))
    for (topic_id, index), name, partitions in rotated(named, epoch):
        if not 0 <= index < partitions:
            errors[(topic_id, index)] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            continue
        if cluster is not None:
            try:
                leader_partition(context, cluster, name, index)
            except KafkaError as exc:
                errors[(topic_id, index)] = exc.code
                continue
        keys.append((name, index))
        readable.append(((topic_id, index), name))
    return errors, keys, readable


def _acquisition_order(context: RequestContext, group_id: str, readable: list[tuple[tuple[bytes, int], str]]) -> list[
        tuple[tuple[bytes, int], str, bool]]:
    """`readable` in the order records are acquired from, each flagged when its next fetch
    offset moved since a fetch last looked at it (those come last: `fetch_order.looked_at_last`)."""
    share = context.services.share
    moved = {key for key, _ in readable if share.moved_since_looked(group_id, *key)}
    return [(key, name, key in moved) for key, name in looked_at_last(readable, lambda entry: entry[0] in moved)]


def _answer(context: RequestContext, group_id: str, epoch: int, session: ShareSession, acquired: dict[tuple[bytes, int], Any],
            ack_errors: dict[tuple[bytes, int], tuple[ErrorCode, str | None]]) -> ShareFetchResponse:
    """The answer to a fetch of `session`: its answer map (KafkaApis' partition map) holds every
    partition of the session, read or refused, so the entries come in that map's order."""
    fetched = response_map_order(list(session.partitions), functools.partial(_map_hash, context))
    _served(epoch, session, fetched, acquired)
    return _respond(context, group_id, acquired, ack_errors, _listed(epoch, session), fetched)


def _map_hash(context: RequestContext, key: tuple[bytes, int]) -> int:
    """The hash of a partition's key in Kafka's answer map (a TopicIdPartition: its topic's
    name is null when the topic id is unknown)."""
    info = context.storage.topic_by_id(key[0])
    return topic_id_partition_hash(key[0], None if info is None else info.name, key[1])


def _served(epoch: int, session: ShareSession, fetched: list[tuple[bytes, int]], acquired: dict[tuple[bytes, int], Any]) -> None:
    """Moves the partitions that got records to the end of the session, as Kafka's answer to a
    request after the first moves them (`fetch_order`), in the answer map's order (`fetched`)."""
    if epoch == INITIAL_EPOCH:
        return
    for key in fetched:
        got = acquired.get(key)
        if got is not None and not isinstance(got, ErrorCode) and got.ranges:
            del session.partitions[key]
            session.partitions[key] = None


def _update_partitions(session: ShareSession, request: ShareFetchRequest, opened: bool) -> None:
    """SharePartitionManager.newContext: a new session holds the partitions fetched, its
    forgotten_topics_data unread; a later request adds those fetched (each not yet in the
    session to be listed once, `ShareSession.unlisted`), then removes those forgotten."""
    for topic in request["topics"]:
        for partition in topic["partitions"]:
            key = (topic["topic_id"], partition["partition_index"])
            if not opened and key not in session.partitions:
                session.unlisted[key] = None
            session.partitions[key] = None
    if opened:
        return
    for forgotten in request["forgotten_topics_data"]:
        for index in forgotten["partitions"]:
            session.partitions.pop((forgotten["topic_id"], index), None)
            session.unlisted.pop((forgotten["topic_id"], index), None)


def _listed(epoch: int, session: ShareSession) -> list[tuple[bytes, int]]:
    """The partitions a fetch lists whatever it got: all of its session's if it opened the
    session (Kafka's ShareSessionContext answers a new session's fetch in full, as asked of
    Kafka 4.4), else those added since the last fetch answered (then no longer unlisted).
    Kafka lists only the partitions it read or refused: one whose share-partition it is still
    initialising (its first fetch anywhere) is left out until a fetch reads it; Ottla makes a
    share-partition at once, so it reads every partition of the session."""
    if epoch == INITIAL_EPOCH:
        return list(session.partitions)
    listed, session.unlisted = list(session.unlisted), {}
    return listed


def _respond(context: RequestContext, group_id: str, acquired: dict[tuple[bytes, int], Any],
             ack_errors: dict[tuple[bytes, int], tuple[ErrorCode, str | None]], listed: list[tuple[bytes, int]] | None = None,
             fetched: list[tuple[bytes, int]] | None = None) -> ShareFetchResponse:
    """Partitions with records, an error or an acknowledgement result, and those `listed`, as
    KafkaApis orders them: those of the fetch (`fetched`, its answer map's order) that got records
    or an error or are listed, each under its topic where that first comes; then each other
    partition acknowledged, at the end of its topic's, the topics answered nothing else after
    the rest (both in the order of the scala mutable maps KafkaApis gathers acknowledgements in)."""
    topics: dict[bytes, list[ShareFetchResponsePartitionData]] = {}
    endpoints: dict[int, Any] = {}
    always = set(listed or ())

    def answered(key: tuple[bytes, int]) -> bool:
        got = acquired.get(key)
        return isinstance(got, ErrorCode) or key in always or (got is not None and bool(got.ranges))

    shown = [key for key in fetched or () if answered(key)]
    acknowledged: dict[bytes, list[int]] = {}
    for topic_id, index in ack_errors:
        acknowledged.setdefault(topic_id, []).append(index)
    shown_topics = dict.fromkeys(topic_id for topic_id, _ in shown)
    ack_topics = [*(topic_id for topic_id in shown_topics if topic_id in acknowledged),
                  *(topic_id for topic_id in mutable_map_order(list(acknowledged), uuid_hash) if topic_id not in shown_topics)]
    acks_after = [(topic_id, index) for topic_id in ack_topics for index in mutable_map_order(acknowledged[topic_id], int_hash)]
    for key in dict.fromkeys([*shown, *acks_after]):
        got = acquired.get(key)
        ack_error, ack_message = ack_errors.get(key, _ACKNOWLEDGED)
        entry: ShareFetchResponsePartitionData = {
            "partition_index": key[1], "error_code": ErrorCode.NONE, "error_message": None,
            "acknowledge_error_code": ack_error, "acknowledge_error_message": ack_message,
            "current_leader": {**leader(context)}, "records": b"", "acquired_records": [],
        }
        if isinstance(got, ErrorCode):
            entry["error_code"] = got
            if got is ErrorCode.NOT_LEADER_FOR_PARTITION:
                entry["current_leader"] = moved_to(context, key[0], key[1], endpoints)
        elif got is not None:
            entry["records"] = got.records
            entry["acquired_records"] = [{"first_offset": r.first_offset, "last_offset": r.last_offset,
                                          "delivery_count": r.delivery_count} for r in got.ranges]
        topics.setdefault(key[0], []).append(entry)
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": None,
            "acquisition_lock_timeout_ms": context.services.share.lock_duration_ms(group_id),
            "responses": [{"topic_id": topic_id, "partitions": partitions} for topic_id, partitions in topics.items()],
            "node_endpoints": list(endpoints.values())}


def _error(code: ErrorCode) -> ShareFetchResponse:
    """A refusal of the whole request: it acquires nothing, so (as Kafka) it names no lock duration."""
    return {"throttle_time_ms": 0, "error_code": code, "error_message": None, "acquisition_lock_timeout_ms": 0,
            "responses": [], "node_endpoints": []}
