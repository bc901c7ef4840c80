"""Share groups (KIP-932): queue semantics over Kafka topics.

Members of a share group read the same partitions cooperatively; each record is acquired
by one member at a time under a lock, acknowledged one by one, and handed out again when
released or when its lock expires, up to a delivery-count limit. `group` is membership and
assignment, `partition` the share-partition state machine, `sessions` the share sessions,
`coordinator` all three on the coordinator runtime, persisted in `__consumer_offsets` and
`__share_group_state`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from ottla.server.coordinator import KeyValue
from ottla.server.share.coordinator import Acquired, ShareConfig, ShareCoordinator
from ottla.server.share.group import ShareGroup, ShareGroupState, ShareMember
from ottla.server.share.partition import AcknowledgeType, RecordState, SharePartition
from ottla.storage import Storage

__all__ = [
    "AcknowledgeType",
    "Acquired",
    "RecordState",
    "ShareConfig",
    "ShareCoordinator",
    "ShareGroup",
    "ShareGroupState",
    "ShareMember",
    "SharePartition",
    "open_share_coordinator",
]


def open_share_coordinator(storage: Storage, config: Any, loop: asyncio.AbstractEventLoop,
                           notify_data: Callable[[str, int], None],
                           group_config: Callable[[str, str], Any] | None = None,
                           share_version: Callable[[], int] = lambda: 1,
                           offsets_records: Iterable[KeyValue] | None = None) -> ShareCoordinator:
    """The share coordinator of a broker run, its state replayed from the logs; `group_config`
    reads a group's share.* configs (the GROUP config resource), `share_version` the finalized
    share.version (dead-letter queues from 2), `offsets_records` the share group records the
    group coordinator's load met (`ShareCoordinator.load`)."""
    coordinator = ShareCoordinator(storage, ShareConfig.from_broker(config), loop, notify_data, group_config=group_config,
                                   dead_letters=lambda: share_version() >= 2)
    coordinator.load(offsets_records)
    return coordinator
