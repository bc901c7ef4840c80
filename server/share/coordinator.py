"""The share-group coordinator: membership, share sessions and share-partitions (KIP-932).

Kafka splits this between the group coordinator (membership, in `__consumer_offsets`),
the broker's SharePartitionManager (in-flight records) and the share coordinator (their
persisted state, in `__share_group_state`). One node needs one owner: this class keeps
all three, on the coordinator runtime, with Kafka's records where Kafka keeps them: a
group's own (its epochs, members, assignments and initialized topics:
`ottla.server.groups.share_records`) on its `__consumer_offsets` partition, replayed within
that partition's load; per share-partition, the ShareSnapshot and ShareUpdate records of
the SPSO and the in-flight runs in `__share_group_state` (`ottla.server.share.records`).
Every change a client is told of is in the log first. What was
acquired but not acknowledged when the broker stopped is AVAILABLE again after a
restart, with its delivery count: at-least-once, as Kafka's persister keeps it.

Brokers over one database split it as Kafka does: a group's coordinator (the leader of its
`__consumer_offsets` partition) keeps its members and assignment, each topic partition's
leader keeps its share-partitions in memory, and each writes the records of what it owns
to the one state log in the database, whoever leads that log's partition (the database
orders the appends). A broker that becomes a partition's leader reads its share-partitions
from the log (`leader_moved`); the group's coordinator reads the start offsets it describes
from there too (`state_summaries`).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, cast

from ottla.server.coordinator import (
    OFFSETS, SHARE_GROUP_STATE, SHARE_STATE_PARTITIONS, Clock, CoordinatorLog, KeyValue, RecordFormatError, Timers, now_epoch_ms,
    share_state_key,
)
from ottla.server.groups import share_records as group_records
from ottla.server.java_hashing import PartitionRacks, default_capacity, java_order, kafka_group_hash, kafka_topic_hash_placed, string_hash, uuid_hash
from ottla.server.share.group import Assignment, ShareGroup, ShareMember, assign
from ottla.server.share.partition import AcknowledgeType, AcquiredRange, RecordState, SharePartition, SharePartitionLimits, StateBatch
from ottla.server.share.records import (
    SNAPSHOT, UPDATE, UPDATES_PER_SNAPSHOT, GroupRecord, PartitionRecord, ShareState, StateUpdate, encode_key,
    encode_snapshot, encode_update, extends, merge, parse,
)
from ottla.server.share.sessions import ShareSessionCache
from ottla.storage import FileRegion, ReadResult, Storage, TopicInfo
from ottla.wire.errors import ErrorCode, KafkaError, default_message
from ottla.wire.records import BatchHeader, Record, build_batch, iter_records, scan_batches

log = logging.getLogger("ottla.share")

# (group id, topic id, partition)
PartitionKey = tuple[str, bytes, int]
_DEFAULT_MAX_RECORDS = 500


@dataclass(slots=True, frozen=True)
class ShareConfig:
    """The broker settings share groups read (Kafka's `group.share.*` names)."""

    session_timeout_ms: int = 45000
    heartbeat_interval_ms: int = 5000
    max_size: int = 200
    record_lock_duration_ms: int = 30000
    delivery_count_limit: int = 5
    partition_max_record_locks: int = 2000
    max_share_sessions: int = 2000
    assignment_interval_ms: int = 1000
    # Dead-letter topics (KIP-1191): the prefix their names need, and whether a missing one is created.
    dlq_topic_prefix: str = "dlq."
    dlq_auto_create: bool = False
    num_partitions: int = 1
    # The group configs' own defaults, for a coordinator run without the GROUP config resource.
    auto_offset_reset: str = "latest"
    isolation_level: str = "read_uncommitted"
    renew_acknowledge_enable: bool = True
    dlq_topic_name: str = ""
    dlq_copy_record: bool = False
    # The partitions and configs `__share_group_state` is created with; None: at the default settings.
    state_partitions: int = SHARE_STATE_PARTITIONS
    state_topic_configs: Mapping[str, str] | None = None
    # How often share-partitions whose state was last written that long ago are snapshotted again.
    cold_snapshot_interval_ms: int = 300000
    # `__consumer_offsets`, where each group's own records go, as the group coordinator creates it.
    offsets_partitions: int = 50
    offsets_topic_configs: Mapping[str, str] | None = None
    # broker.rack: the rack of every partition's replica, which a group's metadata hash covers.
    broker_rack: str | None = None

    @classmethod
    def from_broker(cls, config: Any) -> ShareConfig:
        return cls(
            session_timeout_ms=config.value("group.share.session.timeout.ms"),
            heartbeat_interval_ms=config.value("group.share.heartbeat.interval.ms"),
            max_size=config.value("group.share.max.size"),
            record_lock_duration_ms=config.value("group.share.record.lock.duration.ms"),
            delivery_count_limit=config.value("group.share.delivery.count.limit"),
            partition_max_record_locks=config.value("group.share.partition.max.record.locks"),
            max_share_sessions=config.value("group.share.max.share.sessions"),
            assignment_interval_ms=config.value("group.share.assignment.interval.ms"),
            dlq_topic_prefix=config.value("errors.deadletterqueue.topic.name.prefix"),
            dlq_auto_create=config.value("errors.deadletterqueue.auto.create.topics.enable"),
            num_partitions=config.value("num.partitions"),
            state_partitions=config.value(SHARE_GROUP_STATE.partitions_setting),
            state_topic_configs=SHARE_GROUP_STATE.configs(config.value),
            cold_snapshot_interval_ms=config.value("share.coordinator.cold.partition.snapshot.interval.ms"),
            offsets_partitions=config.value(OFFSETS.partitions_setting),
            offsets_topic_configs=OFFSETS.configs(config.value),
            broker_rack=config.value("broker.rack"),
        )


@dataclass(slots=True, frozen=True)
class _Read:
    """One acquisition's read of the log: whose, of which partition, from where, and its limits."""

    group_id: str
    member_id: str
    topic: str
    topic_id: bytes
    index: int
    offset: int
    stable: int | None
    max_records: int
    whole_batches: bool
    batch_size: int | None


@dataclass(slots=True, frozen=True)
class StateSummary:
    """A share-partition as DescribeShareGroupOffsets reports it (Kafka's ReadShareGroupStateSummary):
    its start offset and how many of its in-flight records are done."""

    start_offset: int
    delivery_complete: int


@dataclass(slots=True)
class Acquired:
    """What one ShareFetch got of one partition: the log's batches and the ranges acquired.
    `archived`: the read acquired an aborted transaction's records and archived them (under
    read_committed), whether or not it handed others out; a fetch so answered answers at once,
    empty if need be, as Kafka 4.4 answered it without waiting (its DelayedShareFetch completes
    on the log data read, before acquiring)."""

    records: bytes
    ranges: list[AcquiredRange]
    archived: bool = False


class ShareCoordinator:
    """`__share_group_state` is created at the first write of a share-partition's state, so a
    broker that never saw one lists no such topic."""

    def __init__(self, storage: Storage, config: ShareConfig, clock: Clock,
                 notify_data: Callable[[str, int], None] = lambda topic, partition: None,
                 wall_clock_ms: Callable[[], int] = now_epoch_ms,
                 group_config: Callable[[str, str], Any] | None = None,
                 dead_letters: Callable[[], bool] = lambda: False) -> None:
        self._log: CoordinatorLog | None = None
        self._offsets_log_: CoordinatorLog | None = None
        # Each group's records in `__consumer_offsets` as last written or replayed (key: value):
        # a change writes only the records it changes (`_persist_group`).
        self._group_written: dict[str, dict[bytes, bytes]] = {}
        # The groups whose last write of their records failed: their next heartbeat writes them.
        self._unwritten: set[str] = set()
        # The groups whose state Ottla last wrote as one JSON record in the state log (before
        # it wrote Kafka's records): their deletion tombstones that record too.
        self._legacy: set[str] = set()
        self.storage = storage
        self.config = config
        self.timers = Timers(clock)
        self.notify_data = notify_data
        self.wall_clock_ms = wall_clock_ms
        self.groups: dict[str, ShareGroup] = {}
        self.partitions: dict[PartitionKey, SharePartition] = {}
        # Each share-partition's state as its records in the log leave it, with the number of
        # updates written since its last snapshot: what its next update is merged over.
        self._written: dict[PartitionKey, tuple[ShareState, int]] = {}
        self.sessions = ShareSessionCache(config.max_share_sessions)
        # (group id, share.* group config name) -> the value that group runs with: its
        # override in the GROUP config resource, else the broker's group.share.* setting.
        self.group_config = group_config or self._broker_default
        # Whether share.version is finalized at 2 or more: dead-letter queues (KIP-1191).
        self.dead_letters = dead_letters
        # In cluster mode (set by the broker), each partition's replicas' racks for the metadata hash.
        self.partition_racks: PartitionRacks | None = None
        # Brokers over one database (`leader_moved`): the (topic id, partition)s this broker
        # leads as the owner of their share-partitions, and those whose state it is reading again.
        self.led: set[tuple[bytes, int]] = set()
        self.loading: set[tuple[bytes, int]] = set()
        # Dead-letter writes under way on an engine whose appends are coroutines.
        self._dead_letter_writes: set[asyncio.Task[None]] = set()
        storage.deletion_listeners.append(self.on_topic_deleted)
        self.timers.every(config.cold_snapshot_interval_ms, self._snapshot_cold_partitions)

    _DEFAULTS = {
        "share.session.timeout.ms": "session_timeout_ms", "share.heartbeat.interval.ms": "heartbeat_interval_ms",
        "share.record.lock.duration.ms": "record_lock_duration_ms", "share.delivery.count.limit": "delivery_count_limit",
        "share.partition.max.record.locks": "partition_max_record_locks", "share.auto.offset.reset": "auto_offset_reset",
        "share.isolation.level": "isolation_level", "share.renew.acknowledge.enable": "renew_acknowledge_enable",
        "share.assignment.interval.ms": "assignment_interval_ms",
        "errors.deadletterqueue.topic.name": "dlq_topic_name", "errors.deadletterqueue.copy.record.enable": "dlq_copy_record",
    }

    def _broker_default(self, group_id: str, name: str) -> Any:
        return getattr(self.config, self._DEFAULTS[name])

    def heartbeat_interval_ms(self, group_id: str) -> int:
        return int(self.group_config(group_id, "share.heartbeat.interval.ms"))

    def lock_duration_ms(self, group_id: str) -> int:
        return int(self.group_config(group_id, "share.record.lock.duration.ms"))

    def read_committed(self, group_id: str) -> bool:
        return bool(self.group_config(group_id, "share.isolation.level") == "read_committed")

    def _limits(self, group_id: str) -> SharePartitionLimits:
        return SharePartitionLimits(self.lock_duration_ms(group_id), int(self.group_config(group_id, "share.delivery.count.limit")),
                                    int(self.group_config(group_id, "share.partition.max.record.locks")))

    # --- persistence ----------------------------------------------------------------

    def load(self, offsets_records: Iterable[KeyValue] | None = None) -> None:
        """Rebuild the share-partitions from the state log and the groups from their records
        in `__consumer_offsets`: `offsets_records`, as the group coordinator's load met them
        (`GroupCoordinator.take_share_records`), else read here. A group Ottla kept as one
        JSON record in the state log is read from there first, its records in
        `__consumer_offsets` (written at its first change since) over it."""
        if self.storage.topic(SHARE_GROUP_STATE.name) is not None:
            self._state_log().load(self._replay)
        self._groups_loaded(self._replay_groups(self._offsets_records(offsets_records), lambda group_id: True))

    def reload(self) -> None:
        """This broker took `__share_group_state` over from another broker over the same
        database, its records read again: every group and share-partition is dropped and
        rebuilt from them and the groups' records, as Kafka's new coordinators load their
        partitions; what was in flight is AVAILABLE again."""
        for member in (m for group in self.groups.values() for m in group.members.values()):
            Timers.cancel(member.session_timer)
        for partition in self.partitions.values():
            partition.reset_start(partition.start_offset)
        self.groups = {}
        self.partitions = {}
        self._written = {}
        self._group_written = {}
        self._legacy = set()
        self.load()

    def leader_moved(self, topic_id: bytes, index: int, leads: bool) -> bool:
        """A topic partition's leader changed, among brokers over one database. As in Kafka,
        its leader owns its share-partitions, in memory, and persists them: a broker that does
        not lead it drops its copies (their locks with them; the leader's state is the record),
        and one that has just become its leader drops them too and reads their state again
        (`partition_loaded`): what another leader handed out since is in the database, and what
        was acquired there and not acknowledged is AVAILABLE again. Until then nothing of it
        is acquired. Whether the state must be read again."""
        key = (topic_id, index)
        if leads and key in self.led:
            return False
        for partition_key in [k for k in self.partitions if k[1:] == key]:
            self.partitions.pop(partition_key).reset_start(0)
        for partition_key in [k for k in self._written if k[1:] == key]:
            del self._written[partition_key]
        if not leads:
            self.led.discard(key)
            self.loading.discard(key)
            return False
        self.led.add(key)
        self.loading.add(key)
        return True

    def partition_loaded(self, topic_id: bytes, index: int) -> None:
        """The state log was read again after this broker became the leader of a topic
        partition (`leader_moved`): its share-partitions are rebuilt from their records."""
        if (topic_id, index) not in self.loading:
            return  # it moved away again meanwhile
        self.loading.discard((topic_id, index))

        def replay(key: bytes, value: bytes | None) -> None:
            record = parse(key, value)
            if isinstance(record, PartitionRecord) and record.key[1:] == (topic_id, index):
                self._apply(record)

        self._state_log().load(replay)
        name = self._topic_name(topic_id)
        if name is not None:
            self.notify_data(name, index)

    def rearm_sessions(self, coordinated: Callable[[str], bool]) -> None:
        """Another node of an in-process cluster leads the `__consumer_offsets` partition of the
        groups `coordinated` says: as Kafka's new coordinator after its load (onLoaded), each
        of their members has a whole session timeout from now to find it."""
        for group_id, group in self.groups.items():
            if coordinated(group_id):
                for member in group.members.values():
                    self._arm_session(group, member)

    def forget_groups(self, coordinated: Callable[[str], bool]) -> None:
        """Another broker over the same database coordinates the groups `coordinated` says
        now: this broker drops them, members and their session timers with them, so that it
        writes none of their records (their share-partitions stay with their leaders)."""
        for group_id in [group_id for group_id in self.groups if coordinated(group_id)]:
            for member in self.groups.pop(group_id).members.values():
                Timers.cancel(member.session_timer)
            self._group_written.pop(group_id, None)
            self._legacy.discard(group_id)

    def reload_groups(self, coordinated: Callable[[str], bool], offsets_records: Iterable[KeyValue] | None = None) -> None:
        """This broker became the coordinator of the groups `coordinated` says (the leader of
        their `__consumer_offsets` partition, among brokers over one database): they are rebuilt
        from their records, where their previous coordinator wrote them, read again within
        that partition's load (`offsets_records`, as `load` takes them), so no request of
        theirs wrote one after the read; their members have a whole session timeout from now."""
        self.forget_groups(coordinated)

        def replay(key: bytes, value: bytes | None) -> None:
            record = parse(key, value)
            if isinstance(record, GroupRecord) and coordinated(record.group_id):
                self._apply(record)

        self._state_log().load(replay)
        self._groups_loaded(self._replay_groups(self._offsets_records(offsets_records), coordinated))

    def _offsets_records(self, given: Iterable[KeyValue] | None) -> Iterable[KeyValue]:
        return self._offsets_log().replay() if given is None else given

    def _replay_groups(self, records: Iterable[KeyValue], coordinated: Callable[[str], bool]) -> set[str]:
        """Replay the share group records among `records` of the groups `coordinated` says
        (GroupMetadataManager.replay); the ids of the groups they touched. An unreadable one
        is skipped with a warning, as the coordinator runtime skips it."""
        touched: set[str] = set()
        for key, value in records:
            try:
                record_key = group_records.parse_key(key)
                if record_key is not None and coordinated(record_key.group_id):
                    self._apply_group_record(record_key, bytes(key), value)
                    touched.add(record_key.group_id)
            except RecordFormatError as exc:
                log.warning("skipping an unreadable share group record: %s", exc)
        return touched

    def _apply_group_record(self, record_key: group_records.RecordKey, key: bytes, value: bytes | None) -> None:
        group_id, member_id, record_type = record_key.group_id, record_key.member_id or "", record_key.record_type
        group = self.groups.get(group_id)
        if value is None:
            self._group_written.get(group_id, {}).pop(key, None)
            if group is None:
                return
            if record_type == group_records.GROUP_METADATA:
                del self.groups[group_id]
                self._group_written.pop(group_id, None)
            elif record_type == group_records.MEMBER_METADATA:
                group.members.pop(member_id, None)
            elif record_type == group_records.TARGET_ASSIGNMENT_MEMBER:
                group.target.pop(member_id, None)
            elif record_type == group_records.STATE_PARTITION_METADATA:
                group.topics, group.initialized = {}, {}
            return
        if group is None:
            group = self.groups[group_id] = ShareGroup(group_id)
        self._group_written.setdefault(group_id, {})[key] = bytes(value)
        if record_type == group_records.GROUP_METADATA:
            group.group_epoch, group.metadata_hash = group_records.parse_group_metadata_value(value)
        elif record_type == group_records.STATE_PARTITION_METADATA:
            # Topics still initializing (Kafka's InitializeShareGroupState under way) are
            # initialized again at the next heartbeat.
            initialized = group_records.parse_state_partitions_value(value).initialized
            group.topics = {topic.topic_id: topic.name for topic in initialized}
            group.initialized = {topic.topic_id: set(topic.partitions) for topic in initialized if topic.partitions}
        elif record_type == group_records.TARGET_ASSIGNMENT_METADATA:
            group.assignment_epoch, group.assignment_timestamp_ms = group_records.parse_target_assignment_metadata_value(value)
        elif record_type == group_records.TARGET_ASSIGNMENT_MEMBER:
            group.target[member_id] = group_records.parse_target_assignment_member_value(value)
        elif record_type == group_records.MEMBER_METADATA:
            metadata = group_records.parse_member_metadata_value(value)
            member = self._replayed_member(group, member_id)
            member.rack_id, member.client_id, member.client_host = metadata.rack_id, metadata.client_id, metadata.client_host
            member.subscribed_topic_names = list(metadata.subscribed_topic_names)
        else:
            current = group_records.parse_current_assignment_value(value)
            member = self._replayed_member(group, member_id)
            member.member_epoch, member.previous_member_epoch = current.member_epoch, current.previous_member_epoch
            member.assignment = current.assignment

    @staticmethod
    def _replayed_member(group: ShareGroup, member_id: str) -> ShareMember:
        member = group.members.get(member_id)
        if member is None:
            member = group.members[member_id] = ShareMember(member_id, 0, "", "", None, [])
        return member

    def _groups_loaded(self, group_ids: set[str]) -> None:
        """After a load of the groups `group_ids`: the members of those this broker
        coordinates get a whole session timeout from now (GroupMetadataManager.onLoaded)."""
        offsets_log = self._offsets_log()
        for group_id in group_ids:
            group = self.groups.get(group_id)
            if group is None:
                continue
            if offsets_log.owns(offsets_log.partition_for(group_id)):
                for member in group.members.values():
                    self._arm_session(group, member)

    def _state_log(self) -> CoordinatorLog:
        """`__share_group_state`: each share-partition's records on its `share_state_key`'s
        partition, a group's former JSON record on its group id's."""
        if self._log is None:
            self._log = CoordinatorLog(self.storage, SHARE_GROUP_STATE, self.config.state_partitions, self.config.state_topic_configs)
        return self._log

    def _offsets_log(self) -> CoordinatorLog:
        if self._offsets_log_ is None:
            self._offsets_log_ = CoordinatorLog(self.storage, OFFSETS, self.config.offsets_partitions, self.config.offsets_topic_configs)
        return self._offsets_log_

    def _append(self, routing_key: str, records: list[tuple[bytes, bytes | None]]) -> None:
        """One batch on `routing_key`'s partition of the state log."""
        self._state_log().append(routing_key, records, self.wall_clock_ms())

    def close(self) -> None:
        for member in (m for group in self.groups.values() for m in group.members.values()):
            Timers.cancel(member.session_timer)
        for partition in self.partitions.values():
            partition.reset_start(partition.start_offset)
        self.timers.close()

    def _replay(self, key: bytes, value: bytes | None) -> None:
        self._apply(parse(key, value))

    def _apply(self, record: GroupRecord | PartitionRecord) -> None:
        if isinstance(record, GroupRecord):
            body, group_id = record.body, record.group_id
            if body is None:
                self.groups.pop(group_id, None)
                self._legacy.discard(group_id)
                for partition_key in [k for k in self.partitions if k[0] == group_id]:
                    del self.partitions[partition_key]
                for partition_key in [k for k in self._written if k[0] == group_id]:
                    del self._written[partition_key]
            else:
                self._legacy.add(group_id)
                group = self.groups.setdefault(group_id, ShareGroup(group_id))
                group.group_epoch = group.assignment_epoch = int(body["epoch"])
                group.topics = {bytes.fromhex(topic_id): name for topic_id, name in body.get("topics", {}).items()}
                group.initialized = {bytes.fromhex(topic_id): set(partitions)
                                     for topic_id, partitions in body.get("initialized", {}).items()}
            return
        before = self._written.get(record.key)
        if before is not None or not isinstance(record.value, StateUpdate):
            self._restore(record.key, _folded(before, record.value))

    def _restore(self, key: PartitionKey, written: tuple[ShareState, int] | None) -> None:
        """The share-partition `key` as its records leave it (None: it has none, a tombstone)."""
        if written is None:
            self.partitions.pop(key, None)
            self._written.pop(key, None)
            return
        state = written[0]
        partition = self._new_partition(key, state.start_offset)
        partition.restore(state.start_offset, list(state.batches))
        self.partitions[key] = partition
        self._written[key] = written

    def _fold(self, wanted: Callable[[PartitionKey], bool]) -> dict[PartitionKey, tuple[ShareState, int] | None]:
        """The `wanted` share-partitions as the state log leaves them, read again from its
        start: None for those whose last record is a tombstone (or their group's)."""
        found: dict[PartitionKey, tuple[ShareState, int] | None] = {}

        def replay(key: bytes, value: bytes | None) -> None:
            record = parse(key, value)
            if isinstance(record, GroupRecord):
                if record.body is None:
                    for partition_key in [k for k in found if k[0] == record.group_id]:
                        found[partition_key] = None
            elif wanted(record.key) and (found.get(record.key) is not None or not isinstance(record.value, StateUpdate)):
                found[record.key] = _folded(found.get(record.key), record.value)

        self._state_log().load(replay)
        return found

    def _group_records(self, group: ShareGroup, initializing: Mapping[bytes, set[int]] | None = None,
                       deleting: bool = False, deleting_topics: Mapping[bytes, str] | None = None) -> dict[bytes, bytes]:
        """The group's records as they stand, in the order Kafka's heartbeat writes them
        (members, epoch, targets, target epoch, current assignments, initialized topics);
        none for a deleted group. Each topic holding share-partitions is an initialized
        topic, with the partitions initialized of it (none for one only fetched from);
        `initializing` are those whose InitializeShareGroupState is under way. `deleting`: the
        group is about to be deleted, so its topics that exist are listed as deleting and none as
        initialized, as Kafka's shareGroupBuildPartitionDeleteRequest writes them (when the group
        has that record); `deleting_topics` (id: name) are those whose offsets are being deleted,
        listed as deleting. Topics are listed in the order of Kafka's HashMap of them by topic id.
        The target epoch is written once an assignment was computed, the initialized topics once
        there are some; either stays written after."""
        if group.dead:
            return {}
        group_id, written = group.group_id, self._group_written.get(group.group_id, {})
        records: dict[bytes, bytes] = {}
        for member in group.members.values():
            metadata = group_records.MemberMetadata(member.rack_id, member.client_id, member.client_host, tuple(member.subscribed_topic_names))
            records[group_records.key(group_records.MEMBER_METADATA, group_id, member.member_id)] = group_records.member_metadata_value(metadata)
        records[group_records.key(group_records.GROUP_METADATA, group_id)] = group_records.group_metadata_value(group.group_epoch, group.metadata_hash)
        # In the order of TargetAssignmentBuilder's HashMap of the members.
        for member_id in java_order([member_id for member_id in group.members if member_id in group.target], string_hash,
                                    default_capacity(len(group.members))):
            records[group_records.key(group_records.TARGET_ASSIGNMENT_MEMBER, group_id, member_id)] = group_records.target_assignment_member_value(group.target[member_id])
        target_key = group_records.key(group_records.TARGET_ASSIGNMENT_METADATA, group_id)
        if group.assigned_at is not None or target_key in written:
            records[target_key] = group_records.target_assignment_metadata_value(group.assignment_epoch, group.assignment_timestamp_ms)
        for member in group.members.values():
            current = group_records.CurrentAssignment(member.member_epoch, member.previous_member_epoch, member.assignment)
            records[group_records.key(group_records.CURRENT_MEMBER_ASSIGNMENT, group_id, member.member_id)] = group_records.current_assignment_value(current)
        state_key = group_records.key(group_records.STATE_PARTITION_METADATA, group_id)
        topic_ids = [*group.topics, *(topic_id for topic_id in group.initialized if topic_id not in group.topics)]
        initializing = initializing or {}
        if deleting:
            if state_key in written:
                gone = tuple(group_records.TopicPartitions(topic_id, name) for topic_id in _map_order([*topic_ids, *initializing])
                             if (name := self._topic_name(topic_id)) is not None)
                records[state_key] = group_records.state_partitions_value(group_records.StatePartitions((), (), gone))
        elif topic_ids or initializing or deleting_topics or state_key in written:
            initialized = tuple(group_records.TopicPartitions(topic_id, group.topics.get(topic_id) or self._topic_name(topic_id) or "",
                                                               tuple(sorted(group.initialized.get(topic_id, ())))) for topic_id in _map_order(topic_ids))
            pending = tuple(group_records.TopicPartitions(topic_id, self._topic_name(topic_id) or "", tuple(sorted(initializing[topic_id])))
                            for topic_id in _map_order(list(initializing)))
            deleting_topics = deleting_topics or {}
            being_deleted = tuple(group_records.TopicPartitions(topic_id, deleting_topics[topic_id]) for topic_id in _map_order(list(deleting_topics)))
            records[state_key] = group_records.state_partitions_value(group_records.StatePartitions(pending, initialized, being_deleted))
        return records

    def _partition_record(self, key: PartitionKey, partition: SharePartition | None,
                          initialize: bool = False) -> tuple[tuple[bytes, bytes | None], tuple[ShareState, int] | None]:
        """The record persisting the share-partition `key` as it is now, and the state (with the
        updates since its snapshot) it leaves, at Kafka's ShareCoordinatorShard cadence: a
        ShareSnapshot at initialization (`initialize`, or no record yet) and every
        UPDATES_PER_SNAPSHOT updates, ShareUpdates between them (of every batch in flight:
        `ottla.server.share.records`), and a snapshot too when no update can express the change
        (a start offset moved back, in-flight records dropped); a tombstone for None."""
        if partition is None:
            return (encode_key(SNAPSHOT, *key), None), None
        batches = tuple(partition.snapshot())
        start, done = partition.start_offset, partition.delivery_complete()
        written = None if initialize else self._written.get(key)
        if written is not None and written[1] < UPDATES_PER_SNAPSHOT and extends(written[0], start, batches):
            update = StateUpdate(written[0].snapshot_epoch, self._leader_epoch(key), start, done, batches)
            return (encode_key(UPDATE, *key), encode_update(update)), (merge(written[0], update), written[1] + 1)
        previous = self._written.get(key)
        group = self.groups.get(key[0])
        now = self.wall_clock_ms()
        # An initialization records no deliveryCompleteCount, as Kafka's InitializeShareGroupState.
        if previous is None or initialize:
            state_epoch, done = (0 if group is None else group.group_epoch), -1
        else:
            state_epoch = previous[0].state_epoch
        snapshot_epoch = 0 if previous is None else previous[0].snapshot_epoch + 1
        state = ShareState(snapshot_epoch, state_epoch, self._leader_epoch(key), start, done, now, now, batches)
        return (encode_key(SNAPSHOT, *key), encode_snapshot(state)), (state, 0)

    def _persist_group(self, group: ShareGroup, initializing: Mapping[bytes, set[int]] | None = None, deleting: bool = False,
                       deleting_topics: Mapping[bytes, str] | None = None) -> None:
        """Write, as one batch on the group's `__consumer_offsets` partition, the group's
        records that changed since last written: tombstones first, a member's current
        assignment, target and metadata in that order, then the group's target epoch,
        initialized topics and epoch (as Kafka writes a leave and a deletion), then the
        records written anew (`_group_records`, of `initializing` and `deleting`)."""
        written = self._group_written.get(group.group_id, {})
        wanted = self._group_records(group, initializing, deleting, deleting_topics)
        rank = {group_records.CURRENT_MEMBER_ASSIGNMENT: 0, group_records.TARGET_ASSIGNMENT_MEMBER: 1, group_records.MEMBER_METADATA: 2,
                group_records.TARGET_ASSIGNMENT_METADATA: 3, group_records.STATE_PARTITION_METADATA: 4, group_records.GROUP_METADATA: 5}

        def tombstone_order(key: bytes) -> tuple[bool, str, int]:
            parsed = group_records.parse_key(key)
            assert parsed is not None
            return parsed.member_id is None, parsed.member_id or "", rank[parsed.record_type]

        gone = sorted((key for key in written if key not in wanted), key=tombstone_order)
        changes: list[KeyValue] = [(key, None) for key in gone]
        changes += [(key, value) for key, value in wanted.items() if written.get(key) != value]
        if not changes:
            return
        self._unwritten.add(group.group_id)
        self._offsets_log().append(group.group_id, changes, self.wall_clock_ms())
        self._unwritten.discard(group.group_id)
        if wanted:
            self._group_written[group.group_id] = wanted
        else:
            self._group_written.pop(group.group_id, None)

    def _persist_partition(self, key: PartitionKey, initialize: bool = False) -> None:
        """Persist the share-partition as it is now; an update that would change nothing is not written."""
        before = self._written.get(key)
        record, written = self._partition_record(key, self.partitions.get(key), initialize)
        if before is not None and written is not None and written[1] > 0 and written[0] == before[0]:
            return
        self._append(share_state_key(*key), [record])
        if written is None:
            self._written.pop(key, None)
        else:
            self._written[key] = written

    def _snapshot_cold_partitions(self) -> None:
        """ShareCoordinatorShard.snapshotColdPartitions, each cold.partition.snapshot.interval.ms:
        per partition of the state log, unless every share-partition there was snapshotted so
        already (its write timestamp moved off its create timestamp, which a snapshot written for
        a change sets equal), each one whose state was last snapshotted an interval ago or more
        is snapshotted again as it stands, at the next snapshot epoch and written now, in one
        batch per partition (in the order this broker met them; Kafka's is its map's). Over a
        database only the share-partitions of the topic partitions this broker leads: a copy of
        another's (AlterShareGroupOffsets through the group's coordinator) is not the record.
        A write the log refuses is only logged."""
        state_log, now = self._state_log(), self.wall_clock_ms()
        by_partition: dict[int, list[PartitionKey]] = {}
        for key in self._written:
            if state_log.journal is not None and key[1:] not in self.led:
                continue
            by_partition.setdefault(state_log.partition_for(share_state_key(*key)), []).append(key)
        for keys in by_partition.values():
            states = {key: self._written[key][0] for key in keys}
            if all(state.create_timestamp != state.write_timestamp for state in states.values()):
                continue
            cold = {key: replace(state, snapshot_epoch=state.snapshot_epoch + 1, write_timestamp=now) for key, state in states.items()
                    if now - state.write_timestamp >= self.config.cold_snapshot_interval_ms}
            if not cold:
                continue
            try:
                self._append(share_state_key(*keys[0]), [(encode_key(SNAPSHOT, *key), encode_snapshot(state)) for key, state in cold.items()])
            except KafkaError as exc:
                log.warning("could not snapshot idle share-partitions: %s", exc)
                continue
            # The updates since the last snapshot keep counting: Kafka's handleShareSnapshot
            # resets the count only once it reached records.per.snapshot.
            self._written.update((key, (state, self._written[key][1])) for key, state in cold.items())

    def _new_partition(self, key: PartitionKey, start_offset: int) -> SharePartition:
        limits = self._limits(key[0])

        def released(partition: SharePartition) -> None:
            try:
                self._persist_partition(key)
            except KafkaError as exc:
                log.warning("could not persist share-partition %s: %s", key, exc)
            self._dead_letter(key, partition)
            name = self._topic_name(key[1])
            if name is not None:
                self.notify_data(name, key[2])

        return SharePartition(start_offset, self.timers, limits, released)

    def _leader_epoch(self, key: PartitionKey) -> int:
        """The leader epoch of the share-partition's topic partition, as Kafka's records carry it."""
        name = self._topic_name(key[1])
        return 0 if name is None else int(self.storage.partition(name, key[2]).leader_epoch)

    def _topic_name(self, topic_id: bytes) -> str | None:
        info = self.storage.topic_by_id(topic_id)
        return None if info is None else info.name

    # --- membership -------------------------------------------------------------------

    def heartbeat(self, group_id: str, member_id: str, member_epoch: int, rack_id: str | None,
                  subscribed_topic_names: list[str] | None, client_id: str,
                  client_host: str) -> tuple[ErrorCode, ShareMember | None, Assignment | None]:
        """ShareGroupHeartbeat: join with epoch 0, leave with -1, else heartbeat with the
        epoch last given (or the one before it). The member returned carries its epoch and assignment; the
        assignment is returned too when the answer must carry it (a join, or a change).
        A fenced heartbeat (FENCED_MEMBER_EPOCH) returns the member as it is, unchanged.
        Only a join creates the group: otherwise a missing group is GROUP_ID_NOT_FOUND
        before the member is looked for (GroupMetadataManager.getOrMaybeCreateShareGroup)."""
        if not group_id:
            return ErrorCode.INVALID_REQUEST, None, None
        if not member_id:
            return ErrorCode.INVALID_REQUEST, None, None
        group = self.groups.get(group_id)
        if group is None and member_epoch != 0:
            return ErrorCode.GROUP_ID_NOT_FOUND, None, None
        if member_epoch == -1:
            assert group is not None
            member = group.members.get(member_id)
            if member is None:
                return ErrorCode.UNKNOWN_MEMBER_ID, None, None
            self._remove_member(group, member)
            member.member_epoch = -1
            return ErrorCode.NONE, member, None
        changed = False
        if member_epoch == 0:
            if subscribed_topic_names is None:
                return ErrorCode.INVALID_REQUEST, None, None
            if group is None:
                # A new group starts at epoch 1, as one AlterShareGroupOffsets creates does.
                group = ShareGroup(group_id, group_epoch=1, assignment_epoch=1)
            member = group.members.get(member_id)
            if member is None:
                if len(group.members) >= self.config.max_size:
                    return ErrorCode.GROUP_MAX_SIZE_REACHED, None, None
                member = ShareMember(member_id, 0, client_id, client_host, rack_id, list(subscribed_topic_names))
                group.members[member_id] = member
                changed = True
            else:
                changed = set(member.subscribed_topic_names) != set(subscribed_topic_names)
                member.subscribed_topic_names = list(subscribed_topic_names)
            self.groups[group_id] = group
        else:
            assert group is not None
            member = group.members.get(member_id)
            if member is None:
                return ErrorCode.UNKNOWN_MEMBER_ID, None, None
            # GroupMetadataManager.throwIfShareGroupMemberEpochIsInvalid: greater is fenced, smaller
            # only when it is not the previous epoch.
            if member_epoch > member.member_epoch or (member_epoch < member.member_epoch and member_epoch != member.previous_member_epoch):
                return ErrorCode.FENCED_MEMBER_EPOCH, member, None  # the member, for the error's message
            if subscribed_topic_names is not None:
                changed = set(member.subscribed_topic_names) != set(subscribed_topic_names)
                member.subscribed_topic_names = list(subscribed_topic_names)
        before = (member.rack_id, group.group_epoch, group.assignment_epoch, group.assigned_at, member.member_epoch)
        if rack_id is not None:
            member.rack_id = rack_id
        previous = member.assignment
        try:
            self._update(group, changed)
            # ShareGroupAssignmentBuilder: the member takes its target at a new epoch, or keeps
            # its epoch when its subscription changed; either way only of topics it subscribes to.
            if member.member_epoch != group.assignment_epoch:
                member.previous_member_epoch, member.member_epoch = member.member_epoch, group.assignment_epoch
                member.assignment = self._subscribed(group.target.get(member_id, {}), member.subscribed_topic_names)
            elif changed:
                member.assignment = self._subscribed(group.target.get(member_id, {}), member.subscribed_topic_names)
            initializing = self._initializing(group)
            # Only this member's records and the group's can have changed, and only with one of
            # these: a heartbeat that changes none of them (nor failed to write before) writes nothing.
            after = (member.rack_id, group.group_epoch, group.assignment_epoch, group.assigned_at, member.member_epoch)
            if changed or initializing or after != before or member.assignment != previous or group_id in self._unwritten:
                self._persist_group(group, initializing)
            if initializing:
                self._initialize_state(group, initializing)
                for topic_id, partitions in initializing.items():
                    group.initialized.setdefault(topic_id, set()).update(partitions)
                self._persist_group(group)
        except KafkaError as exc:
            return exc.code, None, None
        self._arm_session(group, member)
        # GroupMetadataManager.shareGroupHeartbeat: a join, a heartbeat naming its subscription, or a change.
        sent = member.assignment if member_epoch == 0 or subscribed_topic_names is not None or member.assignment != previous else None
        return ErrorCode.NONE, member, sent

    def _subscribed(self, assignment: Assignment, names: list[str]) -> Assignment:
        """ShareGroupAssignmentBuilder.filterAssignedPartitions: `assignment` but the topics
        not among `names` (a target computed before a subscription changed holds them)."""
        ids = {info.topic_id for name in names if (info := self.storage.topic(name)) is not None}
        return {topic_id: partitions for topic_id, partitions in assignment.items() if topic_id in ids}

    def _update(self, group: ShareGroup, changed: bool) -> None:
        """Bump the group epoch when the membership, a subscription or the subscribed topics'
        metadata hash changed (as Kafka compares it with the one its epoch record keeps: also
        after a load, for a topic changed meanwhile), or when no assignment is pending and
        partitions were initialized that the target does not hold yet; then recompute the
        target assignment if it lags and the assignment interval has passed since the last
        (the caller persists the group)."""
        metadata_hash = self._metadata_hash(group)
        pending = group.assignment_epoch >= group.group_epoch and self._initialized_assignment_pending(group)
        if changed or pending or metadata_hash != group.metadata_hash:
            group.group_epoch += 1
            group.metadata_hash = metadata_hash
        if group.assignment_epoch >= group.group_epoch:
            return
        now = self.timers.now()
        interval_s = int(self.group_config(group.group_id, "share.assignment.interval.ms")) / 1000
        if group.assigned_at is not None and now - group.assigned_at < interval_s:
            return
        names = {topic_id: name for name in group.subscribed_topics() if (info := self.storage.topic(name)) is not None
                 for topic_id in [info.topic_id]}
        partitions = {names[topic_id]: (topic_id, indexes) for topic_id, indexes in self._assignable(group).items()}
        group.target = assign({m.member_id: m.subscribed_topic_names for m in group.members.values()}, partitions, group.target)
        group.assignment_epoch = group.group_epoch
        group.assigned_at = now
        # Kafka stamps an assignment its assignor made; a group without members needs none.
        group.assignment_timestamp_ms = self.wall_clock_ms() if group.members else 0

    def _initialized_assignment_pending(self, group: ShareGroup) -> bool:
        """GroupMetadataManager.initializedAssignmentPending: the group has members, and a topic
        they subscribe to has initialized partitions other than those its target assignment
        holds (an initialization completed after the target was computed)."""
        if not group.members or not group.initialized:
            return False
        subscribed = group.subscribed_topics()
        targeted: dict[bytes, set[int]] = {}
        for assignment in group.target.values():
            for topic_id, partitions in assignment.items():
                targeted.setdefault(topic_id, set()).update(partitions)
        return any(targeted.get(topic_id) != partitions for topic_id, partitions in group.initialized.items()
                   if (group.topics.get(topic_id) or self._topic_name(topic_id)) in subscribed)

    def _assignable(self, group: ShareGroup) -> dict[bytes, list[int]]:
        """The subscribed topics' partitions whose share state is initialized, by topic id."""
        assignable = {}
        for name in group.subscribed_topics():
            info = self.storage.topic(name)
            if info is not None:
                indexes = sorted(i for i in group.initialized.get(info.topic_id, ()) if i < info.partitions)
                if indexes:
                    assignable[info.topic_id] = indexes
        return assignable

    def _metadata_hash(self, group: ShareGroup) -> int:
        """ModernGroup.computeMetadataHash of the subscribed topics that exist, over each
        partition's replicas' racks (`kafka_topic_hash_placed`)."""
        hashes = {}
        for name in group.subscribed_topics():
            info = self.storage.topic(name)
            if info is not None:
                hashes[name] = kafka_topic_hash_placed(bytes(info.topic_id), name, info.partitions, self.config.broker_rack, self.partition_racks)
        return kafka_group_hash(hashes)

    def _initializing(self, group: ShareGroup) -> dict[bytes, set[int]]:
        """The subscribed partitions not yet initialized, by topic id: the heartbeat writes them
        as initializing, then their share state (`_initialize_state`, in-process), then as
        initialized, in the next batch, as Kafka writes them once its persister answered. They become
        assignable from the group's next heartbeat (their start offsets are still chosen at the
        first fetch, by share.auto.offset.reset)."""
        pending = {}
        for name in group.subscribed_topics():
            info = self.storage.topic(name)
            if info is not None:
                missing = set(range(info.partitions)) - group.initialized.get(info.topic_id, set())
                if missing:
                    pending[info.topic_id] = missing
        return pending

    def _initialize_state(self, group: ShareGroup, initializing: Mapping[bytes, set[int]]) -> None:
        """Kafka's InitializeShareGroupState for the partitions the heartbeat wrote as
        initializing, before it writes them initialized: each share-partition's ShareSnapshot
        (ShareCoordinatorShard.initializeState, ShareGroupOffset.fromRequest) with no start
        offset yet (-1: the first fetch picks it by share.auto.offset.reset and writes it in an
        update), the group epoch as state epoch, leader epoch 0, no batches nor
        deliveryCompleteCount, in a batch of its own on its key's partition. A share-partition
        this broker already holds state of (a fetch made it first) keeps it. Over a database,
        the state is remembered only by the leader of its topic partition, its owner."""
        state_log, now = self._state_log(), self.wall_clock_ms()
        for topic_id in _map_order(list(initializing)):
            for index in sorted(initializing[topic_id]):
                key = (group.group_id, topic_id, index)
                if key in self.partitions or key in self._written:
                    continue
                state = ShareState(0, group.group_epoch, 0, -1, -1, now, now, ())
                self._append(share_state_key(*key), [(encode_key(SNAPSHOT, *key), encode_snapshot(state))])
                if state_log.journal is None or key[1:] in self.led:
                    self._written[key] = (state, 0)

    def _arm_session(self, group: ShareGroup, member: ShareMember) -> None:
        Timers.cancel(member.session_timer)
        session_ms = int(self.group_config(group.group_id, "share.session.timeout.ms"))
        member.session_timer = self.timers.after(session_ms, self._session_expired, group, member)

    def _session_expired(self, group: ShareGroup, member: ShareMember) -> None:
        if group.members.get(member.member_id) is member:
            log.info("share group %s: member %s timed out", group.group_id, member.member_id)
            try:
                self._remove_member(group, member)
            except KafkaError as exc:
                log.warning("could not remove member %s of share group %s: %s", member.member_id, group.group_id, exc)

    def _remove_member(self, group: ShareGroup, member: ShareMember) -> None:
        """The member leaves or is fenced, as GroupMetadataManager.shareGroupFenceMember writes
        it in one batch: its records' tombstones and the next group epoch, with the hash of the
        topics the others subscribe to. The target assignment is left to the next heartbeat,
        but for a group left empty: its target epoch moves to the group's, with no timestamp
        (no assignor ran), so that the next join is assigned at once. Its share sessions and
        what it acquired stay: as on Kafka, only a session's end (a final ShareAcknowledge or
        ShareFetch, its connection closing) or the acquisition lock's expiry releases records,
        so a consumer's last acknowledgements, sent beside its leave, still count."""
        Timers.cancel(member.session_timer)
        del group.members[member.member_id]
        group.target.pop(member.member_id, None)
        group.group_epoch += 1
        group.metadata_hash = self._metadata_hash(group)
        if not group.members:
            group.assignment_epoch, group.assignment_timestamp_ms, group.assigned_at = group.group_epoch, 0, None
        self._persist_group(group)

    def release_member(self, group_id: str, member_id: str, only: Collection[tuple[bytes, int]] | None = None) -> None:
        """Release what the member holds: of every share-partition of the group, or `only` of
        those (topic id, partition)."""
        for key, partition in list(self.partitions.items()):
            if key[0] == group_id and (only is None or key[1:] in only) and partition.release_member(member_id):
                self._persist_partition(key)
                self._dead_letter(key, partition)
                name = self._topic_name(key[1])
                if name is not None:
                    self.notify_data(name, key[2])

    # --- records --------------------------------------------------------------------

    def share_partition(self, group_id: str, topic_id: bytes, index: int, read_committed: bool,
                        found: list[tuple[int, int] | None] | None = None) -> SharePartition:
        """The group's share-partition, initialized at first use, or when AlterShareGroupOffsets
        gave it a negative start, from share.auto.offset.reset (latest: the end of what a
        consumer may read; earliest: the log start; by_duration: the first record no older
        than the duration, else the end; `found` holds that lookup's answer when it was made
        beforehand, a database round trip: `_start_lookup`)."""
        key = (group_id, topic_id, index)
        partition = self.partitions.get(key)
        if partition is None or partition.start_offset < 0:
            name = self._topic_name(topic_id)
            if name is None:
                raise KafkaError(ErrorCode.UNKNOWN_TOPIC_ID)
            start = self._reset_offset(group_id, name, index, read_committed, found)
            if partition is None:
                partition = self._new_partition(key, start)
                self.partitions[key] = partition
            else:
                partition.reset_start(start)
            group = self.groups.get(group_id)
            if group is not None and topic_id not in group.topics:
                group.topics[topic_id] = name
                self._persist_group(group)
            # One initialized without a start (`_initialize_state`) keeps the start picked in
            # memory, as Kafka's SharePartition does: its first write persists it.
            written = self._written.get(key)
            if written is None or written[0].start_offset >= 0:
                self._persist_partition(key)
        return partition

    def _reset_offset(self, group_id: str, topic: str, index: int, read_committed: bool, found: list[tuple[int, int] | None] | None) -> int:
        log_ = self.storage.partition(topic, index)
        reset = str(self.group_config(group_id, "share.auto.offset.reset"))
        end = log_.last_stable_offset if read_committed else log_.high_watermark
        if reset == "earliest":
            return log_.log_start_offset
        if reset.startswith("by_duration:"):
            hit = found[0] if found is not None else log_.offset_for_timestamp(self._reset_time(reset))
            return end if hit is None else min(hit[1], end)
        return end

    def _reset_time(self, reset: str) -> int:
        return self.wall_clock_ms() - _duration_ms(reset.removeprefix("by_duration:"))

    def _start_lookup(self, group_id: str, topic: str, topic_id: bytes, index: int) -> Awaitable[tuple[int, int] | None] | None:
        """On an engine whose reads are coroutines, the lookup by time a share-partition still
        to initialize from share.auto.offset.reset=by_duration needs first; else None."""
        partition = self.partitions.get((group_id, topic_id, index))
        reset = str(self.group_config(group_id, "share.auto.offset.reset"))
        if not self.storage.is_async or not reset.startswith("by_duration:") or (partition is not None and partition.start_offset >= 0):
            return None
        lookup = self.storage.partition(topic, index).offset_for_timestamp(self._reset_time(reset))
        return cast(Awaitable[tuple[int, int] | None], lookup) if inspect.isawaitable(lookup) else None

    def moved_since_looked(self, group_id: str, topic_id: bytes, index: int) -> bool:
        """Whether the share-partition's next fetch offset moved since a ShareFetch last looked
        at it (Kafka: its fetchOffsetMetadata no longer matches; none yet for a new one)."""
        partition = self.partitions.get((group_id, topic_id, index))
        return partition is None or partition.looked_at != partition.next_fetch_offset()

    def look(self, group_id: str, topic_id: bytes, index: int, read_committed: bool) -> None:
        """A ShareFetch looked at the share-partition without acquiring from it (its
        max_records already spent): Kafka reads it all the same, and makes it first if it is
        not made yet (SharePartitionManager.processShareFetch makes every partition a fetch
        names, starting it from share.auto.offset.reset then). A by_duration start on an
        engine whose reads are coroutines waits for the first acquire (its lookup by time is
        a round trip)."""
        partition = self.partitions.get((group_id, topic_id, index))
        if partition is None or partition.start_offset < 0:
            by_time = self.storage.is_async and str(self.group_config(group_id, "share.auto.offset.reset")).startswith("by_duration:")
            if by_time or (topic_id, index) in self.loading or self._topic_name(topic_id) is None:
                return
            partition = self.share_partition(group_id, topic_id, index, read_committed)
        partition.looked_at = partition.next_fetch_offset()

    def acquire(self, group_id: str, member_id: str, topic: str, topic_id: bytes, index: int,
                max_records: int, max_bytes: int, read_committed: bool, whole_batches: bool = True,
                batch_size: int | None = None, found: list[tuple[int, int] | None] | None = None,
                looking: bool = False) -> Acquired | Awaitable[Acquired]:
        """Read the log where the share-partition next hands records out and acquire what
        was read for `member_id`. Raises KafkaError (unknown topic, storage). On an engine whose
        reads are coroutines (PostgreSQL) the answer is awaitable: what was read is acquired
        once it has arrived, from the share-partition as it is then (and a share-partition
        that starts by_duration awaits its lookup by time first, then acquires with it as
        `found`). New records are acquired in ranges of `batch_size` records or more
        (ShareFetch's BatchSize; `SharePartition.acquire`). Nothing is acquired from a partition
        whose share state is being read again (`leader_moved`). `looking`: the read is the
        look a ShareFetch takes at a partition whose next fetch offset moved (`moved_since_looked`)."""
        if (topic_id, index) in self.loading:
            return Acquired(b"", [])
        lookup = self._start_lookup(group_id, topic, topic_id, index) if found is None else None
        if lookup is not None:
            return self._acquire_when_found(lookup, group_id, member_id, topic, topic_id, index, max_records, max_bytes,
                                            read_committed, whole_batches, batch_size, looking)
        partition = self.share_partition(group_id, topic_id, index, read_committed, found)
        partition.limits = self._limits(group_id)
        log_ = self.storage.partition(topic, index)
        if partition.start_offset < log_.log_start_offset:
            partition.archive_before(log_.log_start_offset)
        offset = partition.next_fetch_offset()
        if looking:
            partition.looked_at = offset
        stable = log_.last_stable_offset if read_committed else None
        if offset >= (log_.high_watermark if stable is None else stable):
            return Acquired(b"", [])
        result = log_.read(offset, max_bytes, min_one=True, max_offset=stable)
        read = _Read(group_id, member_id, topic, topic_id, index, offset, stable, max_records, whole_batches, batch_size)
        if inspect.isawaitable(result):
            return self._acquire_when_read(partition, read, result)
        return self._acquire_read(partition, read, result)

    async def _acquire_when_found(self, lookup: Awaitable[tuple[int, int] | None], group_id: str, member_id: str, topic: str,
                                  topic_id: bytes, index: int, max_records: int, max_bytes: int, read_committed: bool,
                                  whole_batches: bool, batch_size: int | None, looking: bool) -> Acquired:
        by_time = await lookup
        got = self.acquire(group_id, member_id, topic, topic_id, index, max_records, max_bytes, read_committed, whole_batches,
                           batch_size, [by_time], looking)
        return got if isinstance(got, Acquired) else await got

    async def _acquire_when_read(self, partition: SharePartition, read: _Read, result: Awaitable[ReadResult]) -> Acquired:
        read_result = await result
        if self.partitions.get((read.group_id, read.topic_id, read.index)) is not partition:
            return Acquired(b"", [])  # dropped or started afresh meanwhile: its next fetch reads again
        return self._acquire_read(partition, read, read_result)

    def _acquire_read(self, partition: SharePartition, read: _Read, result: ReadResult) -> Acquired:
        data = b"".join(chunk.read() if isinstance(chunk, FileRegion) else bytes(chunk) for chunk in result.chunks)
        log_ = self.storage.partition(read.topic, read.index)
        # A read_committed group acquires an aborted transaction's records and archives them at
        # once, never handing them out (`SharePartition.acquire`); their batches are still sent
        # when between acquired ones (`_sent_batches`). Control batches (transaction markers,
        # the abort marker too) are acquired as any batch, as Kafka 4.4's SharePartition.acquire
        # takes every batch read: a consumer acknowledges them as GAP.
        transactions = [] if read.stable is None else log_.aborted_transactions(read.offset, read.stable)
        batches = list(scan_batches(data))
        offsets = [(header.base_offset, header.base_offset + header.last_offset_delta) for header, _ in batches]
        aborted = [span for span, (header, _) in zip(offsets, batches) if not header.is_control and header.is_transactional and any(
            a.producer_id == header.producer_id and a.first_offset <= header.base_offset <= a.last_offset for a in transactions)]
        # Records of aborted transactions archived while nothing was handed out change the
        # share-partition all the same.
        before = (partition.start_offset, partition.snapshot()) if aborted else None
        ranges = partition.acquire(read.member_id, offsets, read.max_records if read.max_records > 0 else _DEFAULT_MAX_RECORDS,
                                   read.whole_batches, read.batch_size, aborted)
        archived = before is not None and (partition.start_offset, partition.snapshot()) != before
        if not ranges:
            if archived:
                self._persist_partition((read.group_id, read.topic_id, read.index))
            return Acquired(b"", [], archived)
        self._persist_partition((read.group_id, read.topic_id, read.index))
        return Acquired(_sent_batches(batches, ranges[0].first_offset, ranges[-1].last_offset), ranges, archived)

    def acknowledge(self, group_id: str, member_id: str, topic_id: bytes, index: int,
                    batches: list[tuple[int, int, list[int]]], allow_renew: bool) -> tuple[ErrorCode, str | None]:
        """Apply a partition's acknowledgement batches, all or none, as Kafka's SharePartition
        rolls back every transition of a request when one fails: the batches must ascend
        without overlapping (KafkaApis.validateAcknowledgementBatches: INVALID_REQUEST), and
        each is checked before any is applied, the first refused one being the partition's
        error. Persisted before it is answered. KafkaApis validates the batches' shape before
        any share-partition is looked up: each names at least one type, one for all its
        offsets or one per offset, and none unknown. The error comes with the message Kafka
        4.4 gives it where this knows it (`_refusal`). KafkaApis refuses only a batch starting
        below the previous one's last offset (the first's "previous end" is -1): a batch may
        start at the offset the previous one ends at, and Kafka's SharePartition then finds that
        offset no longer acquired, unless the earlier batch renewed it. A RENEW batch of a group
        whose share.renew.acknowledge.enable is false gets past KafkaApis and is refused by
        SharePartition once the member is found to hold it (`_RENEW_DISABLED`)."""
        renew_enabled = bool(self.group_config(group_id, "share.renew.acknowledge.enable"))
        if malformed(batches, allow_renew):
            return ErrorCode.INVALID_REQUEST, None
        partition = self.partitions.get((group_id, topic_id, index))
        if partition is None:
            # SharePartitionManager.acknowledge: no share-partition of the group here.
            return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, default_message(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
        partition.limits = self._limits(group_id)
        settled: set[int] = set()  # offsets an earlier batch of this request no longer leaves acquired
        for first, last, types in batches:
            refusal = _refusal(partition, first)
            if refusal is not None:
                return ErrorCode.INVALID_RECORD_STATE, refusal
            error = partition.check_acknowledgement(member_id, first, last, types)
            if error is ErrorCode.INVALID_REQUEST:
                # The types were checked above: the batch reaches past what was handed out.
                return error, _PAST_FIRST if first >= partition.end_offset else _PAST_LAST
            if error is not ErrorCode.NONE:
                return error, partition.refusal(member_id, first, last)
            if not renew_enabled and AcknowledgeType.RENEW in types:
                return ErrorCode.INVALID_RECORD_STATE, _RENEW_DISABLED
            # Checked, so within what was handed out: a bounded range.
            offsets = range(max(first, partition.start_offset), last + 1)
            if any(offset in settled for offset in offsets):
                return ErrorCode.INVALID_RECORD_STATE, _NOT_ACQUIRED
            settled.update(o for o in offsets if (types[0] if len(types) == 1 else types[o - first]) != AcknowledgeType.RENEW)
        for first, last, types in batches:
            partition.acknowledge(member_id, first, last, types)
        if batches:
            try:
                self._persist_partition((group_id, topic_id, index))
            except KafkaError as exc:
                return exc.code, None
            self._dead_letter((group_id, topic_id, index), partition)
        return ErrorCode.NONE, None

    # --- dead-letter queues (KIP-1191) ---------------------------------------------------

    def _dead_letter(self, key: PartitionKey, partition: SharePartition) -> None:
        """Write what the share-partition archived by REJECT or at the delivery-count limit
        to the group's dead-letter topic (`errors.deadletterqueue.topic.name`), as Kafka 4.4
        does with share.version 2 (checked against the reference broker): one record each,
        stamped now, with the __dlq.errors.* headers, and the original key and value with
        `errors.deadletterqueue.copy.record.enable`; to the partition of the source's index
        (modulo the topic's count). Written after the acknowledgement is persisted, and
        best-effort, as Kafka's are: a record that cannot be written is logged, not retried."""
        archived = partition.take_archived()
        if not archived or not self.dead_letters():
            return
        group_id, topic_id, index = key
        name = self.group_config(group_id, "errors.deadletterqueue.topic.name")
        source = self._topic_name(topic_id)
        target = None if not name or source is None else self._dead_letter_topic(group_id, str(name))
        if source is None or target is None:
            return
        copy = bool(self.group_config(group_id, "errors.deadletterqueue.copy.record.enable"))
        if self.storage.is_async:
            # The database engine's reads and appends are coroutines: written by a task of
            # their own, still after the acknowledgement and as best-effort.
            task = asyncio.get_running_loop().create_task(self._write_dead_letters_later(group_id, source, index, target, archived, copy))
            self._dead_letter_writes.add(task)
            task.add_done_callback(self._dead_letter_writes.discard)
            return
        assert isinstance(target, TopicInfo)  # an awaitable only from an engine whose creations are coroutines
        originals = self._originals(source, index, archived) if copy else {}
        target_index = index % target.partitions
        log_ = self.storage.partition(target.name, target_index)
        for offset, delivery_count, reason in archived:
            try:
                log_.append(self._dead_letter_batch(group_id, source, index, offset, delivery_count, reason, originals))
            except KafkaError as exc:
                log.warning("share group %s: could not write offset %d of %s-%d to dead-letter topic %s: %s",
                            group_id, offset, source, index, target.name, exc)
                return
        self.notify_data(target.name, target_index)

    async def _write_dead_letters_later(self, group_id: str, source: str, index: int, target: TopicInfo | Awaitable[TopicInfo | None],
                                        archived: list[tuple[int, int, str]], copy: bool) -> None:
        """`_dead_letter`'s writes on an engine whose reads and appends are coroutines."""
        if not isinstance(target, TopicInfo):
            created = await target
            if created is None:
                return
            target = created
        try:
            originals = await self._originals_later(source, index, archived) if copy else {}
            target_index = index % target.partitions
            log_ = self.storage.partition(target.name, target_index)
            for offset, delivery_count, reason in archived:
                appended = log_.append(self._dead_letter_batch(group_id, source, index, offset, delivery_count, reason, originals))
                if inspect.isawaitable(appended):
                    await appended
        except KafkaError as exc:
            log.warning("share group %s: could not write records of %s-%d to dead-letter topic %s: %s", group_id, source, index, target.name, exc)
            return
        self.notify_data(target.name, target_index)

    def _dead_letter_batch(self, group_id: str, source: str, index: int, offset: int, delivery_count: int, reason: str,
                           originals: dict[int, tuple[bytes | None, bytes | None]]) -> bytes:
        headers = (("__dlq.errors.topic", source.encode()), ("__dlq.errors.partition", str(index).encode()),
                   ("__dlq.errors.offset", str(offset).encode()), ("__dlq.errors.group", group_id.encode()),
                   ("__dlq.errors.delivery.count", str(delivery_count).encode()), ("__dlq.errors.message", reason.encode()))
        record_key, value = originals.get(offset, (None, None))
        return bytes(build_batch([Record(0, self.wall_clock_ms(), record_key, value, headers)]))

    def _dead_letter_topic(self, group_id: str, name: str) -> TopicInfo | Awaitable[TopicInfo | None] | None:
        """The group's dead-letter topic if it may be written (Kafka 4.4's checks, whose
        refusals it logs): a name with the broker's prefix, not internal, of a topic that
        allows it (errors.deadletterqueue.group.enable) or that the broker may create. On an
        engine whose creations are coroutines, one to create is the coroutine that creates it."""
        prefix = self.config.dlq_topic_prefix
        if name.startswith("__") or not name.startswith(prefix):
            log.warning("share group %s: dead-letter topic %s must start with %r and not with '__'", group_id, name, prefix)
            return None
        info = self.storage.topic(name)
        if info is None and self.config.dlq_auto_create:
            if self.storage.is_async:
                return self._create_dead_letter_topic(group_id, name)
            try:
                info = self.storage.create_topic(name, self.config.num_partitions, {"errors.deadletterqueue.group.enable": "true"})
            except KafkaError as exc:
                log.warning("share group %s: could not create dead-letter topic %s: %s", group_id, name, exc)
                return None
        if info is None:
            log.warning("share group %s: dead-letter topic %s does not exist and auto create is disabled", group_id, name)
            return None
        if str(info.configs.get("errors.deadletterqueue.group.enable", "false")).lower() != "true":
            log.warning("share group %s: dead-letter topic %s does not set errors.deadletterqueue.group.enable", group_id, name)
            return None
        return info

    async def _create_dead_letter_topic(self, group_id: str, name: str) -> TopicInfo | None:
        """`_dead_letter_topic`'s creation over PostgreSQL: in the database, as CreateTopics
        creates topics there, so that every broker on it has it and it outlives a restart. One
        created meanwhile (another write's, another broker's) is judged as one found."""
        try:
            created: TopicInfo = await self.storage.create_database_topic(  # type: ignore[attr-defined]
                name, self.config.num_partitions, {"errors.deadletterqueue.group.enable": "true"})
        except KafkaError as exc:
            if exc.code is not ErrorCode.TOPIC_ALREADY_EXISTS or self.storage.topic(name) is None:
                log.warning("share group %s: could not create dead-letter topic %s: %s", group_id, name, exc)
                return None
            found = self._dead_letter_topic(group_id, name)  # a topic of the catalogue: never a coroutine
            return found if isinstance(found, TopicInfo) else None
        return created

    def _originals(self, topic: str, index: int, archived: list[tuple[int, int, str]]) -> dict[int, tuple[bytes | None, bytes | None]]:
        """The key and value of each archived offset still in the log."""
        wanted = {offset for offset, _, _ in archived}
        found: dict[int, tuple[bytes | None, bytes | None]] = {}
        log_ = self.storage.partition(topic, index)
        offset = max(min(wanted), log_.log_start_offset)
        while offset <= max(wanted) and offset < log_.high_watermark:
            following = _take_originals(log_.read(offset, 1 << 20, min_one=True), offset, wanted, found)
            if following is None:
                break
            offset = following
        return found

    async def _originals_later(self, topic: str, index: int, archived: list[tuple[int, int, str]]) -> dict[int, tuple[bytes | None, bytes | None]]:
        """`_originals` on an engine whose reads are coroutines."""
        wanted = {offset for offset, _, _ in archived}
        found: dict[int, tuple[bytes | None, bytes | None]] = {}
        log_ = self.storage.partition(topic, index)
        offset = max(min(wanted), log_.log_start_offset)
        while offset <= max(wanted) and offset < log_.high_watermark:
            read: Any = log_.read(offset, 1 << 20, min_one=True)
            following = _take_originals(await read if inspect.isawaitable(read) else read, offset, wanted, found)
            if following is None:
                break
            offset = following
        return found

    def close_session(self, node_id: int, group_id: str, member_id: str) -> None:
        """A share session ends (final epoch, or its connection closed): what the member holds
        of the session's partitions is released, as Kafka's SharePartitionManager.releaseSession
        does; what it holds through its sessions on other nodes stays acquired."""
        session = self.sessions.close(node_id, group_id, member_id)
        if session is not None:
            self.release_member(group_id, member_id, session.partitions)

    def connection_closed(self, connection: str) -> None:
        """A client connection closed: the share sessions it carried end, as Kafka 4.4 ends
        them on disconnect (a consumer killed holding records frees them now, not after
        their locks expire; checked against the reference broker)."""
        for session in self.sessions.on_connection(connection):
            try:
                self.close_session(session.node_id, session.group_id, session.member_id)
            except KafkaError as exc:
                log.warning("could not release share session of %s in %s: %s", session.member_id, session.group_id, exc)

    # --- admin ----------------------------------------------------------------------

    def group(self, group_id: str) -> ShareGroup:
        """The share group `group_id`, created empty (and persisted) when unknown."""
        group = self.groups.get(group_id)
        if group is None:
            group = ShareGroup(group_id, group_epoch=1, assignment_epoch=1)
            self._persist_group(group)
            self.groups[group_id] = group
        return group

    def start_offset(self, group_id: str, topic_id: bytes, index: int) -> int | None:
        partition = self.partitions.get((group_id, topic_id, index))
        return None if partition is None else partition.start_offset

    def state_summaries(self, group_id: str) -> dict[tuple[bytes, int], StateSummary]:
        """The state summary of each share-partition of the group, by (topic id, partition): as
        this broker holds it, else, among brokers over one database where another broker leads
        the topic partition, as its last record in the state log says (Kafka's group
        coordinator asks the share coordinator likewise, ReadShareGroupStateSummary; read the
        log again first, `read_state_again`)."""
        found: dict[tuple[bytes, int], StateSummary] = {}
        if self.storage.is_async:
            for key, written in self._fold(lambda key: key[0] == group_id).items():
                if written is not None:
                    found[key[1:]] = _summary(written[0])
        for key, partition in self.partitions.items():
            # A copy of a share-partition another broker leads (kept by AlterShareGroupOffsets
            # here, say) is older than its leader's records.
            if key[0] == group_id and (key[1:] in self.led or key[1:] not in found):
                written = self._written.get(key)
                # Initialized without a start and not written since: the start a fetch picked is
                # not persisted yet, and Kafka's share coordinator summarizes what is.
                unwritten = written is not None and written[0].start_offset == -1
                found[key[1:]] = StateSummary(-1, -1) if unwritten else StateSummary(partition.start_offset, partition.delivery_complete())
        # Those initialized and not fetched from yet: state without a share-partition.
        for key, (state, _updates) in self._written.items():
            if key[0] == group_id and key[1:] not in found:
                found[key[1:]] = _summary(state)
        return found

    def idle_partitions(self, group_id: str) -> dict[PartitionKey, bytes | None]:
        """The group's share-partitions this broker holds with nothing acquired, each with its
        state as records would persist it now: what `take_written_elsewhere` may replace."""
        return {key: _persisted(partition.start_offset, tuple(partition.snapshot())) for key, partition in self.partitions.items()
                if key[0] == group_id and not any(entry.state is RecordState.ACQUIRED for entry in partition.records.values())}

    def take_written_elsewhere(self, held: dict[PartitionKey, bytes | None]) -> None:
        """After `read_state_again`: a share-partition of `held` still as it was whose records
        in the log leave it otherwise were written by another broker (AlterShareGroupOffsets
        or DeleteShareGroupOffsets through the group's coordinator, which Kafka's share
        coordinator fences with a state epoch): it is rebuilt from them, or dropped for
        a tombstone, to start again from share.auto.offset.reset."""
        latest = self._fold(lambda key: key in held)
        for key, value in held.items():
            partition = self.partitions.get(key)
            if partition is None or key not in latest:
                continue
            written = latest[key]
            logged = None if written is None else _persisted(written[0].start_offset, written[0].batches)
            if logged == value or _persisted(partition.start_offset, tuple(partition.snapshot())) != value:
                continue
            self.partitions.pop(key).reset_start(0)
            self._restore(key, written)

    def read_state_again(self) -> Awaitable[None] | None:
        """Over a database, read the state log again (what other brokers wrote since); None
        on the local engine, whose log is read in place."""
        journal = self._state_log().journal
        return None if journal is None else journal.reload(0, lambda index: self._take_unheld_from_log())

    def holds_no_state(self, group_id: str, keys: Iterable[tuple[bytes, int]]) -> bool:
        """Whether this broker leads one of the (topic id, partition)s `keys` among brokers
        over one database and holds nothing of the group's share-partition there: its state,
        if any, is in the state log alone (`read_state_again` takes it)."""
        return any(key in self.led and (group_id, *key) not in self.partitions for key in keys)

    def _take_unheld_from_log(self) -> None:
        """After the state log was read again: each share-partition of a topic partition this
        broker leads and holds no share-partition of is taken as its records leave it (their
        group's coordinator may have initialized or altered it since), as Kafka's leader reads
        its state from the share coordinator (ReadShareGroupState) before its first fetch."""
        for key, written in self._fold(lambda key: key[1:] in self.led and key not in self.partitions).items():
            self._restore(key, written)

    def alter_start_offset(self, group_id: str, topic_id: bytes, index: int, offset: int) -> None:
        """AlterShareGroupOffsets: the partition starts afresh at `offset` (group must be empty).
        Any offset is kept, as Kafka 4.4 keeps it: one below the log start starts the next
        fetch at the log start, one past the end waits for records there, and a negative one
        is read as no start at all (share.auto.offset.reset decides at the next fetch)."""
        key = (group_id, topic_id, index)
        partition = self.partitions.get(key)
        if partition is None:
            partition = self._new_partition(key, offset)
            self.partitions[key] = partition
        partition.reset_start(offset)
        group = self.groups[group_id]
        name = self._topic_name(topic_id)
        if name is not None and (topic_id not in group.topics or index not in group.initialized.get(topic_id, ())):
            group.topics[topic_id] = name
            group.initialized.setdefault(topic_id, set()).add(index)
            self._persist_group(group)
        self._persist_partition(key, initialize=True)

    def delete_offsets(self, group_id: str, topic_ids: list[bytes]) -> dict[bytes, ErrorCode]:
        """DeleteShareGroupOffsets of the initialized topics `topic_ids` of the (empty) group,
        written as Kafka 4.4 writes it: a ShareGroupStatePartitionMetadata with them deleting
        rather than initialized (written even unchanged, for no topic at all, as
        GroupMetadataManager.sharePartitionsEligibleForOffsetDeletion writes it whenever the
        group has that record), their share-partitions' tombstones, then, if there were
        topics, the record without those deleted (completeDeleteShareGroupOffsets). The next
        fetch of a topic initializes it again. Returns the error of each topic not deleted: all,
        when the first record could not be written; else those whose state could not be, which
        stay deleting."""
        group = self.groups[group_id]
        names = {topic_id: group.topics.get(topic_id) or self._topic_name(topic_id) or "" for topic_id in topic_ids}
        held = {topic_id: (group.topics.pop(topic_id, None), group.initialized.pop(topic_id, None)) for topic_id in topic_ids}
        written = self._group_written.get(group_id, {})
        state_key = group_records.key(group_records.STATE_PARTITION_METADATA, group_id)
        if state_key in written:
            value = self._group_records(group, deleting_topics=names)[state_key]
            try:
                self._offsets_log().append(group_id, [(state_key, value)], self.wall_clock_ms())
            except KafkaError as exc:
                for topic_id, (name, partitions) in held.items():
                    if name is not None:
                        group.topics[topic_id] = name
                    if partitions is not None:
                        group.initialized[topic_id] = partitions
                return {topic_id: exc.code for topic_id in topic_ids}
            written[state_key] = value
        failed: dict[bytes, ErrorCode] = {}
        for topic_id in topic_ids:
            try:
                self._drop_partition_state(group_id, topic_id)
            except KafkaError as exc:
                failed[topic_id] = exc.code
        if topic_ids:
            self._persist_group(group, deleting_topics={topic_id: names[topic_id] for topic_id in failed})
        return failed

    def delete_partition_state(self, group_id: str, topic_id: bytes) -> None:
        """The group forgets the topic (deleted), in one record, as Kafka's
        maybeCleanupShareGroupState writes it: the next fetch initializes it."""
        self._drop_partition_state(group_id, topic_id)
        group = self.groups.get(group_id)
        if group is not None and (group.topics.pop(topic_id, None), group.initialized.pop(topic_id, None)) != (None, None):
            self._persist_group(group)

    def _drop_partition_state(self, group_id: str, topic_id: bytes) -> None:
        """The tombstones of the group's share-partitions of the topic, with those initialized
        and not fetched from yet, which have state but no share-partition."""
        for key in [k for k in dict.fromkeys([*self.partitions, *self._written]) if k[0] == group_id and k[1] == topic_id]:
            partition = self.partitions.pop(key, None)
            if partition is not None:
                partition.reset_start(0)
            self._persist_partition(key)

    def on_topic_deleted(self, topic: TopicInfo) -> None:
        """A topic is gone (Storage.deletion_listeners), as Kafka 4.4's coordinators learn it
        from the metadata update: every share group forgets it (GroupMetadataManager.
        maybeCleanupShareGroupState drops it from the groups' initialized topics) and its
        share-partitions' state goes, by tombstones (ShareCoordinatorShard.maybeCleanupShareState),
        so that neither a restart nor the log's compaction keeps them. A write the log refuses
        is only logged, as Kafka logs it."""
        holders = {key[0] for key in self.partitions if key[1] == topic.topic_id}
        holders.update(group_id for group_id, group in self.groups.items() if topic.topic_id in group.topics or topic.topic_id in group.initialized)
        for group_id in sorted(holders):
            try:
                self.delete_partition_state(group_id, topic.topic_id)
            except KafkaError as exc:
                log.warning("could not delete the share state of deleted topic %s in group %s: %s", topic.name, group_id, exc)

    def delete_group(self, group_id: str) -> ErrorCode:
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.GROUP_ID_NOT_FOUND
        if group.members:
            return ErrorCode.NON_EMPTY_GROUP
        # Its topics as deleting first, in a batch of their own, as Kafka writes them before its
        # persister deletes their state and the group's tombstones follow.
        self._persist_group(group, deleting=True)
        # Each share-partition's tombstone on its own partition of the state log, with those of
        # the share-partitions other brokers wrote (their leaders drop their copies at the
        # group's next session there: `take_written_elsewhere`).
        for topic_id, index in self.state_summaries(group_id):
            key = (group_id, topic_id, index)
            partition = self.partitions.pop(key, None)
            if partition is not None:
                partition.reset_start(0)
            self._written.pop(key, None)
            self._append(share_state_key(*key), [self._partition_record(key, None)[0]])
        if group_id in self._legacy:
            self._append(group_id, [(json.dumps(["group", group_id]).encode(), None)])
            self._legacy.discard(group_id)
        group.dead = True
        try:
            self._persist_group(group)
        except KafkaError:
            group.dead = False
            raise
        del self.groups[group_id]
        return ErrorCode.NONE


def malformed(batches: list[tuple[int, int, list[int]]], allow_renew: bool) -> bool:
    """Whether KafkaApis.validateAcknowledgementBatches refuses a partition's acknowledgement
    batches (INVALID_REQUEST): one starts below the previous one's last offset or past its own
    last, names no type, neither one type for all its offsets nor one per offset, an unknown
    type, or RENEW where none is allowed."""
    previous_last = -1
    for first, last, types in batches:
        if (first < previous_last or first > last or not types or len(types) not in (1, last - first + 1)
                or any(t not in AcknowledgeType._value2member_map_ for t in types) or (not allow_renew and AcknowledgeType.RENEW in types)):
            return True
        previous_last = last
    return False


# The messages of Kafka 4.4's refusals of an acknowledgement batch: SharePartition.fetchSubMapForAcknowledgementBatch's.
_NOT_CACHED = "Batch record not found. The request batch offsets are not found in the cache."
_NOT_ACQUIRED = "The offset cannot be acknowledged. The offset is not acquired."
_PAST_FIRST = "Batch record not found. The first offset in request is past acquired records."
_PAST_LAST = "Batch record not found. The last offset in request is past acquired records."
_RENEW_DISABLED = "Renewing acquisition locks is not enabled for the group."


def _refusal(partition: SharePartition, first: int) -> str | None:
    """Why Kafka 4.4's SharePartition refuses an acknowledgement batch with INVALID_RECORD_STATE
    before looking at its records: nothing is in flight (its cachedState is empty, so no batch
    starts at or before `first`) and the batch starts at or after the start offset. A batch
    wholly before the start offset is skipped (done already); one that starts before it and
    ends past it makes Kafka fail the request (UNKNOWN_SERVER_ERROR), so `check_acknowledgement`
    answers both."""
    if partition.in_flight() == 0 and first >= partition.start_offset:
        return _NOT_CACHED
    return None


def _map_order(topic_ids: list[bytes]) -> list[bytes]:
    """The order a java.util.HashMap keyed by these topic ids iterates them (Kafka's maps of a
    share group's initializing, initialized and deleting topics)."""
    return java_order(topic_ids, uuid_hash, default_capacity(len(topic_ids)))


def _summary(state: ShareState) -> StateSummary:
    """A share-partition's state, as its records leave it, summed up."""
    start = state.start_offset
    done = sum(batch.last_offset - max(batch.first_offset, start) + 1 for batch in state.batches
               if batch.state in (RecordState.ACKNOWLEDGED, RecordState.ARCHIVED) and batch.last_offset >= start)
    return StateSummary(start, done)


def _folded(before: tuple[ShareState, int] | None,
            value: ShareState | StateUpdate | None) -> tuple[ShareState, int] | None:
    """A share-partition's state and updates since its snapshot, after one more of its records
    (an update needs a snapshot before it: one without is ignored, `ottla.server.share.records`)."""
    if value is None or isinstance(value, ShareState):
        return None if value is None else (value, 0)
    assert before is not None
    return merge(before[0], value), before[1] + 1


def _persisted(start_offset: int, batches: tuple[StateBatch, ...]) -> bytes:
    """A share-partition's start offset and in-flight state, comparable byte for byte."""
    return encode_update(StateUpdate(0, 0, start_offset, -1, batches))


def _sent_batches(batches: list[tuple[BatchHeader, memoryview]], first: int, last: int) -> bytes:
    """The log batches a ShareFetch sends of those read, as Kafka 4.4's
    ShareFetchUtils.maybeSliceFetchRecords slices them: from the last one starting at or before
    the first acquired offset to the last one starting at or before the last acquired offset,
    every batch between them included, an aborted transaction's data under read_committed too
    (not acquired: the consumer skips it; checked against the reference broker)."""
    sent: list[memoryview] = []
    for header, batch in batches:
        if header.base_offset <= first or not sent:
            sent = [batch]
        elif header.base_offset <= last:
            sent.append(batch)
        else:
            break
    return b"".join(sent)


def _take_originals(result: ReadResult, offset: int, wanted: set[int], found: dict[int, tuple[bytes | None, bytes | None]]) -> int | None:
    """The key and value of each `wanted` offset a read from `offset` returned, into `found`;
    the offset to read next, None when the read returned nothing."""
    data = b"".join(chunk.read() if isinstance(chunk, FileRegion) else bytes(chunk) for chunk in result.chunks)
    if not data:
        return None
    last = offset
    for header, batch in scan_batches(data):
        last = max(last, header.base_offset + header.last_offset_delta)
        if header.is_control:
            continue
        for record in iter_records(batch):
            if record.offset in wanted:
                found[record.offset] = (None if record.key is None else bytes(record.key),
                                        None if record.value is None else bytes(record.value))
    return last + 1


_DURATION = re.compile(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?")


def _duration_ms(text: str) -> int:
    """An ISO-8601 duration as share.auto.offset.reset's by_duration takes it (PnDTnHnMn.nS)."""
    match = _DURATION.fullmatch(text)
    if match is None:
        return 0
    days, hours, minutes, seconds = (float(part) if part else 0.0 for part in match.groups())
    return int((((days * 24 + hours) * 60 + minutes) * 60 + seconds) * 1000)
