"""A streams group (KIP-1071): its topology, members, epochs, and task reconciliation.

Bookkeeping as Kafka's StreamsGroup.java and StreamsGroupMember.java keep it. A task is a
(subtopology id, partition) pair; a member owns active and standby tasks (no warm-up tasks:
Kafka 4.4 assigns none). The group epoch grows with every change of membership or topology;
the target assignment is computed at a group epoch; a member reaches the target epoch once
it holds nothing another member must get first.

Invariant (the point of reconciliation): an active task is held, assigned or pending
revocation, by at most one member (`active_owner`), so no task runs twice; and no task is
granted to a process that holds it in another role through another member. Only one member
may hold a task in two roles at once, in an in-place role change (Kafka 4.4's
CurrentAssignmentBuilder): an active task it gives up stays pending revocation while it
already holds it as the standby it becomes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, IntEnum
from typing import Any, Callable

from ottla.server.coordinator.transitions import TransitionTable
from ottla.server.groups.records import OffsetAndMetadata
from ottla.server.groups.streams.records import Tasks
from ottla.server.java_hashing import TIMELINE_INITIAL_SLOTS, timeline_order, timeline_slots_before_put


class StreamsGroupState(Enum):
    """Kafka's StreamsGroup.StreamsGroupState names, as ListGroups and Describe report them."""

    EMPTY = "Empty"
    NOT_READY = "NotReady"
    ASSIGNING = "Assigning"
    RECONCILING = "Reconciling"
    STABLE = "Stable"
    DEAD = "Dead"


# The state follows from the topology and the epochs after every change (maybeUpdateGroupState),
# so any live state may follow any other; DEAD is final.
_LIVE = frozenset(set(StreamsGroupState) - {StreamsGroupState.DEAD})
TRANSITIONS = TransitionTable("streams group", {**{state: _LIVE for state in _LIVE}, StreamsGroupState.DEAD: frozenset(StreamsGroupState)})


class MemberState(IntEnum):
    """Kafka's streams MemberState values, as the CurrentMemberAssignment record stores them
    (streams.MemberState.value, which unlike the consumer group's starts at 1)."""

    STABLE = 1
    UNREVOKED_TASKS = 2
    UNRELEASED_TASKS = 3
    UNKNOWN = 127


JOIN_EPOCH = 0
LEAVE_EPOCH = -1
LEAVE_STATIC_EPOCH = -2


@dataclass(slots=True, frozen=True)
class TasksTuple:
    active: Tasks = field(default_factory=dict)
    standby: Tasks = field(default_factory=dict)
    warmup: Tasks = field(default_factory=dict)

    def is_empty(self) -> bool:
        return not (self.active or self.standby or self.warmup)

    def contains_any(self, other: TasksTuple) -> bool:
        return _overlap(self.active, other.active) or _overlap(self.standby, other.standby) or _overlap(self.warmup, other.warmup)


EMPTY = TasksTuple()


@dataclass(slots=True, frozen=True)
class TaskOffsets:
    """MemberTaskOffsets: the cumulative changelog offsets and end offsets per task a member
    last reported (its heartbeats' TaskOffsets and TaskEndOffsets, each kept until the member
    sends it again). Kept in memory only, as Kafka's StreamsGroup keeps them: no record holds
    them, so a reloaded group has none until its members report again."""

    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    end_offsets: dict[tuple[str, int], int] = field(default_factory=dict)


NO_TASK_OFFSETS = TaskOffsets()


@dataclass(slots=True, frozen=True)
class MemberMetadata:
    instance_id: str | None
    rack_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    topology_epoch: int
    process_id: str
    user_endpoint: tuple[str, int] | None
    client_tags: tuple[tuple[str, str], ...]


@dataclass(slots=True, frozen=True)
class CurrentAssignment:
    """A member's epochs, state and tasks, with the epoch each held active task was assigned
    at (KIP-1251: a commit at an older member epoch may commit a task's partition assigned at
    or before that epoch).

    Invariant: `active_epochs` has exactly the held (assigned or pending revocation) active
    tasks; one it is not given was assigned at the member epoch, as Kafka reads a record
    written without them, and one given that is not held is dropped."""

    member_epoch: int = 0
    previous_member_epoch: int = 0
    state: int = MemberState.STABLE
    assigned: TasksTuple = EMPTY
    pending_revocation: TasksTuple = EMPTY
    active_epochs: dict[tuple[str, int], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        given = self.active_epochs
        held = {(subtopology, partition): given.get((subtopology, partition), self.member_epoch)
                for tasks in (self.assigned.active, self.pending_revocation.active) for subtopology, partitions in tasks.items() for partition in partitions}
        if held != given:
            object.__setattr__(self, "active_epochs", held)


@dataclass(slots=True, eq=False)
class StreamsMember:
    member_id: str
    metadata: MemberMetadata
    current: CurrentAssignment = field(default_factory=CurrentAssignment)
    session_timer: Any = None
    rebalance_timer: Any = None

    @property
    def member_epoch(self) -> int:
        return self.current.member_epoch

    @property
    def state(self) -> MemberState:
        return MemberState(self.current.state) if self.current.state in MemberState._value2member_map_ else MemberState.UNKNOWN

    @property
    def process_id(self) -> str:
        return self.metadata.process_id


@dataclass(slots=True, eq=False)
class StreamsGroup:
    """A new group starts at group and assignment epoch 1 with no assignment time, as Kafka
    4.4's StreamsGroup (TargetAssignmentMetadata.INITIAL), so its first member gets epoch 2
    and is assigned at once. `assignment_timestamp_ms` is when the target was last computed
    (0: never, or the group was emptied): the next computation waits for
    `streams.assignment.interval.ms` after it."""

    group_id: str
    group_epoch: int = 1
    assignment_epoch: int = 1
    assignment_timestamp_ms: int = 0
    metadata_hash: int = 0
    validated_topology_epoch: int = -1
    # The assignor's configs at the last epoch bump (StreamsGroupMetadataValue.LastAssignmentConfigs).
    assignment_configs: dict[str, str] = field(default_factory=dict)
    # KIP-1331 (StreamsGroupMetadataValue tags 2 and 3): the topology epoch whose description
    # the plugin holds (-1 none, -2 uncertain: a push was under way), and the one whose push
    # the plugin refused for good (-1 none).
    stored_description_topology_epoch: int = -1
    failed_description_topology_epoch: int = -1
    state: StreamsGroupState = StreamsGroupState.EMPTY
    # The StreamsGroupTopology record's value as stored (None until a member initialized it).
    topology: dict[str, Any] | None = None
    members: dict[str, StreamsMember] = field(default_factory=dict)
    static_members: dict[str, str] = field(default_factory=dict)  # instance id -> member id
    target: dict[str, TasksTuple] = field(default_factory=dict)
    endpoint_epoch: int = 0
    shutdown_requested_by: str | None = None
    offsets: dict[tuple[str, int], OffsetAndMetadata] = field(default_factory=dict)
    task_offsets: dict[str, TaskOffsets] = field(default_factory=dict)  # member id -> its last report
    # The length of Kafka's members hash table (TimelineHashMap, created for 0 entries), which
    # with the insertion order decides the order Kafka iterates members in (describe, endpoints).
    member_slots: int = TIMELINE_INITIAL_SLOTS

    @property
    def topology_epoch(self) -> int:
        return -1 if self.topology is None else int(self.topology["epoch"])

    def update_state(self) -> None:
        """StreamsGroup.maybeUpdateGroupState: the state follows from topology and epochs."""
        if not self.members:
            target = StreamsGroupState.EMPTY
            self.shutdown_requested_by = None
        elif self.topology is None or self.topology_epoch != self.validated_topology_epoch:
            target = StreamsGroupState.NOT_READY
        elif self.group_epoch > self.assignment_epoch:
            target = StreamsGroupState.ASSIGNING
        elif any(m.member_epoch != self.assignment_epoch or m.state is not MemberState.STABLE for m in self.members.values()):
            target = StreamsGroupState.RECONCILING
        else:
            target = StreamsGroupState.STABLE
        TRANSITIONS.check(self.state, target)
        self.state = target

    def subscribed_topics(self) -> frozenset[str]:
        """StreamsGroup.isSubscribedToTopic's topics: a group with members reads the source and
        repartition source topics of its topology (not those a source pattern matches), whose
        committed offsets neither OffsetDelete nor expiration may drop; an empty group reads none."""
        if self.state in (StreamsGroupState.EMPTY, StreamsGroupState.DEAD) or self.topology is None:
            return frozenset()
        return frozenset(topic for subtopology in self.topology["subtopologies"]
                         for topic in (*subtopology["source_topics"], *(t["name"] for t in subtopology["repartition_source_topics"])))

    def is_subscribed_to(self, topic: str) -> bool:
        return topic in self.subscribed_topics()

    def put_member(self, member: StreamsMember) -> None:
        """A joining member is put twice in Kafka's members map (its metadata record, then its
        assignment record), each put growing the table first when it would be too full."""
        previous = self.members.get(member.member_id)
        if previous is not None and previous.metadata.instance_id is not None:
            self.static_members.pop(previous.metadata.instance_id, None)
        self._grow_member_slots()
        if previous is None:
            self._grow_member_slots(joined=1)
        self.members[member.member_id] = member
        if member.metadata.instance_id is not None:
            self.static_members[member.metadata.instance_id] = member.member_id

    def _grow_member_slots(self, joined: int = 0) -> None:
        self.member_slots = timeline_slots_before_put(self.member_slots, len(self.members) + joined)

    def members_in_map_order(self) -> list[StreamsMember]:
        """The members in the order Kafka's members TimelineHashMap iterates them
        (`timeline_order`): the order its describe lists them in."""
        return [self.members[member_id] for member_id in timeline_order(list(self.members), self.member_slots)]

    def remove_member(self, member_id: str) -> StreamsMember | None:
        member = self.members.pop(member_id, None)
        if member is not None and member.metadata.instance_id is not None and self.static_members.get(member.metadata.instance_id) == member_id:
            del self.static_members[member.metadata.instance_id]
        self.target.pop(member_id, None)
        self.task_offsets.pop(member_id, None)
        return member

    # --- who holds a task now (StreamsGroup.currentActiveTaskProcessId and friends) ---
    # Assigned or pending revocation, the member being reconciled included, as Kafka's maps are
    # kept (maybeUpdateTaskProcessId) until its new assignment is stored.

    def active_owner(self, subtopology: str, partition: int) -> StreamsMember | None:
        for member in self.members.values():
            for tasks in (member.current.assigned.active, member.current.pending_revocation.active):
                if partition in tasks.get(subtopology, ()):
                    return member
        return None

    def replica_processes(self, role: str, subtopology: str, partition: int) -> set[str]:
        """The processes holding the task as a `role` ("standby" or "warmup") replica."""
        return {
            m.process_id
            for m in self.members.values()
            if any(partition in getattr(tasks, role).get(subtopology, ()) for tasks in (m.current.assigned, m.current.pending_revocation))
        }


class UnknownMemberState(Exception):
    """A member stored in a state this broker does not know (a newer one's) heartbeated without
    reporting that it owns nothing: FENCED_MEMBER_EPOCH, as Kafka 4.4's CurrentAssignmentBuilder."""


def reconcile(group: StreamsGroup, member: StreamsMember, target_epoch: int, target: TasksTuple, owned: TasksTuple | None) -> CurrentAssignment:
    """CurrentAssignmentBuilder.build (streams): the member's next current assignment.

    `owned` is what the member says it holds (None when its heartbeat did not say). A member
    that must give tasks up stays at its epoch until it reports them gone (UNREVOKED_TASKS),
    then moves one epoch on and is reconciled again; otherwise it takes every target task it
    may have now and waits for the rest (UNRELEASED_TASKS). A member in an unknown state is
    reconciled from the target epoch only once it reports owning nothing; until then it is
    fenced (UnknownMemberState), so no task it may still run is granted to another."""
    current = member.current
    state = member.state
    if state is MemberState.STABLE:
        return current if current.member_epoch == target_epoch else _next(group, member, current.member_epoch, target_epoch, target, owned)
    if state is MemberState.UNREVOKED_TASKS:
        if _not_released(owned, current.pending_revocation):
            return current
        return _next(group, member, current.member_epoch + 1, target_epoch, target, owned)
    if state is MemberState.UNKNOWN:
        if owned is None or not owned.is_empty():
            raise UnknownMemberState("The streams group member is in a unknown state. The member must abandon all its tasks and rejoin.")
        return _next(group, member, target_epoch, target_epoch, target, owned)
    return _next(group, member, current.member_epoch, target_epoch, target, owned)


def _next(group: StreamsGroup, member: StreamsMember, member_epoch: int, target_epoch: int, target: TasksTuple,
          owned: TasksTuple | None) -> CurrentAssignment:
    """CurrentAssignmentBuilder.computeNextAssignment and buildNewMember.

    A task is granted in a role only once no other member holds it in a way that forbids it:
    an active task once its owner anywhere released it, any task once no other member of this
    process holds it in another role, a replica once no other member of this process holds it
    as the same replica. This member's own role changes are not blocked by it: its active task
    to be a standby is demoted in the same step (the standby granted while the active task is
    still pending revocation), a standby or warm-up is converted into the other at once, and one
    to be promoted to active is kept until the active task is granted, then dropped in that same
    step, never revoked on its own (Kafka 4.4's demoteActiveTasksToStandby, convertReplicaRole,
    applyPromotionsToActive): the client recycles the task's state instead of restoring it."""
    current = member.current
    held = current.assigned
    process = member.process_id

    def active_process(subtopology: str, partition: int) -> str | None:
        owner = group.active_owner(subtopology, partition)
        return None if owner is None else owner.process_id

    def held_by_another_here(role: str, subtopology: str, partition: int) -> bool:
        mine: Tasks = getattr(held, role)
        return process in group.replica_processes(role, subtopology, partition) and partition not in mine.get(subtopology, frozenset())

    def active_unreleased(subtopology: str, partition: int) -> bool:
        return (active_process(subtopology, partition) is not None or held_by_another_here("standby", subtopology, partition)
                or held_by_another_here("warmup", subtopology, partition))

    def standby_unreleased(subtopology: str, partition: int) -> bool:
        run_by_another_here = active_process(subtopology, partition) == process and partition not in held.active.get(subtopology, frozenset())
        return (run_by_another_here or process in group.replica_processes("standby", subtopology, partition)
                or held_by_another_here("warmup", subtopology, partition))

    def warmup_unreleased(subtopology: str, partition: int) -> bool:
        return (active_process(subtopology, partition) == process or held_by_another_here("standby", subtopology, partition)
                or process in group.replica_processes("warmup", subtopology, partition))

    active = _difference(held.active, target.active, active_unreleased)
    standby = _difference(held.standby, target.standby, standby_unreleased)
    warmup = _difference(held.warmup, target.warmup, warmup_unreleased)
    # Role changes of this member's own tasks that wait on no one take effect in this step.
    _grant_now(held.active, standby)
    _grant_now(held.standby, warmup, standby.revoke)
    _grant_now(held.warmup, standby, warmup.revoke)
    # A standby or warm-up to be promoted to active is never revoked on its own.
    for role, diff in ((held.standby, standby), (held.warmup, warmup)):
        for subtopology, partition in _pairs(role):
            if partition in target.active.get(subtopology, frozenset()):
                diff.revoke.get(subtopology, set()).discard(partition)
    revoking = TasksTuple(_frozen(active.revoke), _frozen(standby.revoke), _frozen(warmup.revoke))
    to_revoke = not revoking.is_empty() and _not_released(owned, revoking)
    # ... and is kept until the active task is granted, then dropped in the same step.
    for role, diff in ((held.standby, standby), (held.warmup, warmup)):
        for subtopology, partition in _pairs(role):
            promoted_now = not to_revoke and partition in active.grant.get(subtopology, ())
            if partition in target.active.get(subtopology, frozenset()) and not promoted_now:
                diff.keep.setdefault(subtopology, set()).add(partition)
    kept = TasksTuple(_frozen(active.keep), _frozen(standby.keep), _frozen(warmup.keep))
    if to_revoke:
        return CurrentAssignment(member_epoch, current.member_epoch, MemberState.UNREVOKED_TASKS, kept, revoking, current.active_epochs)
    epochs = dict(current.active_epochs)
    for diff in (active, standby, warmup):
        for subtopology, granted in diff.grant.items():
            diff.keep.setdefault(subtopology, set()).update(granted)
    epochs.update(((subtopology, partition), target_epoch) for subtopology, partition in _pairs(_frozen(active.grant)))
    unreleased = active.unreleased or standby.unreleased or warmup.unreleased
    assigned = TasksTuple(_frozen(active.keep), _frozen(standby.keep), _frozen(warmup.keep))
    return CurrentAssignment(target_epoch, current.member_epoch, MemberState.UNRELEASED_TASKS if unreleased else MemberState.STABLE, assigned, EMPTY, epochs)


@dataclass(slots=True)
class _Diff:
    keep: dict[str, set[int]]
    revoke: dict[str, set[int]]
    grant: dict[str, set[int]]
    unreleased: bool


def _difference(held: Tasks, target: Tasks, is_unreleased: Callable[[str, int], bool]) -> _Diff:
    diff = _Diff({}, {}, {}, False)
    for subtopology in set(held) | set(target):
        had = held.get(subtopology, frozenset())
        wanted = target.get(subtopology, frozenset())
        if had & wanted:
            diff.keep[subtopology] = set(had & wanted)
        if had - wanted:
            diff.revoke[subtopology] = set(had - wanted)
        for partition in wanted - had:
            if is_unreleased(subtopology, partition):
                diff.unreleased = True
            else:
                diff.grant.setdefault(subtopology, set()).add(partition)
    return diff


def _grant_now(outgoing: Tasks, incoming: _Diff, outgoing_revoke: dict[str, set[int]] | None = None) -> None:
    """A task held in the outgoing role and pending in the incoming one is granted in this step
    (and, for a replica converted into the other replica, not revoked: grantNow)."""
    for subtopology, partition in _pairs(outgoing):
        pending = incoming.grant.get(subtopology)
        if pending is not None and partition in pending:
            pending.discard(partition)
            incoming.keep.setdefault(subtopology, set()).add(partition)
            if outgoing_revoke is not None:
                outgoing_revoke.get(subtopology, set()).discard(partition)


def _pairs(tasks: Tasks) -> list[tuple[str, int]]:
    return [(subtopology, partition) for subtopology, partitions in tasks.items() for partition in partitions]


def _not_released(owned: TasksTuple | None, revoking: TasksTuple) -> bool:
    return owned is None or owned.contains_any(revoking)


def _overlap(a: Tasks, b: Tasks) -> bool:
    return any(a.get(subtopology, frozenset()) & partitions for subtopology, partitions in b.items())


def _frozen(tasks: dict[str, set[int]]) -> Tasks:
    return {subtopology: frozenset(partitions) for subtopology, partitions in tasks.items() if partitions}


def owned_subset(owned: TasksTuple | None, assigned: TasksTuple) -> bool:
    """Every task the member says it owns is in its assignment (areOwnedTasksContainedInAssignedTasks)."""
    if owned is None:
        return False
    return all(
        partitions <= mine.get(subtopology, frozenset())
        for theirs, mine in ((owned.active, assigned.active), (owned.standby, assigned.standby), (owned.warmup, assigned.warmup))
        for subtopology, partitions in theirs.items()
    )
