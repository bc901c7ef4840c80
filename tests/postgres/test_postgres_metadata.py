"""server/security/database.py's rules on a real PostgreSQL, without brokers: two brokers' stores
over one schema. A change is in the database once `written()` returns; changes made through two
brokers at once both land (row by row, never a whole table replaced); a table read again after
another broker's news never loses a change this broker made and had not written yet; and the
stores read at start are the database's."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest

from ottla.server.security.authorizer import Acl, AclFilter, AclOperation, AclPermissionType, Authorizer, PatternType, ResourceType
from ottla.server.security.database import DatabaseMetadata
from ottla.server.security.sasl.scram import ScramMechanism
from ottla.storage.postgresql import metadata, migrate, open_pool

_DEADLINE_S = 30.0


def _deny(topic: str) -> Acl:
    return Acl(ResourceType.TOPIC, topic, PatternType.LITERAL, "User:alice", "*", AclOperation.READ, AclPermissionType.DENY)


async def _until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + _DEADLINE_S
    while not check():
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.02)


async def _broker(pool: asyncpg.Pool, node_id: int) -> tuple[DatabaseMetadata, Authorizer]:
    stores = await DatabaseMetadata.open(pool, node_id)
    authorizer = Authorizer(None, frozenset(), False)
    await stores.attach_authorizer(authorizer)
    return stores, authorizer


@pytest.fixture
async def pools(postgres_url: str) -> AsyncIterator[tuple[asyncpg.Pool, asyncpg.Pool]]:
    first, second = await open_pool(postgres_url, 2), await open_pool(postgres_url, 2)
    async with first.acquire() as connection:
        await migrate(connection)
    yield first, second
    await first.close()
    await second.close()


async def test_changes_through_two_brokers_both_land_and_a_reload_keeps_unwritten_ones(pools: tuple[asyncpg.Pool, asyncpg.Pool]) -> None:
    (one, authorizer_one), (two, authorizer_two) = await _broker(pools[0], 1), await _broker(pools[1], 2)

    # Made through both at once: both rows in the database.
    authorizer_one.create([_deny("a")])
    authorizer_two.create([_deny("b")])
    await asyncio.gather(one.written(), two.written())
    assert {row[1] for row in await metadata.load_acls(pools[0])} == {"a", "b"}

    # Broker 2 hears broker 1's news with a change of its own still queued: once both are
    # written and read, it has every ACL, its own included.
    authorizer_two.create([_deny("c")])
    two.heard(metadata.ACLS)
    await _until(lambda: set(authorizer_two.acls) == {_deny("a"), _deny("b"), _deny("c")}, "broker 2 has a, b and c")
    one.heard(None)
    await _until(lambda: set(authorizer_one.acls) == {_deny("a"), _deny("b"), _deny("c")}, "broker 1 reads every table again")

    # A deletion is of the rows it matched, and reaches the other broker when told.
    matched = authorizer_one.delete([AclFilter(ResourceType.TOPIC, "a", PatternType.LITERAL, None, None, AclOperation.ANY, AclPermissionType.ANY)])
    assert matched == [[_deny("a")]]
    await one.written()
    two.heard(metadata.ACLS)
    await _until(lambda: set(authorizer_two.acls) == {_deny("b"), _deny("c")}, "broker 2 lost a")

    # SCRAM credentials: upserted through one, read by a broker opened afterwards.
    mechanism = ScramMechanism.by_name("SCRAM-SHA-256")
    assert mechanism is not None
    credential = mechanism.credential_from_password("alice-secret", 4096)
    one.scram.apply([], [("alice", mechanism, credential)])
    await one.written()
    three, authorizer_three = await _broker(pools[1], 3)
    assert three.scram.get("alice", mechanism) == credential
    assert set(authorizer_three.acls) == {_deny("b"), _deny("c")}
    for stores in (one, two, three):
        await stores.close(1.0)

