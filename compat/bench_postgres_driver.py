"""asyncpg vs psycopg 3 (async) for the PostgreSQL engine: which driver costs the broker less.

    python -m compat.bench_postgres_driver [--ops 2000] [--big-ops 200] [--rounds 5] [--pool 4]

On a private server (compat/postgres.py), the two statements the engine's hot path is made of:

* `small`: a single-row ``INSERT ... RETURNING`` of 100 bytes, one round trip each (an append's
  offset assignment is one such statement per batch);
* `64KiB`: a single-row insert of a 64 KiB bytea (a produce batch stored as it arrived).

Each through a prepared statement, on one connection (sequential round trips) and on a pool of
`--pool` connections driven by as many concurrent tasks (asyncpg's pool without its reset query
at each release, which costs a second round trip per borrowed connection: the engine keeps no
session state there; psycopg's pool sends nothing on release while no transaction is open). The drivers run interleaved, round by
round, so a busy machine's load falls on both alike; the figures are medians over the rounds:
operations per second (wall clock) and client CPU per operation (`time.process_time`: this
process's own work, the part that would load a broker's event loop, and far less sensitive to
other processes than the wall clock).

The role runs with synchronous_commit off: the WAL flush at each commit is the server's cost,
the same whatever the driver, and on a shared disk its variance would drown the difference being
measured. Not a test: figures depend on the machine. psycopg is not a dependency of ours:
`pip install 'psycopg[binary]' psycopg-pool` before running it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from compat.postgres import PrivatePostgres

RERUN = "python -m compat.bench_postgres_driver"
SMALL_PAYLOAD = b"x" * 100
BIG_PAYLOAD = bytes(range(256)) * 256  # 64 KiB
TABLE = "CREATE TABLE bench (id bigserial PRIMARY KEY, tag integer NOT NULL, payload bytea NOT NULL)"

Insert = Callable[[int, bytes], Awaitable[int]]


class Driver:
    """One driver's connection and pool, each with the insert as a prepared statement."""

    name = ""

    async def open(self, url: str, pool_size: int) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    def single(self) -> Insert:
        """The insert on the one connection."""
        raise NotImplementedError

    def pooled(self) -> Insert:
        """The insert on a connection borrowed from the pool for that statement."""
        raise NotImplementedError


class Asyncpg(Driver):
    name = "asyncpg"
    SQL = "INSERT INTO bench (tag, payload) VALUES ($1, $2) RETURNING id"

    async def open(self, url: str, pool_size: int) -> None:
        import asyncpg

        async def keep_session(conn: Any) -> None:
            """The pool's default reset sends a second query (advisory unlock, CLOSE ALL, UNLISTEN,
            RESET ALL) at every release; the engine keeps no session state on pooled connections."""

        self.conn = await asyncpg.connect(url)
        self.statement = await self.conn.prepare(self.SQL)
        # The pool's connections prepare each statement once and cache it (statement_cache_size).
        self.pool = await asyncpg.create_pool(url, min_size=pool_size, max_size=pool_size, reset=keep_session)

    async def close(self) -> None:
        await self.conn.close()
        await self.pool.close()

    def single(self) -> Insert:
        async def insert(tag: int, payload: bytes) -> int:
            value: int = await self.statement.fetchval(tag, payload)
            return value

        return insert

    def pooled(self) -> Insert:
        async def insert(tag: int, payload: bytes) -> int:
            async with self.pool.acquire() as conn:
                value: int = await conn.fetchval(self.SQL, tag, payload)
                return value

        return insert


class Psycopg(Driver):
    name = "psycopg"
    SQL = "INSERT INTO bench (tag, payload) VALUES (%s, %s) RETURNING id"

    async def open(self, url: str, pool_size: int) -> None:
        import psycopg
        import psycopg_pool

        self.conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
        self.pool = psycopg_pool.AsyncConnectionPool(
            url, min_size=pool_size, max_size=pool_size, kwargs={"autocommit": True}, open=False
        )
        await self.pool.open(wait=True)

    async def close(self) -> None:
        await self.conn.close()
        await self.pool.close()

    def single(self) -> Insert:
        async def insert(tag: int, payload: bytes) -> int:
            cursor = await self.conn.execute(self.SQL, (tag, payload), prepare=True)
            row = await cursor.fetchone()
            assert row is not None
            value: int = row[0]
            return value

        return insert

    def pooled(self) -> Insert:
        async def insert(tag: int, payload: bytes) -> int:
            async with self.pool.connection() as conn:
                cursor = await conn.execute(self.SQL, (tag, payload), prepare=True)
                row = await cursor.fetchone()
                assert row is not None
                value: int = row[0]
                return value

        return insert


async def _measure(insert: Insert, ops: int, payload: bytes, tasks: int) -> tuple[float, float]:
    """(operations per second, client CPU µs per operation) for `ops` inserts spread over
    `tasks` concurrent tasks."""

    async def worker(first: int, count: int) -> None:
        for tag in range(first, first + count):
            await insert(tag, payload)

    share = ops // tasks
    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker(i * share, share) for i in range(tasks)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    done = share * tasks
    return done / wall, cpu / done * 1e6


async def run(url: str, ops: int, big_ops: int, rounds: int, pool_size: int) -> dict[tuple[str, str], list[tuple[float, float]]]:
    drivers: list[Driver] = [Asyncpg(), Psycopg()]
    for driver in drivers:
        await driver.open(url, pool_size)
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    try:
        for round_ in range(rounds + 1):  # round 0 warms both up (plans, caches) and is dropped
            for driver in drivers if round_ % 2 == 0 else reversed(drivers):
                for case, payload, count in (("small", SMALL_PAYLOAD, ops), ("64KiB", BIG_PAYLOAD, big_ops)):
                    for mode, insert, tasks in (("1 conn", driver.single(), 1), (f"pool {pool_size}", driver.pooled(), pool_size)):
                        figures = await _measure(insert, count if round_ else max(count // 10, pool_size), payload, tasks)
                        if round_:
                            results.setdefault((driver.name, f"{case}, {mode}"), []).append(figures)
    finally:
        for driver in drivers:
            await driver.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=2000, help="small inserts per case and round")
    parser.add_argument("--big-ops", type=int, default=200, help="64 KiB inserts per case and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pool", type=int, default=4, help="pool size, and concurrent tasks on it")
    args = parser.parse_args()
    with PrivatePostgres() as pg:
        _create_table(pg)
        results = asyncio.run(run(pg.url, args.ops, args.big_ops, args.rounds, args.pool))
    print(f"# {RERUN} --ops {args.ops} --big-ops {args.big_ops} --rounds {args.rounds} --pool {args.pool}")
    print(f"{'case':<22}{'driver':<10}{'ops/s (median)':>16}{'client CPU µs/op':>18}")
    for case in dict.fromkeys(case for _, case in results):
        for name in ("asyncpg", "psycopg"):
            rows = results[(name, case)]
            rate = statistics.median(r for r, _ in rows)
            cpu = statistics.median(c for _, c in rows)
            print(f"{case:<22}{name:<10}{rate:>16,.0f}{cpu:>18,.1f}")
    return 0


def _create_table(pg: PrivatePostgres) -> None:
    import asyncpg

    async def create() -> None:
        conn = await asyncpg.connect(pg.url)
        try:
            await conn.execute(TABLE)
            await conn.execute(f'ALTER ROLE "{pg.user}" SET synchronous_commit = off')
        finally:
            await conn.close()

    asyncio.run(create())


if __name__ == "__main__":
    sys.exit(main())
