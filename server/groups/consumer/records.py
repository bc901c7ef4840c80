"""The KIP-848 consumer group records of `__consumer_offsets`, in Kafka's byte layout.

Kafka 4.4's group coordinator (group-coordinator/src/main/resources/common/message/
ConsumerGroup*Key.json, *Value.json) keeps a consumer group as these keyed records; the key's
version is the record type. Keys are the old non-flexible form; values are version 0 of a
flexible message (compact strings and arrays, tagged fields):

    3  ConsumerGroupMetadata                group -> group epoch (+ tagged metadata hash)
    5  ConsumerGroupMemberMetadata          group, member -> instance, rack, client, subscription
                                            (+ tagged ClassicMemberMetadata: a classic member's,
                                            or null for one that speaks ConsumerGroupHeartbeat)
    6  ConsumerGroupTargetAssignmentMetadata group -> assignment epoch
    7  ConsumerGroupTargetAssignmentMember  group, member -> target partitions
    8  ConsumerGroupCurrentMemberAssignment group, member -> epochs, state, partitions
                                            (+ tagged AssignmentEpochs per topic, KIP-1251)
    16 ConsumerGroupRegularExpression       group, regex -> resolved topics

Version 4 (ConsumerGroupPartitionMetadata) is what Kafka 4.0 wrote before the metadata hash;
a log holding it is read past. Kafka 4.4 still writes its tombstone when it deletes a group,
and so do we. A null value is a tombstone.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ottla.server.coordinator.log import RecordFormatError
from ottla.server.coordinator.record_fields import FieldReader, FieldWriter

GROUP_METADATA = 3
SUBSCRIPTION_METADATA = 4
MEMBER_METADATA = 5
TARGET_ASSIGNMENT_METADATA = 6
TARGET_ASSIGNMENT_MEMBER = 7
CURRENT_MEMBER_ASSIGNMENT = 8
REGULAR_EXPRESSION = 16
RECORD_TYPES = frozenset({GROUP_METADATA, SUBSCRIPTION_METADATA, MEMBER_METADATA, TARGET_ASSIGNMENT_METADATA, TARGET_ASSIGNMENT_MEMBER, CURRENT_MEMBER_ASSIGNMENT, REGULAR_EXPRESSION})


# topic id -> partitions: what every assignment in these records is.
Assignment = dict[bytes, frozenset[int]]
# (topic id, partition) -> the member epoch the partition was assigned to the member at.
PartitionEpochs = dict[tuple[bytes, int], int]
# An assignment's topics and partitions in the order a record lists them.
Listing = list[tuple[bytes, list[int]]]


@dataclass(slots=True, frozen=True)
class ClassicMemberMetadata:
    """A classic-protocol member of a consumer group (tagged field 0 of the member's
    metadata): its session timeout and its JoinGroup protocols, name then metadata."""

    session_timeout_ms: int
    supported_protocols: tuple[tuple[str, bytes], ...]


@dataclass(slots=True, frozen=True)
class MemberMetadata:
    instance_id: str | None
    rack_id: str | None
    client_id: str
    client_host: str
    subscribed_topic_names: tuple[str, ...]
    subscribed_topic_regex: str | None
    rebalance_timeout_ms: int
    server_assignor: str | None
    # None for a member that speaks ConsumerGroupHeartbeat.
    classic: ClassicMemberMetadata | None = None


@dataclass(slots=True, frozen=True)
class CurrentAssignment:
    """A member's epochs, state and partitions, with the epoch each held partition was
    assigned at (KIP-1251: an OffsetCommit at an older member epoch may commit a partition
    assigned at or before that epoch).

    Invariant: `assignment_epochs` has exactly the held (assigned or pending revocation)
    partitions; one it is not given was assigned at max(member_epoch, 0), as Kafka reads a
    record written without them, and one given that is not held is dropped. So equal
    assignments compare equal however they were built."""

    member_epoch: int
    previous_member_epoch: int
    state: int
    assigned: Assignment = field(default_factory=dict)
    pending_revocation: Assignment = field(default_factory=dict)
    assignment_epochs: PartitionEpochs = field(default_factory=dict)

    def __post_init__(self) -> None:
        default = max(self.member_epoch, 0)
        given = self.assignment_epochs
        held = {(topic_id, partition): given.get((topic_id, partition), default)
                for assignment in (self.assigned, self.pending_revocation) for topic_id, partitions in assignment.items() for partition in partitions}
        if held != given:
            object.__setattr__(self, "assignment_epochs", held)

    def assignment_epoch(self, topic_id: bytes, partition: int) -> int | None:
        """The epoch the member was given the partition at, or None when it holds it
        neither assigned nor pending revocation (ConsumerGroupMember.assignmentEpoch, then
        pendingRevocationEpoch)."""
        return self.assignment_epochs.get((topic_id, partition))


@dataclass(slots=True, frozen=True)
class RecordKey:
    """A consumer group record's key: its type, its group, and the member or regex it is about."""

    record_type: int
    group_id: str
    member_id: str = ""


class _Writer(FieldWriter):
    __slots__ = ()

    def assignment(self, assignment: Assignment, current: CurrentAssignment | None = None, order: Listing | None = None) -> _Writer:
        """[]TopicPartitions: topic id then partitions, in `order` when it lists exactly this
        assignment, else ascending; with `current`, each topic's AssignmentEpochs (tagged
        field 0, aligned with the partitions) as Kafka 4.4 writes them, else no tagged fields."""
        if order is None or {topic_id: frozenset(partitions) for topic_id, partitions in order} != assignment:
            order = [(topic_id, sorted(partitions)) for topic_id, partitions in sorted(assignment.items())]
        self.uvarint(len(assignment) + 1)
        for topic_id, ordered in order:
            self.out += topic_id
            self.int32s(ordered)
            if current is None:
                self.uvarint(0)
                continue
            epochs = FieldWriter().int32s([current.assignment_epochs[(topic_id, p)] for p in ordered]).out
            self.uvarint(1).uvarint(0).uvarint(len(epochs))
            self.out += epochs
        return self

    def done(self, tagged: int = 0) -> bytes:
        if tagged == 0:
            self.uvarint(0)
        return bytes(self.out)


class _Reader(FieldReader):
    __slots__ = ()

    def assignment(self, epochs: PartitionEpochs | None = None, default_epoch: int = 0, order: Listing | None = None) -> Assignment:
        """[]TopicPartitions; each partition's AssignmentEpochs entry goes into `epochs`
        when given: `default_epoch` for a topic written without them, or with a count that is
        not the partitions' (Utils.assignmentFromTopicPartitions); the topics and partitions
        as listed are appended to `order` when given."""
        result: Assignment = {}
        for _ in range(self.count()):
            topic_id = self.uuid()
            listed = self.int32s()
            if order is not None:
                order.append((topic_id, listed))
            tagged = self.tagged_fields()
            if epochs is not None:
                given = _Reader(tagged[0]).nullable_int32s() if 0 in tagged else None
                aligned = given if given is not None and len(given) == len(listed) else [default_epoch] * len(listed)
                epochs.update(((topic_id, p), e) for p, e in zip(listed, aligned))
            if listed:
                result[topic_id] = result.get(topic_id, frozenset()) | frozenset(listed)
        return result

    def nullable_int32s(self) -> list[int] | None:
        size = self.uvarint() - 1
        if size < 0:
            return None
        if 4 * size > len(self.data) - self.position:
            raise RecordFormatError("array longer than its record")
        return [self.int32() for _ in range(size)]

    def value_version(self) -> None:
        version = self.int16()
        if version != 0:
            raise RecordFormatError(f"unsupported consumer group record value version {version}")


# --- keys --------------------------------------------------------------------------


def group_key(record_type: int, group_id: str) -> bytes:
    return _Writer(record_type).string(group_id).done(tagged=-1)


def member_key(record_type: int, group_id: str, member_id: str) -> bytes:
    return _Writer(record_type).string(group_id).string(member_id).done(tagged=-1)


def parse_key(data: bytes | memoryview) -> RecordKey | None:
    """The key of a consumer group record, or None for any other record type."""
    reader = _Reader(data)
    record_type = reader.int16()
    if record_type not in RECORD_TYPES:
        return None
    group_id = reader.string()
    if record_type in (MEMBER_METADATA, TARGET_ASSIGNMENT_MEMBER, CURRENT_MEMBER_ASSIGNMENT, REGULAR_EXPRESSION):
        return RecordKey(record_type, group_id, reader.string())
    return RecordKey(record_type, group_id)


# --- values ------------------------------------------------------------------------


def group_metadata_value(epoch: int, metadata_hash: int = 0) -> bytes:
    """MetadataHash (tag 0, KIP-1101: `kafka_group_hash` of the subscribed topics) is written
    only when it is not its default 0, as for a group subscribed to no existing topic."""
    writer = _Writer(0).int32(epoch)
    if metadata_hash == 0:
        return writer.done()
    return writer.uvarint(1).uvarint(0).uvarint(8).int64(metadata_hash).done(tagged=1)


def parse_group_metadata_value(data: bytes | memoryview) -> tuple[int, int]:
    """(group epoch, MetadataHash); the hash is 0 when the record has none."""
    reader = _Reader(data)
    reader.value_version()
    epoch = reader.int32()
    hashed = reader.tagged_fields().get(0) if reader.position < len(reader.data) else None
    return epoch, _Reader(hashed).int64() if hashed is not None and len(hashed) == 8 else 0


def member_metadata_value(member: MemberMetadata) -> bytes:
    writer = _Writer(0).compact_string(member.instance_id).compact_string(member.rack_id)
    # Kafka keeps the names as a set and writes them sorted (String order: by UTF-16 unit).
    names = sorted(set(member.subscribed_topic_names), key=lambda name: name.encode("utf-16-be"))
    writer.compact_string(member.client_id).compact_string(member.client_host).strings(names)
    # Kafka's member holds "" for no regex (ConsumerGroupMember.Builder) and sets the
    # ClassicMemberMetadata of a member that speaks ConsumerGroupHeartbeat to null, which is
    # not the field's default (an empty struct): so both are written, as a presence byte 0.
    writer.compact_string(member.subscribed_topic_regex or "").int32(member.rebalance_timeout_ms).compact_string(member.server_assignor)
    if member.classic is None:
        writer.uvarint(1).uvarint(0).uvarint(1).uvarint(0)
        return writer.done(tagged=1)
    classic = _Writer(0).int32(member.classic.session_timeout_ms).uvarint(len(member.classic.supported_protocols) + 1)
    for name, metadata in member.classic.supported_protocols:
        classic.compact_string(name).compact_bytes(metadata).uvarint(0)
    # A nullable struct (KIP-893) starts with a presence byte: 1, then the struct, not versioned.
    body = b"\x01" + classic.done()[2:]
    writer.uvarint(1).uvarint(0).uvarint(len(body))
    writer.out += body
    return writer.done(tagged=1)


def parse_member_metadata_value(data: bytes | memoryview) -> MemberMetadata:
    reader = _Reader(data)
    reader.value_version()
    metadata = MemberMetadata(
        instance_id=reader.compact_string(),
        rack_id=reader.compact_string(),
        client_id=reader.required_string(),
        client_host=reader.required_string(),
        subscribed_topic_names=reader.strings(),
        subscribed_topic_regex=reader.compact_string() or None,
        rebalance_timeout_ms=reader.int32(),
        server_assignor=reader.compact_string(),
    )
    classic = reader.tagged_fields().get(0)
    if classic is None:
        return metadata
    inner = _Reader(classic)
    if inner.int8() <= 0:  # null: 0 as Kafka writes it
        return metadata
    session_timeout_ms = inner.int32()
    protocols = []
    for _ in range(inner.count()):
        name = inner.required_string()
        protocols.append((name, inner.compact_bytes()))
        inner.tagged_fields()
    return replace(metadata, classic=ClassicMemberMetadata(session_timeout_ms, tuple(protocols)))


def target_assignment_metadata_value(assignment_epoch: int, timestamp_ms: int) -> bytes:
    """AssignmentTimestamp (tag 0, Kafka 4.3's KIP-1263) is written as Kafka 4.4 writes it:
    only when it is not its default 0 (a fence that empties the group writes none)."""
    writer = _Writer(0).int32(assignment_epoch)
    if timestamp_ms == 0:
        return writer.done()
    return writer.uvarint(1).uvarint(0).uvarint(8).int64(timestamp_ms).done(tagged=1)


def parse_target_assignment_metadata_value(data: bytes | memoryview) -> tuple[int, int]:
    """(assignment epoch, AssignmentTimestamp); the timestamp is 0 when the record has none
    (written before Kafka 4.3, or by a fence that emptied the group): the next target may
    then be computed at once."""
    reader = _Reader(data)
    reader.value_version()
    epoch = reader.int32()
    timestamp_ms = 0
    if reader.position < len(reader.data):
        for _ in range(reader.uvarint()):
            tag, size = reader.uvarint(), reader.uvarint()
            if tag == 0 and size == 8:
                timestamp_ms = reader.int64()
            else:
                reader.take(size)
    return epoch, timestamp_ms


def target_assignment_member_value(assignment: Assignment) -> bytes:
    return _Writer(0).assignment(assignment).done()


def parse_target_assignment_member_value(data: bytes | memoryview) -> Assignment:
    reader = _Reader(data)
    reader.value_version()
    return reader.assignment()


def current_assignment_value(current: CurrentAssignment, assigned_order: Listing | None = None) -> bytes:
    """`assigned_order`: the order the member's assigned map iterates in (Kafka writes the
    record off it, and rebuilds the map in the record's order when it replays it)."""
    writer = _Writer(0).int32(current.member_epoch).int32(current.previous_member_epoch).int8(current.state)
    return writer.assignment(current.assigned, current, assigned_order).assignment(current.pending_revocation, current).done()


def parse_current_assignment_value(data: bytes | memoryview, assigned_order: Listing | None = None) -> CurrentAssignment:
    """`assigned_order`, when given, receives the assigned topics and partitions in the record's order."""
    reader = _Reader(data)
    reader.value_version()
    member_epoch, previous_member_epoch, state = reader.int32(), reader.int32(), reader.int8()
    epochs: PartitionEpochs = {}
    assigned = reader.assignment(epochs, max(member_epoch, 0), assigned_order)
    pending_revocation = reader.assignment(epochs, max(member_epoch, 0))
    return CurrentAssignment(member_epoch, previous_member_epoch, state, assigned, pending_revocation, epochs)


def regex_value(topics: list[str], version: int, timestamp_ms: int) -> bytes:
    return _Writer(0).strings(sorted(topics)).int64(version).int64(timestamp_ms).done()


@dataclass(slots=True, frozen=True)
class ResolvedRegex:
    """A ConsumerGroupRegularExpression value: the topics a regex matched, the version it was
    resolved at, and when (wall-clock ms)."""

    topics: tuple[str, ...]
    version: int
    timestamp_ms: int


def parse_regex_value(data: bytes | memoryview) -> ResolvedRegex:
    reader = _Reader(data)
    reader.value_version()
    return ResolvedRegex(reader.strings(), reader.int64(), reader.int64())
