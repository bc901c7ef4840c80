"""What Kafka keeps as records in its metadata log, as tables every broker on the database shares:
SCRAM credentials, ACLs, client quotas, group configs, delegation tokens, finalized features
and dynamic broker configs.

The broker decides from in-memory copies of these small tables (every SCRAM login, every
authorized request reads them); here is only their stored form. Each change is written row by
row (an upsert or a delete of exactly what changed, never the whole table replaced), so changes
made through two brokers at once both land; a broker reads a table whole at start and again
when another broker says it changed it (notify.News.METADATA).

Values are plain here (storage knows nothing of the server's types): a credential's mechanism
is its SASL name, an ACL its seven fields as Kafka's codes, a quota entity its sorted
(entity type, name or None) pairs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import asyncpg

# The tables, as notify.News.METADATA names them.
SCRAM = "scram_credentials"
ACLS = "acls"
QUOTAS = "client_quotas"
GROUP_CONFIGS = "group_configs"
TOKENS = "delegation_tokens"
FEATURES = "finalized_features"
BROKER_CONFIGS = "broker_configs"
TABLES = (SCRAM, ACLS, QUOTAS, GROUP_CONFIGS, TOKENS, FEATURES, BROKER_CONFIGS)


@dataclass(slots=True, frozen=True)
class StoredCredential:
    """One user's credential for one SCRAM mechanism (never a password)."""

    user: str
    mechanism: str
    salt: bytes
    stored_key: bytes
    server_key: bytes
    iterations: int


@dataclass(slots=True, frozen=True)
class StoredToken:
    """A delegation token's information; its HMAC is derived from the secret key, never stored."""

    token_id: str
    owner: str
    requester: str
    renewers: tuple[str, ...]
    issue_ms: int
    expiry_ms: int
    max_ms: int


# resource_type, resource_name, pattern_type, principal, host, operation, permission_type
AclRow = tuple[int, str, int, str, str, int, int]
QuotaEntity = tuple[tuple[str, str | None], ...]

_ACL_COLUMNS = "resource_type, resource_name, pattern_type, principal, host, operation, permission_type"


async def load_credentials(pool: asyncpg.Pool) -> list[StoredCredential]:
    rows = await pool.fetch("SELECT user_name, mechanism, salt, stored_key, server_key, iterations FROM scram_credentials")
    return [StoredCredential(row["user_name"], row["mechanism"], row["salt"], row["stored_key"], row["server_key"], row["iterations"]) for row in rows]


async def change_credentials(pool: asyncpg.Pool, deleted: Iterable[tuple[str, str]], upserted: Iterable[StoredCredential]) -> None:
    """Delete (user, mechanism) credentials and upsert others, in one transaction."""
    async with pool.acquire() as connection, connection.transaction():
        for user, mechanism in deleted:
            await connection.execute("DELETE FROM scram_credentials WHERE user_name = $1 AND mechanism = $2", user, mechanism)
        for c in upserted:
            await connection.execute(
                """INSERT INTO scram_credentials (user_name, mechanism, salt, stored_key, server_key, iterations) VALUES ($1, $2, $3, $4, $5, $6)
                   ON CONFLICT (user_name, mechanism) DO UPDATE
                   SET salt = excluded.salt, stored_key = excluded.stored_key, server_key = excluded.server_key, iterations = excluded.iterations""",
                c.user, c.mechanism, c.salt, c.stored_key, c.server_key, c.iterations,
            )


async def load_acls(pool: asyncpg.Pool) -> list[AclRow]:
    rows = await pool.fetch(f"SELECT {_ACL_COLUMNS} FROM acls")
    return [(row[0], row[1], row[2], row[3], row[4], row[5], row[6]) for row in rows]


async def change_acls(pool: asyncpg.Pool, added: Iterable[AclRow], removed: Iterable[AclRow]) -> None:
    """Add ACLs (one already there stays once) and remove others, in one transaction."""
    async with pool.acquire() as connection, connection.transaction():
        for row in added:
            await connection.execute(f"INSERT INTO acls ({_ACL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING", *row)
        for row in removed:
            await connection.execute(
                """DELETE FROM acls WHERE resource_type = $1 AND resource_name = $2 AND pattern_type = $3 AND principal = $4
                   AND host = $5 AND operation = $6 AND permission_type = $7""",
                *row,
            )


async def load_quotas(pool: asyncpg.Pool) -> dict[QuotaEntity, dict[str, float]]:
    rows = await pool.fetch("SELECT entity::text AS entity, quotas::text AS quotas FROM client_quotas")
    loaded: dict[QuotaEntity, dict[str, float]] = {}
    for row in rows:
        entity: QuotaEntity = tuple(sorted((str(pair[0]), pair[1]) for pair in json.loads(row["entity"])))
        loaded[entity] = {key: float(value) for key, value in json.loads(row["quotas"]).items()}
    return loaded


async def change_quotas(pool: asyncpg.Pool, changed: Mapping[QuotaEntity, Mapping[str, float]]) -> None:
    """Each entity's quotas as they now are (an empty mapping: the entity has none), in one transaction."""
    async with pool.acquire() as connection, connection.transaction():
        for entity, quotas in changed.items():
            key = json.dumps([list(pair) for pair in entity])
            if quotas:
                await connection.execute(
                    "INSERT INTO client_quotas (entity, quotas) VALUES ($1::jsonb, $2::jsonb) ON CONFLICT (entity) DO UPDATE SET quotas = excluded.quotas",
                    key, json.dumps(dict(quotas)),
                )
            else:
                await connection.execute("DELETE FROM client_quotas WHERE entity = $1::jsonb", key)


async def load_group_configs(pool: asyncpg.Pool) -> dict[str, dict[str, str]]:
    rows = await pool.fetch("SELECT group_id, configs::text AS configs FROM group_configs")
    return {row["group_id"]: dict(json.loads(row["configs"])) for row in rows}


async def change_group_configs(pool: asyncpg.Pool, group_id: str, configs: Mapping[str, str]) -> None:
    """The group's overrides as they now are (empty: it has none)."""
    if configs:
        await pool.execute(
            "INSERT INTO group_configs (group_id, configs) VALUES ($1, $2::jsonb) ON CONFLICT (group_id) DO UPDATE SET configs = excluded.configs",
            group_id, json.dumps(dict(configs)),
        )
    else:
        await pool.execute("DELETE FROM group_configs WHERE group_id = $1", group_id)


async def load_tokens(pool: asyncpg.Pool) -> list[StoredToken]:
    rows = await pool.fetch("SELECT token_id, owner, requester, renewers::text AS renewers, issue_ms, expiry_ms, max_ms FROM delegation_tokens")
    return [
        StoredToken(row["token_id"], row["owner"], row["requester"], tuple(json.loads(row["renewers"])), row["issue_ms"], row["expiry_ms"], row["max_ms"])
        for row in rows
    ]


async def change_tokens(pool: asyncpg.Pool, created: Iterable[StoredToken], renewed: Iterable[StoredToken], removed: Iterable[str]) -> None:
    """Tokens created, renewed (a new expiry: a token another broker removed meanwhile stays
    removed) and removed (by id), in one transaction."""
    async with pool.acquire() as connection, connection.transaction():
        for token in created:
            await connection.execute(
                """INSERT INTO delegation_tokens (token_id, owner, requester, renewers, issue_ms, expiry_ms, max_ms)
                   VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7)""",
                token.token_id, token.owner, token.requester, json.dumps(list(token.renewers)), token.issue_ms, token.expiry_ms, token.max_ms,
            )
        for token in renewed:
            await connection.execute("UPDATE delegation_tokens SET expiry_ms = $2 WHERE token_id = $1", token.token_id, token.expiry_ms)
        for token_id in removed:
            await connection.execute("DELETE FROM delegation_tokens WHERE token_id = $1", token_id)


async def load_features(pool: asyncpg.Pool) -> tuple[dict[str, int], int]:
    """The finalized levels by feature, and the epoch of the last change."""
    rows = await pool.fetch("SELECT name, level, epoch FROM finalized_features")
    return {row["name"]: int(row["level"]) for row in rows}, max((int(row["epoch"]) for row in rows), default=0)


async def load_broker_configs(pool: asyncpg.Pool) -> dict[str, dict[str, str]]:
    """Every resource name's dynamic broker configs: a node id's, and '' the cluster default's."""
    configs: dict[str, dict[str, str]] = {}
    for row in await pool.fetch("SELECT resource_name, name, value FROM broker_configs"):
        configs.setdefault(row["resource_name"], {})[row["name"]] = row["value"]
    return configs


async def change_broker_configs(pool: asyncpg.Pool, resource_name: str, upserted: Mapping[str, str], deleted: Iterable[str]) -> None:
    """The configs of `resource_name` that changed: set to a new value, or deleted."""
    async with pool.acquire() as connection, connection.transaction():
        for name, value in upserted.items():
            await connection.execute(
                """INSERT INTO broker_configs (resource_name, name, value) VALUES ($1, $2, $3)
                   ON CONFLICT (resource_name, name) DO UPDATE SET value = excluded.value""",
                resource_name, name, value,
            )
        removed = list(deleted)
        if removed:
            await connection.execute("DELETE FROM broker_configs WHERE resource_name = $1 AND name = ANY($2::text[])", resource_name, removed)


async def initialize_features(pool: asyncpg.Pool, levels: Mapping[str, int]) -> None:
    """`levels` finalized at epoch 0 when no broker has finalized any (the first broker on a new
    database, as `kafka-storage format` finalizes its release's levels); else nothing."""
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("LOCK TABLE finalized_features IN SHARE ROW EXCLUSIVE MODE")
        if await connection.fetchval("SELECT count(*) FROM finalized_features"):
            return
        for name, level in levels.items():
            await connection.execute("INSERT INTO finalized_features (name, level, epoch) VALUES ($1, $2, 0)", name, level)


async def change_features(pool: asyncpg.Pool, levels: Mapping[str, int]) -> None:
    """The features' new levels, set at the next epoch (changes from two brokers take turns)."""
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("LOCK TABLE finalized_features IN SHARE ROW EXCLUSIVE MODE")
        epoch = await connection.fetchval("SELECT coalesce(max(epoch), 0) + 1 FROM finalized_features")
        for name, level in levels.items():
            await connection.execute(
                """INSERT INTO finalized_features (name, level, epoch) VALUES ($1, $2, $3)
                   ON CONFLICT (name) DO UPDATE SET level = excluded.level, epoch = excluded.epoch""",
                name, level, epoch,
            )
