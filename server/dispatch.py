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

from ottla.server.context import ClientIdentity, RequestContext
from ottla.server.metrics import BrokerMetrics
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, MalformedFrame
from ottla.wire.header import RequestHeader, peek_api, request_header_version
from ottla.wire.protocol import decode_request, encode_response, encode_response_parts

log = logging.getLogger("ottla.request")

# A handler: its connection's context, the request's header and decoded body (the
# generated TypedDict of its API) in; the response body (or None, or a coroutine that
# gives it) out.
Handle = Callable[[RequestContext, RequestHeader, Any], Any]

# A response frame: bytes, or a list of bytes and file regions to send in order.
Payload = bytes | list[Any]


class Deferred(NamedTuple):
    """An answer still to come: the connection runs `work` as a task, then `finish` turns its
    result into the response frame. The handler's own coroutine is the task, so a task
    cancelled before it starts (its client gone) closes that coroutine instead of leaving it
    never awaited inside a wrapper."""

    work: Coroutine[Any, Any, Any]
    finish: Callable[[Any], Payload]


# Responses that carry log data by reference (file regions), sent without copying.
_SPLICED = {ApiKey.FETCH}


class Dispatcher:
    def __init__(self, handlers: Mapping[int, tuple[Handle, int, int]], metrics: BrokerMetrics | None = None) -> None:
        self.handlers = handlers
        # Counted once per answered request (ottla.server.metrics); None counts nothing.
        self.metrics = metrics

    def supported(self) -> tuple[tuple[ApiKey, int, int], ...]:
        return tuple((ApiKey(key), low, high) for key, (_, low, high) in sorted(self.handlers.items()))

    def dispatch(self, context: RequestContext, frame: bytes) -> Payload | None | Deferred:
        api_key, api_version, correlation_id = peek_api(frame)
        entry = self.handlers.get(api_key)
        if entry is None or not entry[1] <= api_version <= entry[2]:
            if api_key == ApiKey.API_VERSIONS:
                # KIP-511: a client newer than us learns our versions from a v0 answer.
                return encode_response(api_key, 0, correlation_id, context.services.api_versions_body(ErrorCode.UNSUPPORTED_VERSION))
            raise MalformedFrame(f"unsupported API {api_key} version {api_version}")
        handle = entry[0]
        header, body = decode_request(frame, request_header_version(api_key, api_version))
        started = time.perf_counter()
        result = handle(context, header, body)
        if asyncio.iscoroutine(result):
            return Deferred(result, functools.partial(self._finish, context.client, header, body, started))
        if result is None:
            if self.metrics is not None:
                self.metrics.observe_request(api_key, body, None, time.perf_counter() - started)
            return None
        return self._finish(context.client, header, body, started, result)

    def _finish(self, client: ClientIdentity, header: RequestHeader, body: Any, started: float, result: Mapping[str, Any]) -> Payload:
        if self.metrics is not None:
            self.metrics.observe_request(header.api_key, body, result, time.perf_counter() - started)
        self._log(client, header, result, started)
        return _encode(header, result)

    def _log(self, client: ClientIdentity, header: RequestHeader, result: Mapping[str, Any], started: float) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s took %.2f ms, error_code=%s",
                describe_request(client, header),
                (time.perf_counter() - started) * 1000,
                _first_error(result),
            )


def describe_request(client: ClientIdentity, header: RequestHeader) -> str:
    try:
        name = ApiKey(header.api_key).name
    except ValueError:
        name = f"api {header.api_key}"
    return f"{name} v{header.api_version} from {header.client_id!r} at {client.address}"


def _encode(header: RequestHeader, result: Mapping[str, Any]) -> Payload:
    if header.api_key in _SPLICED:
        return encode_response_parts(header.api_key, header.api_version, header.correlation_id, result)
    return encode_response(header.api_key, header.api_version, header.correlation_id, result)


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
