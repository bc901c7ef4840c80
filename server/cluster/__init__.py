"""Cluster mode: N nodes in one process, sharing one storage and one set of coordinators.

`ClusterState` (state.py) is the topology: nodes, racks, and each partition's replicas,
leader, leader epoch and ISR. The broker (server/broker.py) runs one front-end per node:
its listeners, its connections and its own `BrokerServices.node`; every node's services
hold the same `ClusterState` as `services.cluster`, which is None for a single node, so a
handler pays one attribute check for cluster mode and nothing else.

routing.py holds what handlers ask of it.
"""

from __future__ import annotations

from ottla.server.cluster.state import (
    NO_LEADER,
    STATE_FILE,
    ClusterNode,
    ClusterState,
    EligibleLeaderReplicas,
    NodeState,
    PartitionState,
    ReplicaPlacementError,
    place_replicas,
)

__all__ = ["NO_LEADER", "STATE_FILE", "ClusterNode", "ClusterState", "EligibleLeaderReplicas", "NodeState", "PartitionState", "ReplicaPlacementError", "place_replicas"]
