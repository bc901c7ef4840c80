"""KIP-848's online upgrade and downgrade, driven directly: no sockets, time on a manual clock.

The rules pinned here: a consumer-protocol member joining a live classic group converts it,
the classic members keeping their generation as member epoch and their assignment; classic
members of a consumer group are served JoinGroup/SyncGroup/Heartbeat with the embedded
protocol's view of their assignment and never own a partition another member holds; the last
consumer-protocol member leaving converts the group back and a classic rebalance follows;
committed offsets and the converted state survive a reload of `__consumer_offsets`; the
migration policy can forbid either direction.
"""

from __future__ import annotations

import struct
from typing import Any

from ottla.server.coordinator import OFFSETS, CoordinatorLog
from ottla.server.groups import CommitEntry, GroupConfig, GroupCoordinator, JoinRequest
from ottla.server.groups.consumer import ConsumerGroupConfig, HeartbeatRequest
from ottla.server.groups.consumer import embedded, records
from ottla.server.groups.consumer.records import ClassicMemberMetadata, MemberMetadata
from ottla.server.groups.group import JoinResult, SyncResult
from ottla.server.groups.state import GroupState
from ottla.storage import Storage
from ottla.wire.errors import ErrorCode
from tests.server.test_groups_coordinator import WALL_CLOCK_BASE_MS, ManualClock

SESSION_MS = 10_000
PARTITIONS = 4


def subscription(topics: list[str], owned: dict[str, list[int]] | None = None, version: int = 1) -> bytes:
    """A ConsumerProtocolSubscription as a classic client writes it (v1: with owned partitions)."""
    out = struct.pack(">hi", version, len(topics))
    for topic in topics:
        out += struct.pack(">h", len(topic)) + topic.encode()
    out += struct.pack(">i", -1)
    if version >= 1:
        owned = owned or {}
        out += struct.pack(">i", len(owned))
        for topic, partitions in owned.items():
            out += struct.pack(">h", len(topic)) + topic.encode() + struct.pack(">i", len(partitions))
            out += b"".join(struct.pack(">i", p) for p in partitions)
    return out


def assignment(partitions: dict[str, list[int]]) -> bytes:
    return embedded.serialize_assignment({t: frozenset(p) for t, p in partitions.items()}, 1)


class Harness:
    def __init__(self, storage: Storage | None = None, migration_policy: str = "bidirectional") -> None:
        self.storage = storage or Storage.open(None)
        self.clock = ManualClock()
        self.coordinator = GroupCoordinator(
            CoordinatorLog(self.storage, OFFSETS, 1),
            GroupConfig(initial_rebalance_delay_ms=0, min_session_timeout_ms=1000),
            self.clock,
            wall_clock_ms=lambda: WALL_CLOCK_BASE_MS + int(self.clock.now * 1000),
            consumer_config=ConsumerGroupConfig(session_timeout_ms=SESSION_MS, migration_policy=migration_policy),
        )
        self.coordinator.load()

    def join(self, member_id: str = "", owned: dict[str, list[int]] | None = None, instance_id: str | None = None) -> list[JoinResult]:
        answers: list[JoinResult] = []
        request = JoinRequest("g", member_id, instance_id, "consumer", (("range", subscription(["t"], owned)),), SESSION_MS, 30_000, "classic", require_known_member_id=False)
        self.coordinator.join(request, answers.append)
        return answers

    def sync(self, joined: JoinResult, assignments: dict[str, bytes] | None = None) -> list[SyncResult]:
        answers: list[SyncResult] = []
        self.coordinator.sync("g", joined.generation_id, joined.member_id, None, "consumer", joined.protocol_name, list((assignments or {}).items()), answers.append)
        return answers

    def classic_group(self) -> list[JoinResult]:
        """Two classic members, stable, the leader having given each two partitions of t."""
        parked = [self.join(), self.join()]
        self.clock.advance(0)
        joined = [answers[0] for answers in parked]
        leader = next(j for j in joined if j.members)
        plan = {m.member_id: assignment({"t": [2 * i, 2 * i + 1]}) for i, m in enumerate(leader.members)}
        for j in joined:
            (synced,) = self.sync(j, plan if j is leader else None)
            assert synced.error is ErrorCode.NONE
        assert self.coordinator.groups["g"].state is GroupState.STABLE
        return joined

    def beat(self, member_id: str, epoch: int, owned: dict[bytes, frozenset[int]] | None = None, **fields: Any) -> Any:
        if epoch == 0:
            fields.setdefault("rebalance_timeout_ms", 30_000)
            fields.setdefault("subscribed_topic_names", ("t",))
        return self.coordinator.consumer_heartbeat(HeartbeatRequest("g", member_id, epoch, owned=owned if owned is not None else {}, **fields))


def _parts(data: bytes) -> set[int]:
    return set(embedded.parse_assignment(data).get("t", frozenset()))


def test_a_consumer_member_joining_a_live_classic_group_upgrades_it() -> None:
    storage = Storage.open(None)
    h = Harness(storage)
    h.storage.create_topic("t", PARTITIONS)
    joined = h.classic_group()
    generation = joined[0].generation_id
    h.coordinator.commit_offsets("g", generation, joined[0].member_id, None, [CommitEntry("t", 0, 7)])

    first = h.beat("c1", 0)
    assert first.error is ErrorCode.NONE
    group = h.coordinator.consumer_group("g")
    assert group is not None and h.coordinator.groups["g"].members == {}
    # The classic members kept their generation as member epoch and their partitions.
    classic = {m_id: m for m_id, m in group.members.items() if m.is_classic}
    assert {m.member_epoch for m in classic.values()} == {generation}
    assert group.group_epoch == generation + 1
    # The newcomer waits: every partition is still held by a classic member.
    assert first.assignment == {}

    # Classic members are told to rejoin; an eager one rejoins owning nothing and gets the
    # partitions the target leaves it, at the new epoch, through SyncGroup.
    owners: dict[str, set[int]] = {}
    for j in joined:
        assert h.coordinator.heartbeat("g", j.generation_id, j.member_id, None) is ErrorCode.REBALANCE_IN_PROGRESS
        (rejoined,) = h.join(j.member_id)
        assert (rejoined.error, rejoined.generation_id, rejoined.leader, rejoined.members) == (ErrorCode.NONE, generation + 1, "", ())
        (synced,) = h.sync(rejoined)
        assert synced.error is ErrorCode.NONE and synced.protocol_name == "range"
        owners[j.member_id] = _parts(synced.assignment)
        assert h.coordinator.heartbeat("g", rejoined.generation_id, j.member_id, None) is ErrorCode.NONE
    second = h.beat("c1", first.member_epoch)
    names = {storage.topic("t").topic_id: "t"}
    owners["c1"] = {p for topic_id, parts in (second.assignment or {}).items() for p in parts if names[topic_id] == "t"}
    assert sorted(p for parts in owners.values() for p in parts) == list(range(PARTITIONS))
    assert all(owners.values())

    # The offsets stayed, and a reload rebuilds the mixed group, classic metadata and all.
    assert h.coordinator.fetch_offsets("g", [("t", [0])])[1][0][1][0][1].offset == 7
    again = Harness(storage)
    reloaded = again.coordinator.consumer_group("g")
    assert reloaded is not None and "g" not in [g.group_id for g in again.coordinator.list_groups()]
    assert {m_id: (m.member_epoch, m.metadata.classic) for m_id, m in reloaded.members.items()} == {
        m_id: (m.member_epoch, m.metadata.classic) for m_id, m in h.coordinator.consumer_group("g").members.items()
    }
    assert again.coordinator.fetch_offsets("g", [("t", [0])])[1][0][1][0][1].offset == 7


def test_a_cooperative_classic_member_keeps_what_it_owns_and_revokes_the_rest_before_it_moves() -> None:
    h = Harness()
    h.storage.create_topic("t", PARTITIONS)
    joined = h.classic_group()
    h.beat("c1", 0)
    j = joined[0]
    group = h.coordinator.consumer_group("g")
    mine = sorted(p for parts in group.members[j.member_id].current.assigned.values() for p in parts)
    (rejoined,) = h.join(j.member_id, owned={"t": mine})
    (synced,) = h.sync(rejoined)
    kept = _parts(synced.assignment)
    assert synced.error is ErrorCode.NONE and kept <= set(mine)
    member = h.coordinator.consumer_group("g").members[j.member_id]
    if kept != set(mine):
        # What it must give up goes to nobody until it rejoins without it; until then it
        # keeps its epoch and its heartbeats ask it to rejoin.
        assert member.current.pending_revocation and rejoined.generation_id == j.generation_id
        assert h.coordinator.heartbeat("g", rejoined.generation_id, j.member_id, None) is ErrorCode.REBALANCE_IN_PROGRESS
        (rejoined,) = h.join(j.member_id, owned={"t": sorted(kept)})
    assert rejoined.generation_id == h.coordinator.consumer_group("g").group_epoch


def test_the_last_consumer_member_leaving_downgrades_the_group_and_a_classic_rebalance_follows() -> None:
    storage = Storage.open(None)
    h = Harness(storage)
    h.storage.create_topic("t", PARTITIONS)
    joined = h.classic_group()
    h.coordinator.commit_offsets("g", joined[0].generation_id, joined[0].member_id, None, [CommitEntry("t", 1, 11)])
    h.beat("c1", 0)
    group_epoch = h.coordinator.consumer_group("g").group_epoch

    assert h.beat("c1", -1).error is ErrorCode.NONE
    assert h.coordinator.consumer_group("g") is None
    classic = h.coordinator.groups["g"]
    assert (classic.protocol_type, classic.protocol_name, classic.generation_id) == ("consumer", "range", group_epoch)
    assert classic.state is GroupState.PREPARING_REBALANCE and set(classic.members) == {j.member_id for j in joined}
    # The classic members learn of the rebalance, rejoin, and the leader assigns again.
    assert all(h.coordinator.heartbeat("g", group_epoch, j.member_id, None) is ErrorCode.REBALANCE_IN_PROGRESS for j in joined)
    parked = [h.join(j.member_id) for j in joined]
    answers = [p[0] for p in parked]
    assert {a.generation_id for a in answers} == {group_epoch + 1}
    assert h.coordinator.fetch_offsets("g", [("t", [1])])[1][0][1][0][1].offset == 11
    # After a reload the group is the classic one the downgrade stored.
    again = Harness(storage)
    assert again.coordinator.consumer_group("g") is None and set(again.coordinator.groups["g"].members) == {j.member_id for j in joined}
    assert again.coordinator.fetch_offsets("g", [("t", [1])])[1][0][1][0][1].offset == 11


def test_a_classic_member_joins_a_live_consumer_group_and_the_group_stays_one() -> None:
    h = Harness()
    h.storage.create_topic("t", PARTITIONS)
    first = h.beat("c1", 0)
    (joined,) = h.join()
    assert joined.error is ErrorCode.NONE and joined.member_id
    assert h.coordinator.consumer_group("g").members[joined.member_id].is_classic
    # It commits with its generation; a wrong one is ILLEGAL_GENERATION, not STALE_MEMBER_EPOCH.
    entry = [CommitEntry("t", 0, 1)]
    assert h.coordinator.commit_offsets("g", joined.generation_id + 5, joined.member_id, None, entry, api_version=2) == [ErrorCode.ILLEGAL_GENERATION]
    assert h.coordinator.commit_offsets("g", joined.generation_id, joined.member_id, None, entry, api_version=2) == [ErrorCode.NONE]
    # Leaving through LeaveGroup leaves a consumer group with its consumer-protocol member.
    assert h.coordinator.leave("g", [(joined.member_id, None)]) == (ErrorCode.NONE, [ErrorCode.NONE])
    assert list(h.coordinator.consumer_group("g").members) == [first.member_id]
    assert h.coordinator.heartbeat("g", joined.generation_id, joined.member_id, None) is ErrorCode.UNKNOWN_MEMBER_ID


def test_a_classic_member_that_never_rejoins_is_fenced_after_its_rebalance_timeout() -> None:
    h = Harness()
    h.storage.create_topic("t", PARTITIONS)
    silent, alive = h.classic_group()
    beat = h.beat("c1", 0)
    epoch, owned = beat.member_epoch, beat.assignment
    assert h.coordinator.heartbeat("g", silent.generation_id, silent.member_id, None) is ErrorCode.REBALANCE_IN_PROGRESS
    (alive,) = h.join(alive.member_id)
    assert h.sync(alive)[0].error is ErrorCode.NONE
    for _ in range(7):  # 35 s: past the silent member's 30 s rebalance timeout, not its session
        h.clock.advance(5)
        beat = h.beat("c1", epoch, owned=owned)
        epoch, owned = beat.member_epoch, beat.assignment if beat.assignment is not None else owned
        h.coordinator.heartbeat("g", silent.generation_id, silent.member_id, None)
        error = h.coordinator.heartbeat("g", alive.generation_id, alive.member_id, None)
        if error is ErrorCode.REBALANCE_IN_PROGRESS:
            (alive,) = h.join(alive.member_id)
            h.sync(alive)
    members = h.coordinator.consumer_group("g").members
    assert silent.member_id not in members and alive.member_id in members


def test_the_migration_policy_can_forbid_the_upgrade_and_the_downgrade() -> None:
    h = Harness(migration_policy="downgrade")
    h.storage.create_topic("t", PARTITIONS)
    h.classic_group()
    assert h.beat("c1", 0).error is ErrorCode.GROUP_ID_NOT_FOUND
    assert h.coordinator.groups["g"].state is GroupState.STABLE

    h = Harness(migration_policy="upgrade")
    h.storage.create_topic("t", PARTITIONS)
    h.classic_group()
    assert h.beat("c1", 0).error is ErrorCode.NONE
    assert h.beat("c1", -1).error is ErrorCode.NONE
    group = h.coordinator.consumer_group("g")
    assert group is not None and all(m.is_classic for m in group.members.values())


def test_classic_member_metadata_round_trips_in_kafkas_layout() -> None:
    metadata = MemberMetadata("i", None, "client", "/127.0.0.1", ("t",), None, 30000, None, ClassicMemberMetadata(45000, (("range", b"\x00\x01"), ("roundrobin", b""))))
    encoded = records.member_metadata_value(metadata)
    assert records.parse_member_metadata_value(encoded) == metadata
    # Tagged field 0 after ServerAssignor: one tagged field, tag 0, its size, then the nullable
    # struct's presence byte (KIP-893) before SessionTimeoutMs; kafka-dump-log --offsets-decoder
    # reads it back so.
    # A member without one carries it null: tag 0, size 1, presence byte 0.
    plain = records.member_metadata_value(MemberMetadata("i", None, "client", "/127.0.0.1", ("t",), None, 30000, None))
    assert plain.endswith(b"\x01\x00\x01\x00")
    tagged = encoded[len(plain) - 4 :]
    assert encoded[: len(plain) - 4] == plain[:-4] and tagged[:2] == b"\x01\x00"
    assert tagged[3:8] == b"\x01" + struct.pack(">i", 45000)


def test_a_classic_static_member_replacing_the_last_consumer_member_downgrades_without_a_rebalance() -> None:
    h = Harness()
    h.storage.create_topic("t", PARTITIONS)
    first = h.beat("s", 0, instance_id="i")
    (joined,) = h.join()
    # The classic member joined within the assignment interval of the first join; once that
    # has passed, s is asked to give half up and reaches the new epoch when it has.
    h.clock.advance(1)
    revoking = h.beat("s", first.member_epoch, owned=first.assignment, instance_id="i")
    assert revoking.error is ErrorCode.NONE and revoking.member_epoch == first.member_epoch
    assert h.beat("s", first.member_epoch, owned=revoking.assignment, instance_id="i").member_epoch == first.member_epoch + 1
    group = h.coordinator.consumer_group("g")
    held = group.members["s"].current.assigned
    assert h.beat("s", -2, instance_id="i").error is ErrorCode.NONE
    (replacement,) = h.join(instance_id="i")
    assert replacement.error is ErrorCode.NONE
    assert h.coordinator.consumer_group("g") is None
    classic = h.coordinator.groups["g"]
    assert classic.state is GroupState.STABLE and set(classic.members) == {joined.member_id, replacement.member_id}
    (synced,) = h.sync(replacement)
    assert synced.error is ErrorCode.NONE
    names = {h.storage.topic("t").topic_id: "t"}
    assert embedded.parse_assignment(synced.assignment) == {names[t]: p for t, p in held.items()}
