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

Kafka's uniform assignor breaks ties with its own iteration orders; ours breaks them by
member id, so the same inputs give the same layout here, not necessarily Kafka's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ottla.server.groups.consumer.records import Assignment

UNIFORM = "uniform"
RANGE = "range"
ASSIGNORS = (UNIFORM, RANGE)


@dataclass(slots=True, frozen=True)
class AssignmentSpec:
    """What an assignor sees: each member's subscribed topic ids, each topic's partition
    count, and the current target assignment (for stickiness)."""

    subscriptions: Mapping[str, frozenset[bytes]]
    partition_counts: Mapping[bytes, int]
    current: Mapping[str, Assignment]
    # Static members' group.instance.id: the range assignor orders members by it.
    instance_ids: Mapping[str, str | None] = field(default_factory=dict)


def assign(name: str, spec: AssignmentSpec) -> dict[str, Assignment]:
    """member id -> its new target assignment (every member present, maybe empty)."""
    if name == RANGE:
        return _range(spec)
    return _uniform(spec)


def _uniform(spec: AssignmentSpec) -> dict[str, Assignment]:
    members = sorted(spec.subscriptions)
    load = {member: 0 for member in members}
    result: dict[str, dict[bytes, set[int]]] = {member: {} for member in members}
    # Partitions, each with the members that may take it.
    eligible: dict[tuple[bytes, int], list[str]] = {}
    for topic_id, count in sorted(spec.partition_counts.items()):
        takers = [member for member in members if topic_id in spec.subscriptions[member]]
        if takers:
            for partition in range(count):
                eligible[(topic_id, partition)] = takers
    if not members or not eligible:
        return {member: {} for member in members}
    # Sticky pass: each member keeps every partition it had and may still take. No quota
    # caps it here: one counted over the whole group (members of other topics, or of none,
    # included) took partitions from members that were balanced among themselves; the
    # rebalance below moves only what balance needs.
    for member in members:
        for topic_id, partitions in sorted(spec.current.get(member, {}).items()):
            for partition in sorted(partitions):
                key = (topic_id, partition)
                if key in eligible and member in eligible[key]:
                    result[member].setdefault(topic_id, set()).add(partition)
                    load[member] += 1
                    del eligible[key]
    # The rest go one by one to the least loaded member that may take them.
    for (topic_id, partition), takers in eligible.items():
        member = min(takers, key=lambda m: (load[m], m))
        result[member].setdefault(topic_id, set()).add(partition)
        load[member] += 1
    _rebalance(result, load, spec)
    return {member: {t: frozenset(p) for t, p in topics.items() if p} for member, topics in result.items()}


def _rebalance(result: dict[str, dict[bytes, set[int]]], load: dict[str, int], spec: AssignmentSpec) -> None:
    """Move partitions from the most to the least loaded member while one can take one
    of the other's (the sticky pass may leave a new member short)."""
    while True:
        moved = False
        for receiver in sorted(load, key=lambda m: (load[m], m)):
            for giver in sorted(load, key=lambda m: (-load[m], m)):
                if load[giver] - load[receiver] <= 1:
                    break
                movable = sorted(
                    (topic_id, partition)
                    for topic_id, partitions in result[giver].items()
                    if topic_id in spec.subscriptions[receiver]
                    for partition in partitions
                )
                if movable:
                    topic_id, partition = movable[-1]
                    result[giver][topic_id].discard(partition)
                    result[receiver].setdefault(topic_id, set()).add(partition)
                    load[giver] -= 1
                    load[receiver] += 1
                    moved = True
                    break
            if moved:
                break
        if not moved:
            return


def _range(spec: AssignmentSpec) -> dict[str, Assignment]:
    result: dict[str, dict[bytes, frozenset[int]]] = {member: {} for member in spec.subscriptions}
    for topic_id, count in spec.partition_counts.items():
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


def _range_order(spec: AssignmentSpec, member: str) -> tuple[int, str]:
    """RangeAssignor.sortMemberIds: static members first, by instance id, so a rolling restart
    (new member ids, the same instances) keeps every range where it was; then the rest by id."""
    instance_id = spec.instance_ids.get(member)
    return (0, instance_id) if instance_id is not None else (1, member)
