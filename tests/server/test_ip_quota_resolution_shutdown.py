"""An `ip` quota named by a host name is resolved in the background (ClientQuotas._map_ips);
a broker that stops while a lookup still runs cancels it, so that no task outlives the broker
("Task was destroyed but it is pending" when its loop closes)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from ottla.server.broker import Broker

QUOTA = {(("ip", "localhost"),): {"connection_creation_rate": 5.0}}


def test_a_stopping_broker_cancels_the_host_name_lookups_still_running(tmp_path) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        broker = Broker(data_dir=tmp_path, port=0, http_port=-1)
        await broker.start()
        # The lookup runs in the loop's executor: with its one worker busy, it stays pending.
        release = threading.Event()
        executor = ThreadPoolExecutor(max_workers=1)
        loop.set_default_executor(executor)
        busy = loop.run_in_executor(None, release.wait)
        try:
            before = asyncio.all_tasks()
            assert broker.services is not None
            # As another broker's change of the table arrives over PostgreSQL.
            broker.services.quotas.reset(dict(QUOTA))
            lookups = asyncio.all_tasks() - before
            assert lookups, "no lookup was started"
            await broker.stop()
            left = [task for task in lookups if not task.done() and not task.cancelling()]
        finally:
            release.set()
            await busy
        await asyncio.gather(*lookups, return_exceptions=True)
        assert left == []

    asyncio.run(scenario())
