"""KIP-848 consumer groups: Kafka's GroupMetadataManager for ConsumerGroupHeartbeat.

One heartbeat does, in order (GroupMetadataManager.consumerGroupHeartbeat): validate the
request; find or create the group and the member (static members by instance id); fence a
wrong member epoch; take the member's new subscription, bumping the group epoch when its
topic names, its regex to one the group resolved already (or to none), the group's preferred
assignor or the subscribed topics changed (not for a rack, nor for a member subscribing to
nothing, nor for a regex new to the group); recompute the target assignment with
the group's assignor when the group epoch is ahead of it and `consumer.assignment.interval.ms`
has passed since the last one (GroupMetadataManager.canComputeNextTargetAssignment);
reconcile the member toward its target (`group.reconcile`); store every changed record in
one batch before answering; arm the member's session timer. The answer carries the
member's partitions when it joined, sent a full request, or its partitions changed, never
for an epoch alone.

Regexes are resolved as Kafka's executor does it, after the heartbeat's answer, in a batch of
their own that bumps the group epoch when what they match changed: a regex new to the group,
or a topic created since, is assigned at the next heartbeat, and no sooner than 10 s after the
group's last resolution (`_regex_refresh_due`).

Timers are on the runtime's clock: a member that stops heartbeating is removed after its
session timeout, and one that does not revoke partitions within its rebalance timeout too.
State is the ConsumerGroup* records of `__consumer_offsets`, replayed at load.
"""

from __future__ import annotations

import base64
import logging
import struct
import uuid
from collections import Counter
from dataclasses import dataclass, replace
from collections.abc import Iterable
from typing import Any, Callable

from ottla.server.config import all_keys
from ottla.server.coordinator import CoordinatorLog, KeyValue, Timers, store_error
import ottla.server.groups.consumer.assignors as assignors
import ottla.server.groups.consumer.embedded as embedded
import ottla.server.groups.consumer.orders as orders
import ottla.server.groups.consumer.records as records
from ottla.server.groups.consumer.group import (
    JOIN_EPOCH,
    LEAVE_EPOCH,
    LEAVE_STATIC_EPOCH,
    ConsumerGroup,
    ConsumerGroupState,
    ConsumerMember,
    MemberState,
    is_subset,
    reconcile,
)
from ottla.server.groups.consumer.records import Assignment, ClassicMemberMetadata, CurrentAssignment, MemberMetadata, RecordKey
from ottla.server.groups.group import CONSUMER_PROTOCOL_TYPE, JoinResult, SyncResult
from ottla.server.groups.membership import JoinRequest
from ottla.server.java_hashing import kafka_group_hash, kafka_topic_hash_on_rack
from ottla.server.java_strings import is_blank
from ottla.server.re2j import compile_re2j, re2j_problem
from ottla.storage import Storage
from ottla.wire.errors import ErrorCode, KafkaError

log = logging.getLogger("ottla.groups")

_INT16 = struct.Struct(">h")

# Heartbeat timers may fire a hair before their deadline (asyncio's clock resolution).
_TIMER_SLACK_S = 0.001

# GroupMetadataManager.REGEX_BATCH_REFRESH_MIN_INTERVAL_MS: the least time between two
# resolutions of a group's regexes.
REGEX_BATCH_REFRESH_MIN_INTERVAL_MS = 10_000



def _new_member_id() -> str:
    """A member id the coordinator makes, as Kafka's Uuid.randomUuid().toString() writes one:
    16 random bytes in URL-safe base64 without padding, never starting with "-"."""
    while True:
        made = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not made.startswith("-"):
            return made


def _metadata_hash(topics: dict[str, tuple[bytes, int]], topic_hash: Callable[[bytes, str, int], int]) -> int:
    """ModernGroup.computeMetadataHash of the subscribed topics that exist
    (name -> topic id, partitions), which the group epoch record keeps; `topic_hash(id, name,
    partitions)` is Utils.computeTopicHash, over the racks of each partition's replicas."""
    return kafka_group_hash({name: topic_hash(topic_id, name, partitions) for name, (topic_id, partitions) in topics.items()})


def _same_subscription(a: MemberMetadata, b: MemberMetadata) -> bool:
    """ConsumerGroupMember.equals over what the member's metadata record holds: the subscribed
    topic names as a set (the record lists them sorted, as a load reads them back)."""
    return set(a.subscribed_topic_names) == set(b.subscribed_topic_names) and a == replace(b, subscribed_topic_names=a.subscribed_topic_names)


@dataclass(slots=True, frozen=True)
class ConsumerGroupConfig:
    """The group.consumer.* broker settings (GroupCoordinatorConfig)."""

    session_timeout_ms: int = 45000
    heartbeat_interval_ms: int = 5000
    assignment_interval_ms: int = 1000
    max_size: int = 2**31 - 1
    assignors: tuple[str, ...] = assignors.ASSIGNORS
    # group.consumer.migration.policy: disabled, upgrade, downgrade or bidirectional (Kafka 4.4's default).
    migration_policy: str = "bidirectional"
    # group.consumer.regex.refresh.interval.ms: the longest a regex resolution is kept while
    # neither the topics nor the regexes change, so a change of ACLs is seen too.
    regex_refresh_interval_ms: int = 600_000
    # broker.rack: on a single node the rack of every partition's replica, which the metadata hash covers.
    broker_rack: str | None = None

    @property
    def upgrade_enabled(self) -> bool:
        return self.migration_policy in ("upgrade", "bidirectional")

    @property
    def downgrade_enabled(self) -> bool:
        return self.migration_policy in ("downgrade", "bidirectional")

    def broker_value(self, name: str) -> Any:
        """A broker setting as this config holds it: its own group.consumer.* fields, Kafka's
        defaults for the rest (the defaults of per-group configs when no broker is behind it)."""
        own = {
            "group.consumer.session.timeout.ms": self.session_timeout_ms,
            "group.consumer.heartbeat.interval.ms": self.heartbeat_interval_ms,
            "group.consumer.assignment.interval.ms": self.assignment_interval_ms,
            "group.consumer.max.size": self.max_size,
            "group.consumer.assignors": self.assignors,
            "group.consumer.migration.policy": self.migration_policy,
            "group.consumer.regex.refresh.interval.ms": self.regex_refresh_interval_ms,
        }
        return own[name] if name in own else all_keys()[name].default

    @classmethod
    def from_broker(cls, config: Any) -> ConsumerGroupConfig:
        names = tuple(name.strip() for name in config.value("group.consumer.assignors") if name.strip() in assignors.ASSIGNORS)
        return cls(
            session_timeout_ms=config.value("group.consumer.session.timeout.ms"),
            heartbeat_interval_ms=config.value("group.consumer.heartbeat.interval.ms"),
            assignment_interval_ms=config.value("group.consumer.assignment.interval.ms"),
            max_size=config.value("group.consumer.max.size"),
            assignors=names or assignors.ASSIGNORS,
            migration_policy=str(config.value("group.consumer.migration.policy")).strip().lower(),
            broker_rack=config.value("broker.rack"),
        )


@dataclass(slots=True, frozen=True)
class HeartbeatRequest:
    group_id: str
    member_id: str
    member_epoch: int
    instance_id: str | None = None
    rack_id: str | None = None
    rebalance_timeout_ms: int = -1
    subscribed_topic_names: tuple[str, ...] | None = None
    subscribed_topic_regex: str | None = None
    server_assignor: str | None = None
    owned: Assignment | None = None
    client_id: str = ""
    client_host: str = ""
    api_version: int = 1
    # Whether the member's principal may Describe a topic (None: no authorizer): what its
    # regex resolves to leaves out the others, as Kafka's TopicRegexResolver does.
    may_describe: Callable[[str], bool] | None = None
    # Whether a streams or share group holds the id (this coordinator does not keep those):
    # asked only once the checks made before the group's coordinator is found have passed.
    held_by_another_type: Callable[[], bool] = lambda: False
    # Whether TopicPartitions named any topic, even with no partition (`owned` leaves those out).
    owned_listed: bool = False


@dataclass(slots=True, frozen=True)
class HeartbeatResult:
    error: ErrorCode
    message: str | None = None
    member_id: str | None = None
    member_epoch: int = 0
    heartbeat_interval_ms: int = 0
    assignment: Assignment | None = None
    # The assignment's topics and partitions in the order Kafka lists them (`orders`).
    listing: orders.Listing | None = None


@dataclass(slots=True, frozen=True)
class Upgrade:
    """A live classic group converted to a consumer group (not yet kept): the records that
    retire the one and write the other, and what to do once they are stored."""

    group: ConsumerGroup
    records: list[KeyValue]
    on_stored: Callable[[], None]


class _Refused(Exception):
    def __init__(self, error: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.error = error
        self.message = message


class ConsumerGroupManager:
    """The consumer groups of one coordinator. `has_classic_group(id)` says whether a
    non-empty classic group holds the id, which a consumer group takes over only through
    `upgrade_classic_group(id)` (why not, in Kafka's words, when not allowed); `drop_empty_classic_group(id)`
    gives the records that retire an empty one; `downgrade(group, leaving ids)` turns a
    group whose remaining members all speak the classic protocol back into a classic group
    instead of fencing the leaving ones, when it may (True if it did)."""

    def __init__(
        self,
        log_: CoordinatorLog,
        storage: Storage,
        config: ConsumerGroupConfig,
        timers: Timers,
        wall_clock_ms: Callable[[], int],
        has_classic_group: Callable[[str], bool],
        drop_empty_classic_group: Callable[[str], list[KeyValue]],
        group_config: Callable[[str, str], Any] | None = None,
        upgrade_classic_group: Callable[[str], Upgrade | str] | None = None,
        downgrade: Callable[[ConsumerGroup, set[str], bool], bool] | None = None,
        topic_hash: Callable[[bytes, str, int], int] | None = None,
    ) -> None:
        """`topic_hash(id, name, partitions)`: a subscribed topic's KIP-1101 hash; by default
        that of a single node, whose one replica of each partition is on broker.rack."""
        self.log = log_
        self.topic_hash = topic_hash or (lambda topic_id, name, partitions: kafka_topic_hash_on_rack(topic_id, name, partitions, config.broker_rack))
        self.storage = storage
        self.config = config
        self.timers = timers
        self.wall_clock_ms = wall_clock_ms
        self.has_classic_group = has_classic_group
        self.drop_empty_classic_group = drop_empty_classic_group
        self.upgrade_classic_group = upgrade_classic_group
        self.downgrade = downgrade
        # (group id, group config name) -> the value the group runs with (`GroupConfigs.value`).
        self.group_config = group_config or (lambda group_id, name: self.config.broker_value("group." + name))
        self.groups: dict[str, ConsumerGroup] = {}

    # --- loading -----------------------------------------------------------------

    def replay(self, key: RecordKey, value: bytes | None) -> None:
        """GroupMetadataManager.replay of one consumer group record."""
        kind = key.record_type
        group = self.groups.get(key.group_id)
        if kind == records.GROUP_METADATA and value is None:
            self.groups.pop(key.group_id, None)
            return
        if group is None:
            if value is None:
                return
            group = self.groups[key.group_id] = ConsumerGroup(key.group_id)
        if kind == records.GROUP_METADATA:
            group.group_epoch, group.metadata_hash = records.parse_group_metadata_value(value or b"")
        elif kind == records.TARGET_ASSIGNMENT_METADATA:
            group.assignment_epoch, group.assignment_timestamp_ms = (0, 0) if value is None else records.parse_target_assignment_metadata_value(value)
        elif kind == records.TARGET_ASSIGNMENT_MEMBER:
            if value is None:
                group.target.pop(key.member_id, None)
            else:
                group.target[key.member_id] = records.parse_target_assignment_member_value(value)
        elif kind == records.MEMBER_METADATA:
            if value is None:
                group.remove_member(key.member_id)
            else:
                metadata = records.parse_member_metadata_value(value)
                member = group.members.get(key.member_id)
                if member is None:
                    group.put_member(ConsumerMember(key.member_id, metadata))
                else:
                    member.metadata = metadata
                    group.put_member(member)
        elif kind == records.CURRENT_MEMBER_ASSIGNMENT:
            member = group.members.get(key.member_id)
            if member is None:
                member = ConsumerMember(key.member_id, MemberMetadata(None, None, "", "", (), None, -1, None))
                group.put_member(member)
            # Kafka rebuilds the assigned map in the record's order, which was its map's order.
            member.listing = [] if value is not None else None
            group.set_current(member, CurrentAssignment(0, 0, MemberState.STABLE) if value is None else records.parse_current_assignment_value(value, member.listing))
        elif kind == records.REGULAR_EXPRESSION:
            if value is None:
                group.resolved_regexes.pop(key.member_id, None)
            else:
                # Every resolution rewrites every regex the group uses, so the last one read
                # holds the time of the last resolution (ConsumerGroup.lastResolvedRegularExpressionRefreshTimeMs).
                resolved = records.parse_regex_value(value)
                group.resolved_regexes[key.member_id] = resolved.topics
                group.regex_resolved_ms = resolved.timestamp_ms

    def on_loaded(self, owned: Callable[[str], bool] = lambda group_id: True) -> None:
        """Every loaded member (of the groups `owned` picks) must heartbeat within the session
        timeout, and one still revoking revoke within its rebalance timeout. A load alone bumps
        no epoch, but the next heartbeat compares the subscribed topics' hash with the one
        replayed (GroupMetadataManager.consumerGroupHeartbeat: a loaded group's metadata has
        expired), so a topic resized or recreated while the broker was down moves the target."""
        for group in self.groups.values():
            if not owned(group.group_id):
                continue
            group.update_state()
            group.subscription_metadata = self._subscription_metadata(group)
            group.metadata_expired = True
            for member in group.members.values():
                self._arm_session(group, member)
                self._arm_rebalance(group, member)  # one loaded while revoking, as onLoaded schedules it

    def rearm_timers(self, owned: Callable[[str], bool]) -> None:
        """The groups `owned` picks moved to this coordinator (cluster mode), loaded already:
        every member must heartbeat within its session timeout from now, and one still revoking
        revoke within a whole rebalance timeout from now, as after a load
        (GroupMetadataManager.onLoaded, scheduleConsumerGroupRebalanceTimeout)."""
        for group in self.groups.values():
            if owned(group.group_id):
                for member in group.members.values():
                    self._arm_session(group, member)
                    self._arm_rebalance(group, member, reconciled=True)

    def close(self) -> None:
        for group in self.groups.values():
            for member in group.members.values():
                self._cancel_timers(member)

    # --- ConsumerGroupHeartbeat ---------------------------------------------------

    def heartbeat(self, request: HeartbeatRequest) -> HeartbeatResult:
        try:
            self._validate(request)
            if request.member_epoch in (LEAVE_EPOCH, LEAVE_STATIC_EPOCH):
                return self._leave(request)
            return self._heartbeat(request)
        except _Refused as refused:
            return HeartbeatResult(refused.error, refused.message, member_id=None)
        except KafkaError as exc:
            return HeartbeatResult(store_error(exc.code), None)

    def _validate(self, request: HeartbeatRequest) -> None:
        """GroupCoordinatorService.throwIfConsumerGroupHeartbeatRequestIsInvalid, in its order.
        Ids count as empty when blank (Utils.throwIfEmptyString trims). Then, before the
        group is looked up, an id another type of group holds is GROUP_ID_NOT_FOUND."""
        if request.api_version >= 1 or request.member_epoch > 0 or request.member_epoch == LEAVE_EPOCH:
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
            if request.owned is None or request.owned or request.owned_listed:
                raise _Refused(ErrorCode.INVALID_REQUEST, "TopicPartitions must be empty when (re-)joining.")
            if request.subscribed_topic_names is None and request.subscribed_topic_regex is None:
                raise _Refused(ErrorCode.INVALID_REQUEST, "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.")
        elif request.member_epoch == LEAVE_STATIC_EPOCH:
            if request.instance_id is None:
                raise _Refused(ErrorCode.INVALID_REQUEST, "InstanceId can't be null.")
        elif request.member_epoch < LEAVE_STATIC_EPOCH:
            raise _Refused(ErrorCode.INVALID_REQUEST, "MemberEpoch is invalid.")
        if request.server_assignor is not None and request.server_assignor not in self.config.assignors:
            raise _Refused(ErrorCode.UNSUPPORTED_ASSIGNOR, f"ServerAssignor {request.server_assignor} is not supported. Supported assignors: {', '.join(self.config.assignors)}.")
        if request.held_by_another_type():
            raise _Refused(ErrorCode.GROUP_ID_NOT_FOUND, f"Group {request.group_id} is not a consumer group.")

    def _heartbeat(self, request: HeartbeatRequest) -> HeartbeatResult:
        now = self.wall_clock_ms()
        out: list[KeyValue] = []
        group = self.groups.get(request.group_id)
        upgraded: Upgrade | None = None
        if group is None:
            if request.member_epoch != JOIN_EPOCH:
                raise _Refused(ErrorCode.GROUP_ID_NOT_FOUND, f"Consumer group {request.group_id} not found.")
            if self.has_classic_group(request.group_id):
                # GroupMetadataManager.getOrMaybeCreateConsumerGroup: a live classic group is
                # converted when the migration policy allows it (validateOnlineUpgrade).
                upgrade = self.upgrade_classic_group(request.group_id) if self.upgrade_classic_group is not None else f"Group {request.group_id} is not a consumer group."
                if isinstance(upgrade, str):
                    raise _Refused(ErrorCode.GROUP_ID_NOT_FOUND, upgrade)
                upgraded = upgrade
                group = upgraded.group
                out += upgraded.records
            else:
                out += self.drop_empty_classic_group(request.group_id)
                group = ConsumerGroup(request.group_id)
        member, replaced = self._find_member(group, request)
        if member is None:
            if len(group.members) >= self.config.max_size:
                raise _Refused(ErrorCode.GROUP_MAX_SIZE_REACHED, f"The consumer group has reached its maximum capacity of {self.config.max_size} members.")
            member = ConsumerMember(request.member_id or _new_member_id(), MemberMetadata(None, None, "", "", (), None, -1, None))
        else:
            self._check_epoch(member, request)
        regex = request.subscribed_topic_regex
        if regex is not None and regex != member.metadata.subscribed_topic_regex:
            # GroupMetadataManager.maybeUpdateRegularExpressions: a regex is checked when the
            # member takes it up, after the group and the member were found.
            problem = re2j_problem(regex)
            if problem is not None:
                raise _Refused(ErrorCode.INVALID_REGULAR_EXPRESSION, f"SubscribedTopicRegex `{regex}` is not a valid regular expression: {problem}.")
        # ConsumerGroupMember.Builder's maybeUpdate*: a field the request leaves null keeps the
        # member's value, even on a rejoin, so names and a regex may both stay subscribed.
        metadata = MemberMetadata(
            instance_id=request.instance_id if request.instance_id is not None else member.metadata.instance_id,
            rack_id=request.rack_id if request.rack_id is not None else member.metadata.rack_id,
            client_id=request.client_id,
            client_host=request.client_host,
            subscribed_topic_names=request.subscribed_topic_names if request.subscribed_topic_names is not None else member.metadata.subscribed_topic_names,
            subscribed_topic_regex=request.subscribed_topic_regex if request.subscribed_topic_regex is not None else member.metadata.subscribed_topic_regex,
            rebalance_timeout_ms=request.rebalance_timeout_ms if request.rebalance_timeout_ms != -1 else member.metadata.rebalance_timeout_ms,
            server_assignor=request.server_assignor if request.server_assignor is not None else member.metadata.server_assignor,
        )
        if replaced is None and request.member_epoch == JOIN_EPOCH:
            # A member (re)joining owns nothing: what it held is free for others.
            member.current = CurrentAssignment(0, 0, MemberState.STABLE)
        staged, previous, updated = self._apply(group, member, replaced, metadata, request.owned, request.member_epoch == JOIN_EPOCH, out, now,
                                                request.may_describe)
        if upgraded is not None:
            upgraded.on_stored()
            for converted in staged.members.values():
                if converted is not member:
                    self._arm_session(staged, converted)
        self._arm_session(staged, member)
        self._arm_rebalance(staged, member, updated != previous)
        full = request.member_epoch == JOIN_EPOCH or (
            request.rebalance_timeout_ms != -1
            and (request.subscribed_topic_names is not None or request.subscribed_topic_regex is not None)
            and request.owned is not None
        )
        send = full or updated.assigned != previous.assigned
        # Kafka answers with the member it reconciled (CurrentAssignmentBuilder's new maps, which
        # `_apply` kept), or the member as it holds it when nothing was to reconcile.
        listing = None
        if updated is not previous:
            listing = member.listing
        elif send:
            listing = self._assigned_order(staged, member, updated.assigned)
        return HeartbeatResult(
            ErrorCode.NONE,
            member_id=member.member_id,
            member_epoch=updated.member_epoch,
            heartbeat_interval_ms=self.group_config(group.group_id, "consumer.heartbeat.interval.ms"),
            assignment=updated.assigned if send else None,
            listing=listing if send else None,
        )

    def _apply(
        self,
        group: ConsumerGroup,
        member: ConsumerMember,
        replaced: ConsumerMember | None,
        metadata: MemberMetadata,
        owned: Assignment | None,
        write_current: bool,
        out: list[KeyValue],
        now: int,
        may_describe: Callable[[str], bool] | None = None,
    ) -> tuple[ConsumerGroup, CurrentAssignment, CurrentAssignment]:
        """Steps 1-3 of a heartbeat or a classic member's JoinGroup, shared by both protocols:
        take the member's metadata (bumping the group epoch only when that may move the
        target, as GroupMetadataManager.consumerGroupHeartbeat does), recompute the target
        assignment if the epoch is ahead, reconcile the member, store `out` and the changes in
        one batch, and only then keep them. Returns the group as kept, and the member's
        previous and new current assignment."""
        is_new = replaced is None and member.member_id not in group.members
        names_changed = set(metadata.subscribed_topic_names) != set(member.metadata.subscribed_topic_names)
        regex = metadata.subscribed_topic_regex
        regex_changed = regex != member.metadata.subscribed_topic_regex
        # A change to a regex another member uses and the group resolved, or to none, moves the
        # target at once (UpdateRegularExpressionStatus.REGEX_UPDATED_AND_RESOLVED); a regex new
        # to the group moves it only once resolved, after this heartbeat (`_resolve_regexes`).
        shared = any(m.metadata.subscribed_topic_regex == regex for m_id, m in group.members.items() if m_id != member.member_id)
        bump = names_changed or (regex_changed and (regex is None or (shared and regex in group.resolved_regexes)))
        subscription_changed = names_changed or regex_changed
        assignor_before = group.preferred_assignor(self.config.assignors[0], self.config.assignors)
        staged = self._stage(group)  # changes are applied to a copy, kept only once stored
        if replaced is not None:
            # The static member's new id takes over the old one's assignment as it is.
            out += self._member_tombstones(group.group_id, replaced.member_id)
            staged.remove_member(replaced.member_id)
            inherited = group.target.get(replaced.member_id, {})
            staged.target[member.member_id] = inherited
            out.append((records.member_key(records.TARGET_ASSIGNMENT_MEMBER, group.group_id, member.member_id), records.target_assignment_member_value(inherited)))
        if not _same_subscription(metadata, member.metadata) or is_new or replaced is not None:
            out.append((records.member_key(records.MEMBER_METADATA, group.group_id, member.member_id), records.member_metadata_value(metadata)))
        member.metadata = metadata
        previous = member.current
        staged.put_member(member)
        staged.set_current(member, previous)
        resolve = self._regex_refresh_due(group, staged, now, regex_changed and regex is not None and not shared)
        out += self._drop_unused_regexes(staged)
        if staged.preferred_assignor(self.config.assignors[0], self.config.assignors) != assignor_before:
            bump = True  # GroupMetadataManager.hasPreferredServerAssignorChanged
        # Kafka takes the subscribed topics' metadata again only when the epoch is bumped anyway,
        # the group is new or loaded, or a subscribed topic changed since
        # (ConsumerGroup.hasMetadataExpired), and bumps the epoch when their hash is not the
        # group's (updateSubscriptionMetadata): a member leaving a regex for one not resolved
        # yet does not bump it, the resolution does.
        if bump or staged.metadata_expired or self._subscribed_topic_changed(group):
            staged.subscription_metadata = self._subscription_metadata(staged)
            staged.metadata_expired = False
            if _metadata_hash(staged.subscription_metadata, self.topic_hash) != staged.metadata_hash:
                bump = True
        if bump:
            staged.group_epoch += 1
            staged.metadata_hash = _metadata_hash(staged.subscription_metadata, self.topic_hash)
            out.append((records.group_key(records.GROUP_METADATA, group.group_id), records.group_metadata_value(staged.group_epoch, staged.metadata_hash)))
        if staged.group_epoch > staged.assignment_epoch and self._may_assign(staged, now):
            # The assignor sees the members as Kafka's TargetAssignmentBuilder is given them: the
            # group's map before this heartbeat, then a member new to it.
            order = [m.member_id for m in group.members_in_map_order() if m.member_id in staged.members]
            out += self._compute_target(staged, now, order + [m_id for m_id in staged.members if m_id not in group.members])
        subscribed = frozenset(staged.subscription_metadata[t][0] for t in self._member_topics(staged, member) if t in staged.subscription_metadata)
        updated = reconcile(member, staged.assignment_epoch, staged.target.get(member.member_id, {}), owned, staged.partition_epoch, subscribed, subscription_changed)
        # Kafka writes the record off the maps reconciliation built, else off the map it holds.
        written = None
        if updated is not previous:
            target = orders.target_listing(staged.target.get(member.member_id, {}))
            written = member.listing = orders.reconciled_listing(self._assigned_order(staged, member, previous.assigned), target, updated.assigned)
        if updated != previous or write_current:
            value = records.current_assignment_value(updated, written or self._assigned_order(staged, member, updated.assigned))
            out.append((records.member_key(records.CURRENT_MEMBER_ASSIGNMENT, group.group_id, member.member_id), value))
        staged.set_current(member, updated)
        if out:
            self.log.append(group.group_id, out, now)
        self.groups[group.group_id] = staged
        staged.update_state()
        if replaced is not None:
            self._cancel_timers(replaced)
        if resolve:
            self._resolve_regexes(staged, now, may_describe)
        return staged, previous, updated

    def _stage(self, group: ConsumerGroup) -> ConsumerGroup:
        """A copy of the group to apply a heartbeat's changes to, so a failed write leaves
        the group as it was (members are shared: their fields change only once stored)."""
        staged = replace(group)
        staged.members = {k: replace(v) for k, v in group.members.items()}
        staged.static_members = dict(group.static_members)
        staged.target = dict(group.target)
        staged.partition_epochs = dict(group.partition_epochs)
        staged.resolved_regexes = dict(group.resolved_regexes)
        return staged

    def _find_member(self, group: ConsumerGroup, request: HeartbeatRequest) -> tuple[ConsumerMember | None, ConsumerMember | None]:
        """(the member, the static member it replaces). A static member rejoining with
        epoch 0 takes over the previous holder of its instance id, which must have left
        with epoch -2 (UNRELEASED_INSTANCE_ID otherwise)."""
        if request.instance_id is not None:
            holder_id = group.static_members.get(request.instance_id)
            holder = None if holder_id is None else group.members.get(holder_id)
            if request.member_epoch == JOIN_EPOCH:
                if holder is None:
                    return self._copy(group.members.get(request.member_id)) if request.member_id in group.members else None, None
                if holder.member_id == request.member_id:
                    return self._copy(holder), None
                if holder.member_epoch != LEAVE_STATIC_EPOCH:
                    raise _Refused(ErrorCode.UNRELEASED_INSTANCE_ID, f"Static member {request.member_id} with instance id {request.instance_id} cannot join the group because the instance id is owned by {holder.member_id} member.")
                new = ConsumerMember(request.member_id or _new_member_id(), holder.metadata, holder.current)
                return new, holder
            if holder is None:
                raise _Refused(ErrorCode.UNKNOWN_MEMBER_ID, f"Instance id {request.instance_id} is unknown.")
            if holder.member_id != request.member_id:
                raise _Refused(ErrorCode.FENCED_INSTANCE_ID, f"Static member {request.member_id} with instance id {request.instance_id} was fenced by member {holder.member_id}.")
            return self._copy(holder), None
        member = group.members.get(request.member_id)
        if member is None and request.member_epoch != JOIN_EPOCH:
            raise _Refused(ErrorCode.UNKNOWN_MEMBER_ID, f"Member {request.member_id} is not a member of group {group.group_id}.")
        return self._copy(member), None

    @staticmethod
    def _copy(member: ConsumerMember | None) -> ConsumerMember | None:
        return None if member is None else replace(member)

    @staticmethod
    def _check_epoch(member: ConsumerMember, request: HeartbeatRequest) -> None:
        """GroupMetadataManager.throwIfMemberEpochIsInvalid: an epoch ahead is fenced; one
        behind only if it is the previous epoch and the member owns nothing it should not
        (its epoch bump was lost on the way)."""
        received = request.member_epoch
        if received == JOIN_EPOCH:
            return
        if received > member.member_epoch:
            raise _Refused(ErrorCode.FENCED_MEMBER_EPOCH, f"The consumer group member has a greater member epoch ({received}) than the one known by the group coordinator ({member.member_epoch}). The member must abandon all its partitions and rejoin.")
        if received < member.member_epoch:
            if received == member.current.previous_member_epoch and request.owned is not None and is_subset(request.owned, member.current.assigned):
                return
            raise _Refused(ErrorCode.FENCED_MEMBER_EPOCH, f"The consumer group member has a smaller member epoch ({received}) than the one known by the group coordinator ({member.member_epoch}). The member must abandon all its partitions and rejoin.")

    def _leave(self, request: HeartbeatRequest) -> HeartbeatResult:
        """A member leaving (-1), or a static member leaving for now (-2): the latter keeps
        its assignment for its instance id until its session times out."""
        group = self.groups.get(request.group_id)
        if group is None:
            raise _Refused(ErrorCode.GROUP_ID_NOT_FOUND, f"Group {request.group_id} not found.")
        member: ConsumerMember | None
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
        if request.member_epoch == LEAVE_STATIC_EPOCH:
            # consumerGroupStaticMemberGroupLeave: what it was revoking is free for others, and
            # what it keeps for its instance counts as assigned at epoch 0 (KIP-1251).
            current = replace(member.current, member_epoch=LEAVE_STATIC_EPOCH, previous_member_epoch=member.member_epoch, pending_revocation={},
                              assignment_epochs=dict.fromkeys(((t, p) for t, ps in member.current.assigned.items() for p in ps), 0))
            now = self.wall_clock_ms()
            value = records.current_assignment_value(current, self._assigned_order(group, member, current.assigned))
            self.log.append(group.group_id, [(records.member_key(records.CURRENT_MEMBER_ASSIGNMENT, group.group_id, member.member_id), value)], now)
            group.set_current(member, current)
            self.timers.cancel(member.rebalance_timer)
            group.update_state()
        else:
            self.remove_member(group, member)
        return HeartbeatResult(ErrorCode.NONE, member_id=request.member_id, member_epoch=request.member_epoch)

    def remove_member(self, group: ConsumerGroup, member: ConsumerMember) -> None:
        self.remove_members(group, [member])

    def remove_members(self, group: ConsumerGroup, members: list[ConsumerMember]) -> None:
        """Tombstones for the members' records and one group epoch bump, in one batch
        (GroupMetadataManager.consumerGroupFenceMembers); the others are reassigned their
        partitions on their next heartbeats. When only classic members would remain, the
        group may become a classic group instead (the online downgrade). Raises KafkaError
        from the log."""
        if self.downgrade is not None and self.downgrade(group, {m.member_id for m in members}, True):
            return
        now = self.wall_clock_ms()
        out = [tombstone for member in members for tombstone in self._member_tombstones(group.group_id, member.member_id)]
        # GroupMetadataManager.maybeDeleteResolvedRegularExpressions: a regex only they used goes too.
        leaving = {m.member_id for m in members}
        used = {m.metadata.subscribed_topic_regex for m_id, m in group.members.items() if m_id not in leaving}
        unused = [regex for regex in group.resolved_regexes if regex not in used]
        out += [(records.member_key(records.REGULAR_EXPRESSION, group.group_id, regex), None) for regex in unused]
        # The hash of what the members staying subscribe to (computeSubscribedTopicNamesWithoutDeletedMembers).
        staying = self._subscription_metadata(replace(group, members={m_id: m for m_id, m in group.members.items() if m_id not in leaving},
                                                      resolved_regexes={r: t for r, t in group.resolved_regexes.items() if r not in unused}))
        staying_hash = _metadata_hash(staying, self.topic_hash)
        out.append((records.group_key(records.GROUP_METADATA, group.group_id), records.group_metadata_value(group.group_epoch + 1, staying_hash)))
        emptied = len({m.member_id for m in members}) == len(group.members)
        if emptied:
            # Nobody left to assign to: the empty target is at the new epoch, and the next
            # member to join is assigned at once (consumerGroupFenceMembers writes timestamp 0).
            out.append((records.group_key(records.TARGET_ASSIGNMENT_METADATA, group.group_id), records.target_assignment_metadata_value(group.group_epoch + 1, 0)))
        self.log.append(group.group_id, out, now)
        for member in members:
            self._cancel_timers(member)
            group.remove_member(member.member_id)
        for regex in unused:
            del group.resolved_regexes[regex]
        group.group_epoch += 1
        group.metadata_hash = staying_hash
        if emptied:
            group.assignment_epoch, group.assignment_timestamp_ms = group.group_epoch, 0
        group.subscription_metadata = self._subscription_metadata(group)
        group.update_state()

    @staticmethod
    def _member_tombstones(group_id: str, member_id: str) -> list[KeyValue]:
        return [
            (records.member_key(records.CURRENT_MEMBER_ASSIGNMENT, group_id, member_id), None),
            (records.member_key(records.TARGET_ASSIGNMENT_MEMBER, group_id, member_id), None),
            (records.member_key(records.MEMBER_METADATA, group_id, member_id), None),
        ]

    # --- classic members (KIP-848's online upgrade) ---------------------------------

    def classic_join(self, group: ConsumerGroup, request: JoinRequest) -> JoinResult:
        """GroupMetadataManager.classicGroupJoinToConsumerGroup: a JoinGroup into a live
        consumer group is answered at once, never parked. The member's subscription is read
        from its first protocol's metadata; it is reconciled as a heartbeat would be, with
        the partitions its subscription says it owns; its generation is its member epoch,
        and it is never the leader (the coordinator assigns; its SyncGroup collects it). With
        group.consumer.migration.policy=disabled no classic member may join a consumer group,
        checked before anything else (throwIfClassicMemberCannotJoinConsumerGroup); then, in
        Kafka's order, the group's size, the protocols, a member id the request must know, the
        member (static or dynamic) and last the subscription's bytes. A refusal names no member
        (GroupCoordinatorService.joinGroup answers a thrown error with a bare response); only
        MEMBER_ID_REQUIRED carries the id made for the member."""
        if self.config.migration_policy == "disabled":
            return JoinResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, "")
        member_id = request.member_id or _new_member_id()
        names = [name for name, _ in request.protocols]
        # throwIfConsumerGroupIsFull: a static member's instance always has a place.
        if request.group_instance_id not in group.static_members and len(group.members) >= self.config.max_size and member_id not in group.members:
            return JoinResult(ErrorCode.GROUP_MAX_SIZE_REACHED, "")
        if not self._supports_classic_protocols(group, request.protocol_type, names):
            return JoinResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, "")
        if request.require_known_member_id and not request.member_id and request.group_instance_id is None:
            return JoinResult(ErrorCode.MEMBER_ID_REQUIRED, member_id)
        replaced: ConsumerMember | None = None
        member = self._copy(group.members.get(member_id))
        if request.group_instance_id is not None:
            # getOrMaybeSubscribeStaticConsumerGroupMember: a static member joining without an
            # id takes over its instance's member; one with an id must be that member.
            holder_id = group.static_members.get(request.group_instance_id)
            holder = None if holder_id is None else group.members.get(holder_id)
            if holder is not None and not request.member_id:
                member, replaced = ConsumerMember(member_id, holder.metadata, holder.current), holder
            elif request.member_id and holder is None:
                return JoinResult(ErrorCode.UNKNOWN_MEMBER_ID, "")
            elif holder is not None and holder.member_id != member_id:
                return JoinResult(ErrorCode.FENCED_INSTANCE_ID, "")
        try:
            subscription = embedded.parse_subscription(request.protocols[0][1])
        except embedded.MalformedProtocol:
            return JoinResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, "")
        if member is None:
            member = ConsumerMember(member_id, MemberMetadata(None, None, "", "", (), None, -1, None))
        metadata = MemberMetadata(
            instance_id=request.group_instance_id,
            rack_id=subscription.rack_id if subscription.rack_id is not None else member.metadata.rack_id,
            client_id=request.client_id,
            client_host=request.client_host,
            subscribed_topic_names=subscription.topics,
            subscribed_topic_regex=None,
            rebalance_timeout_ms=request.rebalance_timeout_ms,
            server_assignor=None,
            classic=ClassicMemberMetadata(request.session_timeout_ms, request.protocols),
        )
        try:
            staged, _, updated = self._apply(group, member, replaced, metadata, self._topic_ids(subscription.owned_partitions), False, [], self.wall_clock_ms())
        except KafkaError as exc:
            return JoinResult(store_error(exc.code), "")
        result = JoinResult(ErrorCode.NONE, member_id, updated.member_epoch, CONSUMER_PROTOCOL_TYPE, names[0], "")
        if replaced is not None and not replaced.is_classic and self.downgrade is not None:
            # The last consumer-protocol member replaced by a classic one: the group goes back
            # to the classic protocol, stable, without a rebalance (step 4 of Kafka's join).
            try:
                if self.downgrade(staged, set(), False):
                    return result
            except KafkaError as exc:
                log.warning("could not downgrade group %s after its static member was replaced: %s", group.group_id, exc)
        self._arm_session(staged, member)
        # It must now collect its assignment with SyncGroup within its rebalance timeout.
        self._arm_classic_deadline(staged, member, "sync timeout")
        return result

    def classic_sync(
        self, group: ConsumerGroup, generation_id: int, member_id: str, instance_id: str | None, protocol_type: str | None, protocol_name: str | None
    ) -> SyncResult:
        """GroupMetadataManager.classicGroupSyncToConsumerGroup: the member's assigned
        partitions in the embedded protocol, at the version it subscribed with."""
        try:
            member = self._classic_member(group, member_id, instance_id)
        except _Refused as refused:
            return SyncResult(refused.error)
        classic = member.metadata.classic
        assert classic is not None
        if generation_id != member.member_epoch:
            return SyncResult(ErrorCode.ILLEGAL_GENERATION)
        if (protocol_type is not None and protocol_type != CONSUMER_PROTOCOL_TYPE) or (protocol_name is not None and protocol_name != classic.supported_protocols[0][0]):
            return SyncResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
        if group.assignment_epoch > member.member_epoch and member.state is not MemberState.UNREVOKED_PARTITIONS:
            # A new target was computed since its JoinGroup: it rejoins first (throwIfRebalanceInProgress).
            return SyncResult(ErrorCode.REBALANCE_IN_PROGRESS)
        self.timers.cancel(member.rebalance_timer)
        member.rebalance_timer = None
        self._arm_session(group, member)
        version = _INT16.unpack_from(classic.supported_protocols[0][1])[0] if len(classic.supported_protocols[0][1]) >= 2 else 0
        assignment = embedded.serialize_assignment(self._topic_names(member.current.assigned), version)
        return SyncResult(ErrorCode.NONE, assignment, protocol_type, protocol_name)

    def classic_heartbeat(self, group: ConsumerGroup, generation_id: int, member_id: str, instance_id: str | None) -> ErrorCode:
        """GroupMetadataManager.classicGroupHeartbeatToConsumerGroup: REBALANCE_IN_PROGRESS
        when a target was computed past the member's epoch, when it must revoke partitions, or when
        the partitions it waits for are free; it then has its rebalance timeout to rejoin."""
        try:
            member = self._classic_member(group, member_id, instance_id)
        except _Refused as refused:
            return refused.error
        if generation_id != member.member_epoch:
            return ErrorCode.ILLEGAL_GENERATION
        self._arm_session(group, member)
        if (
            member.member_epoch < group.assignment_epoch
            or member.state is MemberState.UNREVOKED_PARTITIONS
            or (member.state is MemberState.UNRELEASED_PARTITIONS and not group.waiting_on_unreleased_partition(member))
        ):
            if member.rebalance_timer is None:
                self._arm_classic_deadline(group, member, "join timeout")
            return ErrorCode.REBALANCE_IN_PROGRESS
        return ErrorCode.NONE

    def classic_leave(self, group: ConsumerGroup, leaving: list[tuple[str, str | None]]) -> tuple[ErrorCode, list[ErrorCode]]:
        """LeaveGroup into a consumer group (GroupMetadataManager.classicGroupLeaveToConsumerGroup):
        each named member leaves whatever its protocol, a consumer-protocol member too (an
        administrator may name a static member by instance id alone), all in one fence."""
        errors = []
        valid: list[ConsumerMember] = []
        for member_id, instance_id in leaving:
            try:
                if instance_id is not None and not member_id:
                    holder_id = group.static_members.get(instance_id)
                    member = None if holder_id is None else group.members.get(holder_id)
                    if member is None:
                        raise _Refused(ErrorCode.UNKNOWN_MEMBER_ID, f"Instance id {instance_id} is unknown.")
                else:
                    member = self._known_member(group, member_id, instance_id)
            except _Refused as refused:
                errors.append(refused.error)
                continue
            errors.append(ErrorCode.NONE)
            if member not in valid:
                valid.append(member)
        if valid:
            try:
                self.remove_members(group, valid)
            except KafkaError as exc:
                return store_error(exc.code), []
        return ErrorCode.NONE, errors

    def _classic_member(self, group: ConsumerGroup, member_id: str, instance_id: str | None) -> ConsumerMember:
        """GroupMetadataManager.validateConsumerGroupMember, then throwIfMemberDoesNotUseClassicProtocol."""
        member = self._known_member(group, member_id, instance_id)
        if not member.is_classic:
            raise _Refused(ErrorCode.UNKNOWN_MEMBER_ID, f"Member {member.member_id} does not use the classic protocol.")
        return member

    @staticmethod
    def _known_member(group: ConsumerGroup, member_id: str, instance_id: str | None) -> ConsumerMember:
        """GroupMetadataManager.validateConsumerGroupMember: the member by id, or the static
        member of the instance id, which must be the one named."""
        if instance_id is None:
            member = group.members.get(member_id)
            if member is None:
                raise _Refused(ErrorCode.UNKNOWN_MEMBER_ID, f"Member {member_id} is not a member of group {group.group_id}.")
        else:
            holder_id = group.static_members.get(instance_id)
            member = None if holder_id is None else group.members.get(holder_id)
            if member is None:
                raise _Refused(ErrorCode.UNKNOWN_MEMBER_ID, f"Instance id {instance_id} is unknown.")
            if member.member_id != member_id:
                raise _Refused(ErrorCode.FENCED_INSTANCE_ID, f"Static member {member_id} with instance id {instance_id} was fenced by member {member.member_id}.")
        return member

    @staticmethod
    def _supports_classic_protocols(group: ConsumerGroup, protocol_type: str, names: list[str]) -> bool:
        """ConsumerGroup.supportsClassicProtocols: protocol type "consumer", and a protocol
        every classic member already in the group supports."""
        if protocol_type != CONSUMER_PROTOCOL_TYPE or not names:
            return False
        classic = [m.metadata.classic for m in group.members.values() if m.metadata.classic is not None]
        return any(all(any(name == theirs for theirs, _ in c.supported_protocols) for c in classic) for name in names)

    def _arm_classic_deadline(self, group: ConsumerGroup, member: ConsumerMember, why: str) -> None:
        """A classic member's join or sync timeout (its rebalance timeout), after which it is fenced."""
        self.timers.cancel(member.rebalance_timer)
        member.rebalance_timer = self.timers.after(max(member.metadata.rebalance_timeout_ms, 0), self._classic_deadline_passed, group.group_id, member.member_id, why)

    def _classic_deadline_passed(self, group_id: str, member_id: str, why: str) -> None:
        group = self.groups.get(group_id)
        member = None if group is None else group.members.get(member_id)
        if member is not None:
            member.rebalance_timer = None
            self._fence(group_id, member_id, why)

    def _topic_ids(self, partitions: embedded.TopicPartitions) -> Assignment:
        """Names to topic ids, topics that no longer exist left out."""
        result: Assignment = {}
        for name, parts in partitions.items():
            info = self.storage.topic(name)
            if info is not None and parts:
                result[info.topic_id] = parts
        return result

    def _topic_names(self, assignment: Assignment) -> embedded.TopicPartitions:
        result: embedded.TopicPartitions = {}
        for topic_id, parts in assignment.items():
            info = self.storage.topic_by_id(topic_id)
            if info is not None and parts:
                result[info.name] = parts
        return result

    def classic_member_assignment(self, group: ConsumerGroup, member: ConsumerMember, protocol_name: str) -> bytes:
        """The member's target assignment in the embedded protocol, at the version of its
        metadata for `protocol_name` (what a downgraded classic group stores for it)."""
        classic = member.metadata.classic
        metadata = next((m for name, m in classic.supported_protocols if name == protocol_name), b"") if classic is not None else b""
        version = _INT16.unpack_from(metadata)[0] if len(metadata) >= 2 else 0
        return embedded.serialize_assignment(self._topic_names(group.target.get(member.member_id, {})), version)

    def from_classic(self, group_id: str, generation_id: int, members: list[tuple[ConsumerMember, bytes]]) -> tuple[ConsumerGroup, list[KeyValue]]:
        """ConsumerGroup.fromClassicGroup and createConsumerGroupRecords: each classic member,
        given with its last assignment's bytes, becomes a stable member at the generation,
        owning (and targeted with) that assignment. Raises MalformedProtocol."""
        group = ConsumerGroup(group_id, group_epoch=generation_id, assignment_epoch=generation_id)
        for member, assignment_bytes in members:
            assigned = self._topic_ids(embedded.parse_assignment(assignment_bytes))
            member.current = CurrentAssignment(generation_id, generation_id, MemberState.STABLE, assigned)
            group.put_member(member)
            group.target[member.member_id] = assigned
        group.subscription_metadata = self._subscription_metadata(group)
        group.metadata_hash = _metadata_hash(group.subscription_metadata, self.topic_hash)
        group.update_state()
        out: list[KeyValue] = [(records.member_key(records.MEMBER_METADATA, group_id, m.member_id), records.member_metadata_value(m.metadata)) for m in group.members.values()]
        out.append((records.group_key(records.GROUP_METADATA, group_id), records.group_metadata_value(generation_id, group.metadata_hash)))
        out += [(records.member_key(records.TARGET_ASSIGNMENT_MEMBER, group_id, m_id), records.target_assignment_member_value(a)) for m_id, a in group.target.items()]
        out.append((records.group_key(records.TARGET_ASSIGNMENT_METADATA, group_id), records.target_assignment_metadata_value(generation_id, self.wall_clock_ms())))
        out += [(records.member_key(records.CURRENT_MEMBER_ASSIGNMENT, group_id, m.member_id), records.current_assignment_value(m.current, self._assigned_order(group, m, m.current.assigned)))
                for m in group.members.values()]
        return group, out

    def tombstones(self, group: ConsumerGroup) -> list[KeyValue]:
        """Every record of the group, members' and group's (ConsumerGroup.createGroupTombstoneRecords)."""
        by_member = [self._member_tombstones(group.group_id, member_id) for member_id in group.members]
        # Kafka's order: every current assignment, every target assignment, the target
        # assignment metadata, every subscription, then the rest of `delete`.
        current, target, subscriptions = ([tombstones[i] for tombstones in by_member] for i in range(3))
        deleted = self.delete(group)
        return [*current, *target, deleted[0], *subscriptions, *deleted[1:]]

    # --- subscriptions and the target assignment ---------------------------------

    def _regex_refresh_due(self, before: ConsumerGroup, staged: ConsumerGroup, now_ms: int, new_regex: bool) -> bool:
        """GroupMetadataManager.maybeUpdateRegularExpressions: whether this heartbeat has the
        group's regexes resolved (after its answer). Never within REGEX_BATCH_REFRESH_MIN_INTERVAL_MS
        of the last resolution, not even for a regex new to the group: that one waits for the
        first heartbeat after it. Otherwise when a regex is new to the group, the group uses
        another number of regexes than it resolved, topics were created since the last
        resolution (`Storage.topics_version`), or the last is older than
        group.consumer.regex.refresh.interval.ms (so a change of ACLs is seen too)."""
        wanted = {m.metadata.subscribed_topic_regex for m in staged.members.values()} - {None}
        if not wanted:
            return False
        last_ms = before.regex_resolved_ms if before.resolved_regexes else None
        if last_ms is None:
            return True
        if now_ms <= last_ms + REGEX_BATCH_REFRESH_MIN_INTERVAL_MS:
            return False
        return (new_regex or len(wanted) != len(before.resolved_regexes) or before.regex_topics_version < self.storage.topics_version
                or now_ms > last_ms + self.config.regex_refresh_interval_ms)

    @staticmethod
    def _drop_unused_regexes(group: ConsumerGroup) -> list[KeyValue]:
        """The tombstones of the resolved regexes no member uses any more, dropped from `group`."""
        used = {m.metadata.subscribed_topic_regex for m in group.members.values()}
        out: list[KeyValue] = []
        for regex in [regex for regex in group.resolved_regexes if regex not in used]:
            del group.resolved_regexes[regex]
            out.append((records.member_key(records.REGULAR_EXPRESSION, group.group_id, regex), None))
        return out

    def _resolve_regexes(self, group: ConsumerGroup, now_ms: int, may_describe: Callable[[str], bool] | None = None) -> None:
        """Resolve every regex the members use against today's topics with RE2 (Kafka
        resolves them with RE2/J, whose syntax Python's `re` does not share), stored in a
        batch of its own after the heartbeat that asked for it, as Kafka's executor hands its
        result to GroupMetadataManager.handleRegularExpressionsResult: every regex's record is
        rewritten, and the group epoch bumped when a regex's topics or the subscribed topics
        changed, so the target follows at the next heartbeat. With an authorizer only the
        topics the heartbeating member may Describe are matched
        (TopicRegexResolver.filterTopicDescribeAuthorizedTopics): otherwise its assignment
        would name topics it may not know of."""
        version = self.storage.topics_version
        wanted = sorted({regex for m in group.members.values() if (regex := m.metadata.subscribed_topic_regex) is not None})
        # Every topic, internal ones too: Kafka resolves against its whole metadata image, so a
        # regex naming __consumer_offsets is assigned it (franz-go's Test848RegexBrokerResolves).
        names = sorted(info.name for info in self.storage.topics() if may_describe is None or may_describe(info.name))
        resolved: dict[str, tuple[str, ...]] = {}
        for regex in wanted:
            pattern = compile_re2j(regex)
            resolved[regex] = tuple(name for name in names if pattern.fullmatch(name))
        out: list[KeyValue] = [(records.member_key(records.REGULAR_EXPRESSION, group.group_id, regex), records.regex_value(list(topics), group.group_epoch, now_ms))
                               for regex, topics in resolved.items()]
        topics_changed = any(group.resolved_regexes.get(regex, ()) != topics for regex, topics in resolved.items())
        metadata_now = self._subscription_metadata(replace(group, resolved_regexes={**group.resolved_regexes, **resolved}))
        hash_now = _metadata_hash(metadata_now, self.topic_hash)
        bump = topics_changed or hash_now != group.metadata_hash
        if bump:
            out.append((records.group_key(records.GROUP_METADATA, group.group_id), records.group_metadata_value(group.group_epoch + 1, hash_now)))
        try:
            self.log.append(group.group_id, out, now_ms)
        except KafkaError as exc:
            log.warning("could not store the resolved regular expressions of consumer group %s: %s", group.group_id, exc)
            return
        group.resolved_regexes.update(resolved)
        group.regex_topics_version = version
        group.regex_resolved_ms = now_ms
        if bump:
            group.group_epoch += 1
            group.subscription_metadata = metadata_now
            group.metadata_hash = hash_now
            group.metadata_expired = False
            group.update_state()

    @staticmethod
    def _assigned_order(group: ConsumerGroup, member: ConsumerMember, assigned: Assignment) -> orders.Listing:
        """The member's assigned map as Kafka iterates it (and writes its record off it): as
        reconciliation or the last replay built it, topics unknown to that by subscription."""
        topics = group.subscription_metadata
        first = orders.subscription_order(member.metadata.subscribed_topic_names, lambda name: topics[name][0] if name in topics else None)
        return orders.replayed_listing(assigned, first, member.listing)

    def _member_topics(self, group: ConsumerGroup, member: ConsumerMember) -> set[str]:
        topics = set(member.metadata.subscribed_topic_names)
        regex = member.metadata.subscribed_topic_regex
        if regex is not None:
            topics.update(group.resolved_regexes.get(regex, ()))
        return topics

    def _subscribed_topic_changed(self, group: ConsumerGroup) -> bool:
        """A topic the group subscribes to was created, deleted or resized since its metadata was
        last taken (Kafka's onMetadataUpdate requests a refresh of the groups subscribed to it)."""
        now = self._subscription_metadata(group)
        return any(now.get(name) != group.subscription_metadata.get(name) for name in self.subscribed_topics(group))

    def _subscription_metadata(self, group: ConsumerGroup) -> dict[str, tuple[bytes, int]]:
        """name -> (topic id, partitions) of every existing topic a member subscribes to."""
        result = {}
        for member in group.members.values():
            for name in self._member_topics(group, member):
                info = self.storage.topic(name)
                if info is not None:
                    result[name] = (info.topic_id, info.partitions)
        return result

    @staticmethod
    def _subscription_type(group: ConsumerGroup) -> assignors.SubscriptionType:
        """ConsumerGroup.subscriptionType, from what the members subscribe by name and regex,
        not from the topics that resolves to: homogeneous when nobody uses a regex and every
        name is named by every member (a topic not created yet counts), or when every member
        uses the same regex and nobody names a topic (each resolved topic is then matched by
        that one regex only). Anything else, such as a member naming a topic the others do not,
        or one naming the topic another's regex matches, is heterogeneous."""
        members = group.members.values()
        regexes = Counter(m.metadata.subscribed_topic_regex for m in members if m.metadata.subscribed_topic_regex is not None)
        named = Counter(name for m in members for name in set(m.metadata.subscribed_topic_names))
        if regexes:
            homogeneous = list(regexes.values()) == [len(members)] and not named
        else:
            homogeneous = all(count == len(members) for count in named.values())
        return assignors.SubscriptionType.HOMOGENEOUS if homogeneous else assignors.SubscriptionType.HETEROGENEOUS

    def _compute_target(self, group: ConsumerGroup, now_ms: int, member_order: list[str]) -> list[KeyValue]:
        """The target assignment at the group epoch, stored member by member where it
        changed, then the assignment epoch (TargetAssignmentBuilder). `member_order` is the
        order the members reach the assignor in, which breaks its ties of hash buckets."""
        name = group.preferred_assignor(self.config.assignors[0], self.config.assignors)
        counts = {topic_id: partitions for topic_id, partitions in group.subscription_metadata.values()}
        subscriptions = {
            member_id: frozenset(group.subscription_metadata[t][0] for t in self._member_topics(group, group.members[member_id]) if t in group.subscription_metadata)
            for member_id in member_order
        }
        instance_ids = {member_id: member.metadata.instance_id for member_id, member in group.members.items()}
        names = [name for member_id in member_order for name in orders.names_order(group.members[member_id].metadata.subscribed_topic_names)]
        topic_order = list(dict.fromkeys(group.subscription_metadata[name][0] for name in names if name in group.subscription_metadata))
        spec = assignors.AssignmentSpec(subscriptions, counts, group.target, instance_ids, self._subscription_type(group), topic_order)
        target = assignors.assign(name, spec)
        out: list[KeyValue] = []
        for member_id, assignment in target.items():
            if group.target.get(member_id) != assignment:
                out.append((records.member_key(records.TARGET_ASSIGNMENT_MEMBER, group.group_id, member_id), records.target_assignment_member_value(assignment)))
        out.append((records.group_key(records.TARGET_ASSIGNMENT_METADATA, group.group_id), records.target_assignment_metadata_value(group.group_epoch, now_ms)))
        group.target = dict(target)
        group.assignment_epoch = group.group_epoch
        group.assignment_timestamp_ms = now_ms
        return out

    def _may_assign(self, group: ConsumerGroup, now_ms: int) -> bool:
        """GroupMetadataManager.canComputeNextTargetAssignment: at once for a group never
        assigned (or emptied), else once the assignment interval has passed since the last."""
        interval_ms = int(self.group_config(group.group_id, "consumer.assignment.interval.ms"))
        return group.assignment_timestamp_ms == 0 or interval_ms == 0 or now_ms >= group.assignment_timestamp_ms + interval_ms

    # --- timers ------------------------------------------------------------------

    def _arm_session(self, group: ConsumerGroup, member: ConsumerMember) -> None:
        """A classic member keeps the session timeout of its JoinGroup."""
        self.timers.cancel(member.session_timer)
        classic = member.metadata.classic
        timeout = classic.session_timeout_ms if classic is not None else self.group_config(group.group_id, "consumer.session.timeout.ms")
        member.session_timer = self.timers.after(timeout, self._session_expired, group.group_id, member.member_id)

    def _arm_rebalance(self, group: ConsumerGroup, member: ConsumerMember, reconciled: bool = False) -> None:
        """A member asked to revoke gets its rebalance timeout to do it, at this epoch, counted
        again whenever reconciliation changes what it holds while it still revokes
        (`reconciled`: GroupMetadataManager.maybeReconcile reschedules it then)."""
        if member.state is not MemberState.UNREVOKED_PARTITIONS:
            self.timers.cancel(member.rebalance_timer)
            member.rebalance_timer = None
        elif member.rebalance_timer is None or reconciled:
            self.timers.cancel(member.rebalance_timer)
            timeout = max(member.metadata.rebalance_timeout_ms, 0)
            member.rebalance_timer = self.timers.after(timeout, self._rebalance_expired, group.group_id, member.member_id, member.member_epoch)

    def _cancel_timers(self, member: ConsumerMember) -> None:
        self.timers.cancel(member.session_timer)
        self.timers.cancel(member.rebalance_timer)
        member.session_timer = member.rebalance_timer = None

    def _session_expired(self, group_id: str, member_id: str) -> None:
        self._fence(group_id, member_id, "session timeout")

    def _rebalance_expired(self, group_id: str, member_id: str, epoch: int) -> None:
        group = self.groups.get(group_id)
        member = None if group is None else group.members.get(member_id)
        if member is not None and member.state is MemberState.UNREVOKED_PARTITIONS and member.member_epoch == epoch:
            self._fence(group_id, member_id, "rebalance timeout")

    def _fence(self, group_id: str, member_id: str, why: str) -> None:
        group = self.groups.get(group_id)
        member = None if group is None else group.members.get(member_id)
        if group is None or member is None:
            return
        try:
            self.remove_member(group, member)
        except KafkaError as exc:
            log.warning("could not remove member %s of group %s after its %s: %s", member_id, group_id, why, exc)
            self._arm_session(group, member)
        else:
            log.info("member %s of consumer group %s removed after its %s", member_id, group_id, why)

    # --- other APIs ----------------------------------------------------------------

    def validate_member_epoch(
        self, group: ConsumerGroup, member_id: str | None, member_epoch: int, fetch: bool = False, commit_version: int | None = None,
        committed: Iterable[tuple[str, int]] = (), instance_id: str | None = None,
    ) -> ErrorCode:
        """ConsumerGroup.validateOffsetCommit / validateOffsetFetch: an admin may commit (any
        negative epoch) only into an empty group, and fetch (a null member id and a negative
        epoch) from any; a fetch naming a member, even "" or into an empty group, must name a
        known one at its epoch, as Kafka 4.4 answers (checked against it); a transactional
        commit (`commit_version` None) without member, epoch or instance id passes, as one
        from a producer older than KIP-447 does; otherwise a member must be known, commit
        with OffsetCommit v9+ when it is not transactional, and fetch at its current epoch. A commit at its current epoch passes; at a
        newer one it is STALE_MEMBER_EPOCH; at an older one (its heartbeat's answer not yet
        seen, KIP-1251) each `committed` (topic, partition) must be one the member holds,
        assigned at that epoch or before, or the whole commit is STALE_MEMBER_EPOCH. A classic
        member is answered ILLEGAL_GENERATION where the others get STALE_MEMBER_EPOCH."""
        if member_epoch < 0 and (member_id is None if fetch else not group.members):
            return ErrorCode.NONE
        if not fetch and commit_version is None and member_epoch == -1 and not member_id and instance_id is None:
            return ErrorCode.NONE
        member = group.members.get(member_id or "")
        if member is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if commit_version is not None and commit_version < 9 and not member.is_classic:
            return ErrorCode.UNSUPPORTED_VERSION
        stale = ErrorCode.ILLEGAL_GENERATION if member.is_classic else ErrorCode.STALE_MEMBER_EPOCH
        if member_epoch == member.member_epoch:
            return ErrorCode.NONE
        if fetch or member_epoch > member.member_epoch:
            return stale
        for topic, partition in committed:
            info = self.storage.topic(topic)
            assigned_at = None if info is None else member.current.assignment_epoch(info.topic_id, partition)
            if assigned_at is None or member_epoch < assigned_at:
                return stale
        return ErrorCode.NONE

    def subscribed_topics(self, group: ConsumerGroup) -> set[str]:
        topics: set[str] = set()
        for member in group.members.values():
            topics |= self._member_topics(group, member)
        return topics

    def delete(self, group: ConsumerGroup) -> list[KeyValue]:
        """The tombstones that delete an empty group, in ConsumerGroup.createGroupTombstoneRecords'
        order: target assignment, regexes, the (Kafka 4.0) subscription metadata, group epoch."""
        out: list[KeyValue] = [(records.group_key(records.TARGET_ASSIGNMENT_METADATA, group.group_id), None)]
        out += [(records.member_key(records.REGULAR_EXPRESSION, group.group_id, regex), None) for regex in group.resolved_regexes]
        out.append((records.group_key(records.SUBSCRIPTION_METADATA, group.group_id), None))
        out.append((records.group_key(records.GROUP_METADATA, group.group_id), None))
        return out

    def forget(self, group: ConsumerGroup) -> None:
        for member in group.members.values():
            self._cancel_timers(member)
        group.state = ConsumerGroupState.DEAD
        self.groups.pop(group.group_id, None)
