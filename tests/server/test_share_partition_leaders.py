"""Share-partitions owned by their topic partition's leader, as among brokers over one PostgreSQL
database, without sockets: two coordinators over one storage stand for two brokers, and what one
writes to the state log the other reads when it becomes the leader, or at a group's first share
session (an empty group's offsets changed through its coordinator)."""

from __future__ import annotations

from ottla.server.share.partition import AcquiredRange
from ottla.storage import Storage
from ottla.wire.errors import ErrorCode
from tests.server.test_share_coordinator import ACCEPT, Harness


def test_a_new_leader_reads_its_share_partitions_from_the_log():
    storage = Storage.open(None)
    previous = Harness(storage)
    topic_id = previous.topic()
    leader = Harness(storage)
    leader.join("stale")
    assert leader.acquire("stale", topic_id, max_records=2) == [AcquiredRange(0, 1, 1)]
    previous.join("m1")
    assert previous.acquire("m1", topic_id, max_records=6) == [AcquiredRange(0, 5, 1)]
    assert previous.share.acknowledge("g", "m1", topic_id, 0, [(0, 2, [ACCEPT])], False)[0] is ErrorCode.NONE

    # A broker that does not lead the partition keeps no copy of its share-partitions.
    assert leader.share.leader_moved(topic_id, 0, leads=False) is False
    assert leader.share.start_offset("g", topic_id, 0) is None
    # Becoming its leader, it acquires nothing until it has read them again.
    assert leader.share.leader_moved(topic_id, 0, leads=True) is True
    assert leader.acquire("stale", topic_id) == []
    leader.share.partition_loaded(topic_id, 0)
    assert leader.share.start_offset("g", topic_id, 0) == 3
    # 3 to 5 were acquired at the previous leader and not acknowledged: delivered again, counted.
    assert leader.acquire("m2", topic_id) == [AcquiredRange(3, 5, 2), AcquiredRange(6, 9, 1)]
    # A new epoch of the same leader is no move: what it holds stays.
    assert leader.share.leader_moved(topic_id, 0, leads=True) is False
    assert leader.share.start_offset("g", topic_id, 0) == 3


def test_a_leader_takes_up_offsets_changed_through_the_coordinator():
    storage = Storage.open(None)
    leader = Harness(storage)
    topic_id = leader.topic()
    leader.join("m1")
    assert leader.acquire("m1", topic_id, max_records=4) == [AcquiredRange(0, 3, 1)]
    assert leader.share.acknowledge("g", "m1", topic_id, 0, [(0, 3, [ACCEPT])], False)[0] is ErrorCode.NONE
    held = leader.share.idle_partitions("g")
    coordinator = Harness(storage)
    coordinator.share.alter_start_offset("g", topic_id, 0, 1)

    leader.share.take_written_elsewhere(held)
    assert leader.share.start_offset("g", topic_id, 0) == 1
    assert leader.acquire("m1", topic_id, max_records=2) == [AcquiredRange(1, 2, 1)]
    # One with records acquired is not offered; one offered, then changed here before the log
    # was read, is left as it is: its own record is the newer.
    assert leader.share.idle_partitions("g") == {}
    assert leader.share.acknowledge("g", "m1", topic_id, 0, [(1, 2, [ACCEPT])], False)[0] is ErrorCode.NONE
    held = leader.share.idle_partitions("g")
    coordinator.share.alter_start_offset("g", topic_id, 0, 0)
    assert leader.acquire("m1", topic_id, max_records=1) == [AcquiredRange(3, 3, 1)]
    leader.share.take_written_elsewhere(held)
    assert leader.share.start_offset("g", topic_id, 0) == 3
