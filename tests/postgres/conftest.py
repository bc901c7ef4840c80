"""A private PostgreSQL server per test session (per xdist worker): compat/postgres.py.

Without PostgreSQL's binaries the tests here skip, and fail under CI=true, where
`python -m compat.install` must have provided Debian's `postgresql` package.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from unavailable import unavailable

from compat.postgres import PostgresUnavailable, PrivatePostgres


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    try:
        server = PrivatePostgres()
    except PostgresUnavailable as exc:
        unavailable(str(exc))
    with server:
        yield server
