"""Classic group membership: Kafka's GroupMetadataManager for the classic protocol.

Join in two phases, the leader's assignment handed out by SyncGroup, heartbeats, leaving,
static membership (KIP-345) and MEMBER_ID_REQUIRED (KIP-394), method for method where
that helps a reader compare. It owns the group table; committed offsets are
`offsets.OffsetManager`'s, which reads groups from here as Kafka's OffsetMetadataManager
reads them from GroupMetadataManager.

Nothing here touches a socket. Parked JoinGroup and SyncGroup requests are callbacks
(`respond`) called when the answer is known, and every timeout is one timer on the
runtime's `Timers`: a member's session, a pending member's first rejoin, a group's join
and sync phases. No group has a task of its own and nothing polls.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from ottla.server.coordinator import CoordinatorLog, KeyValue, Timers, store_error
from ottla.server.groups.config import GroupConfig
from ottla.server.groups.group import (
    ClassicGroup,
    JoinResponder,
    JoinResult,
    Member,
    Protocols,
    SyncResponder,
    SyncResult,
    generate_member_id,
)
from ottla.server.groups.records import group_key, group_value, parse_group_value
from ottla.server.groups.state import GroupState
from ottla.wire.errors import ErrorCode, KafkaError

log = logging.getLogger("ottla.groups")

# Heartbeat timers may fire a hair before their deadline (asyncio's clock resolution);
# a deadline this close counts as reached.
_TIMER_SLACK_S = 0.001


class JoinRequest:
    """A JoinGroup as the coordinator reads it. A plain class: a dataclass would cost every
    broker's start most of a millisecond to create, and nothing compares or copies one."""

    __slots__ = (
        "group_id", "member_id", "group_instance_id", "protocol_type", "protocols", "session_timeout_ms", "rebalance_timeout_ms",
        "client_id", "client_host", "require_known_member_id", "supports_skip_assignment",
    )

    def __init__(
        self,
        group_id: str,
        member_id: str,
        group_instance_id: str | None,
        protocol_type: str,
        protocols: Protocols,
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        client_id: str = "",
        client_host: str = "",
        require_known_member_id: bool = True,
        supports_skip_assignment: bool = True,
    ) -> None:
        self.group_id = group_id
        self.member_id = member_id
        self.group_instance_id = group_instance_id
        self.protocol_type = protocol_type
        self.protocols = protocols
        self.session_timeout_ms = session_timeout_ms
        self.rebalance_timeout_ms = rebalance_timeout_ms
        self.client_id = client_id
        self.client_host = client_host
        # JoinGroup v4+: a new member first gets MEMBER_ID_REQUIRED and an id (KIP-394).
        self.require_known_member_id = require_known_member_id
        # JoinGroup v9+: a static leader rejoining a stable group need not reassign (KIP-814).
        self.supports_skip_assignment = supports_skip_assignment


class GroupMembershipManager:
    """The group table and the classic protocol over it. Every group state change that
    must survive a restart is a GroupMetadata record, appended before it is acknowledged."""

    def __init__(self, log_: CoordinatorLog, config: GroupConfig, timers: Timers, wall_clock_ms: Callable[[], int]) -> None:
        self.log = log_
        self.config = config
        self.timers = timers
        self.wall_clock_ms = wall_clock_ms
        self.groups: dict[str, ClassicGroup] = {}

    # --- lifecycle ---------------------------------------------------------------

    def replay_group(self, group_id: str, value: bytes | None) -> None:
        """GroupMetadataManager.replay of a GroupMetadata record: the group as it was last
        stored, keeping the offsets replayed before it."""
        previous = self.groups.pop(group_id, None)
        if value is None:
            # A group deleted with its offsets tombstoned them first; offsets still here
            # outlive it (an upgrade to a consumer group keeps them), as a simple group's.
            if previous is not None and previous.offsets:
                self.groups[group_id] = ClassicGroup(group_id, state_timestamp_ms=previous.state_timestamp_ms, offsets=previous.offsets)
            return
        group = ClassicGroup.restored(group_id, parse_group_value(value))
        if previous is not None:
            group.offsets = previous.offsets
        self.groups[group_id] = group

    def on_loaded(self, owned: Callable[[str], bool] = lambda group_id: True) -> None:
        """Every loaded member (of the groups `owned` picks) must heartbeat within its session
        timeout from now (GroupMetadataManager.onLoaded)."""
        for group in self.groups.values():
            if owned(group.group_id):
                for member in group.members.values():
                    self._arm_heartbeat(group, member, member.session_timeout_ms)

    def close(self) -> None:
        """Cancel every group's timers; parked requests end with their connections."""
        for group in self.groups.values():
            self._cancel_group_timers(group)

    def tombstone(self, group: ClassicGroup) -> KeyValue:
        return (group_key(group.group_id), None)

    def retire(self, group: ClassicGroup) -> None:
        """The group became a consumer group (its records are stored): parked requests are
        told to rejoin, its timers stop, and only its offsets stay here."""
        for member in group.members.values():
            member.answer_join(JoinResult(ErrorCode.REBALANCE_IN_PROGRESS, member.member_id))
            member.answer_sync(SyncResult(ErrorCode.REBALANCE_IN_PROGRESS))
        self._cancel_group_timers(group)
        self.groups[group.group_id] = ClassicGroup(group.group_id, state_timestamp_ms=self.wall_clock_ms(), offsets=group.offsets)

    def adopt(self, group: ClassicGroup, rebalance: bool) -> None:
        """A consumer group downgraded to this stable classic group (its record stored):
        every member's session starts now, and a rebalance may ask them all to rejoin."""
        self.groups[group.group_id] = group
        group.subscribed_topics = group._compute_subscribed_topics()
        for member in group.members.values():
            self._arm_heartbeat(group, member, member.session_timeout_ms)
        if rebalance:
            self._prepare_rebalance(group)

    def remove(self, group: ClassicGroup) -> None:
        """The group is gone from the log: stop its timers and forget it."""
        self._cancel_group_timers(group)
        group.transition_to(GroupState.DEAD, self.wall_clock_ms())
        del self.groups[group.group_id]

    # --- JoinGroup ---------------------------------------------------------------

    def join(self, request: JoinRequest, respond: JoinResponder) -> None:
        """GroupMetadataManager.classicGroupJoinToClassicGroup, the group id and session
        timeout already checked (GroupCoordinator.join). `respond` is called exactly once,
        maybe now. A group this join creates is stored empty first, as Kafka stores
        newEmptyGroupMetadataRecord when the join itself writes nothing (MEMBER_ID_REQUIRED,
        an initial rebalance begun), so the group outlives a restart."""
        member_id = request.member_id
        is_unknown_member = member_id == ""
        group = self.groups.get(request.group_id)
        if group is None:
            if not is_unknown_member:
                respond(JoinResult(ErrorCode.UNKNOWN_MEMBER_ID, member_id))
                return
            group = ClassicGroup(request.group_id, state_timestamp_ms=self.wall_clock_ms())
            try:
                self._store_group(group)
            except KafkaError as exc:
                respond(JoinResult(store_error(exc.code), ""))
                return
            self.groups[request.group_id] = group
        if not self._accepts_joining_member(group, member_id):
            self._drop_member(group, member_id)
            respond(JoinResult(ErrorCode.GROUP_MAX_SIZE_REACHED, ""))
        elif is_unknown_member:
            self._join_new_member(group, request, respond)
        else:
            self._join_existing_member(group, request, respond)

    def _accepts_joining_member(self, group: ClassicGroup, member_id: str) -> bool:
        """GroupMetadataManager.acceptJoiningMember: group.max.size, counted so that a
        lowered limit lets the last members to rejoin be the ones turned away."""
        if group.is_in(GroupState.EMPTY, GroupState.DEAD):
            return True
        member = group.members.get(member_id)
        if group.is_in(GroupState.PREPARING_REBALANCE):
            return (member is not None and member.awaiting_join is not None) or group.awaiting_join_count < self.config.max_size
        return member is not None or len(group.members) < self.config.max_size

    def _join_new_member(self, group: ClassicGroup, request: JoinRequest, respond: JoinResponder) -> None:
        if group.is_in(GroupState.DEAD):
            # The group was just deleted; the client finds the coordinator again and retries.
            respond(JoinResult(ErrorCode.COORDINATOR_NOT_AVAILABLE, ""))
            return
        if not group.supports_protocols(request.protocol_type, {name for name, _ in request.protocols}):
            respond(JoinResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, ""))
            return
        new_member_id = generate_member_id(request.client_id, request.group_instance_id)
        if request.group_instance_id is not None:
            existing_member_id = group.static_members.get(request.group_instance_id)
            if existing_member_id is not None:
                self._update_static_member(group, request, existing_member_id, new_member_id, respond)
            else:
                self._add_member_and_rebalance(group, request, new_member_id, respond)
        elif request.require_known_member_id:
            # KIP-394: the id is handed out first and the member counts only once it rejoins
            # with it, so a client that times out and retries leaves no orphan member behind.
            group.pending_members[new_member_id] = self.timers.after(request.session_timeout_ms, self._expire_pending_member, group, new_member_id)
            respond(JoinResult(ErrorCode.MEMBER_ID_REQUIRED, new_member_id))
        else:
            self._add_member_and_rebalance(group, request, new_member_id, respond)

    def _join_existing_member(self, group: ClassicGroup, request: JoinRequest, respond: JoinResponder) -> None:
        member_id = request.member_id
        if group.is_in(GroupState.DEAD):
            respond(JoinResult(ErrorCode.COORDINATOR_NOT_AVAILABLE, member_id))
            return
        if not group.supports_protocols(request.protocol_type, {name for name, _ in request.protocols}):
            respond(JoinResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, member_id))
            return
        if member_id in group.pending_members:
            if request.group_instance_id is not None:
                # Pending ids are only handed to dynamic members; Kafka fails this request
                # with an IllegalStateException, which clients see as UNKNOWN_SERVER_ERROR.
                respond(JoinResult(ErrorCode.UNKNOWN_SERVER_ERROR, member_id))
                return
            self.timers.cancel(group.pending_members[member_id])
            self._add_member_and_rebalance(group, request, member_id, respond)
            return
        error = group.validate_member(member_id, request.group_instance_id)
        if error is not ErrorCode.NONE:
            respond(JoinResult(error, member_id))
            return
        member = group.members[member_id]
        if group.is_in(GroupState.PREPARING_REBALANCE):
            self._update_member_and_rebalance(group, member, request, respond)
        elif group.is_in(GroupState.COMPLETING_REBALANCE):
            if member.matches(request.protocols):
                # Same metadata: most likely the member missed our JoinGroup answer; repeat it.
                respond(self._join_result(group, member_id, with_members=group.is_leader(member_id)))
            else:
                self._update_member_and_rebalance(group, member, request, respond)
        elif group.is_in(GroupState.STABLE):
            if group.is_leader(member_id) or not member.matches(request.protocols):
                # A rejoining leader may have seen metadata change that no member metadata
                # shows (new partitions), so it always gets a rebalance.
                self._update_member_and_rebalance(group, member, request, respond)
            else:
                respond(self._join_result(group, member_id, with_members=False))
        else:
            respond(JoinResult(ErrorCode.UNKNOWN_MEMBER_ID, member_id))

    def _join_result(self, group: ClassicGroup, member_id: str, with_members: bool, skip_assignment: bool = False, leader: str | None = None) -> JoinResult:
        return JoinResult(
            ErrorCode.NONE,
            member_id,
            group.generation_id,
            group.protocol_type,
            group.protocol_name,
            (group.leader_id if leader is None else leader) or "",
            skip_assignment,
            group.current_members() if with_members else (),
        )

    def _add_member_and_rebalance(self, group: ClassicGroup, request: JoinRequest, member_id: str, respond: JoinResponder) -> None:
        member = Member(
            member_id,
            request.group_instance_id,
            request.client_id,
            request.client_host,
            request.rebalance_timeout_ms,
            request.session_timeout_ms,
            request.protocol_type,
            request.protocols,
            is_new=True,
        )
        if group.is_in(GroupState.PREPARING_REBALANCE) and group.previous_state is GroupState.EMPTY:
            group.new_member_added = True
        group.add(member, respond)
        # A new member cannot heartbeat while its JoinGroup is parked, so it gets the longer
        # new-member timeout; if its client gave up and retried, the stale entry goes then.
        self._arm_heartbeat(group, member, self.config.new_member_join_timeout_ms)
        self._maybe_prepare_rebalance_or_complete_join(group)

    def _update_member_and_rebalance(self, group: ClassicGroup, member: Member, request: JoinRequest, respond: JoinResponder) -> None:
        group.update_member(member, request.protocols, request.rebalance_timeout_ms, request.session_timeout_ms, respond)
        self._maybe_prepare_rebalance_or_complete_join(group)

    def _update_static_member(self, group: ClassicGroup, request: JoinRequest, old_member_id: str, new_member_id: str, respond: JoinResponder) -> None:
        """A known group.instance.id with no member id: the instance restarted (KIP-345).
        The old id is fenced and, in a stable group whose protocol would not change, the
        new id takes over the old assignment without a rebalance."""
        assert request.group_instance_id is not None
        current_leader = group.leader_id
        self.timers.cancel(group.members[old_member_id].heartbeat_timer)
        member = group.replace_static_member(request.group_instance_id, old_member_id, new_member_id)
        self._arm_heartbeat(group, member, member.session_timeout_ms)
        old_protocols, old_rebalance_timeout, old_session_timeout = member.protocols, member.rebalance_timeout_ms, member.session_timeout_ms
        group.update_member(member, request.protocols, request.rebalance_timeout_ms, request.session_timeout_ms, respond)
        if group.is_in(GroupState.STABLE):
            if (group.protocol_name or "") != group.select_protocol():
                self._maybe_prepare_rebalance_or_complete_join(group)
                return
            try:
                self._store_group(group)
            except KafkaError as exc:
                group.update_member(member, old_protocols, old_rebalance_timeout, old_session_timeout, None)
                self.timers.cancel(member.heartbeat_timer)
                restored = group.replace_static_member(request.group_instance_id, new_member_id, old_member_id)
                self._arm_heartbeat(group, restored, restored.session_timeout_ms)
                respond(JoinResult(store_error(exc.code), "", group.generation_id, group.protocol_type, group.protocol_name, current_leader or ""))
                return
            if request.supports_skip_assignment:
                is_leader = group.is_leader(new_member_id)
                group.answer_join(member, self._join_result(group, new_member_id, with_members=is_leader, skip_assignment=is_leader))
            else:
                # Before KIP-814 the old leader id is returned, so a returning leader does
                # not take itself for the leader and recompute an assignment.
                group.answer_join(member, self._join_result(group, new_member_id, with_members=False, leader=current_leader or ""))
        elif group.is_in(GroupState.COMPLETING_REBALANCE):
            # The leader may already be assigning to the old id, which would leave the new
            # id with nothing: rebalance.
            self._prepare_rebalance(group)
        else:
            self._maybe_complete_join_phase(group)

    # --- join phase -------------------------------------------------------------------

    def _maybe_prepare_rebalance_or_complete_join(self, group: ClassicGroup) -> None:
        if group.can_rebalance():
            self._prepare_rebalance(group)
        else:
            self._maybe_complete_join_phase(group)

    def _maybe_complete_join_phase(self, group: ClassicGroup) -> None:
        # The initial rebalance of an empty group waits out group.initial.rebalance.delay.ms.
        if group.is_in(GroupState.PREPARING_REBALANCE) and group.has_all_members_joined() and group.previous_state is not GroupState.EMPTY:
            self._complete_join(group)

    def _prepare_rebalance(self, group: ClassicGroup) -> None:
        if group.is_in(GroupState.COMPLETING_REBALANCE):
            self._reset_and_propagate_assignment_error(group, ErrorCode.REBALANCE_IN_PROGRESS)
        self._remove_sync_expiration(group)
        initial = group.is_in(GroupState.EMPTY)
        if initial:
            delay = self.config.initial_rebalance_delay_ms
            remaining = max(group.rebalance_timeout_ms() - delay, 0)
            self._set_join_timer(group, delay, self._try_complete_initial_rebalance, group, delay, remaining)
        group.transition_to(GroupState.PREPARING_REBALANCE, self.wall_clock_ms())
        if not initial:
            if group.has_all_members_joined():
                self._complete_join(group)
            else:
                self._set_join_timer(group, group.rebalance_timeout_ms(), self._complete_join, group)

    def _try_complete_initial_rebalance(self, group: ClassicGroup, delay_ms: int, remaining_ms: int) -> None:
        """While members keep arriving, wait another delay, up to the rebalance timeout."""
        group.join_timer = None
        if group.new_member_added and remaining_ms != 0:
            group.new_member_added = False
            next_delay = min(self.config.initial_rebalance_delay_ms, remaining_ms)
            next_remaining = max(remaining_ms - delay_ms, 0)
            self._set_join_timer(group, next_delay, self._try_complete_initial_rebalance, group, next_delay, next_remaining)
        else:
            self._complete_join(group)

    def _complete_join(self, group: ClassicGroup) -> None:
        """GroupMetadataManager.completeClassicGroupJoin: drop dynamic members that did not
        rejoin (static ones keep their place), start the next generation, answer everyone."""
        self.timers.cancel(group.join_timer)
        group.join_timer = None
        for member in group.not_yet_rejoined():
            if not member.is_static:
                self._drop_member(group, member.member_id)
        if group.is_in(GroupState.DEAD):
            return
        if not group.maybe_elect_new_joined_leader() and group.members:
            # Nobody rejoined; wait for the session timeouts to clear the silent members.
            self._set_join_timer(group, group.rebalance_timeout_ms(), self._complete_join, group)
            return
        group.init_next_generation(self.wall_clock_ms())
        if group.is_in(GroupState.EMPTY):
            try:
                self._store_group(group)
            except KafkaError as exc:
                # No member is waiting on this write; after a crash the previous generation
                # comes back and its members time out.
                log.warning("could not store empty group %s: %s", group.group_id, exc)
            return
        for member in list(group.members.values()):
            group.answer_join(member, self._join_result(group, member.member_id, with_members=group.is_leader(member.member_id)))
            self._arm_heartbeat(group, member, member.session_timeout_ms)
            member.is_new = False
            group.pending_sync_members.add(member.member_id)
        group.sync_timer = self.timers.after(group.rebalance_timeout_ms(), self._expire_pending_sync, group, group.generation_id)

    def _expire_pending_sync(self, group: ClassicGroup, generation_id: int) -> None:
        """Members that got their JoinGroup answer but never sent SyncGroup are removed."""
        group.sync_timer = None
        if generation_id != group.generation_id or not group.is_in(GroupState.COMPLETING_REBALANCE, GroupState.STABLE):
            return
        if group.pending_sync_members:
            for member_id in list(group.pending_sync_members):
                self._drop_member(group, member_id)
            self._prepare_rebalance(group)

    def _remove_sync_expiration(self, group: ClassicGroup) -> None:
        group.pending_sync_members.clear()
        self.timers.cancel(group.sync_timer)
        group.sync_timer = None

    def _remove_pending_sync_member(self, group: ClassicGroup, member_id: str) -> None:
        group.pending_sync_members.discard(member_id)
        if not group.pending_sync_members or group.is_in(GroupState.DEAD, GroupState.EMPTY, GroupState.PREPARING_REBALANCE):
            self.timers.cancel(group.sync_timer)
            group.sync_timer = None

    # --- SyncGroup --------------------------------------------------------------------

    def sync(
        self,
        group_id: str,
        generation_id: int,
        member_id: str,
        group_instance_id: str | None,
        protocol_type: str | None,
        protocol_name: str | None,
        assignments: list[tuple[str, bytes]],
        respond: SyncResponder,
    ) -> None:
        """GroupMetadataManager.classicGroupSync. Followers wait here for the leader."""
        if not group_id:
            respond(SyncResult(ErrorCode.INVALID_GROUP_ID))
            return
        group = self.groups.get(group_id)
        if group is None:
            respond(SyncResult(ErrorCode.UNKNOWN_MEMBER_ID))
            return
        error = self._validate_sync(group, generation_id, member_id, group_instance_id, protocol_type, protocol_name)
        if error is not ErrorCode.NONE:
            respond(SyncResult(error))
        elif group.is_in(GroupState.EMPTY):
            respond(SyncResult(ErrorCode.UNKNOWN_MEMBER_ID))
        elif group.is_in(GroupState.PREPARING_REBALANCE):
            respond(SyncResult(ErrorCode.REBALANCE_IN_PROGRESS))
        elif group.is_in(GroupState.COMPLETING_REBALANCE):
            member = group.members[member_id]
            # A repeated SyncGroup replaces the parked one, which is told to rejoin rather
            # than left without an answer.
            member.answer_sync(SyncResult(ErrorCode.REBALANCE_IN_PROGRESS))
            member.awaiting_sync = respond
            self._remove_pending_sync_member(group, member_id)
            if group.is_leader(member_id):
                self._complete_sync(group, dict(assignments))
        else:
            self._remove_pending_sync_member(group, member_id)
            member = group.members[member_id]
            respond(SyncResult(ErrorCode.NONE, member.assignment, group.protocol_type, group.protocol_name))

    def _validate_sync(self, group: ClassicGroup, generation_id: int, member_id: str, group_instance_id: str | None, protocol_type: str | None, protocol_name: str | None) -> ErrorCode:
        if group.is_in(GroupState.DEAD):
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        error = group.validate_member(member_id, group_instance_id)
        if error is not ErrorCode.NONE:
            return error
        if generation_id != group.generation_id:
            return ErrorCode.ILLEGAL_GENERATION
        if _inconsistent(protocol_type, group.protocol_type) or _inconsistent(protocol_name, group.protocol_name):
            return ErrorCode.INCONSISTENT_GROUP_PROTOCOL
        return ErrorCode.NONE

    def _complete_sync(self, group: ClassicGroup, assignment: dict[str, bytes]) -> None:
        """The leader's assignment: stored first, then handed to every parked member."""
        for member_id in group.members:
            assignment.setdefault(member_id, b"")
        try:
            self._store_group(group, assignment)
        except KafkaError as exc:
            self._reset_and_propagate_assignment_error(group, store_error(exc.code))
            self._maybe_prepare_rebalance_or_complete_join(group)
            return
        for member in group.members.values():
            member.assignment = assignment[member.member_id]
        self._propagate_assignment(group, ErrorCode.NONE)
        group.transition_to(GroupState.STABLE, self.wall_clock_ms())

    def _reset_and_propagate_assignment_error(self, group: ClassicGroup, error: ErrorCode) -> None:
        for member in group.members.values():
            member.assignment = b""
        self._propagate_assignment(group, error)

    def _propagate_assignment(self, group: ClassicGroup, error: ErrorCode) -> None:
        succeeded = error is ErrorCode.NONE
        protocol_type = group.protocol_type if succeeded else None
        protocol_name = group.protocol_name if succeeded else None
        for member in group.members.values():
            if member.answer_sync(SyncResult(error, member.assignment, protocol_type, protocol_name)):
                # Its session may have lapsed while it waited on the leader: start afresh.
                self._arm_heartbeat(group, member, member.session_timeout_ms)

    # --- Heartbeat and LeaveGroup -----------------------------------------------------

    def heartbeat(self, group_id: str, generation_id: int, member_id: str, group_instance_id: str | None) -> ErrorCode:
        """GroupMetadataManager.classicGroupHeartbeat."""
        if not group_id:
            return ErrorCode.INVALID_GROUP_ID
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if group.is_in(GroupState.DEAD):
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        error = group.validate_member(member_id, group_instance_id)
        if error is not ErrorCode.NONE:
            return error
        if generation_id != group.generation_id:
            return ErrorCode.ILLEGAL_GENERATION
        if group.is_in(GroupState.EMPTY):
            return ErrorCode.UNKNOWN_MEMBER_ID
        member = group.members[member_id]
        self._arm_heartbeat(group, member, member.session_timeout_ms)
        if group.is_in(GroupState.PREPARING_REBALANCE):
            return ErrorCode.REBALANCE_IN_PROGRESS
        # CompletingRebalance too: clients may heartbeat between their JoinGroup and SyncGroup.
        return ErrorCode.NONE

    def keep_alive(self, group: ClassicGroup, member_id: str) -> None:
        """Restart a current member's session, as a heartbeat does: what its OffsetCommit does
        while the group is Stable or PreparingRebalance (OffsetMetadataManager.commitOffset)."""
        member = group.members[member_id]
        self._arm_heartbeat(group, member, member.session_timeout_ms)

    def leave(self, group_id: str, leaving: list[tuple[str, str | None]]) -> tuple[ErrorCode, list[ErrorCode]]:
        """GroupMetadataManager.classicGroupLeave: (group error, one error per leaving member).
        A member named only by its group.instance.id is removed by an administrator."""
        if not group_id:
            return ErrorCode.INVALID_GROUP_ID, []
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.NONE, [ErrorCode.UNKNOWN_MEMBER_ID] * len(leaving)
        if group.is_in(GroupState.DEAD):
            return ErrorCode.COORDINATOR_NOT_AVAILABLE, []
        errors = []
        for member_id, group_instance_id in leaving:
            if member_id == "":
                current = None if group_instance_id is None else group.static_members.get(group_instance_id)
                if current is None:
                    errors.append(ErrorCode.UNKNOWN_MEMBER_ID)
                else:
                    self._remove_current_member(group, current)
                    errors.append(ErrorCode.NONE)
            elif member_id in group.pending_members:
                self._drop_member(group, member_id)
                errors.append(ErrorCode.NONE)
            else:
                error = group.validate_member(member_id, group_instance_id)
                if error is ErrorCode.NONE:
                    self._remove_current_member(group, member_id)
                errors.append(error)
        if ErrorCode.NONE in errors:
            if group.is_in(GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
                self._maybe_prepare_rebalance_or_complete_join(group)
            elif group.is_in(GroupState.PREPARING_REBALANCE):
                self._maybe_complete_join_phase(group)
        return ErrorCode.NONE, errors

    def _remove_current_member(self, group: ClassicGroup, member_id: str) -> None:
        # A member leaving while its JoinGroup is parked is told so, and may rejoin.
        group.answer_join(group.members[member_id], JoinResult(ErrorCode.UNKNOWN_MEMBER_ID, ""))
        self._drop_member(group, member_id)

    # --- timers and expiry ------------------------------------------------------------

    def _set_join_timer(self, group: ClassicGroup, delay_ms: int, callback: Callable[..., Any], *args: Any) -> None:
        self.timers.cancel(group.join_timer)
        group.join_timer = self.timers.after(delay_ms, callback, *args)

    def _arm_heartbeat(self, group: ClassicGroup, member: Member, timeout_ms: int) -> None:
        """Push the member's session deadline out. The pending timer is kept when it fires no
        later than the new deadline (it re-arms itself for the rest), so a heartbeat costs
        no timer churn; only a nearer deadline replaces it."""
        deadline = self.timers.now() + timeout_ms / 1000
        member.heartbeat_deadline = deadline
        timer = member.heartbeat_timer
        if timer is not None:
            if timer.when() <= deadline:
                return
            timer.cancel()
        member.heartbeat_timer = self.timers.at(deadline, self._on_heartbeat_timer, group, member)

    def _on_heartbeat_timer(self, group: ClassicGroup, member: Member) -> None:
        member.heartbeat_timer = None
        if group.members.get(member.member_id) is not member:
            return
        if member.heartbeat_deadline - self.timers.now() > _TIMER_SLACK_S:
            member.heartbeat_timer = self.timers.at(member.heartbeat_deadline, self._on_heartbeat_timer, group, member)
            return
        if group.is_in(GroupState.DEAD) or member.has_satisfied_heartbeat():
            return
        log.info("member %s of group %s missed its session timeout; removing it", member.member_id, group.group_id)
        group.answer_join(member, JoinResult(ErrorCode.UNKNOWN_MEMBER_ID, ""))
        self._drop_member(group, member.member_id)
        if group.is_in(GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
            self._maybe_prepare_rebalance_or_complete_join(group)
        elif group.is_in(GroupState.PREPARING_REBALANCE) and group.has_all_members_joined():
            self._complete_join(group)

    def _expire_pending_member(self, group: ClassicGroup, member_id: str) -> None:
        """A MEMBER_ID_REQUIRED id that never came back within the session timeout."""
        if group.pending_members.pop(member_id, None) is None:
            return
        if group.is_in(GroupState.PREPARING_REBALANCE) and group.has_all_members_joined():
            self._complete_join(group)

    def _drop_member(self, group: ClassicGroup, member_id: str) -> None:
        self.timers.cancel(group.pending_members.get(member_id))
        member = group.remove(member_id)
        if member is not None:
            self.timers.cancel(member.heartbeat_timer)
            member.heartbeat_timer = None
            # Kafka leaves a removed member's parked SyncGroup unanswered until the client
            # times out; we answer it, so no request outlives its member.
            member.answer_sync(SyncResult(ErrorCode.UNKNOWN_MEMBER_ID))

    def _cancel_group_timers(self, group: ClassicGroup) -> None:
        for timer in (group.join_timer, group.sync_timer, *group.pending_members.values()):
            self.timers.cancel(timer)
        group.join_timer = group.sync_timer = None
        for member in group.members.values():
            self.timers.cancel(member.heartbeat_timer)
            member.heartbeat_timer = None

    # --- listing ----------------------------------------------------------------------

    def list_groups(self, states: set[str] | None = None) -> list[ClassicGroup]:
        """Groups whose state name (any case, as Kafka compares them) is in `states`."""
        wanted = None if not states else {state.lower() for state in states}
        return [g for g in self.groups.values() if wanted is None or g.state.value.lower() in wanted]

    def _store_group(self, group: ClassicGroup, assignment: dict[str, bytes] | None = None) -> None:
        self.log.append(group.group_id, [(group_key(group.group_id), group_value(group.stored(assignment)))], self.wall_clock_ms())


def _inconsistent(requested: str | None, current: str | None) -> bool:
    return requested is not None and current is not None and requested != current
