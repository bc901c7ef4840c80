"""The order a ShareFetch takes a session's partitions in (`ottla.server.share.fetch_order`)
holds on an engine whose reads are coroutines too: the sequence Kafka 4.4 served for the same
requests (see tests/server/test_share_fetch_rotation_s42.py)."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any, cast

import pytest
from kafka import KafkaProducer  # type: ignore[import-untyped]

from compat.harness import OttlaBroker
from ottla.server.admin.operations import AdminClient
from ottla.testing import ThreadedBroker
from ottla.wire.api import ApiKey
from share_member import ShareMember

pytestmark = pytest.mark.external

_TOPIC = "turns-pg"
_GROUP = "turns-pg-group"
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


def _fetch(member: ShareMember, topic_id: bytes, epoch: int, partitions: list[int]) -> list[int]:
    answer: dict[str, Any] = member.call(ApiKey.SHARE_FETCH, 1, {
        "group_id": _GROUP, "member_id": member.member_id, "share_session_epoch": epoch, "max_wait_ms": 0, "min_bytes": 1,
        "max_bytes": 1 << 20, "max_records": 3, "batch_size": 500,
        "topics": [{"topic_id": topic_id, "partitions": [{"partition_index": index, "acknowledgement_batches": []} for index in partitions]}]
        if partitions else [],
        "forgotten_topics_data": []})
    assert answer["error_code"] == 0, answer
    return [partition["partition_index"] for topic in answer["responses"] for partition in topic["partitions"] if partition["acquired_records"]]


def test_fetches_take_the_partitions_in_turn_as_kafka_over_postgresql(postgres_url: str) -> None:
    with OttlaBroker(storage=postgres_url, ready_timeout=_START_TIMEOUT, stop_timeout=30) as broker:
        with AdminClient(broker.bootstrap) as admin:
            admin.create_topic(_TOPIC, 3)
        member = ShareMember(cast(ThreadedBroker, SimpleNamespace(bootstrap_servers=broker.bootstrap)))
        topic_id = _join(member)
        assert _fetch(member, topic_id, 0, [0, 1, 2]) == []
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=50, batch_size=1 << 20)
        for _ in range(4):
            for index in range(3):
                for _ in range(3):
                    producer.send(_TOPIC, b"v", partition=index)
            producer.flush()
        producer.close()
        got = [_fetch(member, topic_id, epoch, []) for epoch in range(1, 9)]
        member.close()
    assert got == [[1], [0], [2], [0], [1], [2], [1], [0]]
