"""A catalogue reload racing this broker's own topic changes on the PostgreSQL engine: a reload
whose read of the database began before a change here was committed must not undo that change
when it lands after it (a topic just created gone from Metadata, a deleted one back)."""

from __future__ import annotations

import asyncio

import pytest

from ottla.storage.postgresql.engine import PostgresStorage

pytestmark = pytest.mark.external

# Topics of this many partitions make the catalogue's read long enough for a change to land inside it.
_FILLER_TOPICS, _FILLER_PARTITIONS = 20, 100
_ROUNDS = 30


async def _racing(storage: PostgresStorage) -> asyncio.Future[list[tuple[str, int]]]:
    """A reload whose read of the catalogue is on its way when this returns."""
    reload = asyncio.ensure_future(storage.reload_catalogue())
    await asyncio.sleep(0)
    return reload


async def test_a_reload_read_before_a_topic_was_created_or_deleted_here_does_not_undo_it(postgres_url: str) -> None:
    storage = await PostgresStorage.connect(postgres_url, asyncio.Lock, None)
    try:
        for index in range(_FILLER_TOPICS):
            await storage.create_database_topic(f"filler-{index}", _FILLER_PARTITIONS)
        forgotten, revived = [], []
        for index in range(_ROUNDS):
            name = f"raced-{index}"
            reload = await _racing(storage)
            await storage.create_database_topic(name, 1)
            await reload
            if storage.topic(name) is None:
                forgotten.append(name)
                await storage.reload_catalogue()
            reload = await _racing(storage)
            await storage.delete_database_topic(name)
            await reload
            if storage.topic(name) is not None:
                revived.append(name)
        assert (forgotten, revived) == ([], [])
    finally:
        await storage.close_database()
