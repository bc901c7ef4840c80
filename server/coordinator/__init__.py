"""The runtime every coordinator stands on (groups today; transactions; share, consumer
and streams groups next): state as records in an internal compacted log replayed at
load (`log`), timers on an injected clock (`clock`), state machines as transition
tables (`transitions`), and the registry of internal topics (`topics`).

It knows no coordinator: groups and transactions import it, never each other.
"""

from __future__ import annotations

from ottla.server.coordinator.clock import Clock, TimerHandle, Timers, now_epoch_ms
from ottla.server.coordinator.log import CoordinatorLog, KeyValue, RecordFormatError, java_string_hash, store_error
from ottla.server.coordinator.topics import (
    INTERNAL_TOPICS,
    OFFSETS,
    OFFSETS_TOPIC,
    SHARE_GROUP_STATE,
    SHARE_STATE_PARTITIONS,
    TRANSACTION_STATE,
    TRANSACTION_STATE_TOPIC,
    InternalTopic,
    share_state_key,
)
from ottla.server.coordinator.transitions import IllegalTransition, TransitionTable

__all__ = [
    "INTERNAL_TOPICS",
    "OFFSETS",
    "OFFSETS_TOPIC",
    "TRANSACTION_STATE",
    "TRANSACTION_STATE_TOPIC",
    "Clock",
    "CoordinatorLog",
    "IllegalTransition",
    "InternalTopic",
    "KeyValue",
    "RecordFormatError",
    "SHARE_GROUP_STATE",
    "SHARE_STATE_PARTITIONS",
    "TimerHandle",
    "Timers",
    "TransitionTable",
    "share_state_key",
    "java_string_hash",
    "store_error",
    "now_epoch_ms",
]
