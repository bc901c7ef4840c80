"""Committed offsets: Kafka's OffsetMetadataManager.

OffsetCommit, TxnOffsetCommit, OffsetFetch and OffsetDelete, and the expiry of offsets
past offsets.retention.minutes. Offsets are OffsetCommit records in `__consumer_offsets`,
stored before they are acknowledged; in memory they hang off their group, which the
membership manager owns (offsets alone make a "simple" group exist, as in Kafka).
TxnOffsetCommit offsets wait in `pending_transactional` until their transaction's marker
commits or aborts them; a commit makes one the committed offset only if no record written
after it stored one for its partition, and a tombstone for a partition ends its pending
offsets too, so neither a newer commit nor a deletion is undone by a transaction ending.
Replay at load follows the log in the same order (markers included) and compares the
records' log offsets, so it reaches the state the broker had live.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Callable

from ottla.server.coordinator import CoordinatorLog, KeyValue, store_error
from ottla.server.groups.config import GroupConfig
from ottla.server.groups.group import ClassicGroup
from ottla.server.groups.membership import GroupMembershipManager
from ottla.server.groups.records import OffsetAndMetadata, offset_key, offset_value, parse_offset_value
from ottla.server.groups.state import GroupState
from ottla.server.java_hashing import TIMELINE_INITIAL_SLOTS, timeline_int_order, timeline_order, timeline_slots_before_put
from ottla.wire.errors import ErrorCode, KafkaError
from ottla.wire.records import NO_PRODUCER_ID

log = logging.getLogger("ottla.groups")


class CommitEntry:
    """One partition's offset in an OffsetCommit or TxnOffsetCommit. A plain class: a dataclass
    would cost every broker's start most of a millisecond to create, and nothing compares one."""

    __slots__ = ("topic", "partition", "offset", "leader_epoch", "metadata")

    def __init__(self, topic: str, partition: int, offset: int, leader_epoch: int = -1, metadata: str | None = "") -> None:
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.leader_epoch = leader_epoch
        self.metadata = metadata


class _OffsetTables:
    """The shape of one group's offsets in Kafka's OffsetMetadataManager.Offsets, which the
    order it iterates them in (deleteAllOffsets) follows: a TimelineHashMap of topics, each a
    TimelineHashMap of partitions, each made empty when its first entry comes and dropped
    once emptied; their slots grow on a put (even one that replaces) and never shrink. The
    topics are kept in the order their maps were made; the partitions' order is that of
    the group's offsets dict, whose keys go in as Kafka's entries do."""

    __slots__ = ("topic_slots", "topics")

    def __init__(self) -> None:
        self.topic_slots = TIMELINE_INITIAL_SLOTS
        # topic -> [slots of its partitions' map, partitions held]
        self.topics: dict[str, list[int]] = {}

    def put(self, topic: str, replaces: bool) -> None:
        entry = self.topics.get(topic)
        if entry is None:
            self.topic_slots = timeline_slots_before_put(self.topic_slots, len(self.topics))
            entry = self.topics[topic] = [TIMELINE_INITIAL_SLOTS, 0]
        entry[0] = timeline_slots_before_put(entry[0], entry[1])
        if not replaces:
            entry[1] += 1

    def remove(self, topic: str) -> None:
        entry = self.topics.get(topic)
        if entry is not None:
            entry[1] -= 1
            if entry[1] <= 0:
                del self.topics[topic]

    def order(self, keys: list[tuple[str, int]]) -> list[tuple[str, int]]:
        """The group's offsets (`keys` in the order they went in) as Kafka iterates them."""
        partitions: dict[str, list[int]] = {}
        for topic, partition in keys:
            partitions.setdefault(topic, []).append(partition)
        ordered = [(topic, partition) for topic in timeline_order([t for t in self.topics if t in partitions], self.topic_slots)
                   for partition in timeline_int_order(partitions[topic], self.topics[topic][0])]
        # Never leave one out, should the tables not know its topic.
        return ordered + [(topic, partition) for topic, partition in keys if topic not in self.topics]


class OffsetManager:
    def __init__(self, log_: CoordinatorLog, config: GroupConfig, membership: GroupMembershipManager, wall_clock_ms: Callable[[], int]) -> None:
        self.log = log_
        self.config = config
        self.membership = membership
        self.groups = membership.groups
        self.wall_clock_ms = wall_clock_ms
        # TxnOffsetCommit offsets awaiting their transaction's end:
        # producer id -> group id -> (topic, partition) -> offset (OffsetMetadataManager's pendingTransactionalOffsets).
        self.pending_transactional: dict[int, dict[str, dict[tuple[str, int], OffsetAndMetadata]]] = {}
        # The record_order of the next offset record written: past every replayed record's log
        # offset, so that a record written live counts as later than every one in its partition.
        self._next_record_order = 0
        # group id -> its offsets' tables, while it has any.
        self._tables: dict[str, _OffsetTables] = {}

    def _put(self, group: ClassicGroup, key: tuple[str, int], value: OffsetAndMetadata) -> None:
        """group.offsets[key] = value, the group's tables grown as Kafka's Offsets.put grows its
        maps (made anew for a group that holds none: Kafka dropped them once emptied)."""
        tables = self._tables.get(group.group_id)
        if tables is None or not group.offsets:
            tables = self._tables[group.group_id] = _OffsetTables()
        tables.put(key[0], key in group.offsets)
        group.offsets[key] = value

    def _remove(self, group: ClassicGroup, key: tuple[str, int]) -> None:
        tables = self._tables.get(group.group_id)
        if group.offsets.pop(key, None) is not None and tables is not None:
            tables.remove(key[0])

    # --- loading -----------------------------------------------------------------

    def replay_offset(self, record_offset: int, producer_id: int, group_id: str, topic: str, partition: int, value: bytes | None) -> None:
        """OffsetMetadataManager.replay of an OffsetCommit record, where it stands in the log:
        a plain one becomes the committed offset, a transactional one (TxnOffsetCommit) waits
        in its producer's pending offsets for the marker (`complete_transaction`), whatever
        plain commits follow it, and a tombstone deletes the committed offset and ends the
        pending ones of its partition."""
        self._next_record_order = max(self._next_record_order, record_offset + 1)
        group = self.groups.get(group_id)
        if value is None:
            if group is not None:
                self._remove(group, (topic, partition))
            self.drop_pending(group_id, [(topic, partition)])
            return
        if group is None:
            # Offsets alone make a (simple) group exist.
            group = self.groups[group_id] = ClassicGroup(group_id)
        offset = parse_offset_value(value, record_offset)
        if producer_id == NO_PRODUCER_ID:
            self._put(group, (topic, partition), offset)
        else:
            self.pending_transactional.setdefault(producer_id, {}).setdefault(group_id, {})[(topic, partition)] = offset

    def tombstones(self, group_id: str) -> list[KeyValue]:
        """Records that delete every offset of the group (deleteAllOffsets): the committed
        ones, and the partitions with only a pending transactional offset, so that its
        transaction committing later brings none back. Once they are stored, the caller
        ends the pending ones with `drop_pending`."""
        group = self.groups.get(group_id)
        tables = self._tables.get(group_id)
        committed = [] if group is None else list(group.offsets) if tables is None else tables.order(list(group.offsets))
        pending_only = sorted(self._pending_partitions(group_id).difference(committed))
        return [(offset_key(group_id, topic, partition), None) for topic, partition in committed + pending_only]

    def _pending_partitions(self, group_id: str) -> set[tuple[str, int]]:
        return {key for groups in self.pending_transactional.values() for key in groups.get(group_id, ())}

    def drop_pending(self, group_id: str, partitions: Collection[tuple[str, int]] | None = None) -> None:
        """End the group's pending transactional offsets for `partitions` (all when None):
        what a stored tombstone does to them (OffsetMetadataManager.replay). All of them go
        once the whole group's tombstones are stored, and with them its offsets' tables."""
        if partitions is None:
            self._tables.pop(group_id, None)
        for producer_id, groups in list(self.pending_transactional.items()):
            pending = groups.get(group_id)
            if pending is None:
                continue
            for key in list(pending) if partitions is None else partitions:
                pending.pop(key, None)
            if not pending:
                del groups[group_id]
            if not groups:
                del self.pending_transactional[producer_id]

    def _record_order(self) -> int:
        order = self._next_record_order
        self._next_record_order += 1
        return order

    def _metadata_too_large(self, metadata: str) -> bool:
        """Kafka measures metadata by String.length(), in UTF-16 code units, not in bytes."""
        return len(metadata.encode("utf-16-le", "surrogatepass")) // 2 > self.config.offset_metadata_max_bytes

    # --- commits -----------------------------------------------------------------

    def commit_offsets(
        self,
        group_id: str,
        generation_id: int,
        member_id: str,
        group_instance_id: str | None,
        entries: list[CommitEntry],
        retention_ms: int = -1,
        missing_group_error: ErrorCode = ErrorCode.ILLEGAL_GENERATION,
    ) -> list[ErrorCode]:
        """OffsetMetadataManager.commitOffset: one error per entry. `missing_group_error`
        is what a commit with a generation gets when the group does not exist
        (ILLEGAL_GENERATION before OffsetCommit v9, GROUP_ID_NOT_FOUND from v9). An empty
        group id is a group like any other: GroupCoordinatorService.commitOffsets refuses only
        a null one, which OffsetCommit cannot carry (TxnOffsetCommit's refuses an empty one)."""
        group = self.groups.get(group_id)
        if group is None:
            if generation_id >= 0:
                return [missing_group_error] * len(entries)
            # A consumer using assign() or an admin client: a "simple" group holds the offsets.
            group = self.groups[group_id] = ClassicGroup(group_id, state_timestamp_ms=self.wall_clock_ms())
        error = self._validate_offset_commit(group, generation_id, member_id, group_instance_id)
        if error is not ErrorCode.NONE:
            return [error] * len(entries)
        if group.is_in(GroupState.STABLE, GroupState.PREPARING_REBALANCE) and member_id in group.members:
            # A classic member's commit keeps its session alive, as a heartbeat does
            # (OffsetMetadataManager.commitOffset reschedules the member's heartbeat).
            self.membership.keep_alive(group, member_id)
        now = self.wall_clock_ms()
        expire = None if retention_ms == -1 else now + retention_ms
        errors = []
        records: list[KeyValue] = []
        accepted: list[tuple[tuple[str, int], OffsetAndMetadata]] = []
        for entry in entries:
            metadata = entry.metadata or ""
            if self._metadata_too_large(metadata):
                errors.append(ErrorCode.OFFSET_METADATA_TOO_LARGE)
                continue
            value = OffsetAndMetadata(entry.offset, entry.leader_epoch, metadata, now, expire, self._record_order())
            records.append((offset_key(group_id, entry.topic, entry.partition), offset_value(value, self._topic_id(entry.topic))))
            accepted.append(((entry.topic, entry.partition), value))
            errors.append(ErrorCode.NONE)
        if records:
            try:
                self.log.append(group_id, records, now)
            except KafkaError as exc:
                code = store_error(exc.code)
                return [code if e is ErrorCode.NONE else e for e in errors]
            for key, value in accepted:
                self._put(group, key, value)
        return errors

    def _topic_id(self, topic: str) -> bytes:
        """The id the offset's record carries: the topic's, or the zero UUID for a topic that
        does not exist (KafkaApis sets each committed topic's id from its metadata cache)."""
        info = self.log.storage.topic(topic)
        return bytes(16) if info is None else info.topic_id

    def commit_transactional_offsets(
        self,
        group_id: str,
        producer_id: int,
        producer_epoch: int,
        generation_id: int,
        member_id: str,
        group_instance_id: str | None,
        entries: list[CommitEntry],
        missing_group_error: ErrorCode = ErrorCode.ILLEGAL_GENERATION,
    ) -> list[ErrorCode]:
        """OffsetMetadataManager.commitTransactionalOffset: stored now as a transactional
        batch of the producer, visible to OffsetFetch only once its transaction commits
        (`complete_transaction`). `missing_group_error` is what a commit with a generation
        gets when the group does not exist (GROUP_ID_NOT_FOUND from TxnOffsetCommit v6)."""
        if not group_id:
            return [ErrorCode.INVALID_GROUP_ID] * len(entries)
        group = self.groups.get(group_id)
        if group is None:
            if generation_id >= 0:
                return [missing_group_error] * len(entries)
            group = self.groups[group_id] = ClassicGroup(group_id, state_timestamp_ms=self.wall_clock_ms())
        error = self._validate_offset_commit(group, generation_id, member_id, group_instance_id, transactional=True)
        if error is not ErrorCode.NONE:
            return [error] * len(entries)
        now = self.wall_clock_ms()
        errors = []
        records: list[KeyValue] = []
        accepted: dict[tuple[str, int], OffsetAndMetadata] = {}
        for entry in entries:
            metadata = entry.metadata or ""
            if self._metadata_too_large(metadata):
                errors.append(ErrorCode.OFFSET_METADATA_TOO_LARGE)
                continue
            value = OffsetAndMetadata(entry.offset, entry.leader_epoch, metadata, now, None, self._record_order())
            records.append((offset_key(group_id, entry.topic, entry.partition), offset_value(value, self._topic_id(entry.topic))))
            accepted[(entry.topic, entry.partition)] = value
            errors.append(ErrorCode.NONE)
        if records:
            try:
                self.log.append(group_id, records, now, producer_id, producer_epoch)
            except KafkaError as exc:
                code = exc.code if exc.code in (ErrorCode.INVALID_PRODUCER_EPOCH, ErrorCode.PRODUCER_FENCED) else store_error(exc.code)
                return [code if e is ErrorCode.NONE else e for e in errors]
            self.pending_transactional.setdefault(producer_id, {}).setdefault(group_id, {}).update(accepted)
        return errors

    def has_pending_transactional_offset(self, group_id: str, topic: str, partition: int) -> bool:
        """Is an offset for this partition waiting on an open transaction (KIP-447's unstable offset)?"""
        return any((topic, partition) in groups.get(group_id, ()) for groups in self.pending_transactional.values())

    def has_pending_transactional_offsets(self, group_id: str) -> bool:
        """Is any offset of the group waiting on an open transaction?"""
        return any(group_id in groups for groups in self.pending_transactional.values())

    def complete_transaction(self, producer_id: int, partitions: set[int], commit: bool) -> None:
        """A COMMIT or ABORT marker of `producer_id` reached these `__consumer_offsets`
        partitions: its pending offsets there become committed or are dropped
        (OffsetMetadataManager.replayEndTransactionMarker). A pending offset whose record is
        older than the committed one's stays uncommitted: a plain OffsetCommit made while the
        transaction was open, or another transaction's offset written later, wins."""
        pending = self.pending_transactional.get(producer_id, {})
        for group_id in [g for g in pending if self.log.partition_for(g) in partitions]:
            offsets = pending.pop(group_id)
            if commit:
                group = self.groups.get(group_id)
                if group is None or group.is_in(GroupState.DEAD):
                    group = self.groups[group_id] = ClassicGroup(group_id, state_timestamp_ms=self.wall_clock_ms())
                for key, value in offsets.items():
                    committed = group.offsets.get(key)
                    if committed is None or value.record_order > committed.record_order:
                        self._put(group, key, value)
        if not pending:
            self.pending_transactional.pop(producer_id, None)

    @staticmethod
    def _validate_offset_commit(
        group: ClassicGroup, generation_id: int, member_id: str, group_instance_id: str | None, transactional: bool = False
    ) -> ErrorCode:
        """ClassicGroup.validateOffsetCommit; a transactional commit (TxnOffsetCommit v0-2
        carries no member) may go into a non-empty group, and during a rebalance."""
        if group.is_in(GroupState.DEAD):
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        if generation_id < 0 and group.is_in(GroupState.EMPTY):
            return ErrorCode.NONE
        if generation_id >= 0 or member_id or group_instance_id is not None:
            error = group.validate_member(member_id, group_instance_id)
            if error is not ErrorCode.NONE:
                return error
            if generation_id != group.generation_id:
                return ErrorCode.ILLEGAL_GENERATION
        elif not transactional and not group.is_in(GroupState.EMPTY):
            # No member id and no generation (v0) commits only into an empty group.
            return ErrorCode.UNKNOWN_MEMBER_ID
        if not transactional and group.is_in(GroupState.COMPLETING_REBALANCE):
            # The member has its new generation from JoinGroup but not yet its assignment.
            return ErrorCode.REBALANCE_IN_PROGRESS
        return ErrorCode.NONE

    def fetch_offsets(self, group_id: str, wanted: list[tuple[str, list[int]]] | None) -> tuple[ErrorCode, list[tuple[str, list[tuple[int, OffsetAndMetadata | None]]]]]:
        """OffsetMetadataManager.fetchOffsets / fetchAllOffsets: `wanted` None means every
        committed offset of the group; a partition without one maps to None."""
        group = self.groups.get(group_id)
        if group is not None and group.is_in(GroupState.DEAD):
            return ErrorCode.GROUP_ID_NOT_FOUND, []
        offsets = {} if group is None else group.offsets
        if wanted is None:
            by_topic: dict[str, list[tuple[int, OffsetAndMetadata | None]]] = {}
            for (topic, partition), value in sorted(offsets.items()):
                by_topic.setdefault(topic, []).append((partition, value))
            return ErrorCode.NONE, list(by_topic.items())
        return ErrorCode.NONE, [(topic, [(p, offsets.get((topic, p))) for p in partitions]) for topic, partitions in wanted]

    def delete_offsets(
        self, group_id: str, wanted: list[tuple[str, list[int]]], subscribed_to: Callable[[str], bool] | None = None,
    ) -> tuple[ErrorCode, list[tuple[str, list[tuple[int, ErrorCode]]]]]:
        """OffsetMetadataManager.deleteOffsets: a consumer group cannot drop the offsets of a
        topic it is subscribed to (GROUP_SUBSCRIBED_TO_TOPIC). `subscribed_to` answers that for
        a group whose members this classic group does not hold (a KIP-848 consumer group's)."""
        group = self.groups.get(group_id)
        if group is None or group.is_in(GroupState.DEAD):
            return ErrorCode.GROUP_ID_NOT_FOUND, []
        if not group.is_in(GroupState.EMPTY) and not group.uses_consumer_protocol():
            return ErrorCode.NON_EMPTY_GROUP, []
        results = []
        pending = self._pending_partitions(group_id)
        deleted: list[tuple[str, int]] = []
        for topic, partitions in wanted:
            subscribed = group.is_subscribed_to(topic) if subscribed_to is None else subscribed_to(topic)
            results.append((topic, [(p, ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC if subscribed else ErrorCode.NONE) for p in partitions]))
            if not subscribed:
                # A partition with only a pending transactional offset gets its tombstone too.
                deleted += [(topic, p) for p in partitions if (topic, p) in group.offsets or (topic, p) in pending]
        if deleted:
            try:
                self.log.append(group_id, [(offset_key(group_id, topic, p), None) for topic, p in deleted], self.wall_clock_ms())
            except KafkaError as exc:
                return store_error(exc.code), []
            for key in deleted:
                self._remove(group, key)
            self.drop_pending(group_id, deleted)
        return ErrorCode.NONE, results

    def delete_topic_offsets(self, topic: str) -> None:
        """OffsetMetadataManager.onTopicsDeleted: a deleted topic's offsets go from every group
        that holds one, committed or pending in a transaction, by tombstones, so that neither a
        restart nor a topic created again under the name finds them. Offsets are not stored
        with their topic's id here, so all of the name's go (Kafka spares those committed with
        another topic's id). A group left empty stays until the expiry sweep deletes it, as
        Kafka's cleanupGroupMetadata does. A group whose tombstones the log refuses keeps its
        offsets, as Kafka only logs that failure."""
        deleted: dict[str, set[tuple[str, int]]] = {}
        for group_id, group in self.groups.items():
            for key in group.offsets:
                if key[0] == topic:
                    deleted.setdefault(group_id, set()).add(key)
        for groups in self.pending_transactional.values():
            for group_id, pending in groups.items():
                for key in pending:
                    if key[0] == topic:
                        deleted.setdefault(group_id, set()).add(key)
        now = self.wall_clock_ms()
        for group_id, keys in deleted.items():
            ordered = sorted(keys)
            try:
                self.log.append(group_id, [(offset_key(group_id, t, p), None) for t, p in ordered], now)
            except KafkaError as exc:
                log.warning("could not delete the offsets of deleted topic %s in group %s: %s", topic, group_id, exc)
                continue
            holder = self.groups.get(group_id)
            if holder is not None:
                for key in ordered:
                    self._remove(holder, key)
            self.drop_pending(group_id, ordered)

    def expire(self, group: ClassicGroup, now_ms: int, subscribed: Collection[str] | None = None) -> int:
        """OffsetMetadataManager.cleanupExpiredOffsets for one group: drop offsets past
        offsets.retention.minutes (counted from when the group became empty, or from the
        commit for simple groups and topics a stable consumer group no longer reads). For the
        offsets of a KIP-848 group with members, `subscribed` is what they subscribe to: the
        other topics' offsets count from their commit (ConsumerGroup.offsetExpirationCondition).
        An offset whose partition has a pending transactional offset stays until its transaction
        ends. Returns how many went. Raises KafkaError from the log, leaving them all in place."""
        base = self._expiry_base(group) if subscribed is None else _from_commit
        if base is None:
            return 0
        retention = self.config.offsets_retention_ms
        pending = self._pending_partitions(group.group_id)
        expired = [
            key
            for key, value in group.offsets.items()
            if (not group.is_subscribed_to(key[0]) if subscribed is None else key[0] not in subscribed)
            and key not in pending
            and (now_ms >= value.expire_timestamp_ms if value.expire_timestamp_ms is not None else now_ms - base(value) >= retention)
        ]
        tables = self._tables.get(group.group_id)
        if expired and tables is not None:
            expired = tables.order(expired)  # as Kafka's maps iterate them
        if expired:
            self.log.append(group.group_id, [(offset_key(group.group_id, t, p), None) for t, p in expired], now_ms)
            for key in expired:
                self._remove(group, key)
        return len(expired)

    @staticmethod
    def _expiry_base(group: ClassicGroup) -> Callable[[OffsetAndMetadata], int] | None:
        """ClassicGroup.offsetExpirationCondition: where an offset's retention is counted from."""
        if group.protocol_type is None:
            return lambda value: value.commit_timestamp_ms
        if group.is_in(GroupState.EMPTY):
            state_timestamp = group.state_timestamp_ms
            return lambda value: value.commit_timestamp_ms if state_timestamp is None else state_timestamp
        if group.uses_consumer_protocol() and group.subscribed_topics is not None and group.is_in(GroupState.STABLE):
            return lambda value: value.commit_timestamp_ms
        return None


def _from_commit(value: OffsetAndMetadata) -> int:
    return value.commit_timestamp_ms
