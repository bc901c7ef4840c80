"""server/txn/database_markers.py without a database: a partition's markers in order, retried
while the storage (or the broker a marker is sent to) is away, given up only for a partition
that is gone, and fetchers woken once a marker is in."""

from __future__ import annotations

import asyncio

from ottla.server.txn.database_markers import MarkerWrites
from ottla.wire.errors import ErrorCode, KafkaError


async def test_markers_are_written_in_order_retried_while_storage_is_away_and_settled_with_their_outcome():
    woken: list[tuple[str, int]] = []
    written: list[str] = []
    markers = MarkerWrites(lambda topic, partition: woken.append((topic, partition)))
    first_may_finish = asyncio.Event()
    # The database away, then (a marker sent to another broker) that broker away and moved.
    away = [ErrorCode.NOT_LEADER_FOR_PARTITION, ErrorCode.NETWORK_EXCEPTION, ErrorCode.KAFKA_STORAGE_ERROR]

    async def first() -> None:
        await first_may_finish.wait()
        written.append("first")

    async def second() -> None:
        if away:
            raise KafkaError(away.pop())
        written.append("second")

    async def gone() -> None:
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)

    markers.start("t", 0, first)
    markers.start("t", 0, second)
    markers.start("deleted", 0, gone)
    await asyncio.sleep(0)
    assert written == [] and woken == []
    first_may_finish.set()
    settled = await markers.settled()
    assert written == ["first", "second"] and not away
    assert settled == {("t", 0): ErrorCode.NONE, ("deleted", 0): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION}
    assert woken == [("t", 0), ("t", 0)]
    # Settled again, nothing is under way: the last outcomes of the partitions asked about.
    assert await markers.settled([("deleted", 0), ("never", 1)]) == {("deleted", 0): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION}
