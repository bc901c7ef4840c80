"""The internal topics coordinators keep their state in, named and configured once.

Kafka lists them in Topic.INTERNAL_TOPICS (clients/.../common/internals/Topic.java); what
reports or guards internal topics (Metadata's `is_internal`, Produce's refusal) reads the
same set here, and each coordinator creates its topic from its entry on first use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(slots=True, frozen=True, eq=False)
class InternalTopic:
    name: str
    # The broker setting that sizes the topic when it is first created; an existing topic
    # keeps its count, since a key's partition must never move.
    partitions_setting: str
    configs: Mapping[str, str]


# Both compacted, so only the latest value per key survives; Kafka's segment.bytes for them
# (offsets.topic.segment.bytes, transaction.state.log.segment.bytes) is 100 MiB, to keep
# compaction and loading quick.
OFFSETS = InternalTopic(
    "__consumer_offsets", "offsets.topic.num.partitions", {"cleanup.policy": "compact", "segment.bytes": str(100 * 1024 * 1024)}
)
TRANSACTION_STATE = InternalTopic(
    "__transaction_state", "transaction.state.log.num.partitions", {"cleanup.policy": "compact", "segment.bytes": str(100 * 1024 * 1024)}
)
# Share-partition state (KIP-932); Kafka's share.coordinator.state.topic.segment.bytes is 100 MiB too.
SHARE_GROUP_STATE = InternalTopic(
    "__share_group_state", "share.coordinator.state.topic.num.partitions",
    {"cleanup.policy": "compact", "segment.bytes": str(100 * 1024 * 1024)},
)

OFFSETS_TOPIC = OFFSETS.name
TRANSACTION_STATE_TOPIC = TRANSACTION_STATE.name
INTERNAL_TOPICS = frozenset({OFFSETS.name, TRANSACTION_STATE.name, SHARE_GROUP_STATE.name})
