"""Share-group membership: members, epochs and the broker-side assignment (KIP-932).

A share group has no rebalance barrier: members never own partitions exclusively, so an
assignment change needs no revocation. The group epoch grows with every change of
membership, subscriptions or the subscribed topics' partitions; a member takes the group's
epoch, with its new assignment, at its next heartbeat, and must then send that epoch back.
"""

from __future__ import annotations

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


@dataclass(slots=True, eq=False)
class ShareGroup:
    group_id: str
    group_epoch: int = 0
    assignment_epoch: int = 0
    members: dict[str, ShareMember] = field(default_factory=dict)
    # The topics whose share-partitions this group has initialized, by topic id: name.
    topics: dict[bytes, str] = field(default_factory=dict)
    dead: bool = False

    @property
    def state(self) -> ShareGroupState:
        if self.dead:
            return ShareGroupState.DEAD
        return ShareGroupState.STABLE if self.members else ShareGroupState.EMPTY

    def subscribed_topics(self) -> set[str]:
        return {name for member in self.members.values() for name in member.subscribed_topic_names}


def assign(members: Mapping[str, list[str]], partitions: Mapping[str, tuple[bytes, int]]) -> dict[str, Assignment]:
    """Kafka's SimpleAssignor for share groups (group-coordinator's
    modern/share/SimpleAssignor): every partition of a subscribed topic goes to at least one
    of its subscribers, and when a topic has fewer partitions than subscribers, its
    partitions are shared, so that each subscriber gets one: with one partition, every
    member reads it. `members` is member id -> subscribed topic names, `partitions` topic
    name -> (topic id, partition count) of the topics that exist."""
    assignment: dict[str, Assignment] = {member_id: {} for member_id in members}
    for name in sorted(partitions):
        topic_id, count = partitions[name]
        subscribers = sorted(member_id for member_id, topics in members.items() if name in topics)
        if not subscribers or count <= 0:
            continue
        slots = max(count, len(subscribers))
        for slot in range(slots):
            member_id = subscribers[slot % len(subscribers)]
            partition = slot % count
            owned = assignment[member_id].setdefault(topic_id, [])
            if partition not in owned:
                owned.append(partition)
    return {member_id: {topic: sorted(parts) for topic, parts in topics.items()} for member_id, topics in assignment.items()}
