"""The internal topics coordinators keep their state in, named and configured once.

Kafka lists them in Topic.INTERNAL_TOPICS (clients/.../common/internals/Topic.java); what
reports or guards internal topics (Metadata's `is_internal`, Produce's refusal) reads the
same set here, and each coordinator creates its topic from its entry on first use.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True, frozen=True, eq=False)
class InternalTopic:
    name: str
    # The broker setting that sizes the topic when it is first created; an existing topic
    # keeps its count, since a key's partition must never move.
    partitions_setting: str
    # Topic configs set at creation whatever the broker's settings.
    fixed_configs: Mapping[str, str]
    # Topic configs set at creation to a broker setting's value: topic config -> setting.
    configs_from_settings: Mapping[str, str]

    def configs(self, setting: Callable[[str], Any]) -> dict[str, str]:
        """The topic configs the topic is created with under the broker settings `setting`
        reads (BrokerConfig.value). They are the topic's own (DescribeConfigs:
        DYNAMIC_TOPIC_CONFIG), fixed at its creation: an existing topic keeps those it was
        created with, as Kafka never rewrites them."""
        return {**self.fixed_configs, **{name: str(setting(source)) for name, source in self.configs_from_settings.items()}}


# The topic-level configs each coordinator creates its topic with, Kafka 4.4's:
# GroupCoordinatorService.groupMetadataTopicConfigs,
# TransactionCoordinator.transactionStateTopicConfigs, ShareCoordinatorService.shareGroupStateTopicConfigs.
# segment.bytes comes from the topic's own setting (Kafka's default 100 MiB, to keep compaction
# and loading quick), min.insync.replicas from the transaction and share state topics' (the
# offsets topic takes the broker's). Compacted, so only the latest value per key survives;
# "producer" keeps the coordinator's batches as written (uncompressed).
OFFSETS = InternalTopic(
    "__consumer_offsets", "offsets.topic.num.partitions",
    {"cleanup.policy": "compact", "compression.type": "producer"},
    {"segment.bytes": "offsets.topic.segment.bytes"},
)
# The transaction coordinator writes uncompressed batches, which "uncompressed" stores as they are.
TRANSACTION_STATE = InternalTopic(
    "__transaction_state", "transaction.state.log.num.partitions",
    {"cleanup.policy": "compact", "compression.type": "uncompressed", "unclean.leader.election.enable": "false"},
    {"min.insync.replicas": "transaction.state.log.min.isr", "segment.bytes": "transaction.state.log.segment.bytes"},
)
# Share-partition state (KIP-932). Kafka's is cleanup.policy=delete, pruned by its share
# coordinator (ShareCoordinatorShard.lastRedundantOffset, then deleteRecords); ours prunes
# nothing and relies on compaction to drop superseded snapshots, so it stays compacted.
SHARE_GROUP_STATE = InternalTopic(
    "__share_group_state", "share.coordinator.state.topic.num.partitions",
    {"cleanup.policy": "compact", "compression.type": "producer", "retention.ms": "-1"},
    {"min.insync.replicas": "share.coordinator.state.topic.min.isr", "segment.bytes": "share.coordinator.state.topic.segment.bytes"},
)

def share_state_key(group_id: str, topic_id: bytes, partition: int) -> str:
    """SharePartitionKey.asCoordinatorKey, "groupId:topicId:partition" with the topic id as
    Uuid.toString renders it: what picks the share-partition's `__share_group_state` partition
    (ShareCoordinatorService.partitionFor hashes it as a group id is hashed)."""
    return f"{group_id}:{base64.urlsafe_b64encode(topic_id).rstrip(b'=').decode()}:{partition}"


# share.coordinator.state.topic.num.partitions' default (ShareCoordinatorConfig): the count
# `__share_group_state` is created with when no broker settings are given. Each share-partition's
# records go to its key's partition (ShareCoordinatorService.partitionFor); a data dir whose topic
# was created with another count keeps it.
SHARE_STATE_PARTITIONS = 50

OFFSETS_TOPIC = OFFSETS.name
TRANSACTION_STATE_TOPIC = TRANSACTION_STATE.name
INTERNAL_TOPICS = frozenset({OFFSETS.name, TRANSACTION_STATE.name, SHARE_GROUP_STATE.name})
