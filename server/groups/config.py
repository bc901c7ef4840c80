"""The broker settings the group coordinator reads, shared by membership and offsets."""

from __future__ import annotations

from typing import Any


class GroupConfig:
    """The broker settings the coordinator reads (Kafka's names in `server/config.py`). A plain
    class: a dataclass costs every broker's start most of a millisecond to create, and
    nothing compares or copies this."""

    __slots__ = (
        "initial_rebalance_delay_ms", "min_session_timeout_ms", "max_session_timeout_ms", "max_size", "new_member_join_timeout_ms",
        "offsets_retention_ms", "offsets_retention_check_interval_ms", "offset_metadata_max_bytes",
    )

    def __init__(
        self,
        *,
        initial_rebalance_delay_ms: int = 3000,
        min_session_timeout_ms: int = 6000,
        max_session_timeout_ms: int = 1800000,
        max_size: int = 2**31 - 1,
        # GroupCoordinatorConfig.CLASSIC_GROUP_NEW_MEMBER_JOIN_TIMEOUT_MS: fixed at 5 minutes.
        new_member_join_timeout_ms: int = 5 * 60 * 1000,
        offsets_retention_ms: int = 7 * 24 * 3600 * 1000,
        offsets_retention_check_interval_ms: int = 600000,
        offset_metadata_max_bytes: int = 4096,
    ) -> None:
        self.initial_rebalance_delay_ms = initial_rebalance_delay_ms
        self.min_session_timeout_ms = min_session_timeout_ms
        self.max_session_timeout_ms = max_session_timeout_ms
        self.max_size = max_size
        self.new_member_join_timeout_ms = new_member_join_timeout_ms
        self.offsets_retention_ms = offsets_retention_ms
        self.offsets_retention_check_interval_ms = offsets_retention_check_interval_ms
        self.offset_metadata_max_bytes = offset_metadata_max_bytes

    @classmethod
    def from_broker(cls, config: Any) -> "GroupConfig":
        return cls(
            initial_rebalance_delay_ms=config.group_initial_rebalance_delay_ms,
            min_session_timeout_ms=config.group_min_session_timeout_ms,
            max_session_timeout_ms=config.group_max_session_timeout_ms,
            max_size=config.group_max_size,
            offsets_retention_ms=config.offsets_retention_minutes * 60 * 1000,
            offsets_retention_check_interval_ms=config.offsets_retention_check_interval_ms,
            offset_metadata_max_bytes=config.offset_metadata_max_bytes,
        )
