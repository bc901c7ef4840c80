"""The aiohttp application behind the HTTP listener: routes, limits, CSRF, errors.

Every answer under `/api/` is JSON; an error is `{"error": message}` with a status that
says whose fault it is (400 malformed input, 403 no CSRF token, 404 nothing there, 409 a
state that forbids it, 413 too large, 422 a Kafka error). Inputs are bounded here, before
any work: connections (`IDLE_TIMEOUT_SECONDS`, `MAX_CONNECTIONS`), bodies (`MAX_BODY_BYTES`,
in ottla.server.http.routes), message reads (`ottla.server.http.api.MAX_MESSAGES`, `MAX_READ_BYTES`).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import socket
from pathlib import Path
from typing import Any, Awaitable, Callable

from aiohttp import web

from ottla.server.http import HttpListener
from ottla.server.http.api import Api, ApiError
from ottla.server.http.auth import COOKIE, SESSION_SECONDS, LoginFailed, Logins
from ottla.server.http.schemas import SchemaRegistry
from ottla.server.cluster.http import routes as cluster_routes
from ottla.server.http.faults_api import routes as faults_routes
from ottla.server.http.routes import MAX_BODY_BYTES, json_object
from ottla.server.metrics.exposition import OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE, render

# A console connection that sends no complete request head for this long (none at all, part of
# its headers, or nothing after its last answer) is closed.
IDLE_TIMEOUT_SECONDS = 15.0
# Most console connections open at once: one more is answered 503 and closed, so idle or slow
# HTTP clients cannot take the descriptors the Kafka listeners need.
MAX_CONNECTIONS = 100
_REFUSED_LINGER_SECONDS = 1.0
_BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
STATIC = Path(__file__).resolve().parent / "static"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_LISTENER: web.AppKey[HttpListener] = web.AppKey("listener", HttpListener)
_LOGINS: web.AppKey[Logins] = web.AppKey("logins", Logins)
_SCHEMAS: web.AppKey[SchemaRegistry | None] = web.AppKey("schemas")
_PRINCIPAL: web.RequestKey[str] = web.RequestKey("principal", str)
# What answers before a login: the page, its assets, the token and the login itself.
_OPEN_PATHS = frozenset({"/api/csrf", "/api/session", "/api/login", "/api/logout"})
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def serve(listener: HttpListener, sock: socket.socket) -> Serving:
    """Serve the application on the already listening `sock`; `cleanup` stops it. aiohttp's
    keep-alive timer, armed from the connection's start and after each answer, closes a
    connection with no complete request head after IDLE_TIMEOUT_SECONDS; aiohttp has no cap
    on connections, so the protocol factory keeps one (`_Slots`)."""
    runner = web.AppRunner(build_app(listener), access_log=None, handle_signals=False, keepalive_timeout=IDLE_TIMEOUT_SECONDS)
    await runner.setup()
    slots = _Slots(runner.server, MAX_CONNECTIONS)
    server = await asyncio.get_running_loop().create_server(slots.protocol, sock=sock)
    return Serving(server, runner)


class Serving:
    """The listening server and the application runner behind it, stopped in that order."""

    def __init__(self, server: asyncio.Server, runner: web.AppRunner) -> None:
        self._server = server
        self._runner = runner

    async def cleanup(self) -> None:
        self._server.close()
        await self._runner.cleanup()


class _Slots:
    """The cap on open console connections: a connection takes a slot when accepted and frees
    it when lost; past `limit`, it gets a 503 and is closed before aiohttp sees it."""

    def __init__(self, server: Any, limit: int) -> None:
        self._server = server
        self._limit = limit
        self.open = 0

    def protocol(self) -> asyncio.Protocol:
        if self.open >= self._limit:
            return _Refused()
        self.open += 1
        return _Counted(self._server(), self)


class _Refused(asyncio.Protocol):
    """A connection past the cap: answered 503 and half-closed at once; what the client sends
    is read and dropped (closing with it unread would reset the connection before the client
    reads the answer) until it closes too, or for _REFUSED_LINGER_SECONDS at most."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(_BUSY)
        transport.write_eof()
        asyncio.get_running_loop().call_later(_REFUSED_LINGER_SECONDS, transport.close)

    def eof_received(self) -> bool:
        return False


class _Counted(asyncio.Protocol):
    """aiohttp's handler of one connection, told everything the transport says; frees its slot when lost."""

    def __init__(self, handler: asyncio.Protocol, slots: _Slots) -> None:
        self._handler = handler
        self._slots = slots

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._handler.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._handler.data_received(data)

    def eof_received(self) -> bool | None:
        return self._handler.eof_received()

    def pause_writing(self) -> None:
        self._handler.pause_writing()

    def resume_writing(self) -> None:
        self._handler.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._slots.open -= 1
        self._handler.connection_lost(exc)


def build_app(listener: HttpListener) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[_errors, _host_check, _csrf, _session])
    app[_LISTENER] = listener
    app[_LOGINS] = Logins(listener.broker)
    registry_url = listener.broker.config.console_schema_registry_url
    app[_SCHEMAS] = SchemaRegistry(registry_url) if registry_url else None
    app.on_cleanup.append(_close_schemas)
    app.on_response_prepare.append(_no_framing)
    routes = [
        web.get("/", _index),
        web.get("/static/{path:.*}", _static),
        web.get("/metrics", _metrics),
        web.get("/api/csrf", _csrf_token),
        web.get("/api/session", _session_info),
        web.post("/api/login", _login),
        web.post("/api/logout", _logout),
        web.get("/api/cluster", _call("cluster")),
        web.get("/api/broker/configs", _call("broker_configs")),
        web.post("/api/broker/configs", _call("alter_broker_configs", body=True)),
        web.get("/api/stats", _call("stats")),
        web.get("/api/topics", _call("topics")),
        web.post("/api/topics", _call("create_topic", body=True)),
        web.get("/api/topics/{topic}", _call("topic", "topic")),
        web.delete("/api/topics/{topic}", _call("delete_topic", "topic")),
        web.post("/api/topics/{topic}/configs", _call("alter_topic_configs", "topic", body=True)),
        web.post("/api/topics/{topic}/partitions", _call("add_partitions", "topic", body=True)),
        web.post("/api/topics/{topic}/delete-records", _call("delete_records", "topic", body=True)),
        web.get("/api/topics/{topic}/messages", _call("messages", "topic", query=True)),
        web.post("/api/topics/{topic}/messages", _call("produce", "topic", body=True)),
        web.get("/api/groups", _call("groups")),
        web.get("/api/groups/{group}", _call("group", "group")),
        web.post("/api/groups/{group}/reset-offsets", _call("reset_offsets", "group", body=True)),
        web.get("/api/transactions", _call("transactions")),
        web.get("/api/producers", _call("producers", query=True)),
        web.get("/api/logs", _call("logs", query=True)),
        web.get("/api/acls", _call("acls")),
        web.get("/api/users", _call("users")),
        web.get("/api/client-metrics", _call("client_metrics")),
        web.get("/api/client-metrics/instances/{instance}", _call("client_instance", "instance")),
        web.post("/api/client-metrics/subscriptions/{name}", _call("alter_client_metrics", "name", body=True)),
    ]
    app.add_routes(routes)
    app.add_routes(faults_routes(lambda request: request.app[_LISTENER].broker, lambda request: request[_PRINCIPAL]))
    app.add_routes(cluster_routes(lambda request: request.app[_LISTENER].broker, lambda request: request[_PRINCIPAL]))
    return app


def _call(method: str, *params: str, body: bool = False, query: bool = False) -> Handler:
    """A route that calls `Api.<method>` with the path parameters named, then the JSON body
    or the query string, and answers its result as JSON."""

    async def handler(request: web.Request) -> web.StreamResponse:
        args: list[Any] = [request.match_info[name] for name in params]
        if body:
            args.append(await json_object(request))
        if query:
            args.append(dict(request.query))
        api = Api(request.app[_LISTENER].broker, request[_PRINCIPAL], request.remote or "", request.app[_SCHEMAS])
        result = getattr(api, method)(*args)
        if hasattr(result, "__await__"):
            result = await result
        return web.json_response(result, dumps=_dumps)

    return handler


async def _no_framing(request: web.Request, response: web.StreamResponse) -> None:
    """No page of another origin may frame the console (clickjacking): every answer says so,
    in the header old browsers read and in the one CSP-aware ones do."""
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"


async def _close_schemas(app: web.Application) -> None:
    registry = app[_SCHEMAS]
    if registry is not None:
        await registry.close()


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """API errors as JSON; aiohttp's own refusals (404, 405, 413) too, under /api/."""
    try:
        return await handler(request)
    except ApiError as exc:
        return web.json_response({"error": exc.message}, status=exc.status)
    except web.HTTPException as exc:
        if not request.path.startswith("/api/") or exc.status < 400:
            raise
        return web.json_response({"error": exc.reason}, status=exc.status)


@web.middleware
async def _host_check(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A listener on loopback answers only requests addressed to loopback: a web page whose
    name an attacker re-points at 127.0.0.1 (DNS rebinding) gets nothing."""
    listener = request.app[_LISTENER]
    if listener.loopback_only:
        host = (request.host or "").rsplit(":", 1)[0] if not (request.host or "").startswith("[") else (request.host or "")[1:].split("]")[0]
        if host not in _LOOPBACK_NAMES and host != listener.host:
            raise ApiError(403, f"this listener answers requests for localhost only, not {host!r}")
    return await handler(request)


@web.middleware
async def _csrf(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method not in _SAFE_METHODS:
        given = request.headers.get("X-CSRF-Token", "")
        if not hmac.compare_digest(given.encode(), request.app[_LISTENER].csrf_token.encode()):
            raise ApiError(403, "missing or wrong X-CSRF-Token header: GET /api/csrf gives the token")
    return await handler(request)


@web.middleware
async def _session(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Under /api/, who is asking: the session's principal (ANONYMOUS without security);
    401 when a login is required and the session cookie names none."""
    if request.path.startswith("/api/") and request.path not in _OPEN_PATHS:
        principal = request.app[_LOGINS].principal(request.cookies.get(COOKIE))
        if principal is None:
            raise ApiError(401, "log in first: POST /api/login with the user name and password of a SASL user")
        request[_PRINCIPAL] = principal
    return await handler(request)


async def _session_info(request: web.Request) -> web.StreamResponse:
    logins = request.app[_LOGINS]
    return web.json_response({"login_required": logins.required, "principal": logins.principal(request.cookies.get(COOKIE))})


async def _login(request: web.Request) -> web.StreamResponse:
    body = await json_object(request)
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not username:
        raise ApiError(400, "give `username` and `password` as strings")
    logins = request.app[_LOGINS]
    if not logins.required:
        raise ApiError(409, "this broker has no authorizer and no SASL listener: the console acts as User:ANONYMOUS")
    try:
        token, principal = await logins.login(username, password, request.remote or "")
    except LoginFailed as exc:
        raise ApiError(401, str(exc)) from None
    response = web.json_response({"principal": principal})
    response.set_cookie(COOKIE, token, max_age=SESSION_SECONDS, httponly=True, samesite="Strict", path="/")
    return response


async def _logout(request: web.Request) -> web.StreamResponse:
    request.app[_LOGINS].logout(request.cookies.get(COOKIE))
    response = web.json_response({"principal": None})
    response.del_cookie(COOKIE, path="/")
    return response


async def _csrf_token(request: web.Request) -> web.StreamResponse:
    return web.json_response({"token": request.app[_LISTENER].csrf_token, "header": "X-CSRF-Token"})


async def _metrics(request: web.Request) -> web.StreamResponse:
    openmetrics = "application/openmetrics-text" in request.headers.get("Accept", "")
    body = render(request.app[_LISTENER].broker, openmetrics)
    response = web.Response(body=body)
    response.headers["Content-Type"] = OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE
    return response


async def _index(request: web.Request) -> web.StreamResponse:
    return _asset("index.html")


async def _static(request: web.Request) -> web.StreamResponse:
    return _asset(request.match_info["path"])


def _asset(name: str) -> web.StreamResponse:
    """A file of the packaged assets; anything outside them (`..`, absolute, links) is 404."""
    root = STATIC.resolve()
    try:
        target = (root / name).resolve()
    except (OSError, ValueError):
        raise web.HTTPNotFound() from None
    if not target.is_relative_to(root) or not target.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(target, headers={"X-Content-Type-Options": "nosniff"})
