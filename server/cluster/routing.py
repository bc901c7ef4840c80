"""What handlers ask of the cluster state: a partition's state, a node's endpoint on the
listener the client came through, and the checks Kafka's ReplicaManager makes before a
leader-only request is served. Every helper is called only when `services.cluster` is set."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ottla.server.cluster.state import NO_LEADER, ClusterState, EligibleLeaderReplicas, Endpoint, PartitionState
from ottla.server.coordinator.topics import OFFSETS, SHARE_GROUP_STATE, TRANSACTION_STATE
from ottla.wire.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from ottla.server.config import BrokerConfig
    from ottla.server.context import RequestContext
    from ottla.server.features import FinalizedFeatures
    from ottla.storage import Storage, TopicInfo

# The listener name of requests the HTTP API makes of the handlers in-process: it stands for
# the whole cluster, not one node, so it is served as each partition's leader would serve it.
IN_PROCESS_LISTENER = "HTTP"

# The replica id of a debugging read (ListOffsetsRequest.DEBUGGING_REPLICA_ID), which a follower may serve.
DEBUGGING_REPLICA_ID = -2

# The replication factor each internal topic is created with (Kafka's settings of the same names).
_INTERNAL_REPLICATION = {
    OFFSETS.name: "offsets.topic.replication.factor",
    TRANSACTION_STATE.name: "transaction.state.log.replication.factor",
    SHARE_GROUP_STATE.name: "share.coordinator.state.topic.replication.factor",
}


def replication_factor_for(config: BrokerConfig, topic: str) -> int:
    """The factor a topic placed without one is given: its internal setting, else
    `default.replication.factor` (capped at the node count when placed)."""
    return int(config.value(_INTERNAL_REPLICATION.get(topic, "default.replication.factor")))


def partition_state(context: RequestContext, cluster: ClusterState, info: TopicInfo, index: int) -> PartitionState:
    """The state of partition `index` (< info.partitions) of a topic, placed on first use."""
    return cluster.partition(info.name, info.topic_id, info.partitions, index, replication_factor_for(context.config, info.name))


def endpoint_of(context: RequestContext, cluster: ClusterState, node_id: int) -> Endpoint | None:
    """Node `node_id` as the listener the client came through advertises it."""
    endpoints = cluster.endpoints.get(node_id)
    if endpoints is None:
        return None
    return endpoints.get(context.client.listener) or next(iter(endpoints.values()), None)


def leader_partition(context: RequestContext, cluster: ClusterState, name: str, index: int, claimed_epoch: int = -1,
                     require_leader: bool = True) -> PartitionState:
    """The state of a partition this node must lead for the request to be served: raise
    NOT_LEADER_OR_FOLLOWER (ReplicaManager.getPartitionOrException) when another node leads
    it, and UNKNOWN_TOPIC_OR_PARTITION for a partition that does not exist. A request naming
    the leader epoch it knows (`claimed_epoch`, -1: none) has it checked first on any replica,
    as Partition.localLogWithEpochOrThrow does: FENCED_LEADER_EPOCH or UNKNOWN_LEADER_EPOCH
    before NOT_LEADER_OR_FOLLOWER. Without `require_leader` (a debugging ListOffsets) any
    replica serves it, as Partition.getLocalLog does without requireLeader."""
    info = context.storage.topic(name)
    if info is None or not 0 <= index < info.partitions:
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    state = partition_state(context, cluster, info, index)
    node_id = context.node.node_id
    if state.leader != node_id and context.client.listener != IN_PROCESS_LISTENER:
        if node_id in state.replicas:
            check_current_leader_epoch(claimed_epoch, state.leader_epoch)
            if not require_leader:
                return state
        raise KafkaError(ErrorCode.NOT_LEADER_FOR_PARTITION, f"This server is not the leader for {name}-{index}.")
    check_current_leader_epoch(claimed_epoch, state.leader_epoch)
    return state


def unclean_allowed(storage: Storage, config: BrokerConfig, topic: str) -> bool:
    """`unclean.leader.election.enable` of the topic, else the broker's."""
    info = storage.topic(topic)
    value = None if info is None else info.configs.get("unclean.leader.election.enable")
    return config.unclean_leader_election_enable if value is None else value.lower() == "true"


def min_insync_replicas(context: RequestContext, info: TopicInfo) -> int:
    """The topic's `min.insync.replicas`, else the broker's."""
    return _topic_min_insync_replicas(info, context.config)


def _topic_min_insync_replicas(info: TopicInfo | None, config: BrokerConfig) -> int:
    value = None if info is None else info.configs.get("min.insync.replicas")
    return config.min_insync_replicas if value is None else int(value)


def eligible_leader_replicas(storage: Storage, config: Callable[[], BrokerConfig], features: FinalizedFeatures) -> EligibleLeaderReplicas:
    """What ClusterState keeps eligible leader replicas by: the finalized
    eligible.leader.replicas.version, and each topic's `min.insync.replicas`, else the broker's
    as it is now (`config`: dynamic broker configs change it)."""
    return EligibleLeaderReplicas(
        lambda: features.level("eligible.leader.replicas.version") >= 1,
        lambda topic: _topic_min_insync_replicas(storage.topic(topic), config()),
    )


def check_current_leader_epoch(claimed: int, current: int) -> None:
    """Kafka's Partition.getLocalLog: a client behind the leader is fenced, one ahead is early."""
    if claimed == -1:
        return
    if claimed < current:
        raise KafkaError(ErrorCode.FENCED_LEADER_EPOCH)
    if claimed > current:
        raise KafkaError(ErrorCode.UNKNOWN_LEADER_EPOCH)


def leader_hint(context: RequestContext, cluster: ClusterState, name: str, index: int, endpoints: dict[int, Any]) -> dict[str, int]:
    """KIP-951: the partition's current leader and epoch for a NOT_LEADER_OR_FOLLOWER answer,
    with the leader's endpoint added to `endpoints` (the response's `node_endpoints`)."""
    info = context.storage.topic(name)
    if info is None or not 0 <= index < info.partitions:
        return {"leader_id": -1, "leader_epoch": -1}
    state = partition_state(context, cluster, info, index)
    endpoint = endpoint_of(context, cluster, state.leader) if state.leader != NO_LEADER else None
    if endpoint is not None:
        endpoints[state.leader] = {"node_id": state.leader, "host": endpoint.host, "port": endpoint.port, "rack": cluster.nodes[state.leader].rack}
    return {"leader_id": state.leader, "leader_epoch": state.leader_epoch}
