"""A private PostgreSQL server per test session (per xdist worker): compat/postgres.py.

Without PostgreSQL's binaries the tests here skip, and fail under CI=true, where
`python -m compat.install` must have provided Debian's `postgresql` package.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest
from unavailable import unavailable

from compat.postgres import PostgresUnavailable, PrivatePostgres

if TYPE_CHECKING:
    import asyncpg


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    try:
        server = PrivatePostgres()
    except PostgresUnavailable as exc:
        unavailable(str(exc))
    with server:
        yield server


@pytest.fixture
async def postgres_url(private_postgres: PrivatePostgres) -> str:
    """The session server's database, seen through a schema of this test's own: the URL sets
    search_path, so a test starts from an empty schema at the cost of one CREATE SCHEMA."""
    try:
        import asyncpg
    except ImportError:
        unavailable("asyncpg is not installed: pip install -e '.[test]'")
    schema = f"test_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(private_postgres.url)
    try:
        await connection.execute(f"CREATE SCHEMA {schema}")
    finally:
        await connection.close()
    return f"{private_postgres.url}?search_path={schema}"


@pytest.fixture
async def pool(postgres_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool of two connections on the test's schema, migrated to the latest schema version."""
    from ottla.storage.postgresql import migrate, open_pool

    pool = await open_pool(postgres_url, size=2)
    async with pool.acquire() as connection:
        await migrate(connection)
    yield pool
    await pool.close()
