"""The group coordinator (issue 4): classic consumer groups and committed offsets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ottla.server.coordinator import INTERNAL_TOPICS, OFFSETS, OFFSETS_TOPIC, Clock, CoordinatorLog
from ottla.server.groups.config import GroupConfig
from ottla.server.groups.coordinator import GroupCoordinator
from ottla.server.groups.group_configs import DEFAULT_CONFIG, STATIC_BROKER_CONFIG, GroupConfigs
from ottla.server.groups.membership import JoinRequest
from ottla.server.groups.offsets import CommitEntry
from ottla.storage import Storage

if TYPE_CHECKING:
    from ottla.server.groups.consumer import ConsumerGroupConfig

# INTERNAL_TOPICS is the coordinator runtime's registry, re-exported where handlers look for it.
__all__ = ["CommitEntry", "GroupConfig", "GroupCoordinator", "INTERNAL_TOPICS", "JoinRequest", "OFFSETS_TOPIC", "open_coordinator"]


def open_coordinator(storage: Storage, config: Any, clock: Clock) -> GroupCoordinator:
    """A coordinator over `__consumer_offsets` (created on first use, as Kafka creates it: not
    here), its state loaded, told of each topic `storage` deletes from then on."""
    log_ = CoordinatorLog(storage, OFFSETS, config.value(OFFSETS.partitions_setting), OFFSETS.configs(config.value))
    group_configs = GroupConfigs(
        storage.data_dir, config.value, lambda name: STATIC_BROKER_CONFIG if name in config.explicit else DEFAULT_CONFIG
    )
    coordinator = GroupCoordinator(
        log_, GroupConfig.from_broker(config), clock, consumer_config=lambda: _consumer_config(config), group_configs=group_configs
    )
    coordinator.load()
    storage.deletion_listeners.append(coordinator.on_topic_deleted)
    return coordinator


def _consumer_config(config: Any) -> ConsumerGroupConfig:
    from ottla.server.groups.consumer import ConsumerGroupConfig

    return ConsumerGroupConfig.from_broker(config)
