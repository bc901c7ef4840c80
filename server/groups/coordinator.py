"""The group coordinator: one facade over classic group membership and committed offsets.

As Kafka's GroupCoordinatorShard delegates to GroupMetadataManager and
OffsetMetadataManager, this class routes each request to `membership` or `offsets` and
does itself only what spans both: replaying `__consumer_offsets` at load (each record to
the manager that owns its type), deleting a group with its offsets, and the periodic
sweep that expires offsets and then the groups they leave empty. Both managers share
the coordinator runtime's log and timers.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Callable

from ottla.server.coordinator import Clock, CoordinatorLog, KeyValue, Timers, now_epoch_ms, store_error
from ottla.server.groups.config import GroupConfig
from ottla.server.groups.group_configs import GroupConfigs
from ottla.server.groups.group import CONSUMER_PROTOCOL_TYPE, ClassicGroup, JoinResponder, JoinResult, Member, SyncResponder, SyncResult
from ottla.server.groups.membership import GroupMembershipManager, JoinRequest
from ottla.server.groups.offsets import CommitEntry, OffsetManager
from ottla.server.groups.records import GroupKey, OffsetAndMetadata, OffsetKey, group_key, group_value, parse_key
from ottla.server.groups.share_records import GROUP_METADATA as SHARE_GROUP_METADATA
from ottla.server.groups.share_records import parse_key as parse_share_key
from ottla.server.groups.state import GroupState
from ottla.server.java_hashing import PartitionRacks, kafka_topic_hash_placed
from ottla.storage import TopicInfo
from ottla.wire.errors import ErrorCode, KafkaError

# KIP-848 consumer groups and streams groups are imported on first use (a request of their
# protocol, or a record of theirs at load): a broker of classic groups only never loads them.
if TYPE_CHECKING:
    from ottla.server.groups.consumer import ConsumerGroup, ConsumerGroupConfig, ConsumerGroupManager, HeartbeatRequest, HeartbeatResult
    from ottla.server.groups.consumer.manager import Upgrade
    from ottla.server.groups.streams import StreamsGroup, StreamsGroupManager
    from ottla.server.groups.streams import HeartbeatRequest as StreamsHeartbeatRequest
    from ottla.server.groups.streams import HeartbeatResult as StreamsHeartbeatResult

__all__ = ["CommitEntry", "GroupConfig", "GroupCoordinator", "JoinRequest"]

log = logging.getLogger("ottla.groups")


class GroupCoordinator:
    def __init__(
        self,
        log_: CoordinatorLog,
        config: GroupConfig,
        clock: Clock,
        wall_clock_ms: Callable[[], int] = now_epoch_ms,
        consumer_config: ConsumerGroupConfig | Callable[[], ConsumerGroupConfig] | None = None,
        group_configs: GroupConfigs | None = None,
    ) -> None:
        """`consumer_config` may be a function that makes it, called when the first consumer
        group is (so that the broker need not import KIP-848 to say how to configure it)."""
        self.log = log_
        self._consumer_config = consumer_config
        # Per-group overrides (the GROUP config resource); without any, the broker's settings.
        self.configs = group_configs or GroupConfigs(None, self._make_consumer_config().broker_value)
        self.config = config
        self.timers = Timers(clock)
        self.wall_clock_ms = wall_clock_ms
        self.membership = GroupMembershipManager(log_, config, self.timers, wall_clock_ms)
        self.offsets = OffsetManager(log_, config, self.membership, wall_clock_ms)
        self._consumer: ConsumerGroupManager | None = None
        self._streams: StreamsGroupManager | None = None
        self._loaded = False
        # Per `__consumer_offsets` partition, the most groups (of every type) it held at once:
        # Kafka's TimelineHashMap of a shard's groups never shrinks, so ListGroups' order
        # follows that peak. `_replayed`: the groups a load's replay has made so far, and
        # `_replayed_shards` each group id's partition, hashed once per load, not per record.
        self.table_peaks: dict[int, int] = {}
        self._replayed: dict[int, set[str]] = {}
        self._replayed_shards: dict[str, int] = {}
        # The share group records a load met, in log order, until the share coordinator
        # takes them (`take_share_records`): it owns them, this only counts their groups.
        self.share_records: list[KeyValue] = []
        # In cluster mode (set by the broker), each partition's replicas' racks, which the
        # groups' metadata hash covers; None on a single node, whose one replica is on broker.rack.
        self.partition_racks: PartitionRacks | None = None

    def _make_consumer_config(self) -> ConsumerGroupConfig:
        from ottla.server.groups.consumer import ConsumerGroupConfig

        made = self._consumer_config
        if made is None:
            return ConsumerGroupConfig()
        return made if isinstance(made, ConsumerGroupConfig) else made()

    @property
    def consumer(self) -> ConsumerGroupManager:
        """KIP-848 consumer groups, on the same log and timers; their offsets live in a classic
        entry without members (as a "simple" group's do), which the routing below keeps apart.
        Created on first use, as `streams` is."""
        if self._consumer is None:
            from ottla.server.groups.consumer import ConsumerGroupManager

            self._consumer = ConsumerGroupManager(
                self.log, self.log.storage, self._make_consumer_config(), self.timers, self.wall_clock_ms, self._has_classic_members,
                self._retire_empty_classic_group, self.configs.value, self._upgrade, self._downgrade, self.topic_hash,
            )
            if self._loaded:
                self._consumer.on_loaded()
        return self._consumer

    @functools.cached_property
    def _broker_rack(self) -> str | None:
        return self._make_consumer_config().broker_rack

    def topic_hash(self, topic_id: bytes, name: str, partitions: int) -> int:
        """Utils.computeTopicHash of a topic a consumer or streams group subscribes to."""
        return kafka_topic_hash_placed(topic_id, name, partitions, self._broker_rack, self.partition_racks)

    @property
    def consumer_groups(self) -> Mapping[str, ConsumerGroup]:
        """The consumer groups by id, without creating the manager for a broker that has none."""
        return {} if self._consumer is None else self._consumer.groups

    @property
    def streams(self) -> StreamsGroupManager:
        """Streams groups (KIP-1071), on the same log and timers; an id held by a classic or
        consumer group is not theirs. Created on first use: a broker whose clients run no Kafka
        Streams never imports them."""
        if self._streams is None:
            from ottla.server.groups.streams import StreamsGroupManager

            self._streams = StreamsGroupManager(
                self.log, self.log.storage, self.timers, self.wall_clock_ms,
                lambda group_id: group_id in self.consumer_groups or self._has_classic_members(group_id), self.configs.value,
                lambda: int(self.configs.broker_value("group.streams.max.size")), self.topic_hash,
            )
            if self._loaded:
                self._streams.on_loaded()
        return self._streams

    @property
    def streams_groups(self) -> Mapping[str, StreamsGroup]:
        """The streams groups by id, without creating the manager for a broker that has none."""
        return {} if self._streams is None else self._streams.groups

    @property
    def groups(self) -> dict[str, ClassicGroup]:
        return self.membership.groups

    @property
    def pending_transactional(self) -> dict[int, dict[str, dict[tuple[str, int], OffsetAndMetadata]]]:
        return self.offsets.pending_transactional

    # --- lifecycle ---------------------------------------------------------------

    def load(self) -> None:
        """Rebuild groups and offsets from the log (GroupCoordinatorShard.replay), then
        start the members' session timers and the offset-expiry sweep."""
        self.log.load_in_log_order(self._replay, self._replay_marker)
        self._replayed.clear()
        self._replayed_shards.clear()
        self.membership.on_loaded()
        if self._consumer is not None:
            self._consumer.on_loaded()
        if self._streams is not None:
            self._streams.on_loaded()
        self._loaded = True
        self.timers.every(self.config.offsets_retention_check_interval_ms, self.expire_offsets)

    def _replay(self, record_offset: int, producer_id: int, key: bytes, value: bytes | None) -> None:
        """GroupCoordinatorShard.replay of one record, where it stands in the log."""
        parsed = parse_key(key)
        if isinstance(parsed, OffsetKey):
            self.offsets.replay_offset(record_offset, producer_id, parsed.group_id, parsed.topic, parsed.partition, value)
            self._count_replayed(parsed.group_id, value is not None, False)
        elif isinstance(parsed, GroupKey):
            self.membership.replay_group(parsed.group_id, value)
            self._count_replayed(parsed.group_id, value is not None, value is None)
        else:
            from ottla.server.groups.consumer import records as consumer_records

            consumer_key = consumer_records.parse_key(key)
            if consumer_key is not None:
                self.consumer.replay(consumer_key, value)
                self._count_replayed(consumer_key.group_id, value is not None, value is None and consumer_key.record_type == consumer_records.GROUP_METADATA)
                return
            from ottla.server.groups.streams import records as streams_records

            streams_key = streams_records.parse_key(key)
            if streams_key is not None:
                self.streams.replay(streams_key, value)
                self._count_replayed(streams_key.group_id, value is not None, value is None and streams_key.record_type == streams_records.GROUP_METADATA)
                return
            share_key = parse_share_key(key)
            if share_key is not None:
                self.share_records.append((key, value))
                self._count_replayed(share_key.group_id, value is not None, value is None and share_key.record_type == SHARE_GROUP_METADATA)

    def take_share_records(self) -> list[KeyValue]:
        """The share group records loads met since last taken (`share_records`), handed over."""
        taken, self.share_records = self.share_records, []
        return taken

    def _count_replayed(self, group_id: str, made: bool, ended: bool) -> None:
        """Kafka's replay puts a group in its shard's table at its first record (an offset's
        makes a simple group) and takes it out at its group tombstone: the table grows as it
        did when those groups lived, deleted ones included."""
        if not made and not ended:
            return
        shard = self._replayed_shards.get(group_id)
        if shard is None:
            shard = self._replayed_shards[group_id] = self.offsets_partition(group_id)
        live = self._replayed.setdefault(shard, set())
        if ended:
            live.discard(group_id)
            return
        live.add(group_id)
        self.table_peaks[shard] = max(self.table_peaks.get(shard, 0), len(live))

    def note_table_peaks(self, share_group_ids: Iterable[str] = ()) -> Mapping[int, int]:
        """Raise each partition's peak to the groups it holds now (classic, consumer, streams,
        and the share groups named); called before DeleteGroups and when the peaks are read."""
        held: dict[int, int] = {}
        for group_id in {*self.groups, *self.consumer_groups, *self.streams_groups, *share_group_ids}:
            shard = self.offsets_partition(group_id)
            held[shard] = held.get(shard, 0) + 1
        for shard, count in held.items():
            self.table_peaks[shard] = max(self.table_peaks.get(shard, 0), count)
        return self.table_peaks

    def close(self) -> None:
        """Cancel every timer; parked requests end with their connections."""
        self.timers.close()
        self.membership.close()
        if self._consumer is not None:
            self._consumer.close()
        if self._streams is not None:
            self._streams.close()

    # --- membership --------------------------------------------------------------

    def join(self, request: JoinRequest, respond: JoinResponder, share_group: Callable[[str], bool] = lambda group_id: False) -> None:
        """GroupCoordinatorService.joinGroup, then GroupMetadataManager.classicGroupJoin. The
        group id and session timeout are checked before any group is looked at, whatever
        its type (before a cluster's node routes the id: server/cluster/coordinators.py). A
        classic member joining a live consumer group becomes one of its members, served
        through the classic APIs; one joining an empty consumer or streams group takes it
        over as a classic group (its offsets stay). Any other group of the id (a share
        group, which `share_group` tells, or a streams group with members) is no group a
        classic member may join."""
        if not request.group_id:
            respond(JoinResult(ErrorCode.INVALID_GROUP_ID, request.member_id))
            return
        if not self.config.min_session_timeout_ms <= request.session_timeout_ms <= self.config.max_session_timeout_ms:
            respond(JoinResult(ErrorCode.INVALID_SESSION_TIMEOUT, request.member_id))
            return
        streams = self.streams_groups.get(request.group_id)
        if (streams is not None and streams.members) or share_group(request.group_id):
            respond(JoinResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, ""))
            return
        consumer = self.consumer_groups.get(request.group_id)
        if consumer is not None and consumer.members:
            respond(self.consumer.classic_join(consumer, request))
            return
        if consumer is not None:
            self._take_over(request, respond, self.consumer.delete(consumer), lambda: self.consumer.forget(consumer))
        elif streams is not None:
            self._take_over(request, respond, self.streams.delete(streams), lambda: self.streams.forget(streams))
        else:
            self.membership.join(request, respond)

    def _take_over(self, request: JoinRequest, respond: JoinResponder, tombstones: list[KeyValue], forget: Callable[[], None]) -> None:
        """An empty consumer or streams group is deleted (its tombstones stored) before the
        join goes to a classic group of its id (GroupMetadataManager.maybeDeleteEmpty*Group)."""
        try:
            self.log.append(request.group_id, tombstones, self.wall_clock_ms())
        except KafkaError as exc:
            respond(JoinResult(store_error(exc.code), request.member_id))
            return
        forget()
        self.membership.join(request, respond)

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
        """GroupCoordinatorService.syncGroup checks the group id before it routes it to its
        shard, as heartbeat, leaveGroup and deleteOffsets do: here before any group is looked at."""
        if not group_id:
            respond(SyncResult(ErrorCode.INVALID_GROUP_ID))
            return
        consumer = self.consumer_groups.get(group_id)
        if consumer is not None:
            respond(self.consumer.classic_sync(consumer, generation_id, member_id, group_instance_id, protocol_type, protocol_name) if consumer.members else SyncResult(ErrorCode.UNKNOWN_MEMBER_ID))
            return
        self.membership.sync(group_id, generation_id, member_id, group_instance_id, protocol_type, protocol_name, assignments, respond)

    def heartbeat(self, group_id: str, generation_id: int, member_id: str, group_instance_id: str | None) -> ErrorCode:
        if not group_id:
            return ErrorCode.INVALID_GROUP_ID
        consumer = self.consumer_groups.get(group_id)
        if consumer is not None:
            return self.consumer.classic_heartbeat(consumer, generation_id, member_id, group_instance_id)
        return self.membership.heartbeat(group_id, generation_id, member_id, group_instance_id)

    def leave(self, group_id: str, leaving: list[tuple[str, str | None]]) -> tuple[ErrorCode, list[ErrorCode]]:
        if not group_id:
            return ErrorCode.INVALID_GROUP_ID, []
        consumer = self.consumer_groups.get(group_id)
        if consumer is not None:
            return self.consumer.classic_leave(consumer, leaving)
        return self.membership.leave(group_id, leaving)

    # --- online upgrade and downgrade (KIP-848) -------------------------------------

    def _upgrade(self, group_id: str) -> Upgrade | str:
        """GroupMetadataManager.validateOnlineUpgrade and convertToConsumerGroup: a live classic
        group of consumer-protocol members becomes a consumer group whose members keep their
        generation as member epoch and their last assignment as current and target. Else why
        not, in Kafka's words (the ConsumerGroupHeartbeat's GROUP_ID_NOT_FOUND message): the
        migration policy, the group's protocol type or size, an embedded protocol that does not
        parse, or an assignment carrying a custom assignor's user data, which a consumer group
        could not pass on."""
        from ottla.server.groups.consumer.embedded import MalformedProtocol, assignment_has_user_data, parse_subscription
        from ottla.server.groups.consumer.group import ConsumerMember
        from ottla.server.groups.consumer.manager import Upgrade
        from ottla.server.groups.consumer.records import ClassicMemberMetadata, MemberMetadata

        classic = self.groups.get(group_id)
        cannot = f"Cannot upgrade classic group {group_id} to consumer group"
        if classic is None:
            return f"Group {group_id} not found."
        if not self.consumer.config.upgrade_enabled:
            return f"{cannot} because online upgrade is disabled."
        if classic.protocol_type != CONSUMER_PROTOCOL_TYPE:
            return f"{cannot} because the group does not use the consumer embedded protocol."
        if len(classic.members) > self.consumer.config.max_size:
            return f"{cannot} because the group size exceeds the consumer group maximum size."
        malformed = f"{cannot} because the embedded consumer protocol is malformed."
        members = []
        for member in classic.members.values():
            protocols = member.protocols
            chosen = classic.protocol_name if classic.protocol_name is not None else (protocols[0][0] if protocols else "")
            try:
                if assignment_has_user_data(member.assignment):
                    return (f"{cannot} because an unsupported custom assignor is in use. Please refer to the documentation "
                            "or switch to a default assignor before re-attempting the upgrade.")
                subscription = parse_subscription(member.metadata(chosen))
            except (KeyError, MalformedProtocol):
                log.warning("cannot upgrade classic group %s: member %s has no readable subscription or assignment", group_id, member.member_id)
                return malformed
            metadata = MemberMetadata(
                member.group_instance_id, subscription.rack_id, member.client_id, member.client_host, subscription.topics, None,
                member.rebalance_timeout_ms, None, ClassicMemberMetadata(member.session_timeout_ms, protocols),
            )
            members.append((ConsumerMember(member.member_id, metadata), member.assignment))
        try:
            converted, records = self.consumer.from_classic(group_id, classic.generation_id, members)
        except MalformedProtocol:
            log.warning("cannot upgrade classic group %s: an assignment is not the consumer protocol's", group_id)
            return malformed
        return Upgrade(converted, [self.membership.tombstone(classic), *records], lambda: self.membership.retire(classic))

    def _downgrade(self, consumer: ConsumerGroup, leaving: set[str], rebalance: bool) -> bool:
        """GroupMetadataManager.validateOnlineDowngradeWithFencedMembers and convertToClassicGroup:
        when the members left after `leaving` go all speak the classic protocol, the group
        becomes a classic group at its group epoch, each member holding its target assignment,
        and a rebalance begins (unless a static member's replacement caused it: the group stays
        stable). False (nothing done) when the policy, emptiness or group.max.size forbids it.
        Raises KafkaError from the log."""
        remaining = [m for m_id, m in consumer.members.items() if m_id not in leaving]
        if not remaining or not consumer.all_classic_except(leaving) or not self.consumer.config.downgrade_enabled or len(remaining) > self.config.max_size:
            return False
        now = self.wall_clock_ms()
        holder = self.groups.get(consumer.group_id)
        classic = ClassicGroup(
            consumer.group_id, state=GroupState.STABLE, state_timestamp_ms=now, generation_id=consumer.group_epoch,
            offsets=holder.offsets if holder is not None else {},
        )
        for member in remaining:
            metadata = member.metadata
            assert metadata.classic is not None
            classic.add(
                Member(
                    member.member_id, metadata.instance_id, metadata.client_id, metadata.client_host, metadata.rebalance_timeout_ms,
                    metadata.classic.session_timeout_ms, CONSUMER_PROTOCOL_TYPE, metadata.classic.supported_protocols,
                ),
                None,
            )
        classic.protocol_name = classic.select_protocol()
        for member in remaining:
            classic.members[member.member_id].assignment = self.consumer.classic_member_assignment(consumer, member, classic.protocol_name)
        records = [*self.consumer.tombstones(consumer), (group_key(consumer.group_id), group_value(classic.stored()))]
        self.log.append(consumer.group_id, records, now)
        self.consumer.forget(consumer)
        self.membership.adopt(classic, rebalance)
        log.info("consumer group %s downgraded to a classic group of %d members", consumer.group_id, len(remaining))
        return True

    def list_groups(self, states: set[str] | None = None) -> list[ClassicGroup]:
        """Classic groups: the offset holders of consumer groups are not among them."""
        return [group for group in self.membership.list_groups(states) if group.group_id not in self.consumer_groups and group.group_id not in self.streams_groups]

    # --- KIP-848 consumer groups ---------------------------------------------------

    def consumer_heartbeat(self, request: HeartbeatRequest) -> HeartbeatResult:
        return self.consumer.heartbeat(request)

    def consumer_group(self, group_id: str) -> ConsumerGroup | None:
        return self.consumer_groups.get(group_id)

    def list_consumer_groups(self, states: set[str] | None = None) -> list[ConsumerGroup]:
        """Consumer groups, filtered by state name (case-insensitively, as ListGroups v4 does)."""
        wanted = {state.lower() for state in states or ()}
        return [g for g in self.consumer_groups.values() if not wanted or g.state.value.lower() in wanted]

    # --- KIP-1071 streams groups ----------------------------------------------------

    def streams_heartbeat(self, request: StreamsHeartbeatRequest) -> StreamsHeartbeatResult:
        return self.streams.heartbeat(request)

    def streams_group(self, group_id: str) -> StreamsGroup | None:
        return self.streams_groups.get(group_id)

    def list_streams_groups(self, states: set[str] | None = None) -> list[StreamsGroup]:
        """Streams groups, filtered by state name (case-insensitively, as ListGroups v4 does)."""
        wanted = {state.lower() for state in states or ()}
        return [g for g in self.streams_groups.values() if not wanted or g.state.value.lower() in wanted]

    def validate_offset_fetch(self, group_id: str, member_id: str | None, member_epoch: int) -> ErrorCode:
        """OffsetFetch v9+ from a consumer or streams group's member must carry its current epoch."""
        streams = self.streams_groups.get(group_id)
        if streams is not None:
            return self.streams.validate_member_epoch(streams, member_id, member_epoch, fetch=True)
        group = self.consumer_groups.get(group_id)
        return ErrorCode.NONE if group is None else self.consumer.validate_member_epoch(group, member_id, member_epoch, fetch=True)

    def _has_classic_members(self, group_id: str) -> bool:
        group = self.groups.get(group_id)
        return group is not None and bool(group.members)

    def _retire_empty_classic_group(self, group_id: str) -> list[KeyValue]:
        """An empty classic group becomes a consumer group (keeping its offsets): the
        tombstone of its GroupMetadata, written whether or not it had one, as Kafka's
        maybeDeleteEmptyClassicGroup does (an id's first JoinGroup stores one for a group
        of no protocol type yet)."""
        group = self.groups.get(group_id)
        if group is None:
            return []
        self.groups[group_id] = ClassicGroup(group_id, state_timestamp_ms=group.state_timestamp_ms, offsets=group.offsets)
        return [self.membership.tombstone(group)]

    def _offset_holder(self, group_id: str) -> None:
        if group_id not in self.groups:
            self.groups[group_id] = ClassicGroup(group_id, state_timestamp_ms=self.wall_clock_ms())

    # --- offsets -----------------------------------------------------------------

    def commit_offsets(
        self,
        group_id: str,
        generation_id: int,
        member_id: str,
        group_instance_id: str | None,
        entries: list[CommitEntry],
        retention_ms: int = -1,
        missing_group_error: ErrorCode = ErrorCode.ILLEGAL_GENERATION,
        api_version: int = 9,
        share_group: Callable[[str], bool] = lambda group_id: False,
    ) -> list[ErrorCode]:
        """`api_version` is OffsetCommit's: a consumer-protocol member must commit with v9 or
        later (ConsumerGroup.validateOffsetCommit), so an older one is UNSUPPORTED_VERSION.
        A share group's id (which `share_group` tells) holds no committed offsets: GROUP_ID_NOT_FOUND
        (ShareGroup.validateOffsetCommit), where a simple group of its id would be made."""
        if self._share_group(group_id, share_group):
            return [ErrorCode.GROUP_ID_NOT_FOUND] * len(entries)
        streams = self.streams_groups.get(group_id)
        if streams is not None:
            # A streams group's commit carries the member epoch too (StreamsGroup.validateOffsetCommit).
            error = self.streams.validate_member_epoch(streams, member_id, generation_id, commit_version=api_version,
                                                       committed=[(e.topic, e.partition) for e in entries])
            if error is not ErrorCode.NONE:
                return [error] * len(entries)
            self._offset_holder(group_id)
            return self.offsets.commit_offsets(group_id, -1, "", None, entries, retention_ms)
        consumer = self.consumer_groups.get(group_id)
        if consumer is not None:
            # A consumer group's commit carries the member epoch where a generation would be.
            error = self.consumer.validate_member_epoch(consumer, member_id, generation_id, commit_version=api_version,
                                                        committed=[(e.topic, e.partition) for e in entries])
            if error is not ErrorCode.NONE:
                return [error] * len(entries)
            self._offset_holder(group_id)
            return self.offsets.commit_offsets(group_id, -1, "", None, entries, retention_ms)
        return self.offsets.commit_offsets(group_id, generation_id, member_id, group_instance_id, entries, retention_ms, missing_group_error)

    def commit_transactional_offsets(
        self,
        group_id: str,
        producer_id: int,
        producer_epoch: int,
        generation_id: int,
        member_id: str,
        group_instance_id: str | None,
        entries: list[CommitEntry],
        api_version: int = 6,
        share_group: Callable[[str], bool] = lambda group_id: False,
    ) -> list[ErrorCode]:
        """`api_version` is TxnOffsetCommit's (OffsetMetadataManager.validateTransactionalOffsetCommit):
        before v6 a stale member epoch is ILLEGAL_GENERATION, as a classic generation is, and so
        is a generation given for a group that does not exist; from v6 (the first version whose
        clients handle them) they are STALE_MEMBER_EPOCH and GROUP_ID_NOT_FOUND. A share group's
        id is GROUP_ID_NOT_FOUND at every version, as in `commit_offsets`."""
        if self._share_group(group_id, share_group):
            return [ErrorCode.GROUP_ID_NOT_FOUND] * len(entries)
        since_v6 = api_version >= 6
        streams = self.streams_groups.get(group_id)
        if streams is not None:
            error = self.streams.validate_member_epoch(streams, member_id, generation_id, committed=[(e.topic, e.partition) for e in entries],
                                                       instance_id=group_instance_id)
            if error is not ErrorCode.NONE:
                return [error if since_v6 else _transactional_error(error)] * len(entries)
            self._offset_holder(group_id)
            return self.offsets.commit_transactional_offsets(group_id, producer_id, producer_epoch, -1, "", None, entries)
        consumer = self.consumer_groups.get(group_id)
        if consumer is not None:
            error = self.consumer.validate_member_epoch(consumer, member_id, generation_id, committed=[(e.topic, e.partition) for e in entries],
                                                        instance_id=group_instance_id)
            if error is not ErrorCode.NONE:
                return [error if since_v6 else _transactional_error(error)] * len(entries)
            self._offset_holder(group_id)
            return self.offsets.commit_transactional_offsets(group_id, producer_id, producer_epoch, -1, "", None, entries)
        return self.offsets.commit_transactional_offsets(
            group_id, producer_id, producer_epoch, generation_id, member_id, group_instance_id, entries,
            missing_group_error=ErrorCode.GROUP_ID_NOT_FOUND if since_v6 else ErrorCode.ILLEGAL_GENERATION,
        )

    def _share_group(self, group_id: str, share_group: Callable[[str], bool]) -> bool:
        """Is `group_id` a share group's? Asked only of an id no other group holds: ids are
        unique across group types, and most commits go to a group that exists."""
        return group_id not in self.groups and group_id not in self.consumer_groups and group_id not in self.streams_groups and share_group(group_id)

    def has_pending_transactional_offset(self, group_id: str, topic: str, partition: int) -> bool:
        return self.offsets.has_pending_transactional_offset(group_id, topic, partition)

    def fetch_offsets(self, group_id: str, wanted: list[tuple[str, list[int]]] | None) -> tuple[ErrorCode, list[tuple[str, list[tuple[int, OffsetAndMetadata | None]]]]]:
        return self.offsets.fetch_offsets(group_id, wanted)

    def delete_offsets(self, group_id: str, wanted: list[tuple[str, list[int]]]) -> tuple[ErrorCode, list[tuple[str, list[tuple[int, ErrorCode]]]]]:
        """GroupCoordinatorService.deleteOffsets: an empty group id is INVALID_GROUP_ID, not a group not found.
        A consumer group's topics are those its members subscribe to, by name or resolved regex
        (ModernGroup.isSubscribedToTopic), in any state (ConsumerGroup.validateOffsetDelete):
        its offset holder is an empty classic group that knows no subscriptions. So are a
        streams group's: its topology's source topics while it has members (StreamsGroup.isSubscribedToTopic)."""
        if not group_id:
            return ErrorCode.INVALID_GROUP_ID, []
        streams = self.streams_groups.get(group_id)
        if streams is not None:
            self._offset_holder(group_id)
            return self.offsets.delete_offsets(group_id, wanted, streams.is_subscribed_to)
        consumer = self.consumer_groups.get(group_id)
        if consumer is not None:
            self._offset_holder(group_id)
            return self.offsets.delete_offsets(group_id, wanted, self.consumer.subscribed_topics(consumer).__contains__)
        return self.offsets.delete_offsets(group_id, wanted)

    # --- what the transaction coordinator asks (its GroupOffsets) ----------------

    def offsets_partition(self, group_id: str) -> int:
        """The `__consumer_offsets` partition that holds the group's records."""
        return self.log.partition_for(group_id)

    def on_partition_moved(self, index: int) -> None:
        """Another node leads `__consumer_offsets` partition `index` (cluster mode): its groups
        stay loaded, as every node shares them, but each of their members gets a whole session
        timeout from now, and a KIP-848 member still revoking a whole rebalance timeout, as
        Kafka's new coordinator gives them once it has loaded the partition
        (GroupMetadataManager.onLoaded), so a member that finds the new coordinator within its
        session timeout of the move keeps its place."""
        def owned(group_id: str) -> bool:
            return self.offsets_partition(group_id) == index

        self.membership.on_loaded(owned)
        if self._consumer is not None:
            self._consumer.rearm_timers(owned)
        if self._streams is not None:
            self._streams.on_loaded(owned)

    def reload_partition(self, index: int) -> None:
        """This broker took `__consumer_offsets` partition `index` over from another broker over
        the same database, its records read again (GroupMetadataManager.onLoaded after a
        replay): the partition's groups, offsets and pending transactional offsets are dropped
        and rebuilt from them, and their members get a whole session timeout from now."""
        def owned(group_id: str) -> bool:
            return self.offsets_partition(group_id) == index

        for group in [group for group in self.groups.values() if owned(group.group_id)]:
            self.membership.remove(group)
        for consumer in [group for group in self.consumer_groups.values() if owned(group.group_id)]:
            self.consumer.forget(consumer)
        for streams in [group for group in self.streams_groups.values() if owned(group.group_id)]:
            self.streams.forget(streams)
        for producer_id, pending in list(self.offsets.pending_transactional.items()):
            for group_id in [group_id for group_id in pending if owned(group_id)]:
                del pending[group_id]
            if not pending:
                del self.offsets.pending_transactional[producer_id]
        self.log.load_in_log_order(self._replay, self._replay_marker, [index])
        self._replayed.clear()
        self._replayed_shards.clear()
        self.membership.on_loaded(owned)
        if self._consumer is not None:
            self._consumer.on_loaded(owned)
        if self._streams is not None:
            self._streams.on_loaded(owned)

    def complete_transaction(self, producer_id: int, partitions: set[int], commit: bool) -> None:
        self.offsets.complete_transaction(producer_id, partitions, commit)

    def on_topic_deleted(self, topic: TopicInfo) -> None:
        """A topic is gone (Storage.deletion_listeners: a DeleteTopics here, or another broker's
        over the same database): every group's offsets of it go, classic, consumer and streams
        groups' alike, as GroupCoordinatorService.onMetadataUpdate has each shard do
        (GroupCoordinatorShard.onTopicsDeleted). Over a shared database each broker drops them
        from its copy, and only the leader of a group's partition writes its tombstones."""
        self.offsets.delete_topic_offsets(topic.name)

    def _replay_marker(self, partition: int, producer_id: int, commit: bool) -> None:
        """GroupCoordinatorShard.replayEndTransactionMarker: a marker met in the log ends the
        producer's pending offsets as the same marker written live does."""
        self.offsets.complete_transaction(producer_id, {partition}, commit)

    # --- across both: deletion and expiry ----------------------------------------

    def delete_groups(self, group_ids: list[str]) -> list[ErrorCode]:
        """GroupCoordinatorShard.deleteGroups: only empty groups go; their offsets with them."""
        errors = []
        for group_id in group_ids:
            consumer = self.consumer_groups.get(group_id)
            if consumer is not None:
                errors.append(self._delete_epoch_group(group_id, bool(consumer.members), lambda: self.consumer.delete(consumer),
                                                       lambda: self.consumer.forget(consumer)))
                continue
            streams = self.streams_groups.get(group_id)
            if streams is not None:
                errors.append(self._delete_epoch_group(group_id, bool(streams.members), lambda: self.streams.delete(streams),
                                                       lambda: self.streams.forget(streams)))
                continue
            group = self.groups.get(group_id)
            if group is None or group.is_in(GroupState.DEAD):
                errors.append(ErrorCode.GROUP_ID_NOT_FOUND)
            elif not group.is_in(GroupState.EMPTY):
                errors.append(ErrorCode.NON_EMPTY_GROUP)
            else:
                try:
                    self._delete_group(group)
                except KafkaError as exc:
                    errors.append(store_error(exc.code))
                else:
                    errors.append(ErrorCode.NONE)
        return errors

    def _delete_epoch_group(self, group_id: str, has_members: bool, tombstones: Callable[[], list[KeyValue]],
                            forget: Callable[[], None]) -> ErrorCode:
        """Delete an empty consumer or streams group: its own tombstones and those of its offsets
        (kept by a classic holder of the same id, or pending in a transaction) in one batch,
        then forget it. The holder lives only in memory (its group record was tombstoned when
        the group stopped being classic), so it gets no tombstone of its own, as in Kafka."""
        if has_members:
            return ErrorCode.NON_EMPTY_GROUP
        holder = self.groups.get(group_id)
        records = self.offsets.tombstones(group_id)
        try:
            self.log.append(group_id, [*records, *tombstones()], self.wall_clock_ms())
        except KafkaError as exc:
            return store_error(exc.code)
        self.offsets.drop_pending(group_id)
        if holder is not None:
            self.membership.remove(holder)
        forget()
        return ErrorCode.NONE

    def _delete_group(self, group: ClassicGroup) -> None:
        """One batch of tombstones, the offsets' (pending ones included) and the group's, so a
        crash leaves all or none."""
        self.log.append(group.group_id, [*self.offsets.tombstones(group.group_id), self.membership.tombstone(group)], self.wall_clock_ms())
        self.offsets.drop_pending(group.group_id)
        self.membership.remove(group)

    def expire_offsets(self) -> int:
        """GroupCoordinatorShard.cleanupGroupMetadata: expire every group's old offsets,
        then delete the empty groups left with none, committed or pending in a transaction.
        Returns how many offsets went."""
        now = self.wall_clock_ms()
        expired_total = 0
        for group in list(self.groups.values()):
            consumer = self.consumer_groups.get(group.group_id)
            streams = self.streams_groups.get(group.group_id)
            try:
                if streams is not None and streams.members:
                    # From their commit, but for its topology's source topics (StreamsGroup.offsetExpirationCondition).
                    expired_total += self.offsets.expire(group, now, streams.subscribed_topics())
                    continue
                if consumer is not None and consumer.members:
                    expired_total += self.offsets.expire(group, now, self.consumer.subscribed_topics(consumer))
                    continue
                expired_total += self.offsets.expire(group, now)
                if not group.offsets and group.is_in(GroupState.EMPTY) and not self.offsets.has_pending_transactional_offsets(group.group_id):
                    if consumer is None and streams is None:
                        self._delete_group(group)
                    else:
                        self._delete_empty_epoch_group(group.group_id)
            except KafkaError as exc:
                log.warning("could not expire offsets of group %s: %s", group.group_id, exc)
        for group_id in [*self.consumer_groups, *self.streams_groups]:
            if group_id not in self.groups and not self.offsets.has_pending_transactional_offsets(group_id):
                self._delete_empty_epoch_group(group_id)  # no offsets at all
        return expired_total

    def _delete_empty_epoch_group(self, group_id: str) -> None:
        """An empty KIP-848 or streams group left with no offsets goes, as Kafka's
        cleanupGroupMetadata deletes it: else it stayed listed Empty for good (and a streams
        group's stored topology refused the application's next one)."""
        consumer = self.consumer_groups.get(group_id)
        if consumer is not None:
            error = ErrorCode.NONE if consumer.members else self._delete_epoch_group(
                group_id, False, lambda: self.consumer.delete(consumer), lambda: self.consumer.forget(consumer))
        else:
            streams = self.streams_groups.get(group_id)
            if streams is None or streams.members:
                return
            error = self._delete_epoch_group(group_id, False, lambda: self.streams.delete(streams), lambda: self.streams.forget(streams))
        if error is not ErrorCode.NONE:
            log.warning("could not delete empty group %s: %s", group_id, error.name)


def _transactional_error(error: ErrorCode) -> ErrorCode:
    return ErrorCode.ILLEGAL_GENERATION if error is ErrorCode.STALE_MEMBER_EPOCH else error
