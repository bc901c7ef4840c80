"""A share group's own records in `__consumer_offsets`, in Kafka 4.4's byte layout.

Kafka 4.4's group coordinator (kafka-group-coordinator's generated ShareGroup*Key and
*Value, written by GroupCoordinatorRecordHelpers.newShareGroup*Record) keeps a share group
as these keyed records, on the group's offsets partition; the key's version is the record
type. Keys are the old non-flexible form; values are version 0 of a flexible message
(compact strings and arrays, tagged fields):

    10 ShareGroupMemberMetadata            group, member -> rack, client, host, subscription
    11 ShareGroupMetadata                  group -> group epoch, metadata hash
    12 ShareGroupTargetAssignmentMetadata  group -> assignment epoch (+ tagged timestamp)
    13 ShareGroupTargetAssignmentMember    group, member -> target partitions
    14 ShareGroupCurrentMemberAssignment   group, member -> epochs, state, partitions
    15 ShareGroupStatePartitionMetadata    group -> initializing, initialized, deleting topics

A null value is a tombstone. The share coordinator (ottla.server.share) owns these records:
the group coordinator only recognizes them at load, to count their groups.
"""

from __future__ import annotations

from dataclasses import dataclass

from ottla.server.coordinator.log import RecordFormatError
from ottla.server.coordinator.record_fields import FieldReader, FieldWriter

MEMBER_METADATA = 10
GROUP_METADATA = 11
TARGET_ASSIGNMENT_METADATA = 12
TARGET_ASSIGNMENT_MEMBER = 13
CURRENT_MEMBER_ASSIGNMENT = 14
STATE_PARTITION_METADATA = 15
MEMBER_RECORD_TYPES = frozenset({MEMBER_METADATA, TARGET_ASSIGNMENT_MEMBER, CURRENT_MEMBER_ASSIGNMENT})
RECORD_TYPES = MEMBER_RECORD_TYPES | {GROUP_METADATA, TARGET_ASSIGNMENT_METADATA, STATE_PARTITION_METADATA}

# ShareGroupCurrentMemberAssignmentValue.state: Kafka's MemberState.STABLE, the only state a
# share member is ever in.
STABLE = 0

# Topic id -> partitions, in the order a record lists them.
Assignment = dict[bytes, list[int]]


@dataclass(slots=True, frozen=True)
class RecordKey:
    record_type: int
    group_id: str
    # None for a record of the group itself.
    member_id: str | None


@dataclass(slots=True, frozen=True)
class MemberMetadata:
    rack_id: str | None
    client_id: str
    client_host: str
    subscribed_topic_names: tuple[str, ...]


@dataclass(slots=True, frozen=True)
class CurrentAssignment:
    member_epoch: int
    previous_member_epoch: int
    assignment: Assignment


@dataclass(slots=True, frozen=True)
class TopicPartitions:
    """A topic of ShareGroupStatePartitionMetadata: id, name and (but for a deleting one) partitions."""

    topic_id: bytes
    name: str
    partitions: tuple[int, ...] = ()


@dataclass(slots=True, frozen=True)
class StatePartitions:
    initializing: tuple[TopicPartitions, ...]
    initialized: tuple[TopicPartitions, ...]
    deleting: tuple[TopicPartitions, ...]


class _Writer(FieldWriter):
    __slots__ = ()

    def assignment(self, assignment: Assignment) -> _Writer:
        self.uvarint(len(assignment) + 1)
        for topic_id, partitions in assignment.items():
            self.out += topic_id
            self.int32s(partitions).uvarint(0)
        return self

    def topics(self, topics: tuple[TopicPartitions, ...], with_partitions: bool = True) -> _Writer:
        self.uvarint(len(topics) + 1)
        for topic in topics:
            self.out += topic.topic_id
            self.compact_string(topic.name)
            if with_partitions:
                self.int32s(topic.partitions)
            self.uvarint(0)
        return self

    def done(self) -> bytes:
        self.uvarint(0)
        return bytes(self.out)


class _Reader(FieldReader):
    __slots__ = ()

    def assignment(self) -> Assignment:
        found: Assignment = {}
        for _ in range(self.count()):
            topic_id = self.uuid()
            found[topic_id] = self.int32s()
            self.tagged_fields()
        return found

    def topics(self, with_partitions: bool = True) -> tuple[TopicPartitions, ...]:
        found = []
        for _ in range(self.count()):
            topic_id, name = self.uuid(), self.required_string()
            partitions = tuple(self.int32s()) if with_partitions else ()
            self.tagged_fields()
            found.append(TopicPartitions(topic_id, name, partitions))
        return tuple(found)

    def value_version(self) -> None:
        version = self.int16()
        if version != 0:
            raise RecordFormatError(f"unsupported share group record value version {version}")


def key(record_type: int, group_id: str, member_id: str | None = None) -> bytes:
    writer = _Writer(record_type).string(group_id)
    if member_id is not None:
        writer.string(member_id)
    return bytes(writer.out)


def parse_key(data: bytes | memoryview) -> RecordKey | None:
    """The key of a share group record, or None for any other record type."""
    reader = _Reader(data)
    record_type = reader.int16()
    if record_type not in RECORD_TYPES:
        return None
    group_id = reader.string()
    return RecordKey(record_type, group_id, reader.string() if record_type in MEMBER_RECORD_TYPES else None)


def member_metadata_value(member: MemberMetadata) -> bytes:
    """Kafka keeps the subscribed names as a set and writes them sorted (String order: by UTF-16 unit)."""
    writer = _Writer(0).compact_string(member.rack_id).compact_string(member.client_id).compact_string(member.client_host)
    names = sorted(set(member.subscribed_topic_names), key=lambda name: name.encode("utf-16-be"))
    writer.uvarint(len(names) + 1)
    for name in names:
        writer.compact_string(name)
    return writer.done()


def parse_member_metadata_value(data: bytes | memoryview) -> MemberMetadata:
    reader = _Reader(data)
    reader.value_version()
    rack_id, client_id, client_host = reader.compact_string(), reader.required_string(), reader.required_string()
    return MemberMetadata(rack_id, client_id, client_host, reader.strings())


def group_metadata_value(epoch: int, metadata_hash: int) -> bytes:
    return _Writer(0).int32(epoch).int64(metadata_hash).done()


def parse_group_metadata_value(data: bytes | memoryview) -> tuple[int, int]:
    """(group epoch, metadata hash)."""
    reader = _Reader(data)
    reader.value_version()
    return reader.int32(), reader.int64()


def target_assignment_metadata_value(assignment_epoch: int, timestamp_ms: int) -> bytes:
    """The assignment timestamp is tagged field 0, left out when 0 (an assignment computed
    without the assignor, for a group without members)."""
    writer = _Writer(0).int32(assignment_epoch)
    if timestamp_ms == 0:
        return writer.done()
    writer.uvarint(1).uvarint(0).uvarint(8).int64(timestamp_ms)
    return bytes(writer.out)


def parse_target_assignment_metadata_value(data: bytes | memoryview) -> tuple[int, int]:
    """(assignment epoch, timestamp ms: 0 when absent)."""
    reader = _Reader(data)
    reader.value_version()
    epoch = reader.int32()
    tagged = reader.tagged_fields()
    return epoch, (_Reader(tagged[0]).int64() if 0 in tagged else 0)


def target_assignment_member_value(assignment: Assignment) -> bytes:
    return _Writer(0).assignment(assignment).done()


def parse_target_assignment_member_value(data: bytes | memoryview) -> Assignment:
    reader = _Reader(data)
    reader.value_version()
    return reader.assignment()


def current_assignment_value(current: CurrentAssignment) -> bytes:
    writer = _Writer(0).int32(current.member_epoch).int32(current.previous_member_epoch).int8(STABLE)
    return writer.assignment(current.assignment).done()


def parse_current_assignment_value(data: bytes | memoryview) -> CurrentAssignment:
    reader = _Reader(data)
    reader.value_version()
    member_epoch, previous_member_epoch = reader.int32(), reader.int32()
    reader.int8()
    return CurrentAssignment(member_epoch, previous_member_epoch, reader.assignment())


def state_partitions_value(state: StatePartitions) -> bytes:
    writer = _Writer(0).topics(state.initializing).topics(state.initialized).topics(state.deleting, with_partitions=False)
    return writer.done()


def parse_state_partitions_value(data: bytes | memoryview) -> StatePartitions:
    reader = _Reader(data)
    reader.value_version()
    return StatePartitions(reader.topics(), reader.topics(), reader.topics(with_partitions=False))
