"""Fetch sessions (KIP-227): the broker remembers what a consumer fetches, so that its later
requests name only what changed and its answers carry only the partitions with something new.

Follows Kafka's FetchManager, FetchContext, FetchSession and FetchSessionCacheShard
(org.apache.kafka.server). A request's (session id, epoch) picks its context:

* id 0, epoch -1 (FINAL), and every request before v7: sessionless, no session kept;
* epoch 0 (INITIAL): a full request; any session it names is closed, and a new one is created
  from the answer if the cache has room (or can evict for it); the answer carries its id, or 0;
* id N, epoch -1: a full request that closes session N and opens none;
* id N, epoch E > 0: incremental. N unknown -> FETCH_SESSION_ID_NOT_FOUND; E not the session's
  epoch -> INVALID_FETCH_SESSION_EPOCH; topic ids used one way and the request version the other
  -> FETCH_SESSION_TOPIC_ID_ERROR. Otherwise the request's partitions are added to or update the
  session, its forgotten ones leave it, the epoch advances, and every partition of the session is
  read; the answer leaves out a partition with no records whose high watermark, log start offset
  and error are as last sent. A session left empty is closed and the request read sessionless.

A consumer's fetch that its client quotas throttle (server/dispatch.py) leaves its session as it
was: Kafka weighs what the answer would send before the session learns it
(KafkaApis.handleFetchRequest), and answers a throttled client FetchContext.getThrottledResponse,
no partitions and, for an incremental request, the session's id; a full request opens no session.

The cache holds at most `max.incremental.fetch.session.cache.slots` sessions. When it is full a new
session may evict, in this order, the least recently used session if it is stale (unused for
two minutes), or else the least valuable evictable one if the newcomer is worth more: a
follower's (privileged) session outranks a consumer's, then more partitions outrank fewer, and a
consumer may only evict sessions created more than two minutes ago.
The slots are split as Kafka's BrokerServer splits them: 8 shards of slots // 8 each (1 to 7
slots hold no session at all). A full request's answer asks the next shard, round-robin over the
broker, for a session (FetchSession.FetchSessionCache.getNextCacheShard): a full shard evicts
among its own sessions or opens none, even while another shard has room. A shard's ids are its
eighth of the positive ints, so a session id names its shard.

A topic-id session (v13+) keeps each partition's topic name as it was when the partition joined
(KafkaApis resolves it then): a later fetch of a topic since deleted is UNKNOWN_TOPIC_OR_PARTITION,
and of another topic since created under that name INCONSISTENT_TOPIC_ID, not UNKNOWN_TOPIC_ID,
for the partitions that topic has (those it lacks are UNKNOWN_TOPIC_OR_PARTITION).
A name unknown when the partition joined is looked up again on each fetch until it is found
(CachedPartition.maybeResolveUnknownName).
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, Optional, Union

from ottla.wire.errors import ErrorCode
from ottla.wire.primitives import Spliced

if TYPE_CHECKING:
    from ottla.wire.messages.types import (
        FetchRequestFetchPartition,
        FetchRequestFetchTopic,
        FetchRequestForgottenTopic,
        FetchResponse,
        FetchResponseFetchableTopicResponse,
        FetchResponsePartitionData,
    )

INVALID_SESSION_ID = 0
INITIAL_EPOCH = 0
FINAL_EPOCH = -1
# KafkaBroker.MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS: how long a session is safe from eviction
# after it was last used (or, from consumers' sessions, after it was created).
EVICTION_MS = 120_000
_INT32_MAX = 2**31 - 1
# The first request version that names topics by id (KIP-516) and so keys sessions by it.
_TOPIC_ID_VERSION = 13
_SESSIONS_VERSION = 7
# KafkaBroker.NumFetchSessionCacheShards.
_SHARDS = 8

# A partition in a session: (topic id, or topic name before v13; partition index).
PartitionKey = tuple[Union[bytes, str], int]
# A topic id's name now, or None when no topic has that id.
TopicNames = Callable[[bytes], Optional[str]]


def next_epoch(epoch: int) -> int:
    """Kafka's FetchMetadata.nextEpoch: FINAL stays FINAL, and the epoch wraps to 1, not 0."""
    if epoch < 0:
        return FINAL_EPOCH
    return 1 if epoch == _INT32_MAX else epoch + 1


def records_size(records: bytes | memoryview | Spliced | None) -> int:
    if records is None:
        return 0
    return records.size if isinstance(records, Spliced) else len(records)


class CachedPartition:
    """One partition of a session: the request parameters last sent for it (fetch offset, max
    bytes, epochs), the answer's fields last sent back, so an unchanged partition is left out,
    and in a topic-id session its topic's name as resolved when it joined (None: not yet known)."""

    __slots__ = ("request", "high_watermark", "log_start_offset", "name")

    def __init__(self, request: FetchRequestFetchPartition, high_watermark: int = -1, log_start_offset: int = -1,
                 name: str | None = None) -> None:
        self.request = request
        self.high_watermark = high_watermark
        self.log_start_offset = log_start_offset
        self.name = name

    def must_respond(self, answer: FetchResponsePartitionData, update: bool = True) -> bool:
        """Kafka's CachedPartition.maybeUpdateResponseData: the answer goes out when it has
        records, a new high watermark or log start offset, a preferred read replica, a diverging
        epoch or an error; with `update` the partition keeps what is sent, and after an error
        its high watermark is -1, so the partition is sent again once the error clears."""
        respond = records_size(answer["records"]) > 0
        if self.high_watermark != answer["high_watermark"]:
            if update:
                self.high_watermark = answer["high_watermark"]
            respond = True
        log_start_offset = answer.get("log_start_offset", -1)
        if self.log_start_offset != log_start_offset:
            if update:
                self.log_start_offset = log_start_offset
            respond = True
        if answer.get("preferred_read_replica", -1) != -1 or "diverging_epoch" in answer:
            respond = True
        if answer["error_code"]:
            if update:
                self.high_watermark = -1
            respond = True
        return respond


class FetchSession:
    """A client's fetch session: its partitions in the order they are read (a partition that
    returned records moves to the end, so a byte-limited answer gives each its turn)."""

    __slots__ = ("id", "privileged", "uses_topic_ids", "partitions", "creation_ms", "last_used_ms", "epoch",
                 "cached_size", "evictable_by_all", "evictable_by_privileged")

    def __init__(self, session_id: int, privileged: bool, uses_topic_ids: bool,
                 partitions: dict[PartitionKey, CachedPartition], now_ms: int) -> None:
        self.id = session_id
        self.privileged = privileged
        self.uses_topic_ids = uses_topic_ids
        self.partitions = partitions
        self.creation_ms = now_ms
        self.last_used_ms = now_ms
        self.epoch = next_epoch(INITIAL_EPOCH)
        # As of the last touch: the size the cache counts, and which newcomers may evict it.
        self.cached_size = -1
        self.evictable_by_all = False
        self.evictable_by_privileged = False

    def evictable_key(self) -> tuple[bool, int, int]:
        """Kafka's EvictableKey order: consumers' before followers', then smaller, then by id."""
        return (self.privileged, self.cached_size, self.id)

    def update(self, topics: Iterable[FetchRequestFetchTopic], forgotten: Iterable[FetchRequestForgottenTopic],
               topic_names: TopicNames | None = None) -> None:
        """An incremental request's partitions join the session (in a topic-id session with their
        topic's name now) or replace what it had for them; its forgotten ones leave."""
        partitions = self.partitions
        for topic in topics:
            key = _topic_key(topic, self.uses_topic_ids)
            name = topic_names(key) if topic_names is not None and self.uses_topic_ids else None  # type: ignore[arg-type]
            for wanted in topic["partitions"]:
                cached = partitions.get((key, wanted["partition"]))
                if cached is None:
                    partitions[(key, wanted["partition"])] = CachedPartition(wanted, name=name)
                else:
                    cached.request = wanted
        for gone in forgotten:
            key = _topic_key(gone, self.uses_topic_ids)
            for index in gone["partitions"]:
                partitions.pop((key, index), None)

    def topics(self, topic_names: TopicNames | None = None) -> list[FetchRequestFetchTopic]:
        """The session's partitions as a request's topics, a topic's run of consecutive partitions
        in one entry (as Kafka's FetchResponse groups them). A topic-id session's entries also
        carry the name their partitions joined with ("topic"), for the handler to check against
        the topic of that name now; a name still unknown is looked up with `topic_names`."""
        uses_topic_ids = self.uses_topic_ids
        field = "topic_id" if uses_topic_ids else "topic"
        topics: list[FetchRequestFetchTopic] = []
        previous: Union[bytes, str, None] = None
        previous_name: str | None = None
        for (key, _), cached in self.partitions.items():
            name = cached.name
            if name is None and topic_names is not None:
                name = cached.name = topic_names(key)  # type: ignore[arg-type]
            if key != previous or name != previous_name or not topics:
                entry: FetchRequestFetchTopic = {field: key, "partitions": []}  # type: ignore[misc]
                if name is not None and uses_topic_ids:
                    entry["topic"] = name
                topics.append(entry)
                previous, previous_name = key, name
            topics[-1]["partitions"].append(cached.request)
        return topics


def _topic_key(topic: FetchRequestFetchTopic | FetchRequestForgottenTopic | FetchResponseFetchableTopicResponse,
               uses_topic_ids: bool) -> Union[bytes, str]:
    return topic["topic_id"] if uses_topic_ids else topic["topic"]


class _Shard:
    """One of Kafka's FetchSessionCacheShards: at most `max_entries` sessions, whose ids lie in
    [max(1, number * id_range), (number + 1) * id_range), kept in `last_used` in order of last
    use (the clock never goes back), so its first entry is the one a stale-session eviction
    looks at."""

    __slots__ = ("number", "max_entries", "last_used")

    def __init__(self, number: int, max_entries: int) -> None:
        self.number = number
        self.max_entries = max_entries
        self.last_used: OrderedDict[int, FetchSession] = OrderedDict()


class FetchSessionCache:
    """The broker's sessions, at most `max_entries` of them over `shards` shards of
    max_entries // shards each (Kafka's FetchSessionCache of FetchSessionCacheShards)."""

    def __init__(self, max_entries: int, eviction_ms: int = EVICTION_MS, rng: random.Random | None = None,
                 shards: int = 1) -> None:
        self.max_entries = max_entries
        self.eviction_ms = eviction_ms
        self._rng = rng or random.Random()
        self._sessions: dict[int, FetchSession] = {}
        self._id_range = _INT32_MAX // shards
        self._shards = [_Shard(number, max_entries // shards) for number in range(shards)]
        self._next_shard = 0
        self.total_partitions = 0
        self.evictions = 0
        self.incremental_fetches = 0

    @classmethod
    def for_slots(cls, slots: int) -> FetchSessionCache:
        """The broker's cache for `max.incremental.fetch.session.cache.slots`: Kafka's 8 shards of
        slots // 8 sessions each."""
        return cls(slots // _SHARDS * _SHARDS, shards=_SHARDS)

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, session_id: int) -> FetchSession | None:
        return self._sessions.get(session_id)

    def _shard(self, session: FetchSession) -> _Shard:
        return self._shards[session.id // self._id_range]

    def maybe_create_session(self, now_ms: int, privileged: bool, uses_topic_ids: bool,
                             partitions: dict[PartitionKey, CachedPartition]) -> int:
        """A new session's id in the next shard, or INVALID_SESSION_ID when that shard is full
        and nothing in it may go."""
        shard = self._shards[self._next_shard]
        self._next_shard = (self._next_shard + 1) % len(self._shards)
        if len(shard.last_used) >= shard.max_entries and not self._try_evict(shard, privileged, len(partitions), now_ms):
            return INVALID_SESSION_ID
        session = FetchSession(self._new_session_id(shard), privileged, uses_topic_ids, partitions, now_ms)
        self._sessions[session.id] = session
        self.touch(session, now_ms)
        return session.id

    def _new_session_id(self, shard: _Shard) -> int:
        low = max(1, shard.number * self._id_range)
        high = (shard.number + 1) * self._id_range - 1
        while True:
            session_id = self._rng.randint(low, high)
            if session_id not in self._sessions:
                return session_id

    def _try_evict(self, shard: _Shard, privileged: bool, size: int, now_ms: int) -> bool:
        """Kafka's tryEvict, within `shard`: a stale session first; else the least valuable
        evictable one, when the newcomer's key (privileged, size, id 0) is not below it."""
        if not shard.last_used:
            return False
        oldest = next(iter(shard.last_used.values()))
        if now_ms - oldest.last_used_ms > self.eviction_ms:
            self._evict(oldest)
            return True
        candidates = [s for s in shard.last_used.values() if (s.evictable_by_privileged if privileged else s.evictable_by_all)]
        if not candidates:
            return False
        weakest = min(candidates, key=FetchSession.evictable_key)
        if (privileged, size, 0) < weakest.evictable_key():
            return False
        self._evict(weakest)
        return True

    def _evict(self, session: FetchSession) -> None:
        self.remove(session.id)
        self.evictions += 1

    def remove(self, session_id: int) -> FetchSession | None:
        session = self._sessions.pop(session_id, None)
        if session is not None:
            del self._shard(session).last_used[session_id]
            self.total_partitions -= session.cached_size
        return session

    def touch(self, session: FetchSession, now_ms: int) -> None:
        """Mark `session` used now, and re-file its size and evictability as Kafka's touch does:
        a consumer's session becomes evictable by anyone two minutes after its creation, and by
        followers at once; a follower's only after two minutes."""
        session.last_used_ms = now_ms
        last_used = self._shard(session).last_used
        last_used[session.id] = session
        last_used.move_to_end(session.id)
        if session.cached_size != -1:
            self.total_partitions -= session.cached_size
        session.cached_size = len(session.partitions)
        self.total_partitions += session.cached_size
        old = now_ms - session.creation_ms > self.eviction_ms
        session.evictable_by_privileged = not session.privileged or old
        session.evictable_by_all = old

    def new_context(self, version: int, session_id: int, epoch: int, topics: list[FetchRequestFetchTopic],
                    forgotten: list[FetchRequestForgottenTopic], privileged: bool, now_ms: int,
                    topic_names: TopicNames | None = None) -> FetchContext | ErrorCode:
        """Kafka's FetchManager.newContext: how to read this request and shape its answer, or the
        session error to answer at once. `topic_names` names a topic-id session's partitions."""
        if version < _SESSIONS_VERSION or (session_id == INVALID_SESSION_ID and epoch == FINAL_EPOCH):
            return SESSIONLESS
        if epoch in (INITIAL_EPOCH, FINAL_EPOCH):
            if session_id != INVALID_SESSION_ID:
                self.remove(session_id)
            if epoch == FINAL_EPOCH:
                return SESSIONLESS
            return FullContext(self, topics, version >= _TOPIC_ID_VERSION, privileged, now_ms, topic_names)
        session = self._sessions.get(session_id)
        if session is None:
            return ErrorCode.FETCH_SESSION_ID_NOT_FOUND
        if session.epoch != epoch:
            return ErrorCode.INVALID_FETCH_SESSION_EPOCH
        if session.uses_topic_ids != (version >= _TOPIC_ID_VERSION):
            return ErrorCode.FETCH_SESSION_TOPIC_ID_ERROR
        session.update(topics, forgotten, topic_names)
        if not session.partitions:
            self.remove(session.id)
            return SESSIONLESS
        self.touch(session, now_ms)
        session.epoch = next_epoch(session.epoch)
        self.incremental_fetches += 1
        return IncrementalContext(session, next_epoch(epoch), topic_names)


class FetchContext:
    """How one request is read and answered: `topics(request)` are the partitions to read, in
    order, and `respond` turns the answer read from them into what the client is sent.

    As Kafka's FetchContext, the answer read becomes the session's only once the dispatcher has
    decided that it is sent (KafkaApis.handleFetchRequest weighs `getResponseSize` against the
    client's quotas first): `preview` is what `respond` would send, changing nothing, and
    `throttled` (getThrottledResponse) what is sent instead to a throttled client."""

    __slots__ = ()

    def topics(self, requested: list[FetchRequestFetchTopic]) -> list[FetchRequestFetchTopic]:
        return requested

    def answer(self, response: FetchResponse) -> FetchResponse | SessionFetch:
        """What the handler returns: a sessionless answer as it is, a session's to be settled."""
        return response

    def preview(self, response: FetchResponse) -> FetchResponse:
        return response

    def respond(self, response: FetchResponse) -> FetchResponse:
        return response

    def throttled(self, throttle_ms: int, response: Mapping[str, Any]) -> FetchResponse:
        """No partitions and no session (FetchContext.getThrottledResponse): a full request opens
        none; the read answer's node endpoints are kept."""
        return _throttled(throttle_ms, ErrorCode.NONE, INVALID_SESSION_ID, response)


def _throttled(throttle_ms: int, error: ErrorCode, session_id: int, response: Mapping[str, Any]) -> FetchResponse:
    answer: FetchResponse = {"throttle_time_ms": throttle_ms, "error_code": error, "session_id": session_id, "responses": []}
    if "node_endpoints" in response:
        answer["node_endpoints"] = response["node_endpoints"]
    return answer


class SessionFetch(NamedTuple):
    """A Fetch answer read for a session and not yet given to it: the dispatcher settles it, once
    it knows whether the client is throttled, with `context.respond` or `context.throttled`."""

    context: FetchContext
    response: FetchResponse


class FullContext(FetchContext):
    """A full request that may open a session: the answer's partitions become the session's."""

    __slots__ = ("cache", "requested", "uses_topic_ids", "privileged", "now_ms", "topic_names")

    def __init__(self, cache: FetchSessionCache, requested: list[FetchRequestFetchTopic], uses_topic_ids: bool,
                 privileged: bool, now_ms: int, topic_names: TopicNames | None = None) -> None:
        self.cache = cache
        self.requested = requested
        self.uses_topic_ids = uses_topic_ids
        self.privileged = privileged
        self.now_ms = now_ms
        self.topic_names = topic_names

    def answer(self, response: FetchResponse) -> FetchResponse | SessionFetch:
        return SessionFetch(self, response)

    def respond(self, response: FetchResponse) -> FetchResponse:
        """The session's partitions in the answer's order (FullFetchContext.createNewSession), each
        with the parameters the request gave it."""
        uses_topic_ids = self.uses_topic_ids
        requested = {(_topic_key(topic, uses_topic_ids), wanted["partition"]): wanted
                     for topic in self.requested for wanted in topic["partitions"]}
        partitions: dict[PartitionKey, CachedPartition] = {}
        topic_names = self.topic_names if uses_topic_ids else None
        for answered in response["responses"]:
            key = _topic_key(answered, uses_topic_ids)
            name = None if topic_names is None else topic_names(key)  # type: ignore[arg-type]
            for answer in answered["partitions"]:
                index = answer["partition_index"]
                partitions[(key, index)] = CachedPartition(
                    requested[(key, index)], answer["high_watermark"], answer.get("log_start_offset", -1), name)
        response["session_id"] = self.cache.maybe_create_session(self.now_ms, self.privileged, self.uses_topic_ids, partitions)
        return response


class IncrementalContext(FetchContext):
    """An incremental request: every partition of the session is read, the unchanged left out."""

    __slots__ = ("session", "expected_epoch", "topic_names")

    def __init__(self, session: FetchSession, expected_epoch: int, topic_names: TopicNames | None = None) -> None:
        self.session = session
        self.expected_epoch = expected_epoch
        self.topic_names = topic_names

    def topics(self, requested: list[FetchRequestFetchTopic]) -> list[FetchRequestFetchTopic]:
        return self.session.topics(self.topic_names)

    def answer(self, response: FetchResponse) -> FetchResponse | SessionFetch:
        return SessionFetch(self, response)

    def preview(self, response: FetchResponse) -> FetchResponse:
        """Kafka's IncrementalFetchContext.getResponseSize answer: the session unchanged."""
        return self._select(response, False)

    def respond(self, response: FetchResponse) -> FetchResponse:
        """Kafka's IncrementalFetchContext.updateAndGenerateResponseData: the session's partitions
        keep what is sent, and one sent records moves to the end."""
        return self._select(response, True)

    def throttled(self, throttle_ms: int, response: Mapping[str, Any]) -> FetchResponse:
        """The session's id and no partitions, the session's partitions unchanged, so the next
        request gets what this one read (IncrementalFetchContext.getThrottledResponse)."""
        session = self.session
        error = ErrorCode.NONE if session.epoch == self.expected_epoch else ErrorCode.INVALID_FETCH_SESSION_EPOCH
        return _throttled(throttle_ms, error, session.id, response)

    def _select(self, response: FetchResponse, update: bool) -> FetchResponse:
        """The partitions to send: those `CachedPartition.must_respond` keeps. Another request of
        the session may have advanced its epoch while this one was parked: that one wins. Kept
        partitions of one topic that end up next to each other share its entry, as
        FetchResponse.toMessage groups them."""
        session = self.session
        if session.epoch != self.expected_epoch:
            return {"throttle_time_ms": 0, "error_code": ErrorCode.INVALID_FETCH_SESSION_EPOCH, "session_id": session.id, "responses": []}
        partitions = session.partitions
        kept_topics: list[FetchResponseFetchableTopicResponse] = []
        previous: Union[bytes, str, None] = None
        for topic in response["responses"]:
            name = _topic_key(topic, session.uses_topic_ids)
            kept: list[FetchResponsePartitionData] = []
            for answer in topic["partitions"]:
                key = (name, answer["partition_index"])
                cached = partitions.get(key)
                if cached is not None and cached.must_respond(answer, update):
                    kept.append(answer)
                    if update and records_size(answer["records"]):
                        partitions[key] = partitions.pop(key)
            if not kept:
                continue
            if name == previous:
                kept_topics[-1]["partitions"].extend(kept)
            else:
                kept_topics.append({**topic, "partitions": kept})
                previous = name
        selected: FetchResponse = {**response, "responses": kept_topics, "session_id": session.id}
        return selected


# Sessionless requests share one context: it keeps no state.
SESSIONLESS = FetchContext()
