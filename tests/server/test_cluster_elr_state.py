"""Eligible leader replicas (KIP-966) in the cluster state, without sockets: the ISR, ELR,
last-known ELR and leader of a replication-3 partition as Kafka 4.4's controller keeps them
(PartitionChangeBuilder, ReplicationControlManager). The min.insync.replicas=3 steps are what a
three-node Kafka 4.4 reference cluster showed in `kafka-topics --describe` (a controlled stop of
a follower: "Isr: 1,2 Elr: 3"; a crashed follower once fenced: "Isr: 1,3 Elr: 2"); the
reference cannot lose two of its three combined controllers, so the later steps follow the
controller's code."""

from __future__ import annotations

from ottla.server.cluster import NO_LEADER, ClusterState, EligibleLeaderReplicas, NodeState

TOPIC_ID = bytes(range(1, 17))


class _Settings:
    """The feature's level and each topic's min.insync.replicas, as a test sets them."""

    def __init__(self, min_isr: int, enabled: bool = True) -> None:
        self.min_isr = min_isr
        self.enabled = enabled

    def hook(self) -> EligibleLeaderReplicas:
        return EligibleLeaderReplicas(lambda: self.enabled, lambda topic: self.min_isr)


def _cluster(settings: _Settings | None) -> ClusterState:
    return ClusterState([1, 2, 3], [None] * 3, None, lambda topic, index: 0, lambda topic, index, epoch: None,
                        eligible_leader_replicas=None if settings is None else settings.hook())


def _never(topic: str) -> bool:
    return False


def _view(cluster: ClusterState) -> tuple[int, tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """Leader, ISR (ascending: its order is the ISR rules' own), ELR and last-known ELR."""
    state = cluster.topics["t"][1][0]
    return state.leader, tuple(sorted(state.isr)), state.elr, state.last_known_elr


def _placed(cluster: ClusterState) -> tuple[int, int, int]:
    """The partition's replicas, placed as (1, 2, 3) in some order: (leader, second, third)."""
    first, second, third = cluster.partition("t", TOPIC_ID, 1, 0, 3).replicas
    return first, second, third


def test_a_follower_stopped_below_min_isr_stays_eligible_and_rejoins() -> None:
    cluster = _cluster(_Settings(min_isr=3))
    leader, second, third = _placed(cluster)
    cluster.set_node_state(third, NodeState.SHUTTING_DOWN, _never)
    cluster.set_node_state(third, NodeState.STOPPED, _never)
    assert _view(cluster) == (leader, tuple(sorted((leader, second))), (third,), ())
    cluster.set_node_state(third, NodeState.RUNNING, _never)
    assert _view(cluster) == (leader, (1, 2, 3), (), ())


def test_at_min_isr_no_replica_is_kept_eligible() -> None:
    cluster = _cluster(_Settings(min_isr=2))
    leader, second, third = _placed(cluster)
    cluster.set_node_state(third, NodeState.STOPPED, _never)
    assert _view(cluster) == (leader, tuple(sorted((leader, second))), (), ())


def test_the_last_isr_member_leaves_it_and_an_eligible_replica_leads_when_it_returns() -> None:
    """Without ELR only the last ISR member could bring the partition back; with it, any
    replica that left the ISR below min.insync.replicas can, and the partition remembers its
    last leader meanwhile."""
    cluster = _cluster(_Settings(min_isr=2))
    leader, second, third = _placed(cluster)
    for node in (third, second, leader):
        cluster.set_node_state(node, NodeState.STOPPED, _never)
    assert _view(cluster) == (NO_LEADER, (), tuple(sorted((leader, second))), (leader,))
    cluster.set_node_state(third, NodeState.RUNNING, _never)
    assert _view(cluster)[0] == NO_LEADER, "a replica outside the ISR and ELR may not lead (no unclean election)"
    cluster.set_node_state(second, NodeState.RUNNING, _never)
    # Elected from the ELR, then the running follower rejoins and the ISR is at min ISR again.
    assert _view(cluster) == (second, tuple(sorted((second, third))), (), ())


def test_without_the_feature_the_last_member_stays_in_the_isr() -> None:
    for settings in (None, _Settings(min_isr=2, enabled=False)):
        cluster = _cluster(settings)
        leader, second, third = _placed(cluster)
        for node in (third, second, leader):
            cluster.set_node_state(node, NodeState.STOPPED, _never)
        assert _view(cluster) == (NO_LEADER, (leader,), (), ())
        cluster.set_node_state(second, NodeState.RUNNING, _never)
        assert _view(cluster)[0] == NO_LEADER


def test_a_crashed_replica_stays_eligible_once_fenced_and_leaves_the_elr_when_it_starts_again() -> None:
    cluster = _cluster(_Settings(min_isr=2))
    leader, second, third = _placed(cluster)
    cluster.set_node_state(third, NodeState.STOPPED, _never)
    cluster.set_node_state(second, NodeState.CRASHED, _never)
    assert _view(cluster) == (leader, tuple(sorted((leader, second))), (), ()), "a crash changes nothing until the fence"
    cluster.set_node_state(second, NodeState.STOPPED, _never)  # fenced: its session timed out
    assert _view(cluster) == (leader, (leader,), (second,), ())
    cluster.set_node_state(leader, NodeState.STOPPED, _never)
    assert _view(cluster) == (NO_LEADER, (), tuple(sorted((leader, second))), (leader,))
    # Back from a crash its log may lack what it had acknowledged: no longer eligible, so it
    # cannot lead though it runs.
    cluster.set_node_state(second, NodeState.RUNNING, _never)
    assert _view(cluster) == (NO_LEADER, (), (leader,), (leader,))
    cluster.set_node_state(leader, NodeState.RUNNING, _never)
    assert _view(cluster) == (leader, tuple(sorted((leader, second))), (), ())


def test_the_last_known_leader_leads_again_when_isr_and_elr_are_empty() -> None:
    cluster = _cluster(_Settings(min_isr=2))
    leader, second, third = _placed(cluster)
    cluster.set_node_state(third, NodeState.STOPPED, _never)
    cluster.set_node_state(second, NodeState.CRASHED, _never)
    cluster.set_node_state(second, NodeState.STOPPED, _never)
    cluster.set_node_state(leader, NodeState.CRASHED, _never)
    cluster.set_node_state(leader, NodeState.STOPPED, _never)
    assert _view(cluster) == (NO_LEADER, (), tuple(sorted((leader, second))), (leader,))
    cluster.set_node_state(second, NodeState.RUNNING, _never)
    assert _view(cluster) == (NO_LEADER, (), (leader,), (leader,))
    # Its unclean shutdown empties the ELR; then, unfenced, the last-known leader leads (an
    # unclean election, which the topic need not allow) and the running follower rejoins.
    epoch = cluster.topics["t"][1][0].leader_epoch
    cluster.set_node_state(leader, NodeState.RUNNING, _never)
    assert _view(cluster) == (leader, tuple(sorted((leader, second))), (), ())
    assert cluster.topics["t"][1][0].leader_epoch == epoch + 1


def test_a_downgrade_keeps_the_elr_until_the_partition_next_changes() -> None:
    """ELR off, PartitionChangeBuilder records an empty ELR with the partition's next change;
    the feature's level alone changes no partition."""
    settings = _Settings(min_isr=3)
    cluster = _cluster(settings)
    leader, second, third = _placed(cluster)
    cluster.set_node_state(third, NodeState.STOPPED, _never)
    assert _view(cluster)[2] == (third,)
    settings.enabled = False
    assert _view(cluster)[2] == (third,)
    cluster.set_node_state(second, NodeState.STOPPED, _never)
    assert _view(cluster) == (leader, (leader,), (), ())


def test_an_unclean_election_clears_the_elr() -> None:
    cluster = _cluster(_Settings(min_isr=3))
    leader, second, third = _placed(cluster)
    for node in (third, second, leader):
        cluster.set_node_state(node, NodeState.STOPPED, _never)
    assert _view(cluster) == (NO_LEADER, (), (1, 2, 3), (leader,))
    cluster.set_node_state(third, NodeState.RUNNING, _never)
    assert _view(cluster)[0] == third, "an ELR member coming back leads"
    assert _view(cluster)[1:3] == ((third,), tuple(sorted((leader, second))))
    cluster2 = _cluster(_Settings(min_isr=2))
    leader, second, third = _placed(cluster2)
    for node in (third, second, leader):
        cluster2.set_node_state(node, NodeState.STOPPED, _never)
    cluster2.set_node_state(third, NodeState.RUNNING, _never)
    assert cluster2.elect_unclean("t", 0)
    assert _view(cluster2) == (third, (third,), (), ())
