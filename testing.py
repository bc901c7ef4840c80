"""A broker on its own thread and event loop, for code that is not async (tests, scripts).

    with running_broker(data_dir=None) as broker:
        KafkaProducer(bootstrap_servers=broker.bootstrap_servers)

Nothing it starts outlives the `with`: the loop, the thread, sockets and files end there.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from concurrent.futures import Future
from typing import Any, Iterator

from ottla.server.broker import Broker


class ThreadedBroker:
    """A Broker driven from another thread; every call runs on the broker's loop."""

    def __init__(self, **settings: Any) -> None:
        self._settings = settings
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="ottla-broker", daemon=True)
        self.broker: Broker | None = None

    def _call(self, coroutine: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result()

    def start(self) -> "ThreadedBroker":
        self._thread.start()
        self.broker = Broker(**self._settings)
        self._call(self.broker.start())
        return self

    def stop(self) -> None:
        if self.broker is not None:
            self._call(self.broker.stop())
            self.broker = None
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        if not self._loop.is_closed():
            self._loop.close()

    def restart(self) -> None:
        """Stop and start again with the same data and the same port."""
        assert self.broker is not None
        self._call(self.broker.restart())

    @property
    def bootstrap_servers(self) -> str:
        assert self.broker is not None
        return self.broker.bootstrap_servers

    def create_topic(self, name: str, partitions: int = 1, **configs: Any) -> None:
        """Create a topic; configs by Kafka name, underscores for dots (`retention_ms=1000`)."""
        assert self.broker is not None
        self._call(_on_loop(self.broker.create_topic, name, partitions, **configs))


async def _on_loop(function: Any, *args: Any, **kwargs: Any) -> Any:
    return function(*args, **kwargs)


@contextlib.contextmanager
def running_broker(**settings: Any) -> Iterator[ThreadedBroker]:
    """Settings by Kafka name, underscores for dots: `running_broker(port=0, data_dir=None)`."""
    settings.setdefault("port", 0)
    handle = ThreadedBroker(**settings)
    try:
        yield handle.start()
    finally:
        handle.stop()
