"""Streams groups (KIP-1071) on the coordinator, without sockets, on an injected clock.

Kafka's rules pinned here: the broker creates internal topics with the partition counts the
topology implies; a member joins, gets tasks, and tasks move to a new member only after the
old one revokes them; wrong epochs are FENCED_MEMBER_EPOCH; a topology that contradicts the
group's is refused; a member that stops heartbeating is removed after its session timeout;
the group survives a reload of `__consumer_offsets`.
"""

from __future__ import annotations

from typing import Any

from ottla.server.coordinator import OFFSETS, CoordinatorLog
from ottla.server.groups import GroupConfig, GroupCoordinator
from ottla.server.groups.group_configs import GroupConfigs
from ottla.server.groups.offsets import CommitEntry
from ottla.server.groups.streams import HeartbeatRequest, StreamsGroupState, TasksTuple
from ottla.server.groups.streams.assignor import MemberSpec, assign
from ottla.server.groups.streams.topology import Status
from ottla.storage import Storage
from ottla.wire.errors import ErrorCode
from tests.server.test_groups_coordinator import WALL_CLOCK_BASE_MS, ManualClock

SESSION_MS = 45_000


def topology(epoch: int = 1, source: str = "words") -> dict[str, Any]:
    """WordCount's: subtopology 0 reads `source` and writes a repartition topic that subtopology
    1 reads and counts into a store with a changelog."""
    def info(name: str) -> dict[str, Any]:
        return {"name": name, "partitions": 0, "replication_factor": 0, "topic_configs": []}

    return {"epoch": epoch, "subtopologies": [
        {"subtopology_id": "0", "source_topics": [source], "source_topic_regex": [], "state_changelog_topics": [],
         "repartition_sink_topics": ["app-counts-repartition"], "repartition_source_topics": [], "copartition_groups": []},
        {"subtopology_id": "1", "source_topics": [], "source_topic_regex": [], "state_changelog_topics": [info("app-counts-changelog")],
         "repartition_sink_topics": [], "repartition_source_topics": [info("app-counts-repartition")], "copartition_groups": []},
    ]}


class Harness:
    def __init__(self, storage: Storage | None = None, max_size: int = 2**31 - 1, assignment_interval_ms: int = 0) -> None:
        self.storage = storage or Storage.open(None)
        self.clock = ManualClock()
        self.coordinator = GroupCoordinator(
            CoordinatorLog(self.storage, OFFSETS, 1), GroupConfig(), self.clock,
            wall_clock_ms=lambda: WALL_CLOCK_BASE_MS + int(self.clock.now * 1000),
            group_configs=GroupConfigs(None, lambda name: {"group.streams.session.timeout.ms": SESSION_MS,
                                                           "group.streams.heartbeat.interval.ms": 5000,
                                                           "group.streams.num.standby.replicas": 0,
                                                           "group.streams.assignment.interval.ms": assignment_interval_ms,
                                                           "group.streams.initial.rebalance.delay.ms": 0,
                                                           "group.streams.max.size": max_size}.get(name)),
        )
        self.coordinator.load()

    def beat(self, member_id: str, epoch: int, owned: TasksTuple | None = None, **fields: Any) -> Any:
        request = HeartbeatRequest("app", member_id, epoch, process_id=fields.pop("process_id", member_id), owned=owned, **fields)
        return self.coordinator.streams_heartbeat(request)

    def join(self, member_id: str, **fields: Any) -> Any:
        return self.beat(member_id, 0, rebalance_timeout_ms=30_000, topology=fields.pop("topology", topology()), **fields)


def create_topics(harness: Harness, partitions: int) -> None:
    """`words` and the internal topics `topology()` implies, `partitions` each, as an application
    that ran before finds them. A member finding internal topics missing is answered
    MISSING_INTERNAL_TOPICS and assigned at its next heartbeat only (Kafka 4.4: the controller
    creates them after the answer), which tests of other things need not go through."""
    for name in ("words", "app-counts-repartition", "app-counts-changelog"):
        harness.storage.create_topic(name, partitions)


def count(tasks: TasksTuple) -> int:
    return sum(len(p) for p in tasks.active.values())


def test_internal_topics_are_created_with_the_counts_the_topology_implies() -> None:
    harness = Harness()
    harness.storage.create_topic("words", 3)
    joined = harness.join("a")
    assert joined.error is ErrorCode.NONE, joined.message
    assert harness.storage.topic("app-counts-repartition").partitions == 3
    assert harness.storage.topic("app-counts-changelog").partitions == 3
    # Kafka 4.4 answers the heartbeat that found them missing so; the next finds them, which bumps the epoch.
    assert (joined.member_epoch, joined.status) == (2, [(Status.MISSING_INTERNAL_TOPICS, "Internal topics are missing: app-counts-changelog, app-counts-repartition")])
    assert joined.assignment.is_empty()
    ready = harness.beat("a", joined.member_epoch)
    assert (ready.member_epoch, ready.status) == (3, [])
    assert ready.assignment.active == {"0": frozenset({0, 1, 2}), "1": frozenset({0, 1, 2})}


def test_internal_topics_are_created_only_if_the_member_may_create_them_all() -> None:
    harness = Harness()
    harness.storage.create_topic("words", 3)
    refused = harness.join("a", refused_creates=lambda names: [n for n in names if n.endswith("-changelog")])
    assert refused.error is ErrorCode.NONE, refused.message
    assert refused.status == [(Status.MISSING_INTERNAL_TOPICS, "Internal topics are missing: app-counts-changelog, "
                               "app-counts-repartition; Unauthorized to CREATE on topics app-counts-changelog.")]
    assert refused.assignment.is_empty()
    assert harness.storage.topic("app-counts-repartition") is None and harness.storage.topic("app-counts-changelog") is None
    allowed = harness.beat("a", refused.member_epoch)
    assert allowed.status == [(Status.MISSING_INTERNAL_TOPICS, "Internal topics are missing: app-counts-changelog, app-counts-repartition")]
    assert harness.storage.topic("app-counts-changelog").partitions == 3
    ready = harness.beat("a", allowed.member_epoch)
    assert ready.status == [] and count(ready.assignment) == 6


def test_missing_source_topics_are_a_status_and_no_tasks() -> None:
    harness = Harness()
    joined = harness.join("a")
    assert joined.error is ErrorCode.NONE
    assert joined.status == [(Status.MISSING_SOURCE_TOPICS, "Source topics words are missing.")]
    assert joined.assignment.is_empty()
    assert harness.coordinator.streams_group("app").state is StreamsGroupState.NOT_READY
    assert harness.storage.topic("app-counts-changelog") is None


def test_tasks_move_only_after_the_old_owner_revokes_them() -> None:
    harness = Harness()
    create_topics(harness, 2)
    first = harness.join("a")
    all_tasks = first.assignment
    assert count(all_tasks) == 4
    second = harness.join("b")
    assert second.assignment.is_empty(), "b may not run tasks a still holds"
    # a still reports every task: it must revoke two and stays at its epoch until it does.
    asked = harness.beat("a", first.member_epoch, owned=all_tasks)
    assert asked.member_epoch == first.member_epoch and count(asked.assignment) == 2
    kept = asked.assignment
    still = harness.beat("b", second.member_epoch, owned=TasksTuple())
    assert still.assignment is None or still.assignment.is_empty()
    done = harness.beat("a", first.member_epoch, owned=kept)
    assert done.member_epoch > first.member_epoch
    taken = harness.beat("b", second.member_epoch, owned=TasksTuple())
    assert count(taken.assignment) == 2
    a_tasks = {(s, p) for s, ps in kept.active.items() for p in ps}
    b_tasks = {(s, p) for s, ps in taken.assignment.active.items() for p in ps}
    assert not a_tasks & b_tasks and len(a_tasks | b_tasks) == 4
    assert harness.coordinator.streams_group("app").state is StreamsGroupState.STABLE


def test_wrong_epochs_and_topologies_get_kafkas_errors() -> None:
    harness = Harness()
    harness.storage.create_topic("words", 1)
    joined = harness.join("a")
    ahead = harness.beat("a", joined.member_epoch + 5, owned=TasksTuple())
    assert ahead.error is ErrorCode.FENCED_MEMBER_EPOCH
    assert harness.beat("nobody", 3).error is ErrorCode.UNKNOWN_MEMBER_ID
    assert harness.join("c", topology=topology(source="other")).error is ErrorCode.INVALID_REQUEST
    stale = harness.join("d", topology=topology(epoch=0))
    assert stale.error is ErrorCode.NONE and stale.status[0][0] == Status.STALE_TOPOLOGY
    bad = topology()
    bad["subtopologies"][1]["state_changelog_topics"][0]["partitions"] = 4
    assert harness.join("e", topology=bad).error is ErrorCode.STREAMS_INVALID_TOPOLOGY
    assert harness.beat("a", joined.member_epoch, topology=topology()).error is ErrorCode.INVALID_REQUEST


def test_a_full_group_refuses_a_new_member_but_not_one_it_has() -> None:
    """GroupMetadataManager.throwIfStreamsGroupIsFull: group.streams.max.size."""
    harness = Harness(max_size=2)
    harness.storage.create_topic("words", 1)
    assert harness.join("a").error is harness.join("b").error is ErrorCode.NONE
    refused = harness.join("c")
    assert (refused.error, refused.message) == (ErrorCode.GROUP_MAX_SIZE_REACHED, "The streams group has reached its maximum capacity of 2 members.")
    assert harness.join("a").error is ErrorCode.NONE


def test_a_coordinator_move_gives_the_members_a_whole_session_from_then() -> None:
    """In a cluster another node takes the group's partition over: as Kafka's new coordinator
    after its load (onLoaded), each member has a whole session timeout from the move."""
    harness = Harness()
    harness.storage.create_topic("words", 1)
    joined = harness.join("a")
    harness.clock.advance(SESSION_MS / 1000 - 1)
    harness.coordinator.on_partition_moved(harness.coordinator.offsets_partition("app"))
    harness.clock.advance(SESSION_MS / 1000 - 0.01)
    assert set(harness.coordinator.streams_groups["app"].members) == {joined.member_id}
    harness.clock.advance(0.02)
    assert harness.coordinator.streams_groups["app"].members == {}


def test_only_stateful_tasks_get_standbys_and_a_departed_members_task_goes_to_its_standby() -> None:
    """StickyTaskAssignor: standbys are for the tasks of subtopologies with a changelog; a task
    whose owner left goes to a member that kept its standby (its state is warm) while that
    member has quota left, not to whichever member is least loaded."""
    def spec(process: str, active: dict[str, frozenset[int]] | None = None, standby: dict[str, frozenset[int]] | None = None) -> MemberSpec:
        held = TasksTuple(active or {}, standby or {})
        return MemberSpec(process, held)

    target = assign({"a": spec("p1"), "b": spec("p2")}, {"0": 2, "1": 2}, 1, frozenset({"1"}))
    assert {member: set(tasks.standby) for member, tasks in target.items()} == {"a": {"1"}, "b": {"1"}}
    # b left; c kept a standby of 0_2, which b ran; a is as loaded as c and first by id.
    survivors = {"c": spec("p3", {"0": frozenset({0})}, {"0": frozenset({2})}), "a": spec("p1", {"0": frozenset({1})})}
    after = assign(survivors, {"0": 3}, 1, frozenset({"0"}))
    assert after["c"].active == {"0": frozenset({0, 2})} and after["a"].active == {"0": frozenset({1})}


def test_a_shutdown_names_the_first_member_that_asked_for_it() -> None:
    harness = Harness()
    harness.storage.create_topic("words", 1)
    a, b = harness.join("a"), harness.join("b")
    harness.beat("a", a.member_epoch, owned=TasksTuple(), shutdown_application=True)
    second = harness.beat("b", b.member_epoch, owned=TasksTuple(), shutdown_application=True)
    assert [detail for code, detail in second.status if code == Status.SHUTDOWN_APPLICATION] == [
        "Streams group member a encountered a fatal error and requested a shutdown for the entire application."]


def test_a_silent_member_is_removed_and_its_tasks_go_to_the_other() -> None:
    harness = Harness()
    harness.storage.create_topic("words", 2)
    a = harness.join("a")
    b = harness.join("b")
    for _ in range(3):
        a = harness.beat("a", a.member_epoch, owned=None)
    harness.clock.advance(SESSION_MS / 2000)
    b = harness.beat("b", b.member_epoch, owned=TasksTuple())
    harness.clock.advance(SESSION_MS / 2000 + 1)
    b = harness.beat("b", b.member_epoch, owned=TasksTuple())
    group = harness.coordinator.streams_group("app")
    assert set(group.members) == {"b"}
    assert count(b.assignment) == 4


def test_the_group_survives_a_reload() -> None:
    harness = Harness()
    harness.storage.create_topic("words", 2)
    joined = harness.join("a")
    harness.beat("a", joined.member_epoch, owned=joined.assignment)
    before = harness.coordinator.streams_group("app")
    again = Harness(harness.storage)
    after = again.coordinator.streams_group("app")
    assert after is not None and after.group_epoch == before.group_epoch and after.topology == before.topology
    assert after.members["a"].current == before.members["a"].current
    assert after.state is StreamsGroupState.STABLE
    assert again.beat("a", joined.member_epoch, owned=joined.assignment).error is ErrorCode.NONE


def test_a_commit_at_an_older_epoch_passes_only_for_tasks_held_since_then() -> None:
    """KIP-1251 as Kafka 4.4's StreamsGroup.createAssignmentEpochValidator applies it: each
    committed partition maps, through the topology's source topics, to an active task the
    member holds, assigned at the commit's epoch or before; the epochs survive a reload."""
    harness = Harness()
    create_topics(harness, 2)
    first = harness.join("a")
    harness.join("b")
    asked = harness.beat("a", first.member_epoch, owned=first.assignment)
    source = {"0": "words", "1": "app-counts-repartition"}
    held = {(source[s], p) for s, ps in first.assignment.active.items() for p in ps}
    kept = sorted((source[s], p) for s, ps in asked.assignment.active.items() for p in ps)
    gone = sorted(held - set(kept))
    assert kept and gone
    done = harness.beat("a", first.member_epoch, owned=asked.assignment)
    assert done.member_epoch > first.member_epoch
    taken = harness.beat("b", harness.coordinator.streams_group("app").members["b"].member_epoch, owned=TasksTuple())
    assert count(taken.assignment) == 2

    def commit(member: str, epoch: int, task: tuple[str, int], version: int = 9) -> ErrorCode:
        (error,) = harness.coordinator.commit_offsets("app", epoch, member, None, [CommitEntry(*task, 7)], api_version=version)
        return error

    assert commit("a", first.member_epoch, kept[0]) is ErrorCode.NONE
    assert commit("a", first.member_epoch, gone[0]) is ErrorCode.STALE_MEMBER_EPOCH
    assert commit("a", first.member_epoch, ("not-in-the-topology", 0)) is ErrorCode.STALE_MEMBER_EPOCH
    assert commit("a", done.member_epoch + 1, kept[0]) is ErrorCode.STALE_MEMBER_EPOCH
    assert commit("a", done.member_epoch, kept[0], version=8) is ErrorCode.UNSUPPORTED_VERSION
    b_epoch = harness.coordinator.streams_group("app").members["b"].member_epoch
    assert commit("b", b_epoch, gone[0]) is ErrorCode.NONE
    assert commit("b", b_epoch - 1, gone[0]) is ErrorCode.STALE_MEMBER_EPOCH
    (transactional,) = harness.coordinator.commit_transactional_offsets("app", 5, 0, -1, "", None, [CommitEntry(*kept[0], 9)])
    assert transactional is ErrorCode.NONE

    again = Harness(harness.storage)
    assert again.coordinator.streams_group("app").members["a"].current == harness.coordinator.streams_group("app").members["a"].current
    (reloaded,) = again.coordinator.commit_offsets("app", first.member_epoch, "a", None, [CommitEntry(*kept[0], 8)])
    assert reloaded is ErrorCode.NONE


def test_a_static_member_leaving_while_revoking_frees_those_tasks_and_its_successor_gets_an_epoch() -> None:
    """A static member asked to revoke leaves for now (-2): what it was giving up is freed at once,
    so the other member takes it (Kafka clears the pending revocation), and the member that
    takes its instance id over starts at epoch 0, then gets a real epoch, never -2."""
    h = Harness()
    create_topics(h, 2)
    first = h.join("a", instance_id="i1")
    second = h.join("b", instance_id="i2")
    h.beat("a", first.member_epoch, owned=first.assignment, instance_id="i1")  # asked to revoke
    assert h.beat("a", -2, instance_id="i1").error is ErrorCode.NONE
    group = h.coordinator.streams_group("app")
    assert group is not None
    taken = h.beat("b", group.members["b"].member_epoch, owned=second.assignment, instance_id="i2")
    assert count(taken.assignment or TasksTuple()) > count(second.assignment or TasksTuple())
    successor = h.join("c", instance_id="i1")
    assert successor.error is ErrorCode.NONE and successor.member_epoch > 0


def test_an_empty_streams_group_goes_once_it_has_no_offsets() -> None:
    """cleanupGroupMetadata: an empty group with no offsets left is deleted, its stored topology
    with it, so the application may come back with a changed one."""
    h = Harness()
    h.storage.create_topic("words", 2)
    h.join("a")
    h.beat("a", -1)
    h.coordinator.expire_offsets()
    assert h.coordinator.streams_group("app") is None
    assert Harness(h.storage).coordinator.streams_group("app") is None  # its records are gone too


def test_a_copartition_index_outside_the_topics_listed_is_an_invalid_topology() -> None:
    for index in (5, -1):
        h = Harness()
        h.storage.create_topic("words", 2)
        shape = topology()
        shape["subtopologies"][0]["copartition_groups"] = [{"source_topics": [index], "source_topic_regex": [], "repartition_source_topics": []}]
        assert h.join("a", topology=shape).error is ErrorCode.STREAMS_INVALID_TOPOLOGY
