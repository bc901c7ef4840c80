"""The PostgreSQL engine's local part (its data directory) keeps Kafka's clean-shutdown marker
as the local engine does (tests/storage/test_clean_shutdown.py): written last at a clean close,
removed at the next connect before its local partitions are opened.

Needs PostgreSQL's binaries (compat/postgres.py): skipped without them, failed under CI."""

from __future__ import annotations

import asyncio
import pathlib

from unavailable import unavailable

from compat.postgres import PostgresUnavailable, PrivatePostgres
from ottla.storage.postgresql.engine import PostgresStorage

MARKER = ".kafka_cleanshutdown"


async def test_the_local_part_keeps_the_marker(tmp_path: pathlib.Path) -> None:
    try:
        server = PrivatePostgres()
    except PostgresUnavailable as exc:
        unavailable(str(exc))
    with server:
        storage = await PostgresStorage.connect(server.url, asyncio.Lock, tmp_path)
        storage.close()
        await storage.close_database()
        assert (tmp_path / MARKER).read_bytes() == b'{"version":0,"brokerEpoch":-1}'
        storage = await PostgresStorage.connect(server.url, asyncio.Lock, tmp_path)
        assert not (tmp_path / MARKER).exists()
        storage.close()
        await storage.close_database()
        assert (tmp_path / MARKER).exists()
