"""Share groups (KIP-932) driven directly: the share-partition state machine, membership
and persistence, with no sockets. Time is a manual clock, so an acquisition lock or a
member's session expires by moving time, never by sleeping.
"""

from __future__ import annotations

from typing import Any

import pytest

from ottla.server.coordinator import IllegalTransition, Timers
from ottla.server.share import RecordState, ShareConfig, ShareCoordinator, SharePartition
from ottla.server.share.group import assign
from ottla.server.share.partition import RECORD_TRANSITIONS, AcquiredRange, SharePartitionLimits, StateBatch
from ottla.storage import Storage
from ottla.storage.producer_state import control_batch
from ottla.wire.errors import ErrorCode
from ottla.wire.records import Record, build_batch, iter_records, scan_batches
from tests.server.test_groups_coordinator import ManualClock

ACCEPT, RELEASE, REJECT, RENEW, GAP = 1, 2, 3, 4, 0
LOCK_MS = 1000


def partition(start: int = 0, delivery_limit: int = 3, max_locks: int = 100) -> tuple[SharePartition, ManualClock, list[int]]:
    clock = ManualClock()
    released: list[int] = []
    limits = SharePartitionLimits(record_lock_duration_ms=LOCK_MS, delivery_count_limit=delivery_limit, max_record_locks=max_locks)
    return SharePartition(start, Timers(clock), limits, lambda p: released.append(p.start_offset)), clock, released


# --- the share-partition state machine --------------------------------------------------


def test_records_are_acquired_once_until_released():
    sp, _, _ = partition()
    assert sp.acquire("a", [(0, 4)], 10) == [AcquiredRange(0, 4, 1)]
    assert sp.acquire("b", [(0, 4)], 10) == []
    assert sp.acknowledge("a", 0, 1, [RELEASE]) is ErrorCode.NONE
    assert sp.next_fetch_offset() == 0
    assert sp.acquire("b", [(0, 4)], 10) == [AcquiredRange(0, 1, 2)]


def test_acknowledged_records_move_the_start_offset():
    sp, _, _ = partition()
    sp.acquire("a", [(0, 9)], 10)
    assert sp.acknowledge("a", 2, 3, [ACCEPT]) is ErrorCode.NONE
    assert sp.start_offset == 0
    assert sp.acknowledge("a", 0, 1, [ACCEPT, REJECT]) is ErrorCode.NONE
    assert sp.start_offset == 4
    assert sp.acknowledge("a", 4, 9, [ACCEPT]) is ErrorCode.NONE
    assert (sp.start_offset, sp.end_offset, sp.records) == (10, 10, {})


def test_an_expired_lock_makes_records_available_again():
    sp, clock, released = partition()
    sp.acquire("a", [(0, 2)], 10)
    clock.advance(LOCK_MS / 1000 - 0.001)
    assert sp.records[0].state is RecordState.ACQUIRED
    clock.advance(0.002)
    assert [sp.records[o].state for o in range(3)] == [RecordState.AVAILABLE] * 3
    assert released == [0]
    assert sp.acknowledge("a", 0, 2, [ACCEPT]) is ErrorCode.INVALID_RECORD_STATE


def test_renew_restarts_the_lock():
    sp, clock, _ = partition()
    sp.acquire("a", [(0, 0)], 10)
    clock.advance(0.9)
    assert sp.acknowledge("a", 0, 0, [RENEW]) is ErrorCode.NONE
    clock.advance(0.9)
    assert sp.records[0].state is RecordState.ACQUIRED
    clock.advance(0.2)
    assert sp.records[0].state is RecordState.AVAILABLE


def test_the_delivery_count_limit_archives_a_record():
    sp, clock, _ = partition(delivery_limit=3)
    for attempt in (1, 2, 3):
        assert sp.acquire("a", [(0, 0)], 10) == [AcquiredRange(0, 0, attempt)]
        clock.advance(LOCK_MS / 1000)
    assert sp.acquire("a", [(0, 0)], 10) == []
    assert sp.start_offset == 1


def test_release_at_the_limit_archives_too():
    sp, _, _ = partition(delivery_limit=1)
    sp.acquire("a", [(0, 1)], 10)
    assert sp.acknowledge("a", 0, 1, [RELEASE]) is ErrorCode.NONE
    assert sp.start_offset == 2


@pytest.mark.parametrize("member, first, last", [
    ("b", 0, 0),  # another member's record
    ("a", 4, 5),  # between two acquisitions, never acquired
    ("a", 6, 6),  # acknowledged already, behind a record still held
])
def test_acknowledging_records_not_held_is_invalid_record_state(member, first, last):
    sp, _, _ = partition()
    sp.acquire("a", [(0, 3)], 4)
    sp.acquire("c", [(6, 7)], 2)
    sp.acknowledge("c", 6, 6, [ACCEPT])
    assert sp.acknowledge(member, first, last, [ACCEPT]) is ErrorCode.INVALID_RECORD_STATE
    assert all(sp.records[offset].state is RecordState.ACQUIRED for offset in range(4))


def test_offsets_before_the_start_offset_are_skipped():
    sp, _, _ = partition()
    sp.acquire("a", [(0, 2)], 10)
    assert sp.acknowledge("a", 0, 0, [ACCEPT]) is ErrorCode.NONE
    assert sp.acknowledge("a", 0, 0, [ACCEPT]) is ErrorCode.NONE
    assert sp.acknowledge("a", 0, 1, [REJECT]) is ErrorCode.NONE
    assert (sp.start_offset, sp.records[2].state) == (2, RecordState.ACQUIRED)


@pytest.mark.parametrize("first, last, types", [
    (2, 1, [ACCEPT]), (0, 2, [ACCEPT, ACCEPT]), (0, 0, [9]),
    (100, 101, [ACCEPT]),  # past the last offset handed out
    (2, 3, [ACCEPT]),  # reaching past it
])
def test_malformed_acknowledgements_are_invalid_requests(first, last, types):
    sp, _, _ = partition()
    sp.acquire("a", [(0, 2)], 10)
    assert sp.acknowledge("a", first, last, types) is ErrorCode.INVALID_REQUEST


def test_a_refused_batch_changes_nothing():
    sp, _, _ = partition()
    sp.acquire("a", [(0, 1)], 10)
    sp.acquire("b", [(2, 2)], 10)
    assert sp.acknowledge("a", 0, 2, [ACCEPT]) is ErrorCode.INVALID_RECORD_STATE
    assert sp.records[0].state is RecordState.ACQUIRED


def test_new_records_stop_at_the_end_of_the_batch_where_the_limit_falls_but_released_ones_do_not():
    # Kafka 4.4 acquires to the end of the log batch the in-flight limit falls in (tests/server/test_share_fetch_lock_limit.py).
    sp, _, _ = partition(max_locks=3)
    assert sp.acquire("a", [(0, 9)], 10) == [AcquiredRange(0, 9, 1)]
    assert sp.acquire("b", [(0, 9)], 10) == []
    sp.acknowledge("a", 1, 1, [RELEASE])
    assert sp.acquire("b", [(0, 9)], 10) == [AcquiredRange(1, 1, 2)]


def test_max_records_is_soft_between_batches_unless_the_limit_is_strict():
    sp, _, _ = partition()
    assert sp.acquire("a", [(0, 4), (5, 9)], 3) == [AcquiredRange(0, 4, 1)]
    assert sp.acquire("b", [(5, 9)], 3, whole_batches=False) == [AcquiredRange(5, 7, 1)]


def test_max_records_and_gaps_between_batches():
    sp, _, _ = partition()
    assert sp.acquire("a", [(0, 1), (5, 9)], 4, whole_batches=False) == [AcquiredRange(0, 1, 1), AcquiredRange(5, 6, 1)]
    sp.acknowledge("a", 0, 1, [ACCEPT])
    assert sp.start_offset == 5  # offsets 2-4 hold no record


def test_leaving_member_releases_what_it_holds():
    sp, _, _ = partition()
    sp.acquire("a", [(0, 1)], 10)
    sp.acquire("b", [(2, 3)], 10)
    assert sp.release_member("a")
    assert [sp.records[o].state for o in range(4)] == [RecordState.AVAILABLE] * 2 + [RecordState.ACQUIRED] * 2


def test_a_snapshot_restores_acquired_records_as_available_with_their_count():
    sp, _, _ = partition()
    sp.acquire("a", [(0, 5)], 10)
    sp.acknowledge("a", 1, 2, [ACCEPT, REJECT])
    snapshot = sp.snapshot()
    assert snapshot == [StateBatch(0, 0, RecordState.AVAILABLE, 1), StateBatch(1, 1, RecordState.ACKNOWLEDGED, 1),
                        StateBatch(2, 2, RecordState.ARCHIVED, 1), StateBatch(3, 5, RecordState.AVAILABLE, 1)]
    restored, _, _ = partition()
    restored.restore(sp.start_offset, snapshot)
    assert restored.acquire("b", [(0, 9)], 10) == [AcquiredRange(0, 0, 2), AcquiredRange(3, 5, 2), AcquiredRange(6, 9, 1)]


def test_a_record_acquired_for_its_last_delivery_is_archived_by_a_restart():
    """The snapshot stores an acquired record AVAILABLE with this delivery counted: restored at
    the delivery limit it is ARCHIVED, not delivered once more past the limit."""
    sp, _, _ = partition()
    limit = sp.limits.delivery_count_limit
    for _ in range(limit - 1):
        sp.acquire("a", [(0, 1)], 10)
        sp.acknowledge("a", 0, 1, [RELEASE])
    assert sp.acquire("a", [(0, 0)], 10) == [AcquiredRange(0, 0, limit)]
    restored, _, _ = partition()
    restored.restore(sp.start_offset, sp.snapshot())
    assert restored.acquire("b", [(0, 1)], 10) == [AcquiredRange(1, 1, limit)]
    assert 0 not in restored.records and restored.start_offset == 1  # archived, and the start moved past it


def test_record_transitions_are_a_table():
    with pytest.raises(IllegalTransition):
        RECORD_TRANSITIONS.check(RecordState.ACKNOWLEDGED, RecordState.AVAILABLE)
    assert not RECORD_TRANSITIONS.allows(RecordState.ARCHIVED, RecordState.ACQUIRED)


# --- assignment ---------------------------------------------------------------------------


def test_one_partition_goes_to_every_member():
    members = {"m1": ["t"], "m2": ["t"], "m3": ["t"]}
    assert assign(members, {"t": (b"T", [0])}) == {m: {b"T": [0]} for m in members}


def test_partitions_are_spread_when_there_are_enough():
    result = assign({"m1": ["t"], "m2": ["t"]}, {"t": (b"T", [0, 1, 2, 3])})
    assert result == {"m1": {b"T": [0, 2]}, "m2": {b"T": [1, 3]}}
    assert assign({"m1": ["t"], "m2": ["u"]}, {"t": (b"T", [0])}) == {"m1": {b"T": [0]}, "m2": {}}
    # Only the partitions given (those whose share state is initialized) are assigned.
    assert assign({"m1": ["t"], "m2": ["t"]}, {"t": (b"T", [1, 3])}) == {"m1": {b"T": [1]}, "m2": {b"T": [3]}}


# --- the coordinator: membership, fetching, persistence -------------------------------------


class Harness:
    def __init__(self, storage: Storage | None = None, dead_letters: bool = False, **config: Any) -> None:
        self.storage = storage or Storage.open(None)
        self.clock = ManualClock()
        self.woken: list[tuple[str, int]] = []
        settings = {"record_lock_duration_ms": LOCK_MS, "session_timeout_ms": 5000, "auto_offset_reset": "earliest", **config}
        self.share = ShareCoordinator(self.storage, ShareConfig(**settings), self.clock, lambda t, p: self.woken.append((t, p)),
                                      wall_clock_ms=lambda: 1_700_000_000_000, dead_letters=lambda: dead_letters)
        self.share.load()

    def topic(self, name: str = "q", records: int = 10) -> bytes:
        info = self.storage.topic(name) or self.storage.create_topic(name, 1, {})
        batch = build_batch([Record(offset=i, timestamp=0, key=None, value=b"v%d" % i) for i in range(records)])
        self.storage.partition(name, 0).append(batch)
        return info.topic_id

    def join(self, member: str, group: str = "g", topics: tuple[str, ...] = ("q",)) -> Any:
        return self.share.heartbeat(group, member, 0, None, list(topics), "client", "/127.0.0.1")

    def acquire(self, member: str, topic_id: bytes, group: str = "g", max_records: int = 100) -> list[AcquiredRange]:
        """Exactly `max_records` (ShareFetch's RECORD_LIMIT acquire mode): the harness appends one batch."""
        return self.share.acquire(group, member, "q", topic_id, 0, max_records, 1 << 20, self.share.read_committed(group),
                                  whole_batches=False).ranges


def test_heartbeat_epochs():
    h = Harness()
    h.topic()
    error, member, sent = h.join("m1")
    assert (error, member.member_epoch, sent) == (ErrorCode.NONE, 2, {})
    assert h.share.heartbeat("g", "m1", 2, None, None, "c", "h")[0] is ErrorCode.NONE
    assert h.share.heartbeat("g", "m1", 7, None, None, "c", "h")[0] is ErrorCode.FENCED_MEMBER_EPOCH
    assert h.share.heartbeat("g", "nobody", 1, None, None, "c", "h")[0] is ErrorCode.UNKNOWN_MEMBER_ID
    assert h.share.heartbeat("g", "", 0, None, ["q"], "c", "h")[0] is ErrorCode.INVALID_REQUEST
    error, left, sent = h.share.heartbeat("g", "m1", -1, None, None, "c", "h")
    assert (error, left.member_epoch, sent, h.share.groups["g"].members) == (ErrorCode.NONE, -1, None, {})


def test_partitions_are_assigned_once_initialized_and_at_most_once_per_interval():
    """Kafka 4.4's sequence, read off its answers: a new group is at epoch 1 and the join
    bumps it; the joining heartbeat initializes the topic's share state, so the next one
    bumps the epoch again; the target follows at most once per assignment interval (1 s),
    and a member takes it (and is sent it) at its next heartbeat."""
    h = Harness()
    topic_id = h.topic()
    group = lambda: h.share.groups["g"]  # noqa: E731
    beat = lambda member, epoch: h.share.heartbeat("g", member, epoch, None, None, "c", "h")  # noqa: E731
    _, m1, sent = h.join("m1")
    assert (m1.member_epoch, sent, group().group_epoch, group().assignment_epoch) == (2, {}, 2, 2)
    h.clock.advance(0.2)
    assert beat("m1", 2)[2] is None
    assert (m1.member_epoch, group().group_epoch, group().assignment_epoch) == (2, 3, 2)
    _, m2, sent = h.join("m2")
    assert (m2.member_epoch, sent, group().group_epoch) == (2, {}, 4)
    h.clock.advance(0.8)
    assert beat("m1", 2)[2] == {topic_id: [0]}
    assert (m1.member_epoch, group().assignment_epoch, m2.assignment) == (4, 4, {})
    assert beat("m2", 2)[2] == {topic_id: [0]}
    assert beat("m2", 4)[2] is None
    # A member joining within the interval gets the current target's epoch and nothing yet.
    _, m3, sent = h.join("m3")
    assert (m3.member_epoch, sent, group().group_epoch) == (4, {}, 5)
    h.share.heartbeat("g", "m2", -1, None, None, "c", "h")
    assert (group().group_epoch, group().assignment_epoch) == (6, 4)
    h.clock.advance(1)
    assert beat("m3", 4)[1:] == (m3, {topic_id: [0]})
    assert (m3.member_epoch, sorted(group().target)) == (6, ["m1", "m3"])
    # A group AlterShareGroupOffsets created has its partition initialized: assigned at the join.
    h.share.alter_start_offset(h.share.group("altered").group_id, topic_id, 0, 0)
    assert (h.share.groups["altered"].group_epoch, h.share.groups["altered"].assignment_epoch) == (1, 1)
    _, member, sent = h.join("m1", group="altered")
    assert (member.member_epoch, sent) == (2, {topic_id: [0]})


def test_a_coordinator_move_gives_the_members_a_whole_session_from_then():
    """In a cluster another node takes the group's __consumer_offsets partition over: as
    Kafka's new coordinator after its load, each member has a whole session from the move."""
    h = Harness()
    h.topic()
    h.join("m1")
    h.join("other", group="elsewhere")
    h.clock.advance(4)
    h.share.rearm_sessions(lambda group_id: group_id == "g")
    h.clock.advance(4.99)
    assert list(h.share.groups["g"].members) == ["m1"] and h.share.groups["elsewhere"].members == {}
    h.clock.advance(0.02)
    assert h.share.groups["g"].members == {}


def test_a_silent_member_times_out_and_its_records_wait_for_their_lock():
    """As on Kafka 4.4 (a member timed out keeps its share session: only the session's end or
    the acquisition lock releases what it acquired), the others get its records once the lock
    expires, not at the timeout."""
    h = Harness(record_lock_duration_ms=60_000)
    topic_id = h.topic()
    h.join("m1")
    h.join("m2")
    assert h.acquire("m1", topic_id) == [AcquiredRange(0, 9, 1)]
    h.clock.advance(4)
    h.share.heartbeat("g", "m2", 2, None, None, "c", "h")
    h.clock.advance(2)  # m1's session (5 s) is over; m2 heartbeated 2 s ago
    assert list(h.share.groups["g"].members) == ["m2"]
    assert h.acquire("m2", topic_id) == []
    for _ in range(28):  # m2 heartbeating until m1's lock (60 s) is over
        h.clock.advance(2)
        h.share.heartbeat("g", "m2", h.share.groups["g"].members["m2"].member_epoch, None, None, "c", "h")
    assert list(h.share.groups["g"].members) == ["m2"]
    assert ("q", 0) in h.woken
    assert h.acquire("m2", topic_id) == [AcquiredRange(0, 9, 2)]


def test_latest_starts_at_the_end_of_the_log():
    h = Harness(auto_offset_reset="latest")
    topic_id = h.topic()
    h.join("m1")
    assert h.acquire("m1", topic_id) == []
    h.topic()
    assert h.acquire("m1", topic_id) == [AcquiredRange(10, 19, 1)]


def test_state_survives_a_restart():
    storage = Storage.open(None)
    h = Harness(storage)
    topic_id = h.topic()
    h.join("m1")
    assert h.acquire("m1", topic_id, max_records=6) == [AcquiredRange(0, 5, 1)]
    assert h.share.acknowledge("g", "m1", topic_id, 0, [(0, 2, [ACCEPT]), (3, 3, [REJECT])], False)[0] is ErrorCode.NONE
    h.share.close()
    again = Harness(storage)
    assert again.share.start_offset("g", topic_id, 0) == 4
    # Its members are in its records, as Kafka keeps them (`test_share_group_records`).
    assert list(again.share.groups["g"].members) == ["m1"]
    again.join("m2")
    # 4 and 5 were acquired, not acknowledged: delivered again, counted; nothing acknowledged returns.
    assert again.acquire("m2", topic_id) == [AcquiredRange(4, 5, 2), AcquiredRange(6, 9, 1)]


def test_acknowledging_in_another_partition_or_group_is_refused():
    h = Harness()
    topic_id = h.topic()
    h.join("m1")
    h.acquire("m1", topic_id)
    assert h.share.acknowledge("other", "m1", topic_id, 0, [(0, 0, [ACCEPT])], False) == (
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "This server does not host this topic-partition.")
    assert h.share.acknowledge("g", "m1", topic_id, 0, [(0, 0, [RENEW])], False)[0] is ErrorCode.INVALID_REQUEST


def test_a_partitions_acknowledgements_apply_all_or_none():
    """SharePartition rolls back every transition of a request when one fails, and batches must
    ascend without overlapping: a client told its acknowledgement failed finds nothing of it
    applied, and may acknowledge the same records again."""
    h = Harness()
    topic_id = h.topic()
    h.join("m1")
    assert h.acquire("m1", topic_id, max_records=6) == [AcquiredRange(0, 5, 1)]
    refused = {
        ErrorCode.INVALID_REQUEST: [[(0, 4, [ACCEPT]), (3, 5, [ACCEPT])], [(4, 5, [ACCEPT]), (0, 0, [ACCEPT])], [(0, 1, [ACCEPT]), (2, 12, [ACCEPT])]],
        ErrorCode.INVALID_RECORD_STATE: [[(0, 1, [ACCEPT]), (2, 3, [ACCEPT])]],
    }
    assert h.share.acknowledge("g", "m1", topic_id, 0, [(2, 2, [ACCEPT])], False)[0] is ErrorCode.NONE
    for error, requests in refused.items():
        for batches in requests:
            assert h.share.acknowledge("g", "m1", topic_id, 0, batches, False)[0] is error, batches
            assert h.share.start_offset("g", topic_id, 0) == 0
    assert h.share.acknowledge("g", "m1", topic_id, 0, [(0, 1, [ACCEPT]), (3, 5, [ACCEPT])], False)[0] is ErrorCode.NONE
    assert h.share.start_offset("g", topic_id, 0) == 6


def test_deleting_a_group_needs_it_empty():
    h = Harness()
    topic_id = h.topic()
    h.join("m1")
    h.acquire("m1", topic_id)
    assert h.share.delete_group("g") is ErrorCode.NON_EMPTY_GROUP
    h.share.heartbeat("g", "m1", 1, None, None, "c", "h")
    h.share.heartbeat("g", "m1", -1, None, None, "c", "h")
    assert h.share.delete_group("g") is ErrorCode.NONE
    assert h.share.delete_group("g") is ErrorCode.GROUP_ID_NOT_FOUND
    assert "g" not in Harness(h.storage).share.groups


def test_altering_offsets_of_an_unknown_group_creates_it():
    h = Harness()
    topic_id = h.topic()
    h.share.alter_start_offset(h.share.group("fresh").group_id, topic_id, 0, 3)
    again = Harness(h.storage)
    assert again.share.start_offset("fresh", topic_id, 0) == 3
    again.join("m1", group="fresh")
    assert again.acquire("m1", topic_id, group="fresh") == [AcquiredRange(3, 9, 1)]


def test_any_altered_start_offset_is_kept_and_the_next_fetch_makes_sense_of_it():
    h = Harness(auto_offset_reset="latest")
    topic_id = h.topic()
    h.storage.partition("q", 0).delete_records(4)
    group = h.share.group("g").group_id
    for below_start, expected in [(0, AcquiredRange(4, 9, 1)), (-1, None)]:
        h.share.alter_start_offset(group, topic_id, 0, below_start)
        # As Kafka 4.4 describes it: the offset as given, until a fetch moves it.
        assert Harness(h.storage).share.start_offset("g", topic_id, 0) == below_start
        h.join("m1")
        # Below the log start: from the log start; negative: share.auto.offset.reset (latest).
        assert h.acquire("m1", topic_id) == ([expected] if expected else [])
        h.share.heartbeat("g", "m1", -1, None, None, "c", "h")
    h.share.alter_start_offset(group, topic_id, 0, 25)
    h.join("m1")
    assert h.acquire("m1", topic_id) == []
    h.topic(records=20)
    assert h.acquire("m1", topic_id) == [AcquiredRange(25, 29, 1)]


def _dead_letters(storage: Storage, topic: str = "dlq.q") -> list[tuple[Any, Any, dict[str, bytes]]]:
    log = storage.partition(topic, 0)
    data = b"".join(bytes(chunk) for chunk in log.read(0, 1 << 20, min_one=True).chunks) if log.high_watermark else b""
    return [(r.key, r.value, {k: bytes(v) for k, v in r.headers}) for _, batch in scan_batches(data) for r in iter_records(batch)]


def test_rejected_and_exhausted_records_go_to_the_dead_letter_topic():
    """Kafka 4.4's records (read off the reference broker): one per archived record, headers
    only unless the group copies records, and only with share.version 2 into a topic that
    allows it."""
    h = Harness(dead_letters=True, delivery_count_limit=2, dlq_topic_name="dlq.q", dlq_copy_record=True)
    topic_id = h.topic(records=4)
    h.storage.create_topic("dlq.q", 1, {"errors.deadletterqueue.group.enable": "true"})
    h.join("m1")
    h.acquire("m1", topic_id)
    assert h.share.acknowledge("g", "m1", topic_id, 0, [(0, 0, [REJECT]), (1, 3, [RELEASE])], False)[0] is ErrorCode.NONE
    h.acquire("m1", topic_id)
    assert h.share.acknowledge("g", "m1", topic_id, 0, [(1, 1, [RELEASE])], False)[0] is ErrorCode.NONE
    h.clock.advance(LOCK_MS / 1000)  # 2 and 3 are released at the limit by their expired locks
    headers = [{"__dlq.errors.topic": b"q", "__dlq.errors.partition": b"0", "__dlq.errors.offset": str(offset).encode(),
                "__dlq.errors.group": b"g", "__dlq.errors.delivery.count": str(count).encode(), "__dlq.errors.message": message}
               for offset, count, message in [(0, 1, b"Offset rejected by client."), (1, 2, b"Offset delivery count exceeded the threshold."),
                                              (2, 2, b"Offset delivery count exceeded the threshold."),
                                              (3, 2, b"Offset delivery count exceeded the threshold.")]]
    assert _dead_letters(h.storage) == [(None, b"v%d" % i, headers[i]) for i in range(4)]
    data = b"".join(bytes(chunk) for chunk in h.storage.partition("dlq.q", 0).read(0, 1 << 20, min_one=True).chunks)
    assert {r.timestamp for _, batch in scan_batches(data) for r in iter_records(batch)} == {1_700_000_000_000}  # the broker's clock
    for dead_letters, topic_configs in [(False, {"errors.deadletterqueue.group.enable": "true"}), (True, {})]:
        off = Harness(dead_letters=dead_letters, dlq_topic_name="dlq.q")
        topic_id = off.topic(records=1)
        off.storage.create_topic("dlq.q", 1, topic_configs)
        off.join("m1")
        off.acquire("m1", topic_id)
        assert off.share.acknowledge("g", "m1", topic_id, 0, [(0, 0, [REJECT])], False)[0] is ErrorCode.NONE
        assert _dead_letters(off.storage) == []


def test_a_closed_connection_ends_its_share_sessions():
    h = Harness(record_lock_duration_ms=60_000)
    topic_id = h.topic()
    h.join("m1")
    session = h.share.sessions.open(0, "g", "m1")
    assert not isinstance(session, ErrorCode)
    session.connection = "127.0.0.1:5000"
    session.partitions[(topic_id, 0)] = None
    h.acquire("m1", topic_id)
    h.share.connection_closed("127.0.0.1:4000")
    assert h.share.sessions.get(0, "g", "m1") is session
    h.share.connection_closed("127.0.0.1:5000")
    assert h.share.sessions.get(0, "g", "m1") is None
    assert h.acquire("m1", topic_id) == [AcquiredRange(0, 9, 2)]


def test_group_configs_override_the_broker_settings():
    overrides = {("e", "share.auto.offset.reset"): "earliest", ("e", "share.delivery.count.limit"): 2,
                 ("d", "share.auto.offset.reset"): "by_duration:PT1H"}
    h = Harness(auto_offset_reset="latest", delivery_count_limit=5)
    h.share.group_config = lambda group, name: overrides.get((group, name), h.share._broker_default(group, name))
    topic_id = h.topic()
    for group in ("e", "d", "l"):
        h.join("m1", group=group)
    assert h.acquire("m1", topic_id, group="e") == [AcquiredRange(0, 9, 1)]
    assert h.acquire("m1", topic_id, group="l") == []
    # The records' timestamps (0) are far older than an hour: the start is the log's end.
    assert h.acquire("m1", topic_id, group="d") == []
    h.share.acknowledge("e", "m1", topic_id, 0, [(0, 9, [RELEASE])], False)
    assert h.acquire("m1", topic_id, group="e") == [AcquiredRange(0, 9, 2)]
    h.share.acknowledge("e", "m1", topic_id, 0, [(0, 9, [RELEASE])], False)
    assert h.share.start_offset("e", topic_id, 0) == 10  # archived at the group's limit of 2


def test_iso_durations():
    from ottla.server.share.coordinator import _duration_ms
    assert _duration_ms("PT1H") == 3_600_000
    assert _duration_ms("P1DT2M0.5S") == 86_400_000 + 120_000 + 500


def test_read_committed_groups_skip_aborted_and_open_transactions():
    h = Harness(isolation_level="read_committed")
    topic_id = h.topic(records=2)  # 0-1
    partition = h.storage.partition("q", 0)
    for producer_id in (7, 8, 9):  # 2-3 committed, 4-5 aborted, 6-7 still open
        records = [Record(offset=i, timestamp=0, key=None, value=b"t%d" % producer_id) for i in range(2)]
        partition.append(build_batch(records, producer_id=producer_id, producer_epoch=0, transactional=True), from_client=False)
    partition.append(control_batch(7, 0, True, 0), from_client=False)  # 8
    partition.append(control_batch(8, 0, False, 0), from_client=False)  # 9
    h.join("m1")
    assert h.acquire("m1", topic_id) == [AcquiredRange(0, 3, 1)]
    h.share.acknowledge("g", "m1", topic_id, 0, [(0, 3, [ACCEPT])], False)
    # The aborted 4-5 were acquired with them and archived; the open 6-7 wait.
    assert h.share.start_offset("g", topic_id, 0) == 6
