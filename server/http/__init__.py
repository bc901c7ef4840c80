"""The broker's HTTP listener: the web console's assets, `/metrics` and the JSON API `/api/`.

It runs on the broker's own event loop, beside the Kafka listener and never in its path:
the Kafka side only increments counters (ottla.server.metrics); everything here reads
them, or the storage and coordinators, between requests.

Start-up is not made to wait for aiohttp (about 160 ms to import, half as much again as
the rest of the broker): the socket is bound and listening at once, so the ready line
can name it, and aiohttp is imported in a thread and starts serving on that socket a
moment later. A browser that connects first waits in the listen backlog; no request is
lost. This module itself imports nothing of aiohttp.
"""

from __future__ import annotations

import asyncio
import errno
import importlib
import ipaddress
import logging
import secrets
import socket
from typing import Any, Protocol

from ottla.server.config import BrokerConfig
from ottla.server.metrics import BrokerMetrics
from ottla.server.logs import RECENT, attach_recent

log = logging.getLogger("ottla.http")


class ServedBroker(Protocol):
    """What the HTTP side reads of the running broker (`ottla.server.broker.Broker`), which
    imports this package: named here so that the import goes one way."""

    config: BrokerConfig
    metrics: BrokerMetrics
    services: Any  # BrokerServices while running, else None
    storage: Any
    groups: Any
    txn: Any
    connections: set[Any]
    http: HttpListener | None

    @property
    def bootstrap_servers(self) -> str: ...


class HttpListener:
    """One HTTP socket of a running broker: bound when built, served once `start` has run."""

    def __init__(self, broker: ServedBroker) -> None:
        self.broker = broker
        config = broker.config
        self.host = config.http_host
        # A port nobody chose (ottla serve's default) that is taken falls back to a free one.
        self.socket = _bind(config.http_host, config.http_port, fall_back="http.port" not in config.explicit)
        self.port: int = self.socket.getsockname()[1]
        # Mutations must echo this token (X-CSRF-Token): a page of another origin cannot read
        # it (no CORS headers are sent), so it cannot forge a POST that carries it.
        self.csrf_token = secrets.token_urlsafe(32)
        self.serving = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._runner: Any = None
        self._attached_logs = False

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def loopback_only(self) -> bool:
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"

    def start(self) -> None:
        self._attached_logs = attach_recent(logging.getLogger("ottla"))
        self._task = asyncio.get_running_loop().create_task(self._serve())

    async def _serve(self) -> None:
        # The import runs in a thread so the loop keeps answering Kafka clients meanwhile.
        app = await asyncio.to_thread(importlib.import_module, "ottla.server.http.app")
        self._runner = await app.serve(self, self.socket)
        self.serving.set()
        log.info("HTTP listener serving on %s", self.url)

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.socket.close()
        if self._attached_logs:
            logging.getLogger("ottla").removeHandler(RECENT)
            self._attached_logs = False


def _bind(host: str, port: int, fall_back: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=128)
    except OSError as exc:
        if not (fall_back and exc.errno == errno.EADDRINUSE):
            raise OSError(exc.errno, f"cannot listen for HTTP on {host}:{port}: {exc.strerror}") from None
        listener = socket.create_server((host, 0), family=family, backlog=128)
        # INFO, not WARNING: the ready line's http= names the port, and nothing may print before
        # the ready line (tools and tests wait for it as the first line).
        log.info("HTTP port %s is taken: the console listens on %s instead", port, listener.getsockname()[1])
        return listener
