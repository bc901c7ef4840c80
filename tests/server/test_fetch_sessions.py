"""Fetch sessions (KIP-227): the cache's rules without sockets, then stock consumers that use
sessions reading many partitions exactly. compat/differential.py's `fetch-session-walk` and
`java-fetch-sessions` scenarios compare the same steps with the reference Kafka."""

from __future__ import annotations

import uuid

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from ottla.server.fetch_sessions import (
    EVICTION_MS,
    FINAL_EPOCH,
    INITIAL_EPOCH,
    INVALID_SESSION_ID,
    CachedPartition,
    FetchSessionCache,
    FullContext,
    IncrementalContext,
    next_epoch,
)
from ottla.testing import running_broker
from ottla.wire.errors import ErrorCode


def _topics(name: str, partitions: dict[int, int]) -> list:
    return [{"topic": name, "partitions": [
        {"partition": p, "fetch_offset": offset, "partition_max_bytes": 1024} for p, offset in partitions.items()]}]


def _answer(name: str, partitions: dict[int, tuple[int, bytes]], error: int = 0) -> dict:
    return {"throttle_time_ms": 0, "error_code": 0, "session_id": 0, "responses": [{"topic": name, "partitions": [
        {"partition_index": p, "error_code": error, "high_watermark": hw, "log_start_offset": 0, "records": records}
        for p, (hw, records) in partitions.items()]}]}


def _open(cache: FetchSessionCache, now: int, size: int = 2, privileged: bool = False) -> int:
    partitions = {("t", p): CachedPartition({"partition": p, "fetch_offset": 0, "partition_max_bytes": 1}) for p in range(size)}
    return cache.maybe_create_session(now, privileged, False, partitions)


def test_epochs_advance_from_one_wrap_to_one_and_final_stays_final():
    assert next_epoch(INITIAL_EPOCH) == 1
    assert next_epoch(41) == 42
    assert next_epoch(2**31 - 1) == 1
    assert next_epoch(FINAL_EPOCH) == FINAL_EPOCH


def test_a_full_request_opens_a_session_and_incremental_ones_carry_only_changes():
    cache = FetchSessionCache(10)
    full = cache.new_context(12, 0, INITIAL_EPOCH, _topics("t", {0: 0, 1: 0}), [], False, 0)
    assert isinstance(full, FullContext)
    session_id = full.respond(_answer("t", {0: (5, b"xx"), 1: (0, b"")}))["session_id"]
    assert session_id != INVALID_SESSION_ID and cache.get(session_id).epoch == 1

    # Nothing new: partition 0 was read to offset 5 already, so neither is in the answer.
    incremental = cache.new_context(12, session_id, 1, _topics("t", {0: 5}), [], False, 1)
    assert isinstance(incremental, IncrementalContext)
    assert [p["partition"] for t in incremental.topics([]) for p in t["partitions"]] == [0, 1]
    assert incremental.respond(_answer("t", {0: (5, b""), 1: (0, b"")}))["responses"] == []

    # Records in partition 1: it alone is sent, and moves behind partition 0 for the next read.
    incremental = cache.new_context(12, session_id, 2, [], [], False, 2)
    sent = incremental.respond(_answer("t", {0: (5, b""), 1: (3, b"yyy")}))
    assert [p["partition_index"] for t in sent["responses"] for p in t["partitions"]] == [1]
    assert sent["session_id"] == session_id
    assert list(cache.get(session_id).partitions) == [("t", 0), ("t", 1)]

    # An error is always sent, and the partition is sent again once it clears.
    incremental = cache.new_context(12, session_id, 3, [], [], False, 3)
    assert incremental.respond(_answer("t", {0: (-1, b""), 1: (-1, b"")}, error=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION))["responses"]
    incremental = cache.new_context(12, session_id, 4, [], [], False, 4)
    assert len(incremental.respond(_answer("t", {0: (5, b""), 1: (3, b"")}))["responses"][0]["partitions"]) == 2


def test_session_errors_follow_kafka():
    cache = FetchSessionCache(10)
    session_id = _open(cache, 0)
    assert cache.new_context(12, session_id + 1, 1, [], [], False, 0) == ErrorCode.FETCH_SESSION_ID_NOT_FOUND
    assert cache.new_context(12, 0, 3, [], [], False, 0) == ErrorCode.FETCH_SESSION_ID_NOT_FOUND
    assert cache.new_context(12, session_id, 2, [], [], False, 0) == ErrorCode.INVALID_FETCH_SESSION_EPOCH
    assert cache.new_context(13, session_id, 1, [], [], False, 0) == ErrorCode.FETCH_SESSION_TOPIC_ID_ERROR
    assert cache.get(session_id).epoch == 1, "a refused request leaves the session as it was"


def test_a_request_parked_while_another_advanced_the_session_is_refused():
    cache = FetchSessionCache(10)
    session_id = _open(cache, 0)
    parked = cache.new_context(12, session_id, 1, [], [], False, 0)
    cache.new_context(12, session_id, 2, [], [], False, 0)
    answer = parked.respond(_answer("t", {0: (1, b"x")}))
    assert (answer["error_code"], answer["session_id"], answer["responses"]) == (ErrorCode.INVALID_FETCH_SESSION_EPOCH, session_id, [])


def test_forgetting_every_partition_or_a_final_epoch_closes_the_session():
    cache = FetchSessionCache(10)
    session_id = _open(cache, 0, size=2)
    sessionless = cache.new_context(12, session_id, 1, [], [{"topic": "t", "partitions": [0, 1]}], False, 0)
    assert not isinstance(sessionless, (FullContext, IncrementalContext)) and cache.get(session_id) is None
    session_id = _open(cache, 0)
    assert not isinstance(cache.new_context(12, session_id, FINAL_EPOCH, [], [], False, 0), (FullContext, IncrementalContext))
    assert len(cache) == 0 and cache.total_partitions == 0


def test_a_full_cache_evicts_a_stale_session_first():
    cache = FetchSessionCache(2)
    stale, busy = _open(cache, 0), _open(cache, 1)
    cache.touch(cache.get(busy), EVICTION_MS)
    newcomer = _open(cache, EVICTION_MS + 1, size=1)
    assert newcomer != INVALID_SESSION_ID
    assert cache.get(stale) is None and cache.get(busy) is not None and cache.evictions == 1


def test_a_consumer_evicts_only_a_smaller_session_created_over_two_minutes_ago():
    cache = FetchSessionCache(2)
    small, large = _open(cache, 0, size=1), _open(cache, 0, size=5)
    # Both in use, neither old: nothing may go.
    for session_id in (small, large):
        cache.touch(cache.get(session_id), 1000)
    assert _open(cache, 1001, size=10) == INVALID_SESSION_ID
    # Old now (touched after two minutes), still in use: the smallest goes, for a larger newcomer.
    for session_id in (small, large):
        cache.touch(cache.get(session_id), EVICTION_MS + 10)
    assert _open(cache, EVICTION_MS + 11, size=1) == INVALID_SESSION_ID
    assert _open(cache, EVICTION_MS + 11, size=2) != INVALID_SESSION_ID
    assert cache.get(small) is None and cache.get(large) is not None


def test_a_follower_evicts_a_new_consumer_session_and_no_consumer_evicts_a_follower():
    cache = FetchSessionCache(1)
    consumer = _open(cache, 0, size=100)
    follower = _open(cache, 1, size=1, privileged=True)
    assert follower != INVALID_SESSION_ID and cache.get(consumer) is None
    cache.touch(cache.get(follower), EVICTION_MS + 10)
    assert _open(cache, EVICTION_MS + 11, size=1000) == INVALID_SESSION_ID


def test_zero_slots_keep_every_client_sessionless():
    cache = FetchSessionCache(0)
    full = cache.new_context(12, 0, INITIAL_EPOCH, _topics("t", {0: 0}), [], False, 0)
    assert full.respond(_answer("t", {0: (0, b"")}))["session_id"] == INVALID_SESSION_ID


def _produce(bootstrap: str, topic: str, partitions: int, per_partition: int) -> set[tuple[int, bytes]]:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    sent = set()
    for index in range(per_partition):
        for partition in range(partitions):
            value = f"{partition}-{index}".encode()
            producer.send(topic, value, partition=partition)
            sent.add((partition, value))
    producer.flush(30)
    producer.close()
    return sent


@pytest.mark.parametrize("partitions", [200])
def test_kafka_python_reads_many_partitions_exactly_through_a_session(partitions: int):
    """kafka-python keeps a session by default: 200 partitions read in ~4 KiB fetches, every record
    once, and most of its fetches were incremental."""
    with running_broker(data_dir=None) as broker:
        topic = f"sessions-{uuid.uuid4().hex[:8]}"
        broker.create_topic(topic, partitions)
        sent = _produce(broker.bootstrap_servers, topic, partitions, 10)
        consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap_servers, enable_auto_commit=False,
                                 fetch_max_bytes=4096, max_partition_fetch_bytes=512, fetch_max_wait_ms=100)
        got: list[tuple[int, bytes]] = []
        try:
            consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
            consumer.seek_to_beginning()
            for _ in range(400):
                for records in consumer.poll(timeout_ms=200).values():
                    got += [(r.partition, r.value) for r in records]
                if len(got) >= len(sent):
                    break
        finally:
            consumer.close()
        assert sorted(got) == sorted(sent), "every record exactly once"
        sessions = broker.broker.services.fetch_sessions
        assert sessions.incremental_fetches >= 10


def test_the_java_consumer_reads_many_partitions_exactly_through_a_session():
    """The Java consumer (compat/java/driver) over 120 partitions in ~4 KiB fetches."""
    from compat.kafka import DRIVER_JAR, run_driver

    if not DRIVER_JAR.exists():
        pytest.skip("the Java driver is not built (python -m compat.kafka --fetch)")
    with running_broker(data_dir=None) as broker:
        topic = f"sessions-java-{uuid.uuid4().hex[:8]}"
        broker.create_topic(topic, 120)
        produced = run_driver(broker.bootstrap_servers, topic, "produce", count=1200)
        consumed = run_driver(broker.bootstrap_servers, topic, "consume",
                              config={"max.partition.fetch.bytes": "256", "fetch.max.bytes": "4096"})
        assert produced["ok"] and consumed["ok"], consumed
        key = lambda r: (r["partition"], r["offset"], r["key"])  # noqa: E731
        assert sorted(map(key, consumed["records"])) == sorted(map(key, produced["records"]))
        assert broker.broker.services.fetch_sessions.incremental_fetches >= 10
