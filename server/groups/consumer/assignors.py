"""The server-side assignors of KIP-848 consumer groups: `uniform` and `range`.

Both are pure functions of the members' subscriptions, the subscribed topics' partition
counts and the current target assignment, as Kafka's ConsumerGroupPartitionAssignor is
(group-coordinator/.../assignor/UniformAssignor.java, RangeAssignor.java). Their promises:

- uniform: every subscribed partition goes to exactly one member subscribed to its topic;
  member loads differ by at most one where subscriptions allow; a member keeps the
  partitions it had as long as that keeps the balance (sticky), so a rebalance moves as few
  partitions as it can.
- range: per topic, the subscribed members (static ones first, by instance id, then by
  member id) take contiguous ranges, the first `partitions % members` one partition more
  (the classic RangeAssignor's layout, so
  topics with equal partition counts are co-partitioned), keeping a member's range when the
  member set and the count did not change.

The uniform assignor is a port of Kafka's UniformHomogeneousAssignmentBuilder (every member
subscribes to the same topics) and UniformHeterogeneousAssignmentBuilder (the rest), choice
for choice: which partitions a member keeps, which it gives up and which member takes which,
so the same group state gives the layout Kafka 4.4 gives. Those builders walk
java.util.HashMaps and HashSets, so the port walks members, topics and partitions in the
order Java would (`java_order`). Java orders keys of one hash bucket by insertion: members
come in the order Kafka hands them over (`ConsumerGroupManager._compute_target`), topics in
`AssignmentSpec.topic_order`, a member's held topics in its target's own order; partitions
are inserted by sorted key, so when two partitions of a member share a bucket the layout may
still differ. The builder is
the one the group's subscription type names, as UniformAssignor.assign picks it from the
GroupSpec: the consumer group manager computes that type from the subscribed names and
regexes (ConsumerGroup.subscriptionType), so members resolving to the same topics may still
take the heterogeneous builder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from ottla.server.groups.consumer.records import Assignment
from ottla.server.java_hashing import chain_order, default_capacity, int_hash, java_order, sized_capacity, string_hash, uuid_hash

UNIFORM = "uniform"
RANGE = "range"
ASSIGNORS = (UNIFORM, RANGE)


class SubscriptionType(Enum):
    """Kafka's api.assignor.SubscriptionType: whether every member subscribes alike."""

    HOMOGENEOUS = "homogeneous"
    HETEROGENEOUS = "heterogeneous"


@dataclass(slots=True, frozen=True)
class AssignmentSpec:
    """What an assignor sees: each member's subscribed topic ids, each topic's partition
    count, and the current target assignment (for stickiness)."""

    subscriptions: Mapping[str, frozenset[bytes]]
    partition_counts: Mapping[bytes, int]
    current: Mapping[str, Assignment]
    # Static members' group.instance.id: the range assignor orders members by it.
    instance_ids: Mapping[str, str | None] = field(default_factory=dict)
    # The group's subscription type (GroupSpec.subscriptionType), which picks the uniform
    # builder. None: homogeneous when every member's topic ids are the same, which is Kafka's
    # type whenever the members name existing topics only.
    subscription_type: SubscriptionType | None = None
    # The subscribed topic ids in the order Kafka's subscription sets yield them (its members'
    # subscribed names' HashSets): how topics sharing a hash bucket are ordered when put.
    topic_order: Sequence[bytes] = ()

    def homogeneous(self) -> bool:
        if self.subscription_type is None:
            return len(set(self.subscriptions.values())) <= 1
        return self.subscription_type is SubscriptionType.HOMOGENEOUS


def assign(name: str, spec: AssignmentSpec) -> dict[str, Assignment]:
    """member id -> its new target assignment (every member present, maybe empty)."""
    if name == RANGE:
        return _range(spec)
    return _uniform(spec)


def _uniform(spec: AssignmentSpec) -> dict[str, Assignment]:
    if spec.homogeneous():
        return _uniform_homogeneous(spec)
    return _uniform_heterogeneous(spec)


def _uniform_homogeneous(spec: AssignmentSpec) -> dict[str, Assignment]:
    """UniformHomogeneousAssignmentBuilder.build. The quota is total // members, and the
    first `total % members` members (in Kafka's order) that can use one more get one more.
    Walking members in order, each keeps the first `quota` partitions it holds (topic by topic,
    in hash order) and gives up the rest; then the members below quota, in the same order,
    take what is free: first the partitions nobody held (topic by topic, ascending), then the
    given-up ones in the order they were given up. O(P log P) for P partitions."""
    members = java_order(list(spec.subscriptions), string_hash, default_capacity(len(spec.subscriptions)))
    if not members:
        return {}
    topics = [t for t in spec.subscriptions[members[0]] if t in spec.partition_counts]
    if not topics:
        return {member: {} for member in members}
    topics = java_order(_ranked(topics, spec.topic_order), uuid_hash, sized_capacity(len(topics)))
    subscribed = set(topics)
    held = {(t, p) for m in members for t, ps in spec.current.get(m, {}).items() for p in ps}
    free = [(t, p) for t in topics for p in range(spec.partition_counts[t]) if (t, p) not in held]
    total = sum(spec.partition_counts[t] for t in topics)
    minimum, extra = divmod(total, len(members))
    result: dict[str, dict[bytes, set[int]]] = {}
    unfilled: list[tuple[str, int]] = []
    for index, member in enumerate(members):
        old = spec.current.get(member, {})
        quota = minimum
        has_extra = extra > 0
        if has_extra:
            quota += 1
        kept: dict[bytes, set[int]] = {}
        for topic_id in java_order(list(old), uuid_hash, default_capacity(len(old))):
            if topic_id not in subscribed:
                continue
            partitions = old[topic_id]
            if len(partitions) <= quota:
                quota -= len(partitions)
                kept[topic_id] = set(partitions)
                continue
            ordered = java_order(sorted(partitions), int_hash, sized_capacity(len(partitions)))
            if quota:
                kept[topic_id] = set(ordered[:quota])
            free.extend((topic_id, p) for p in ordered[quota:])
            quota = 0
        # A member that filled without the extra partition leaves it to a later one, while
        # enough members remain to take every extra.
        if quota > 0 and has_extra and len(members) - index > extra:
            quota -= 1
            has_extra = False
        if quota > 0:
            unfilled.append((member, quota))
        if has_extra:
            extra -= 1
        result[member] = kept
    position = 0
    added: dict[str, list[bytes]] = {}
    for member, quota in unfilled:
        for topic_id, partition in free[position:position + quota]:
            if topic_id not in result[member]:
                added.setdefault(member, []).append(topic_id)
            result[member].setdefault(topic_id, set()).add(partition)
        position += quota
    # Kafka keeps a member's map as it was when nothing changed; else a copy of it (the kept
    # topics put in its order) to which computeIfAbsent adds the topics it is given, at the
    # head of their buckets: the order its target record is written in.
    out: dict[str, Assignment] = {}
    for member, topics_ in result.items():
        old = spec.current.get(member, {})
        kept_order = [t for t in java_order(list(old), uuid_hash, default_capacity(len(old))) if topics_.get(t)]
        puts = [(t, False) for t in kept_order] + [(t, True) for t in added.get(member, [])]
        order = chain_order(puts, uuid_hash, default_capacity(len(puts)))
        out[member] = {t: frozenset(topics_[t]) for t in order}
    return out


def _uniform_heterogeneous(spec: AssignmentSpec) -> dict[str, Assignment]:
    """UniformHeterogeneousAssignmentBuilder.build. Members are numbered in Kafka's order.
    Each keeps what it holds of the topics it still subscribes to; the free partitions go,
    topic by topic (most partitions per subscriber first), one by one to the least loaded
    subscriber; then, topic by topic again until a full round moves nothing (at most 16
    rounds), the most loaded subscribers give their highest partitions of the topic to the
    least loaded until the subscribers' loads differ by at most one."""
    member_ids = java_order(list(spec.subscriptions), string_hash, default_capacity(len(spec.subscriptions)))
    subscribers: dict[bytes, list[int]] = {}
    for index, member in enumerate(member_ids):
        for topic_id in spec.subscriptions[member]:
            if topic_id in spec.partition_counts:
                subscribers.setdefault(topic_id, []).append(index)
    if not subscribers:
        return {member: {} for member in member_ids}
    sizes = [0] * len(member_ids)
    owners = {topic_id: [-1] * spec.partition_counts[topic_id] for topic_id in subscribers}
    result: list[dict[bytes, set[int]]] = []
    for index, member in enumerate(member_ids):
        kept: dict[bytes, set[int]] = {}
        for topic_id, partitions in spec.current.get(member, {}).items():
            if topic_id in spec.subscriptions[member] and topic_id in owners:
                # A partition past the topic's count (Kafka would fail on it) is dropped.
                held = {p for p in partitions if p < len(owners[topic_id])}
                kept[topic_id] = held
                sizes[index] += len(held)
                for partition in held:
                    owners[topic_id][partition] = index
        result.append(kept)

    def move(topic_id: bytes, partition: int, index: int) -> None:
        previous = owners[topic_id][partition]
        if previous != -1:
            result[previous][topic_id].discard(partition)
            sizes[previous] -= 1
        result[index].setdefault(topic_id, set()).add(partition)
        owners[topic_id][partition] = index
        sizes[index] += 1

    def topic_order(topic_id: bytes) -> tuple[float, int, tuple[int, int]]:
        count = len(subscribers[topic_id])
        return (-(spec.partition_counts[topic_id] / count), count, _uuid_order(topic_id))

    balancer = _MemberBalancer(sizes)
    for topic_id in sorted(subscribers, key=topic_order):
        free = [p for p, owner in enumerate(owners[topic_id]) if owner == -1]
        if free:
            balancer.initialize(subscribers[topic_id])
            for partition in free:
                move(topic_id, partition, balancer.next_least_loaded())
    shared = sorted((t for t, members in subscribers.items() if len(members) >= 2), key=topic_order)
    last_moved = -1
    for _ in range(16):
        for position, topic_id in enumerate(shared):
            if position == last_moved:
                break
            if _balance_topic(topic_id, subscribers[topic_id], owners[topic_id], balancer, move) > 0 or last_moved == -1:
                last_moved = position
        else:
            continue
        break
    return {member: {t: frozenset(p) for t, p in result[index].items() if p} for index, member in enumerate(member_ids)}


def _balance_topic(topic_id: bytes, subscribers: list[int], owners: list[int], balancer: _MemberBalancer,
                   move: Callable[[bytes, int, int], None]) -> int:
    """UniformHeterogeneousAssignmentBuilder.balanceTopic: how many partitions of the topic
    went from its most to its least loaded subscribers."""
    if balancer.initialize(subscribers) <= 1:
        return 0
    partitions = sorted(range(len(owners)), key=lambda p: (owners[p], p))
    start: dict[int, int] = {}
    end: dict[int, int] = {}
    for position, partition in enumerate(partitions):
        start.setdefault(owners[partition], position)
        end[owners[partition]] = position + 1
    moved = 0
    while not balancer.is_balanced():
        most = balancer.next_most_loaded()
        if most == -1:
            break
        if most in end and end[most] - start[most] > 0:
            end[most] -= 1
            partition = partitions[end[most]]
            least = balancer.next_least_loaded()
            if balancer.is_balanced():
                break
            move(topic_id, partition, least)
            moved += 1
        else:
            balancer.exclude_most_loaded()
    return moved


class _MemberBalancer:
    """UniformHeterogeneousAssignmentBuilder.MemberAssignmentBalancer: walks one topic's
    subscribers, sorted by load then index, handing out the least loaded ones in rounds from
    the bottom and the most loaded ones in rounds from the top, reading the live loads."""

    def __init__(self, sizes: list[int]) -> None:
        self.sizes = sizes
        self.members: list[int] = []
        self.least_end = 0
        self.least_count = -1
        self.next_least = 0
        self.most_start = 0
        self.most_end = 0
        self.most_count = 1
        self.next_most = -1

    def initialize(self, members: list[int]) -> int:
        """Start on these subscribers; their spread of loads (most minus least)."""
        self.members = sorted(members, key=lambda m: (self.sizes[m], m))
        self.least_end = 0
        self.least_count = self.sizes[self.members[0]] - 1
        self.next_least = 0
        self.most_start = self.most_end = len(self.members)
        self.most_count = self.sizes[self.members[-1]] + 1
        self.next_most = len(self.members) - 1
        return self.sizes[self.members[-1]] - self.sizes[self.members[0]]

    def next_least_loaded(self) -> int:
        if self.next_least >= self.least_end:
            self.least_count += 1
            while self.least_end < len(self.members) and self.sizes[self.members[self.least_end]] == self.least_count:
                self.least_end += 1
            self.next_least = 0
        member = self.members[self.next_least]
        self.next_least += 1
        return member

    def next_most_loaded(self) -> int:
        if self.next_most < self.most_start:
            if self.most_end <= self.most_start and self.most_start > 0:
                self.most_count = self.sizes[self.members[self.most_start - 1]]
            else:
                self.most_count -= 1
            while self.most_start > 0 and self.sizes[self.members[self.most_start - 1]] == self.most_count:
                self.most_start -= 1
            self.next_most = self.most_end - 1
        if self.next_most < 0:
            return -1
        member = self.members[self.next_most]
        self.next_most -= 1
        return member

    def exclude_most_loaded(self) -> None:
        """Drop the member last handed out as most loaded (it has nothing of the topic to give)."""
        excluded = self.members[self.next_most + 1]
        self.members[self.next_most + 1] = self.members[self.most_end - 1]
        self.members[self.most_end - 1] = excluded
        self.most_end -= 1

    def is_balanced(self) -> bool:
        return self.most_count - self.least_count <= 1


def _uuid_order(topic_id: bytes) -> tuple[int, int]:
    """org.apache.kafka.common.Uuid.compareTo: the two halves as signed longs."""
    bits = int.from_bytes(topic_id[-16:].rjust(16, b"\0"), "big")
    high, low = bits >> 64, bits & 0xFFFFFFFFFFFFFFFF
    return (high - (1 << 64) if high >= 1 << 63 else high, low - (1 << 64) if low >= 1 << 63 else low)


def _range(spec: AssignmentSpec) -> dict[str, Assignment]:
    """Topics are put into each member's map in `topic_order` (read off the reference broker)."""
    result: dict[str, dict[bytes, frozenset[int]]] = {member: {} for member in spec.subscriptions}
    for topic_id in _ranked(spec.partition_counts, spec.topic_order):
        count = spec.partition_counts[topic_id]
        members = sorted((member for member, topics in spec.subscriptions.items() if topic_id in topics), key=lambda member: _range_order(spec, member))
        if not members:
            continue
        per_member, extra = divmod(count, len(members))
        start = 0
        for index, member in enumerate(members):
            size = per_member + (1 if index < extra else 0)
            if size:
                result[member][topic_id] = frozenset(range(start, start + size))
            start += size
    return result


def _ranked(topics: Iterable[bytes], order: Sequence[bytes]) -> list[bytes]:
    """The topics as Kafka put them into a set: those of `order` in its order, the rest by id."""
    rank = {topic_id: index for index, topic_id in enumerate(order)}
    return sorted(topics, key=lambda topic_id: (rank.get(topic_id, len(rank)), topic_id))


def _range_order(spec: AssignmentSpec, member: str) -> tuple[int, str]:
    """RangeAssignor.sortMemberIds: static members first, by instance id, so a rolling restart
    (new member ids, the same instances) keeps every range where it was; then the rest by id."""
    instance_id = spec.instance_ids.get(member)
    return (0, instance_id) if instance_id is not None else (1, member)
