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


_SEGMENT_BYTES = str(100 * 1024 * 1024)

# The topic-level configs each coordinator creates its topic with, Kafka 4.4's at its default
# settings: GroupCoordinatorService.groupMetadataTopicConfigs,
# TransactionCoordinator.transactionStateTopicConfigs, ShareCoordinatorService.shareGroupStateTopicConfigs.
# They are the topic's own (DescribeConfigs: DYNAMIC_TOPIC_CONFIG), fixed at its creation: an
# existing topic keeps those it was created with, as Kafka never rewrites them. segment.bytes
# is 100 MiB (offsets.topic.segment.bytes, transaction.state.log.segment.bytes,
# share.coordinator.state.topic.segment.bytes), to keep compaction and loading quick.
# Compacted, so only the latest value per key survives; "producer" keeps the coordinator's
# batches as written (uncompressed).
OFFSETS = InternalTopic(
    "__consumer_offsets", "offsets.topic.num.partitions",
    {"cleanup.policy": "compact", "compression.type": "producer", "segment.bytes": _SEGMENT_BYTES},
)
# The transaction coordinator writes uncompressed batches, which "uncompressed" stores as they are.
TRANSACTION_STATE = InternalTopic(
    "__transaction_state", "transaction.state.log.num.partitions",
    {"cleanup.policy": "compact", "compression.type": "uncompressed", "segment.bytes": _SEGMENT_BYTES, "unclean.leader.election.enable": "false"},
)
# Share-partition state (KIP-932). Kafka's is cleanup.policy=delete, pruned by its share
# coordinator (ShareCoordinatorShard.lastRedundantOffset, then deleteRecords); ours prunes
# nothing and relies on compaction to drop superseded snapshots, so it stays compacted.
SHARE_GROUP_STATE = InternalTopic(
    "__share_group_state", "share.coordinator.state.topic.num.partitions",
    {"cleanup.policy": "compact", "compression.type": "producer", "retention.ms": "-1", "segment.bytes": _SEGMENT_BYTES},
)

# The share coordinator keeps its state in one partition, each broker over one database writing
# the share-partitions it leads; share.coordinator.state.topic.num.partitions is not read.
SHARE_STATE_PARTITIONS = 1

OFFSETS_TOPIC = OFFSETS.name
TRANSACTION_STATE_TOPIC = TRANSACTION_STATE.name
INTERNAL_TOPICS = frozenset({OFFSETS.name, TRANSACTION_STATE.name, SHARE_GROUP_STATE.name})
