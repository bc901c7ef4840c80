"""ListPartitionReassignments (KIP-455): a single node never moves a replica, so no
reassignment is ever in progress; Kafka leaves unknown topics out of the answer too."""

from __future__ import annotations

from typing import Any

from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

API = ApiKey.LIST_PARTITION_REASSIGNMENTS
VERSIONS = (0, 0)


def handle(broker, header, request: dict[str, Any]) -> dict[str, Any]:
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": None, "topics": []}
