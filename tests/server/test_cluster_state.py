"""The cluster topology's rules, without sockets: placement, elections, ISR, epochs, persistence."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from ottla.server.cluster import NO_LEADER, ClusterNode, ClusterState, NodeState, place_replicas

TOPIC_ID = bytes(range(1, 17))


def _state(data_dir: Path | None = None, ends: dict[tuple[str, int], int] | None = None, racks: tuple[str | None, ...] = (None,) * 3) -> tuple[ClusterState, dict[tuple[str, int], int]]:
    epochs: dict[tuple[str, int], int] = {}
    ends = ends if ends is not None else {}
    state = ClusterState(
        list(range(1, len(racks) + 1)), racks, data_dir, lambda topic, index: ends.get((topic, index), 0),
        lambda topic, index, epoch: epochs.__setitem__((topic, index), epoch),
    )
    return state, epochs


def _never(topic: str) -> bool:
    return False


def test_placement_spreads_leaders_and_keeps_replicas_distinct() -> None:
    nodes = [ClusterNode(node, None) for node in (1, 2, 3)]
    placed = place_replicas(nodes, range(30), 3, 7)
    assert all(len(set(replicas)) == 3 for replicas in placed.values())
    assert Counter(replicas[0] for replicas in placed.values()) == {1: 10, 2: 10, 3: 10}
    # Followers are shifted as well as leaders: not every partition has the same order.
    assert len({replicas for replicas in placed.values()}) > 3


def test_rack_aware_placement_puts_replicas_in_different_racks() -> None:
    nodes = [ClusterNode(node, rack) for node, rack in zip(range(1, 7), "aabbcc")]
    racks = {node.node_id: node.rack for node in nodes}
    for replicas in place_replicas(nodes, range(12), 3, 0).values():
        assert len({racks[node] for node in replicas}) == 3


def test_a_stopped_leader_hands_over_to_the_next_in_sync_replica_in_a_new_epoch() -> None:
    cluster, epochs = _state(ends={("t", 0): 42})
    state = cluster.partition("t", TOPIC_ID, 1, 0, 3)
    first, second, third = state.replicas
    cluster.set_node_state(first, NodeState.STOPPED, _never)
    assert (state.leader, state.leader_epoch, state.isr) == (second, 1, (second, third))
    assert epochs[("t", 0)] == 1
    # The epoch history says where epoch 0 ended: where epoch 1 started.
    assert state.end_offset_for(0, 50) == (0, 42)
    assert state.end_offset_for(1, 50) == (1, 50)
    assert state.end_offset_for(7, 50) == (-1, -1)
    cluster.set_node_state(first, NodeState.RUNNING, _never)
    assert state.leader == second and set(state.isr) == {first, second, third}
    assert cluster.elect_preferred("t", 0)
    assert (state.leader, state.leader_epoch) == (first, 2)


def test_the_last_in_sync_replica_stays_in_the_isr_and_the_partition_goes_leaderless() -> None:
    cluster, _ = _state()
    state = cluster.partition("t", TOPIC_ID, 1, 0, 2)
    leader, follower = state.replicas
    cluster.set_node_state(follower, NodeState.STOPPED, _never)
    cluster.set_node_state(leader, NodeState.STOPPED, _never)
    assert (state.leader, state.isr) == (NO_LEADER, (leader,))
    # The follower comes back out of sync: no clean election is possible.
    cluster.set_node_state(follower, NodeState.RUNNING, _never)
    assert state.leader == NO_LEADER
    assert cluster.elect_unclean("t", 0)
    assert (state.leader, state.isr) == (follower, (follower,))


def test_unclean_election_when_the_topic_allows_it() -> None:
    cluster, _ = _state()
    state = cluster.partition("t", TOPIC_ID, 1, 0, 2)
    leader, follower = state.replicas
    cluster.set_node_state(follower, NodeState.STOPPED, _never)
    cluster.set_node_state(follower, NodeState.RUNNING, _never)  # back in the ISR at once
    cluster.set_node_state(follower, NodeState.STOPPED, _never)
    cluster.set_node_state(leader, NodeState.STOPPED, lambda topic: True)
    assert state.leader == NO_LEADER  # no running replica at all
    cluster.set_node_state(follower, NodeState.RUNNING, _never)
    assert state.leader == NO_LEADER and state.isr == (leader,)


def test_the_topology_survives_a_restart(tmp_path: Path) -> None:
    cluster, _ = _state(tmp_path)
    state = cluster.partition("t", TOPIC_ID, 2, 0, 3)
    cluster.move_leader("t", 0, state.replicas[2])
    reloaded, epochs = _state(tmp_path)
    again = reloaded.partition("t", TOPIC_ID, 2, 0, 3)
    assert (again.replicas, again.leader, again.leader_epoch) == (state.replicas, state.leader, 1)
    assert epochs[("t", 0)] == 1
    # A topic deleted and created again under a new id is placed anew.
    fresh = reloaded.partition("t", bytes(16), 1, 0, 1)
    assert len(fresh.replicas) == 1 and fresh.leader_epoch == 0


def test_a_crash_changes_nothing_until_the_fence_and_a_shutdown_hands_over_while_listed() -> None:
    cluster, _ = _state()
    state = cluster.partition("t", TOPIC_ID, 1, 0, 3)
    first, second, third = state.replicas
    cluster.set_node_state(first, NodeState.CRASHED, _never)
    assert (state.leader, state.leader_epoch, state.isr) == (first, 0, (first, second, third))
    assert [node.node_id for node in cluster.running_nodes()] == [1, 2, 3]
    cluster.set_node_state(first, NodeState.STOPPED, _never)  # the session timed out
    assert (state.leader, state.leader_epoch, state.isr) == (second, 1, (second, third))
    cluster.set_node_state(second, NodeState.SHUTTING_DOWN, _never)
    assert (state.leader, state.leader_epoch, state.isr) == (third, 2, (third,))
    # Still listed while it shuts down, but neither electable nor given new replicas.
    assert second in [node.node_id for node in cluster.running_nodes()]
    assert cluster.partition("u", bytes(16), 3, 0, 1).replicas[0] == third
    cluster.set_node_state(second, NodeState.RUNNING, _never)
    assert state.isr == (second, third)


def test_a_crashed_follower_freezes_the_high_watermark_until_the_fence_or_its_restart() -> None:
    ends = {("t", 0): 5, ("u", 0): 0}
    moved: list[tuple[str, int]] = []
    cluster = ClusterState([1, 2, 3], (None,) * 3, None, lambda topic, index: ends[(topic, index)],
                           lambda topic, index, epoch: None, lambda topic, index: moved.append((topic, index)))
    state = cluster.partition("t", TOPIC_ID, 1, 0, 3)
    leader, follower, other = state.replicas
    assert cluster.high_watermark("t", 0, 5) == 5
    cluster.set_node_state(follower, NodeState.CRASHED, _never)
    ends[("t", 0)] = 9  # appended to by the leader after the crash
    assert cluster.high_watermark("t", 0, 9) == 5
    # A partition placed during the window may be given the crashed node, which never fetches it.
    placed = cluster.partition("u", bytes(16), 1, 0, 3)
    assert follower in placed.isr and placed.high_watermark(3) == 0
    cluster.set_node_state(follower, NodeState.STOPPED, _never)  # fenced: out of the ISR
    assert follower not in state.isr and cluster.high_watermark("t", 0, 9) == 9
    assert sorted(moved) == [("t", 0), ("u", 0)]
    # Started from the crash instead, it is caught up at once.
    cluster.set_node_state(follower, NodeState.RUNNING, _never)
    cluster.set_node_state(other, NodeState.CRASHED, _never)
    assert cluster.high_watermark("t", 0, 12) == 9
    cluster.set_node_state(other, NodeState.RUNNING, _never)
    assert cluster.high_watermark("t", 0, 12) == 12 and moved[-2:] == [("t", 0), ("u", 0)]
    assert leader in state.isr
