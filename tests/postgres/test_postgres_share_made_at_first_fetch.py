"""Over PostgreSQL (reads are coroutines): a ShareFetch makes the share-partitions it names
even past its max_records (the backlog from earliest is served in Kafka 4.4's turns, as in
tests/server/test_share_partition_made_at_first_fetch.py), and waits for min_bytes of log ahead
(tests/server/test_share_fetch_min_bytes.py)."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any, cast

import pytest

from compat.harness import OttlaBroker
from ottla.server.admin.operations import AdminClient
from ottla.testing import ThreadedBroker
from ottla.wire.api import ApiKey
from ottla.wire.records import Record, build_batch
from share_member import ShareMember

pytestmark = pytest.mark.external

_TOPIC, _GROUP = "named-pg", "named-pg-group"
_START_TIMEOUT = 60.0


def _join(member: ShareMember) -> bytes:
    """Heartbeats until assigned, again while the group's coordinator still loads."""
    member_epoch, deadline = 0, time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        beat = member.heartbeat(_GROUP, member_epoch, [_TOPIC])
        if beat["error_code"] == 0:
            member_epoch = beat["member_epoch"]
            assigned = (beat["assignment"] or {}).get("topic_partitions")
            if assigned:
                return bytes(assigned[0]["topic_id"])
        time.sleep(0.1)
    raise AssertionError("not assigned")


def _fetch(member: ShareMember, topic_id: bytes, epoch: int, **fields: Any) -> tuple[float, list[int]]:
    """The seconds a ShareFetch v1 took and the partitions it acquired from."""
    started = time.monotonic()
    answer: dict[str, Any] = member.call(ApiKey.SHARE_FETCH, 1, {
        "group_id": _GROUP, "member_id": member.member_id, "share_session_epoch": epoch, "max_wait_ms": 0, "min_bytes": 1,
        "max_bytes": 1 << 20, "max_records": 3, "batch_size": 500,
        "topics": [{"topic_id": topic_id, "partitions": [{"partition_index": index, "acknowledgement_batches": []} for index in range(3)]}]
        if epoch == 0 else [], "forgotten_topics_data": [], **fields})
    assert answer["error_code"] == 0, answer
    return time.monotonic() - started, [p["partition_index"] for t in answer["responses"] for p in t["partitions"] if p["acquired_records"]]


def _produce(member: ShareMember, index: int, records: int = 3, size: int = 1) -> None:
    produced = member.call(ApiKey.PRODUCE, 9, {"transactional_id": None, "acks": -1, "timeout_ms": 5000, "topic_data": [
        {"name": _TOPIC, "partition_data": [{"index": index, "records": build_batch([Record(i, 0, None, b"v" * size) for i in range(records)])}]}]})
    assert produced["responses"][0]["partition_responses"][0]["error_code"] == 0


def test_named_partitions_are_made_and_min_bytes_waits_over_postgresql(postgres_url: str) -> None:
    with OttlaBroker(storage=postgres_url, ready_timeout=_START_TIMEOUT, stop_timeout=30) as broker:
        with AdminClient(broker.bootstrap) as admin:
            admin.create_topic(_TOPIC, 3)
        member, producer = (ShareMember(cast(ThreadedBroker, SimpleNamespace(bootstrap_servers=broker.bootstrap))) for _ in range(2))
        altered = member.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {"resources": [{
            "resource_type": 32, "resource_name": _GROUP,
            "configs": [{"name": "share.auto.offset.reset", "config_operation": 0, "value": "earliest"}]}], "validate_only": False})
        assert altered["responses"][0]["error_code"] == 0
        topic_id = _join(member)
        for _ in range(3):
            for index in range(3):
                _produce(producer, index)
        served = [_fetch(member, topic_id, epoch)[1] for epoch in range(9)]
        assert served == [[0], [1], [0], [2], [0], [1], [2], [1], [2]]
        _produce(producer, 0, records=1)
        took, got = _fetch(member, topic_id, 9, min_bytes=100_000, max_wait_ms=1500)
        assert took >= 1.4 and got == [0]
        later = threading.Timer(0.5, _produce, (producer, 1, 20, 200))
        later.start()
        took, got = _fetch(member, topic_id, 10, min_bytes=1000, max_wait_ms=10_000, max_records=100)
        later.join()
        assert 0.4 <= took < 5 and got == [1]
        member.close()
        producer.close()
