"""Faults on demand: requests answered with an error, late, throttled, or with their connection
dropped, when a test says so (franz-go's kfake `AddFault`, for clients in any language).

A `Fault` matches requests by API, topic, partition, node, client id (each optional) and fires
on every `every`-th match, `count` times or until removed. Firing, it does one of:

- `error`: the request does not take effect; it is answered with that error code, put where
  its API puts errors (per partition for Produce, Fetch, ListOffsets, OffsetCommit...; per
  key for FindCoordinator and OffsetFetch's batched forms; at the top level for the rest);
- `drop="before"`: the connection closes before the request takes effect;
- `drop="after"`: the request takes effect, then the connection closes unanswered;
- `throttle_ms`: the request is answered with that throttle_time_ms and its connection muted
  that long (KIP-219), as a quota would;
- none of these: the request is only delayed by `delay_ms`, which also delays any of them.

`Faults` is one broker's registry (`Broker.faults`); the dispatcher asks it about a request
only while it holds a fault, so a broker without faults pays one attribute check per request.
Faults may be added and removed from any thread: the rules are an immutable tuple replaced
whole, and counted on the event loop only.
"""

from __future__ import annotations

import enum
import itertools
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ottla.wire import messages
from ottla.wire.api import ApiKey, message_name
from ottla.wire.errors import ErrorCode
from ottla.wire.protocol import response_struct

if TYPE_CHECKING:
    from ottla.server.context import RequestContext
    from ottla.wire.header import RequestHeader


class FaultError(ValueError):
    """A fault that cannot be set as asked (an unknown API or error, an error with no place)."""


class Drop(enum.Enum):
    """When a dropped connection closes: before its request takes effect, or after."""

    BEFORE = "before"
    AFTER = "after"


class Armed(Protocol):
    """What faults are armed on: a dispatcher, which asks `faults` about each request while set."""

    faults: Faults | None


@dataclass(slots=True, frozen=True)
class _Layout:
    """Where an API's request lists topics (or keys) and their partitions, and where its response
    answers each: an error goes into every entry the response mirrors from the request.

    `keys` are (request field, response field) pairs copied from each request entry; the first
    names it (a request entry that is a bare string is that name). `partition` is (request
    field, response field); a request field of None means the partitions are bare ints.
    `answer` holds what an erroneous entry says beside its error (offsets unknown: -1)."""

    request_list: str
    response_list: str
    keys: tuple[tuple[str, str], ...]
    request_partitions: str | None = None
    response_partitions: str | None = None
    partition: tuple[str | None, str] = (None, "partition_index")
    error_field: str = "error_code"
    answer: Mapping[str, Any] = field(default_factory=dict)
    names_topics: bool = True


_UNKNOWN_OFFSETS = {"timestamp": -1, "offset": -1}
_LAYOUTS: dict[ApiKey, tuple[_Layout, ...]] = {
    ApiKey.PRODUCE: (
        _Layout("topic_data", "responses", (("name", "name"), ("topic_id", "topic_id")), "partition_data", "partition_responses",
                ("index", "index"), answer={"base_offset": -1, "log_append_time_ms": -1, "log_start_offset": -1}),
    ),
    ApiKey.FETCH: (
        _Layout("topics", "responses", (("topic", "topic"), ("topic_id", "topic_id")), "partitions", "partitions",
                ("partition", "partition_index"), answer={"high_watermark": -1, "last_stable_offset": -1, "log_start_offset": -1}),
    ),
    ApiKey.LIST_OFFSETS: (
        _Layout("topics", "topics", (("name", "name"),), "partitions", "partitions", ("partition_index", "partition_index"), answer=_UNKNOWN_OFFSETS),
    ),
    ApiKey.OFFSET_COMMIT: (
        _Layout("topics", "topics", (("name", "name"), ("topic_id", "topic_id")), "partitions", "partitions", ("partition_index", "partition_index")),
    ),
    ApiKey.TXN_OFFSET_COMMIT: (
        _Layout("topics", "topics", (("name", "name"),), "partitions", "partitions", ("partition_index", "partition_index")),
    ),
    ApiKey.OFFSET_FOR_LEADER_EPOCH: (
        _Layout("topics", "topics", (("topic", "topic"),), "partitions", "partitions", ("partition", "partition"),
                answer={"leader_epoch": -1, "end_offset": -1}),
    ),
    ApiKey.DELETE_RECORDS: (
        _Layout("topics", "topics", (("name", "name"),), "partitions", "partitions", ("partition_index", "partition_index"),
                answer={"low_watermark": -1}),
    ),
    ApiKey.ADD_PARTITIONS_TO_TXN: (
        _Layout("v3_and_below_topics", "results_by_topic_v3_and_below", (("name", "name"),), "partitions", "results_by_partition",
                (None, "partition_index"), error_field="partition_error_code"),
    ),
    # The topics asked for only (none when all are): no brokers, no partitions.
    ApiKey.METADATA: (_Layout("topics", "topics", (("name", "name"), ("topic_id", "topic_id"))),),
    ApiKey.CREATE_TOPICS: (_Layout("topics", "topics", (("name", "name"),)),),
    ApiKey.DELETE_TOPICS: (
        _Layout("topics", "responses", (("name", "name"), ("topic_id", "topic_id"))),
        _Layout("topic_names", "responses", (("name", "name"),)),
    ),
    # Batched from FindCoordinator v4 and OffsetFetch v8; the older versions answer at the top level.
    ApiKey.FIND_COORDINATOR: (
        _Layout("coordinator_keys", "coordinators", (("key", "key"),), answer={"node_id": -1, "host": "", "port": -1}, names_topics=False),
    ),
    ApiKey.OFFSET_FETCH: (_Layout("groups", "groups", (("group_id", "group_id"),), names_topics=False),),
}
# Fields a top-level error answer gives beside the error: what Kafka answers with them (no node).
_TOP_LEVEL_ANSWER: dict[ApiKey, Mapping[str, Any]] = {
    ApiKey.FIND_COORDINATOR: {"node_id": -1, "host": "", "port": -1},
    ApiKey.INIT_PRODUCER_ID: {"producer_id": -1, "producer_epoch": -1},
    ApiKey.JOIN_GROUP: {"generation_id": -1},
}
# Kafka 4's names for codes `ErrorCode` knows by their older ones.
_ERROR_ALIASES = {"NOT_LEADER_OR_FOLLOWER": ErrorCode.NOT_LEADER_FOR_PARTITION}
_ids = itertools.count(1)


def api_key(api: str | int | ApiKey) -> ApiKey:
    """An API by key or by name in any of Kafka's spellings: 0, "produce", "FindCoordinator", "FIND_COORDINATOR"."""
    try:
        if isinstance(api, int):
            return ApiKey(api)
        name = api.strip()
        if name.isdigit():
            return ApiKey(int(name))
        return ApiKey[re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).upper().replace("-", "_")]
    except (KeyError, ValueError):
        raise FaultError(f"unknown API {api!r}") from None


def error_code(error: str | int) -> int:
    """An error code by number or by Kafka's name ("NOT_LEADER_OR_FOLLOWER", "request_timed_out")."""
    if isinstance(error, int):
        return error
    name = error.strip().upper()
    if name.lstrip("-").isdigit():
        return int(name)
    try:
        return _ERROR_ALIASES.get(name) or ErrorCode[name]
    except KeyError:
        raise FaultError(f"unknown error {error!r}") from None


def _error_name(code: int) -> str:
    """Kafka 4's name of an error code."""
    alias = next((name for name, value in _ERROR_ALIASES.items() if value == code), None)
    if alias is not None:
        return alias
    try:
        return ErrorCode(code).name
    except ValueError:
        return str(code)


def _top_level_error(api: ApiKey) -> bool:
    """Whether some version of the API's response has a top-level error code."""
    definition = messages.load(message_name(api) + "Response")
    return any(f["name"] == "ErrorCode" for f in definition["fields"])


@dataclass(eq=False)
class Fault:
    """One fault and its handle: `fired` counts the requests it acted on, `remove()` ends it.
    Match fields left None match anything; `when` (Python only) is a further test of the
    decoded request body."""

    id: int
    name: str
    api: ApiKey | None
    topic: str | None
    partition: int | None
    node: int | None
    client_id: str | None
    error: int | None
    delay_ms: int
    drop: Drop | None
    throttle_ms: int
    count: int | None
    every: int
    when: Callable[[Any], bool] | None = None
    matched: int = 0
    fired: int = 0
    _registry: Faults | None = field(default=None, repr=False)

    @property
    def active(self) -> bool:
        return self._registry is not None

    def remove(self) -> None:
        """Stop firing; `fired` keeps its count."""
        if self._registry is not None:
            self._registry.remove(self)

    def describe(self) -> dict[str, Any]:
        """The fault as JSON (the HTTP API and `ottla faults list`)."""
        return {
            "id": self.id,
            "name": self.name,
            "api": None if self.api is None else self.api.name.lower(),
            "topic": self.topic,
            "partition": self.partition,
            "node": self.node,
            "client_id": self.client_id,
            "error": None if self.error is None else _error_name(self.error),
            "delay_ms": self.delay_ms,
            "drop": None if self.drop is None else self.drop.value,
            "throttle_ms": self.throttle_ms,
            "count": self.count,
            "every": self.every,
            "matched": self.matched,
            "fired": self.fired,
        }

    def _matches(self, context: RequestContext, header: RequestHeader, request: Any) -> bool:
        if self.api is not None and header.api_key != self.api:
            return False
        if self.node is not None and context.services.node.node_id != self.node:
            return False
        if self.client_id is not None and header.client_id != self.client_id:
            return False
        if (self.topic is not None or self.partition is not None) and not any(
            (self.topic is None or topic == self.topic) and (self.partition is None or partition == self.partition)
            for topic, partition in _topic_partitions(context, header.api_key, request)
        ):
            return False
        return self.when is None or self.when(request)

    def error_response(self, header: RequestHeader, request: Mapping[str, Any]) -> dict[str, Any] | None:
        """The answer of a request this fault fails with its error; None when its API's response
        has no place for one at this version (the connection is then closed instead)."""
        assert self.error is not None
        api = ApiKey(header.api_key)
        for layout in _LAYOUTS.get(api, ()):
            if layout.request_list in request:
                entries = request[layout.request_list] or ()
                return {layout.response_list: [_error_entry(layout, entry, self.error) for entry in entries]}
        if any(name == "error_code" for name, _, _ in response_struct(api, header.api_version).fields):
            answer = {"error_code": self.error, **_TOP_LEVEL_ANSWER.get(api, {})}
            if api == ApiKey.JOIN_GROUP and header.api_version >= 7:
                answer["protocol_name"] = None  # JoinGroupResponse sends "" as null where null is allowed
            return answer
        return None


def _error_entry(layout: _Layout, entry: Any, code: int) -> dict[str, Any]:
    answer: dict[str, Any]
    if isinstance(entry, str):
        answer = {layout.keys[0][1]: entry}
    else:
        answer = {response: entry[request] for request, response in layout.keys if request in entry}
    if layout.request_partitions is None:
        answer[layout.error_field] = code
        answer.update(layout.answer)
        return answer
    assert layout.response_partitions is not None
    request_key, response_key = layout.partition
    answer[layout.response_partitions] = [
        {response_key: partition if request_key is None else partition[request_key], layout.error_field: code, **layout.answer}
        for partition in (entry[layout.request_partitions] or [])
    ]
    return answer


def _topic_partitions(context: RequestContext, api: int, request: Mapping[str, Any]) -> Iterator[tuple[str | None, int | None]]:
    """(topic, partition) of each partition a request names; (topic, None) for a topic without
    partitions. Topics named by id only (Fetch v13+) are looked up."""
    for layout in _LAYOUTS.get(ApiKey(api), ()):
        if not layout.names_topics:
            continue
        for entry in request.get(layout.request_list) or ():
            if isinstance(entry, str):
                yield entry, None
                continue
            topic = entry.get(layout.keys[0][0]) or None
            if topic is None and entry.get("topic_id"):
                info = context.storage.topic_by_id(entry["topic_id"])
                topic = None if info is None else info.name
            if layout.request_partitions is None:
                yield topic, None
                continue
            request_key = layout.partition[0]
            for partition in entry.get(layout.request_partitions) or ():
                yield topic, partition if request_key is None else partition[request_key]


class Faults:
    """The faults of one broker (or of every node of a cluster): add, list, remove; and, for the
    dispatchers armed with it, the one a request fires."""

    def __init__(self) -> None:
        self._rules: tuple[Fault, ...] = ()
        self._lock = threading.Lock()
        self._armed: list[Armed] = []

    def arm(self, dispatcher: Armed) -> None:
        """Have `dispatcher` ask about its requests while any fault is set."""
        self._armed.append(dispatcher)
        dispatcher.faults = self if self._rules else None

    def add(
        self,
        api: str | int | ApiKey | None = None,
        *,
        topic: str | None = None,
        partition: int | None = None,
        node: int | None = None,
        client_id: str | None = None,
        error: str | int | None = None,
        delay_ms: int = 0,
        drop: str | Drop | None = None,
        throttle_ms: int = 0,
        count: int | None = None,
        every: int = 1,
        when: Callable[[Any], bool] | None = None,
        name: str | None = None,
    ) -> Fault:
        """Set a fault (see the module's doc); FaultError when it cannot act as asked."""
        key = None if api is None else api_key(api)
        code = None if error is None else error_code(error)
        try:
            when_dropped = None if drop is None else Drop(drop)
        except ValueError:
            raise FaultError(f"drop is 'before' or 'after', not {drop!r}") from None
        if sum((code is not None, when_dropped is not None, throttle_ms > 0)) > 1:
            raise FaultError("a fault does one of error, drop and throttle_ms (each may be delayed by delay_ms)")
        if code is not None and (key is None or (key not in _LAYOUTS and not _top_level_error(key))):
            raise FaultError(f"an error needs an API whose response carries one, not {'any API' if key is None else key.name}")
        if (topic is not None or partition is not None) and (key is None or not any(layout.names_topics for layout in _LAYOUTS.get(key, ()))):
            raise FaultError(f"{'any API' if key is None else key.name} names no topic partitions to match on")
        if delay_ms < 0 or throttle_ms < 0 or every < 1 or (count is not None and count < 1):
            raise FaultError("delay_ms and throttle_ms are at least 0, every and count at least 1")
        fault = Fault(
            next(_ids), name or "", key, topic, partition, node, client_id, code, delay_ms, when_dropped, throttle_ms, count, every, when
        )
        fault.name = fault.name or f"fault {fault.id}"
        fault._registry = self
        with self._lock:
            self._rules = (*self._rules, fault)
            self._arm()
        return fault

    def list(self) -> list[Fault]:
        return list(self._rules)

    def get(self, fault_id: int) -> Fault | None:
        return next((fault for fault in self._rules if fault.id == fault_id), None)

    def remove(self, fault: Fault) -> None:
        with self._lock:
            self._rules = tuple(rule for rule in self._rules if rule is not fault)
            fault._registry = None
            self._arm()

    def clear(self) -> None:
        for fault in self._rules:
            self.remove(fault)

    def _arm(self) -> None:
        armed = self if self._rules else None
        for dispatcher in self._armed:
            dispatcher.faults = armed

    def firing(self, context: RequestContext, header: RequestHeader, request: Any) -> Fault | None:
        """The first fault this request fires, counted; None when none does."""
        for fault in self._rules:
            if not fault._matches(context, header, request):
                continue
            fault.matched += 1
            if fault.matched % fault.every:
                continue
            fault.fired += 1
            if fault.count is not None and fault.fired >= fault.count:
                self.remove(fault)
            return fault
        return None
