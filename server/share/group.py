"""Share-group membership: members, epochs and the broker-side assignment (KIP-932).

A share group has no rebalance barrier: members never own partitions exclusively, so an
assignment change needs no revocation. As in Kafka 4.4, three epochs move:

- the group epoch grows with each heartbeat that changes the membership, a subscription,
  or the subscribed topics' metadata (their hash: ids, names, partition counts, racks), and
  with one that finds, no assignment pending, subscribed partitions initialized that the
  target assignment does not hold;
- the assignment epoch is the group epoch the target assignment was last computed at: a
  heartbeat recomputes it when it lags, at most once per `share.assignment.interval.ms`;
- a member's epoch is the assignment epoch it last took its target assignment at, which it
  must send back.

A subscribed partition is assigned only once its share state is initialized
(InitializeShareGroupState): the heartbeat that first sees it initializes it, so the next
heartbeat bumps the group epoch, and the one after the interval assigns it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from ottla.server.coordinator import TimerHandle, TransitionTable


class ShareGroupState(Enum):
    """ShareGroup.ShareGroupState as ShareGroupDescribe and ListGroups name them."""

    EMPTY = "Empty"
    STABLE = "Stable"
    DEAD = "Dead"


GROUP_TRANSITIONS = TransitionTable(
    "share group",
    {
        ShareGroupState.STABLE: frozenset({ShareGroupState.EMPTY, ShareGroupState.STABLE}),
        ShareGroupState.EMPTY: frozenset({ShareGroupState.EMPTY, ShareGroupState.STABLE}),
        ShareGroupState.DEAD: frozenset({ShareGroupState.EMPTY}),
    },
)

# topic id -> its partitions assigned to one member
Assignment = dict[bytes, list[int]]


@dataclass(slots=True, eq=False)
class ShareMember:
    member_id: str
    member_epoch: int
    client_id: str
    client_host: str
    rack_id: str | None
    subscribed_topic_names: list[str]
    assignment: Assignment = field(default_factory=dict)
    session_timer: TimerHandle | None = None
    # The epoch before the last change (-1 for a new member, as Kafka's ShareGroupMember): a
    # heartbeat at it is accepted, its sender having missed the answer that moved it on.
    previous_member_epoch: int = -1


@dataclass(slots=True, eq=False)
class ShareGroup:
    group_id: str
    group_epoch: int = 0
    # ModernGroup.computeMetadataHash of the subscribed topics that exist, as the group epoch
    # last moved for (and its record keeps): a heartbeat that finds another bumps the epoch.
    metadata_hash: int = 0
    assignment_epoch: int = 0
    members: dict[str, ShareMember] = field(default_factory=dict)
    # The topics whose share-partitions this group has initialized, by topic id: name.
    topics: dict[bytes, str] = field(default_factory=dict)
    # The partitions whose share state is initialized for this group, by topic id: only
    # these are assigned.
    initialized: dict[bytes, set[int]] = field(default_factory=dict)
    # The target assignment computed at `assignment_epoch`, by member id, and when (clock seconds).
    target: dict[str, Assignment] = field(default_factory=dict)
    assigned_at: float | None = None
    # The wall-clock time of that computation, as its record keeps it (0: none, or without the assignor).
    assignment_timestamp_ms: int = 0
    dead: bool = False

    @property
    def state(self) -> ShareGroupState:
        if self.dead:
            return ShareGroupState.DEAD
        return ShareGroupState.STABLE if self.members else ShareGroupState.EMPTY

    def subscribed_topics(self) -> set[str]:
        return {name for member in self.members.values() for name in member.subscribed_topic_names}


def assign(members: Mapping[str, list[str]], partitions: Mapping[str, tuple[bytes, list[int]]]) -> dict[str, Assignment]:
    """Kafka's SimpleAssignor for share groups (group-coordinator's assignor/SimpleAssignor),
    for an assignment made afresh. `members` is member id -> subscribed topic names,
    `partitions` topic name -> (topic id, the partitions that may be assigned) of the topics
    that exist. Members all subscribed alike (SimpleHomogeneousAssignmentBuilder) share the
    pool of every subscribed partition: each partition goes to ceil(members / partitions)
    members, and the members' counts differ by at most one, so two members of a group
    reading a one-partition and a three-partition topic hold two partitions each. Members
    subscribed differently (SimpleHeterogeneousAssignmentBuilder) are balanced topic by topic:
    a topic with fewer partitions than subscribers has them shared so that each gets one."""
    ordered = sorted(members)
    if len({frozenset(members[m]) for m in ordered}) == 1:
        subscribed = set(members[ordered[0]]) if ordered else set()
        pool = [(partitions[name][0], index) for name in sorted(subscribed & partitions.keys()) for index in partitions[name][1]]
        return _spread(ordered, pool)
    assignment: dict[str, Assignment] = {member_id: {} for member_id in ordered}
    for name in sorted(partitions):
        topic_id, indexes = partitions[name]
        subscribers = [member_id for member_id in ordered if name in members[member_id]]
        for member_id, held in _spread(subscribers, [(topic_id, index) for index in indexes]).items():
            assignment[member_id].update(held)
    return assignment


def _spread(member_ids: list[str], targets: list[tuple[bytes, int]]) -> dict[str, Assignment]:
    """`targets` spread over `member_ids` as Kafka's simple assignment builders spread them when
    no member holds anything yet (assignRemainingPartitions): each target goes to
    `sharing` = ceil(members / targets) members, member i wants
    ceil(p * (i + 1)) - ceil(p * i) of them, p = sharing * targets / members (the same
    doubles as Java's), and the members still wanting more take the targets in turn."""
    held: dict[str, Assignment] = {member_id: {} for member_id in member_ids}
    if not member_ids or not targets:
        return held
    sharing = -(-len(member_ids) // len(targets))
    precise = sharing * len(targets) / len(member_ids)
    wanted = [math.ceil(precise * (i + 1)) - math.ceil(precise * i) for i in range(len(member_ids))]
    counts = [0] * len(member_ids)
    unfilled = [i for i in range(len(member_ids)) if wanted[i] > 0]
    position, took = 0, False
    for topic_id, index in targets:
        holders: set[int] = set()
        while len(holders) < sharing and unfilled:
            if position >= len(unfilled):
                if not took:
                    break  # every member still wanting more holds this target already
                position, took = 0, False
            member = unfilled[position]
            if member in holders:
                position += 1
                continue
            held[member_ids[member]].setdefault(topic_id, []).append(index)
            holders.add(member)
            counts[member] += 1
            took = True
            if counts[member] >= wanted[member]:
                unfilled.pop(position)
            else:
                position += 1
        if not unfilled:
            break
    return {member_id: {topic: sorted(parts) for topic, parts in topics.items()} for member_id, topics in held.items()}
