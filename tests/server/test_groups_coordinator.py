"""The group state machine driven directly: no sockets, no event loop.

Time is a manual clock, so a session timeout is crossed by advancing it, not by
sleeping, and every timeout the coordinator relies on has to be a scheduled timer
(a coordinator that polled would never notice the clock move).
"""

from __future__ import annotations

import heapq
import itertools
import struct
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

from ottla.server.coordinator import OFFSETS, OFFSETS_TOPIC, CoordinatorLog, java_string_hash
from ottla.server.groups import CommitEntry, GroupConfig, GroupCoordinator, JoinRequest
from ottla.server.groups.group import JoinResult, SyncResult, subscription_topics
from ottla.server.groups.records import (
    GroupKey,
    OffsetAndMetadata,
    OffsetKey,
    StoredGroup,
    StoredMember,
    group_key,
    group_value,
    offset_key,
    offset_value,
    parse_group_value,
    parse_key,
    parse_offset_value,
)
from ottla.server.groups.state import GroupState, IllegalTransition, check_transition
from ottla.storage import Storage
from ottla.wire.errors import ErrorCode
from ottla.wire.records import Record, build_batch

WALL_CLOCK_BASE_MS = 1_700_000_000_000
SESSION_MS = 10_000
REBALANCE_MS = 30_000


@dataclass(order=True)
class _Timer:
    deadline: float
    sequence: int
    callback: Callable[..., Any] = field(compare=False)
    args: tuple[Any, ...] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True

    def when(self) -> float:
        return self.deadline


class ManualClock:
    """An event loop's clock and timer queue that only moves when told to."""

    def __init__(self) -> None:
        self.now = 0.0
        self._queue: list[_Timer] = []
        self._sequence = itertools.count()

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> _Timer:
        timer = _Timer(when, next(self._sequence), callback, args)
        heapq.heappush(self._queue, timer)
        return timer

    def advance(self, seconds: float) -> None:
        target = self.now + seconds
        while self._queue and self._queue[0].deadline <= target:
            timer = heapq.heappop(self._queue)
            if not timer.cancelled:
                self.now = max(self.now, timer.deadline)
                timer.callback(*timer.args)
        self.now = target

    def armed(self) -> int:
        return sum(not timer.cancelled for timer in self._queue)


class Harness:
    def __init__(self, storage: Storage | None = None, **config: Any) -> None:
        self.storage = storage or Storage.open(None)
        self.clock = ManualClock()
        settings = {"initial_rebalance_delay_ms": 0, "min_session_timeout_ms": 1000, **config}
        self.coordinator = GroupCoordinator(
            CoordinatorLog(self.storage, OFFSETS, 1),
            GroupConfig(**settings),
            self.clock,
            wall_clock_ms=lambda: WALL_CLOCK_BASE_MS + int(self.clock.now * 1000),
        )
        self.coordinator.load()

    def join(
        self,
        group_id: str,
        member_id: str = "",
        instance_id: str | None = None,
        protocols: tuple[tuple[str, bytes], ...] = (("range", b"meta"),),
        protocol_type: str = "consumer",
        session_ms: int = SESSION_MS,
        rebalance_ms: int = REBALANCE_MS,
        version: int = 9,
    ) -> list[JoinResult]:
        """Send a JoinGroup; the returned list fills when the coordinator answers."""
        answers: list[JoinResult] = []
        request = JoinRequest(
            group_id, member_id, instance_id, protocol_type, protocols, session_ms, rebalance_ms, "client",
            require_known_member_id=version >= 4, supports_skip_assignment=version >= 9,
        )
        self.coordinator.join(request, answers.append)
        return answers

    def join_new(self, group_id: str, **kwargs: Any) -> list[JoinResult]:
        """The two-step join of a v4+ dynamic member: MEMBER_ID_REQUIRED, then the real join."""
        (first,) = self.join(group_id, **kwargs)
        assert first.error is ErrorCode.MEMBER_ID_REQUIRED
        return self.join(group_id, member_id=first.member_id, **kwargs)

    def sync(self, group_id: str, joined: JoinResult, assignments: dict[str, bytes] | None = None, instance_id: str | None = None) -> list[SyncResult]:
        answers: list[SyncResult] = []
        self.coordinator.sync(group_id, joined.generation_id, joined.member_id, instance_id, None, None, list((assignments or {}).items()), answers.append)
        return answers

    def heartbeat(self, group_id: str, joined: JoinResult, instance_id: str | None = None) -> ErrorCode:
        return self.coordinator.heartbeat(group_id, joined.generation_id, joined.member_id, instance_id)

    def state(self, group_id: str) -> GroupState:
        return self.coordinator.groups[group_id].state

    def stable_group(self, group_id: str, count: int) -> list[JoinResult]:
        """`count` dynamic members joined at once and synced, each assigned its own bytes."""
        parked = [self.join_new(group_id) for _ in range(count)]
        self.clock.advance(0)  # the initial rebalance delay (0 here) ends
        joined = [answers[0] for answers in parked]
        leader = next(j for j in joined if j.members)
        syncs = [self.sync(group_id, j, {m.member_id: m.member_id.encode() for m in leader.members} if j is leader else None) for j in joined]
        assert all(s[0].error is ErrorCode.NONE for s in syncs)
        assert self.state(group_id) is GroupState.STABLE
        return joined


def test_transition_table_is_kafkas():
    check_transition(GroupState.EMPTY, GroupState.PREPARING_REBALANCE)
    check_transition(GroupState.PREPARING_REBALANCE, GroupState.COMPLETING_REBALANCE)
    check_transition(GroupState.COMPLETING_REBALANCE, GroupState.STABLE)
    check_transition(GroupState.STABLE, GroupState.PREPARING_REBALANCE)
    check_transition(GroupState.PREPARING_REBALANCE, GroupState.EMPTY)
    check_transition(GroupState.DEAD, GroupState.DEAD)
    for current, target in [
        (GroupState.EMPTY, GroupState.STABLE),
        (GroupState.STABLE, GroupState.COMPLETING_REBALANCE),
        (GroupState.STABLE, GroupState.EMPTY),
        (GroupState.DEAD, GroupState.PREPARING_REBALANCE),
        (GroupState.COMPLETING_REBALANCE, GroupState.EMPTY),
    ]:
        with pytest.raises(IllegalTransition):
            check_transition(current, target)


def test_a_new_member_first_gets_an_id_then_joins_and_leads():
    h = Harness()
    (first,) = h.join("g")
    assert first.error is ErrorCode.MEMBER_ID_REQUIRED and first.member_id.startswith("client-")
    parked = h.join("g", member_id=first.member_id)
    assert parked == [] and h.state("g") is GroupState.PREPARING_REBALANCE
    h.clock.advance(0)
    (joined,) = parked
    assert joined.error is ErrorCode.NONE
    assert (joined.generation_id, joined.leader, joined.protocol_name) == (1, first.member_id, "range")
    assert [m.member_id for m in joined.members] == [first.member_id]
    assert h.state("g") is GroupState.COMPLETING_REBALANCE
    (synced,) = h.sync("g", joined, {first.member_id: b"all of it"})
    assert (synced.error, synced.assignment, synced.protocol_name) == (ErrorCode.NONE, b"all of it", "range")
    assert h.state("g") is GroupState.STABLE


def test_before_v4_a_member_joins_without_the_extra_round_trip():
    h = Harness()
    parked = h.join("g", version=3)
    h.clock.advance(0)
    assert parked[0].error is ErrorCode.NONE and parked[0].generation_id == 1


def test_the_initial_rebalance_waits_while_members_keep_arriving():
    h = Harness(initial_rebalance_delay_ms=3000)
    a = h.join_new("g")
    h.clock.advance(2.0)
    b = h.join_new("g")  # arrives inside the first delay: when it ends, another one starts
    h.clock.advance(3.5)
    assert a == [] and b == []
    h.clock.advance(0.5)
    assert a[0].generation_id == b[0].generation_id == 1
    assert len([j for j in (a[0], b[0]) if j.members]) == 1


def test_join_is_held_until_every_member_rejoins_and_only_the_leader_gets_the_members():
    h = Harness()
    (a,) = h.stable_group("g", 1)
    b = h.join_new("g")
    assert b == [] and h.state("g") is GroupState.PREPARING_REBALANCE
    assert h.heartbeat("g", a) is ErrorCode.REBALANCE_IN_PROGRESS
    (a2,) = h.join("g", member_id=a.member_id)
    (b2,) = b
    assert a2.generation_id == b2.generation_id == 2
    assert a2.leader == b2.leader == a.member_id
    assert {m.member_id for m in a2.members} == {a.member_id, b2.member_id}
    assert b2.members == ()
    follower_sync = h.sync("g", b2)
    assert follower_sync == []  # parked until the leader's assignment arrives
    (leader_sync,) = h.sync("g", a2, {a.member_id: b"p0,p1", b2.member_id: b"p2,p3"})
    assert leader_sync.assignment == b"p0,p1"
    assert follower_sync[0].assignment == b"p2,p3"
    assert h.heartbeat("g", a2) is h.heartbeat("g", b2) is ErrorCode.NONE


def test_a_member_the_leader_left_out_gets_an_empty_assignment():
    h = Harness()
    parked = [h.join_new("g"), h.join_new("g")]
    h.clock.advance(0)
    leader, follower = sorted((p[0] for p in parked), key=lambda j: not j.members)
    waiting = h.sync("g", follower)
    h.sync("g", leader, {leader.member_id: b"everything"})
    assert waiting[0] == SyncResult(ErrorCode.NONE, b"", "consumer", "range")


def test_protocol_is_one_every_member_supports_else_inconsistent():
    h = Harness()
    a = h.join_new("g", protocols=(("range", b"a"), ("roundrobin", b"a")))
    b = h.join_new("g", protocols=(("roundrobin", b"b"),))
    h.clock.advance(0)
    assert a[0].protocol_name == b[0].protocol_name == "roundrobin"
    # kafkajs' "RoundRobinAssigner" shares no protocol with the group: refused at once.
    (refused,) = h.join("g", protocols=(("RoundRobinAssigner", b"c"),))
    assert refused.error is ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    (refused,) = h.join("g", protocol_type="connect", protocols=(("roundrobin", b"c"),))
    assert refused.error is ErrorCode.INCONSISTENT_GROUP_PROTOCOL


def test_session_timeout_evicts_a_silent_member_and_rebalances():
    h = Harness()
    a, b = h.stable_group("g", 2)
    for _ in range(3):  # a keeps heartbeating, b has gone quiet
        h.clock.advance(3)
        assert h.heartbeat("g", a) is ErrorCode.NONE
    h.clock.advance(1)
    assert b.member_id not in h.coordinator.groups["g"].members
    assert h.state("g") is GroupState.PREPARING_REBALANCE
    assert h.heartbeat("g", a) is ErrorCode.REBALANCE_IN_PROGRESS
    assert h.heartbeat("g", b) is ErrorCode.UNKNOWN_MEMBER_ID
    (a2,) = h.join("g", member_id=a.member_id)
    assert a2.generation_id == 2 and [m.member_id for m in a2.members] == [a.member_id]


def test_heartbeats_reuse_one_timer_per_member():
    h = Harness()
    a, b = h.stable_group("g", 2)
    armed = h.clock.armed()
    for _ in range(50):
        h.clock.advance(0.1)
        h.heartbeat("g", a)
        h.heartbeat("g", b)
    assert h.clock.armed() == armed


def test_a_coordinator_move_gives_the_partitions_members_a_whole_session_from_then():
    h = Harness()
    h.stable_group("g", 1)
    h.stable_group("other", 1)
    h.clock.advance(SESSION_MS / 1000 - 1)
    h.coordinator.on_partition_moved(1)  # not the groups' partition (the harness's log has one)
    h.clock.advance(1.01)
    assert h.coordinator.groups["g"].members == {} and h.coordinator.groups["other"].members == {}

    (a,) = h.stable_group("g", 1)
    h.clock.advance(SESSION_MS / 1000 - 1)
    h.coordinator.on_partition_moved(h.coordinator.offsets_partition("g"))
    h.clock.advance(SESSION_MS / 1000 - 0.01)
    assert set(h.coordinator.groups["g"].members) == {a.member_id}
    h.clock.advance(0.02)
    assert h.coordinator.groups["g"].members == {}


def test_a_rebalance_timeout_drops_members_that_never_rejoin():
    h = Harness()
    a, b = h.stable_group("g", 2)
    parked = h.join("g", member_id=a.member_id, protocols=(("range", b"changed"),))
    assert parked == []
    for _ in range(5):
        h.clock.advance(5)
        assert h.heartbeat("g", b) is ErrorCode.REBALANCE_IN_PROGRESS  # alive, but does not rejoin
    assert parked == []
    h.clock.advance(REBALANCE_MS / 1000 - 25)
    assert parked[0].generation_id == 2
    assert [m.member_id for m in parked[0].members] == [a.member_id]


def test_a_member_that_never_syncs_is_removed_after_the_rebalance_timeout():
    h = Harness()
    parked = [h.join_new("g"), h.join_new("g")]
    h.clock.advance(0)
    leader, follower = sorted((p[0] for p in parked), key=lambda j: not j.members)
    h.sync("g", leader, {leader.member_id: b"x", follower.member_id: b"y"})
    for _ in range(REBALANCE_MS // 5000):  # both heartbeat; the follower never sends SyncGroup
        assert h.state("g") is GroupState.STABLE
        h.clock.advance(5)
        h.heartbeat("g", leader)
        h.heartbeat("g", follower)
    assert follower.member_id not in h.coordinator.groups["g"].members
    assert h.state("g") is GroupState.PREPARING_REBALANCE


def test_leave_rebalances_and_the_last_leave_empties_the_group():
    h = Harness()
    a, b = h.stable_group("g", 2)
    error, errors = h.coordinator.leave("g", [(b.member_id, None)])
    assert (error, errors) == (ErrorCode.NONE, [ErrorCode.NONE])
    assert h.state("g") is GroupState.PREPARING_REBALANCE
    (a2,) = h.join("g", member_id=a.member_id)
    assert a2.generation_id == 2 and len(a2.members) == 1
    h.sync("g", a2, {a.member_id: b"all"})
    assert h.coordinator.leave("g", [(a.member_id, None), ("nobody", None)]) == (ErrorCode.NONE, [ErrorCode.NONE, ErrorCode.UNKNOWN_MEMBER_ID])
    group = h.coordinator.groups["g"]
    assert (group.state, group.generation_id, group.members) == (GroupState.EMPTY, 3, {})
    assert h.coordinator.leave("missing", [("m", None)]) == (ErrorCode.NONE, [ErrorCode.UNKNOWN_MEMBER_ID])
    assert h.coordinator.leave("", [("m", None)])[0] is ErrorCode.INVALID_GROUP_ID


def test_a_member_leaving_mid_rebalance_lets_the_others_complete():
    h = Harness()
    a, b = h.stable_group("g", 2)
    parked = h.join("g", member_id=a.member_id, protocols=(("range", b"new"),))
    assert parked == []
    h.coordinator.leave("g", [(b.member_id, None)])
    assert parked[0].generation_id == 2


def test_a_member_leaving_while_its_own_join_is_parked_is_left_out_of_the_generation():
    """librdkafka's close() sends LeaveGroup behind the member's parked JoinGroup, which under
    churn is most leaves (compat.bench_churn). The parked join is answered UNKNOWN_MEMBER_ID
    (GroupMetadataManager.removeCurrentMemberFromClassicGroup) and the generation the others
    then complete leaves the member out, so no rebalance follows that generation at once."""
    h = Harness()
    a, b, c = h.stable_group("g", 3)
    newcomer = h.join_new("g")
    assert h.state("g") is GroupState.PREPARING_REBALANCE
    leaving = h.join("g", member_id=b.member_id)
    assert leaving == []
    assert h.coordinator.leave("g", [(b.member_id, None)]) == (ErrorCode.NONE, [ErrorCode.NONE])
    assert [answer.error for answer in leaving] == [ErrorCode.UNKNOWN_MEMBER_ID]
    rejoined = [h.join("g", member_id=a.member_id), h.join("g", member_id=c.member_id)]
    answers = [newcomer[0], *(answer[0] for answer in rejoined)]
    assert {answer.generation_id for answer in answers} == {2}
    leader = next(answer for answer in answers if answer.members)
    assert {m.member_id for m in leader.members} == {a.member_id, c.member_id, newcomer[0].member_id}
    assert h.state("g") is GroupState.COMPLETING_REBALANCE


def test_static_member_rejoining_keeps_its_assignment_without_a_rebalance():
    h = Harness()
    parked = [h.join("g", instance_id="i-1"), h.join("g", instance_id="i-2")]
    h.clock.advance(0)
    one, two = (p[0] for p in parked)
    leader = one if one.members else two
    h.sync("g", one, {one.member_id: b"p0,p1", two.member_id: b"p2,p3"} if one is leader else None, instance_id="i-1")
    h.sync("g", two, {one.member_id: b"p0,p1", two.member_id: b"p2,p3"} if two is leader else None, instance_id="i-2")
    assert h.state("g") is GroupState.STABLE
    # i-2 restarts: it has lost its member id and comes back with its instance id only.
    (back,) = h.join("g", instance_id="i-2")
    assert back.error is ErrorCode.NONE and back.member_id != two.member_id
    assert back.generation_id == two.generation_id and h.state("g") is GroupState.STABLE
    (synced,) = h.sync("g", back, instance_id="i-2")
    assert synced.assignment == b"p2,p3"
    # The old incarnation is fenced.
    assert h.heartbeat("g", two, instance_id="i-2") is ErrorCode.FENCED_INSTANCE_ID
    (fenced,) = h.join("g", member_id=two.member_id, instance_id="i-2")
    assert fenced.error is ErrorCode.FENCED_INSTANCE_ID
    assert h.coordinator.leave("g", [(two.member_id, "i-2")]) == (ErrorCode.NONE, [ErrorCode.FENCED_INSTANCE_ID])


def test_static_leader_rejoining_is_told_to_skip_assignment_from_v9_only():
    h = Harness()
    parked = h.join("g", instance_id="i-1")
    h.clock.advance(0)
    h.sync("g", parked[0], {parked[0].member_id: b"all"}, instance_id="i-1")
    (v9,) = h.join("g", instance_id="i-1", version=9)
    assert v9.skip_assignment and v9.leader == v9.member_id and len(v9.members) == 1
    (v5,) = h.join("g", instance_id="i-1", version=5)
    # Before KIP-814 the answer names the previous leader id, so the member does not reassign.
    assert not v5.skip_assignment and v5.leader == v9.member_id != v5.member_id and v5.members == ()


def test_static_members_survive_a_rebalance_they_miss_until_their_session_ends():
    h = Harness()
    parked = [h.join("g", instance_id="s", rebalance_ms=5000), h.join_new("g", rebalance_ms=5000)]
    h.clock.advance(0)
    static, dynamic = (p[0] for p in parked)
    leader = static if static.members else dynamic
    h.sync("g", leader, {static.member_id: b"a", dynamic.member_id: b"b"}, instance_id="s" if leader is static else None)
    rejoin = h.join("g", member_id=dynamic.member_id, protocols=(("range", b"new"),), rebalance_ms=5000)
    h.clock.advance(5)
    assert rejoin[0].generation_id == 2
    assert static.member_id in h.coordinator.groups["g"].members  # kept, unlike a dynamic member
    h.clock.advance(SESSION_MS / 1000 - 5)
    assert static.member_id not in h.coordinator.groups["g"].members


def test_admin_removes_a_static_member_by_instance_id():
    h = Harness()
    parked = h.join("g", instance_id="s")
    h.clock.advance(0)
    assert h.coordinator.leave("g", [("", "s"), ("", "unknown")]) == (ErrorCode.NONE, [ErrorCode.NONE, ErrorCode.UNKNOWN_MEMBER_ID])
    assert h.state("g") is GroupState.EMPTY and parked[0].generation_id == 1


def test_pending_member_that_never_rejoins_expires_after_its_session_timeout():
    h = Harness()
    (first,) = h.join("g")
    assert first.member_id in h.coordinator.groups["g"].pending_members
    h.clock.advance(SESSION_MS / 1000)
    assert h.coordinator.groups["g"].pending_members == {}
    (late,) = h.join("g", member_id=first.member_id)
    assert late.error is ErrorCode.UNKNOWN_MEMBER_ID


def test_join_errors():
    h = Harness(max_session_timeout_ms=60_000, max_size=1)
    assert h.join("", version=9)[0].error is ErrorCode.INVALID_GROUP_ID
    assert h.join("g", session_ms=999)[0].error is ErrorCode.INVALID_SESSION_TIMEOUT
    assert h.join("g", session_ms=60_001)[0].error is ErrorCode.INVALID_SESSION_TIMEOUT
    assert h.join("missing", member_id="someone")[0].error is ErrorCode.UNKNOWN_MEMBER_ID
    assert h.join("other", member_id="stranger")[0].error is ErrorCode.UNKNOWN_MEMBER_ID
    assert h.join("g", protocol_type="")[0].error is ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    h.stable_group("g", 1)
    (full,) = h.join("g", version=3)
    assert (full.error, full.member_id) == (ErrorCode.GROUP_MAX_SIZE_REACHED, "")


def test_sync_and_heartbeat_errors():
    h = Harness()
    (a,) = h.stable_group("g", 1)
    assert h.coordinator.heartbeat("missing", 1, a.member_id, None) is ErrorCode.UNKNOWN_MEMBER_ID
    assert h.coordinator.heartbeat("g", 1, "stranger", None) is ErrorCode.UNKNOWN_MEMBER_ID
    assert h.coordinator.heartbeat("g", 7, a.member_id, None) is ErrorCode.ILLEGAL_GENERATION
    assert h.coordinator.heartbeat("", 1, a.member_id, None) is ErrorCode.INVALID_GROUP_ID
    assert h.coordinator.heartbeat("g", 1, a.member_id, "not-mine") is ErrorCode.UNKNOWN_MEMBER_ID

    def sync(**kwargs: Any) -> ErrorCode:
        args = {"group_id": "g", "generation_id": 1, "member_id": a.member_id, "group_instance_id": None, "protocol_type": None, "protocol_name": None, "assignments": []}
        args.update(kwargs)
        answers: list[SyncResult] = []
        h.coordinator.sync(respond=answers.append, **args)
        return answers[0].error

    assert sync(group_id="missing") is ErrorCode.UNKNOWN_MEMBER_ID
    assert sync(generation_id=2) is ErrorCode.ILLEGAL_GENERATION
    assert sync(protocol_type="connect") is ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    assert sync(protocol_name="roundrobin") is ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    assert sync() is ErrorCode.NONE
    h.join_new("g")  # a newcomer starts a rebalance
    assert sync() is ErrorCode.REBALANCE_IN_PROGRESS


def test_a_rejoin_during_completing_rebalance_cancels_parked_syncs():
    h = Harness()
    parked = [h.join_new("g"), h.join_new("g")]
    h.clock.advance(0)
    leader, follower = sorted((p[0] for p in parked), key=lambda j: not j.members)
    waiting = h.sync("g", follower)
    h.join("g", member_id=follower.member_id, protocols=(("range", b"changed"),))
    assert waiting[0].error is ErrorCode.REBALANCE_IN_PROGRESS
    assert h.state("g") is GroupState.PREPARING_REBALANCE


def _consumer_subscription(*topics: str) -> bytes:
    """A ConsumerProtocolSubscription v0: version, topics, null user data."""
    out = struct.pack(">hi", 0, len(topics))
    for topic in topics:
        out += struct.pack(">h", len(topic)) + topic.encode()
    return out + struct.pack(">i", -1)


def test_commit_and_fetch_offsets():
    h = Harness()
    h.storage.create_topic("t", 2)
    (a,) = h.stable_group("g", 1)
    entries = [CommitEntry("t", 0, 42, 3, "meta"), CommitEntry("t", 1, 7)]
    assert h.coordinator.commit_offsets("g", a.generation_id, a.member_id, None, entries) == [ErrorCode.NONE] * 2
    error, found = h.coordinator.fetch_offsets("g", [("t", [0, 1, 2])])
    assert error is ErrorCode.NONE
    (topic, partitions) = found[0]
    assert [(p, v.offset if v else None) for p, v in partitions] == [(0, 42), (1, 7), (2, None)]
    assert partitions[0][1] == OffsetAndMetadata(42, 3, "meta", WALL_CLOCK_BASE_MS + 0, None)
    assert h.coordinator.fetch_offsets("unknown", [("t", [0])]) == (ErrorCode.NONE, [("t", [(0, None)])])
    assert [t for t, _ in h.coordinator.fetch_offsets("g", None)[1]] == ["t"]


def test_commit_errors_follow_the_group():
    h = Harness(offset_metadata_max_bytes=4)
    entry = [CommitEntry("t", 0, 1)]
    assert h.coordinator.commit_offsets("gone", 3, "m", None, entry) == [ErrorCode.ILLEGAL_GENERATION]
    assert h.coordinator.commit_offsets("gone", 3, "m", None, entry, missing_group_error=ErrorCode.GROUP_ID_NOT_FOUND) == [ErrorCode.GROUP_ID_NOT_FOUND]
    assert h.coordinator.commit_offsets("", -1, "", None, entry) == [ErrorCode.NONE]  # only a null id is invalid
    # A group-less commit (assign() consumers) creates a simple group.
    assert h.coordinator.commit_offsets("simple", -1, "", None, entry + [CommitEntry("t", 1, 1, -1, "toolong")]) == [
        ErrorCode.NONE,
        ErrorCode.OFFSET_METADATA_TOO_LARGE,
    ]
    assert h.state("simple") is GroupState.EMPTY
    parked = [h.join_new("g"), h.join_new("g")]
    h.clock.advance(0)
    a = parked[0][0]
    # Generation known, assignment not yet: REBALANCE_IN_PROGRESS (CompletingRebalance).
    assert h.coordinator.commit_offsets("g", a.generation_id, a.member_id, None, entry) == [ErrorCode.REBALANCE_IN_PROGRESS]
    assert h.coordinator.commit_offsets("g", a.generation_id + 1, a.member_id, None, entry) == [ErrorCode.ILLEGAL_GENERATION]
    assert h.coordinator.commit_offsets("g", a.generation_id, "stranger", None, entry) == [ErrorCode.UNKNOWN_MEMBER_ID]
    # v0 (no member, no generation) commits only into an empty group.
    assert h.coordinator.commit_offsets("g", -1, "", None, entry) == [ErrorCode.UNKNOWN_MEMBER_ID]


def test_group_state_and_offsets_are_replayed_from_the_log(tmp_path):
    storage = Storage.open(tmp_path)
    h = Harness(storage)
    storage.create_topic("t", 4)
    joined = h.stable_group("g", 2)
    for j in joined:
        h.coordinator.commit_offsets("g", j.generation_id, j.member_id, None, [CommitEntry("t", 0, 10), CommitEntry("t", 1, 20)])
    h.coordinator.commit_offsets("simple", -1, "", None, [CommitEntry("t", 3, 99, 5, "m")])
    h.coordinator.close()
    storage.close()

    reopened = Storage.open(tmp_path)
    h2 = Harness(reopened)
    group = h2.coordinator.groups["g"]
    assert group.state is GroupState.STABLE and group.generation_id == joined[0].generation_id
    assert set(group.members) == {j.member_id for j in joined}
    assert {m.assignment for m in group.members.values()} == {j.member_id.encode() for j in joined}
    assert h2.coordinator.fetch_offsets("g", [("t", [0, 1])])[1][0][1][1][1].offset == 20
    assert h2.coordinator.fetch_offsets("simple", None)[1] == [("t", [(3, OffsetAndMetadata(99, 5, "m", WALL_CLOCK_BASE_MS, None))])]
    # Loaded members must heartbeat within their session, or go.
    h2.clock.advance(SESSION_MS / 2000)
    assert h2.heartbeat("g", joined[0]) is ErrorCode.NONE
    h2.clock.advance(SESSION_MS / 2000 + 0.01)
    assert set(group.members) == {joined[0].member_id}
    reopened.close()


def test_unreadable_records_in_the_log_are_skipped_at_load():
    # A client may produce garbage into __consumer_offsets; the broker must still start.
    h = Harness()
    h.coordinator.commit_offsets("g", -1, "", None, [CommitEntry("t", 0, 5)])
    partition = h.storage.partition(OFFSETS_TOPIC, 0)
    partition.append(build_batch([
        Record(0, 0, b"\x00\x01\xff\xff", b"x"),  # a key whose group name runs past its end
        Record(1, 0, offset_key("g", "t", 1), b"\x00\x09junk"),  # an OffsetCommitValue version we never wrote
    ]))
    h.coordinator.commit_offsets("g", -1, "", None, [CommitEntry("t", 3, 7)])
    reloaded = Harness(h.storage)
    assert {key: value.offset for key, value in reloaded.coordinator.groups["g"].offsets.items()} == {("t", 0): 5, ("t", 3): 7}


def test_offsets_of_an_empty_group_expire_and_the_group_goes_with_them():
    h = Harness(offsets_retention_ms=60_000, offsets_retention_check_interval_ms=10_000)
    h.storage.create_topic("t", 1)
    (a,) = h.stable_group("g", 1)
    h.coordinator.commit_offsets("g", a.generation_id, a.member_id, None, [CommitEntry("t", 0, 5)])
    h.clock.advance(SESSION_MS / 1000)  # the member stops heartbeating: the group empties
    assert h.state("g") is GroupState.EMPTY and h.coordinator.groups["g"].offsets
    h.clock.advance(55)  # retention counts from when the group became empty
    assert h.coordinator.groups["g"].offsets
    h.clock.advance(10)
    assert "g" not in h.coordinator.groups
    h.coordinator.commit_offsets("simple", -1, "", None, [CommitEntry("t", 0, 5)], retention_ms=5_000)
    h.clock.advance(10)
    assert "simple" not in h.coordinator.groups


def test_delete_groups_and_offsets():
    h = Harness()
    h.storage.create_topic("t", 2)
    h.storage.create_topic("other", 1)
    parked = h.join_new("g", protocols=(("range", _consumer_subscription("t")),))
    h.clock.advance(0)
    (a,) = parked
    h.sync("g", a, {a.member_id: b""})
    h.coordinator.commit_offsets("g", a.generation_id, a.member_id, None, [CommitEntry("t", 0, 1), CommitEntry("other", 0, 2)])
    assert h.coordinator.delete_groups(["g", "missing"]) == [ErrorCode.NON_EMPTY_GROUP, ErrorCode.GROUP_ID_NOT_FOUND]
    assert h.coordinator.delete_offsets("g", [("t", [0]), ("other", [0])]) == (
        ErrorCode.NONE,
        [("t", [(0, ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC)]), ("other", [(0, ErrorCode.NONE)])],
    )
    assert h.coordinator.fetch_offsets("g", [("other", [0])])[1] == [("other", [(0, None)])]
    assert h.coordinator.delete_offsets("missing", [("t", [0])])[0] is ErrorCode.GROUP_ID_NOT_FOUND
    h.coordinator.leave("g", [(a.member_id, None)])
    assert h.coordinator.delete_groups(["g"]) == [ErrorCode.NONE]
    assert "g" not in h.coordinator.groups
    h2 = Harness(h.storage)
    assert "g" not in h2.coordinator.groups


def test_list_groups_filters_by_state_in_any_case():
    h = Harness()
    h.stable_group("a", 1)
    h.coordinator.commit_offsets("simple", -1, "", None, [CommitEntry("t", 0, 1)])
    assert {g.group_id for g in h.coordinator.list_groups()} == {"a", "simple"}
    assert [g.group_id for g in h.coordinator.list_groups({"stable"})] == ["a"]
    assert [g.group_id for g in h.coordinator.list_groups({"Empty"})] == ["simple"]


def test_records_use_kafkas_layout():
    # OffsetCommitKey v1: int16 version, string group, string topic, int32 partition.
    assert offset_key("g", "t", 5) == b"\x00\x01" + b"\x00\x01g" + b"\x00\x01t" + b"\x00\x00\x00\x05"
    assert group_key("g") == b"\x00\x02\x00\x01g"
    # OffsetCommitValue v4: offset, leader epoch, compact metadata, commit timestamp, no tagged
    # topic id without one; v3 (written before) still reads.
    value = offset_value(OffsetAndMetadata(7, 2, "m", 1000, None))
    assert value == b"\x00\x04" + (7).to_bytes(8, "big") + (2).to_bytes(4, "big") + b"\x02m" + (1000).to_bytes(8, "big") + b"\x00"
    assert parse_offset_value(value) == OffsetAndMetadata(7, 2, "m", 1000, None)
    v3 = b"\x00\x03" + (7).to_bytes(8, "big") + (2).to_bytes(4, "big") + b"\x00\x01m" + (1000).to_bytes(8, "big")
    assert parse_offset_value(v3) == OffsetAndMetadata(7, 2, "m", 1000, None)
    with_expiry = OffsetAndMetadata(7, -1, "", 1000, 5000)
    assert parse_offset_value(offset_value(with_expiry)) == with_expiry
    assert parse_key(offset_key("g", "t", 5)) == OffsetKey("g", "t", 5)
    assert parse_key(group_key("g")) == GroupKey("g")
    assert parse_key(b"\x00\x05\x00\x01g") is None  # a KIP-848 record type: not ours
    stored = StoredGroup("consumer", 3, "range", "m1", 99, (StoredMember("m1", "i", "c", "/h", 300, 45, b"sub", b"asg"),))
    assert parse_group_value(group_value(stored)) == stored


def test_partition_for_matches_kafkas_hash():
    # Java: "hello".hashCode() == 99162322; "polygenelubricants".hashCode() == Integer.MIN_VALUE,
    # which Kafka's Utils.abs maps to 0.
    assert java_string_hash("hello") == 99162322
    assert java_string_hash("polygenelubricants") == -(2**31)
    storage = Storage.open(None)
    storage.create_topic(OFFSETS_TOPIC, 50)
    log = CoordinatorLog(storage, OFFSETS, 1)
    assert log.partitions == 50  # an existing topic keeps its partition count
    assert log.partition_for("hello") == 99162322 % 50
    assert log.partition_for("polygenelubricants") == 0


def test_subscription_topics_reads_any_consumer_protocol_version():
    assert subscription_topics(_consumer_subscription("a", "b")) == ["a", "b"]
    assert subscription_topics(b"\x00\x03" + _consumer_subscription("x")[2:] + b"more fields") == ["x"]
    assert subscription_topics(b"\x00") is None
    assert subscription_topics(b"\x00\x00\x00\x00\x00\x01\x00\x09ab") is None
