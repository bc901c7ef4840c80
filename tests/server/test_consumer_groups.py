"""KIP-848 consumer groups driven directly: no sockets, time on a manual clock.

The rules pinned here are the protocol's: a partition is never held by two members at
once (revoked before it is handed on), member epochs fence zombies, static members keep
their assignment across a restart of the client, sessions and rebalances time out on the
coordinator's timers, and the state is rebuilt from `__consumer_offsets` at load. The
sequence is Kafka 4.4's, read off the reference broker: a new group's first member gets
epoch 2, the target assignment follows a change at most once per assignment interval, and
an answer carries the member's partitions only when they changed.
"""

from __future__ import annotations

from typing import Any

import pytest

from ottla.server.coordinator import OFFSETS, CoordinatorLog
from ottla.server.groups import CommitEntry, GroupConfig, GroupCoordinator, JoinRequest
from ottla.server.groups.consumer import ConsumerGroupConfig, ConsumerGroupState, HeartbeatRequest, HeartbeatResult
from ottla.server.groups.consumer import assignors, records
from ottla.server.groups.consumer.records import CurrentAssignment, MemberMetadata
from ottla.storage import Storage
from ottla.wire.errors import ErrorCode
from tests.server.test_groups_coordinator import WALL_CLOCK_BASE_MS, ManualClock

SESSION_MS = 10_000
# group.consumer.assignment.interval.ms's default: the least time between two target assignments.
ASSIGNMENT_INTERVAL_S = 1.0
# Just past GroupMetadataManager.REGEX_BATCH_REFRESH_MIN_INTERVAL_MS.
REGEX_MIN_INTERVAL_S = 10.001


class Harness:
    def __init__(self, storage: Storage | None = None, **config: Any) -> None:
        self.storage = storage or Storage.open(None)
        self.clock = ManualClock()
        self.coordinator = GroupCoordinator(
            CoordinatorLog(self.storage, OFFSETS, 1),
            GroupConfig(),
            self.clock,
            wall_clock_ms=lambda: WALL_CLOCK_BASE_MS + int(self.clock.now * 1000),
            consumer_config=ConsumerGroupConfig(session_timeout_ms=SESSION_MS, **config),
        )
        self.coordinator.load()
        # Clients look the coordinator up first, which creates the topic: the groups' first
        # records then change no topic list (a change a regex subscription is resolved again on).
        self.coordinator.log.ensure_topic()
        self.owned: dict[str, dict[bytes, frozenset[int]]] = {}

    def topic(self, name: str, partitions: int) -> bytes:
        return self.storage.create_topic(name, partitions).topic_id

    def beat(self, member_id: str, epoch: int, group: str = "g", **fields: Any) -> HeartbeatResult:
        """One heartbeat; a member reports what it owns (its last assignment) unless told."""
        if epoch == 0:
            fields.setdefault("rebalance_timeout_ms", 30_000)
            fields.setdefault("subscribed_topic_names", ("t",))
            fields.setdefault("owned", {})
        else:
            fields.setdefault("owned", self.owned.get(member_id, {}))
        result = self.coordinator.consumer_heartbeat(HeartbeatRequest(group, member_id, epoch, **fields))
        if result.error is ErrorCode.NONE and result.assignment is not None:
            self.owned[member_id] = result.assignment
        return result

    def converge(self, epochs: dict[str, int], rounds: int = 6) -> dict[str, int]:
        """Heartbeat every member in turn, an assignment interval apart, until nobody's
        assignment or epoch moves."""
        for _ in range(rounds):
            self.clock.advance(ASSIGNMENT_INTERVAL_S)
            for member_id in list(epochs):
                result = self.beat(member_id, epochs[member_id])
                assert result.error is ErrorCode.NONE, result
                epochs[member_id] = result.member_epoch
                self.assert_no_partition_owned_twice()
        return epochs

    def assert_no_partition_owned_twice(self) -> None:
        seen: set[tuple[bytes, int]] = set()
        for assignment in self.owned.values():
            for topic_id, partitions in assignment.items():
                for partition in partitions:
                    assert (topic_id, partition) not in seen
                    seen.add((topic_id, partition))

    def group(self, group_id: str = "g") -> Any:
        return self.coordinator.consumer_group(group_id)


def _count(assignment: dict[bytes, frozenset[int]]) -> int:
    return sum(len(p) for p in assignment.values())


def test_a_lone_member_gets_every_partition_at_the_group_epoch() -> None:
    h = Harness()
    topic_id = h.topic("t", 4)
    result = h.beat("m1", 0)
    # A new group is at epoch 1: the join bumps it to 2 and assigns at once.
    assert result.error is ErrorCode.NONE and result.member_epoch == 2
    assert result.assignment == {topic_id: frozenset(range(4))}
    assert h.group().state is ConsumerGroupState.STABLE
    # A heartbeat that changes nothing carries no assignment.
    assert h.beat("m1", 2).assignment is None


def test_a_second_member_gets_partitions_only_after_the_first_revokes_them() -> None:
    h = Harness()
    topic_id = h.topic("t", 4)
    h.beat("m1", 0)
    second = h.beat("m2", 0)
    # Within the assignment interval of m1's join the group epoch moves (3) but the target
    # does not: m2 joins at the target's epoch (2) with nothing, and nobody moves.
    assert second.member_epoch == 2 and second.assignment == {}
    assert (h.group().state, h.group().group_epoch, h.group().assignment_epoch) == (ConsumerGroupState.ASSIGNING, 3, 2)
    assert h.beat("m1", 2, owned={topic_id: frozenset(range(4))}).assignment is None
    h.clock.advance(ASSIGNMENT_INTERVAL_S)
    # The first heartbeat after it computes the target at epoch 3: m1 is asked to give two
    # partitions up and keeps its epoch until it does.
    first = h.beat("m1", 2, owned={topic_id: frozenset(range(4))})
    assert first.member_epoch == 2 and _count(first.assignment or {}) == 2
    assert h.group().state is ConsumerGroupState.RECONCILING
    h.assert_no_partition_owned_twice()
    # Still reporting the revoked partitions: nothing changes.
    again = h.beat("m1", 2, owned={topic_id: frozenset(range(4))})
    assert again.member_epoch == 2
    # m2 reaches epoch 3 with its partitions still held: the epoch alone is no assignment.
    waiting = h.beat("m2", 2)
    assert waiting.member_epoch == 3 and waiting.assignment is None
    # Revoked: m1 reaches epoch 3 (its partitions as they were, so none sent), and m2 then
    # gets the freed partitions.
    revoked = h.beat("m1", 2)
    assert revoked.member_epoch == 3 and revoked.assignment is None
    taken = h.beat("m2", 3)
    assert _count(taken.assignment or {}) == 2
    h.assert_no_partition_owned_twice()
    assert h.group().state is ConsumerGroupState.STABLE


def test_a_heartbeat_from_the_epoch_before_is_fenced_while_partitions_are_revoked() -> None:
    """CurrentAssignmentBuilder: asked to revoke, a member stays at its epoch and its previous
    epoch becomes that epoch too (updateMemberEpoch), so a late heartbeat from the epoch before
    is FENCED_MEMBER_EPOCH rather than taken as one whose answer was lost."""
    h = Harness()
    t, u = h.topic("t", 4), h.topic("u", 2)
    joined = h.beat("m1", 0)
    h.clock.advance(ASSIGNMENT_INTERVAL_S)
    assert h.beat("m1", joined.member_epoch, subscribed_topic_names=["t", "u"], owned=joined.assignment).member_epoch == 3  # from 2
    h.beat("m2", 0, subscribed_topic_names=["t", "u"])
    h.clock.advance(ASSIGNMENT_INTERVAL_S)
    revoking = h.beat("m1", 3, owned={t: frozenset(range(4)), u: frozenset(range(2))})
    assert revoking.member_epoch == 3 and revoking.assignment is not None
    assert h.beat("m1", 2, owned=revoking.assignment).error is ErrorCode.FENCED_MEMBER_EPOCH


def test_the_target_follows_changes_at_most_once_per_assignment_interval() -> None:
    h = Harness()
    topic_id = h.topic("t", 2)
    h.beat("m1", 0)
    h.beat("m1", -1)
    # The last member gone, the empty target is at the new epoch and the next join is
    # assigned at once, however soon it comes.
    assert (h.group().state, h.group().group_epoch, h.group().assignment_epoch) == (ConsumerGroupState.EMPTY, 3, 3)
    joined = h.beat("m2", 0)
    assert joined.member_epoch == 4 and joined.assignment == {topic_id: frozenset({0, 1})}
    # A join half an interval later waits; the first heartbeat a whole interval after the
    # last assignment computes the next.
    h.clock.advance(ASSIGNMENT_INTERVAL_S / 2)
    assert h.beat("m3", 0).member_epoch == 4
    h.clock.advance(ASSIGNMENT_INTERVAL_S / 4)
    assert h.beat("m3", 4).member_epoch == 4
    h.clock.advance(ASSIGNMENT_INTERVAL_S / 4)
    assert h.beat("m3", 4).member_epoch == 5
    # The interval survives a reload: it is the stored AssignmentTimestamp.
    assert Harness(h.storage).group().assignment_timestamp_ms == h.group().assignment_timestamp_ms > 0
    # A broker with the interval at 0 assigns at every change.
    quick = Harness(assignment_interval_ms=0)
    quick.topic("t", 2)
    quick.beat("a", 0)
    assert quick.beat("b", 0).member_epoch == 3


def test_a_topic_left_is_revoked_at_once_and_one_joined_waits_for_the_next_target() -> None:
    """The target lags a subscription change by up to an assignment interval; meanwhile, as in
    Kafka 4.4 (read off the reference broker), the member gives up the topics it left at its
    own epoch, and gets the topics it (re)joined only with the next target."""
    h = Harness()
    a, b = h.topic("a", 2), h.topic("b", 2)
    joined = h.beat("m1", 0, subscribed_topic_names=("a", "b"))
    assert joined.assignment == {a: frozenset({0, 1}), b: frozenset({0, 1})}
    narrowed = h.beat("m1", 2, subscribed_topic_names=("a",))
    assert (narrowed.member_epoch, narrowed.assignment) == (2, {a: frozenset({0, 1})})
    member = h.group().members["m1"]
    assert member.current.pending_revocation == {b: frozenset({0, 1})} and h.group().state is ConsumerGroupState.ASSIGNING
    assert h.beat("m1", 2).assignment is None  # b reported gone
    assert h.group().members["m1"].current.pending_revocation == {}
    assert h.beat("m1", 2, subscribed_topic_names=("a", "b")).assignment is None
    h.clock.advance(ASSIGNMENT_INTERVAL_S)
    again = h.beat("m1", 2)
    assert (again.member_epoch, again.assignment) == (4, {a: frozenset({0, 1}), b: frozenset({0, 1})})


def test_three_members_on_two_topics_share_every_partition_once() -> None:
    h = Harness()
    a, b = h.topic("t", 7), h.topic("u", 5)
    epochs = {}
    for member in ("m1", "m2", "m3"):
        epochs[member] = h.beat(member, 0, subscribed_topic_names=("t", "u")).member_epoch
        h.converge(epochs)
    assert sorted(_count(h.owned[m]) for m in epochs) == [4, 4, 4]
    every = {(t, p) for assignment in h.owned.values() for t, ps in assignment.items() for p in ps}
    assert every == {(a, p) for p in range(7)} | {(b, p) for p in range(5)}


def test_a_leaving_member_hands_its_partitions_to_the_others() -> None:
    h = Harness()
    h.topic("t", 6)
    epochs = h.converge({"m1": h.beat("m1", 0).member_epoch, "m2": h.beat("m2", 0).member_epoch})
    assert h.beat("m2", -1).member_epoch == -1
    del h.owned["m2"], epochs["m2"]
    h.converge(epochs)
    assert _count(h.owned["m1"]) == 6 and list(h.group().members) == ["m1"]


def test_a_silent_member_is_removed_after_its_session_timeout() -> None:
    h = Harness()
    h.topic("t", 2)
    epoch = h.beat("m1", 0).member_epoch
    h.clock.advance(SESSION_MS / 1000 - 1)
    assert h.beat("m1", epoch).error is ErrorCode.NONE  # a heartbeat re-arms the session
    h.clock.advance(SESSION_MS / 1000 - 1)
    assert "m1" in h.group().members
    h.clock.advance(2)
    assert h.group().state is ConsumerGroupState.EMPTY
    assert h.beat("m1", epoch).error is ErrorCode.UNKNOWN_MEMBER_ID


def test_a_member_that_never_revokes_is_removed_after_its_rebalance_timeout() -> None:
    h = Harness()
    topic_id = h.topic("t", 2)
    epoch = h.beat("m1", 0, rebalance_timeout_ms=5_000).member_epoch
    second = h.beat("m2", 0).member_epoch
    h.clock.advance(ASSIGNMENT_INTERVAL_S)
    assert _count(h.beat("m1", epoch, owned={topic_id: frozenset({0, 1})}).assignment or {}) == 1
    for _ in range(3):  # keeps its session alive, never its promise
        h.clock.advance(2)
        h.beat("m1", epoch, owned={topic_id: frozenset({0, 1})})
        second = h.beat("m2", second).member_epoch
    assert "m1" not in h.group().members


def test_a_member_asked_to_revoke_again_gets_its_rebalance_timeout_again() -> None:
    """GroupMetadataManager.maybeReconcile reschedules the rebalance timeout whenever
    reconciliation changes the member while it revokes: one that gave up what it was first
    asked to and, the target having moved on meanwhile, is asked for more, has a whole
    timeout from then."""
    h = Harness()
    topic_id = h.topic("t", 6)
    everything = {topic_id: frozenset(range(6))}
    epoch = h.beat("m1", 0, rebalance_timeout_ms=5_000).member_epoch
    h.clock.advance(ASSIGNMENT_INTERVAL_S)
    epoch = h.beat("m1", epoch).member_epoch
    second = h.beat("m2", 0).member_epoch
    h.clock.advance(ASSIGNMENT_INTERVAL_S)
    kept = h.beat("m1", epoch, owned=everything).assignment
    assert kept is not None and _count(kept) == 3  # three to revoke, from now
    h.clock.advance(2)
    second, third = h.beat("m2", second).member_epoch, h.beat("m3", 0).member_epoch
    h.clock.advance(ASSIGNMENT_INTERVAL_S)
    again = h.beat("m1", epoch, owned=kept)  # the three revoked; the target moved on: one more
    assert again.assignment is not None and _count(again.assignment) == 2
    for _ in range(3):
        h.clock.advance(1)
        h.beat("m1", again.member_epoch, owned=kept)
        second, third = h.beat("m2", second).member_epoch, h.beat("m3", third).member_epoch
    assert "m1" in h.group().members  # 6 s since it was first asked, 3 since it was asked again
    h.clock.advance(2.1)
    second, third = h.beat("m2", second).member_epoch, h.beat("m3", third).member_epoch
    assert "m1" not in h.group().members


@pytest.mark.parametrize(
    ("epoch", "error"),
    [(5, ErrorCode.FENCED_MEMBER_EPOCH), (-3, ErrorCode.INVALID_REQUEST)],
)
def test_wrong_epochs_are_refused(epoch: int, error: ErrorCode) -> None:
    h = Harness()
    h.topic("t", 1)
    h.beat("m1", 0)
    assert h.beat("m1", epoch).error is error


def test_the_previous_epoch_is_accepted_when_the_bump_was_lost() -> None:
    h = Harness()
    topic_id = h.topic("t", 2)
    h.beat("m1", 0)
    h.beat("m2", 0)
    h.clock.advance(ASSIGNMENT_INTERVAL_S)
    h.beat("m1", 2, owned={topic_id: frozenset({0, 1})})
    assert h.beat("m1", 2, owned=h.owned["m1"]).member_epoch == 3
    # The answer with epoch 3 was lost: epoch 2 with a subset of the assignment is fine...
    assert h.beat("m1", 2, owned=h.owned["m1"]).error is ErrorCode.NONE
    # ...but not when it claims partitions it no longer has.
    assert h.beat("m1", 2, owned={topic_id: frozenset({0, 1})}).error is ErrorCode.FENCED_MEMBER_EPOCH


def test_unknown_members_and_bad_requests_get_kafkas_errors() -> None:
    h = Harness()
    h.topic("t", 1)
    assert h.beat("x", 3).error is ErrorCode.GROUP_ID_NOT_FOUND
    h.beat("m1", 0)
    assert h.beat("x", 3).error is ErrorCode.UNKNOWN_MEMBER_ID
    assert h.beat("", 0).error is ErrorCode.INVALID_REQUEST
    assert h.beat("m2", 0, group="").error is ErrorCode.INVALID_REQUEST
    assert h.beat("m2", 0, rebalance_timeout_ms=-1).error is ErrorCode.INVALID_REQUEST
    assert h.beat("m2", 0, server_assignor="sticky").error is ErrorCode.UNSUPPORTED_ASSIGNOR
    assert h.beat("m2", 0, subscribed_topic_names=None, subscribed_topic_regex="(").error is ErrorCode.INVALID_REGULAR_EXPRESSION
    # RE2 takes \C (any byte), Kafka's re2j does not; an escaped backslash before C is a literal.
    refused = h.beat("m2", 0, subscribed_topic_names=None, subscribed_topic_regex=r"orders\C")
    assert (refused.error, refused.message) == (ErrorCode.INVALID_REGULAR_EXPRESSION,
                                                 r"SubscribedTopicRegex `orders\C` is not a valid regular expression: invalid escape sequence: \C.")
    assert h.beat("m2", 0, subscribed_topic_names=None, subscribed_topic_regex=r"orders\\C").error is ErrorCode.NONE


def test_the_group_max_size_is_enforced() -> None:
    h = Harness(max_size=1)
    h.topic("t", 1)
    h.beat("m1", 0)
    assert h.beat("m2", 0).error is ErrorCode.GROUP_MAX_SIZE_REACHED


def test_a_static_member_rejoining_keeps_its_assignment() -> None:
    h = Harness()
    h.topic("t", 4)
    epochs = h.converge({"a": h.beat("a", 0, instance_id="i1").member_epoch, "b": h.beat("b", 0, instance_id="i2").member_epoch})
    before = h.owned["a"]
    assert h.beat("a", -2, instance_id="i1").member_epoch == -2
    # Another process with the same instance id, while the old one holds it, is refused.
    h2 = h.beat("c", 0, instance_id="i2")
    assert h2.error is ErrorCode.UNRELEASED_INSTANCE_ID
    back = h.beat("a2", 0, instance_id="i1")
    assert back.error is ErrorCode.NONE and back.assignment == before
    assert h.group().group_epoch == epochs["b"]  # nobody else was disturbed


def test_regex_subscriptions_use_re2_and_pick_up_new_topics() -> None:
    h = Harness()
    first = h.topic("orders-1", 2)
    h.topic("other", 2)
    # Kafka 4.4 resolves a regex after the heartbeat that names it: the next one is assigned.
    result = h.beat("m1", 0, subscribed_topic_names=None, subscribed_topic_regex="orders-\\d+")
    assert (result.member_epoch, result.assignment) == (1, {})
    result = h.beat("m1", result.member_epoch)
    assert (result.member_epoch, result.assignment) == (2, {first: frozenset({0, 1})})
    second = h.topic("orders-2", 1)
    # A new topic is looked for no sooner than 10 s after the last resolution, then seen at the next heartbeat.
    _wait_past_regex_min_interval(h, "m1", result.member_epoch)
    assert h.beat("m1", result.member_epoch).assignment is None
    result = h.beat("m1", result.member_epoch)
    assert (result.member_epoch, result.assignment) == (3, {first: frozenset({0, 1}), second: frozenset({0})})


def _wait_past_regex_min_interval(h: Harness, member_id: str, epoch: int) -> None:
    """Just past 10 s since the last resolution, heartbeating halfway (within the session timeout)."""
    h.clock.advance(REGEX_MIN_INTERVAL_S / 2)
    assert h.beat(member_id, epoch).member_epoch == epoch
    h.clock.advance(REGEX_MIN_INTERVAL_S / 2)


class CountingStorage(Storage):
    """Storage that counts walks of its topic list."""

    walks = 0

    def topics(self):  # type: ignore[no-untyped-def]
        self.walks += 1
        return super().topics()


def test_a_heartbeat_walks_the_topic_list_only_when_the_topics_changed() -> None:
    storage = CountingStorage(None)
    h = Harness(storage)
    h.topic("orders-1", 1)
    result = h.beat("m1", 0, subscribed_topic_names=None, subscribed_topic_regex="orders-\\d+")
    walked = storage.walks
    for _ in range(3):
        result = h.beat("m1", result.member_epoch)
    assert storage.walks == walked
    second = h.topic("orders-2", 1)
    _wait_past_regex_min_interval(h, "m1", result.member_epoch)
    result = h.beat("m1", result.member_epoch)
    assert second in h.beat("m1", result.member_epoch).assignment
    assert storage.walks == walked + 1


def test_range_and_uniform_assignors() -> None:
    t, u = b"t" * 16, b"u" * 16
    spec = assignors.AssignmentSpec({"a": frozenset({t, u}), "b": frozenset({t, u})}, {t: 3, u: 3}, {})
    ranged = assignors.assign("range", spec)
    assert ranged == {"a": {t: frozenset({0, 1}), u: frozenset({0, 1})}, "b": {t: frozenset({2}), u: frozenset({2})}}
    uniform = assignors.assign("uniform", spec)
    assert sorted(_count(a) for a in uniform.values()) == [3, 3]
    # Sticky: a third member takes partitions without the first two swapping any.
    spec3 = assignors.AssignmentSpec({**spec.subscriptions, "c": frozenset({t, u})}, spec.partition_counts, uniform)
    after = assignors.assign("uniform", spec3)
    assert sorted(_count(a) for a in after.values()) == [2, 2, 2]
    for member in ("a", "b"):
        for topic_id, partitions in after[member].items():
            assert partitions <= uniform[member][topic_id]


def test_the_range_assignor_orders_static_members_by_instance_id() -> None:
    """RangeAssignor.sortMemberIds: a rolling restart gives static members new member ids;
    ordered by their instance ids, each instance keeps its range."""
    t = b"t" * 16
    subscribed = frozenset({t})
    before = assignors.assign("range", assignors.AssignmentSpec({"m-b": subscribed, "m-a": subscribed}, {t: 3}, {}, {"m-b": "i0", "m-a": "i1"}))
    assert before == {"m-b": {t: frozenset({0, 1})}, "m-a": {t: frozenset({2})}}
    restarted = assignors.AssignmentSpec({"m-z": subscribed, "m-c": subscribed, "dynamic": subscribed}, {t: 3}, {},
                                         {"m-z": "i0", "m-c": "i1", "dynamic": None})
    assert assignors.assign("range", restarted) == {"m-z": {t: frozenset({0})}, "m-c": {t: frozenset({1})}, "dynamic": {t: frozenset({2})}}


def test_the_uniform_assignor_keeps_a_balanced_layout_whatever_else_the_group_subscribes_to() -> None:
    """Members balanced among themselves keep their partitions when members of other topics,
    or of none, join; and recomputing a target from itself changes nothing (any later epoch
    bump would otherwise revoke partitions for nothing)."""
    t, u = b"t" * 16, b"u" * 16
    kept = {"a": {t: frozenset({2, 3})}, "b": {t: frozenset({0, 1})}}
    idle = {member: frozenset[bytes]() for member in ("c", "d", "e")}
    spec = assignors.AssignmentSpec({"a": frozenset({t}), "b": frozenset({t}), **idle}, {t: 4}, kept)
    assert assignors.assign("uniform", spec) == {**kept, "c": {}, "d": {}, "e": {}}
    halves = {"a": {t: frozenset(range(5, 10))}, "b": {t: frozenset(range(5))}, "c": {u: frozenset({0})}}
    mixed = assignors.AssignmentSpec({"a": frozenset({t}), "b": frozenset({t}), "c": frozenset({u})}, {t: 10, u: 1}, halves)
    assert assignors.assign("uniform", mixed) == halves
    heterogeneous = {"a": frozenset({b"A", b"B", b"C", b"D"}), "b": frozenset({b"A", b"B", b"C", b"D"}), "c": frozenset({b"D"})}
    counts = {b"A": 6, b"B": 1, b"C": 4, b"D": 1}
    first = assignors.assign("uniform", assignors.AssignmentSpec(heterogeneous, counts, {}))
    assert assignors.assign("uniform", assignors.AssignmentSpec(heterogeneous, counts, first)) == first


def test_offset_commits_check_the_member_epoch() -> None:
    h = Harness()
    h.topic("t", 1)
    epoch = h.beat("m1", 0).member_epoch
    entry = [CommitEntry("t", 0, 5)]
    assert h.coordinator.commit_offsets("g", epoch + 1, "m1", None, entry) == [ErrorCode.STALE_MEMBER_EPOCH]
    assert h.coordinator.commit_offsets("g", epoch, "nobody", None, entry) == [ErrorCode.UNKNOWN_MEMBER_ID]
    assert h.coordinator.commit_offsets("g", -1, "", None, entry) == [ErrorCode.UNKNOWN_MEMBER_ID]  # not into a live group
    assert h.coordinator.commit_offsets("g", epoch, "m1", None, entry) == [ErrorCode.NONE]
    assert h.coordinator.validate_offset_fetch("g", "m1", epoch + 1) is ErrorCode.STALE_MEMBER_EPOCH
    assert h.coordinator.fetch_offsets("g", [("t", [0])])[1][0][1][0][1].offset == 5
    assert [g.group_id for g in h.coordinator.list_groups()] == []
    assert [g.group_id for g in h.coordinator.list_consumer_groups()] == ["g"]


def test_a_commit_at_an_older_epoch_may_commit_partitions_assigned_at_or_before_it() -> None:
    """KIP-1251 (Kafka 4.3+): each held partition keeps the epoch it was assigned at, and a
    member whose commit races its epoch bump commits the partitions it held at that epoch;
    any other partition in the request refuses all of it. It survives a reload."""
    storage = Storage.open(None)
    h = Harness(storage)
    topic_id = h.topic("t", 4)
    h.beat("m1", 0)  # epoch 2, every partition assigned at 2
    h.beat("m2", 0)
    h.clock.advance(ASSIGNMENT_INTERVAL_S)
    h.beat("m1", 2, owned={topic_id: frozenset(range(4))})  # asked to revoke two
    assert h.beat("m1", 2).member_epoch == 3
    moved = h.beat("m2", 2)
    moved = h.beat("m2", moved.member_epoch)
    kept, given = sorted(h.owned["m1"][topic_id]), sorted(h.owned["m2"][topic_id])
    current = h.group().members["m1"].current
    assert [current.assignment_epoch(topic_id, p) for p in kept] == [2, 2]
    assert [current.assignment_epoch(topic_id, p) for p in given] == [None, None]
    assert [h.group().members["m2"].current.assignment_epoch(topic_id, p) for p in given] == [3, 3]

    def commit(coordinator: GroupCoordinator, member: str, epoch: int, *partitions: int) -> list[ErrorCode]:
        return coordinator.commit_offsets("g", epoch, member, None, [CommitEntry("t", p, 1) for p in partitions])

    for coordinator in (h.coordinator, Harness(storage).coordinator):
        assert commit(coordinator, "m1", 2, *kept) == [ErrorCode.NONE] * 2
        assert commit(coordinator, "m1", 2, kept[0], given[0]) == [ErrorCode.STALE_MEMBER_EPOCH] * 2  # not its own
        assert commit(coordinator, "m1", 1, kept[0]) == [ErrorCode.STALE_MEMBER_EPOCH]  # before it was assigned
        assert commit(coordinator, "m1", 4, kept[0]) == [ErrorCode.STALE_MEMBER_EPOCH]  # newer than the member's
        assert commit(coordinator, "m2", 2, given[0]) == [ErrorCode.STALE_MEMBER_EPOCH]  # assigned at 3
        assert commit(coordinator, "m2", 3, given[0]) == [ErrorCode.NONE]
        assert coordinator.validate_offset_fetch("g", "m1", 2) is ErrorCode.STALE_MEMBER_EPOCH  # fetches stay exact
        # A transactional commit without member, epoch or instance id (TxnOffsetCommit before
        # KIP-447's v3) passes, as ConsumerGroup.validateOffsetCommit lets it; with any of them it is checked.
        assert coordinator.commit_transactional_offsets("g", 9, 0, -1, "", None, [CommitEntry("t", kept[0], 1)]) == [ErrorCode.NONE]
        assert coordinator.commit_transactional_offsets("g", 9, 0, -1, "", "i", [CommitEntry("t", kept[0], 1)]) == [ErrorCode.UNKNOWN_MEMBER_ID]


def test_assignment_epochs_are_kafkas_tagged_field() -> None:
    topic = b"x" * 16
    current = CurrentAssignment(5, 4, 0, {topic: frozenset({1, 0})}, {}, {(topic, 0): 3})
    assert current.assignment_epochs == {(topic, 0): 3, (topic, 1): 5}
    value = records.current_assignment_value(current)
    # TopicPartitions: id, partitions [0, 1], then tagged field 0 (AssignmentEpochs) of 9 bytes: [3, 5].
    entry = topic + b"\x03" + b"\x00\x00\x00\x00\x00\x00\x00\x01" + b"\x01\x00\x09\x03" + b"\x00\x00\x00\x03\x00\x00\x00\x05"
    assert value == b"\x00\x00" + b"\x00\x00\x00\x05\x00\x00\x00\x04\x00" + b"\x02" + entry + b"\x01" + b"\x00"
    assert records.parse_current_assignment_value(value) == current
    # Written without them (Kafka before 4.3, or Ottla before this), each reads as the member epoch.
    untagged = value.replace(b"\x01\x00\x09\x03\x00\x00\x00\x03\x00\x00\x00\x05", b"\x00")
    assert records.parse_current_assignment_value(untagged).assignment_epochs == {(topic, 0): 5, (topic, 1): 5}


def test_state_is_replayed_from_the_log() -> None:
    storage = Storage.open(None)
    h = Harness(storage)
    topic_id = h.topic("t", 4)
    epochs = h.converge({"m1": h.beat("m1", 0).member_epoch, "m2": h.beat("m2", 0, instance_id="s").member_epoch})
    h.coordinator.commit_offsets("g", epochs["m1"], "m1", None, [CommitEntry("t", 1, 9)])
    before = h.group()
    again = Harness(storage)
    after = again.group()
    assert (after.group_epoch, after.assignment_epoch, after.state) == (before.group_epoch, before.assignment_epoch, ConsumerGroupState.STABLE)
    assert {m: (x.member_epoch, x.current.assigned, x.instance_id) for m, x in after.members.items()} == {
        m: (x.member_epoch, x.current.assigned, x.instance_id) for m, x in before.members.items()
    }
    assert after.target == before.target and after.partition_epochs == before.partition_epochs
    assert again.coordinator.fetch_offsets("g", [("t", [1])])[1][0][1][0][1].offset == 9
    again.owned = h.owned
    assert again.beat("m1", epochs["m1"]).error is ErrorCode.NONE
    assert topic_id in again.owned["m1"]


def test_records_round_trip_in_kafkas_layout() -> None:
    metadata = MemberMetadata("i", None, "client", "/127.0.0.1", ("a", "b"), None, 30000, "range")
    assert records.parse_member_metadata_value(records.member_metadata_value(metadata)) == metadata
    current = CurrentAssignment(3, 2, 1, {b"x" * 16: frozenset({1, 2})}, {b"y" * 16: frozenset({0})})
    assert records.parse_current_assignment_value(records.current_assignment_value(current)) == current
    key = records.member_key(records.CURRENT_MEMBER_ASSIGNMENT, "g", "m")
    # Kafka's key: int16 record type, then int16-length strings.
    assert key == b"\x00\x08\x00\x01g\x00\x01m"
    assert records.parse_key(key) == records.RecordKey(records.CURRENT_MEMBER_ASSIGNMENT, "g", "m")
    # ConsumerGroupMetadataValue v0, epoch 7, no tagged fields.
    assert records.group_metadata_value(7) == b"\x00\x00\x00\x00\x00\x07\x00"


def test_deleting_an_empty_consumer_group_removes_it_and_its_offsets() -> None:
    storage = Storage.open(None)
    h = Harness(storage)
    h.topic("t", 1)
    epoch = h.beat("m1", 0).member_epoch
    h.coordinator.commit_offsets("g", epoch, "m1", None, [CommitEntry("t", 0, 3)])
    assert h.coordinator.delete_groups(["g"]) == [ErrorCode.NON_EMPTY_GROUP]
    h.beat("m1", -1)
    assert h.coordinator.delete_groups(["g"]) == [ErrorCode.NONE]
    assert h.group() is None
    assert Harness(storage).group() is None


def test_a_classic_member_takes_over_an_empty_consumer_group() -> None:
    h = Harness()
    h.topic("t", 1)
    epoch = h.beat("m1", 0).member_epoch
    h.coordinator.commit_offsets("g", epoch, "m1", None, [CommitEntry("t", 0, 4)])
    # Metadata that is no consumer protocol subscription: a live consumer group cannot serve it
    # (Kafka's deserializeSubscription: INCONSISTENT_GROUP_PROTOCOL).
    join = JoinRequest("g", "", None, "consumer", (("range", b""),), 10_000, 10_000, require_known_member_id=False)
    answers: list[Any] = []
    h.coordinator.join(join, answers.append)
    assert answers[0].error is ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    h.beat("m1", -1)
    h.coordinator.join(join, answers.append)
    assert h.group() is None and h.coordinator.groups["g"].members
    assert h.coordinator.fetch_offsets("g", [("t", [0])])[1][0][1][0][1].offset == 4
    # Nor can a consumer-protocol member upgrade a classic group whose subscriptions it cannot read.
    assert h.beat("m2", 0).error is ErrorCode.GROUP_ID_NOT_FOUND
