"""The PostgreSQL storage engine: `ottla serve --storage postgresql://...` (engine.PostgresStorage).

Stateless brokers over one PostgreSQL database: topics, partitions and record batches live in a
schema the engine creates and migrates itself (`migrations`), and a partition's log
(`log.PostgresPartitionLog`) assigns offsets in the transaction that stores a batch, under the
partition row's lock, so two brokers can never hand out the same offset.

The driver is asyncpg (the `postgresql` extra; compat/bench_postgres_driver.py says why), so
this part of storage is async, unlike the local engine; it still imports no asyncio of its own.
"""

from ottla.storage.postgresql.log import AppendedRange, PostgresPartitionLog, StoredRead, create_topic, open_pool
from ottla.storage.postgresql.migrations import LATEST, MIGRATIONS, Migration, SchemaError, migrate

__all__ = [
    "AppendedRange",
    "LATEST",
    "MIGRATIONS",
    "Migration",
    "PostgresPartitionLog",
    "SchemaError",
    "StoredRead",
    "create_topic",
    "migrate",
    "open_pool",
]
