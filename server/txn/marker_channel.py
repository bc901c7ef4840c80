"""Markers for a group's `__consumer_offsets` partition that another broker coordinates, among
brokers over one database (Kafka's TransactionMarkerChannelManager, for that one partition kind).

A transaction's COMMIT or ABORT marker into a data partition is appended to the shared log by the
transaction coordinator itself, and the partition's leader reloads the producer state it ends. A
marker into a `__consumer_offsets` partition must do more: the group coordinator holds the
transaction's TxnOffsetCommit offsets pending in its memory, and only the marker's arrival commits
or drops them (GroupCoordinator.onTransactionCompleted). So the transaction coordinator sends that
marker to the partition's leader, the group's coordinator, as WriteTxnMarkers v1 over the
inter-broker connection (server/cluster/peers.py); that broker appends it and completes the
offsets. While the leader is away (a network error, or NOT_LEADER_OR_FOLLOWER / NOT_COORDINATOR /
COORDINATOR_LOAD_IN_PROGRESS from a broker that lost or is still loading the partition) the marker
is retried, each time to the partition's current leader, as Kafka re-queues a marker for the
leader it looks up again: once a killed broker's lease lapses, the broker that takes the partition
over replays its pending offsets from the log and receives the marker. When that broker is this
one, the marker is written here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ottla.server.coordinator.topics import OFFSETS_TOPIC
from ottla.wire.api import ApiKey
from ottla.wire.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from ottla.server.cluster.state import ClusterState
    from ottla.server.config import BrokerConfig
    from ottla.storage import Storage

# The flexible version, which Kafka's coordinator sends (v0 left in Kafka 4.0).
_WRITE_TXN_MARKERS_VERSION = 1
_NO_LEADER = -1


class OffsetsMarkerChannel:
    """Where a `__consumer_offsets` partition's marker goes, and its sending."""

    def __init__(
        self, cluster: ClusterState, storage: Storage, config: BrokerConfig, node_id: int, replication_factor: int, loading: Callable[[int], bool]
    ) -> None:
        self._cluster = cluster
        self._storage = storage
        self._config = config
        self._node_id = node_id
        # `__consumer_offsets`'s (offsets.topic.replication.factor), which places its partitions.
        self._replication_factor = replication_factor
        # Whether this broker is still replaying `__consumer_offsets` partition `index`.
        self._loading = loading

    def leader(self, partition: int) -> int:
        """The node leading `__consumer_offsets` partition `partition` (-1: none now)."""
        info = self._storage.topic(OFFSETS_TOPIC)
        if info is None:
            return self._node_id
        return self._cluster.partition(OFFSETS_TOPIC, info.topic_id, info.partitions, partition, self._replication_factor).leader

    def ready_here(self, partition: int) -> bool:
        """Whether this broker holds the partition's pending offsets now: it leads the partition
        and has replayed it. While another broker (or, between leaders, none) leads it, or this
        one still replays it, a marker must wait: one applied before the replay would find no
        pending offsets, and the replay, having read the log before the marker, would leave them
        pending for good."""
        return self.leader(partition) == self._node_id and not self._loading(partition)

    async def deliver(
        self, partition: int, producer_id: int, producer_epoch: int, commit: bool, coordinator_epoch: int, write_here: Callable[[], Awaitable[None]]
    ) -> None:
        """One attempt at the marker: sent to the partition's leader, or written by `write_here`
        when that is this broker. Raises KafkaError with the reason it did not arrive (retriable
        ones listed in server/txn/database_markers.py's RETRIABLE)."""
        node = self.leader(partition)
        if node == _NO_LEADER:
            raise KafkaError(ErrorCode.COORDINATOR_NOT_AVAILABLE, f"{OFFSETS_TOPIC}-{partition} has no leader")
        if node == self._node_id:
            if self._loading(partition):
                raise KafkaError(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, f"{OFFSETS_TOPIC}-{partition} is loading here")
            await write_here()
            return
        error = await self._send(node, partition, producer_id, producer_epoch, commit, coordinator_epoch)
        if error is ErrorCode.NETWORK_EXCEPTION:
            raise KafkaError(error, f"no answer from broker {node} for the marker of {OFFSETS_TOPIC}-{partition}")
        if error is not ErrorCode.NONE:
            raise KafkaError(error, f"broker {node} answered {error.name} for the marker of {OFFSETS_TOPIC}-{partition}")

    async def _send(self, node: int, partition: int, producer_id: int, producer_epoch: int, commit: bool, coordinator_epoch: int) -> ErrorCode:
        """Broker `node`'s answer for the partition's marker; NETWORK_EXCEPTION when none came."""
        from ottla.server.cluster.peers import peers_of

        request: dict[str, Any] = {"markers": [{
            "producer_id": producer_id, "producer_epoch": producer_epoch, "transaction_result": commit, "coordinator_epoch": coordinator_epoch,
            "topics": [{"name": OFFSETS_TOPIC, "partition_indexes": [partition]}],
        }]}
        try:
            peer = peers_of(self._cluster, self._config, self._node_id).connection(node)
            answer = await peer.request(ApiKey.WRITE_TXN_MARKERS, _WRITE_TXN_MARKERS_VERSION, request)
        except (ConnectionError, TimeoutError, OSError):
            return ErrorCode.NETWORK_EXCEPTION
        for marker in answer.get("markers", ()):
            for topic in marker["topics"]:
                for result in topic["partitions"]:
                    if topic["name"] == OFFSETS_TOPIC and result["partition_index"] == partition:
                        return ErrorCode(result["error_code"])
        return ErrorCode.NETWORK_EXCEPTION


def offsets_partition_refusal(leader: int, node_id: int, loading: bool) -> ErrorCode:
    """What a broker answers a WriteTxnMarkers for a `__consumer_offsets` partition it cannot
    complete offsets of: NOT_LEADER_OR_FOLLOWER when another broker leads it (Kafka's
    ReplicaManager), COORDINATOR_LOAD_IN_PROGRESS while it replays it; NONE when it can."""
    if leader != node_id:
        return ErrorCode.NOT_LEADER_FOR_PARTITION
    if loading:
        return ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
    return ErrorCode.NONE
