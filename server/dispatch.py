"""Requests to handlers by API key, through one table.

Each handler module names its API, the versions it serves and a `handle` function.
The table is also what ApiVersions advertises, so nothing is advertised that has no
handler. A handler returns the response body (or None for no response), or a
coroutine that does. Handlers put Kafka error codes in their responses; an
exception escaping one is a bug, logged, and closes only that connection.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any, Callable, Coroutine, NamedTuple

from ottla.server.context import ClientIdentity, CloseWhenAnswered, DropConnection, Encoded, RequestContext
from ottla.server.faults import Drop, Fault, Faults
from ottla.server.fetch_sessions import SESSIONLESS, SessionFetch
from ottla.server.metrics import BrokerMetrics
from ottla.server.security.quotas import ClientQuotas, QuotaKind
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, MalformedFrame
from ottla.wire.header import RequestHeader, decode_request_header, peek_api, request_header_version, response_frame_prefix, response_header_version
from ottla.wire.protocol import encode_response, encode_response_parts, request_decoder, response_encoder

log = logging.getLogger("ottla.request")

# A handler: its connection's context, the request's header and decoded body (the
# generated TypedDict of its API) in; the response body (or None, or a coroutine that
# gives it) out.
Handle = Callable[[RequestContext, RequestHeader, Any], Any]

# A response frame: bytes, or a list of bytes and file regions to send in order.
Payload = bytes | list[Any]


class Throttled(NamedTuple):
    """A response (None for an acks=0 Produce) whose client went over a quota: the connection
    stops reading its requests for `throttle_ms` (KIP-219). `delay` when the client is too old
    to wait by itself (its version predates KIP-219): the response is held back that long."""

    payload: Payload | None
    throttle_ms: int
    delay: bool


class Deferred(NamedTuple):
    """An answer still to come: the connection runs `work` as a task, then `finish` turns its
    result into the response frame. The handler's own coroutine is the task, so a task
    cancelled before it starts (its client gone) closes that coroutine instead of leaving it
    never awaited inside a wrapper."""

    work: Coroutine[Any, Any, Any]
    finish: Callable[[Any], Payload | Throttled | None]


# Responses that carry log data by reference (file regions), sent without copying.
_SPLICED = {ApiKey.FETCH}
# Per (api key, version), keyed api_key * 65536 + version: the response body's encoder and the
# response header's version, looked up once instead of derived per answer (encode_response's work).
_ENCODERS: dict[int, tuple[Callable[[Mapping[str, Any]], bytes], int]] = {}
# An answer of these without file regions is joined into bytes below this size.
_JOIN_BELOW = 1 << 20

# The first version of each API whose clients wait out throttle_time_ms themselves
# (AbstractResponse.shouldClientThrottle, Kafka 4.4); APIs not named throttle from version 0.
_CLIENT_THROTTLES_FROM = {
    ApiKey.PRODUCE: 6,
    ApiKey.FETCH: 8,
    ApiKey.METADATA: 6,
    ApiKey.LIST_OFFSETS: 3,
    ApiKey.OFFSET_COMMIT: 4,
    ApiKey.OFFSET_FETCH: 4,
    ApiKey.FIND_COORDINATOR: 2,
    ApiKey.JOIN_GROUP: 3,
    ApiKey.HEARTBEAT: 2,
    ApiKey.LEAVE_GROUP: 2,
    ApiKey.SYNC_GROUP: 2,
    ApiKey.DESCRIBE_GROUPS: 2,
    ApiKey.LIST_GROUPS: 2,
    ApiKey.API_VERSIONS: 2,
    ApiKey.CREATE_TOPICS: 3,
    ApiKey.DELETE_TOPICS: 2,
    ApiKey.DESCRIBE_CONFIGS: 2,
    ApiKey.DELETE_RECORDS: 1,
    ApiKey.INIT_PRODUCER_ID: 1,
    ApiKey.ADD_PARTITIONS_TO_TXN: 1,
    ApiKey.ADD_OFFSETS_TO_TXN: 1,
    ApiKey.END_TXN: 1,
    ApiKey.TXN_OFFSET_COMMIT: 1,
    ApiKey.DESCRIBE_ACLS: 1,
    ApiKey.CREATE_ACLS: 1,
    ApiKey.DELETE_ACLS: 1,
    ApiKey.ALTER_CONFIGS: 1,
    ApiKey.DESCRIBE_LOG_DIRS: 1,
    ApiKey.CREATE_PARTITIONS: 1,
    ApiKey.DELETE_GROUPS: 1,
}
# What Kafka 4.4's SaslServerAuthenticator answers on a SASL connection, outside KafkaApis and so
# never counted against request_percentage: a re-authentication's exchange (before the first
# authentication, every request is the authenticator's).
_SASL_EXCHANGE = {ApiKey.SASL_HANDSHAKE, ApiKey.SASL_AUTHENTICATE}


class Dispatcher:
    def __init__(self, handlers: Mapping[int, tuple[Handle, int, int]], metrics: BrokerMetrics | None = None) -> None:
        self.handlers = handlers
        # Counted once per answered request (ottla.server.metrics); None counts nothing.
        self.metrics = metrics
        # The client quotas while any is set (the broker keeps this current), else None: a
        # broker without quotas pays one attribute check per request for them.
        self.quotas: ClientQuotas | None = None
        # The faults while any is set (`Faults.arm` keeps this current), else None: likewise.
        self.faults: Faults | None = None
        # Per served (api key, version), keyed api_key * 65536 + version: the request header's
        # version and the body's decoder, looked up once instead of derived per request.
        self._decoders: dict[int, tuple[int, Callable[[bytes | bytearray, int], tuple[Any, int]]]] = {}

    def supported(self) -> tuple[tuple[ApiKey, int, int], ...]:
        return tuple((ApiKey(key), low, high) for key, (_, low, high) in sorted(self.handlers.items()))

    def dispatch(self, context: RequestContext, frame: bytes | bytearray) -> Payload | None | Deferred | Throttled:
        api_key, api_version, correlation_id = peek_api(frame)
        entry = self.handlers.get(api_key)
        if entry is None or not entry[1] <= api_version <= entry[2]:
            if api_key == ApiKey.API_VERSIONS and entry is not None:
                # KIP-511: a client newer than us learns the versions of ApiVersions alone from a
                # v0 answer, and asks again (ApiVersionsRequest.getErrorResponse).
                versions = [{"api_key": api_key, "min_version": entry[1], "max_version": entry[2]}]
                return encode_response(api_key, 0, correlation_id, {"error_code": ErrorCode.UNSUPPORTED_VERSION, "api_keys": versions, "throttle_time_ms": 0})
            raise MalformedFrame(f"unsupported API {api_key} version {api_version}")
        handle = entry[0]
        decoder = self._decoders.get(api_key * 65536 + api_version)
        if decoder is None:
            decoder = self._decoders[api_key * 65536 + api_version] = (request_header_version(api_key, api_version), request_decoder(api_key, api_version))
        header, position = decode_request_header(frame, decoder[0])
        body, _ = decoder[1](frame, position)
        faults = self.faults
        if faults is not None:
            fault = faults.firing(context, header, body)
            if fault is not None:
                return self._inject(fault, context, header, body, handle, len(frame))
        started = time.perf_counter()
        result = handle(context, header, body)
        if type(result) is dict or type(result) is Encoded:  # a body made at once: no coroutine check
            return self._finish(context, header, body, started, len(frame), 0.0, result)
        if asyncio.iscoroutine(result):
            # What the request cost before it parked, counted against request_percentage.
            spent = time.perf_counter() - started
            return Deferred(result, functools.partial(self._finish_deferred, context, header, body, started, len(frame), spent))
        if result is None:
            if self.metrics is not None:
                self.metrics.observe_request(api_key, None, time.perf_counter() - started)
            quotas = self.quotas
            if quotas is not None:
                # An acks=0 Produce: no answer to carry throttle_time_ms, but its channel is
                # muted all the same (KafkaApis.handleProduceRequest).
                throttle = quotas.record(QuotaKind.PRODUCER_BYTE_RATE, context.client.principal, header.client_id or "", len(frame))
                if throttle > 0:
                    return Throttled(None, throttle, False)
            return None
        return self._finish(context, header, body, started, len(frame), 0.0, result)

    def _inject(self, fault: Fault, context: RequestContext, header: RequestHeader, body: Any, handle: Handle, request_size: int) -> Payload | None | Deferred | Throttled:
        """Answer a request as the fault it fired says (ottla.server.faults)."""
        started = time.perf_counter()
        finish = functools.partial(self._finish_fault, fault, context, header, body, started, request_size)
        if fault.delay_ms:
            return Deferred(self._delayed(fault, context, header, body, handle), finish)
        result = _act(fault, context, header, body, handle)
        if asyncio.iscoroutine(result):
            return Deferred(result, finish)
        return finish(result)

    async def _delayed(self, fault: Fault, context: RequestContext, header: RequestHeader, body: Any, handle: Handle) -> Any:
        await asyncio.sleep(fault.delay_ms / 1000)
        result = _act(fault, context, header, body, handle)
        return await result if asyncio.iscoroutine(result) else result

    def _finish_fault(
        self, fault: Fault, context: RequestContext, header: RequestHeader, body: Any, started: float, request_size: int, result: Any
    ) -> Payload | Throttled | None:
        """The response of a request a fault acted on: none when it drops the connection after
        the request took effect; throttled when it throttles."""
        if fault.drop is Drop.AFTER:
            raise DropConnection(f"{fault.name}: the request took effect, its connection is closed unanswered")
        if result is None:  # an acks=0 Produce
            return Throttled(None, fault.throttle_ms, False) if fault.throttle_ms else None
        if not fault.throttle_ms:
            return self._finish(context, header, body, started, request_size, 0.0, result)
        if isinstance(result, SessionFetch):  # a fault's throttle sends the answer all the same
            result = result.context.respond(result.response)
        payload = self._finish(context, header, body, started, request_size, 0.0, {**result, "throttle_time_ms": fault.throttle_ms})
        if isinstance(payload, Throttled):
            return payload._replace(throttle_ms=max(payload.throttle_ms, fault.throttle_ms))
        return Throttled(payload, fault.throttle_ms, header.api_version < _CLIENT_THROTTLES_FROM.get(ApiKey(header.api_key), 0))

    def _finish_deferred(
        self, context: RequestContext, header: RequestHeader, body: Any, started: float, request_size: int, spent: float,
        result: Mapping[str, Any] | SessionFetch | None,
    ) -> Payload | Throttled | None:
        """A parked handler's answer; None for an acks=0 Produce whose appends it awaited."""
        if result is None:
            return None
        return self._finish(context, header, body, started, request_size, spent, result)

    def _finish(
        self, context: RequestContext, header: RequestHeader, body: Any, started: float, request_size: int, spent: float,
        result: Mapping[str, Any] | SessionFetch,
    ) -> Payload | Throttled:
        """The response frame; `spent` is handler time already spent before a park, for the quota.
        A fetch session's answer is given to its session here, unless its client is throttled."""
        quotas = self.quotas
        fetch: SessionFetch | None = None
        if isinstance(result, SessionFetch):
            if quotas is None:
                result = result.context.respond(result.response)
            else:
                fetch, result = result, result.context.preview(result.response)
        metrics = self.metrics
        if metrics is not None:
            metrics.observe_request(header.api_key, result, time.perf_counter() - started)
        if log.isEnabledFor(logging.DEBUG):
            self._log(context.client, header, result, started)
        if quotas is None:
            return _encode(header, result)
        return self._throttle(quotas, context, header, body, started, request_size, spent, result, fetch)

    def _throttle(
        self,
        quotas: ClientQuotas,
        context: RequestContext,
        header: RequestHeader,
        body: Any,
        started: float,
        request_size: int,
        spent: float,
        result: Mapping[str, Any],
        fetch: SessionFetch | None = None,
    ) -> Payload | Throttled:
        """Count the request against its client's quotas (KafkaApis: Produce's request bytes,
        a consumer Fetch's response bytes, every request's handler time) and answer with the
        largest throttle time earned. A throttled consumer Fetch answers no data, its bytes
        uncounted, so that the client fetches them again when its throttle ends, as Kafka does:
        `result` is then a session's answer previewed (`fetch` unsettled), and the session, kept,
        learns nothing of it (KafkaApis.handleFetchRequest decides the throttle from
        FetchContext.getResponseSize, then answers getThrottledResponse instead of
        updateAndGenerateResponseData)."""
        principal, client_id, api_key = context.client.principal, header.client_id or "", header.api_key
        bandwidth = 0
        consumed = 0
        if api_key == ApiKey.PRODUCE:
            bandwidth = quotas.record(QuotaKind.PRODUCER_BYTE_RATE, principal, client_id, request_size)
        payload = _encode(header, result)
        consumer_fetch = api_key == ApiKey.FETCH and not _from_replica(body)
        if consumer_fetch:
            consumed = _payload_size(payload)
            bandwidth = quotas.record(QuotaKind.CONSUMER_BYTE_RATE, principal, client_id, consumed)
        request_time = 0
        if _request_time_counted(context, api_key, consumer_fetch, result):
            # Kafka counts request-handler nanoseconds as percent-seconds (nanosToPercentage).
            request_time = quotas.record(QuotaKind.REQUEST_PERCENTAGE, principal, client_id, (spent + time.perf_counter() - started) * 100)
        throttle = max(bandwidth, request_time)
        if fetch is not None and not (throttle > 0 and consumer_fetch):
            # Sent: the session keeps it. Encoded again, as a full request's opens a session only now.
            result = fetch.context.respond(fetch.response)
            payload = _encode(header, result)
        if throttle <= 0:
            return payload
        answer = dict(result)
        if consumer_fetch:
            quotas.unrecord(QuotaKind.CONSUMER_BYTE_RATE, principal, client_id, consumed)
            answer = dict((SESSIONLESS if fetch is None else fetch.context).throttled(throttle, result))
        # A handler's own throttle (a controller mutation quota's) stands if it is the longer.
        throttle = max(throttle, result.get("throttle_time_ms", 0))
        answer["throttle_time_ms"] = throttle
        delay = header.api_version < _CLIENT_THROTTLES_FROM.get(ApiKey(api_key), 0)
        return Throttled(_encode(header, answer), throttle, delay)

    def _log(self, client: ClientIdentity, header: RequestHeader, result: Mapping[str, Any], started: float) -> None:
        log.debug(
            "%s took %.2f ms, error_code=%s",
            describe_request(client, header),
            (time.perf_counter() - started) * 1000,
            _first_error(result),
        )


def _act(fault: Fault, context: RequestContext, header: RequestHeader, body: Any, handle: Handle) -> Any:
    """What a fault makes of a request once its delay is over: no effect and a closed
    connection, no effect and an error answer, or the handler's answer."""
    if fault.drop is Drop.BEFORE:
        raise DropConnection(f"{fault.name}: its connection is closed before the request takes effect")
    if fault.error is None:
        return handle(context, header, body)
    if header.api_key == ApiKey.PRODUCE and body["acks"] == 0:
        # No answer to carry the error: the connection closes, as for a real one.
        raise CloseWhenAnswered(f"{fault.name}: an acks=0 Produce failed")
    answer = fault.error_response(header, body)
    if answer is None:
        raise DropConnection(f"{fault.name}: {ApiKey(header.api_key).name} v{header.api_version} has no place for an error; closing instead")
    return answer


def describe_request(client: ClientIdentity, header: RequestHeader) -> str:
    try:
        name = ApiKey(header.api_key).name
    except ValueError:
        name = f"api {header.api_key}"
    return f"{name} v{header.api_version} from {header.client_id!r} at {client.address}"


def _encode(header: RequestHeader, result: Mapping[str, Any]) -> Payload:
    if header.api_key in _SPLICED:
        parts = encode_response_parts(header.api_key, header.api_version, header.correlation_id, result)
        # Without a file region in it, a small answer is bytes, which the connection writes as
        # soon as it is made instead of from a task of its own.
        if all(isinstance(part, bytes) for part in parts) and sum(map(len, parts)) < _JOIN_BELOW:
            return b"".join(parts)
        return parts
    key = header.api_key * 65536 + header.api_version
    encoder = _ENCODERS.get(key)
    if encoder is None:
        encoder = _ENCODERS[key] = (response_encoder(header.api_key, header.api_version), response_header_version(header.api_key, header.api_version))
    data = result.body if type(result) is Encoded else encoder[0](result)
    return response_frame_prefix(header.correlation_id, encoder[1], len(data)) + data


def _request_time_counted(context: RequestContext, api_key: int, consumer_fetch: bool, result: Mapping[str, Any]) -> bool:
    """Whether the request's handler time counts against request_percentage. Not for what Kafka
    4.4 answers outside KafkaApis (`_SASL_EXCHANGE`, and whatever a SASL connection sends before
    it has authenticated), nor for what KafkaApis answers with sendResponseExemptThrottle: a
    follower's Fetch (the replication quota is its own) and WriteTxnMarkers, unless refused for
    want of CLUSTER_ACTION (authorizeClusterOperation throws, and handleError answers a
    ClusterAuthorizationException with sendErrorResponseMaybeThrottle). ApiVersions counts as
    any request KafkaApis answers (sendResponseMaybeThrottle)."""
    sasl = context.sasl
    if sasl is not None and (api_key in _SASL_EXCHANGE or not sasl.authenticated):
        return False
    if api_key == ApiKey.FETCH:
        return consumer_fetch
    if api_key == ApiKey.WRITE_TXN_MARKERS:
        error = _first_error(result)
        if error:
            return error == ErrorCode.CLUSTER_AUTHORIZATION_FAILED
        # An answer naming no partition carries no error to tell a refusal by: ask again (the
        # handler's module is imported here, as a broker that never sees one never loads it).
        from ottla.server.handlers.write_txn_markers import may_write_markers

        return not may_write_markers(context)
    return True


def _from_replica(fetch: Mapping[str, Any]) -> bool:
    """A follower's Fetch (replica id >= 0, in ReplicaState from v15): replication, not a consumer."""
    state = fetch.get("replica_state")
    return max(fetch.get("replica_id", -1), state.get("replica_id", -1) if state else -1) >= 0


def _payload_size(payload: Payload) -> int:
    """Bytes a response frame puts on the wire: its buffers and its file regions."""
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return len(payload)
    return sum(len(part) if isinstance(part, (bytes, bytearray, memoryview)) else part.length for part in payload)


def _first_error(value: object) -> int:
    """The top-level error code, else the first non-zero one nested in the response."""
    values: Iterable[object]
    if isinstance(value, dict):
        code: int = value.get("error_code", 0)
        if code:
            return code
        values = value.values()
    elif isinstance(value, list):
        values = value
    else:
        return 0
    for item in values:
        if isinstance(item, (dict, list)):
            code = _first_error(item)
            if code:
                return code
    return 0
