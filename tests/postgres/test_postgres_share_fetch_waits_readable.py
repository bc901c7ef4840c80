"""Over PostgreSQL (reads are coroutines): the partitions a ShareFetch refuses do not end the
wait of its readable one, and a fetch that may take nothing (max_bytes 0) answers at once and
makes no share-partition, as Kafka 4.4 answered (tests/server/test_share_fetch_waits_readable.py)."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any, cast

import pytest

from compat.harness import OttlaBroker
from ottla.server.admin.operations import AdminClient
from ottla.testing import ThreadedBroker
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode
from ottla.wire.records import Record, build_batch
from share_member import ShareMember

pytestmark = pytest.mark.external

_TOPIC, _GROUP = "waits-pg", "waits-pg-group"
_START_TIMEOUT = 60.0
_UNKNOWN_TOPIC_ID = bytes(range(1, 17))


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


def _fetch(member: ShareMember, epoch: int, named: list[tuple[bytes, int]], **fields: Any) -> tuple[float, dict[tuple[bytes, int], tuple[int, list[int]]]]:
    """The seconds a ShareFetch v1 took, and each partition answered: its error and the first
    offsets of its acquired ranges."""
    started = time.monotonic()
    answer: dict[str, Any] = member.call(ApiKey.SHARE_FETCH, 1, {
        "group_id": _GROUP, "member_id": member.member_id, "share_session_epoch": epoch, "max_wait_ms": 500, "min_bytes": 1,
        "max_bytes": 1 << 20, "max_records": 500, "batch_size": 500,
        "topics": [{"topic_id": topic_id, "partitions": [{"partition_index": index, "acknowledgement_batches": []}]} for topic_id, index in named],
        "forgotten_topics_data": [], **fields})
    assert answer["error_code"] == 0, answer
    return time.monotonic() - started, {(topic["topic_id"], p["partition_index"]): (p["error_code"], [r["first_offset"] for r in p["acquired_records"]])
                                        for topic in answer["responses"] for p in topic["partitions"]}


def _produce(member: ShareMember, records: int) -> None:
    produced = member.call(ApiKey.PRODUCE, 9, {"transactional_id": None, "acks": -1, "timeout_ms": 5000, "topic_data": [
        {"name": _TOPIC, "partition_data": [{"index": 0, "records": build_batch([Record(i, 0, None, b"v") for i in range(records)])}]}]})
    assert produced["responses"][0]["partition_responses"][0]["error_code"] == 0


def test_refusals_wait_and_a_fetch_of_nothing_answers_at_once_over_postgresql(postgres_url: str) -> None:
    with OttlaBroker(storage=postgres_url, ready_timeout=_START_TIMEOUT, stop_timeout=30) as broker:
        with AdminClient(broker.bootstrap) as admin:
            admin.create_topic(_TOPIC, 1)
        member = ShareMember(cast(ThreadedBroker, SimpleNamespace(bootstrap_servers=broker.bootstrap)))
        topic_id = _join(member)
        valid, past_end, unknown = (topic_id, 0), (topic_id, 5), (_UNKNOWN_TOPIC_ID, 0)
        refusals = {past_end: (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, []), unknown: (ErrorCode.UNKNOWN_TOPIC_ID, [])}
        _produce(member, 3)
        took, answered = _fetch(member, 0, [valid, past_end, unknown], max_bytes=0)
        assert took < 0.3 and answered == refusals
        _produce(member, 2)
        # The share-partition is made now, at the end of the log; the refusals do not end the wait.
        took, answered = _fetch(member, 1, [])
        assert took >= 0.45 and answered == refusals
        _produce(member, 1)
        took, answered = _fetch(member, 2, [])
        assert took < 0.3 and answered[valid] == (0, [5])
        member.close()
