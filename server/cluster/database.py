"""Cluster mode over PostgreSQL: one node per process, any number of processes on one database.

The handlers see what they see of an in-process cluster (`services.cluster`, a ClusterState):
nodes, their endpoints, each partition's replicas, leader and leader epoch, and coordinators
placed on the leaders of `__consumer_offsets` / `__transaction_state` partitions
(coordinators.py). What differs is where the topology comes from:

- The nodes are the brokers with a live lease in the database's `brokers` table
  (storage/postgresql/brokers.py): each broker renews its own every
  `broker.heartbeat.interval.ms` and the others count it until `broker.session.timeout.ms`
  passes without a renewal. A broker that cannot renew stops counting ITSELF a third of a
  session before its lease can lapse, so it never claims a partition another broker may
  already have taken over. The lease, and the live set read with it, go over a connection of
  their own, and leadership claims over another (brokers.open_membership_pool): the engine's
  bounded pool is queued with appends under load, and a healthy broker whose renewal waited
  there would give its partitions up, and clients would time out and resend what they had
  sent. The renewals run in a thread of their own (LeaseKeeper), so a busy event loop
  cannot delay them either; the event loop reads the live set every heartbeat and checks then
  that the LISTEN connection still answers.
- Every broker computes the same leaders from the same live set: the striping of
  `place_replicas` over all live nodes (a replica per live node, the leader first), started
  where the topic's name puts it. The data is PostgreSQL's one copy, so every live broker is
  an in-sync replica that can serve a consumer's fetch; only the leader appends.
- A leader epoch is the database's: the node that finds itself the leader of a partition
  claims it, which bumps the epoch there when the leader changes (so epochs only grow), and
  tells the others to reload them. Until a claim lands, a broker reports the last epoch it read.
- Brokers hear of each other's changes on one LISTEN connection each (notify.py): appends
  (new bounds, so fetches parked on any broker wake), topics created, deleted, grown or
  reconfigured, and leadership claims. After a reconnect the listener reloads everything,
  since what was sent while it was away is lost.

The coordinators' topics are database topics placed like any other, so each group's and
transaction's coordinator is the leader of its key's partition and moves with it; a broker
loads the coordinators' state at its start, and a coordinator partition's again when it gains
its leadership (server/coordinator/database.py).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg

from ottla.server.cluster.reloads import CoalescingReloads
from ottla.server.cluster.state import NO_LEADER, ClusterNode, ClusterState, Endpoint, PartitionState, place_replicas, topic_start
from ottla.storage.postgresql import brokers, notify
from ottla.storage.postgresql.engine import DatabaseUnavailable
from ottla.wire.errors import KafkaError

if TYPE_CHECKING:
    from ottla.storage import TopicInfo
    from ottla.storage.postgresql.engine import DatabasePartition, PostgresStorage

log = logging.getLogger(__name__)

# How long before its lease can lapse a broker that cannot renew it stops counting itself live.
_CLAIM_MARGIN = 1 / 3
# A listener connection that broke is opened again after this long.
_RECONNECT_S = 0.5


def _ignore_metadata(table: str | None) -> None:
    return None


async def cancel_until_done(tasks: set[asyncio.Task[None]]) -> None:
    """Cancel every task in `tasks` (a set they leave when done, which may gain tasks meanwhile)
    until none is left. Once is not enough: Python 3.11's asyncio.wait_for returns the result of
    what it awaited when that completes as its task is cancelled, swallowing the cancellation
    (gh-86296, fixed in 3.12), so a loop around one carries on; cancelled again, it ends. What
    a task raised is retrieved, as gather(return_exceptions=True) would."""
    while pending := [task for task in tasks if not task.done()]:
        for task in pending:
            task.cancel()
        done, _ = await asyncio.wait(pending, timeout=_RECONNECT_S)
        for task in done:
            if not task.cancelled():
                task.exception()


class DuplicateNodeId(DatabaseUnavailable):
    """Another live broker holds this node id in the database."""


@dataclass(slots=True)
class SharedLogPartitionState(PartitionState):
    """A partition placed over the live brokers of one PostgreSQL. A client topic's epoch history
    is the database's, which OffsetForLeaderEpoch reads there; what this answers is for an
    internal topic each broker keeps in its local part: a change of leader never truncates it,
    so every epoch up to the current one ends at the log end."""

    def end_offset_for(self, requested_epoch: int, log_end_offset: int) -> tuple[int, int]:
        if requested_epoch == -1 or requested_epoch > self.leader_epoch:
            return -1, -1
        return requested_epoch, log_end_offset


class DatabaseClusterState(ClusterState):
    """The topology as this broker sees it: the live brokers and the epochs the database has."""

    def __init__(self, node_id: int, topics: Callable[[], Iterable[TopicInfo]], on_leader_change: Callable[[str, int, int], None]) -> None:
        super().__init__((), (), None, lambda topic, index: 0, on_leader_change)
        self.node_id = node_id
        self._all_topics = topics
        # (topic id, partition) -> (leader id, leader epoch) as last read from the database.
        self.claims: dict[tuple[bytes, int], tuple[int, int]] = {}

    def set_live(self, live: Sequence[brokers.LiveBroker], counting_self: bool) -> bool:
        """The live brokers (less this one when it may no longer count itself); whether the
        set or an endpoint changed."""
        kept = [broker for broker in live if counting_self or broker.node_id != self.node_id]
        nodes = {broker.node_id: ClusterNode(broker.node_id, broker.rack) for broker in kept}
        endpoints: dict[int, Mapping[str, Endpoint]] = {broker.node_id: broker.endpoints for broker in kept}
        if nodes.keys() == self.nodes.keys() and endpoints == self.endpoints:
            return False
        self.nodes = nodes
        self.endpoints = endpoints
        self.rebuild()
        return True

    def set_claims(self, claims: Mapping[tuple[bytes, int], tuple[int, int]]) -> None:
        self.claims = dict(claims)
        self.rebuild()

    def rebuild(self) -> None:
        """Every known topic's partitions placed again from the live set and the claims; a
        partition whose leader or epoch changed is reported to `on_leader_change`."""
        before = self.topics
        self.topics = {}
        for info in self._all_topics():
            for index in range(info.partitions):
                state = self.partition(info.name, info.topic_id, info.partitions, index)
                known = before.get(info.name)
                old = None if known is None or known[0] != info.topic_id else known[1].get(index)
                if old is None or (old.leader, old.leader_epoch) != (state.leader, state.leader_epoch):
                    self._on_leader_change(info.name, index, state.leader_epoch)

    def partition(self, topic: str, topic_id: bytes, partitions: int, index: int, replication_factor: int = 1) -> PartitionState:
        """Partition `index` placed over every live node, its epoch the database's."""
        known = self.topics.get(topic)
        if known is not None and known[0] == topic_id:
            state = known[1].get(index)
            if state is not None:
                return state
        states: dict[int, PartitionState] = {}
        placed = place_replicas(list(self.nodes.values()), range(partitions), len(self.nodes), topic_start(topic)) if self.nodes else {}
        for each in range(partitions):
            replicas = placed.get(each, ())
            leader = replicas[0] if replicas else NO_LEADER
            epoch = self.claims.get((topic_id, each), (NO_LEADER, 0))[1]
            states[each] = SharedLogPartitionState(replicas, leader, epoch, replicas, [(epoch, 0)])
        self.topics[topic] = (topic_id, states)
        return states[index]

    def led_here(self) -> list[tuple[bytes, int]]:
        """The partitions this broker leads whose last claim in the database is not its own."""
        return [
            (topic_id, index)
            for topic_id, states in self.topics.values()
            for index, state in states.items()
            if state.leader == self.node_id and self.claims.get((topic_id, index), (NO_LEADER, 0))[0] != self.node_id
        ]

    # Placement follows the live set alone: what the in-process cluster's controls change is fixed here.
    reassignable = False

    def assign(self, topic: str, topic_id: bytes, indexes: Iterable[int], replication_factor: int,
               assignments: dict[int, tuple[int, ...]] | None = None) -> dict[int, PartitionState]:
        return {index: self.partition(topic, topic_id, max(indexes, default=-1) + 1, index) for index in indexes}

    def forget(self, topic: str) -> None:
        self.topics.pop(topic, None)

    def elect_preferred(self, topic: str, index: int) -> bool:
        return False

    def elect_unclean(self, topic: str, index: int) -> bool:
        return False

    def _save(self) -> None:
        return None


class LeaseKeeper:
    """Renews one incarnation's lease every `heartbeat_s` (timed from the last renewal's start,
    so a slow one does not push the next back) from a thread of its own, over a connection of
    its own, so no work on the broker's event loop can delay it: on a loaded machine that loop
    can take seconds to get round to a timer, and a lease renewed on it lapses although the
    broker and its database are fine. A renewal that finds the row
    gone or fenced registers again. `renewed(sent)` is called in that thread, with the
    time.monotonic() at which a renewal that landed was sent: the lease runs from no earlier."""

    def __init__(
        self,
        url: str,
        node_id: int,
        incarnation: uuid.UUID,
        rack: str | None,
        endpoints: Mapping[str, brokers.BrokerEndpoint],
        lease_ms: int,
        heartbeat_s: float,
        timeout_s: float,
        renewed: Callable[[float], None],
    ) -> None:
        self._url = url
        self._node_id = node_id
        self._incarnation = incarnation
        self._rack = rack
        self._endpoints = endpoints
        self._lease_ms = lease_ms
        self._heartbeat_s = heartbeat_s
        self._timeout_s = timeout_s
        self._renewed = renewed
        self._thread = threading.Thread(target=self._run, name=f"lease-{node_id}", daemon=True)
        self._running = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._thread.start()
        self._running.wait()

    async def stop(self) -> None:
        """Stop renewing; the lease runs on until it lapses or the row is deleted."""
        if self._loop is None or self._task is None:
            return
        self._loop.call_soon_threadsafe(self._task.cancel)
        await asyncio.to_thread(self._thread.join)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop, self._task = loop, loop.create_task(self._keep())
        self._running.set()
        try:
            loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        finally:
            loop.close()

    async def _keep(self) -> None:
        pool: asyncpg.Pool | None = None
        sent = time.monotonic()
        try:
            while True:
                await asyncio.sleep(max(0.0, sent + self._heartbeat_s - time.monotonic()))
                sent = time.monotonic()
                try:
                    if pool is None:
                        pool = await asyncio.wait_for(brokers.open_membership_pool(self._url), self._timeout_s)
                    renewed = await asyncio.wait_for(self._renew(pool), self._timeout_s)
                except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.info("node %s: lease renewal failed: %r", self._node_id, exc)
                    continue
                if renewed:
                    self._renewed(sent)
        finally:
            if pool is not None:
                pool.terminate()

    async def _renew(self, pool: asyncpg.Pool) -> bool:
        if await brokers.renew(pool, self._node_id, self._incarnation, self._lease_ms):
            return True
        # Fenced: the row lapsed and went, or a new start took the node id over.
        return await brokers.register(pool, self._node_id, self._incarnation, self._rack, self._endpoints, self._lease_ms)


class DatabaseCluster:
    """This broker's membership of the cluster on its database: its lease, the live set,
    its leadership claims, and the notifications it sends and hears (see the module doc)."""

    def __init__(
        self,
        storage: PostgresStorage,
        url: str,
        node_id: int,
        rack: str | None,
        endpoints: Mapping[str, Endpoint],
        session_timeout_ms: int,
        heartbeat_ms: int,
        wake: Callable[[str, int], None],
        on_leader_change: Callable[[str, int, int], None],
    ) -> None:
        self.storage = storage
        self._url = url
        self.node_id = node_id
        self._rack = rack
        self._endpoints = {name: brokers.BrokerEndpoint(endpoint.host, endpoint.port) for name, endpoint in endpoints.items()}
        self._lease_ms = session_timeout_ms
        self._heartbeat_s = heartbeat_ms / 1000
        # A renewal still in flight after this long is given up and sent again.
        self._renew_timeout_s = max(self._heartbeat_s, session_timeout_ms / 1000 * _CLAIM_MARGIN)
        self._wake = wake
        self._on_leader_change = on_leader_change
        self.state = DatabaseClusterState(node_id, storage.topics, self._leader_changed)
        self._incarnation = uuid.uuid4()
        self._channel = ""
        self._live: list[brokers.LiveBroker] = []
        # When this broker stops counting itself live unless it renews its lease first.
        self._counts_self_until = 0.0
        self._lapse: asyncio.TimerHandle | None = None
        self._lease_keeper: LeaseKeeper | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # The event loop's membership connections: registration and the live set; claims.
        self._lease_pool: asyncpg.Pool | None = None
        self._claims_pool: asyncpg.Pool | None = None
        self._listener: asyncpg.Connection | None = None
        self._listener_lost = asyncio.Event()
        # Partitions whose new bounds are still to be told, and whether a sender is running.
        self._unsent: dict[tuple[uuid.UUID, int], DatabasePartition] = {}
        self._sending = False
        self._reloads: CoalescingReloads[bool] = CoalescingReloads()
        # Told which metadata table another broker changed (None: any may have, after a
        # reconnect): the broker's SCRAM credentials, ACLs, quotas and group configs.
        self.metadata_changed: Callable[[str | None], None] = _ignore_metadata

    async def start(self) -> None:
        """Register (waiting out a previous incarnation's lease, as a restart after a crash
        must), read the live set and the claims, listen, and keep the lease. DuplicateNodeId
        when the id stays taken, DatabaseUnavailable when the database fails meanwhile."""
        try:
            await self._join()
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            await self.stop()
            raise DatabaseUnavailable(f"cannot register node {self.node_id} in PostgreSQL: {exc}") from exc
        except DuplicateNodeId:
            await self.stop()
            raise

    async def _join(self) -> None:
        self._lease_pool = pool = await brokers.open_membership_pool(self._url)
        self._claims_pool = await brokers.open_membership_pool(self._url)
        self._channel = await notify.channel_of(pool)
        deadline = time.monotonic() + self._lease_ms / 1000 + self._heartbeat_s
        while True:
            sent = time.monotonic()
            if await brokers.register(pool, self.node_id, self._incarnation, self._rack, self._endpoints, self._lease_ms):
                break
            if time.monotonic() > deadline:
                raise DuplicateNodeId(f"node id {self.node_id} is registered by another live broker on this database")
            await asyncio.sleep(self._heartbeat_s / 4)
        self._renewed(sent)
        self._watch_own_lease()
        self._lease_keeper = LeaseKeeper(
            self._url, self.node_id, self._incarnation, self._rack, self._endpoints, self._lease_ms,
            self._heartbeat_s, self._renew_timeout_s, self._renewed,
        )
        self._lease_keeper.start()
        self.storage.bounds_moved = self._bounds_moved
        self.storage.catalogue_changed = lambda: self._spawn(self._tell(notify.News.CATALOGUE))
        self._live = await brokers.live_brokers(pool)
        self.state.set_live(self._live, True)
        await self._reload_claims()
        await self._claim()
        self._spawn(self._keep_live_set())
        self._spawn(self._keep_listening())
        await notify.send(pool, self._channel, [notify.news_payload(notify.News.BROKERS, self.node_id)])

    async def stop(self) -> None:
        """Stop renewing and listening, and leave the live set at once."""
        if self._lease_keeper is not None:
            await self._lease_keeper.stop()
        await cancel_until_done(self._tasks)
        if self._lapse is not None:
            self._lapse.cancel()
        if self._listener is not None:
            self._listener.terminate()
            self._listener = None
        if self._claims_pool is not None:
            self._claims_pool.terminate()
            self._claims_pool = None
        if self._lease_pool is None:
            return
        try:
            await asyncio.wait_for(brokers.deregister(self._lease_pool, self.node_id, self._incarnation), self._heartbeat_s)
            await notify.send(self._lease_pool, self._channel, [notify.news_payload(notify.News.BROKERS, self.node_id)])
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("could not leave the brokers table (the lease lapses by itself): %s", exc)
        self._lease_pool.terminate()
        self._lease_pool = None

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- the lease and the live set ------------------------------------------------------

    def _renewed(self, sent: float) -> None:
        """The lease runs from no earlier than `sent`: count this broker until a third of a
        session before it can lapse. Called in the lease keeper's thread too: it sets a float."""
        self._counts_self_until = max(self._counts_self_until, sent + self._lease_ms / 1000 * (1 - _CLAIM_MARGIN))

    @property
    def counts_self(self) -> bool:
        return time.monotonic() < self._counts_self_until

    def _watch_own_lease(self) -> None:
        """Look at this broker's own count again when it would run out."""
        if self._lapse is None:
            loop = asyncio.get_running_loop()
            self._lapse = loop.call_at(loop.time() + max(0.0, self._counts_self_until - time.monotonic()), self._own_lease_lapsing)

    def _own_lease_lapsing(self) -> None:
        """No renewal for too long (the database is away): lead nothing, coordinate nothing,
        until a renewal lands and the next read of the live set counts this broker again.
        Renewed meanwhile: look again at the new end."""
        self._lapse = None
        if self.counts_self:
            self._watch_own_lease()
            return
        if self.state.set_live(self._live, False):
            last_sent = self._counts_self_until - self._lease_ms / 1000 * (1 - _CLAIM_MARGIN)
            log.warning(
                "node %s could not renew its lease in PostgreSQL (the last renewal that landed was sent %.1f s ago): "
                "it leads no partition until it can", self.node_id, time.monotonic() - last_sent,
            )

    async def _keep_live_set(self) -> None:
        """Every heartbeat: the live set, this broker's claims in the background, the listener."""
        while True:
            await asyncio.sleep(self._heartbeat_s)
            await self._read_live_set()
            self._spawn(self._claim_quietly())
            await self._check_listener()

    async def _read_live_set(self) -> None:
        """The live brokers as the database has them now."""
        assert self._lease_pool is not None
        try:
            live = await asyncio.wait_for(brokers.live_brokers(self._lease_pool), self._renew_timeout_s)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.debug("reading the live brokers failed: %s", exc)
            return
        self._live = live
        counts_self = self.counts_self
        if self.state.set_live(live, counts_self):
            log.info("node %s: live brokers %s", self.node_id, sorted(self.state.nodes))
        if counts_self:
            self._watch_own_lease()

    async def _brokers_changed(self) -> None:
        """A broker came or went: the live set now, and this broker's claims if it leads anew."""
        await self._read_live_set()
        await self._claim_quietly()

    async def _check_listener(self) -> None:
        """A LISTEN connection that no longer answers (dropped by the network without a reset)
        hears nothing either: have it opened again, which reloads what it missed."""
        listener = self._listener
        if listener is None:
            return
        try:
            await asyncio.wait_for(listener.fetchval("SELECT 1"), self._renew_timeout_s)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.info("node %s: the LISTEN connection does not answer (%r): opening it again", self.node_id, exc)
            self._listener_lost.set()

    # --- leadership claims ----------------------------------------------------------------

    async def _reload_claims(self) -> None:
        assert self._claims_pool is not None
        claims = await brokers.leaders(self._claims_pool)
        self.state.set_claims({(topic_id.bytes, index): claim for (topic_id, index), claim in claims.items()})

    async def _claim(self) -> None:
        """Claim the database partitions this broker now leads; tell the others when an epoch moved."""
        wanted = [(uuid.UUID(bytes=topic_id), index) for topic_id, index in self.state.led_here() if self._in_database(topic_id)]
        if not wanted or not self.counts_self:
            return
        assert self._claims_pool is not None
        held = await brokers.claim_leadership(self._claims_pool, self.node_id, wanted)
        claims = dict(self.state.claims)
        for (topic_id, index), claim in held.items():
            claims[(topic_id.bytes, index)] = (self.node_id, claim.leader_epoch)
        self.state.set_claims(claims)
        if any(claim.moved for claim in held.values()):
            await notify.send(self._claims_pool, self._channel, [notify.news_payload(notify.News.LEADERS, self.node_id)])

    def _in_database(self, topic_id: bytes) -> bool:
        info = self.storage.topic_by_id(topic_id)
        return info is not None and self.storage.is_database_topic(info.name)

    async def _claim_quietly(self) -> None:
        try:
            await asyncio.wait_for(self._claim(), self._heartbeat_s)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.debug("leadership claim failed: %s", exc)

    # --- notifications sent ---------------------------------------------------------------

    def _bounds_moved(self, partition: DatabasePartition) -> None:
        """An append or DeleteRecords here: tell the others, coalesced while a send is out."""
        self._unsent[(partition.log.topic_id, partition.log.partition_index)] = partition
        if not self._sending:
            self._sending = True
            self._spawn(self._send_bounds())

    async def _send_bounds(self) -> None:
        try:
            while self._unsent:
                unsent, self._unsent = self._unsent, {}
                bounds = [notify.Bounds(topic_id, index, p.high_watermark, p.log_start_offset) for (topic_id, index), p in unsent.items()]
                try:
                    await notify.send(self.storage.pool, self._channel, notify.append_payloads(self.node_id, bounds))
                except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    # The others read these bounds at their next round trip or reload.
                    log.debug("could not notify appends: %s", exc)
        finally:
            self._sending = False

    async def _tell(self, news: notify.News) -> None:
        try:
            await notify.send(self.storage.pool, self._channel, [notify.news_payload(news, self.node_id)])
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("could not tell the other brokers of a topic change: %s", exc)
        self.state.rebuild()
        await self._claim_quietly()

    # --- notifications heard --------------------------------------------------------------

    async def _keep_listening(self) -> None:
        """One LISTEN connection, opened again whenever it breaks; after each (re)open,
        everything it may have missed is reloaded."""
        while True:
            try:
                self._listener_lost.clear()
                connection = await asyncpg.connect(self._url)
                connection.add_termination_listener(lambda _: self._listener_lost.set())
                await connection.add_listener(self._channel, self._heard)
                self._listener = connection
                await self._reload(catalogue=True)
                self.metadata_changed(None)
                await self._listener_lost.wait()
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.debug("listener connection failed: %s", exc)
            if self._listener is not None:
                self._listener.terminate()
                self._listener = None
            await asyncio.sleep(_RECONNECT_S)

    def _heard(self, connection: object, pid: int, channel: str, payload: str) -> None:
        heard = notify.parse(payload)
        if heard is None or heard.node_id == self.node_id:
            return
        if heard.news is notify.News.APPENDS:
            for bounds in heard.bounds:
                moved = self.storage.saw_bounds(bounds.topic_id, bounds.partition_index, bounds.high_watermark, bounds.log_start_offset)
                if moved is not None:
                    self._wake(*moved)
                    self._catch_up_transactions(*moved)
        elif heard.news is notify.News.METADATA:
            self.metadata_changed(heard.subject)
        elif heard.news is notify.News.BROKERS:
            self._spawn(self._brokers_changed())
        else:
            self._spawn(self._reload(catalogue=heard.news is notify.News.CATALOGUE))

    def _leader_changed(self, topic: str, index: int, epoch: int) -> None:
        """A partition's leader or epoch moved: one of the database's that this broker now
        leads has its producer state confirmed before read_committed reads use it, and its
        parked fetches are woken once it is; then the broker is told."""
        known = self.state.topics.get(topic)
        state = None if known is None else known[1].get(index)
        if state is not None and state.leader == self.node_id and self.storage.is_database_topic(topic):
            try:
                partition = self.storage.partition(topic, index)
            except KafkaError:
                pass  # deleted meanwhile
            else:
                partition.unconfirm()
                self._spawn(self._confirm_producers(partition, topic, index))
        self._on_leader_change(topic, index, epoch)

    async def _confirm_producers(self, partition: DatabasePartition, topic: str, index: int) -> None:
        try:
            await partition.confirm()
        except (DatabaseUnavailable, KafkaError) as exc:
            log.warning("confirming the producer state of %s-%d from PostgreSQL failed: %s", topic, index, exc)
            return
        self._wake(topic, index)

    def _catch_up_transactions(self, topic: str, index: int) -> None:
        """Another broker moved the bounds of a partition this one leads with a transaction
        open in its copy of the producer state: the write may be the coordinator's marker that
        ends it (written from the coordinator's broker). The copy is reloaded, so the last stable
        offset moves on, and the read_committed fetches parked on it are woken again."""
        known = self.state.topics.get(topic)
        state = None if known is None else known[1].get(index)
        if state is None or state.leader != self.node_id:
            return
        partition = self.storage.partition(topic, index)
        if partition.producer_state.ongoing:
            self._spawn(self._reload_producers(partition, topic, index))

    async def _reload_producers(self, partition: DatabasePartition, topic: str, index: int) -> None:
        try:
            if await partition.catch_up_producers():
                self._wake(topic, index)
        except (DatabaseUnavailable, KafkaError) as exc:
            log.warning("reloading the producer state of %s-%d from PostgreSQL failed: %s", topic, index, exc)

    async def _reload(self, catalogue: bool) -> None:
        """Reload the catalogue (and so every partition's bounds) or just the claims; one
        reload of a kind at a time, a request during one making it run once more."""

        async def reload() -> None:
            if catalogue:
                for moved in await self.storage.reload_catalogue():
                    self._wake(*moved)
            await self._reload_claims()
            # Another broker's claim comes from the live set it read: read it too before
            # claiming back, or two brokers whose reads straddle a lease's expiry take a
            # partition from each other at every notification until their next heartbeats.
            await self._read_live_set()
            await self._claim()

        try:
            await self._reloads.run(catalogue, reload)
        except Exception as exc:  # noqa: BLE001 - a reload that failed is redone at the next news or reconnect
            log.warning("reloading the %s from PostgreSQL failed: %s", "catalogue" if catalogue else "claims", exc)
