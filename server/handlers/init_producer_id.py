"""InitProducerId: a fresh producer id and epoch 0 for each idempotent producer.

De-duplication by sequence number and transactional fencing come with the producer
state work (issue 5); until then ids only need to be unique, across restarts too,
which a millisecond clock seed gives without persisted state.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from wire.api import ApiKey
from wire.errors import ErrorCode

API = ApiKey.INIT_PRODUCER_ID
VERSIONS = (0, 5)

_next_producer_id = itertools.count(int(time.time() * 1000) * 1000 % (2**62))


def handle(broker, header, request: dict[str, Any]) -> dict[str, Any]:
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "producer_id": next(_next_producer_id), "producer_epoch": 0}
