"""Share-group state (KIP-932's `__share_group_state`) in PostgreSQL: a share group's start offset
set through one broker process is there for a new process over the same database with a data
directory of its own (nothing carried over on disk)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from compat.harness import OttlaBroker
from ottla.server.admin.client import KafkaClient
from ottla.server.admin.operations import AdminClient
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode

pytestmark = pytest.mark.external

_START_TIMEOUT = 60.0
_GROUP = "kept-workers"
_TOPIC = "shared-work"


def _serve(url: str) -> OttlaBroker:
    """A broker over `url` with a fresh data directory of its own."""
    return OttlaBroker(storage=url, ready_timeout=_START_TIMEOUT, stop_timeout=30)


def _start_offsets(bootstrap: str) -> dict[int, Any]:
    """As an admin client asks: again while the coordinator is still loading the group's
    partition after its start (COORDINATOR_LOAD_IN_PROGRESS, retriable)."""
    deadline = time.monotonic() + _START_TIMEOUT
    with KafkaClient(bootstrap, timeout=10) as client:
        while True:
            described = client.call(ApiKey.DESCRIBE_SHARE_GROUP_OFFSETS, {"groups": [{"group_id": _GROUP, "topics": [
                {"topic_name": _TOPIC, "partitions": [0, 1]}]}]})[1]
            group = described["groups"][0]
            if group["error_code"] != ErrorCode.COORDINATOR_LOAD_IN_PROGRESS or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert group["error_code"] == 0, described
    return {p["partition_index"]: (p["error_code"], p["start_offset"]) for topic in group["topics"] for p in topic["partitions"]}


def test_a_share_groups_start_offsets_outlive_the_broker_process(postgres_url: str) -> None:
    with _serve(postgres_url) as broker:
        with AdminClient(broker.bootstrap) as admin:
            admin.create_topic(_TOPIC, 2)
        deadline = time.monotonic() + _START_TIMEOUT
        with KafkaClient(broker.bootstrap, timeout=10) as client:
            # Asked again while the coordinator still loads the group's partition (retriable).
            while True:
                altered = client.call(ApiKey.ALTER_SHARE_GROUP_OFFSETS, {"group_id": _GROUP, "topics": [
                    {"topic_name": _TOPIC, "partitions": [{"partition_index": 0, "start_offset": 3}, {"partition_index": 1, "start_offset": 5}]}]})[1]
                if altered["error_code"] != ErrorCode.COORDINATOR_LOAD_IN_PROGRESS or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
        assert altered["error_code"] == 0, altered
        assert [p["error_code"] for topic in altered["responses"] for p in topic["partitions"]] == [0, 0], altered
        assert _start_offsets(broker.bootstrap) == {0: (0, 3), 1: (0, 5)}
    with _serve(postgres_url) as again:
        assert _start_offsets(again.bootstrap) == {0: (0, 3), 1: (0, 5)}
