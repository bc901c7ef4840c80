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
from collections.abc import Callable, Collection, Hashable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Generic, TypeVar, cast

from ottla.server.coordinator import TimerHandle, TransitionTable
from ottla.server.java_hashing import default_capacity, int_hash, java_order, string_hash, table_size_for, uuid_hash


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


def assign(members: Mapping[str, list[str]], partitions: Mapping[str, tuple[bytes, list[int]]],
           current: Mapping[str, Assignment] | None = None) -> dict[str, Assignment]:
    """Kafka's SimpleAssignor for share groups (group-coordinator's assignor/SimpleAssignor).
    `members` is member id -> subscribed topic names, in the order the group holds them;
    `partitions` topic name -> (topic id, the partitions that may be assigned) of the topics
    that exist; `current` the target assignment by member id (none: assigned afresh).

    Members all subscribed alike (SimpleHomogeneousAssignmentBuilder) share the pool of every
    subscribed partition: each partition goes to ceil(members / partitions) members, and member
    i of the group's order wants ceil(p * (i + 1)) - ceil(p * i) of them, p = sharing *
    partitions / members. Members subscribed differently (SimpleHeterogeneousAssignmentBuilder)
    are balanced so topic by topic, among the topic's subscribers. Either way a member keeps
    what it holds that still fits (revoking unsubscribed topics, then what makes it hold more
    than it wants, then what makes a partition shared more than wanted), and the partitions
    shared less than wanted go to the members wanting more. Kafka numbers the members in the
    order of TargetAssignmentBuilder's HashMap of them and walks its partitions and members in
    its HashMaps' orders, which the choices follow: so does this port (`_JavaHashTable`)."""
    ordered = java_order(list(members), string_hash, default_capacity(len(members)))
    old = [dict((current or {}).get(member_id, {})) for member_id in ordered]
    subscribed = {partitions[name][0]: partitions[name][1] for m in ordered for name in members[m] if name in partitions}
    if not subscribed:
        return {member_id: {} for member_id in ordered}
    if len({frozenset(members[m]) for m in ordered}) == 1:
        topic_ids = [partitions[name][0] for name in java_order(list(members[ordered[0]]), string_hash, default_capacity(len(members[ordered[0]])))
                     if name in partitions]
        assigned = _Homogeneous(old, [(topic_id, index) for topic_id in topic_ids for index in subscribed[topic_id]]).build()
    else:
        assigned = [_copy(held) for held in old]
        for topic_id in java_order(list(subscribed), uuid_hash, default_capacity(len(subscribed))):
            subscribers = [i for i, m in enumerate(ordered) if any(partitions[name][0] == topic_id for name in members[m] if name in partitions)]
            _TopicBuilder(topic_id, old, assigned, subscribed[topic_id], subscribers).build()
    return {member_id: {topic_id: sorted(held) for topic_id, held in assigned[i].items()} for i, member_id in enumerate(ordered)}


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# java.util.HashMap's load factor.
_LOAD = 0.75


class _JavaHashTable(Generic[K, V]):
    """A java.util.HashMap (a HashSet: values None) as far as its iteration order goes: by
    bucket of the spread hash, then along the bucket's chain. `put` links a new key at its
    chain's tail and grows the table after (past 3/4 full), `compute_if_absent` links it at the
    head and grows the table before, and a resize splits chains keeping their order: so a chain
    is ordered by a sequence number that grows for tail links and falls for head links."""

    def __init__(self, hash_of: Callable[[K], int], initial_capacity: int | None = None) -> None:
        self._hash_of = hash_of
        # new HashMap<>() allocates 16 buckets; new HashMap<>(n) tableSizeFor(n).
        self._pending = 16 if initial_capacity is None else table_size_for(initial_capacity)
        self._capacity = 0
        self._entries: dict[K, tuple[int, V]] = {}
        self._first = self._last = 0

    def _grow(self) -> None:
        self._capacity = self._pending if not self._capacity else self._capacity * 2

    def _threshold(self) -> int:
        return int(self._capacity * _LOAD)

    def put(self, key: K, value: V) -> None:
        if key in self._entries:
            self._entries[key] = (self._entries[key][0], value)
            return
        if not self._capacity:
            self._grow()
        self._last += 1
        self._entries[key] = (self._last, value)
        if len(self._entries) > self._threshold():
            self._grow()

    def compute_if_absent(self, key: K, make: Callable[[], V]) -> V:
        if key not in self._entries:
            if not self._capacity or len(self._entries) > self._threshold():
                self._grow()
            self._first -= 1
            self._entries[key] = (self._first, make())
        return self._entries[key][1]

    def add(self, key: K) -> None:
        self.put(key, cast(V, None))

    def remove(self, key: K) -> None:
        self._entries.pop(key, None)

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        return None if entry is None else entry[1]

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def keys(self) -> list[K]:
        """The keys in iteration order, as a snapshot: Kafka removes only the key an iterator
        is at, which leaves the rest of the walk as it was."""
        mask = self._capacity - 1

        def place(key: K) -> tuple[int, int]:
            h = self._hash_of(key)
            return (h ^ (h >> 16)) & mask, self._entries[key][0]

        return sorted(self._entries, key=place)


TopicPartition = tuple[bytes, int]


def _topic_partition_hash(topic_partition: TopicPartition) -> int:
    """server.common.TopicIdPartition's record hashCode: 31 * the topic id's + the index."""
    return (31 * uuid_hash(topic_partition[0]) + topic_partition[1]) & 0xFFFFFFFF


def _new_hash_map_capacity(size: int) -> int:
    """AssignorHelpers.newHashMap/newHashSet: a HashMap(int) of (size + 1) / 0.75 + 1."""
    return int((size + 1) / _LOAD + 1)


def _copy(held: Assignment | dict[bytes, set[int]]) -> dict[bytes, set[int]]:
    return {topic_id: set(partitions) for topic_id, partitions in held.items()}


def _held_order(held: Mapping[bytes, Collection[int]]) -> list[tuple[bytes, list[int]]]:
    """A member's assignment in the order its HashMap of topic ids and HashSets of indexes
    iterate (as a fresh map holding them would)."""
    return [(topic_id, java_order(sorted(held[topic_id]), int_hash, default_capacity(len(held[topic_id]))))
            for topic_id in java_order(list(held), uuid_hash, default_capacity(len(held)))]


def _desired_counts(sharing: int, targets: int, members: int) -> list[int]:
    """How many partitions member i (of `members`) wants: ceil(p * (i + 1)) - ceil(p * i),
    p = sharing * targets / members in Java's doubles (Python's floats are the same)."""
    precise = sharing * targets / members
    return [math.ceil(precise * (i + 1)) - math.ceil(precise * i) for i in range(members)]


class _Homogeneous:
    """SimpleHomogeneousAssignmentBuilder over members numbered 0 to n - 1 with their
    current assignments `old`, and the subscribed partitions that may be assigned."""

    def __init__(self, old: list[Assignment], targets: list[TopicPartition]) -> None:
        self.old, self.targets = old, targets
        members = len(old)
        self.subscribed = {topic_id for topic_id, _ in targets}
        self.sharing = (members + len(targets) - 1) // len(targets) if targets else 0
        self.desired = _desired_counts(self.sharing, len(targets), members)
        self.new: list[dict[bytes, set[int]] | None] = [None] * members
        self.by_partition: _JavaHashTable[TopicPartition, _JavaHashTable[int, None]] = _JavaHashTable(
            _topic_partition_hash, _new_hash_map_capacity(len(targets)))
        self.by_member: _JavaHashTable[int, _JavaHashTable[TopicPartition, None]] = _JavaHashTable(int_hash, _new_hash_map_capacity(members))
        self.unfilled: _JavaHashTable[int, None] = _JavaHashTable(int_hash, _new_hash_map_capacity(members))
        self.overfilled: _JavaHashTable[int, None] = _JavaHashTable(int_hash, _new_hash_map_capacity(members))

    def _new_of(self, member: int) -> dict[bytes, set[int]]:
        held = self.new[member]
        if held is None:
            held = self.new[member] = _copy(self.old[member])
        return held

    def _members_of(self, topic_partition: TopicPartition) -> _JavaHashTable[int, None]:
        return self.by_partition.compute_if_absent(topic_partition, lambda: _JavaHashTable(int_hash))

    def _partitions_of(self, member: int) -> _JavaHashTable[TopicPartition, None]:
        return self.by_member.compute_if_absent(member, lambda: _JavaHashTable(_topic_partition_hash))

    def build(self) -> list[dict[bytes, set[int]]]:
        self._revoke_unassignable()
        self._revoke_overfilled()
        self._revoke_overshared()
        for topic_partition in self.targets:
            self._members_of(topic_partition)
        self._assign_remaining()
        return [held if held is not None else _copy(self.old[i]) for i, held in enumerate(self.new)]

    def _revoke_unassignable(self) -> None:
        """Count what each member holds of the subscribed topics and drop the rest."""
        for member, held in enumerate(self.old):
            count = 0
            for topic_id, indexes in _held_order(held):
                if topic_id not in self.subscribed:
                    self._new_of(member).pop(topic_id, None)
                    continue
                for index in indexes:
                    count += 1
                    self._members_of((topic_id, index)).add(member)
                    self._partitions_of(member).add((topic_id, index))
                    if count >= self.desired[member]:
                        self._new_of(member)
            if count < self.desired[member]:
                self.unfilled.add(member)
            elif count > self.desired[member]:
                self.overfilled.add(member)

    def _revoke_overfilled(self) -> None:
        """Members holding more than they want give up the first they hold in hash order."""
        for member in self.overfilled.keys():
            held = self.by_member.get(member)
            assert held is not None
            for topic_id, index in held.keys():
                if len(held) <= self.desired[member]:
                    break
                self._new_of(member)[topic_id].discard(index)
                holders = self.by_partition.get((topic_id, index))
                assert holders is not None
                holders.remove(member)
                held.remove((topic_id, index))

    def _revoke_overshared(self) -> None:
        """A partition shared by more members than wanted is taken from the first of them."""
        for topic_partition in self.by_partition.keys():
            holders = self.by_partition.get(topic_partition)
            assert holders is not None
            count = len(holders)
            if count <= self.sharing:
                continue
            for member in holders.keys():
                partitions = self._new_of(member).get(topic_partition[0])
                if partitions is not None and topic_partition[1] in partitions:
                    partitions.discard(topic_partition[1])
                    count -= 1
                    holders.remove(member)
                    held = self.by_member.get(member)
                    assert held is not None
                    held.remove(topic_partition)
                    self.unfilled.add(member)
                if count <= self.sharing:
                    break

    def _assign_remaining(self) -> None:
        """Walk the partitions once, handing each shared less than wanted to the members
        wanting more in turn (one walk of them resumed across partitions): a partition that a
        whole walk can't place ends the handing out (every later one too, as Kafka's iterator
        stays spent), and a member is handed partitions until it holds as many as it wants.
        Should every member be filled before a partition is, the walk stops: Kafka's would start
        again over the empty set and fail (NoSuchElementException), which is not copied."""
        if not len(self.unfilled):
            return
        walk, position, assigned = self.unfilled.keys(), 0, False
        for topic_partition in self.by_partition.keys():
            holders = self.by_partition.get(topic_partition)
            assert holders is not None
            to_make = self.sharing - len(holders)
            while to_make > 0:
                if position >= len(walk):
                    if not assigned or not len(self.unfilled):
                        break
                    walk, position, assigned = self.unfilled.keys(), 0, False
                member = walk[position]
                position += 1
                if member in holders:
                    continue
                self._new_of(member).setdefault(topic_partition[0], set()).add(topic_partition[1])
                partitions = self._partitions_of(member)
                partitions.add(topic_partition)
                to_make -= 1
                assigned = True
                if len(partitions) >= self.desired[member]:
                    self.unfilled.remove(member)
            if not len(self.unfilled):
                break


class _TopicBuilder:
    """SimpleHeterogeneousAssignmentBuilder's TopicAssignmentPartialBuilder: one topic's
    partitions balanced among its `subscribers` (member numbers, ascending), keeping what they
    hold; `assigned` (the members' assignments, shared by the topics' builders) is updated in place."""

    def __init__(self, topic_id: bytes, old: list[Assignment], assigned: list[dict[bytes, set[int]]], indexes: list[int],
                 subscribers: list[int]) -> None:
        self.topic_id, self.old, self.assigned = topic_id, old, assigned
        self.indexes, self.subscribers = indexes, subscribers
        self.sharing = (len(subscribers) + len(indexes) - 1) // len(indexes) if indexes else 0
        self.desired = [0] * len(old)
        if subscribers:
            for position, count in enumerate(_desired_counts(self.sharing, len(indexes), len(subscribers))):
                self.desired[subscribers[position]] = count
        self.by_partition: _JavaHashTable[int, _JavaHashTable[int, None]] = _JavaHashTable(int_hash, _new_hash_map_capacity(len(indexes)))
        self.by_member: _JavaHashTable[int, _JavaHashTable[int, None]] = _JavaHashTable(int_hash, _new_hash_map_capacity(len(subscribers)))

    def _members_of(self, index: int, capacity: int | None = None) -> _JavaHashTable[int, None]:
        return self.by_partition.compute_if_absent(index, lambda: _JavaHashTable(int_hash, capacity))

    def _partitions_of(self, member: int) -> _JavaHashTable[int, None]:
        return self.by_member.compute_if_absent(member, lambda: _JavaHashTable(int_hash))

    def build(self) -> None:
        for member, held in enumerate(self.old):
            indexes = held.get(self.topic_id, ())
            for index in java_order(sorted(indexes), int_hash, default_capacity(len(indexes))):
                self._members_of(index).add(member)
                self._partitions_of(member).add(index)
        self._revoke_overfilled()
        self._revoke_overshared()
        for index in self.indexes:
            self._members_of(index, _new_hash_map_capacity(len(self.subscribers)))
        self._assign_remaining()

    def _revoke_overfilled(self) -> None:
        for member in self.by_member.keys():
            held = self.by_member.get(member)
            assert held is not None
            for index in held.keys():
                if len(held) <= self.desired[member]:
                    break
                holders = self.by_partition.get(index)
                assert holders is not None
                holders.remove(member)
                held.remove(index)
                self.assigned[member][self.topic_id].discard(index)

    def _revoke_overshared(self) -> None:
        for index in self.by_partition.keys():
            holders = self.by_partition.get(index)
            assert holders is not None
            count = len(holders)
            if count <= self.sharing:
                continue
            for member in holders.keys():
                partitions = self.assigned[member].get(self.topic_id)
                if partitions is not None and index in partitions:
                    partitions.discard(index)
                    count -= 1
                    holders.remove(member)
                    held = self.by_member.get(member)
                    assert held is not None
                    held.remove(index)
                if count <= self.sharing:
                    break

    def _assign_remaining(self) -> None:
        """As the homogeneous builder's, the members wanting more being this topic's subscribers."""
        unfilled: _JavaHashTable[int, None] = _JavaHashTable(int_hash, _new_hash_map_capacity(len(self.old)))
        for member in self.subscribers:
            held = self.by_member.get(member)
            if (len(held) if held is not None else 0) < self.desired[member]:
                unfilled.add(member)
        walk, position, assigned = unfilled.keys(), 0, False
        for index in self.by_partition.keys():
            holders = self.by_partition.get(index)
            assert holders is not None
            to_make = self.sharing - len(holders)
            while to_make > 0:
                if position >= len(walk):
                    if not assigned or not len(unfilled):
                        break
                    walk, position, assigned = unfilled.keys(), 0, False
                member = walk[position]
                position += 1
                if member in holders:
                    continue
                self.assigned[member].setdefault(self.topic_id, set()).add(index)
                partitions = self._partitions_of(member)
                partitions.add(index)
                to_make -= 1
                assigned = True
                if len(partitions) >= self.desired[member]:
                    unfilled.remove(member)
            if not len(unfilled):
                break
