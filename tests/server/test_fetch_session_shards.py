"""Fetch sessions spread over Kafka's 8 cache shards, as Kafka 4.4 spreads them (checked against
the reference broker with `max.incremental.fetch.session.cache.slots=8`): each full request's
answer asks the next shard round-robin for a session, a shard's ids are its eighth of the
positive ints, and a full shard opens no session while another shard has a free slot
(BrokerServer's FetchSessionCacheShards, FetchContext.FullFetchContext, FetchSessionCacheShard)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from compat.differential import _Connection
from ottla.server.fetch_sessions import EVICTION_MS, INVALID_SESSION_ID, CachedPartition, FetchSessionCache
from ottla.testing import ThreadedBroker, running_broker
from ottla.wire.api import ApiKey

_ID_RANGE = (2**31 - 1) // 8


@pytest.fixture
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None, max_incremental_fetch_session_cache_slots=8) as running:
        yield running


def _fetch(conn: _Connection, topic: str, session_id: int, epoch: int) -> dict[str, Any]:
    partition = {"partition": 0, "current_leader_epoch": -1, "fetch_offset": 0, "last_fetched_epoch": -1,
                 "log_start_offset": -1, "partition_max_bytes": 1 << 20}
    return conn.call(ApiKey.FETCH, 12, {
        "replica_id": -1, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1 << 20, "isolation_level": 0,
        "session_id": session_id, "session_epoch": epoch, "rack_id": "",
        "topics": [{"topic": topic, "partitions": [partition]}], "forgotten_topics_data": []})


def test_full_fetches_fill_the_shards_round_robin_and_a_full_shard_opens_none(broker: ThreadedBroker) -> None:
    topic = f"shards-{uuid.uuid4().hex[:8]}"
    broker.create_topic(topic, 1)
    conn = _Connection(broker.bootstrap_servers)
    try:
        opened = [_fetch(conn, topic, 0, 0)["session_id"] for _ in range(8)]
        assert [session_id // _ID_RANGE for session_id in opened] == list(range(8))
        closed = _fetch(conn, topic, opened[3], -1)
        assert closed["error_code"] == 0 and closed["session_id"] == INVALID_SESSION_ID
        # Shards 0, 1 and 2 are full and their sessions too young to evict: no session, no error.
        for _ in range(3):
            refused = _fetch(conn, topic, 0, 0)
            assert refused["error_code"] == 0 and refused["session_id"] == INVALID_SESSION_ID
        assert _fetch(conn, topic, 0, 0)["session_id"] // _ID_RANGE == 3
    finally:
        conn.close()


def test_a_newcomer_evicts_only_within_its_shard() -> None:
    """A stale session in another shard makes no room: FetchSessionCacheShard.tryEvict looks at
    its own shard's sessions only."""
    cache = FetchSessionCache.for_slots(16)  # 8 shards of 2

    def open_at(now_ms: int) -> int:
        partitions = {("t", 0): CachedPartition({"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1})}
        return cache.maybe_create_session(now_ms, False, False, partitions)

    young = [open_at(EVICTION_MS) for _ in range(7)]
    stale = open_at(0)
    young += [open_at(EVICTION_MS) for _ in range(8)]
    assert INVALID_SESSION_ID not in young and stale // _ID_RANGE == 7 and len(cache) == 16
    # Shards 0..6 hold young sessions only: their newcomers are refused, the stale one stays.
    assert [open_at(EVICTION_MS + 1) for _ in range(7)] == [INVALID_SESSION_ID] * 7
    assert cache.get(stale) is not None
    replacement = open_at(EVICTION_MS + 1)
    assert replacement // _ID_RANGE == 7 and cache.get(stale) is None and cache.evictions == 1
