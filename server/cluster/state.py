"""The topology of a cluster of N nodes in one process: who replicates each partition, who
leads it, in which leader epoch, and which replicas are in sync.

Replication is logical: the replicas of a partition share its one log (the broker's
Storage), so a replica that is running is caught up the moment it runs. The high watermark is
the least log end over the ISR (Kafka's Partition.maybeIncrementLeaderHW): the log end offset,
unless a crashed node is still in the ISR, whose log end stays where the crash left it. What
clients see follows Kafka's controller (ReplicationControlManager, PartitionChangeBuilder):

- Replicas are placed as Kafka's AdminUtils.assignReplicasToBrokers places them (the
  striping the KRaft placer keeps): partition p's first replica is node (start + p) mod N,
  each further replica j is shifted from it by 1 + (shift + j) mod (N - 1), and the shift
  grows by one every N partitions, so leaders and followers spread evenly. With racks the
  nodes are first ordered round robin over the racks (a, b, c, a, ...), as Kafka's
  rack-aware assignment orders them, so consecutive replicas land on different racks.
  Kafka draws `start` and `shift` at random; here both come from a hash of the topic's
  name, so a placement never depends on the order topics were first seen in.
- A node that shuts down (Kafka's controlled shutdown: it stays listed and answering for a
  moment, then stops) or is isolated (which Kafka's controller sees as a missed heartbeat
  and fences) leaves every ISR it is in, unless it is the last member; each partition it led
  elects the first replica, in replica order, that is in the ISR and running. With none, the
  partition has no leader (-1) unless `unclean.leader.election.enable` lets the first running
  replica lead with an ISR of itself. Every change of leader bumps the leader epoch.
- A node that starts again rejoins the ISR of each of its partitions that has a leader (it is
  caught up at once), and leads those without one whose last ISR member it was; leadership
  moves back only by a preferred election (ElectLeaders PREFERRED).
- A node that crashes changes nothing here until the broker fences it (a stop) once
  broker.session.timeout.ms has passed: until then it is listed, leads and stays in the ISR,
  its log end frozen at the crash, so the high watermark of each partition whose ISR it is in
  stops there (acks=all produces wait, consumers read no further) until the fence takes it
  out of the ISR or it starts again; then `on_high_watermark_change` is called for each.
- A reassignment (AlterPartitionReassignments) stays in progress, its replicas the target
  followed by those it removes, until every replica it adds is in the ISR, as Kafka's
  controller keeps one (ClusterState.reassign); a running node is in sync at once.
- Each partition keeps its leader-epoch history (epoch, start offset), as Kafka's
  LeaderEpochFileCache, so OffsetForLeaderEpoch can say where an older epoch ended.
- With eligible leader replicas on (KIP-966: eligible.leader.replicas.version 1, see
  EligibleLeaderReplicas), a node leaves the ISR even as its last member, and while the ISR is
  smaller than the topic's min.insync.replicas the members it lost are kept as the ELR: each
  has every committed record, so one may lead when the ISR is empty. A crashed node that starts
  again (an unclean shutdown: its log may have lost unflushed records) leaves the ELR, a stopped
  or fenced one stays. A partition that loses its last leader keeps it as its last-known ELR,
  which leads again (an unclean election) if it comes back while ISR and ELR are empty. Each
  change is PartitionChangeBuilder's (see _change); with the feature off the next change of a
  partition drops its ELR, as Kafka's does after a downgrade.

The state is written to `cluster.json` in the data directory on every change, so a restart
keeps replicas, leaders and epochs; every node starts running (and in every ISR) again, so no
partition has an ELR or a last-known ELR then, and neither is written.
"""

from __future__ import annotations

import enum
import json
import os
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ottla.storage.leader_epochs import end_offset_for

STATE_FILE = "cluster.json"
NO_LEADER = -1


class Endpoint(Protocol):
    """Where a node listens, as clients are told (ottla.server.context.Node is one)."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...


class NodeState(enum.Enum):
    RUNNING = "running"
    STOPPED = "stopped"
    # Accepts connections and never answers; fenced as a stopped node is.
    ISOLATED = "isolated"
    # Closed to clients, yet registered, leading and in every ISR as if running, until its
    # session times out and it is fenced (stopped): Kafka's crash window.
    CRASHED = "crashed"
    # Kafka's controlled shutdown: out of every ISR with its leadership moved, yet listed and
    # answering (NOT_LEADER_OR_FOLLOWER, NOT_COORDINATOR) until it stops.
    SHUTTING_DOWN = "shutting-down"


@dataclass(slots=True)
class ClusterNode:
    node_id: int
    rack: str | None
    state: NodeState = NodeState.RUNNING
    # Crashed since it last ran: it registers again after an unclean shutdown (Kafka's broker
    # sends no previous broker epoch then), which takes it out of every ELR.
    unclean_shutdown: bool = False

    @property
    def running(self) -> bool:
        """Registered and unfenced: listed in Metadata. A crashed node is, until its session
        times out (Kafka's controller learns of a crash only then), and so is one in its
        controlled shutdown until it stops."""
        return self.state is not NodeState.STOPPED and self.state is not NodeState.ISOLATED

    @property
    def electable(self) -> bool:
        """May be in an ISR, lead and be given replicas: running and not shutting down."""
        return self.state is NodeState.RUNNING or self.state is NodeState.CRASHED


@dataclass(slots=True)
class PartitionState:
    """One partition's replicas (the first is the preferred leader), leader, epoch and ISR."""

    replicas: tuple[int, ...]
    leader: int
    leader_epoch: int
    isr: tuple[int, ...]
    # (leader epoch, first offset of that epoch), ascending in both.
    epochs: list[tuple[int, int]] = field(default_factory=list)
    # The log end of each crashed replica, as the crash left it: a follower that no longer fetches.
    frozen_ends: dict[int, int] = field(default_factory=dict)
    # A reassignment in progress (Kafka's addingReplicas, removingReplicas; ascending): `replicas`
    # is then its target followed by the replicas it removes.
    adding: tuple[int, ...] = ()
    removing: tuple[int, ...] = ()
    # KIP-966 (ascending): replicas that left the ISR while it was below min.insync.replicas and
    # hold every committed record, and the last leader of a partition left without one.
    elr: tuple[int, ...] = ()
    last_known_elr: tuple[int, ...] = ()

    def high_watermark(self, log_end_offset: int) -> int:
        """The least log end over the ISR: running members are at `log_end_offset`, a
        crashed one where it crashed (a crashed node that has left the ISR holds nothing back)."""
        if not self.frozen_ends:
            return log_end_offset
        return min([log_end_offset, *(end for node, end in self.frozen_ends.items() if node in self.isr)])

    def epoch_for(self, offset: int) -> int:
        """The leader epoch `offset` was (or will be) written in: the latest epoch starting at or before it."""
        found = -1
        for epoch, start in self.epochs:
            if start > offset:
                break
            found = epoch
        return found

    def end_offset_for(self, requested_epoch: int, log_end_offset: int) -> tuple[int, int]:
        """(epoch, end offset) of `requested_epoch`, as LeaderEpochFileCache.endOffsetFor: the
        latest epoch ends at the log end; an older one where the next one starts; an epoch
        above every known one is (-1, -1)."""
        return end_offset_for(self.epochs, requested_epoch, log_end_offset)


@dataclass(slots=True, frozen=True)
class EligibleLeaderReplicas:
    """What eligible leader replicas need from outside the cluster state: whether
    eligible.leader.replicas.version is 1 or more now (FeatureControlManager.isElrFeatureEnabled,
    read at each change, so UpdateFeatures takes effect at the next one), and a topic's
    effective min.insync.replicas (ReplicationControlManager.getTopicEffectiveMinIsr)."""

    enabled: Callable[[], bool]
    min_insync_replicas: Callable[[str], int]


class UncleanRevert(Exception):
    """Cancelling would leave the ISR empty and the topic forbids an unclean election."""


class ReplicaPlacementError(Exception):
    """A replication factor the cluster cannot place (Kafka's InvalidReplicationFactorException)."""


def place_replicas(nodes: Sequence[ClusterNode], partitions: Iterable[int], replication_factor: int, start: int) -> dict[int, tuple[int, ...]]:
    """Replica lists by partition index, striped over the running nodes (see the module doc)."""
    usable = [node for node in nodes if node.electable] or list(nodes)
    if replication_factor < 1:
        raise ReplicaPlacementError(f"Replication factor must be larger than 0, not {replication_factor}.")
    if replication_factor > len(usable):
        raise ReplicaPlacementError(
            f"Unable to replicate the partition {replication_factor} time(s): The target replication factor of "
            f"{replication_factor} cannot be reached because only {len(usable)} broker(s) are registered or some brokers have all their log "
            "directories cordoned."
        )
    ordered = _rack_interleaved(usable)
    rack_of = {node.node_id: node.rack for node in usable}
    rack_count = len(set(rack_of.values()))
    count = len(ordered)
    placed: dict[int, tuple[int, ...]] = {}
    for index in partitions:
        first = (start + index) % count
        shift = (start // count + index // count) * (rack_count if rack_count > 1 else 1)
        replicas = [ordered[first]]
        step = 0
        while len(replicas) < replication_factor:
            node = ordered[(first + 1 + (shift + step) % (count - 1)) % count]
            step += 1
            # assignReplicasToBrokersRackAware: skip a node whose rack has a replica while a
            # rack has none, and a node that has one while a node has none.
            racks_used = {rack_of[replica] for replica in replicas}
            if (rack_of[node] in racks_used and len(racks_used) < rack_count) or node in replicas:
                continue
            replicas.append(node)
        placed[index] = tuple(replicas)
    return placed


def _rack_interleaved(nodes: Sequence[ClusterNode]) -> list[int]:
    """Node ids ordered round robin over racks (a, b, c, a, b, c, ...), so consecutive
    replicas land on different racks; in node id order when there are no racks."""
    by_rack: dict[str | None, list[int]] = {}
    for node in sorted(nodes, key=lambda node: node.node_id):
        by_rack.setdefault(node.rack, []).append(node.node_id)
    columns = [by_rack[rack] for rack in sorted(by_rack, key=lambda rack: rack or "")]
    ordered: list[int] = []
    for row in range(max(len(column) for column in columns)):
        ordered.extend(column[row] for column in columns if row < len(column))
    return ordered


def _expanded(isr: tuple[int, ...], joining: Iterable[int]) -> tuple[int, ...]:
    """The ISR once `joining` are in sync: unchanged when none is new, else in ascending order,
    as a Kafka leader's AlterPartition sends it (Partition.prepareIsrExpand builds it from a hash
    set of broker ids, whose iteration order is ascending for small ids)."""
    new = set(joining) - set(isr)
    return tuple(sorted({*isr, *new})) if new else isr


def topic_start(name: str) -> int:
    """Where a topic's striping starts: fixed by its name (Kafka draws it at random)."""
    return zlib.crc32(name.encode())


class ClusterState:
    """Nodes and partitions of the cluster; every change goes through a method here.

    `log_end_offset(topic, index)` reads the shared log (for the epoch history) and
    `on_leader_change(topic, index, epoch)` hands a new leader epoch to it, so appends stamp
    their batches with the epoch of the leader that wrote them."""

    # Whether a partition's replicas can be given a new list (AlterPartitionReassignments).
    reassignable = True

    def __init__(
        self,
        node_ids: Sequence[int],
        racks: Sequence[str | None],
        data_dir: Path | None,
        log_end_offset: Callable[[str, int], int],
        on_leader_change: Callable[[str, int, int], None],
        on_high_watermark_change: Callable[[str, int], None] = lambda topic, index: None,
        eligible_leader_replicas: EligibleLeaderReplicas | None = None,
    ) -> None:
        self.nodes = {node_id: ClusterNode(node_id, rack) for node_id, rack in zip(node_ids, racks, strict=True)}
        # None: the feature is off for good (no ELR is ever kept).
        self.eligible_leader_replicas = eligible_leader_replicas
        self._path = None if data_dir is None else data_dir / STATE_FILE
        self._log_end_offset = log_end_offset
        self._on_leader_change = on_leader_change
        # Wakes what waits on a partition's high watermark (parked acks=all produces, fetches).
        self._on_high_watermark_change = on_high_watermark_change
        # Each node's endpoints by listener name (the broker fills them as nodes bind).
        self.endpoints: dict[int, Mapping[str, Endpoint]] = {}
        # topic name -> (topic id, partition states by index)
        self.topics: dict[str, tuple[bytes, dict[int, PartitionState]]] = {}
        self._load()

    # --- partitions -----------------------------------------------------------------------

    def partition(self, topic: str, topic_id: bytes, partitions: int, index: int, replication_factor: int = 1) -> PartitionState:
        """The state of one of a topic's `partitions`, placed with `replication_factor` (capped
        at the node count) when first asked for: all of them at once, or those added since. A
        topic recreated under a new id is placed anew."""
        known = self.topics.get(topic)
        missing: Iterable[int]
        if known is not None and known[0] == topic_id:
            state = known[1].get(index)
            if state is not None:
                return state
            missing = [other for other in range(partitions) if other not in known[1]]
            if known[1]:
                placed = next(iter(known[1].values()))
                replication_factor = len(placed.replicas) - len(placed.removing)
        else:
            missing = range(partitions)
        try:
            return self.assign(topic, topic_id, missing, min(replication_factor, len(self.nodes)))[index]
        except ReplicaPlacementError:
            # Too few nodes running to place it (Kafka would refuse to create it): no leader for
            # now, so LEADER_NOT_AVAILABLE and COORDINATOR_NOT_AVAILABLE, which clients retry;
            # it is placed once enough nodes run.
            return PartitionState((), NO_LEADER, 0, ())

    def assign(self, topic: str, topic_id: bytes, indexes: Iterable[int], replication_factor: int,
               assignments: dict[int, tuple[int, ...]] | None = None) -> dict[int, PartitionState]:
        """Place `indexes` of a topic (or take the given replica lists) and elect their leaders."""
        known = self.topics.get(topic)
        if known is None or known[0] != topic_id:
            known = (topic_id, {})
            self.topics[topic] = known
        placed = assignments or place_replicas(list(self.nodes.values()), indexes, replication_factor, topic_start(topic))
        states = known[1]
        for index, replicas in placed.items():
            running = [node for node in replicas if self.nodes[node].electable]
            leader = running[0] if running else NO_LEADER
            states[index] = PartitionState(replicas, leader, 0, tuple(running) or replicas[:1], [(0, 0)])
            # A crashed node given a replica (it is still registered) never fetches it.
            crashed = [node for node in running if self.nodes[node].state is NodeState.CRASHED]
            if crashed:
                states[index].frozen_ends = dict.fromkeys(crashed, self._log_end_offset(topic, index))
            self._on_leader_change(topic, index, 0)
        self._save()
        return {index: states[index] for index in placed}

    def forget(self, topic: str) -> None:
        if self.topics.pop(topic, None) is not None:
            self._save()

    def check_replication_factor(self, replication_factor: int) -> None:
        """Raise ReplicaPlacementError for a factor the running nodes cannot place."""
        place_replicas(list(self.nodes.values()), (), replication_factor, 0)
        running = sum(node.electable for node in self.nodes.values())
        if replication_factor > running:
            raise ReplicaPlacementError(
                f"Unable to replicate the partition {replication_factor} time(s): The target replication factor of "
                f"{replication_factor} cannot be reached because only {running} broker(s) are registered or some brokers have all their "
                "log directories cordoned."
            )

    # --- nodes ----------------------------------------------------------------------------

    def running_nodes(self) -> list[ClusterNode]:
        return [node for node in self.nodes.values() if node.running]

    def high_watermark(self, topic: str, index: int, log_end_offset: int) -> int:
        """A partition's high watermark, given its log end (see PartitionState.high_watermark)."""
        known = self.topics.get(topic)
        state = None if known is None else known[1].get(index)
        return log_end_offset if state is None else state.high_watermark(log_end_offset)

    def set_node_state(self, node_id: int, state: NodeState, unclean_allowed: Callable[[str], bool]) -> None:
        """Stop, isolate, crash, shut down or start a node and run the elections that follow
        when it stops or starts being electable (none for a crash)."""
        node = self.nodes[node_id]
        if node.state is state:
            return
        was_electable = node.electable
        was_crashed = node.state is NodeState.CRASHED
        if state is NodeState.RUNNING and node.unclean_shutdown:
            # It registers (still fenced) before it runs: the ELR changes first.
            node.unclean_shutdown = False
            self._unclean_shutdown(node_id, unclean_allowed)
        node.state = state
        if state is NodeState.CRASHED:
            node.unclean_shutdown = True
            self._freeze(node_id)
        if was_electable and not node.electable:
            self._fence(node_id, unclean_allowed)
        elif node.electable and not was_electable or was_crashed and state is NodeState.RUNNING:
            # A crashed node that starts again registers anew and is unfenced as a stopped one.
            self._unfence(node_id, unclean_allowed)
        if was_crashed:
            self._thaw(node_id)
        self._save()

    def _freeze(self, node_id: int) -> None:
        """A crashed node's replicas in an ISR stop where the log ends now."""
        for topic, (_, states) in self.topics.items():
            for index, state in states.items():
                if node_id in state.isr:
                    state.frozen_ends[node_id] = self._log_end_offset(topic, index)

    def _thaw(self, node_id: int) -> None:
        """A crashed node fenced (out of the ISR) or started (caught up at once) holds no high
        watermark back any more: what waited on one moves on (Kafka's tryCompleteDelayedRequests)."""
        for topic, (_, states) in self.topics.items():
            for index, state in states.items():
                if state.frozen_ends.pop(node_id, None) is not None:
                    self._on_high_watermark_change(topic, index)

    def _elr_min_isr(self, topic: str) -> int | None:
        """The topic's min.insync.replicas when eligible leader replicas are on, else None."""
        elr = self.eligible_leader_replicas
        return elr.min_insync_replicas(topic) if elr is not None and elr.enabled() else None

    def _fence(self, node_id: int, unclean_allowed: Callable[[str], bool]) -> None:
        for topic, (_, states) in self.topics.items():
            min_isr = self._elr_min_isr(topic)
            for index, state in states.items():
                if node_id not in state.replicas:
                    continue
                if min_isr is not None:
                    # generateLeaderAndIsrUpdates over the partitions whose ISR has the node.
                    if node_id in state.isr:
                        self._change(topic, index, state, min_isr, unclean_allowed(topic), without=node_id)
                    continue
                if node_id in state.isr:
                    state.elr = ()  # any change drops the ELR while the feature is off
                    if len(state.isr) > 1:
                        state.isr = tuple(node for node in state.isr if node != node_id)
                if state.leader == node_id:
                    self._elect(topic, index, state, unclean_allowed(topic))

    def _unclean_shutdown(self, node_id: int, unclean_allowed: Callable[[str], bool]) -> None:
        """A node back from a crash (ReplicationControlManager.handleBrokerShutdown, unclean): it
        leaves every ISR and ELR it is in, and may not lead until it is running again."""
        for topic, (_, states) in self.topics.items():
            min_isr = self._elr_min_isr(topic)
            if min_isr is None:
                continue
            for index, state in states.items():
                if node_id in state.isr or node_id in state.elr:
                    self._change(topic, index, state, min_isr, unclean_allowed(topic), without=node_id, unclean_shutdown=True)

    def _change(self, topic: str, index: int, state: PartitionState, min_isr: int, unclean: bool,
                without: int | None = None, unclean_shutdown: bool = False) -> None:
        """One partition change with eligible leader replicas on, as PartitionChangeBuilder.build
        makes it: `without` leaves the ISR (even its last member) and may not lead; the ELR is
        kept while the ISR is below `min_isr` (maybePopulateTargetElr: the old ISR and ELR less
        the new ISR, and less `without` after its unclean shutdown); then the election
        (electAnyLeader): the leader stays if still valid, else the first replica running and in
        the ISR, or, the ISR empty, in the ELR (which it leaves for the ISR); else the last-known
        leader with ISR and ELR empty; else, when `unclean`, any running replica. Those two are
        unclean: the ISR is the leader alone and the ELR is cleared. Losing its leader a
        partition records the one it had as last-known ELR (maybeUpdateLastKnownLeader), and a
        new leader clears it."""
        isr = tuple(node for node in state.isr if node != without)
        if len(isr) >= min_isr:
            elr: tuple[int, ...] = ()
        else:
            elr = tuple(sorted(({*state.elr, *state.isr} - set(isr)) - ({without} if unclean_shutdown else set())))

        def acceptable(node: int) -> bool:
            return node != without and self.nodes[node].electable

        def valid(node: int) -> bool:
            return (node in isr or (not isr and node in elr)) and acceptable(node)

        leader, unclean_election = state.leader, False
        if not (leader != NO_LEADER and valid(leader)):
            clean = [node for node in state.replicas if valid(node)]
            running = [node for node in state.replicas if acceptable(node)]
            last_known = state.last_known_elr
            if clean:
                leader = clean[0]
            elif not isr and not elr and len(last_known) == 1 and acceptable(last_known[0]):
                leader, unclean_election = last_known[0], True
            elif unclean and running:
                leader, unclean_election = running[0], True
            else:
                leader = NO_LEADER
        previous = state.leader
        if leader != previous:
            if leader in elr:
                isr, elr = (leader,), tuple(node for node in elr if node != leader)
            if unclean_election:
                isr, elr = (leader,), ()
            if leader == NO_LEADER and not state.last_known_elr:
                state.last_known_elr = (previous,)
            elif leader != NO_LEADER:
                state.last_known_elr = ()
        state.isr, state.elr = isr, elr
        self._set_leader(topic, index, state, leader)

    def _track_elr(self, topic: str, state: PartitionState, previous_isr: tuple[int, ...]) -> None:
        """The ELR after the leader changed the ISR from `previous_isr` (an AlterPartition):
        kept as _change keeps it while eligible leader replicas are on, dropped when they are off."""
        min_isr = self._elr_min_isr(topic)
        if min_isr is None or len(state.isr) >= min_isr:
            state.elr = ()
        else:
            state.elr = tuple(sorted({*state.elr, *previous_isr} - set(state.isr)))

    def _unfence(self, node_id: int, unclean_allowed: Callable[[str], bool]) -> None:
        for topic, (_, states) in self.topics.items():
            for index, state in states.items():
                if node_id not in state.replicas:
                    continue
                min_isr = self._elr_min_isr(topic)
                if state.leader == NO_LEADER:
                    # Nobody to catch up from: only an ISR (or, with none, ELR) member coming
                    # back can lead, or any replica where the topic allows an unclean election
                    # (the controller's handleBrokerUnfenced elects its leaderless partitions so).
                    if min_isr is not None:
                        self._change(topic, index, state, min_isr, unclean_allowed(topic))
                    else:
                        self._elect(topic, index, state, unclean_allowed(topic))
                elif node_id not in state.isr:
                    previous_isr = state.isr
                    state.isr = _expanded(state.isr, (node_id,))
                    self._track_elr(topic, state, previous_isr)
                # In sync again, it may complete a reassignment that waited for it.
                previous = state.replicas
                self._complete(topic, index, state)
                if state.replicas != previous:
                    self._settle_leader(topic, index, state, previous)

    def _elect(self, topic: str, index: int, state: PartitionState, unclean: bool) -> None:
        """A clean election from the running ISR members in replica order; an unclean one
        from any running replica when allowed and the ISR has none running (eligible leader
        replicas off: see _change for them on)."""
        state.elr = ()
        candidates = [node for node in state.replicas if node in state.isr and self.nodes[node].electable]
        if candidates:
            self._set_leader(topic, index, state, candidates[0])
            return
        running = [node for node in state.replicas if self.nodes[node].electable]
        if unclean and running:
            state.isr = (running[0],)
            self._set_leader(topic, index, state, running[0])
        else:
            self._set_leader(topic, index, state, NO_LEADER)

    def _set_leader(self, topic: str, index: int, state: PartitionState, leader: int) -> None:
        if state.leader == leader:
            return
        state.leader = leader
        self._bump_epoch(topic, index, state)

    def _bump_epoch(self, topic: str, index: int, state: PartitionState) -> None:
        """A new leader epoch for the partition's (new or kept) leader, starting at the log end."""
        state.leader_epoch += 1
        leader = state.leader
        if leader != NO_LEADER:
            # Running followers fetch from a new leader and rejoin its ISR within a round trip
            # (sharing its log here, at once); a crashed one does not fetch.
            previous_isr = state.isr
            state.isr = _expanded(state.isr, [node for node in state.replicas if node == leader or self.nodes[node].state is NodeState.RUNNING])
            self._track_elr(topic, state, previous_isr)
            start = self._log_end_offset(topic, index)
            # LeaderEpochFileCache.assign drops entries an epoch or a start offset would make non-monotonic.
            state.epochs = [(epoch, offset) for epoch, offset in state.epochs if epoch < state.leader_epoch and offset < start]
            state.epochs.append((state.leader_epoch, start))
        self._on_leader_change(topic, index, state.leader_epoch)

    def elect_preferred(self, topic: str, index: int) -> bool:
        """Move leadership to the first replica when it is running and in the ISR: whether it moved."""
        state = self.topics[topic][1][index]
        preferred = state.replicas[0]
        if state.leader == preferred or preferred not in state.isr or not self.nodes[preferred].electable:
            return False
        self._set_leader(topic, index, state, preferred)
        self._save()
        return True

    def elect_unclean(self, topic: str, index: int) -> bool:
        """An unclean election for a partition without a leader: whether one was elected."""
        state = self.topics[topic][1][index]
        if state.leader != NO_LEADER:
            return False
        min_isr = self._elr_min_isr(topic)
        if min_isr is not None:
            self._change(topic, index, state, min_isr, True)
        else:
            self._elect(topic, index, state, True)
        self._save()
        return state.leader != NO_LEADER

    def reassign(self, topic: str, index: int, replicas: tuple[int, ...]) -> None:
        """Start reassigning a placed partition to `replicas` (registered nodes, each once), as
        Kafka's controller does (PartitionReassignmentReplicas, PartitionChangeBuilder): against
        its current replicas (the merged list, when one is in progress) it adds and removes nodes
        (both ascending), its replicas become the target followed by those removed, and the
        reassignment completes once the ISR holds every added replica (see _complete). A running
        added replica shares the log, so it is in sync at once; a stopped or crashed one joins the
        ISR, and completes the reassignment, when its node starts."""
        state = self.topics[topic][1][index]
        adding = tuple(sorted(set(replicas) - set(state.replicas)))
        removing = tuple(sorted(set(state.replicas) - set(replicas)))
        previous = state.replicas
        state.replicas, state.adding, state.removing = replicas + removing, adding, removing
        kept = tuple(node for node in state.isr if node in state.replicas)
        state.isr = _expanded(kept, [node for node in state.replicas if self.nodes[node].state is NodeState.RUNNING]) or state.replicas[:1]
        self._complete(topic, index, state)
        self._settle_leader(topic, index, state, previous)
        self._save()

    def cancel_reassignment(self, topic: str, index: int, unclean_allowed: bool) -> None:
        """Revert the reassignment in progress (Kafka's PartitionReassignmentRevert): the added
        replicas leave the replicas and the ISR. With no ISR member left the first original
        replica is its ISR, an unclean election the topic must allow (else UncleanRevert). The
        partition has a reassignment in progress."""
        state = self.topics[topic][1][index]
        replicas = tuple(node for node in state.replicas if node not in state.adding)
        isr = tuple(node for node in state.isr if node not in state.adding)
        if not isr:
            if not unclean_allowed:
                raise UncleanRevert
            isr = replicas[:1]
        previous = state.replicas
        state.replicas, state.isr, state.adding, state.removing = replicas, isr, (), ()
        self._settle_leader(topic, index, state, previous)
        self._save()

    def _complete(self, topic: str, index: int, state: PartitionState) -> None:
        """Complete a reassignment in progress whose ISR allows it
        (PartitionReassignmentReplicas.maybeCompleteReassignment): without the removed replicas,
        the ISR and the replicas are both non-empty, the ISR holds every added replica and, when
        fewer are added than removed, every target replica. The removed replicas leave both."""
        if not (state.adding or state.removing):
            return
        isr = [node for node in state.isr if node not in state.removing]
        replicas = [node for node in state.replicas if node not in state.removing]
        if not isr or not replicas or not set(state.adding) <= set(isr):
            return
        if len(state.adding) < len(state.removing) and not set(replicas) <= set(isr):
            return
        for node in state.removing:
            if state.frozen_ends.pop(node, None) is not None:
                self._on_high_watermark_change(topic, index)
        state.replicas, state.isr, state.adding, state.removing = tuple(replicas), tuple(isr), (), ()

    def _settle_leader(self, topic: str, index: int, state: PartitionState, previous: tuple[int, ...]) -> None:
        """After the replicas changed from `previous`: the leader stays if still a replica in the
        ISR, else the first such replica that is electable leads. Dropping a replica bumps the
        leader epoch even when the leader stays
        (triggerLeaderEpochBumpForReplicaReassignmentIfNeeded), so that a removed follower is fenced."""
        if state.leader in state.replicas and state.leader in state.isr and self.nodes[state.leader].electable:
            if not set(previous) <= set(state.replicas):
                self._bump_epoch(topic, index, state)
        else:
            candidates = [node for node in state.replicas if node in state.isr and self.nodes[node].electable]
            self._set_leader(topic, index, state, candidates[0] if candidates else NO_LEADER)

    def move_leader(self, topic: str, index: int, node_id: int) -> None:
        """Make `node_id` lead the partition; it must be a running replica in the ISR."""
        state = self.topics[topic][1][index]
        if node_id not in state.replicas:
            raise ValueError(f"node {node_id} is not a replica of {topic}-{index} (replicas {list(state.replicas)})")
        if node_id not in state.isr or not self.nodes[node_id].electable:
            raise ValueError(f"node {node_id} is not running and in sync for {topic}-{index}")
        self._set_leader(topic, index, state, node_id)
        self._save()

    # --- persistence ----------------------------------------------------------------------

    def _save(self) -> None:
        if self._path is None:
            return
        data = {
            "topics": {
                name: {
                    "topic_id": topic_id.hex(),
                    "partitions": {
                        str(index): {"replicas": list(s.replicas), "leader": s.leader, "leader_epoch": s.leader_epoch, "epochs": s.epochs,
                                     "removing": list(s.removing)}
                        for index, s in states.items()
                    },
                }
                for name, (topic_id, states) in self.topics.items()
            }
        }
        temporary = self._path.with_suffix(".tmp")
        with open(temporary, "w") as file:
            json.dump(data, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self._path)

    def _load(self) -> None:
        """Replicas, leaders and epochs as they were; every node runs again and so every
        replica is in sync (logical replication), and a partition without a leader elects one."""
        if self._path is None or not self._path.exists():
            return
        data = json.loads(self._path.read_text())
        for name, topic in data["topics"].items():
            states: dict[int, PartitionState] = {}
            for index, saved in topic["partitions"].items():
                # Every replica is in sync again, so a reassignment in progress completes.
                removing = saved.get("removing", ())
                replicas = tuple(node for node in saved["replicas"] if node in self.nodes and node not in removing)
                if not replicas:
                    continue
                state = PartitionState(replicas, saved["leader"], saved["leader_epoch"], replicas, [tuple(entry) for entry in saved["epochs"]])
                if state.leader not in replicas:
                    state.leader = NO_LEADER
                states[int(index)] = state
            self.topics[name] = (bytes.fromhex(topic["topic_id"]), states)
        for name, (_, states) in self.topics.items():
            for index, state in states.items():
                if state.leader == NO_LEADER:
                    self._elect(name, index, state, False)
                self._on_leader_change(name, index, state.leader_epoch)
