"""The classic protocol's embedded consumer protocol: what a classic member's JoinGroup
metadata and SyncGroup assignment bytes hold (Kafka's ConsumerProtocolSubscription.json and
ConsumerProtocolAssignment.json, read and written as ConsumerProtocol.java does).

A consumer group serving classic members (KIP-848's online upgrade) reads each member's
subscription from its JoinGroup metadata and writes its assignment in the same version the
member subscribed with. Both are non-flexible: int16 version, then int16-length strings and
int32-count arrays. A version above the highest known is read as the highest, as Kafka does.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ottla.server.groups.group import java_string

_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")

SUBSCRIPTION_HIGHEST_VERSION = 3
ASSIGNMENT_HIGHEST_VERSION = 3

# topic name -> partitions, as the embedded protocol names topics.
TopicPartitions = dict[str, frozenset[int]]


class MalformedProtocol(ValueError):
    """The bytes are not a consumer protocol subscription or assignment."""


@dataclass(slots=True, frozen=True)
class Subscription:
    version: int
    topics: tuple[str, ...]
    owned_partitions: TopicPartitions
    generation_id: int = -1
    rack_id: str | None = None


class _Reader:
    __slots__ = ("data", "position")

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.position = 0

    def _take(self, size: int) -> memoryview:
        end = self.position + size
        if size < 0 or end > len(self.data):
            raise MalformedProtocol("consumer protocol bytes shorter than their fields")
        chunk = self.data[self.position : end]
        self.position = end
        return chunk

    def int16(self) -> int:
        return int(_INT16.unpack(self._take(2))[0])

    def int32(self) -> int:
        return int(_INT32.unpack(self._take(4))[0])

    def string(self, nullable: bool = False) -> str | None:
        size = self.int16()
        if size < 0:
            if nullable:
                return None
            raise MalformedProtocol("null where the consumer protocol has a string")
        return java_string(self._take(size))

    def count(self) -> int:
        size = self.int32()
        if size < 0 or size > len(self.data) - self.position:
            raise MalformedProtocol("consumer protocol array longer than its bytes")
        return size

    def skip_bytes(self) -> None:
        size = self.int32()
        if size >= 0:
            self._take(size)

    def topic_partitions(self) -> TopicPartitions:
        result: dict[str, frozenset[int]] = {}
        for _ in range(self.count()):
            topic = self.string()
            assert topic is not None
            partitions = frozenset(self.int32() for _ in range(self.count()))
            result[topic] = result.get(topic, frozenset()) | partitions
        return result


def parse_subscription(data: bytes) -> Subscription:
    """ConsumerProtocol.deserializeConsumerProtocolSubscription. Raises MalformedProtocol."""
    reader = _Reader(data)
    version = reader.int16()
    if version < 0:
        raise MalformedProtocol(f"consumer protocol subscription version {version}")
    read_as = min(version, SUBSCRIPTION_HIGHEST_VERSION)
    topics = []
    for _ in range(reader.count()):
        topic = reader.string()
        assert topic is not None
        topics.append(topic)
    reader.skip_bytes()  # UserData: the client assignor's, never the coordinator's
    owned = reader.topic_partitions() if read_as >= 1 else {}
    generation_id = reader.int32() if read_as >= 2 else -1
    rack_id = reader.string(nullable=True) if read_as >= 3 else None
    return Subscription(version, tuple(topics), owned, generation_id, rack_id)


def parse_assignment(data: bytes) -> TopicPartitions:
    """The partitions of a ConsumerProtocolAssignment; an empty assignment (b"") is none."""
    if not data:
        return {}
    reader = _Reader(data)
    if reader.int16() < 0:
        raise MalformedProtocol("negative consumer protocol assignment version")
    return reader.topic_partitions()


def assignment_has_user_data(data: bytes) -> bool:
    """Whether a ConsumerProtocolAssignment carries user data (a custom assignor's, which a
    consumer group could not pass on: ConsumerGroup.fromClassicGroup refuses to convert such
    a group). Raises MalformedProtocol."""
    if not data:
        return False
    reader = _Reader(data)
    if reader.int16() < 0:
        raise MalformedProtocol("negative consumer protocol assignment version")
    reader.topic_partitions()
    if reader.position == len(reader.data):
        return False  # no UserData field at all: read as none, as parse_assignment reads it (Kafka: malformed)
    size = reader.int32()
    return size > 0


def serialize_assignment(partitions: TopicPartitions, version: int) -> bytes:
    """ConsumerProtocol.serializeAssignment at the member's subscription version (clamped to
    what Kafka writes), with no user data: the coordinator's assignor has none to pass."""
    version = max(0, min(version, ASSIGNMENT_HIGHEST_VERSION))
    out = bytearray(_INT16.pack(version))
    topics = [(topic, sorted(parts)) for topic, parts in sorted(partitions.items()) if parts]
    out += _INT32.pack(len(topics))
    for topic, parts in topics:
        encoded = topic.encode()
        out += _INT16.pack(len(encoded)) + encoded + _INT32.pack(len(parts))
        for partition in parts:
            out += _INT32.pack(partition)
    out += _INT32.pack(-1)
    return bytes(out)
