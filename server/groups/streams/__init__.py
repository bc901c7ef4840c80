"""Streams groups (KIP-1071, `group.protocol=streams`): the broker assigns Kafka Streams tasks.

A third group type beside the classic and consumer ones, on the same coordinator runtime and
in the same `__consumer_offsets`: `records` (Kafka's StreamsGroup* record layout), `topology`
(internal topics and their partition counts), `assignor` (sticky), `group` (epochs, member
states, task reconciliation) and `manager` (StreamsGroupHeartbeat, timers, replay). Committed
offsets stay with the classic coordinator's offset manager, which asks `manager` to check
member epochs.
"""

from __future__ import annotations

from ottla.server.groups.streams.group import StreamsGroup, StreamsGroupState, StreamsMember, TasksTuple
from ottla.server.groups.streams.manager import HeartbeatRequest, HeartbeatResult, StreamsGroupManager

__all__ = ["HeartbeatRequest", "HeartbeatResult", "StreamsGroup", "StreamsGroupManager", "StreamsGroupState", "StreamsMember", "TasksTuple"]
