"""server/cluster/reloads.py: news during a reload makes it run exactly once more, however much
news came; news after it ended starts a new one; a failed reload ends its run and lets the
next news start afresh."""

from __future__ import annotations

import asyncio

import pytest

from ottla.server.cluster.reloads import CoalescingReloads


async def test_news_during_a_reload_runs_it_once_more() -> None:
    reloads: CoalescingReloads[str] = CoalescingReloads()
    started, release = asyncio.Event(), asyncio.Event()
    runs: list[str] = []

    async def reload() -> None:
        runs.append("run")
        started.set()
        await release.wait()

    first = asyncio.ensure_future(reloads.run("acls", reload))
    await started.wait()
    for _ in range(5):  # a burst of news while the first read is out
        await reloads.run("acls", reload)
    await reloads.run("quotas", lambda: asyncio.sleep(0))  # another key runs at once
    release.set()
    await first
    assert runs == ["run", "run"]
    await reloads.run("acls", reload)
    assert runs == ["run", "run", "run"]


async def test_a_failed_reload_ends_its_run() -> None:
    reloads: CoalescingReloads[bool] = CoalescingReloads()

    async def failing() -> None:
        raise ConnectionError("database away")

    with pytest.raises(ConnectionError):
        await reloads.run(True, failing)
    ran: list[bool] = []

    async def succeeding() -> None:
        ran.append(True)

    await reloads.run(True, succeeding)
    assert ran == [True]
