"""A broker on its own thread and event loop, for code that is not async (tests, scripts).

    with running_broker(data_dir=None) as broker:
        KafkaProducer(bootstrap_servers=broker.bootstrap_servers)

Nothing it starts outlives the `with`: the loop, the thread, sockets and files end there.

A cluster of N nodes in the one process (server/cluster/), with its outages on call:

    with running_broker(nodes=3, data_dir=None) as cluster:
        cluster.create_topic("t", partitions=3, replication_factor=3, min_insync_replicas=2)
        cluster.stop_node(cluster.leader_of("t", 0))   # a new leader is elected from the ISR
        cluster.start_node(1)

Faults on demand (ottla.server.faults): `broker.faults.add(api="produce", error="NOT_LEADER_OR_FOLLOWER",
count=3)` returns a handle with `.fired` and `.remove()`. For a broker in its own process, faults
set from its start: `python -m ottla.testing serve --fault '{"api": "produce", "drop": "after",
"every": 3}' [ottla serve options]`, or later through `ottla faults add` (its HTTP API).
The older spellings stay: `running_broker(test_hooks=TestHooks(drop_produce_response_every=3))`,
`python -m ottla.testing serve --drop-produce-response-every 3`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import os
import threading
from concurrent.futures import Future
from typing import Any, Iterator

from ottla.server.broker import Broker
from ottla.server.cli import event_loop_factory, main as serve
from ottla.server.faults import Fault, Faults
from ottla.server.hooks import TestHooks

__all__ = ["Fault", "Faults", "ThreadedBroker", "TestHooks", "running_broker"]


class ThreadedBroker:
    """A Broker driven from another thread; every call runs on the broker's loop."""

    def __init__(self, test_hooks: TestHooks | None = None, event_loop: str | None = None, **settings: Any) -> None:
        """`event_loop` is one of ottla.server.cli.EVENT_LOOPS, by default the environment's
        COMPAT_EVENT_LOOP or else asyncio's: a test run can put every broker on uvloop."""
        self._settings = settings
        self._test_hooks = test_hooks
        self._loop = (event_loop_factory(event_loop or os.environ.get("COMPAT_EVENT_LOOP", "asyncio")) or asyncio.new_event_loop)()
        self._thread = threading.Thread(target=self._loop.run_forever, name="ottla-broker", daemon=True)
        self.broker: Broker | None = None

    def _call(self, coroutine: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result()

    def start(self) -> "ThreadedBroker":
        self._thread.start()
        self.broker = Broker(test_hooks=self._test_hooks, **self._settings)
        self._call(self.broker.start())
        return self

    def stop(self) -> None:
        """Stop the broker, then end the loop's default executor (the threads that removed
        deleted files, say) and the loop's thread: none outlives the broker."""
        if self.broker is not None:
            self._call(self.broker.stop())
            self.broker = None
        if self._thread.is_alive():
            self._call(self._loop.shutdown_default_executor())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        if not self._loop.is_closed():
            self._loop.close()

    def restart(self) -> None:
        """Stop and start again with the same data and the same port."""
        assert self.broker is not None
        self._call(self.broker.restart())

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Hold the broker's loop in one callback until the block ends: what clients send
        meanwhile waits in the kernel and reaches the broker at once, whatever the machine's
        load, for tests of the order it then takes work in."""
        entered, released = threading.Event(), threading.Event()

        def hold() -> None:
            entered.set()
            released.wait()

        self._loop.call_soon_threadsafe(hold)
        entered.wait()
        try:
            yield
        finally:
            released.set()

    @property
    def bootstrap_servers(self) -> str:
        assert self.broker is not None
        return self.broker.bootstrap_servers

    @property
    def faults(self) -> Faults:
        """The broker's faults; adding and removing them is safe from this thread."""
        assert self.broker is not None
        return self.broker.faults

    def create_topic(self, name: str, partitions: int = 1, replication_factor: int | None = None, **configs: Any) -> None:
        """Create a topic; configs by Kafka name, underscores for dots (`retention_ms=1000`);
        in a cluster, `replication_factor` replicas of each partition."""
        assert self.broker is not None
        self._call(_on_loop(self.broker.create_topic, name, partitions, replication_factor, **configs))

    # Cluster mode (`running_broker(nodes=N)`): see Broker.stop_node and the others.

    def stop_node(self, node_id: int) -> None:
        """Stop a node as Kafka's controlled shutdown does: its partitions elect new leaders at
        once, and it closes one broker.heartbeat.interval.ms later, when this returns."""
        assert self.broker is not None
        self._call(self.broker.stop_node(node_id))

    def crash_node(self, node_id: int) -> None:
        """Crash a node: it is unreachable, yet leads until broker.session.timeout.ms fences it."""
        assert self.broker is not None
        self._call(self.broker.crash_node(node_id))

    def start_node(self, node_id: int) -> None:
        """Start a stopped or crashed node again, or reconnect an isolated one."""
        assert self.broker is not None
        self._call(self.broker.start_node(node_id))

    def isolate_node(self, node_id: int) -> None:
        """Make a node accept connections and never answer; its partitions elect new leaders."""
        assert self.broker is not None
        self._call(_on_loop(self.broker.isolate_node, node_id))

    def move_leader(self, topic: str, partition: int, node_id: int) -> None:
        """Make a running in-sync replica lead a partition, in a new leader epoch."""
        assert self.broker is not None
        self._call(_on_loop(self.broker.move_leader, topic, partition, node_id))

    def leader_of(self, topic: str, partition: int) -> int:
        """The node leading a partition now (-1: none)."""
        return int(self.partition_state(topic, partition)["leader"])

    def partition_state(self, topic: str, partition: int) -> dict[str, Any]:
        """A partition's replicas, leader, leader epoch, ISR and offline replicas."""
        assert self.broker is not None
        return dict(self._call(_on_loop(self.broker.partition_state, topic, partition)))


async def _on_loop(function: Any, *args: Any, **kwargs: Any) -> Any:
    """`function` called on the broker's loop, and what it returns awaited there when it is a
    coroutine (Broker.create_topic's over PostgreSQL)."""
    result = function(*args, **kwargs)
    return await result if inspect.isawaitable(result) else result


@contextlib.contextmanager
def running_broker(test_hooks: TestHooks | None = None, **settings: Any) -> Iterator[ThreadedBroker]:
    """Settings by Kafka name, underscores for dots: `running_broker(port=0, data_dir=None)`;
    `event_loop="uvloop"` runs it on uvloop (ThreadedBroker). Unless told otherwise it listens
    on a free port and keeps its data in memory, so that nothing it leaves outlives it and two
    of them never share a data directory."""
    settings.setdefault("port", 0)
    if not {"config", "data_dir", "log_dirs", "log_dir"} & settings.keys():
        settings["data_dir"] = None
    handle = ThreadedBroker(test_hooks, **settings)
    try:
        yield handle.start()
    finally:
        handle.stop()


def main(argv: list[str] | None = None) -> int:
    """`ottla serve` with test hooks, for a broker in its own process (the compat matrix)."""
    parser = argparse.ArgumentParser(prog="python -m ottla.testing", description="ottla serve, with test hooks")
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--drop-produce-response-every", type=int, default=0, metavar="N", help=TestHooks.__doc__)
    parser.add_argument(
        "--fault", action="append", default=[], type=json.loads, metavar="JSON",
        help="a fault set from the start, as Faults.add's keyword arguments in a JSON object; repeatable",
    )
    hooks, rest = parser.parse_known_args(argv)
    return serve(["serve", *rest], TestHooks(drop_produce_response_every=hooks.drop_produce_response_every, faults=tuple(hooks.fault)))


if __name__ == "__main__":
    raise SystemExit(main())
