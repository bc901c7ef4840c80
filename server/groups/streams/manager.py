"""Streams groups: Kafka's GroupMetadataManager for StreamsGroupHeartbeat (KIP-1071).

One heartbeat does, in order (GroupMetadataManager.streamsGroupHeartbeat): find or create
the group and the member (static members by instance id); fence a wrong member epoch; take
the member's metadata; initialize the group's topology from the first member's (a later
member's must match it, or be of an older epoch: STALE_TOPOLOGY); configure the topology
against the topics that exist, creating missing internal topics; bump the group epoch when
membership, metadata or the configured topology changed; recompute the target assignment
with the sticky assignor when the group epoch is ahead of it and `streams.assignment.interval.ms`
has passed since the last computation (canComputeNextTargetAssignment: no timer, a later
heartbeat computes it; meanwhile the answer carries ASSIGNMENT_DELAYED); reconcile the
member toward the target as last computed (`group.reconcile`); store every changed record
in one batch before answering; arm the member's session timer.

Missing internal topics: Kafka's coordinator answers MISSING_INTERNAL_TOPICS (the group not
ready, its target empty) and KafkaApis has the controller create them once the heartbeat is
answered; the next heartbeat finds them, and their appearance bumps the group epoch. One Ottla
node creates them in place right after configuring (when the member's principal may create
them all), and answers as Kafka does: the heartbeat that found them missing says so, the next
one bumps the epoch (so its target waits for `streams.assignment.interval.ms` since the first's).
Over PostgreSQL they are created in the database, as CreateTopics' topics, on a task: the
heartbeats before it ended find them still missing, as Kafka's before its controller's creation.

The initial rebalance delay (`streams.initial.rebalance.delay.ms`, group config; broker default
`group.streams.initial.rebalance.delay.ms`, 3000): the epoch bump of a member joining an empty
group (new, or emptied) arms a timer for the group (if none is armed); while it is armed no
target is computed and every member is reconciled toward an empty target at the assignment
epoch, answered ASSIGNMENT_DELAYED; when it fires, the target is computed at once if the group
still has members and a heartbeat configured its topology since the group was created
(GroupMetadataManager.computeDelayedTargetAssignment), and members take it at their next
heartbeats; otherwise (a new group only its first member's join reached) the next heartbeat
computes it, in the batch of its own records.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from ottla.server.coordinator import CoordinatorLog, KeyValue, Timers, store_error
import ottla.server.groups.streams.records as records
from ottla.server.groups.streams.assignor import MemberSpec, assign
from ottla.server.groups.streams.descriptions import NONE_STORED, UNCERTAIN, DescriptionStore, InvalidDescription, convert
from ottla.server.groups.streams.group import (
    EMPTY,
    JOIN_EPOCH,
    LEAVE_EPOCH,
    LEAVE_STATIC_EPOCH,
    NO_TASK_OFFSETS,
    CurrentAssignment,
    MemberMetadata,
    MemberState,
    StreamsGroup,
    StreamsGroupState,
    StreamsMember,
    TaskOffsets,
    TasksTuple,
    UnknownMemberState,
    owned_subset,
    reconcile,
)
from ottla.server.groups.streams.topology import ConfiguredTopology, InternalTopic, InvalidTopology, Status, configure
from ottla.server.java_hashing import kafka_group_hash, kafka_topic_hash_on_rack
from ottla.server.java_strings import is_blank
from ottla.storage import Storage, TopicInfo
from ottla.wire.errors import ErrorCode, KafkaError

log = logging.getLogger("ottla.groups")

# Kafka's group.streams.* defaults, for a manager without a broker behind it.
_DEFAULTS: dict[str, Any] = {
    "streams.session.timeout.ms": 45000,
    "streams.heartbeat.interval.ms": 5000,
    "streams.num.standby.replicas": 0,
    "streams.rack.aware.assignment.tags": (),
    "streams.assignment.interval.ms": 1000,
    "streams.initial.rebalance.delay.ms": 3000,
}
# GroupCoordinatorConfig.STREAMS_GROUP_TASK_OFFSET_INTERVAL_MS_DEFAULT and the acceptable
# recovery lag Kafka 4.4 answers by default (streams.acceptable.recovery.lag).
TASK_OFFSET_INTERVAL_MS = 60000
ACCEPTABLE_RECOVERY_LAG = 10000



@dataclass(slots=True, frozen=True)
class HeartbeatRequest:
    group_id: str
    member_id: str
    member_epoch: int
    endpoint_information_epoch: int = 0
    instance_id: str | None = None
    rack_id: str | None = None
    rebalance_timeout_ms: int = -1
    topology: dict[str, Any] | None = None
    owned: TasksTuple | None = None
    # How many entries ActiveTasks, StandbyTasks and WarmupTasks had (None: null), as Kafka's
    # checks count them: `owned` leaves out entries without partitions. The handler passes the
    # request's; an in-process caller's default is three empty lists.
    listed_tasks: tuple[int | None, int | None, int | None] = (0, 0, 0)
    # ActiveTasks, StandbyTasks and WarmupTasks as sent, (subtopology id, partitions) entries in
    # request order, for Kafka's throwIfRequestContainsInvalidTasks: it names the first entry
    # (even one without partitions) and the first partition that fails. None: `owned`'s, sorted.
    sent_tasks: tuple[tuple[tuple[str, tuple[int, ...]], ...], ...] | None = None
    process_id: str | None = None
    user_endpoint: tuple[str, int] | None = None
    client_tags: tuple[tuple[str, str], ...] | None = None
    # (subtopology id, partition, offset) entries, None when unchanged since the last heartbeat.
    task_offsets: tuple[tuple[str, int, int], ...] | None = None
    task_end_offsets: tuple[tuple[str, int, int], ...] | None = None
    shutdown_application: bool = False
    client_id: str = ""
    client_host: str = ""
    # The missing internal topics the member's principal may not create (CREATE on neither
    # the cluster nor the topic): given the names, those refused.
    refused_creates: Callable[[list[str]], list[str]] = lambda names: []


@dataclass(slots=True)
class HeartbeatResult:
    error: ErrorCode
    message: str | None = None
    member_id: str = ""
    member_epoch: int = 0
    heartbeat_interval_ms: int = 0
    status: list[tuple[int, str]] = field(default_factory=list)
    assignment: TasksTuple | None = None
    endpoint_information_epoch: int = 0
    # (host, port) -> (active partitions, standby partitions) as (topic, partitions) lists.
    endpoints: list[tuple[tuple[str, int], list[tuple[str, list[int]]], list[tuple[str, list[int]]]]] | None = None


class _Refused(Exception):
    def __init__(self, error: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.error = error
        self.message = message


class StreamsGroupManager:
    """The streams groups of one coordinator. `is_other_group(id)` says whether a classic or
    consumer group holds the id (a streams group cannot take it: GROUP_ID_NOT_FOUND as Kafka's
    getOrCreateStreamsGroup answers)."""

    def __init__(
        self,
        log_: CoordinatorLog,
        storage: Storage,
        timers: Timers,
        wall_clock_ms: Callable[[], int],
        is_other_group: Callable[[str], bool] = lambda group_id: False,
        group_config: Callable[[str, str], Any] | None = None,
        max_size: Callable[[], int] = lambda: 2**31 - 1,
        topic_hash: Callable[[bytes, str, int], int] = lambda topic_id, name, partitions: kafka_topic_hash_on_rack(topic_id, name, partitions, None),
    ) -> None:
        """`topic_hash(id, name, partitions)`: a required topic's KIP-1101 hash, over the racks
        of each partition's replicas (by default a single node's without broker.rack)."""
        self.topic_hash = topic_hash
        self.log = log_
        self.max_size = max_size
        self.storage = storage
        self.timers = timers
        self.wall_clock_ms = wall_clock_ms
        self.is_other_group = is_other_group
        self.group_config = group_config or (lambda group_id, name: _DEFAULTS[name])
        self.groups: dict[str, StreamsGroup] = {}
        # group id -> the topology as configured (not kept: recomputed after a load).
        self.configured: dict[str, ConfiguredTopology] = {}
        # group id -> its armed initial rebalance delay timer.
        self.initial_delays: dict[str, Any] = {}
        # internal topic name -> the task creating it in the database engine's database, while it runs.
        self.creating: dict[str, asyncio.Task[TopicInfo]] = {}
        # KIP-1331's in-memory plugin: used only when the broker names it (the handlers ask).
        self.descriptions = DescriptionStore()

    # --- loading -----------------------------------------------------------------

    def replay(self, key: records.RecordKey, value: bytes | None) -> None:
        """GroupMetadataManager.replay of one streams group record."""
        kind = key.record_type
        if kind == records.PARTITION_METADATA:
            return
        if kind == records.GROUP_METADATA and value is None:
            self.groups.pop(key.group_id, None)
            return
        group = self.groups.get(key.group_id)
        if group is None:
            if value is None:
                return
            group = self.groups[key.group_id] = StreamsGroup(key.group_id)
        body = None if value is None else records.parse_value(kind, value)
        if kind == records.GROUP_METADATA:
            assert body is not None
            group.group_epoch = body["epoch"]
            group.metadata_hash = body["metadata_hash"]
            group.validated_topology_epoch = body["validated_topology_epoch"]
            group.assignment_configs = {c["key"]: c["value"] for c in body.get("last_assignment_configs") or ()}
            group.stored_description_topology_epoch = body["stored_description_topology_epoch"]
            group.failed_description_topology_epoch = body["failed_description_topology_epoch"]
        elif kind == records.TOPOLOGY:
            group.topology = body
        elif kind == records.TARGET_ASSIGNMENT_METADATA:
            # A tombstone leaves (-1, 0), as Kafka's replay does.
            group.assignment_epoch, group.assignment_timestamp_ms = (-1, 0) if body is None else (body["assignment_epoch"], body["assignment_timestamp"])
        elif kind == records.TARGET_ASSIGNMENT_MEMBER:
            if body is None:
                group.target.pop(key.member_id, None)
            else:
                group.target[key.member_id] = _tuple(body, "")
        elif kind == records.MEMBER_METADATA:
            if body is None:
                group.remove_member(key.member_id)
            else:
                member = group.members.get(key.member_id) or StreamsMember(key.member_id, _metadata(body))
                member.metadata = _metadata(body)
                group.put_member(member)
        elif kind == records.CURRENT_MEMBER_ASSIGNMENT:
            holder = group.members.get(key.member_id)
            if holder is None:
                holder = StreamsMember(key.member_id, MemberMetadata(None, None, "", "", -1, -1, "", None, ()))
                group.put_member(holder)
            if body is None:
                holder.current = CurrentAssignment()
            else:
                epochs = _active_epochs(body, "", body["member_epoch"]) | _active_epochs(body, "_pending_revocation", body["member_epoch"])
                holder.current = CurrentAssignment(
                    body["member_epoch"], body["previous_member_epoch"], body["state"], _tuple(body, ""), _tuple(body, "_pending_revocation"), epochs
                )

    def on_loaded(self, owned: Callable[[str], bool] = lambda group_id: True) -> None:
        """GroupMetadataManager.onLoaded for the groups `owned` picks (all, after a load; a
        moved partition's, in a cluster): each state recomputed, each member given a whole
        session timeout from now, and one still revoking a whole rebalance timeout from now
        to revoke in, as if asked at the load (scheduleStreamsGroupRebalanceTimeout)."""
        for group in self.groups.values():
            if not owned(group.group_id):
                continue
            group.update_state()
            for member in group.members.values():
                self._arm_session(group, member)
                self._arm_rebalance(group, member, reconciled=True)

    def close(self) -> None:
        for timer in self.initial_delays.values():
            self.timers.cancel(timer)
        self.initial_delays.clear()
        for group in self.groups.values():
            for member in group.members.values():
                self._cancel_timers(member)

    # --- StreamsGroupHeartbeat ----------------------------------------------------

    def heartbeat(self, request: HeartbeatRequest) -> HeartbeatResult:
        try:
            self._validate(request)
            if request.member_epoch in (LEAVE_EPOCH, LEAVE_STATIC_EPOCH):
                return self._leave(request)
            return self._heartbeat(request)
        except _Refused as refused:
            return HeartbeatResult(refused.error, refused.message)
        except InvalidTopology as invalid:
            return HeartbeatResult(ErrorCode.STREAMS_INVALID_TOPOLOGY, str(invalid))
        except KafkaError as exc:
            return HeartbeatResult(store_error(exc.code), None)

    @staticmethod
    def _validate(request: HeartbeatRequest) -> None:
        """GroupCoordinatorService.streamsGroupHeartbeat's checks before the group is looked
        at, in its order: throwIfStreamsGroupHeartbeatRequestIsUsingUnsupportedFeatures (a
        source topic regex, whatever the epoch), then throwIfStreamsGroupHeartbeatRequestIsInvalid.
        Ids count as empty when blank (Utils.throwIfEmptyString trims)."""
        topology = request.topology
        if topology is not None and any(subtopology["source_topic_regex"] for subtopology in topology["subtopologies"]):
            raise _Refused(ErrorCode.INVALID_REQUEST, "Regular expressions for source topics are not supported yet.")
        if is_blank(request.member_id):
            raise _Refused(ErrorCode.INVALID_REQUEST, "MemberId can't be empty.")
        if is_blank(request.group_id):
            raise _Refused(ErrorCode.INVALID_REQUEST, "GroupId can't be empty.")
        if is_blank(request.instance_id):
            raise _Refused(ErrorCode.INVALID_REQUEST, "InstanceId can't be empty.")
        if is_blank(request.rack_id):
            raise _Refused(ErrorCode.INVALID_REQUEST, "RackId can't be empty.")
        if request.member_epoch == JOIN_EPOCH:
            if request.rebalance_timeout_ms == -1:
                raise _Refused(ErrorCode.INVALID_REQUEST, "RebalanceTimeoutMs must be provided in first request.")
            owned = request.owned or TasksTuple()
            kinds = ("ActiveTasks", "StandbyTasks", "WarmupTasks")
            for kind, tasks, listed in zip(kinds, (owned.active, owned.standby, owned.warmup), request.listed_tasks):
                # Utils.throwIfNotEmptyCollection: a null list is refused too.
                if tasks or listed is None or listed:
                    raise _Refused(ErrorCode.INVALID_REQUEST, f"{kind} must be empty when (re-)joining.")
            if topology is None:
                raise _Refused(ErrorCode.INVALID_REQUEST, "Topology must be non-null when (re-)joining.")
            for subtopology in topology["subtopologies"]:
                for changelog in subtopology["state_changelog_topics"]:
                    if changelog["partitions"] != 0:
                        raise _Refused(
                            ErrorCode.STREAMS_INVALID_TOPOLOGY,
                            f"Changelog topic {changelog['name']} must have an undefined partition count, but it is set to {changelog['partitions']}.",
                        )
        elif request.member_epoch == LEAVE_STATIC_EPOCH:
            if request.instance_id is None:
                raise _Refused(ErrorCode.INVALID_REQUEST, "InstanceId can't be null.")
        elif request.member_epoch < LEAVE_STATIC_EPOCH:
            raise _Refused(ErrorCode.INVALID_REQUEST, f"MemberEpoch is {request.member_epoch}, but must be greater than or equal to -2.")
        if len({listed is None for listed in request.listed_tasks}) > 1:
            # A null list read as empty would release tasks the member still holds.
            raise _Refused(ErrorCode.INVALID_REQUEST, "If one task-type is non-null, all must be non-null.")
        if request.member_epoch != JOIN_EPOCH and topology is not None:
            raise _Refused(ErrorCode.INVALID_REQUEST, "Topology can only be provided when (re-)joining.")

    def _heartbeat(self, request: HeartbeatRequest) -> HeartbeatResult:
        now = self.wall_clock_ms()
        out: list[KeyValue] = []
        status: list[tuple[int, str]] = []
        joining = request.member_epoch == JOIN_EPOCH
        group = self.groups.get(request.group_id)
        if group is None:
            if not joining:
                raise _Refused(ErrorCode.GROUP_ID_NOT_FOUND, f"Streams group {request.group_id} not found.")
            if self.is_other_group(request.group_id):
                raise _Refused(ErrorCode.GROUP_ID_NOT_FOUND, f"Group {request.group_id} is not a streams group.")
            group = StreamsGroup(request.group_id)
        staged = _stage(group)
        member, replaced = self._find_member(staged, request)
        if joining and replaced is None and member.member_id not in group.members:
            # GroupMetadataManager.throwIfStreamsGroupIsFull: group.streams.max.size.
            max_size = self.max_size()
            if len(group.members) >= max_size:
                raise _Refused(ErrorCode.GROUP_MAX_SIZE_REACHED, f"The streams group has reached its maximum capacity of {max_size} members.")
        previous = member.current
        metadata = MemberMetadata(
            instance_id=request.instance_id if request.instance_id is not None else member.metadata.instance_id,
            rack_id=request.rack_id if request.rack_id is not None else member.metadata.rack_id,
            client_id=request.client_id,
            client_host=request.client_host,
            rebalance_timeout_ms=request.rebalance_timeout_ms if request.rebalance_timeout_ms != -1 else member.metadata.rebalance_timeout_ms,
            topology_epoch=request.topology["epoch"] if request.topology is not None else member.metadata.topology_epoch,
            process_id=request.process_id if request.process_id is not None else member.metadata.process_id,
            user_endpoint=request.user_endpoint if joining or request.user_endpoint is not None else member.metadata.user_endpoint,
            client_tags=request.client_tags if request.client_tags is not None else member.metadata.client_tags,
        )
        is_new = member.member_id not in group.members
        bump = is_new or replaced is not None or _epoch_relevant(metadata) != _epoch_relevant(member.metadata)
        if replaced is not None:
            out += _member_tombstones(group.group_id, replaced.member_id)
            staged.remove_member(replaced.member_id)
            staged.target[member.member_id] = group.target.get(replaced.member_id, EMPTY)
            out.append((records.key(records.TARGET_ASSIGNMENT_MEMBER, group.group_id, member.member_id), _target_value(staged.target[member.member_id])))
        if metadata != member.metadata or is_new or replaced is not None:
            out.append((records.key(records.MEMBER_METADATA, group.group_id, member.member_id), _metadata_value(metadata)))
        member.metadata = metadata
        staged.put_member(member)
        if request.topology is not None:
            self._take_topology(staged, request.topology, out)
        if staged.topology is not None and metadata.topology_epoch < staged.topology_epoch:
            status.append((Status.STALE_TOPOLOGY, f"The member's topology epoch {metadata.topology_epoch} is behind the group's topology epoch {staged.topology_epoch}."))
        metadata_hash = self._metadata_hash(staged)
        configured = self._configure(staged, request.refused_creates)
        validated = staged.topology_epoch if configured.ready else -1
        if metadata_hash != staged.metadata_hash or validated != staged.validated_topology_epoch:
            bump = True
        assignment_configs = self._assignment_configs(group.group_id)
        if assignment_configs != staged.assignment_configs:
            bump = True  # e.g. streams.num.standby.replicas altered: standbys follow at once
        if configured.ready:
            sent = request.sent_tasks
            if sent is None and request.owned is not None:
                sent = tuple(tuple((subtopology, tuple(sorted(partitions))) for subtopology, partitions in tasks.items())
                             for tasks in (request.owned.active, request.owned.standby, request.owned.warmup))
            for entries in sent or ():
                for subtopology, partitions in entries:
                    count = configured.tasks.get(subtopology)
                    if count is None:
                        raise _Refused(ErrorCode.INVALID_REQUEST, f"Subtopology {subtopology} does not exist in the topology.")
                    for partition in partitions:
                        if not 0 <= partition < count:
                            raise _Refused(ErrorCode.INVALID_REQUEST, f"Task {partition} for subtopology {subtopology} is invalid. Number of tasks for this subtopology: {count}")
        if request.task_offsets is not None or request.task_end_offsets is not None:
            # MemberTaskOffsets.update: a list sent replaces the one kept; no epoch bump, the
            # assignor reads them at the next assignment.
            known = staged.task_offsets.get(member.member_id, NO_TASK_OFFSETS)
            staged.task_offsets[member.member_id] = TaskOffsets(
                known.offsets if request.task_offsets is None else _task_offsets(request.task_offsets),
                known.end_offsets if request.task_end_offsets is None else _task_offsets(request.task_end_offsets),
            )
        if bump:
            staged.group_epoch += 1
            staged.metadata_hash = metadata_hash
            staged.validated_topology_epoch = validated
            staged.assignment_configs = assignment_configs
            out.append((records.key(records.GROUP_METADATA, group.group_id), _group_metadata_value(staged)))
        delay_ms = int(self.group_config(group.group_id, "streams.initial.rebalance.delay.ms"))
        arm_delay = bump and not group.members and delay_ms > 0 and group.group_id not in self.initial_delays
        target = staged.target.get(member.member_id, EMPTY)
        if arm_delay or group.group_id in self.initial_delays:
            target = EMPTY
            status.append((Status.ASSIGNMENT_DELAYED, "Assignment delayed due to the configured initial rebalance delay."))
        elif staged.group_epoch > staged.assignment_epoch:
            if self._may_assign(staged, now):
                out += self._compute_target(staged, configured, now)
                target = staged.target.get(member.member_id, EMPTY)
            else:
                status.append((Status.ASSIGNMENT_DELAYED, "Assignment delayed due to the configured assignment interval."))
        try:
            updated = reconcile(staged, member, staged.assignment_epoch, target, None if joining else request.owned)
        except UnknownMemberState as unknown:
            raise _Refused(ErrorCode.FENCED_MEMBER_EPOCH, str(unknown)) from unknown
        if updated != previous or joining:
            out.append((records.key(records.CURRENT_MEMBER_ASSIGNMENT, group.group_id, member.member_id), _current_value(updated)))
        member.current = updated
        if out:
            self.log.append(group.group_id, out, now)
        if group.group_id in self.groups:
            self.configured[group.group_id] = configured
        else:
            # Kafka configures a new group's topology on the object its first heartbeat made,
            # which replaying the records replaces: until the next heartbeat configures it
            # again, it is described as stored (an internal topic's count undecided).
            self.configured.pop(group.group_id, None)
        self.groups[group.group_id] = staged
        staged.update_state()
        if arm_delay:
            self.initial_delays[group.group_id] = self.timers.after(delay_ms, self._assign_delayed, group.group_id)
        if replaced is not None:
            self._cancel_timers(replaced)
        self._arm_session(staged, member)
        self._arm_rebalance(staged, member, updated != previous)
        if request.shutdown_application and staged.shutdown_requested_by is None:
            staged.shutdown_requested_by = member.member_id  # the first to ask is named (setShutdownRequestMemberId)
        changed = updated.assigned != previous.assigned
        if metadata.user_endpoint != (None if is_new else group.members[member.member_id].metadata.user_endpoint) or (changed and metadata.user_endpoint is not None):
            staged.endpoint_epoch += 1
        if configured.status is not None:
            status.append((configured.status, configured.detail))
        if staged.shutdown_requested_by is not None:
            status.append((Status.SHUTDOWN_APPLICATION, f"Streams group member {staged.shutdown_requested_by} encountered a fatal error and requested a shutdown for the entire application."))
        return HeartbeatResult(
            ErrorCode.NONE,
            member_id=member.member_id,
            member_epoch=updated.member_epoch,
            heartbeat_interval_ms=self.group_config(group.group_id, "streams.heartbeat.interval.ms"),
            status=status,
            assignment=updated.assigned if joining or changed else None,
            endpoint_information_epoch=staged.endpoint_epoch,
            endpoints=self._endpoints(group, member, replaced, configured) if staged.endpoint_epoch != request.endpoint_information_epoch else None,
        )

    def _find_member(self, group: StreamsGroup, request: HeartbeatRequest) -> tuple[StreamsMember, StreamsMember | None]:
        """(the member, the static member it replaces), as getOrMaybeCreate{Dynamic,Static}StreamsGroupMember."""
        blank = MemberMetadata(None, None, "", "", -1, -1, "", None, ())
        if request.instance_id is not None:
            holder_id = group.static_members.get(request.instance_id)
            holder = None if holder_id is None else group.members.get(holder_id)
            if request.member_epoch == JOIN_EPOCH:
                if holder is None or holder.member_id == request.member_id:
                    return replace(holder) if holder is not None else StreamsMember(request.member_id, blank), None
                if holder.member_epoch != LEAVE_STATIC_EPOCH:
                    raise _Refused(ErrorCode.UNRELEASED_INSTANCE_ID, f"Static member {request.member_id} with instance id {request.instance_id} cannot join the group because the instance id is owned by {holder.member_id} member.")
                # A new member at epoch 0 with what the holder was assigned, nothing pending
                # (getOrMaybeCreateStaticStreamsGroupMember): reconciled from there as any.
                inherited = replace(holder.current, member_epoch=0, previous_member_epoch=0, state=MemberState.STABLE, pending_revocation=EMPTY)
                return StreamsMember(request.member_id, holder.metadata, inherited), holder
            if holder is None:
                raise _Refused(ErrorCode.UNKNOWN_MEMBER_ID, f"Instance id {request.instance_id} is unknown.")
            if holder.member_id != request.member_id:
                raise _Refused(ErrorCode.FENCED_INSTANCE_ID, f"Static member {request.member_id} with instance id {request.instance_id} was fenced by member {holder.member_id}.")
            self._check_epoch(holder, request)
            return replace(holder), None
        member = group.members.get(request.member_id)
        if member is None:
            if request.member_epoch != JOIN_EPOCH:
                raise _Refused(ErrorCode.UNKNOWN_MEMBER_ID, f"Member {request.member_id} is not a member of group {group.group_id}.")
            return StreamsMember(request.member_id, blank), None
        self._check_epoch(member, request)
        copy = replace(member)
        if request.member_epoch == JOIN_EPOCH:
            # A member rejoining owns nothing: what it held is free for others.
            copy.current = CurrentAssignment()
        return copy, None

    @staticmethod
    def _check_epoch(member: StreamsMember, request: HeartbeatRequest) -> None:
        """throwIfStreamsGroupMemberEpochIsInvalid: an epoch ahead is fenced; one behind only if
        it is the previous epoch and the member owns nothing it should not."""
        received = request.member_epoch
        if received == JOIN_EPOCH:
            return
        if received > member.member_epoch:
            raise _Refused(ErrorCode.FENCED_MEMBER_EPOCH, f"The streams group member has a greater member epoch ({received}) than the one known by the group coordinator ({member.member_epoch}). The member must abandon all its partitions and rejoin.")
        if received < member.member_epoch and not (received == member.current.previous_member_epoch and owned_subset(request.owned, member.current.assigned)):
            raise _Refused(ErrorCode.FENCED_MEMBER_EPOCH, f"The streams group member has a smaller member epoch ({received}) than the one known by the group coordinator ({member.member_epoch}). The member must abandon all its partitions and rejoin.")

    def _take_topology(self, group: StreamsGroup, topology: dict[str, Any], out: list[KeyValue]) -> None:
        """maybeUpdateTopology: the first member's topology becomes the group's; an older
        epoch is answered STALE_TOPOLOGY; a different topology at the same or a newer epoch is
        refused, as Kafka 4.4 does not support topology updates yet."""
        stored = {"epoch": topology["epoch"], "subtopologies": topology["subtopologies"]}
        if group.topology is None:
            body = records.parse_value(records.TOPOLOGY, records.value(records.TOPOLOGY, stored))
            group.topology = body
            out.append((records.key(records.TOPOLOGY, group.group_id), records.value(records.TOPOLOGY, stored)))
            return
        if group.topology_epoch > topology["epoch"]:
            return
        canonical = records.parse_value(records.TOPOLOGY, records.value(records.TOPOLOGY, stored))
        if records.topology_json(canonical) != records.topology_json(group.topology):
            raise _Refused(ErrorCode.INVALID_REQUEST, "Topology updates are not supported yet.")

    def _configure(self, group: StreamsGroup, refused_creates: Callable[[list[str]], list[str]]) -> ConfiguredTopology:
        """Configure the group's topology and create the internal topics it misses. As
        KafkaApis.handleStreamsGroupHeartbeat, none is created unless the member may create
        them all; the missing-topics status then names those it may not. Kafka has the
        controller create them after the heartbeat is answered: the heartbeat is answered
        with the topology as it was configured without them (MISSING_INTERNAL_TOPICS, not
        ready), and the next one finds them, which bumps the group epoch."""
        assert group.topology is not None
        configured = configure(group.topology, self._partitions)
        if configured.status is Status.MISSING_INTERNAL_TOPICS:
            refused = refused_creates(sorted(topic.name for topic in configured.missing))
            if refused:
                configured.detail += f"; Unauthorized to CREATE on topics {','.join(refused)}."
                return configured
            for topic in configured.missing:
                if self.storage.is_async:
                    self._create_in_database(group.group_id, topic)
                    continue
                try:
                    self.storage.create_topic(topic.name, topic.partitions, topic.configs)
                except KafkaError as exc:
                    if exc.code is not ErrorCode.TOPIC_ALREADY_EXISTS:
                        log.warning("streams group %s could not create internal topic %s: %s", group.group_id, topic.name, exc)
                else:
                    log.info("streams group %s created internal topic %s with %d partitions", group.group_id, topic.name, topic.partitions)
        return configured

    def _create_in_database(self, group_id: str, topic: InternalTopic) -> None:
        """An internal topic created in the database engine's database, as CreateTopics creates
        topics there (its configs validated as CreateTopics validates them), so that every broker
        on the database has it and it outlives a restart. The creation is a coroutine: run on a
        task of its own, found by the heartbeats after it ended (those before find the topic still
        missing, as Kafka's, whose controller creates it after the answer); one per name while it
        runs, as Kafka's AutoTopicCreationManager keeps its in-flight topics."""
        from ottla.server.topic_config import check_together, validate_configs
        from ottla.storage.postgresql.engine import PostgresStorage

        assert isinstance(self.storage, PostgresStorage)
        if topic.name in self.creating:
            return
        try:
            configs = validate_configs(topic.configs)
            check_together(configs, self.storage.defaults)
        except KafkaError as exc:
            log.warning("streams group %s could not create internal topic %s: %s", group_id, topic.name, exc)
            return
        task = asyncio.get_running_loop().create_task(self.storage.create_database_topic(topic.name, topic.partitions, configs))
        self.creating[topic.name] = task

        def created(done: asyncio.Task[TopicInfo]) -> None:
            del self.creating[topic.name]
            exc = None if done.cancelled() else done.exception()
            if exc is None:
                log.info("streams group %s created internal topic %s with %d partitions", group_id, topic.name, topic.partitions)
            elif not isinstance(exc, KafkaError) or exc.code is not ErrorCode.TOPIC_ALREADY_EXISTS:
                log.warning("streams group %s could not create internal topic %s: %s", group_id, topic.name, exc)

        task.add_done_callback(created)

    def _partitions(self, name: str) -> int | None:
        info = self.storage.topic(name)
        return None if info is None else info.partitions

    def _metadata_hash(self, group: StreamsGroup) -> int:
        """StreamsGroup.computeMetadataHash: `kafka_group_hash` of the topology's required
        topics (source, repartition source and changelog topics) that exist, taken before the
        heartbeat creates the internal topics it misses, as Kafka's controller creates them
        only after the answer."""
        assert group.topology is not None
        required = {name for s in group.topology["subtopologies"]
                    for name in (*s["source_topics"], *(t["name"] for t in s["repartition_source_topics"]), *(t["name"] for t in s["state_changelog_topics"]))}
        hashes = {name: self.topic_hash(info.topic_id, name, info.partitions)
                  for name in required if (info := self.storage.topic(name)) is not None}
        return kafka_group_hash(hashes)

    def _assignment_configs(self, group_id: str) -> dict[str, str]:
        """GroupMetadataManager.streamsGroupAssignmentConfigs: the assignor's configs, as the
        group metadata record keeps them; the heartbeat after one changed bumps the epoch."""
        configs = {"num.standby.replicas": str(int(self.group_config(group_id, "streams.num.standby.replicas")))}
        tags = self.group_config(group_id, "streams.rack.aware.assignment.tags")
        if tags:
            configs["rack.aware.assignment.tags"] = ",".join(tags)
        return configs

    def _compute_target(self, group: StreamsGroup, configured: ConfiguredTopology, now_ms: int) -> list[KeyValue]:
        specs = {m_id: MemberSpec(m.process_id, m.current.assigned, group.task_offsets.get(m_id, NO_TASK_OFFSETS).offsets) for m_id, m in group.members.items()}
        standbys = int(self.group_config(group.group_id, "streams.num.standby.replicas"))
        assert group.topology is not None
        stateful = frozenset(s["subtopology_id"] for s in group.topology["subtopologies"] if s["state_changelog_topics"])
        target = assign(specs, configured.tasks if configured.ready else {}, standbys, stateful)
        out: list[KeyValue] = []
        for member_id, tasks in target.items():
            if group.target.get(member_id) != tasks:
                out.append((records.key(records.TARGET_ASSIGNMENT_MEMBER, group.group_id, member_id), _target_value(tasks)))
        out.append((records.key(records.TARGET_ASSIGNMENT_METADATA, group.group_id), records.value(records.TARGET_ASSIGNMENT_METADATA, {"assignment_epoch": group.group_epoch, "assignment_timestamp": now_ms})))
        group.target = dict(target)
        group.assignment_epoch = group.group_epoch
        group.assignment_timestamp_ms = now_ms
        return out

    def _assign_delayed(self, group_id: str) -> None:
        """computeDelayedTargetAssignment: the target at the group epoch, once the initial
        delay ended, with the topology as the last heartbeat configured it, unless the group has
        no members left, no heartbeat configured its topology since the one that created the
        group (Kafka's configured topology lives on the object that heartbeat made, which
        replaying its records replaces: "configured topology is not present", so the next
        heartbeat computes the target, in its own batch), or the assignment interval still runs
        (as maybeUpdateStreamsTargetAssignment checks it); stored as a heartbeat's."""
        self.initial_delays.pop(group_id, None)
        group = self.groups.get(group_id)
        configured = self.configured.get(group_id)
        if group is None or not group.members or configured is None or group.group_epoch <= group.assignment_epoch:
            return
        now = self.wall_clock_ms()
        if not self._may_assign(group, now):
            return
        staged = _stage(group)
        out = self._compute_target(staged, configured, now)
        try:
            self.log.append(group_id, out, now)
        except KafkaError as exc:
            log.warning("streams group %s could not store its delayed target assignment: %s", group_id, exc)
            return
        self.groups[group_id] = staged
        staged.update_state()

    def _may_assign(self, group: StreamsGroup, now_ms: int) -> bool:
        """GroupMetadataManager.canComputeNextTargetAssignment: at once for a group never
        assigned (or emptied), else once the assignment interval has passed since the last."""
        interval_ms = int(self.group_config(group.group_id, "streams.assignment.interval.ms"))
        return group.assignment_timestamp_ms == 0 or interval_ms == 0 or now_ms >= group.assignment_timestamp_ms + interval_ms

    def _endpoints(self, before: StreamsGroup, updated: StreamsMember, replaced: StreamsMember | None,
                   configured: ConfiguredTopology) -> list[tuple[tuple[str, int], list[tuple[str, list[int]]], list[tuple[str, list[int]]]]]:
        """EndpointToPartitionsManager: per member with an endpoint, the source partitions of
        its active tasks and of its standby tasks, for interactive queries. As
        StreamsGroup.buildEndpointToPartitions: the other members as the group's map held them
        before this heartbeat, in its order, then the heartbeating member as updated."""
        skipped = {updated.member_id} | ({replaced.member_id} if replaced is not None else set())
        result = []
        for member in [*(m for m in before.members_in_map_order() if m.member_id not in skipped), updated]:
            endpoint = member.metadata.user_endpoint
            if endpoint is None:
                continue
            result.append((endpoint, self._partitions_of(member.current.assigned.active, configured), self._partitions_of(member.current.assigned.standby, configured)))
        return result

    def _partitions_of(self, tasks: dict[str, frozenset[int]], configured: ConfiguredTopology) -> list[tuple[str, list[int]]]:
        by_topic: dict[str, set[int]] = {}
        for subtopology, partitions in tasks.items():
            for topic in configured.sources.get(subtopology, ()):
                count = self._partitions(topic) or 0
                by_topic.setdefault(topic, set()).update(p for p in partitions if p < count)
        return [(topic, sorted(partitions)) for topic, partitions in sorted(by_topic.items())]

    # --- leaving and fencing ---------------------------------------------------------

    def _leave(self, request: HeartbeatRequest) -> HeartbeatResult:
        group = self.groups.get(request.group_id)
        if group is None:
            # GroupMetadataManager.streamsGroupLeave looks the group up through streamsGroup(groupId),
            # whose messages are not the joining path's "Streams group ... not found.".
            other = self.is_other_group(request.group_id)
            raise _Refused(ErrorCode.GROUP_ID_NOT_FOUND,
                           f"Group {request.group_id} is not a streams group." if other else f"Group {request.group_id} not found.")
        if request.instance_id is not None:
            holder_id = group.static_members.get(request.instance_id)
            member = None if holder_id is None else group.members.get(holder_id)
            if member is None:
                raise _Refused(ErrorCode.UNKNOWN_MEMBER_ID, f"Instance id {request.instance_id} is unknown.")
            if member.member_id != request.member_id:
                raise _Refused(ErrorCode.FENCED_INSTANCE_ID, f"Static member {request.member_id} with instance id {request.instance_id} was fenced by member {member.member_id}.")
        else:
            member = group.members.get(request.member_id)
            if member is None:
                raise _Refused(ErrorCode.UNKNOWN_MEMBER_ID, f"Member {request.member_id} is not a member of group {group.group_id}.")
        if request.shutdown_application and group.shutdown_requested_by is None:
            group.shutdown_requested_by = member.member_id
        if request.member_epoch == LEAVE_STATIC_EPOCH:
            # Its assignment is kept for its instance id; what it was giving up is freed now
            # (Kafka clears the pending revocation), not held until its session times out.
            current = replace(member.current, member_epoch=LEAVE_STATIC_EPOCH, previous_member_epoch=member.member_epoch, state=MemberState.STABLE,
                              pending_revocation=EMPTY)
            self.log.append(group.group_id, [(records.key(records.CURRENT_MEMBER_ASSIGNMENT, group.group_id, member.member_id), _current_value(current))], self.wall_clock_ms())
            member.current = current
            self.timers.cancel(member.rebalance_timer)
            group.update_state()
        else:
            self.remove_members(group, [member])
        return HeartbeatResult(ErrorCode.NONE, member_id=request.member_id, member_epoch=request.member_epoch)

    def remove_members(self, group: StreamsGroup, members: list[StreamsMember]) -> None:
        """Tombstones for the members' records and one group epoch bump, in one batch
        (streamsGroupFenceMember); the others get the tasks on their next heartbeats. A group
        left empty has its (empty) target at the new epoch with no assignment time, so the
        next member to join is assigned at once."""
        out = [t for member in members for t in _member_tombstones(group.group_id, member.member_id)]
        out.append((records.key(records.GROUP_METADATA, group.group_id), _group_metadata_value(replace(group, group_epoch=group.group_epoch + 1))))
        emptied = len({m.member_id for m in members}) == len(group.members)
        if emptied:
            out.append((records.key(records.TARGET_ASSIGNMENT_METADATA, group.group_id),
                        records.value(records.TARGET_ASSIGNMENT_METADATA, {"assignment_epoch": group.group_epoch + 1, "assignment_timestamp": 0})))
        self.log.append(group.group_id, out, self.wall_clock_ms())
        for member in members:
            self._cancel_timers(member)
            group.remove_member(member.member_id)
        group.group_epoch += 1
        if emptied:
            group.assignment_epoch, group.assignment_timestamp_ms = group.group_epoch, 0
        group.update_state()

    def _arm_session(self, group: StreamsGroup, member: StreamsMember) -> None:
        self.timers.cancel(member.session_timer)
        timeout = self.group_config(group.group_id, "streams.session.timeout.ms")
        member.session_timer = self.timers.after(timeout, self._fence, group.group_id, member.member_id, "session timeout", None)

    def _arm_rebalance(self, group: StreamsGroup, member: StreamsMember, reconciled: bool = False) -> None:
        """A member asked to revoke gets its rebalance timeout to do it, at this epoch, counted
        again whenever reconciliation changes what it holds while it still revokes
        (`reconciled`: GroupMetadataManager.maybeReconcile reschedules it then)."""
        if member.state is not MemberState.UNREVOKED_TASKS:
            self.timers.cancel(member.rebalance_timer)
            member.rebalance_timer = None
        elif member.rebalance_timer is None or reconciled:
            self.timers.cancel(member.rebalance_timer)
            timeout = max(member.metadata.rebalance_timeout_ms, 0)
            member.rebalance_timer = self.timers.after(timeout, self._fence, group.group_id, member.member_id, "rebalance timeout", member.member_epoch)

    def _cancel_timers(self, member: StreamsMember) -> None:
        self.timers.cancel(member.session_timer)
        self.timers.cancel(member.rebalance_timer)
        member.session_timer = member.rebalance_timer = None

    def _fence(self, group_id: str, member_id: str, why: str, epoch: int | None) -> None:
        group = self.groups.get(group_id)
        member = None if group is None else group.members.get(member_id)
        if group is None or member is None:
            return
        if epoch is not None and (member.state is not MemberState.UNREVOKED_TASKS or member.member_epoch != epoch):
            return
        try:
            self.remove_members(group, [member])
        except KafkaError as exc:
            log.warning("could not remove member %s of streams group %s after its %s: %s", member_id, group_id, why, exc)
            self._arm_session(group, member)
        else:
            log.info("member %s of streams group %s removed after its %s", member_id, group_id, why)

    # --- other APIs ----------------------------------------------------------------

    def validate_member_epoch(
        self, group: StreamsGroup, member_id: str | None, member_epoch: int, fetch: bool = False, commit_version: int | None = None,
        committed: Iterable[tuple[str, int]] = (), instance_id: str | None = None,
    ) -> ErrorCode:
        """StreamsGroup.validateOffsetCommit / validateOffsetFetch: an admin may commit (any
        negative epoch) only into an empty group, and fetch (a null member id and a negative
        epoch) from any; a fetch naming a member, even "" or into an empty group, must name a
        known one at its epoch; a transactional
        commit (`commit_version` None) without member, epoch or instance id passes, as one
        from a producer older than KIP-447 does; otherwise the member must be known, commit
        with OffsetCommit v9+ when not transactional, and fetch at its current epoch. A commit
        at its current epoch passes; at a newer one it is STALE_MEMBER_EPOCH; at an older one
        (KIP-1251) each `committed` (topic, partition) must be a source partition of an active
        task the member holds, assigned at that epoch or before, or the whole commit is
        STALE_MEMBER_EPOCH."""
        if member_epoch < 0 and (member_id is None if fetch else not group.members):
            return ErrorCode.NONE
        if not fetch and commit_version is None and member_epoch == -1 and not member_id and instance_id is None:
            return ErrorCode.NONE
        member = group.members.get(member_id or "")
        if member is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if not fetch and commit_version is not None and commit_version < 9:
            return ErrorCode.UNSUPPORTED_VERSION
        if member_epoch == member.member_epoch:
            return ErrorCode.NONE
        if fetch or member_epoch > member.member_epoch or group.topology is None:
            return ErrorCode.STALE_MEMBER_EPOCH
        subtopology_of = {topic: s["subtopology_id"] for s in group.topology["subtopologies"]
                          for topic in (*s["source_topics"], *(t["name"] for t in s["repartition_source_topics"]))}
        for topic, partition in committed:
            subtopology = subtopology_of.get(topic)
            assigned_at = None if subtopology is None else member.current.active_epochs.get((subtopology, partition))
            if assigned_at is None or member_epoch < assigned_at:
                return ErrorCode.STALE_MEMBER_EPOCH
        return ErrorCode.NONE

    def delete(self, group: StreamsGroup) -> list[KeyValue]:
        """The tombstones that delete an empty group, in StreamsGroup.createGroupTombstoneRecords'
        order: target assignment, group epoch, topology."""
        return [
            (records.key(records.TARGET_ASSIGNMENT_METADATA, group.group_id), None),
            (records.key(records.GROUP_METADATA, group.group_id), None),
            (records.key(records.TOPOLOGY, group.group_id), None),
        ]

    def forget(self, group: StreamsGroup) -> None:
        for member in group.members.values():
            self._cancel_timers(member)
        self.timers.cancel(self.initial_delays.pop(group.group_id, None))
        group.state = StreamsGroupState.DEAD
        self.groups.pop(group.group_id, None)
        self.configured.pop(group.group_id, None)
        if group.stored_description_topology_epoch != NONE_STORED:
            self.descriptions.delete(group.group_id)  # deleteStreamsTopologyDescriptions, then clearBackoffGroup

    # --- topology descriptions (KIP-1331) ------------------------------------------------

    def description_required(self, group_id: str, member_epoch: int, status: list[tuple[int, str]]) -> bool:
        """StreamsGroupTopologyDescriptionManager.maybeSetTopologyDescriptionRequired, after a
        heartbeat answered without error at `member_epoch` (>= 0: not a leave): ask for the
        description when the plugin holds none at the group's topology epoch, the plugin did
        not refuse that epoch for good, the member is not behind the topology (STALE_TOPOLOGY),
        and the group was not asked at this epoch within its backoff."""
        group = self.groups.get(group_id)
        if member_epoch < 0 or group is None:
            return False
        current = group.topology_epoch
        if current < 0 or current in (group.stored_description_topology_epoch, group.failed_description_topology_epoch):
            return False
        if any(code == Status.STALE_TOPOLOGY for code, _ in status):
            return False
        return self.descriptions.arm_if_not_active(group_id, current, self.wall_clock_ms())

    def update_description(self, group: StreamsGroup, member_id: str, topology_epoch: int, description: dict[str, Any]) -> tuple[ErrorCode, str | None]:
        """GroupCoordinatorService.streamsGroupTopologyDescriptionUpdate with the in-memory
        plugin: the member must be in the group (UNKNOWN_MEMBER_ID) at the group's topology
        epoch (INVALID_REQUEST); the stored epoch is recorded uncertain (-2) before the plugin
        takes the description and as the epoch after (markTopologyUncertainAsync, then
        setStoredDescriptionTopologyEpoch), so a log cut between the two asks again."""
        if member_id not in group.members:
            return ErrorCode.UNKNOWN_MEMBER_ID, f"Member {member_id} is not a member of group {group.group_id}."
        if topology_epoch != group.topology_epoch:
            return ErrorCode.INVALID_REQUEST, f"Topology epoch {topology_epoch} does not match the group's current topology epoch {group.topology_epoch}."
        try:
            converted = convert(description)
        except InvalidDescription as invalid:
            return ErrorCode.INVALID_REQUEST, str(invalid)
        try:
            if group.stored_description_topology_epoch != UNCERTAIN:
                self._store_description_epoch(group, UNCERTAIN)
            self.descriptions.set(group.group_id, topology_epoch, converted)
            self._store_description_epoch(group, max(group.stored_description_topology_epoch, topology_epoch))
        except KafkaError as exc:
            return store_error(exc.code), None
        self.descriptions.clear_backoff(group.group_id, topology_epoch)
        return ErrorCode.NONE, None

    def stored_description(self, group: StreamsGroup) -> dict[str, Any] | None:
        """The description StreamsGroupDescribe shows (maybeAttachOne): the plugin's, when the
        group records it stored at the topology's current epoch; None is NOT_STORED."""
        epoch = group.stored_description_topology_epoch
        if group.topology is None or epoch < 0 or epoch != group.topology_epoch:
            return None
        return self.descriptions.get(group.group_id, epoch)

    def _store_description_epoch(self, group: StreamsGroup, stored: int) -> None:
        value = _group_metadata_value(replace(group, stored_description_topology_epoch=stored))
        self.log.append(group.group_id, [(records.key(records.GROUP_METADATA, group.group_id), value)], self.wall_clock_ms())
        group.stored_description_topology_epoch = stored


def _stage(group: StreamsGroup) -> StreamsGroup:
    """A copy to apply a heartbeat's changes to, kept only once they are stored."""
    staged = replace(group)
    staged.members = {k: replace(v) for k, v in group.members.items()}
    staged.static_members = dict(group.static_members)
    staged.target = dict(group.target)
    staged.task_offsets = dict(group.task_offsets)
    return staged


def _group_metadata_value(group: StreamsGroup) -> bytes:
    return records.value(records.GROUP_METADATA, {
        "epoch": group.group_epoch, "metadata_hash": group.metadata_hash, "validated_topology_epoch": group.validated_topology_epoch,
        "last_assignment_configs": [{"key": k, "value": v} for k, v in sorted(group.assignment_configs.items())],
        "stored_description_topology_epoch": group.stored_description_topology_epoch,
        "failed_description_topology_epoch": group.failed_description_topology_epoch,
    })


def _task_offsets(entries: tuple[tuple[str, int, int], ...]) -> dict[tuple[str, int], int]:
    """MemberTaskOffsets.toNestedMap: a task reported twice is refused."""
    offsets: dict[tuple[str, int], int] = {}
    for subtopology, partition, offset in entries:
        if (subtopology, partition) in offsets:
            raise _Refused(ErrorCode.INVALID_REQUEST, f"Task offsets contain a duplicate entry for subtopology {subtopology} and partition {partition}.")
        offsets[(subtopology, partition)] = offset
    return offsets


def _epoch_relevant(metadata: MemberMetadata) -> tuple[object, ...]:
    """hasEpochRelevantMemberConfigChanged: what the assignor looks at."""
    return (metadata.process_id, metadata.rack_id, metadata.client_tags, metadata.topology_epoch, metadata.instance_id)


def _member_tombstones(group_id: str, member_id: str) -> list[KeyValue]:
    return [
        (records.key(records.CURRENT_MEMBER_ASSIGNMENT, group_id, member_id), None),
        (records.key(records.TARGET_ASSIGNMENT_MEMBER, group_id, member_id), None),
        (records.key(records.MEMBER_METADATA, group_id, member_id), None),
    ]


def _metadata(body: dict[str, Any]) -> MemberMetadata:
    endpoint = body["user_endpoint"]
    return MemberMetadata(
        body["instance_id"], body["rack_id"], body["client_id"], body["client_host"], body["rebalance_timeout_ms"], body["topology_epoch"],
        body["process_id"], None if endpoint is None else (endpoint["host"], endpoint["port"]), tuple((t["key"], t["value"]) for t in body["client_tags"]),
    )


def _metadata_value(metadata: MemberMetadata) -> bytes:
    return records.value(records.MEMBER_METADATA, {
        "instance_id": metadata.instance_id, "rack_id": metadata.rack_id, "client_id": metadata.client_id, "client_host": metadata.client_host,
        "rebalance_timeout_ms": metadata.rebalance_timeout_ms, "topology_epoch": metadata.topology_epoch, "process_id": metadata.process_id,
        "user_endpoint": None if metadata.user_endpoint is None else {"host": metadata.user_endpoint[0], "port": metadata.user_endpoint[1]},
        "client_tags": [{"key": k, "value": v} for k, v in metadata.client_tags],
    })


def _tuple(body: dict[str, Any], suffix: str) -> TasksTuple:
    return TasksTuple(records.tasks_of(body["active_tasks" + suffix]), records.tasks_of(body["standby_tasks" + suffix]), records.tasks_of(body["warmup_tasks" + suffix]))


def _active_epochs(body: dict[str, Any], suffix: str, default_epoch: int) -> dict[tuple[str, int], int]:
    """The active tasks' AssignmentEpochs of a CurrentMemberAssignment record; `default_epoch`
    for a subtopology written without them or with a count that is not its partitions'
    (TasksTupleWithEpochs.parseActiveTasksWithEpochs)."""
    epochs: dict[tuple[str, int], int] = {}
    for entry in body["active_tasks" + suffix] or ():
        given = entry.get("assignment_epochs")
        aligned = given if given is not None and len(given) == len(entry["partitions"]) else [default_epoch] * len(entry["partitions"])
        epochs.update(((entry["subtopology_id"], partition), epoch) for partition, epoch in zip(entry["partitions"], aligned))
    return epochs


def _target_value(tasks: TasksTuple) -> bytes:
    return records.value(records.TARGET_ASSIGNMENT_MEMBER, {
        "active_tasks": records.task_ids(tasks.active), "standby_tasks": records.task_ids(tasks.standby), "warmup_tasks": records.task_ids(tasks.warmup),
    })


def _current_value(current: CurrentAssignment) -> bytes:
    body: dict[str, Any] = {"member_epoch": current.member_epoch, "previous_member_epoch": current.previous_member_epoch, "state": current.state}
    for suffix, tasks in (("", current.assigned), ("_pending_revocation", current.pending_revocation)):
        body["active_tasks" + suffix] = [
            {**entry, "assignment_epochs": [current.active_epochs[(entry["subtopology_id"], p)] for p in entry["partitions"]]}
            for entry in records.task_ids(tasks.active)
        ]
        body["standby_tasks" + suffix] = [{**entry, "assignment_epochs": None} for entry in records.task_ids(tasks.standby)]
        body["warmup_tasks" + suffix] = [{**entry, "assignment_epochs": None} for entry in records.task_ids(tasks.warmup)]
    return records.value(records.CURRENT_MEMBER_ASSIGNMENT, body)
