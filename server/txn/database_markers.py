"""COMMIT and ABORT markers into partitions whose appends are coroutines (the PostgreSQL engine).

The transaction coordinator is synchronous: one call writes a transaction's markers and moves
it on to CompleteCommit or CompleteAbort. Into a database partition a marker's append is a
coroutine, so `MarkerWrites` starts it as a task at once and keeps, per partition, the last
one: a partition's markers are appended in the order the coordinator wrote them (each waits
for the one before), and the partition's own lock is first come, first served, so a marker
lands before any append asked for after it. While the database is away a marker is retried,
as Kafka's TransactionMarkerChannelManager retries until a marker is written: a marker given
up would leave its transaction open in the partition and hold its last stable offset back
for good. A marker sent to another broker (server/txn/marker_channel.py) is retried the same
way while that broker is away or no longer leads the partition. Once written, the partition's
parked fetchers are woken.

EndTxn and WriteTxnMarkers await `settled` before they answer, so a client told that its
transaction ended finds the markers in the partitions, as with the local engine.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from ottla.wire.errors import ErrorCode, KafkaError

log = logging.getLogger("ottla.txn")

_FIRST_RETRY_S = 0.1
_LAST_RETRY_S = 5.0

# Why a marker did not arrive that a later attempt may get past: the database away, or the
# partition's leader away, moving or loading (TransactionMarkerRequestCompletionHandler retries
# these, and a disconnection, for the partition's leader looked up again). A leader that refuses
# this broker CLUSTER_ACTION is asked again too, until an operator grants it: Kafka's
# coordinator cannot complete such a transaction either, and a marker given up would leave the
# group's offsets pending for good.
RETRIABLE = frozenset({
    ErrorCode.KAFKA_STORAGE_ERROR, ErrorCode.NETWORK_EXCEPTION, ErrorCode.REQUEST_TIMED_OUT, ErrorCode.NOT_LEADER_FOR_PARTITION,
    ErrorCode.NOT_COORDINATOR, ErrorCode.COORDINATOR_NOT_AVAILABLE, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
    ErrorCode.NOT_ENOUGH_REPLICAS, ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND, ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
})


class MarkerWrites:
    """The markers being written into database partitions, by (topic, partition)."""

    def __init__(self, notify_data: Callable[[str, int], None]) -> None:
        self._notify_data = notify_data
        self._pending: dict[tuple[str, int], asyncio.Task[ErrorCode]] = {}
        # What the last marker finished into each partition got.
        self._outcomes: dict[tuple[str, int], ErrorCode] = {}

    def start(self, topic: str, partition: int, append: Callable[[], Any]) -> None:
        """Write a marker with `append`, a coroutine function called again for each retry,
        after the partition's markers already under way."""
        key = (topic, partition)
        task = asyncio.get_running_loop().create_task(self._write(topic, partition, append, self._pending.get(key)))
        self._pending[key] = task
        task.add_done_callback(lambda done: self._forget(key, done))

    def _forget(self, key: tuple[str, int], done: asyncio.Task[ErrorCode]) -> None:
        if self._pending.get(key) is done:
            del self._pending[key]
        if not done.cancelled() and done.exception() is None:
            self._outcomes[key] = done.result()

    async def _write(
        self, topic: str, partition: int, append: Callable[[], Any], previous: asyncio.Task[ErrorCode] | None
    ) -> ErrorCode:
        if previous is not None:
            await asyncio.wait([previous])
        delay = _FIRST_RETRY_S
        while True:
            try:
                await append()
            except KafkaError as exc:
                if exc.code not in RETRIABLE:
                    # Deleted since it joined (UNKNOWN_TOPIC_OR_PARTITION): Kafka drops its marker too.
                    log.info("no marker for %s-%d: %s", topic, partition, exc.code.name)
                    return exc.code
                log.warning("marker for %s-%d not written yet, retrying in %.1f s: %s", topic, partition, delay, exc.message)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _LAST_RETRY_S)
                continue
            self._notify_data(topic, partition)
            return ErrorCode.NONE

    def under_way(self, partitions: Iterable[tuple[str, int]]) -> set[tuple[str, int]]:
        """Those of `partitions` with a marker being written."""
        return {key for key in partitions if key in self._pending}

    async def settled(self, partitions: Iterable[tuple[str, int]] | None = None) -> dict[tuple[str, int], ErrorCode]:
        """Wait for the markers under way (into `partitions`, or all); then what the last
        marker into each of those partitions got."""
        wanted = set(self._pending) if partitions is None else set(partitions)
        tasks = [task for key, task in self._pending.items() if key in wanted]
        if tasks:
            await asyncio.wait(tasks)
        return {key: self._outcomes[key] for key in wanted if key in self._outcomes}
