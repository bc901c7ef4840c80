"""The records of `__consumer_offsets`, in Kafka's own byte layout.

Kafka's group coordinator keeps its state as keyed records in this compacted topic
(group-coordinator/src/main/resources/common/message/*Key.json, *Value.json), and so
do we, so Kafka's tools can read our log and compaction keeps one value per key:

    OffsetCommitKey    version 1: group, topic, partition
    OffsetCommitValue  version 4: offset, leader epoch, metadata, commit timestamp, and the
                                  topic's id as tagged field 0 (flexible, KIP-915; what Kafka
                                  4.4 writes, GroupCoordinatorRecordHelpers.offsetCommitValueVersion)
                       version 1: offset, metadata, commit timestamp, expire timestamp
                                  (written only when a v2-v4 commit set a retention)
                       version 3, which we wrote before, is still read
    GroupMetadataKey   version 2: group
    GroupMetadataValue version 3: protocol type, generation, protocol, leader,
                                  state timestamp, members

A null value is a tombstone. Keys of other versions (KIP-848 and share group records)
are not ours to read and are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ottla.server.coordinator.log import RecordFormatError
from ottla.server.coordinator.record_fields import FieldReader, FieldWriter


OFFSET_COMMIT_KEY_VERSION = 1
GROUP_METADATA_KEY_VERSION = 2
_OFFSET_VALUE_FLEXIBLE = 4
_ZERO_UUID = bytes(16)
_OFFSET_VALUE_WITH_EXPIRY = 1
_GROUP_VALUE_VERSION = 3


@dataclass(slots=True, frozen=True)
class OffsetAndMetadata:
    offset: int
    leader_epoch: int  # -1 when the client did not say
    metadata: str
    commit_timestamp_ms: int
    expire_timestamp_ms: int | None  # only from v2-v4 commits with an explicit retention
    # Where the record that stored it stands in its `__consumer_offsets` partition (Kafka's
    # recordOffset): its log offset when replayed, and for a record written since, a count
    # the coordinator keeps past every replayed offset, so only the order within a partition
    # is meaningful. When a transaction commits, its offset replaces a committed one only
    # if written after it. Not stored.
    record_order: int = field(default=-1, compare=False)


@dataclass(slots=True, frozen=True)
class StoredMember:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    subscription: bytes
    assignment: bytes


@dataclass(slots=True, frozen=True)
class StoredGroup:
    protocol_type: str
    generation: int
    protocol: str | None
    leader: str | None
    current_state_timestamp_ms: int
    members: tuple[StoredMember, ...]


def offset_key(group_id: str, topic: str, partition: int) -> bytes:
    return bytes(FieldWriter().int16(OFFSET_COMMIT_KEY_VERSION).string(group_id).string(topic).int32(partition).out)


def group_key(group_id: str) -> bytes:
    return bytes(FieldWriter().int16(GROUP_METADATA_KEY_VERSION).string(group_id).out)


def offset_value(value: OffsetAndMetadata, topic_id: bytes = _ZERO_UUID) -> bytes:
    """Version 1 for a commit with a retention, else version 4 with `topic_id` (the committed
    topic's id, which Kafka's KafkaApis looks up by name when the request has none), omitted
    when it is the zero UUID, as Kafka omits a tagged field at its default."""
    if value.expire_timestamp_ms is not None:
        writer = FieldWriter().int16(_OFFSET_VALUE_WITH_EXPIRY).int64(value.offset).string(value.metadata)
        return bytes(writer.int64(value.commit_timestamp_ms).int64(value.expire_timestamp_ms).out)
    writer = FieldWriter().int16(_OFFSET_VALUE_FLEXIBLE).int64(value.offset).int32(value.leader_epoch)
    writer.compact_string(value.metadata).int64(value.commit_timestamp_ms)
    if topic_id == _ZERO_UUID:
        return bytes(writer.uvarint(0).out)
    writer.uvarint(1).uvarint(0).uvarint(len(topic_id))
    writer.out += topic_id
    return bytes(writer.out)


def group_value(group: StoredGroup) -> bytes:
    writer = FieldWriter().int16(_GROUP_VALUE_VERSION).string(group.protocol_type).int32(group.generation)
    writer.string(group.protocol).string(group.leader).int64(group.current_state_timestamp_ms)
    writer.int32(len(group.members))
    for member in group.members:
        writer.string(member.member_id).string(member.group_instance_id).string(member.client_id)
        writer.string(member.client_host).int32(member.rebalance_timeout_ms).int32(member.session_timeout_ms)
        writer.int32_sized_bytes(member.subscription).int32_sized_bytes(member.assignment)
    return bytes(writer.out)


@dataclass(slots=True, frozen=True)
class OffsetKey:
    group_id: str
    topic: str
    partition: int


@dataclass(slots=True, frozen=True)
class GroupKey:
    group_id: str


def parse_key(data: bytes | memoryview) -> OffsetKey | GroupKey | None:
    """The key's meaning, or None for record types this coordinator does not keep."""
    reader = FieldReader(data)
    version = reader.int16()
    if version in (0, OFFSET_COMMIT_KEY_VERSION):
        return OffsetKey(reader.string(), reader.string(), reader.int32())
    if version == GROUP_METADATA_KEY_VERSION:
        return GroupKey(reader.string())
    return None


def parse_offset_value(data: bytes | memoryview, record_order: int = -1) -> OffsetAndMetadata:
    """Versions 0 to 4; the topic id of version 4 is not kept (commits are by name)."""
    reader = FieldReader(data)
    version = reader.int16()
    if not 0 <= version <= _OFFSET_VALUE_FLEXIBLE:
        raise RecordFormatError(f"unsupported OffsetCommitValue version {version}")
    offset = reader.int64()
    leader_epoch = reader.int32() if version >= 3 else -1
    metadata = (reader.compact_string() if version >= _OFFSET_VALUE_FLEXIBLE else reader.nullable_string()) or ""
    commit_timestamp = reader.int64()
    expire_timestamp = reader.int64() if version == 1 else -1
    if version >= _OFFSET_VALUE_FLEXIBLE:
        reader.tagged_fields()
    return OffsetAndMetadata(offset, leader_epoch, metadata, commit_timestamp, None if expire_timestamp < 0 else expire_timestamp, record_order)


def parse_group_value(data: bytes | memoryview) -> StoredGroup:
    reader = FieldReader(data)
    version = reader.int16()
    if not 0 <= version <= 3:
        raise RecordFormatError(f"unsupported GroupMetadataValue version {version}")
    protocol_type = reader.nullable_string() or ""
    generation = reader.int32()
    protocol = reader.nullable_string()
    leader = reader.nullable_string()
    state_timestamp = reader.int64() if version >= 2 else -1
    members = []
    for _ in range(reader.int32()):
        member_id = reader.string()
        instance_id = reader.nullable_string() if version >= 3 else None
        client_id = reader.nullable_string() or ""
        client_host = reader.nullable_string() or ""
        rebalance_timeout = reader.int32() if version >= 1 else -1
        session_timeout = reader.int32()
        # GroupMetadataManager.replay: a v0 member's rebalance timeout is its session timeout.
        rebalance_timeout = session_timeout if rebalance_timeout == -1 else rebalance_timeout
        members.append(
            StoredMember(member_id, instance_id, client_id, client_host, rebalance_timeout, session_timeout, reader.int32_sized_bytes(), reader.int32_sized_bytes())
        )
    return StoredGroup(protocol_type, generation, protocol, leader, state_timestamp, tuple(members))

