"""A share coordinator that takes `__share_group_state` over from another broker (over one
PostgreSQL database) reads it again: its own groups, members and in-flight records give way to
what the log holds, without sockets (two coordinators over one storage stand for two brokers)."""

from __future__ import annotations

from ottla.server.share.partition import AcquiredRange
from ottla.storage import Storage
from ottla.wire.errors import ErrorCode
from tests.server.test_share_coordinator import ACCEPT, Harness


def test_a_reload_replaces_the_state_with_the_logs():
    storage = Storage.open(None)
    previous = Harness(storage)
    topic_id = previous.topic()
    taker = Harness(storage)
    taker.join("stale")
    assert taker.acquire("stale", topic_id, max_records=2) == [AcquiredRange(0, 1, 1)]
    # The previous coordinator, which never heard of "stale", goes on and writes last.
    previous.join("m1")
    assert previous.acquire("m1", topic_id, max_records=6) == [AcquiredRange(0, 5, 1)]
    assert previous.share.acknowledge("g", "m1", topic_id, 0, [(0, 2, [ACCEPT])], False)[0] is ErrorCode.NONE

    taker.share.reload()
    assert taker.share.start_offset("g", topic_id, 0) == 3
    # Members are in the groups' records (both coordinators wrote theirs to one log here).
    assert set(taker.share.groups["g"].members) == {"stale", "m1"}
    taker.join("m2")
    # 3 to 5 were in flight at the previous coordinator: delivered again, counted.
    assert taker.acquire("m2", topic_id) == [AcquiredRange(3, 5, 2), AcquiredRange(6, 9, 1)]
