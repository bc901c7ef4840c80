"""A classic consumer group's membership, as Kafka's ClassicGroup.java keeps it.

This module is bookkeeping only: members, the leader, protocol votes, who is awaiting
a JoinGroup or SyncGroup answer. What happens on a join, a sync or an expiry (the
protocol) lives in `membership.py`; state changes go through `transition_to`, which
checks the table in `state.py`.
"""

from __future__ import annotations

import codecs
import struct
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

from ottla.server.java_hashing import default_capacity, java_order, string_hash
from ottla.server.groups.records import OffsetAndMetadata, StoredGroup, StoredMember
from ottla.server.groups.state import GroupState, check_transition
from ottla.wire.errors import ErrorCode

CONSUMER_PROTOCOL_TYPE = "consumer"

Protocols = tuple[tuple[str, bytes], ...]  # (name, metadata) in the member's order of preference


def _names(protocols: Protocols) -> set[str]:
    return {name for name, _ in protocols}


# JoinedMember, JoinResult, Member and ClassicGroup are plain classes, not dataclasses: a
# dataclass costs every broker's start most of a millisecond to create, and nothing compares
# or copies these. SyncResult, compared whole, stays one.


class JoinedMember:
    __slots__ = ("member_id", "group_instance_id", "metadata")

    def __init__(self, member_id: str, group_instance_id: str | None, metadata: bytes) -> None:
        self.member_id = member_id
        self.group_instance_id = group_instance_id
        self.metadata = metadata


class JoinResult:
    __slots__ = ("error", "member_id", "generation_id", "protocol_type", "protocol_name", "leader", "skip_assignment", "members")

    def __init__(
        self,
        error: ErrorCode,
        member_id: str,
        generation_id: int = -1,
        protocol_type: str | None = None,
        protocol_name: str | None = None,
        leader: str = "",
        skip_assignment: bool = False,
        members: tuple[JoinedMember, ...] = (),  # only the leader gets them
    ) -> None:
        self.error = error
        self.member_id = member_id
        self.generation_id = generation_id
        self.protocol_type = protocol_type
        self.protocol_name = protocol_name
        self.leader = leader
        self.skip_assignment = skip_assignment
        self.members = members


@dataclass(slots=True, frozen=True)
class SyncResult:
    error: ErrorCode
    assignment: bytes = b""
    protocol_type: str | None = None
    protocol_name: str | None = None


JoinResponder = Callable[[JoinResult], None]
SyncResponder = Callable[[SyncResult], None]


class Member:
    __slots__ = (
        "member_id", "group_instance_id", "client_id", "client_host", "rebalance_timeout_ms", "session_timeout_ms", "protocol_type",
        "protocols", "assignment", "awaiting_join", "awaiting_sync", "is_new", "heartbeat_deadline", "heartbeat_timer",
    )

    def __init__(
        self,
        member_id: str,
        group_instance_id: str | None,
        client_id: str,
        client_host: str,
        rebalance_timeout_ms: int,
        session_timeout_ms: int,
        protocol_type: str,
        protocols: Protocols,
        assignment: bytes = b"",
        *,
        is_new: bool = False,
    ) -> None:
        self.member_id = member_id
        self.group_instance_id = group_instance_id
        self.client_id = client_id
        self.client_host = client_host
        self.rebalance_timeout_ms = rebalance_timeout_ms
        self.session_timeout_ms = session_timeout_ms
        self.protocol_type = protocol_type
        self.protocols = protocols
        self.assignment = assignment
        # Parked JoinGroup / SyncGroup answers; a member with one set is "awaiting".
        self.awaiting_join: JoinResponder | None = None
        self.awaiting_sync: SyncResponder | None = None
        # A member that has not yet completed a join is "new": it has no session to keep alive
        # yet, so it expires after the new-member join timeout instead (ClassicGroupMember.isNew).
        self.is_new = is_new
        self.heartbeat_deadline = 0.0
        self.heartbeat_timer: Any = None

    @property
    def is_static(self) -> bool:
        return self.group_instance_id is not None

    def matches(self, protocols: Protocols) -> bool:
        return self.protocols == protocols

    def metadata(self, protocol_name: str) -> bytes:
        for name, metadata in self.protocols:
            if name == protocol_name:
                return metadata
        raise KeyError(f"member {self.member_id} does not support protocol {protocol_name}")

    def vote(self, candidates: set[str]) -> str:
        """The member's most preferred protocol among those every member supports."""
        return next(name for name, _ in self.protocols if name in candidates)

    def has_satisfied_heartbeat(self) -> bool:
        """Called when the session timer fires with no heartbeat since: a member parked in a
        join or sync is alive by definition, unless it is new (ClassicGroupMember.java)."""
        return not self.is_new and (self.awaiting_join is not None or self.awaiting_sync is not None)

    def answer_join(self, result: JoinResult) -> bool:
        respond, self.awaiting_join = self.awaiting_join, None
        if respond is None:
            return False
        respond(result)
        return True

    def answer_sync(self, result: SyncResult) -> bool:
        respond, self.awaiting_sync = self.awaiting_sync, None
        if respond is None:
            return False
        respond(result)
        return True


def generate_member_id(client_id: str, group_instance_id: str | None) -> str:
    """ClassicGroup.generateMemberId: the instance id (static) or client id, then a UUID."""
    import uuid  # at the first join, not at the broker's start

    return f"{group_instance_id if group_instance_id is not None else client_id}-{uuid.uuid4()}"


class ClassicGroup:
    __slots__ = (
        "group_id", "state", "previous_state", "state_timestamp_ms", "generation_id", "protocol_type", "protocol_name", "leader_id",
        "members", "static_members", "pending_members", "pending_sync_members", "supported_protocols", "awaiting_join_count",
        "new_member_added", "subscribed_topics", "offsets", "join_timer", "sync_timer",
    )

    def __init__(
        self,
        group_id: str,
        *,
        state: GroupState = GroupState.EMPTY,
        state_timestamp_ms: int | None = None,
        generation_id: int = 0,
        protocol_type: str | None = None,
        protocol_name: str | None = None,
        leader_id: str | None = None,
        offsets: dict[tuple[str, int], OffsetAndMetadata] | None = None,  # kept, not copied: a holder's offsets pass on
    ) -> None:
        self.group_id = group_id
        self.state = state
        self.previous_state = GroupState.EMPTY
        self.state_timestamp_ms = state_timestamp_ms
        self.generation_id = generation_id
        self.protocol_type = protocol_type
        self.protocol_name = protocol_name
        self.leader_id = leader_id
        self.members: dict[str, Member] = {}  # insertion order (Kafka 4.4 keeps a HashMap: random ids, no order a client could rely on)
        self.static_members: dict[str, str] = {}  # group instance id -> member id
        self.pending_members: dict[str, Any] = {}  # MEMBER_ID_REQUIRED ids -> their timer
        self.pending_sync_members: set[str] = set()
        # How many members list each protocol name, a name counted once per member.
        self.supported_protocols: Counter[str] = Counter()
        self.awaiting_join_count = 0
        # Set when a member joins during the initial rebalance, which then waits a little longer.
        self.new_member_added = False
        # Topics the consumer-protocol members subscribe to; None when unknown (KIP-496).
        self.subscribed_topics: frozenset[str] | None = None
        self.offsets: dict[tuple[str, int], OffsetAndMetadata] = {} if offsets is None else offsets
        self.join_timer: Any = None
        self.sync_timer: Any = None

    # --- state -------------------------------------------------------------------

    def transition_to(self, target: GroupState, now_ms: int) -> None:
        check_transition(self.state, target)
        self.previous_state, self.state = self.state, target
        self.state_timestamp_ms = now_ms

    def is_in(self, *states: GroupState) -> bool:
        return self.state in states

    def can_rebalance(self) -> bool:
        return self.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE, GroupState.EMPTY)

    # --- membership --------------------------------------------------------------

    def is_leader(self, member_id: str) -> bool:
        return self.leader_id == member_id

    def add(self, member: Member, respond: JoinResponder | None) -> None:
        if member.group_instance_id is not None:
            self.static_members[member.group_instance_id] = member.member_id
        if not self.members:
            self.protocol_type = member.protocol_type
        if self.leader_id is None:
            self.leader_id = member.member_id
        self.members[member.member_id] = member
        self.supported_protocols.update(_names(member.protocols))
        member.awaiting_join = respond
        if respond is not None:
            self.awaiting_join_count += 1
        self.pending_members.pop(member.member_id, None)

    def remove(self, member_id: str) -> Member | None:
        member = self.members.pop(member_id, None)
        if member is not None:
            self.supported_protocols.subtract(_names(member.protocols))
            if member.awaiting_join is not None:
                self.awaiting_join_count -= 1
            if member.group_instance_id is not None:
                self.static_members.pop(member.group_instance_id, None)
        if self.leader_id == member_id:
            self.leader_id = next(iter(self.members), None)
        self.pending_members.pop(member_id, None)
        self.pending_sync_members.discard(member_id)
        return member

    def update_member(self, member: Member, protocols: Protocols, rebalance_timeout_ms: int, session_timeout_ms: int, respond: JoinResponder | None) -> None:
        self.supported_protocols.subtract(_names(member.protocols))
        self.supported_protocols.update(_names(protocols))
        member.protocols = protocols
        member.rebalance_timeout_ms = rebalance_timeout_ms
        member.session_timeout_ms = session_timeout_ms
        if respond is not None and member.awaiting_join is None:
            self.awaiting_join_count += 1
        elif respond is None and member.awaiting_join is not None:
            self.awaiting_join_count -= 1
        member.awaiting_join = respond

    def answer_join(self, member: Member, result: JoinResult) -> None:
        if member.answer_join(result):
            self.awaiting_join_count -= 1

    def replace_static_member(self, group_instance_id: str, old_member_id: str, new_member_id: str) -> Member:
        """A static member came back with a new member id: the old id is fenced at once,
        its assignment carries over (ClassicGroup.replaceStaticMember)."""
        old = self.members.pop(old_member_id)
        if old.awaiting_join is not None:
            self.awaiting_join_count -= 1
        old.answer_join(JoinResult(ErrorCode.FENCED_INSTANCE_ID, old_member_id))
        old.answer_sync(SyncResult(ErrorCode.FENCED_INSTANCE_ID))
        new = Member(
            new_member_id,
            old.group_instance_id,
            old.client_id,
            old.client_host,
            old.rebalance_timeout_ms,
            old.session_timeout_ms,
            old.protocol_type,
            old.protocols,
            old.assignment,
        )
        self.members[new_member_id] = new
        if self.leader_id == old_member_id:
            self.leader_id = new_member_id
        self.static_members[group_instance_id] = new_member_id
        self.pending_sync_members.discard(old_member_id)
        return new

    def has_all_members_joined(self) -> bool:
        return len(self.members) == self.awaiting_join_count and not self.pending_members

    def not_yet_rejoined(self) -> list[Member]:
        return [member for member in self.members.values() if member.awaiting_join is None]

    def maybe_elect_new_joined_leader(self) -> bool:
        """Keep the leader if it rejoined, else pick a member that did; False if none did."""
        if self.leader_id is None:
            return False
        if self.members[self.leader_id].awaiting_join is not None:
            return True
        for member in self.members.values():
            if member.awaiting_join is not None:
                self.leader_id = member.member_id
                return True
        return False

    def rebalance_timeout_ms(self) -> int:
        return max((member.rebalance_timeout_ms for member in self.members.values()), default=0)

    def validate_member(self, member_id: str, group_instance_id: str | None) -> ErrorCode:
        """ClassicGroup.validateMember: a static id mapped to another member id is fenced."""
        if group_instance_id is not None:
            existing = self.static_members.get(group_instance_id)
            if existing is None:
                return ErrorCode.UNKNOWN_MEMBER_ID
            if existing != member_id:
                return ErrorCode.FENCED_INSTANCE_ID
        if member_id not in self.members:
            return ErrorCode.UNKNOWN_MEMBER_ID
        return ErrorCode.NONE

    # --- protocols ---------------------------------------------------------------

    def _listed_protocols(self) -> Counter[str]:
        """Kafka's count (ClassicGroup.incrementSupportedProtocols): one per protocol entry, so a
        name a member lists twice counts twice."""
        return Counter(name for member in self.members.values() for name, _ in member.protocols)

    def supports_protocols(self, protocol_type: str, protocol_names: set[str]) -> bool:
        """An empty group takes any protocol; otherwise the type must match and one of the
        member's protocols must be supported by every current member.

        "Supported by every member" is Kafka's test on its per-entry count (a name some member
        lists twice fails it in a group of one) and also ours on members, which Kafka lacks:
        without it a group can take a member with no protocol in common with the others, and
        Kafka's vote then throws and the join is never answered."""
        if self.state is GroupState.EMPTY:
            return bool(protocol_type) and bool(protocol_names)
        count = len(self.members)
        listed = self._listed_protocols()
        return (self.protocol_type == protocol_type
                and any(listed[name] == count for name in protocol_names)
                and any(self.supported_protocols[name] == count for name in protocol_names))

    def select_protocol(self) -> str:
        """Each member votes for its favourite protocol among those all support; most votes wins.
        Kafka tallies the votes in a java.util.HashMap and keeps the first maximum in its
        iteration order (ClassicGroup.selectProtocol), so a tie goes to the name in the lower
        hash bucket ("range" before "roundrobin" or "cooperative-sticky"), not to the member
        that joined first.

        The candidates are Kafka's: names whose per-entry count equals the number of members, so
        a name listed twice by the one member is passed over for its next choice. Where that
        leaves some member no candidate, Kafka's vote throws (ClassicGroupMember.vote) and the
        join is never answered; the names every member lists stand in then."""
        count = len(self.members)
        candidates = {name for name, listed in self._listed_protocols().items() if listed == count}
        if not all(any(name in candidates for name, _ in member.protocols) for member in self.members.values()):
            candidates = {name for name, supporters in self.supported_protocols.items() if supporters == count}
        votes = Counter(member.vote(candidates) for member in self.members.values())
        return max(java_order(list(votes), string_hash, default_capacity(len(votes))), key=votes.__getitem__)

    def init_next_generation(self, now_ms: int) -> None:
        self.generation_id += 1
        if self.members:
            self.protocol_name = self.select_protocol()
            self.subscribed_topics = self._compute_subscribed_topics()
            self.transition_to(GroupState.COMPLETING_REBALANCE, now_ms)
        else:
            self.protocol_name = None
            self.subscribed_topics = self._compute_subscribed_topics()
            self.transition_to(GroupState.EMPTY, now_ms)
        self.pending_sync_members.clear()

    def _compute_subscribed_topics(self) -> frozenset[str] | None:
        if self.protocol_type != CONSUMER_PROTOCOL_TYPE:
            return None
        if not self.members:
            return frozenset()
        if self.protocol_name is None:
            return None
        topics: set[str] = set()
        for member in self.members.values():
            parsed = subscription_topics(member.metadata(self.protocol_name))
            if parsed is None:
                return None
            topics.update(parsed)
        return frozenset(topics)

    def uses_consumer_protocol(self) -> bool:
        return self.protocol_type == CONSUMER_PROTOCOL_TYPE

    def is_subscribed_to(self, topic: str) -> bool:
        if self.subscribed_topics is None:
            return self.uses_consumer_protocol()
        return topic in self.subscribed_topics

    def current_members(self) -> tuple[JoinedMember, ...]:
        assert self.protocol_name is not None
        return tuple(JoinedMember(m.member_id, m.group_instance_id, m.metadata(self.protocol_name)) for m in self.members.values())

    # --- persistence -------------------------------------------------------------

    def stored(self, assignment: dict[str, bytes] | None = None) -> StoredGroup:
        """The GroupMetadataValue of this group, with `assignment` (the leader's, not yet
        handed out) or else the members' current assignments."""
        assignment = assignment or {}
        members = tuple(
            StoredMember(
                m.member_id,
                m.group_instance_id,
                m.client_id,
                m.client_host,
                m.rebalance_timeout_ms,
                m.session_timeout_ms,
                m.metadata(self.protocol_name) if self.protocol_name is not None else b"",
                assignment.get(m.member_id, m.assignment),
            )
            for m in self.members.values()
        )
        return StoredGroup(
            self.protocol_type or "",
            self.generation_id,
            self.protocol_name,
            self.leader_id,
            -1 if self.state_timestamp_ms is None else self.state_timestamp_ms,
            members,
        )

    @classmethod
    def restored(cls, group_id: str, stored: StoredGroup) -> "ClassicGroup":
        """GroupMetadataManager.replay: a group with members comes back Stable, the selected
        protocol being the only one each member is known to support."""
        group = cls(
            group_id,
            state=GroupState.STABLE if stored.members else GroupState.EMPTY,
            state_timestamp_ms=None if stored.current_state_timestamp_ms < 0 else stored.current_state_timestamp_ms,
            generation_id=stored.generation,
            protocol_type=stored.protocol_type or None,
            protocol_name=stored.protocol,
            leader_id=stored.leader,
        )
        for saved in stored.members:
            protocols: Protocols = ((stored.protocol, saved.subscription),) if stored.protocol is not None else ()
            member = Member(
                saved.member_id,
                saved.group_instance_id,
                saved.client_id,
                saved.client_host,
                saved.rebalance_timeout_ms,
                saved.session_timeout_ms,
                stored.protocol_type,
                protocols,
                saved.assignment,
            )
            group.add(member, None)
        group.leader_id = stored.leader if stored.leader in group.members else next(iter(group.members), None)
        group.subscribed_topics = group._compute_subscribed_topics()
        return group


_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")


def _java_replacement(error: UnicodeError) -> tuple[str, int]:
    """One U+FFFD per malformed sequence, where Java's `new String(bytes, UTF_8)` puts them:
    Python's "replace" but for an encoded surrogate (ED A0..BF, then a continuation byte if
    any), which Java replaces as one sequence and Python byte by byte."""
    assert isinstance(error, UnicodeDecodeError)
    data, start = error.object, error.start
    if data[start] == 0xED and start + 1 < len(data) and 0xA0 <= data[start + 1] <= 0xBF:
        continued = start + 2 < len(data) and 0x80 <= data[start + 2] <= 0xBF
        return "\ufffd", start + 3 if continued else start + 2
    return "\ufffd", error.end


codecs.register_error("ottla-java-utf8", _java_replacement)


def java_string(data: bytes | memoryview) -> str:
    """Bytes read as Kafka's generated readers read a string (ByteBufferAccessor.readString):
    malformed UTF-8 never fails, it becomes replacement characters."""
    return str(data, "utf-8", "ottla-java-utf8")


def subscription_topics(metadata: bytes) -> list[str] | None:
    """Topics of a ConsumerProtocolSubscription, read with its v0 layout whatever its version
    (ClassicGroup.computeSubscribedTopics: every later version extends it, and Kafka reads it
    as v0, so later fields are never checked); None if that does not parse."""
    view = memoryview(metadata)
    try:
        position = 2  # the subscription's version
        (count,) = _INT32.unpack_from(view, position)
        position += 4
        if count < 0:
            return None
        topics = []
        for _ in range(count):
            (size,) = _INT16.unpack_from(view, position)
            position += 2
            if size < 0 or position + size > len(view):
                return None
            topics.append(java_string(view[position : position + size]))
            position += size
        # v0's last field, UserData, is read too: missing or longer than the bytes left, the
        # subscription does not parse (whatever the topics were).
        (user_data_size,) = _INT32.unpack_from(view, position)
        if user_data_size > len(view) - position - 4:
            return None
        return topics
    except struct.error:
        return None
