"""OffsetForLeaderEpoch for an epoch below the first one the partition had, as Kafka 4.4's
LeaderEpochFileCache.endOffsetFor answers it: the requested epoch itself, ending where the
first epoch starts (the reference broker answers (-5, 0) for a fresh partition), while -1
stays "no epoch" (-1, -1). Raw requests to a real broker."""

from __future__ import annotations

import pytest

from compat.differential import _Connection
from ottla.testing import running_broker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode


@pytest.mark.parametrize("version", [2, 4])
def test_an_epoch_below_the_first_ends_at_the_log_start(version: int) -> None:
    with running_broker() as broker:
        broker.create_topic("epochs-below", partitions=1)
        connection = _Connection(broker.bootstrap_servers)
        answer = connection.call(ApiKey.OFFSET_FOR_LEADER_EPOCH, version, {"replica_id": -1, "topics": [{"topic": "epochs-below", "partitions": [
            {"partition": 0, "current_leader_epoch": -1, "leader_epoch": epoch} for epoch in (-5, -1, 0, 1)]}]})
        assert [(p["error_code"], p["leader_epoch"], p["end_offset"]) for p in answer["topics"][0]["partitions"]] == [
            (ErrorCode.NONE, -5, 0), (ErrorCode.NONE, -1, -1), (ErrorCode.NONE, 0, 0), (ErrorCode.NONE, -1, -1)]
