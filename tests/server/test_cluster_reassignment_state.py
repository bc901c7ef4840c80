"""ClusterState's reassignments as Kafka 4.4's controller runs them (PartitionReassignmentReplicas,
PartitionReassignmentRevert), without sockets: in progress until the added replicas are in sync,
reverted by a cancel, completed when the added node starts, and completed by a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from ottla.server.cluster.state import NO_LEADER, ClusterState, NodeState, UncleanRevert


def _cluster(data_dir: Path | None = None) -> ClusterState:
    return ClusterState([1, 2, 3], [None, None, None], data_dir, lambda topic, index: 0, lambda topic, index, epoch: None)


def _placed(cluster: ClusterState, replicas: tuple[int, ...]) -> None:
    cluster.assign("t", b"\x01" * 16, [0], len(replicas), {0: replicas})


def test_a_reassignment_waits_for_the_added_replica_and_a_cancel_reverts_it() -> None:
    cluster = _cluster()
    _placed(cluster, (1, 2))
    cluster.set_node_state(3, NodeState.CRASHED, lambda topic: False)
    cluster.reassign("t", 0, (3, 1))
    state = cluster.topics["t"][1][0]
    # The target, then the removed replica; the ISR is unchanged and so is the leader's epoch.
    assert (state.replicas, state.adding, state.removing, state.isr, state.leader, state.leader_epoch) == ((3, 1, 2), (3,), (2,), (1, 2), 1, 0)
    cluster.cancel_reassignment("t", 0, unclean_allowed=False)
    assert (state.replicas, state.adding, state.removing, state.isr, state.leader) == ((1, 2), (), (), (1, 2), 1)
    cluster.reassign("t", 0, (3, 1))
    cluster.set_node_state(3, NodeState.RUNNING, lambda topic: False)
    # In sync once started: the removed replica leaves, and the grown ISR is in ascending order (as
    # a Kafka leader sends it). Dropping a replica bumps the leader epoch, on the cancel (3) as on
    # the completion (2).
    assert (state.replicas, state.adding, state.removing, state.isr, state.leader, state.leader_epoch) == ((3, 1), (), (), (1, 3), 1, 2)


def test_a_cancel_that_would_leave_no_isr_needs_an_unclean_election() -> None:
    cluster = _cluster()
    _placed(cluster, (1,))
    cluster.set_node_state(3, NodeState.CRASHED, lambda topic: False)
    cluster.reassign("t", 0, (2, 3))
    cluster.set_node_state(1, NodeState.STOPPED, lambda topic: False)
    state = cluster.topics["t"][1][0]
    # Node 2 caught up and leads; node 3 never did, so the reassignment is still in progress.
    assert (state.replicas, state.adding, state.removing, state.isr, state.leader) == ((2, 3, 1), (2, 3), (1,), (2,), 2)
    with pytest.raises(UncleanRevert):
        cluster.cancel_reassignment("t", 0, unclean_allowed=False)
    cluster.cancel_reassignment("t", 0, unclean_allowed=True)
    # PartitionReassignmentRevert: the first original replica is the ISR; it is stopped, so no leader.
    assert (state.replicas, state.adding, state.removing, state.isr, state.leader) == ((1,), (), (), (1,), NO_LEADER)


def test_a_restart_completes_a_reassignment_in_progress(tmp_path: Path) -> None:
    cluster = _cluster(tmp_path)
    _placed(cluster, (1, 2))
    cluster.set_node_state(3, NodeState.STOPPED, lambda topic: False)
    cluster.reassign("t", 0, (3, 1))
    restarted = _cluster(tmp_path).topics["t"][1][0]
    assert (restarted.replicas, restarted.adding, restarted.removing, restarted.isr) == ((3, 1), (), (), (3, 1))
