"""A KIP-848 consumer group: its members, its epochs, and member reconciliation.

Bookkeeping as Kafka's ConsumerGroup.java and ConsumerGroupMember.java keep it, and
CurrentAssignmentBuilder's reconciliation as a pure function (`reconcile`). Three epochs:
the group epoch grows with every change of membership or subscription (a new group starts at
1, as Kafka's ModernGroup does, so its first member gets epoch 2; a regex counts once resolved,
after the heartbeat that named it: `manager._resolve_regexes`); the target assignment
epoch is the group epoch the target assignment was last computed at, which a heartbeat does
at most once per `consumer.assignment.interval.ms` (KIP-1263: the group is "Assigning" in
between); each member's epoch reaches the target epoch once it owns nothing another member
must get first.

Invariant (the point of incremental reconciliation): a partition is in at most one member's
assigned-or-pending-revocation set, so no partition is owned twice; `partition_owner` is
that map, and a member is handed a partition only once no other member holds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum, IntEnum
from typing import Any

from ottla.server.coordinator.transitions import TransitionTable
from ottla.server.groups.consumer.records import Assignment, CurrentAssignment, MemberMetadata
from ottla.server.groups.records import OffsetAndMetadata
from ottla.server.java_hashing import TIMELINE_INITIAL_SLOTS, timeline_order, timeline_slots_before_put


class ConsumerGroupState(Enum):
    """Kafka's ConsumerGroup.ConsumerGroupState names, as ListGroups and Describe report them."""

    EMPTY = "Empty"
    ASSIGNING = "Assigning"
    RECONCILING = "Reconciling"
    STABLE = "Stable"
    DEAD = "Dead"


# A consumer group's state is derived from its epochs after every change (maybeUpdateGroupState),
# so any live state may follow any other; DEAD is final.
_LIVE = frozenset({ConsumerGroupState.EMPTY, ConsumerGroupState.ASSIGNING, ConsumerGroupState.RECONCILING, ConsumerGroupState.STABLE})
TRANSITIONS = TransitionTable("consumer group", {**{state: _LIVE for state in _LIVE}, ConsumerGroupState.DEAD: frozenset(ConsumerGroupState)})


class MemberState(IntEnum):
    """Kafka's MemberState values, as the CurrentMemberAssignment record stores them."""

    STABLE = 0
    UNREVOKED_PARTITIONS = 1
    UNRELEASED_PARTITIONS = 2
    UNKNOWN = 127


# Member epochs with a meaning of their own (ConsumerGroupHeartbeatRequest.json).
JOIN_EPOCH = 0
LEAVE_EPOCH = -1
LEAVE_STATIC_EPOCH = -2


@dataclass(slots=True, eq=False)
class ConsumerMember:
    member_id: str
    metadata: MemberMetadata
    current: CurrentAssignment = field(default_factory=lambda: CurrentAssignment(0, 0, MemberState.STABLE))
    session_timer: Any = None
    rebalance_timer: Any = None
    # The order Kafka wrote the member's assigned partitions in at its last reconciliation
    # (`orders.reconciled_listing`), which its replayed maps keep within a hash bucket; read
    # back from the record at load.
    listing: list[tuple[bytes, list[int]]] | None = None

    @property
    def member_epoch(self) -> int:
        return self.current.member_epoch

    @property
    def state(self) -> MemberState:
        return MemberState(self.current.state) if self.current.state in MemberState._value2member_map_ else MemberState.UNKNOWN

    @property
    def instance_id(self) -> str | None:
        return self.metadata.instance_id

    @property
    def is_classic(self) -> bool:
        """Served through JoinGroup/SyncGroup/Heartbeat (KIP-848's online upgrade)."""
        return self.metadata.classic is not None


@dataclass(slots=True, eq=False)
class ConsumerGroup:
    group_id: str
    # A new group is at group epoch 1 with an (empty) target at epoch 1 (ModernGroup's
    # TargetAssignmentMetadata.INITIAL, timestamp 0): a member joining with only a regex bumps
    # no epoch, so it is answered epoch 1 and nothing, and no target is computed for it.
    group_epoch: int = 1
    assignment_epoch: int = 1
    # Wall-clock ms of the last target assignment (the AssignmentTimestamp of Kafka 4.3+); 0 lets
    # the next one be computed at once (a new group, or one its last member left).
    assignment_timestamp_ms: int = 0
    state: ConsumerGroupState = ConsumerGroupState.EMPTY
    members: dict[str, ConsumerMember] = field(default_factory=dict)
    static_members: dict[str, str] = field(default_factory=dict)  # instance id -> member id
    target: dict[str, Assignment] = field(default_factory=dict)  # member id -> target assignment
    # (topic id, partition) -> member epoch of the member holding it (assigned or pending revocation).
    partition_epochs: dict[tuple[bytes, int], int] = field(default_factory=dict)
    # Resolved regular expressions: regex -> topic names (ConsumerGroupRegularExpression records).
    resolved_regexes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Storage.topics_version when the regexes were last resolved (-1: not since load, which
    # Kafka's metadata image at load is newer than too), and the coordinator's clock then (ms;
    # Kafka's lastResolvedRegularExpressionRefreshTimeMs, read back from the records at load).
    regex_topics_version: int = -1
    regex_resolved_ms: int = 0
    # What the subscribed topics looked like when last taken: name -> (id, partitions).
    subscription_metadata: dict[str, tuple[bytes, int]] = field(default_factory=dict)
    # The MetadataHash of the last group epoch record: a heartbeat that takes the subscribed
    # topics again bumps the epoch when their hash is another (ModernGroup.metadataHash).
    metadata_hash: int = 0
    # Whether the next heartbeat takes the subscribed topics again even if none changed since
    # `subscription_metadata`: a group new or loaded has never taken them
    # (ModernGroup.hasMetadataExpired with its refresh deadline unset).
    metadata_expired: bool = True
    offsets: dict[tuple[str, int], OffsetAndMetadata] = field(default_factory=dict)
    # The length of Kafka's members hash table (ModernGroup's TimelineHashMap, created for 0
    # entries), which with the insertion order decides the order Kafka lists members in.
    member_slots: int = TIMELINE_INITIAL_SLOTS

    def update_state(self) -> None:
        """ConsumerGroup.maybeUpdateGroupState: the state follows from the epochs."""
        if not self.members:
            target = ConsumerGroupState.EMPTY
        elif self.group_epoch > self.assignment_epoch:
            target = ConsumerGroupState.ASSIGNING
        elif any(m.member_epoch != self.assignment_epoch or m.state is not MemberState.STABLE for m in self.members.values()):
            target = ConsumerGroupState.RECONCILING
        else:
            target = ConsumerGroupState.STABLE
        TRANSITIONS.check(self.state, target)
        self.state = target

    # --- members -----------------------------------------------------------------

    def put_member(self, member: ConsumerMember) -> None:
        """A joining member is put twice in Kafka's members map (replaying its metadata
        record, then its current assignment record), each put growing the table first when
        it would be too full."""
        previous = self.members.get(member.member_id)
        self._grow_member_slots()
        if previous is None:
            self._grow_member_slots(joined=1)
        if previous is not None:
            if previous.instance_id is not None:
                self.static_members.pop(previous.instance_id, None)
            self._release(previous.current)
        self._hold(member.current)
        self.members[member.member_id] = member
        if member.instance_id is not None:
            self.static_members[member.instance_id] = member.member_id

    def _grow_member_slots(self, joined: int = 0) -> None:
        self.member_slots = timeline_slots_before_put(self.member_slots, len(self.members) + joined)

    def members_in_map_order(self) -> list[ConsumerMember]:
        """The members in the order Kafka's members TimelineHashMap iterates them
        (`timeline_order`): the order its describe lists them in."""
        return [self.members[member_id] for member_id in timeline_order(list(self.members), self.member_slots)]

    def remove_member(self, member_id: str) -> ConsumerMember | None:
        """A leaving member is put once more (its current assignment's tombstone replays as
        an update) before it is removed."""
        if member_id in self.members:
            self._grow_member_slots()
        member = self.members.pop(member_id, None)
        if member is not None:
            if member.instance_id is not None and self.static_members.get(member.instance_id) == member_id:
                del self.static_members[member.instance_id]
            self._release(member.current)
        self.target.pop(member_id, None)
        return member

    def set_current(self, member: ConsumerMember, current: CurrentAssignment) -> None:
        """Replace a member's current assignment, keeping `partition_epochs` in step."""
        self._release(member.current)
        member.current = current
        self._hold(current)

    def _hold(self, current: CurrentAssignment) -> None:
        for assignment in (current.assigned, current.pending_revocation):
            for topic_id, partitions in assignment.items():
                for partition in partitions:
                    self.partition_epochs[(topic_id, partition)] = current.member_epoch

    def _release(self, current: CurrentAssignment) -> None:
        for assignment in (current.assigned, current.pending_revocation):
            for topic_id, partitions in assignment.items():
                for partition in partitions:
                    self.partition_epochs.pop((topic_id, partition), None)

    def partition_epoch(self, topic_id: bytes, partition: int) -> int:
        return self.partition_epochs.get((topic_id, partition), -1)

    def waiting_on_unreleased_partition(self, member: ConsumerMember) -> bool:
        """ConsumerGroup.waitingOnUnreleasedPartition: a target partition of the member's is
        still held by another member."""
        if member.state is not MemberState.UNRELEASED_PARTITIONS:
            return False
        for topic_id, partitions in self.target.get(member.member_id, {}).items():
            held = member.current.assigned.get(topic_id, frozenset())
            if any(p not in held and self.partition_epoch(topic_id, p) != -1 for p in partitions):
                return True
        return False

    def all_classic_except(self, member_ids: set[str]) -> bool:
        """Every member but these speaks the classic protocol (ConsumerGroup.allMembersUseClassicProtocolExcept)."""
        return all(m.is_classic for m_id, m in self.members.items() if m_id not in member_ids)

    def preferred_assignor(self, default: str, available: tuple[str, ...]) -> str:
        """ConsumerGroup.computePreferredServerAssignor: the assignor most members ask for
        (ties to the one named first in `available`), else the broker's default."""
        votes: dict[str, int] = {}
        for member in self.members.values():
            name = member.metadata.server_assignor
            if name is not None and name in available:
                votes[name] = votes.get(name, 0) + 1
        if not votes:
            return default
        return max(available, key=lambda name: (votes.get(name, 0), -available.index(name)))


def reconcile(
    member: ConsumerMember,
    target_epoch: int,
    target: Assignment,
    owned: Assignment | None,
    partition_epoch: Any,
    subscribed: frozenset[bytes] | None = None,
    subscription_changed: bool = False,
) -> CurrentAssignment:
    """CurrentAssignmentBuilder.build: the member's next current assignment toward `target`.

    `owned` is what the member says it owns (None when its heartbeat did not say);
    `partition_epoch(topic_id, partition)` is -1 when no member holds the partition;
    `subscribed` the ids of the topics the member subscribes to now (None: all of the target's).
    A member that must give partitions up keeps its epoch until it reports them gone
    (UNREVOKED_PARTITIONS); then it moves to the target epoch and takes every target
    partition that is free, waiting for the rest (UNRELEASED_PARTITIONS). Since the target
    may lag the subscriptions by an assignment interval (KIP-1263), only the target's
    subscribed topics count, and a member whose subscription changed gives up the topics it
    left at once, at its own epoch.

    Each partition keeps the epoch it was assigned at for as long as the member holds it
    (assigned or pending revocation); a partition newly assigned takes the target epoch
    (KIP-1251, CurrentAssignmentBuilder.computeNextAssignment)."""
    if subscribed is not None:
        target = {topic_id: partitions for topic_id, partitions in target.items() if topic_id in subscribed}
    current = member.current
    state = member.state
    if state is MemberState.STABLE and current.member_epoch == target_epoch:
        return _drop_unsubscribed(current, subscribed, owned) if subscription_changed else current
    if state is MemberState.UNREVOKED_PARTITIONS and (owned is None or _owns_any(owned, current.pending_revocation)):
        return _drop_unsubscribed(current, subscribed, owned) if subscription_changed else current
    return _next_assignment(member, target_epoch, target, owned, partition_epoch)


def _drop_unsubscribed(current: CurrentAssignment, subscribed: frozenset[bytes] | None, owned: Assignment | None) -> CurrentAssignment:
    """CurrentAssignmentBuilder.updateCurrentAssignment: the partitions of topics the member
    no longer subscribes to are revoked at its current epoch (or simply dropped when it no
    longer owns them)."""
    if subscribed is None:
        return current
    kept = {topic_id: partitions for topic_id, partitions in current.assigned.items() if topic_id in subscribed}
    if kept == current.assigned:
        return current
    revoking = dict(current.pending_revocation)
    for topic_id, partitions in current.assigned.items():
        if topic_id not in subscribed:
            revoking[topic_id] = revoking.get(topic_id, frozenset()) | partitions
    if owned is None or _owns_any(owned, revoking):
        return CurrentAssignment(current.member_epoch, current.member_epoch, MemberState.UNREVOKED_PARTITIONS, kept, revoking, current.assignment_epochs)
    return replace(current, previous_member_epoch=current.member_epoch, assigned=kept)


def _next_assignment(member: ConsumerMember, target_epoch: int, target: Assignment, owned: Assignment | None, partition_epoch: Any) -> CurrentAssignment:
    current = member.current
    # Revoked partitions are left out: this runs only once the member reported them gone.
    held = current.assigned
    assigned: dict[bytes, set[int]] = {}
    revoking: dict[bytes, set[int]] = {}
    pending: dict[bytes, set[int]] = {}
    unreleased = False
    for topic_id in set(target) | set(held):
        wanted = target.get(topic_id, frozenset())
        had = held.get(topic_id, frozenset())
        keep = had & wanted
        if keep:
            assigned[topic_id] = set(keep)
        if had - keep:
            revoking[topic_id] = set(had - keep)
        free = set()
        # A partition the member is itself revoking is not held by another: it may have it
        # back at once (CurrentAssignmentBuilder.computeNextAssignment).
        own = current.pending_revocation.get(topic_id, frozenset())
        for partition in wanted - keep:
            if partition in own or partition_epoch(topic_id, partition) == -1:
                free.add(partition)
            else:
                unreleased = True
        if free:
            pending[topic_id] = free
    revoking_frozen = _frozen(revoking)
    if revoking_frozen and (owned is None or _owns_any(owned, revoking_frozen)):
        # Kafka's updateMemberEpoch(memberEpoch): the previous epoch becomes the current one,
        # so a heartbeat still at the epoch before is fenced while partitions are being revoked.
        return CurrentAssignment(current.member_epoch, current.member_epoch, MemberState.UNREVOKED_PARTITIONS, _frozen(assigned), revoking_frozen,
                                 current.assignment_epochs)
    epochs = dict(current.assignment_epochs)
    for topic_id, partitions in pending.items():
        assigned.setdefault(topic_id, set()).update(partitions)
        epochs.update(((topic_id, partition), target_epoch) for partition in partitions)
    state = MemberState.UNRELEASED_PARTITIONS if unreleased else MemberState.STABLE
    return CurrentAssignment(target_epoch, current.member_epoch, state, _frozen(assigned), {}, epochs)


def _owns_any(owned: Assignment, partitions: Assignment) -> bool:
    return any(owned.get(topic_id, frozenset()) & wanted for topic_id, wanted in partitions.items())


def _frozen(assignment: dict[bytes, set[int]]) -> Assignment:
    return {topic_id: frozenset(partitions) for topic_id, partitions in assignment.items() if partitions}


def is_subset(owned: Assignment, assigned: Assignment) -> bool:
    return all(partitions <= assigned.get(topic_id, frozenset()) for topic_id, partitions in owned.items())

