"""What the broker counts as it serves: plain integers in dicts and lists, no locks.

The broker owns one `BrokerMetrics` per process (it outlives restarts, as a Kafka
broker's JMX counters outlive nothing but the JVM). The dispatcher calls
`observe_request` once per answered request and the produce path `produced` once per
partition appended, both on the event loop, so every counter here
is touched by one thread only; readers (`ottla.server.metrics.exposition`) run on the
same loop between requests and see a consistent snapshot. What can be computed when
asked (log sizes, offsets, lag, group states) is computed at scrape time instead of
being counted on the hot path.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Callable, Mapping
from typing import Any

from ottla.wire.api import ApiKey

# Upper bounds, in seconds, of the request latency histogram's buckets (+Inf is implied):
# from a fast Metadata answer to a Fetch parked for its whole max.wait.ms.
LATENCY_BOUNDS: tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Most requests fall in the first bucket: one float comparison finds it, where a bisect call
# costs about as much as the rest of the count.
_FIRST_BOUND = LATENCY_BOUNDS[0]
_API_SLOTS = max(ApiKey) + 1
_FETCH = int(ApiKey.FETCH)


class RequestStats:
    """One API's counters: requests, those answered with a top-level error, latency."""

    __slots__ = ("requests", "errors", "buckets", "seconds", "throttle_ms")

    def __init__(self) -> None:
        self.requests = 0
        self.errors: dict[int, int] = {}
        self.buckets = [0] * (len(LATENCY_BOUNDS) + 1)
        self.seconds = 0.0
        self.throttle_ms = 0


class TopicStats:
    """Kafka's BrokerTopicMetrics for one topic."""

    __slots__ = ("bytes_in", "messages_in", "bytes_out", "produce_requests", "failed_produce_requests", "fetch_requests", "failed_fetch_requests")

    def __init__(self) -> None:
        self.bytes_in = 0
        self.messages_in = 0
        self.bytes_out = 0
        self.produce_requests = 0
        self.failed_produce_requests = 0
        self.fetch_requests = 0
        self.failed_fetch_requests = 0


class BrokerMetrics:
    """Counters of one broker process. `observe_request` is the only hot-path entry."""

    def __init__(self) -> None:
        self.started = time.time()
        self.apis: list[RequestStats | None] = [None] * _API_SLOTS
        self.topics: dict[str, TopicStats] = {}
        self.connections_accepted: dict[str, int] = {}
        # Storage's topic lookup by id (the broker sets it): Fetch v13+ and Produce v13 name topics by id only.
        self.topic_by_id: Callable[[bytes], Any] = _no_topic
        # Event-loop lag: how late a timer due every `_LAG_INTERVAL` seconds fired, last and worst.
        self.loop_lag_seconds = 0.0
        self.loop_lag_max_seconds = 0.0
        self._lag_timer: asyncio.TimerHandle | None = None
        self._lag_due = 0.0

    def topic(self, name: str) -> TopicStats:
        stats = self.topics.get(name)
        if stats is None:
            stats = self.topics[name] = TopicStats()
        return stats

    def forget_topic(self, name: str) -> None:
        """A deleted topic's counters go with it, as Kafka removes its BrokerTopicMetrics."""
        self.topics.pop(name, None)

    def observe_request(self, api_key: int, response: Mapping[str, Any] | None, seconds: float) -> None:
        """Count one answered request (`response` None: acks=0 Produce) that took `seconds`.
        Per-topic produce counts come from the produce path (`produced`), which has them."""
        stats = self.apis[api_key] if api_key < _API_SLOTS else None
        if stats is None:
            if api_key >= _API_SLOTS:
                return
            stats = self.apis[api_key] = RequestStats()
        stats.requests += 1
        stats.buckets[0 if seconds <= _FIRST_BOUND else bisect.bisect_left(LATENCY_BOUNDS, seconds)] += 1
        stats.seconds += seconds
        if response is not None:
            error = response.get("error_code", 0)
            if error:
                stats.errors[error] = stats.errors.get(error, 0) + 1
            stats.throttle_ms += response.get("throttle_time_ms", 0) or 0
            if api_key == _FETCH:
                self._fetched(response)

    def produced(self, topic: str, size: int, records: int) -> None:
        """One partition's batches appended (`size` bytes, `records` offsets): Kafka's bytes
        and messages in, counted as ReplicaManager does from the append's offset range."""
        stats = self.topics.get(topic) or self.topic(topic)
        stats.produce_requests += 1
        stats.bytes_in += size
        stats.messages_in += records

    def produce_failed(self, topic: str) -> None:
        """One partition of a Produce refused or failed."""
        stats = self.topics.get(topic) or self.topic(topic)
        stats.produce_requests += 1
        stats.failed_produce_requests += 1

    def _fetched(self, response: Mapping[str, Any]) -> None:
        for topic in response.get("responses", ()):
            name = topic.get("topic")
            if not name:
                info = self.topic_by_id(topic.get("topic_id", b""))
                if info is None:
                    continue
                name = info.name
            stats = self.topic(name)
            for partition in topic["partitions"]:
                stats.fetch_requests += 1
                if partition["error_code"]:
                    stats.failed_fetch_requests += 1
                records = partition.get("records")
                if records is not None:
                    stats.bytes_out += _size(records)

    # --- event-loop lag --------------------------------------------------------------

    def start_lag_probe(self, loop: asyncio.AbstractEventLoop) -> None:
        self.stop_lag_probe()
        self._lag_due = loop.time() + _LAG_INTERVAL
        self._lag_timer = loop.call_at(self._lag_due, self._lag_tick, loop)

    def stop_lag_probe(self) -> None:
        if self._lag_timer is not None:
            self._lag_timer.cancel()
            self._lag_timer = None

    def _lag_tick(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        self.loop_lag_seconds = max(now - self._lag_due, 0.0)
        self.loop_lag_max_seconds = max(self.loop_lag_max_seconds, self.loop_lag_seconds)
        self._lag_due = now + _LAG_INTERVAL
        self._lag_timer = loop.call_at(self._lag_due, self._lag_tick, loop)


_LAG_INTERVAL = 0.5


def _no_topic(topic_id: bytes) -> None:
    return None


def _size(records: Any) -> int:
    """Bytes of a Fetch partition's records: a buffer, or a `Spliced` of buffers and file regions."""
    if isinstance(records, (bytes, bytearray, memoryview)):
        return len(records)
    size: int = getattr(records, "size", 0)
    return size
