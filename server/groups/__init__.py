"""The group coordinator (issue 4): classic consumer groups and committed offsets."""

from __future__ import annotations

from typing import Any

from ottla.server.groups.coordinator import Clock, CommitEntry, GroupConfig, GroupCoordinator, JoinRequest
from ottla.server.groups.log import OFFSETS_TOPIC, CoordinatorLog
from ottla.storage import Storage

# `__transaction_state` is the transaction coordinator's (server/txn/).
INTERNAL_TOPICS = frozenset({OFFSETS_TOPIC, "__transaction_state"})

__all__ = ["CommitEntry", "GroupConfig", "GroupCoordinator", "INTERNAL_TOPICS", "JoinRequest", "OFFSETS_TOPIC", "open_coordinator"]


def open_coordinator(storage: Storage, config: Any, clock: Clock) -> GroupCoordinator:
    """A coordinator over `__consumer_offsets` (created if missing), its state loaded."""
    coordinator = GroupCoordinator(CoordinatorLog(storage, config["offsets.topic.num.partitions"]), GroupConfig.from_broker(config), clock)
    coordinator.load()
    return coordinator
