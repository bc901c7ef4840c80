"""KIP-848 consumer groups (`group.protocol=consumer`): the broker assigns, members reconcile.

A second group type beside the classic one, on the same coordinator runtime and in the
same `__consumer_offsets`: `records` (Kafka's ConsumerGroup* record layout), `assignors`
(uniform, range), `group` (epochs, member states, reconciliation) and `manager`
(ConsumerGroupHeartbeat, timers, replay). Committed offsets stay with the classic
coordinator's offset manager, which asks `manager` to check member epochs.
"""

from __future__ import annotations

from ottla.server.groups.consumer.group import ConsumerGroup, ConsumerGroupState, ConsumerMember
from ottla.server.groups.consumer.manager import ConsumerGroupConfig, ConsumerGroupManager, HeartbeatRequest, HeartbeatResult

__all__ = ["ConsumerGroup", "ConsumerGroupConfig", "ConsumerGroupManager", "ConsumerGroupState", "ConsumerMember", "HeartbeatRequest", "HeartbeatResult"]
