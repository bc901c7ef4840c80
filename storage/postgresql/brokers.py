"""Brokers over one database: registrations with a lease, and partition leadership claims.

A broker registers its node id with a fresh incarnation id and a lease that lapses
`lease_ms` after the database's clock says it was renewed (the database's clock, so that
brokers whose clocks disagree still agree on who is live). A node id whose row holds another
incarnation's live lease is taken: `register` answers False and the caller waits for it to
lapse (a restart after a crash) or gives up (a second process with the same id), as Kafka's
controller refuses a duplicate broker registration until the old session times out.

Leadership is claimed by the node that computes itself the leader of a partition:
`claim_leadership` sets `leader_id` and bumps `leader_epoch` only on the rows whose leader
changes, so epochs only grow however often brokers come and go. A new partition's first
leader keeps epoch 0, as Kafka's does, so a topic just created does not fence the clients
that saw it before its first claim.

Membership runs on connections of its own (`open_membership_pool`), never on the engine's
pool: under load that pool is queued with appends, and a renewal that waits behind them lets a
healthy broker's lease lapse, its partitions move, and clients time out and resend.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import asyncpg


@dataclass(slots=True, frozen=True)
class BrokerEndpoint:
    """Where a broker's listener is reached, as clients are told."""

    host: str
    port: int


@dataclass(slots=True, frozen=True)
class LiveBroker:
    node_id: int
    rack: str | None
    endpoints: Mapping[str, BrokerEndpoint]


_REGISTER = """
INSERT INTO brokers (node_id, incarnation, rack, endpoints, lease_expires_at)
VALUES ($1, $2, $3, $4::jsonb, now() + $5 * interval '1 millisecond')
ON CONFLICT (node_id) DO UPDATE
    SET incarnation = EXCLUDED.incarnation, rack = EXCLUDED.rack, endpoints = EXCLUDED.endpoints,
        lease_expires_at = EXCLUDED.lease_expires_at, registered_at = now()
    WHERE brokers.incarnation = EXCLUDED.incarnation OR brokers.lease_expires_at <= now()
RETURNING node_id
"""
_RENEW = """
UPDATE brokers SET lease_expires_at = now() + $3 * interval '1 millisecond'
WHERE node_id = $1 AND incarnation = $2
RETURNING node_id
"""
_DEREGISTER = "DELETE FROM brokers WHERE node_id = $1 AND incarnation = $2"
_LIVE = "SELECT node_id, rack, endpoints::text AS endpoints FROM brokers WHERE lease_expires_at > now() ORDER BY node_id"
# Both parts see the rows as they were before the statement: `moved` the rows whose leader
# changes, the SELECT those this node held already, so each claimed row held now is answered once.
_CLAIM = """
WITH claimed AS (
    SELECT * FROM unnest($2::uuid[], $3::integer[]) AS c(topic_id, partition_index)
), moved AS (
    UPDATE partitions p SET leader_id = $1, leader_epoch = p.leader_epoch + CASE WHEN p.leader_id = -1 THEN 0 ELSE 1 END
    FROM claimed
    WHERE p.topic_id = claimed.topic_id AND p.partition_index = claimed.partition_index AND p.leader_id <> $1
    RETURNING p.topic_id, p.partition_index, p.leader_epoch
)
SELECT topic_id, partition_index, leader_epoch, true AS moved FROM moved
UNION ALL
SELECT p.topic_id, p.partition_index, p.leader_epoch, false FROM partitions p JOIN claimed USING (topic_id, partition_index)
WHERE p.leader_id = $1
"""
_LEADERS = "SELECT topic_id, partition_index, leader_id, leader_epoch FROM partitions"


async def open_membership_pool(url: str) -> asyncpg.Pool:
    """One connection, kept open and replaced when it breaks, for one kind of membership work
    (the lease, or leadership claims): its queries wait behind each other's, never behind an
    append. No session state is kept on it, so the reset query at each release is skipped."""

    async def keep_session(connection: asyncpg.Connection) -> None:
        return None

    return await asyncpg.create_pool(url, min_size=1, max_size=1, reset=keep_session)


def _endpoints_json(endpoints: Mapping[str, BrokerEndpoint]) -> str:
    return json.dumps({listener: [endpoint.host, endpoint.port] for listener, endpoint in endpoints.items()})


async def register(
    pool: asyncpg.Pool, node_id: int, incarnation: uuid.UUID, rack: str | None, endpoints: Mapping[str, BrokerEndpoint], lease_ms: int
) -> bool:
    """Register (or re-register) this incarnation of `node_id` with a fresh lease; False while
    another incarnation holds a live lease on the id."""
    row = await pool.fetchrow(_REGISTER, node_id, incarnation, rack, _endpoints_json(endpoints), lease_ms)
    return row is not None


async def renew(pool: asyncpg.Pool, node_id: int, incarnation: uuid.UUID, lease_ms: int) -> bool:
    """Extend this incarnation's lease; False when its row is gone or another incarnation's."""
    return await pool.fetchrow(_RENEW, node_id, incarnation, lease_ms) is not None


async def deregister(pool: asyncpg.Pool, node_id: int, incarnation: uuid.UUID) -> None:
    """A clean shutdown: the row goes, so the others stop counting the node at once."""
    await pool.execute(_DEREGISTER, node_id, incarnation)


async def live_brokers(pool: asyncpg.Pool) -> list[LiveBroker]:
    """The brokers whose lease has not lapsed by the database's clock, by node id."""
    return [
        LiveBroker(
            row["node_id"],
            row["rack"],
            {listener: BrokerEndpoint(host, port) for listener, (host, port) in json.loads(row["endpoints"]).items()},
        )
        for row in await pool.fetch(_LIVE)
    ]


@dataclass(slots=True, frozen=True)
class Claim:
    leader_epoch: int
    moved: bool  # the leader changed: the others are to reload the claims


async def claim_leadership(pool: asyncpg.Pool, node_id: int, partitions: Iterable[tuple[uuid.UUID, int]]) -> dict[tuple[uuid.UUID, int], Claim]:
    """Make `node_id` the leader of `partitions`: the epoch of each it holds now, and whether
    this claim moved it. A partition held already is answered too, so a caller whose copy of
    the claims went stale (a reload that read them before its own claim landed) is put right."""
    topic_ids, indexes = [], []
    for topic_id, index in partitions:
        topic_ids.append(topic_id)
        indexes.append(index)
    if not topic_ids:
        return {}
    rows = await pool.fetch(_CLAIM, node_id, topic_ids, indexes)
    return {(row["topic_id"], row["partition_index"]): Claim(row["leader_epoch"], row["moved"]) for row in rows}


async def leaders(pool: asyncpg.Pool) -> dict[tuple[uuid.UUID, int], tuple[int, int]]:
    """Every partition's last claimed (leader id, leader epoch)."""
    return {(row["topic_id"], row["partition_index"]): (row["leader_id"], row["leader_epoch"]) for row in await pool.fetch(_LEADERS)}

