"""storage/postgresql/migrations.py on a real server: migrations apply once, each atomically,
and a database this code cannot use refuses with a clear error before anything changes."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from ottla.storage.postgresql import LATEST, MIGRATIONS, Migration, SchemaError, migrate


async def _tables(connection: asyncpg.Connection) -> set[str]:
    rows = await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    return {row["tablename"] for row in rows}


async def test_a_new_database_is_migrated_once_even_by_brokers_starting_together(postgres_url):
    connections = [await asyncpg.connect(postgres_url) for _ in range(3)]
    try:
        versions = await asyncio.gather(*(migrate(connection) for connection in connections))
        assert versions == [LATEST] * 3
        assert await migrate(connections[0]) == LATEST
        assert {"schema_migrations", "topics", "partitions", "batches"} <= await _tables(connections[0])
        recorded = await connections[0].fetch("SELECT version, name, checksum FROM schema_migrations ORDER BY version")
        assert [(r["version"], r["name"], r["checksum"]) for r in recorded] == [
            (m.version, m.name, m.checksum) for m in MIGRATIONS
        ]
    finally:
        for connection in connections:
            await connection.close()


async def test_a_database_newer_than_the_code_or_migrated_differently_refuses_to_start(postgres_url):
    connection = await asyncpg.connect(postgres_url)
    try:
        await migrate(connection)
        await connection.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, 'from the future', '')", LATEST + 1
        )
        with pytest.raises(SchemaError, match=f"at version {LATEST + 1}, newer than this Ottla knows"):
            await migrate(connection)
        await connection.execute("DELETE FROM schema_migrations WHERE version = $1", LATEST + 1)

        edited = (Migration(1, MIGRATIONS[0].name, MIGRATIONS[0].sql + "\n-- edited"), *MIGRATIONS[1:])
        with pytest.raises(SchemaError, match="migration 1 .* differs"):
            await migrate(connection, edited)
    finally:
        await connection.close()


async def test_a_failing_migration_leaves_no_trace_and_is_tried_again(postgres_url):
    failing = Migration(LATEST + 1, "half done", "CREATE TABLE half_done (a integer); SELECT 1 / 0;")
    connection = await asyncpg.connect(postgres_url)
    try:
        with pytest.raises(asyncpg.DivisionByZeroError):
            await migrate(connection, (*MIGRATIONS, failing))
        assert "half_done" not in await _tables(connection)
        assert await connection.fetchval("SELECT max(version) FROM schema_migrations") == LATEST

        fixed = Migration(LATEST + 1, "half done", "CREATE TABLE half_done (a integer);")
        assert await migrate(connection, (*MIGRATIONS, fixed)) == LATEST + 1
        assert "half_done" in await _tables(connection)
    finally:
        await connection.close()
