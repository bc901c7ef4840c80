"""The orders Kafka 4.4 lists a consumer group member's topics and partitions in.

Kafka keeps assignments as java.util.HashMaps of topic id to partitions (HashSets for a
target, HashMaps of partition to assignment epoch for a current assignment), so its answers
list them by hash bucket, at the capacity the map reached the way it was built: the target
as Assignment.fromRecord rebuilds it, a current assignment as Utils.assignmentFromTopicPartitions
rebuilds it from the record written off CurrentAssignmentBuilder's new maps, and a heartbeat
lists those new maps themselves (`reconciled_listing`).

Within one bucket a put appends and a computeIfAbsent that adds prepends (HashMap keeps a
bucket's chain in that order, and a resize splits chains keeping it). What Kafka's heartbeat
built is kept on the member (`ConsumerMember.listing`), and written into its record in that
order, so the next reconciliation and ConsumerGroupDescribe start from the same chains, after
a restart too; a target keeps its topics in the order the assignor put them (`assignors`).
Partitions are taken as put ascending, so two partitions n
and n plus the capacity that Kafka's history put the other way round (a sticky assignor
keeping one and adding the other) are listed as Kafka lists them only when that history
put the lower first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from ottla.server.groups.consumer.records import Assignment
from ottla.server.java_hashing import chain_order, copied_capacity, default_capacity, int_hash, java_order, sized_capacity, string_hash, uuid_hash

Listing = list[tuple[bytes, list[int]]]


def names_order(names: Iterable[str]) -> list[str]:
    """A member's subscribed topic names as Kafka iterates them: its set, rebuilt from the
    member record (GroupCoordinatorRecordHelpers writes them sorted, by UTF-16 code unit as
    String.compareTo orders, and replay reads them into a new HashSet), in that HashSet's order."""
    unique = sorted(set(names), key=lambda name: name.encode("utf-16-be", "surrogatepass"))
    return java_order(unique, string_hash, sized_capacity(len(unique)))


def subscription_order(names: Iterable[str], topic_id_of: Callable[[str], bytes | None]) -> list[bytes]:
    """The ids of a member's subscribed topics in the order its names iterate: the order the
    assignors put its topics in."""
    ids = (topic_id_of(name) for name in names_order(names))
    return [topic_id for topic_id in ids if topic_id is not None]


def target_listing(target: Assignment) -> Listing:
    """Assignment.fromRecord: the topics collected into a HashMap in the record's order (the
    target's own, as the assignor wrote it or the record was read), each topic's partitions
    into a `new HashSet<>(list)` (ConsumerGroupDescribe's target_assignment)."""
    topics = java_order(list(target), uuid_hash, default_capacity(len(target)))
    return [(topic_id, java_order(sorted(target[topic_id]), int_hash, sized_capacity(len(target[topic_id])))) for topic_id in topics]


def replayed_listing(assignment: Assignment, first: Sequence[bytes] = (), written: Listing | None = None) -> Listing:
    """Utils.assignmentFromTopicPartitions: a new HashMap of topics, each a new HashMap of
    partitions, put in the record's order (a member's current assignment as Kafka holds it).
    `written`: the order the record was written in, when it is known and still holds exactly
    this assignment; else topics as `first` ranks them and partitions ascending."""
    if written is None or {topic_id: frozenset(partitions) for topic_id, partitions in written} != assignment:
        written = [(topic_id, sorted(assignment[topic_id])) for topic_id in _by_rank(assignment, first)]
    topics = java_order([topic_id for topic_id, _ in written], uuid_hash, default_capacity(len(written)))
    partitions = dict(written)
    return [(topic_id, java_order(partitions[topic_id], int_hash, default_capacity(len(partitions[topic_id])))) for topic_id in topics]


def described_listing(assigned: Listing, pending_revocation: Listing) -> Listing:
    """ConsumerGroupMember.asConsumerGroupDescribeMember: a new HashMap filled (computeIfAbsent)
    with the held assigned topics, then those pending revocation; a topic in both lists its
    assigned partitions, then those being revoked."""
    merged: dict[bytes, list[int]] = {}
    for topic_id, partitions in assigned + pending_revocation:
        merged.setdefault(topic_id, []).extend(partitions)
    return [(topic_id, merged[topic_id]) for topic_id in chain_order([(topic_id, True) for topic_id in merged], uuid_hash, default_capacity(len(merged)))]


def reconciled_listing(held: Listing, target: Listing, assigned: Assignment) -> Listing:
    """CurrentAssignmentBuilder.computeNextAssignment's new assigned map (a heartbeat's
    assignment once the member moved toward its target), from the member's `held` map and
    its `target` as Kafka iterates them. Topics are walked in a HashSet of the target's then
    the held topics; a topic the member keeps partitions of is a copy of its held map (`new
    HashMap<>(map)`, sized for what it held) with the newly given partitions put after, one
    it had none of a new HashMap; kept topics are put first, then the topics only given are
    added by computeIfAbsent, walking the HashMap collecting what is given."""
    held_partitions = dict(held)
    target_partitions = dict(target)
    walked = list(target_partitions) + [topic_id for topic_id in held_partitions if topic_id not in target_partitions]
    walked = java_order(walked, uuid_hash, _grown(sized_capacity(len(target_partitions)), len(walked)))
    partitions: dict[bytes, list[int]] = {}
    kept_topics: list[bytes] = []
    given_topics: list[bytes] = []
    for topic_id in walked:
        now = assigned.get(topic_id, frozenset())
        had = held_partitions.get(topic_id, [])
        kept = [p for p in had if p in now]
        given = [p for p in target_partitions.get(topic_id, []) if p in now and p not in had]
        if kept:
            capacity = _grown(copied_capacity(len(had)), len(kept) + len(given))
            partitions[topic_id] = java_order(kept + given, int_hash, capacity)
            kept_topics.append(topic_id)
        elif given:
            partitions[topic_id] = java_order(given, int_hash, default_capacity(len(given)))
        if given:
            given_topics.append(topic_id)
    given_order = java_order(given_topics, uuid_hash, default_capacity(len(given_topics)))
    puts = [(topic_id, False) for topic_id in kept_topics] + [(topic_id, True) for topic_id in given_order if topic_id not in kept_topics]
    return [(topic_id, partitions[topic_id]) for topic_id in chain_order(puts, uuid_hash, default_capacity(len(puts)))]


def _by_rank(assignment: Assignment, first: Sequence[bytes]) -> list[bytes]:
    """The assignment's topics: those of `first` in its order, then the rest by id."""
    rank = {topic_id: index for index, topic_id in enumerate(first)}
    return sorted(assignment, key=lambda topic_id: (rank.get(topic_id, len(rank)), topic_id))


def _grown(capacity: int, size: int) -> int:
    """A HashMap's or HashSet's buckets after puts up to `size` entries: doubled each time
    the size passes three quarters of them."""
    while size > capacity * 3 // 4:
        capacity *= 2
    return capacity
