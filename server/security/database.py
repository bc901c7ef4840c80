"""SCRAM credentials, ACLs, client quotas, group configs, delegation tokens, finalized features and dynamic broker configs over PostgreSQL:
one set for every broker on the database, as Kafka's metadata log gives every broker of a
cluster one set.

The stores stay what they are on the local engine (ScramCredentialStore, Authorizer,
ClientQuotas, GroupConfigs, DelegationTokens, FinalizedFeatures, BrokerConfigs): synchronous, in memory, read by every login and decision. Over
PostgreSQL their `record_change` hook is set, so a change is made in memory as before and,
instead of replacing a file, queued here; one task writes the queued changes to the database in
order (storage/postgresql/metadata.py: row by row, so changes through two brokers at once both
land), retrying while the database is away, and after each tells the other brokers which table
changed (notify.News.METADATA). A broker that hears it reads that table again and resets its
store to it. `durable_metadata_writes` holds the answer of an API that changes these tables until
what it queued is written, so a client that has its answer finds the change on every broker
once that broker has heard of it, and after any restart. While the database is away such an
answer waits (the client's request timeout ends it; its retry changes nothing twice).

A table is read again only once this broker's own queued changes are written, and read again if
more were queued meanwhile, so a reload never leaves out a change this broker made. A listener
that reconnects (cluster/database.py) reads every table again: news sent while it was away is
lost.

The first broker on a new database finalizes its release's feature levels there; the others
take the database's.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import asyncpg

from ottla.server.cluster.reloads import CoalescingReloads
from ottla.server.context import RequestContext
from ottla.server.security.authorizer import Acl, Authorizer, make_acl
from ottla.server.security.quotas import ClientQuotas, Entity
from ottla.server.security.sasl.credentials import ScramCredentialStore
from ottla.server.security.sasl.scram import ScramCredential, ScramMechanism
from ottla.storage.postgresql import metadata, notify
from ottla.storage.postgresql.engine import DATABASE_UNAVAILABLE
from ottla.wire.api import ApiKey
from ottla.wire.header import RequestHeader

if TYPE_CHECKING:
    from ottla.server.broker_configs import BrokerConfigs
    from ottla.server.features import FinalizedFeatures
    from ottla.server.groups.group_configs import GroupConfigs
    from ottla.server.security.tokens import DelegationTokens, Token

log = logging.getLogger("ottla.security.database")

_FIRST_RETRY_S = 0.1
_LAST_RETRY_S = 1.0

Handle = Callable[[RequestContext, RequestHeader, Any], Any]

# The APIs whose handlers change these tables: their answers wait for the change to be written.
METADATA_WRITES = frozenset(
    {
        ApiKey.ALTER_USER_SCRAM_CREDENTIALS, ApiKey.CREATE_ACLS, ApiKey.DELETE_ACLS, ApiKey.ALTER_CLIENT_QUOTAS,
        ApiKey.INCREMENTAL_ALTER_CONFIGS, ApiKey.ALTER_CONFIGS, ApiKey.CREATE_DELEGATION_TOKEN, ApiKey.RENEW_DELEGATION_TOKEN,
        ApiKey.EXPIRE_DELEGATION_TOKEN, ApiKey.UPDATE_FEATURES,
    }
)


def _credentials(stored: list[metadata.StoredCredential]) -> dict[str, dict[ScramMechanism, ScramCredential]]:
    credentials: dict[str, dict[ScramMechanism, ScramCredential]] = {}
    for row in stored:
        mechanism = ScramMechanism.by_name(row.mechanism)
        if mechanism is not None:
            credentials.setdefault(row.user, {})[mechanism] = ScramCredential(row.salt, row.stored_key, row.server_key, row.iterations)
    return credentials


TokenRow = tuple[str, str, str, tuple[str, ...], int, int, int]


def _token_rows(stored: list[metadata.StoredToken]) -> list[TokenRow]:
    return [(t.token_id, t.owner, t.requester, t.renewers, t.issue_ms, t.expiry_ms, t.max_ms) for t in stored]


def _stored_token(token: Token) -> metadata.StoredToken:
    return metadata.StoredToken(token.token_id, token.owner, token.requester, token.renewers, token.issue_ms, token.expiry_ms, token.max_ms)


def _acl_row(acl: Acl) -> metadata.AclRow:
    return (
        int(acl.resource_type), acl.resource_name, int(acl.pattern_type), acl.principal, acl.host, int(acl.operation), int(acl.permission_type)
    )


class DatabaseMetadata:
    """The broker's stores of these tables over one database, their queued writes and their reloads."""

    def __init__(self, pool: asyncpg.Pool, channel: str, node_id: int, scram: ScramCredentialStore, tokens: list[TokenRow]) -> None:
        self._pool = pool
        self._channel = channel
        self._node_id = node_id
        self.scram = scram
        scram.record_change = self._scram_changed
        self._authorizer: Authorizer | None = None
        self._quotas: ClientQuotas | None = None
        self._group_configs: GroupConfigs | None = None
        self._tokens: DelegationTokens | None = None
        self._features: FinalizedFeatures | None = None
        self._broker_configs: BrokerConfigs | None = None
        # The tokens as last read, for the store opened on first use.
        self._token_rows = tokens
        # The queued writes: (table, write), oldest first; the first is being written.
        self._queued: deque[tuple[str, Callable[[], Awaitable[None]]]] = deque()
        self._appended = 0  # writes ever queued
        self._written = 0  # of those, written (or dropped for good)
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # Tables being read again, and whether news came meanwhile (read once more then).
        self._reloads: CoalescingReloads[str] = CoalescingReloads()

    @classmethod
    async def open(cls, pool: asyncpg.Pool, node_id: int) -> DatabaseMetadata:
        """The SCRAM credentials and the delegation tokens read from the database (the other
        tables are read as their stores are attached)."""
        channel = await notify.channel_of(pool)
        scram = ScramCredentialStore(None, _credentials(await metadata.load_credentials(pool)))
        return cls(pool, channel, node_id, scram, _token_rows(await metadata.load_tokens(pool)))

    async def attach_authorizer(self, authorizer: Authorizer) -> None:
        """The ACLs are the database's from now on (a file in the data directory is not read)."""
        authorizer.reset(make_acl(*row) for row in await metadata.load_acls(self._pool))
        authorizer.record_change = self._acls_changed
        self._authorizer = authorizer

    async def attach_quotas(self, quotas: ClientQuotas) -> None:
        quotas.reset(await metadata.load_quotas(self._pool))
        quotas.record_change = self._quotas_changed
        self._quotas = quotas

    async def attach_group_configs(self, group_configs: GroupConfigs) -> None:
        group_configs.reset(await metadata.load_group_configs(self._pool))
        group_configs.record_change = self._group_configs_changed
        self._group_configs = group_configs

    async def attach_features(self, features: FinalizedFeatures) -> None:
        """The finalized levels are the database's from now on; `features`' own are the
        database's first, when no broker has finalized any."""
        await metadata.initialize_features(self._pool, features.levels)
        features.reset(*await metadata.load_features(self._pool))
        features.record_change = self._features_changed
        self._features = features

    async def attach_broker_configs(self, configs: BrokerConfigs) -> None:
        """The dynamic broker configs are the database's from now on: this node's (resource
        name its node id) and the cluster default (''), which any broker may change; the file in
        the data directory is not read."""
        self._broker_configs = configs
        self._reset_broker_configs(await metadata.load_broker_configs(self._pool))
        configs.record_change = self._broker_configs_changed

    def attach_tokens(self, tokens: DelegationTokens) -> None:
        """The delegation tokens' store, opened on first use: the tokens as last read."""
        tokens.reset(self._token_rows)
        tokens.record_change = self._tokens_changed
        self._tokens = tokens

    # --- changes made here, queued for the database -----------------------------------------

    def _scram_changed(self, deleted: list[tuple[str, ScramMechanism]], upserted: list[tuple[str, ScramMechanism, ScramCredential]]) -> None:
        deletions = [(user, mechanism.mechanism_name) for user, mechanism in deleted]
        upsertions = [
            metadata.StoredCredential(user, mechanism.mechanism_name, c.salt, c.stored_key, c.server_key, c.iterations) for user, mechanism, c in upserted
        ]
        self._queue(metadata.SCRAM, lambda: metadata.change_credentials(self._pool, deletions, upsertions))

    def _acls_changed(self, added: list[Acl], removed: list[Acl]) -> None:
        added_rows, removed_rows = [_acl_row(acl) for acl in added], [_acl_row(acl) for acl in removed]
        self._queue(metadata.ACLS, lambda: metadata.change_acls(self._pool, added_rows, removed_rows))

    def _quotas_changed(self, changed: dict[Entity, dict[str, float]]) -> None:
        self._queue(metadata.QUOTAS, lambda: metadata.change_quotas(self._pool, changed))

    def _group_configs_changed(self, group_id: str, configs: dict[str, str]) -> None:
        self._queue(metadata.GROUP_CONFIGS, lambda: metadata.change_group_configs(self._pool, group_id, configs))

    def _tokens_changed(self, created: list[Token], renewed: list[Token], removed: list[str]) -> None:
        created_rows, renewed_rows = [_stored_token(token) for token in created], [_stored_token(token) for token in renewed]
        self._queue(metadata.TOKENS, lambda: metadata.change_tokens(self._pool, created_rows, renewed_rows, removed))

    def _features_changed(self, levels: dict[str, int]) -> None:
        self._queue(metadata.FEATURES, lambda: metadata.change_features(self._pool, levels))

    def _broker_configs_changed(self, per_broker: bool, upserted: dict[str, str], deleted: list[str]) -> None:
        resource_name = str(self._node_id) if per_broker else ""
        self._queue(metadata.BROKER_CONFIGS, lambda: metadata.change_broker_configs(self._pool, resource_name, upserted, deleted))

    def _queue(self, table: str, write: Callable[[], Awaitable[None]]) -> None:
        self._queued.append((table, write))
        self._appended += 1
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write_queued())

    async def _write_queued(self) -> None:
        try:
            while self._queued:
                table, write = self._queued[0]
                if await self._write(table, write):
                    await self._tell(table)
                self._queued.popleft()
                self._written += 1
                self._wake()
        finally:
            self._writer = None

    async def _write(self, table: str, write: Callable[[], Awaitable[None]]) -> bool:
        """Write, retrying while the database is away; False when it refused for good."""
        delay = _FIRST_RETRY_S
        while True:
            try:
                await write()
                return True
            except DATABASE_UNAVAILABLE as exc:
                log.warning("a change of %s is not written to PostgreSQL yet, retrying in %.1f s: %s", table, delay, exc)
            except asyncpg.PostgresError as exc:
                log.error("a change of %s was refused by PostgreSQL and is lost: %s", table, exc)
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, _LAST_RETRY_S)

    async def _tell(self, table: str) -> None:
        try:
            await notify.send(self._pool, self._channel, [notify.news_payload(notify.News.METADATA, self._node_id, table)])
        except DATABASE_UNAVAILABLE + (asyncpg.PostgresError,) as exc:
            # The others read it at their listener's next reconnect.
            log.warning("could not tell the other brokers of a change of %s: %s", table, exc)

    def _wake(self) -> None:
        waiting = []
        for target, waiter in self._waiters:
            if target <= self._written:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                waiting.append((target, waiter))
        self._waiters = waiting

    def all_written(self) -> bool:
        return self._written >= self._appended

    async def written(self) -> None:
        """Return once every change queued so far is written."""
        if self.all_written():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((self._appended, waiter))
        await waiter

    # --- changes made by other brokers ------------------------------------------------------

    def heard(self, table: str | None) -> None:
        """Another broker changed `table` (None: any may have changed): read it again."""
        for name in metadata.TABLES if table is None else (table,):
            if name not in metadata.TABLES:
                continue
            task = asyncio.ensure_future(self._reload(name))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _reload(self, table: str) -> None:
        async def reload() -> None:
            while True:
                await self.written()
                queued = self._appended
                reset = await self._read(table)
                if self._appended == queued:
                    reset()
                    return
                # A change made here meanwhile: read the table again once it is written.

        try:
            await self._reloads.run(table, reload)
        except Exception as exc:  # noqa: BLE001 - a reload that failed is redone at the next news or reconnect
            log.warning("reading %s from PostgreSQL again failed: %s", table, exc)

    async def _read(self, table: str) -> Callable[[], None]:
        """The table read; what puts it in its store."""
        if table == metadata.SCRAM:
            credentials = _credentials(await metadata.load_credentials(self._pool))
            return lambda: self.scram.reset(credentials)
        if table == metadata.ACLS:
            acls = [make_acl(*row) for row in await metadata.load_acls(self._pool)]
            return lambda: self._authorizer.reset(acls) if self._authorizer is not None else None
        if table == metadata.QUOTAS:
            quotas = await metadata.load_quotas(self._pool)
            return lambda: self._quotas.reset(quotas) if self._quotas is not None else None
        if table == metadata.GROUP_CONFIGS:
            overrides = await metadata.load_group_configs(self._pool)
            return lambda: self._group_configs.reset(overrides) if self._group_configs is not None else None
        if table == metadata.FEATURES:
            levels, epoch = await metadata.load_features(self._pool)
            return lambda: self._features.reset(levels, epoch) if self._features is not None else None
        if table == metadata.BROKER_CONFIGS:
            configs = await metadata.load_broker_configs(self._pool)
            return lambda: self._reset_broker_configs(configs)
        rows = _token_rows(await metadata.load_tokens(self._pool))
        return lambda: self._reset_tokens(rows)

    def _reset_broker_configs(self, configs: dict[str, dict[str, str]]) -> None:
        if self._broker_configs is not None:
            self._broker_configs.reset(configs.get(str(self._node_id), {}), configs.get("", {}))

    def _reset_tokens(self, rows: list[TokenRow]) -> None:
        self._token_rows = rows
        if self._tokens is not None:
            self._tokens.reset(rows)

    async def close(self, timeout_s: float) -> None:
        """Give the queued changes `timeout_s` to be written, then stop."""
        try:
            await asyncio.wait_for(self.written(), timeout_s)
        except TimeoutError:
            log.warning("stopping with changes of SCRAM credentials, ACLs, quotas, group configs, tokens, features or broker configs not written to PostgreSQL")
        for task in (*self._tasks, *([self._writer] if self._writer is not None else [])):
            task.cancel()


def durable_metadata_writes(
    handlers: Mapping[int, tuple[Handle, int, int]], running: Callable[[], DatabaseMetadata | None]
) -> dict[int, tuple[Handle, int, int]]:
    """The handler table with the answers of the APIs that change these tables held until the
    changes queued by then are written (`running()` is the broker's, None when stopped)."""
    table = dict(handlers)
    for api in METADATA_WRITES:
        if api in table:
            handle, lowest, highest = table[api]
            table[api] = (_durable(handle, running), lowest, highest)
    return table


def _durable(handle: Handle, running: Callable[[], DatabaseMetadata | None]) -> Handle:
    def durable_handle(context: RequestContext, header: RequestHeader, request: Any) -> Any:
        result = handle(context, header, request)
        stores = running()
        if stores is None or (not asyncio.iscoroutine(result) and stores.all_written()):
            return result
        return _answer_when_written(stores, result)

    return durable_handle


async def _answer_when_written(stores: DatabaseMetadata, result: Any) -> Any:
    answer = await result if asyncio.iscoroutine(result) else result
    await stores.written()
    return answer
